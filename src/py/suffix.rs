//! Bindings of `crate::suffix`: exact-substring dedup, contamination, on-disk index.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::DocsArg;
use crate::suffix::repeats::{Keep, RepeatOptions, RepeatStats, Span};
use crate::suffix::sa::{suffix_array, IndexWidth};
use crate::suffix::{self as core, IndexInfo};

type I64Pair<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);
type Trimmed<'py> = (Bound<'py, PyArray1<u8>>, Bound<'py, PyArray1<i64>>);

type SpanArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyDict>,
);

fn width(force_64: bool) -> IndexWidth {
    if force_64 {
        IndexWidth::W64
    } else {
        IndexWidth::Auto
    }
}

/// Environment variable for tests of resumable runs: stop (as Ctrl-C would, exit 130 from
/// the CLI) once this many parts are finished, leaving the work folder as a kill would.
const STOP_AFTER_PARTS_ENV: &str = "GRISTMILL_TEST_STOP_AFTER_PARTS";

fn limited(memory_limit: Option<usize>, work_dir: Option<PathBuf>, resume: bool) -> core::LimitedOptions {
    let stop_after_parts = std::env::var(STOP_AFTER_PARTS_ENV).ok().and_then(|v| v.trim().parse().ok());
    core::LimitedOptions { memory_limit, work_dir, resume, stop_after_parts, ..Default::default() }
}

fn spans_out<'py>(py: Python<'py>, spans: Vec<Span>, stats: RepeatStats) -> PyResult<SpanArrays<'py>> {
    let n = spans.len();
    let (mut d, mut s, mut e, mut o) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for sp in spans {
        d.push(sp.doc as i64);
        s.push(sp.start as i64);
        e.push(sp.end as i64);
        o.push(sp.occurrences as i64);
    }
    let st = PyDict::new(py);
    let timings = PyList::empty(py);
    for (name, secs) in stats.timings {
        timings.append((name, secs))?;
    }
    st.set_item("timings", timings)?;
    st.set_item("classes", stats.classes)?;
    st.set_item("marked_windows", stats.marked_windows)?;
    st.set_item("index_bytes", stats.index_bytes)?;
    st.set_item("part_overflow_bytes", stats.part_overflow_bytes)?;
    st.set_item("parts_reused", stats.parts_reused)?;
    st.set_item("parts_rebuilt", stats.parts_rebuilt)?;
    st.set_item("hash_reused", stats.hash_reused)?;
    st.set_item("hash_rebuilt", stats.hash_rebuilt)?;
    Ok((d.into_pyarray(py), s.into_pyarray(py), e.into_pyarray(py), o.into_pyarray(py), st))
}

/// suffix_find_repeats(docs, min_length, keep, threads=0, force_64=False)
///     -> (doc, start, end, occurrences, stats)
///
/// With `memory_limit` (bytes), the hash-partitioned external path is used (same result),
/// spilling its part entries to `work_dir` (default: the system temporary folder); with
/// `resume`, its files stay there under fixed names until it succeeds and a rerun reuses
/// them (see `LimitedOptions::resume`).
#[pyfunction]
#[pyo3(signature = (docs, min_length, keep, threads=0, force_64=false, memory_limit=None, work_dir=None, resume=false))]
#[allow(clippy::too_many_arguments)]
fn suffix_find_repeats<'py>(
    py: Python<'py>,
    docs: DocsArg<'py>,
    min_length: usize,
    keep: &str,
    threads: usize,
    force_64: bool,
    memory_limit: Option<usize>,
    work_dir: Option<std::path::PathBuf>,
    resume: bool,
) -> PyResult<SpanArrays<'py>> {
    let keep: Keep = keep.parse()?;
    let view = docs.view()?;
    let opts = RepeatOptions { min_length, keep, threads, width: width(force_64) };
    let lim = limited(memory_limit, work_dir, resume);
    let (spans, stats) = super::detach_interruptible(py, || match memory_limit {
        None => core::find_repeats(view, &opts),
        Some(_) => core::find_repeats_external(view, &opts, &lim),
    })?;
    spans_out(py, spans, stats)
}

/// suffix_find_repeats_tokens(ids: uint32[:], doc_offsets: int64[:], min_length, keep,
///     token_starts: uint64[:] | None, doc_bytes: uint64[:] | None, threads=0)
///     -> (doc, start, end, occurrences, stats); spans in tokens, or bytes when the byte
///     offsets are given.
#[pyfunction]
#[pyo3(signature = (ids, doc_offsets, min_length, keep, token_starts=None, doc_bytes=None, threads=0))]
#[allow(clippy::too_many_arguments)]
fn suffix_find_repeats_tokens<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, u32>,
    doc_offsets: PyReadonlyArray1<'py, i64>,
    min_length: usize,
    keep: &str,
    token_starts: Option<PyReadonlyArray1<'py, u64>>,
    doc_bytes: Option<PyReadonlyArray1<'py, u64>>,
    threads: usize,
) -> PyResult<SpanArrays<'py>> {
    let keep: Keep = keep.parse()?;
    let ids = ids.as_slice()?;
    let offs = doc_offsets.as_slice()?;
    let mut bounds = Vec::with_capacity(offs.len());
    for (i, &o) in offs.iter().enumerate() {
        if o < 0 {
            return Err(crate::Error::invalid_argument(format!("doc_offsets[{i}] is negative")).into());
        }
        bounds.push(o as usize);
    }
    let starts = token_starts.as_ref().map(|a| a.as_slice()).transpose()?;
    let dbytes = doc_bytes.as_ref().map(|a| a.as_slice()).transpose()?;
    let opts = RepeatOptions { min_length, keep, threads, width: IndexWidth::Auto };
    let (spans, stats) = super::detach_interruptible(py, || -> crate::Result<_> {
        let (spans, stats) = core::find_repeats_tokens(ids, &bounds, &opts)?;
        let spans = match (starts, dbytes) {
            (Some(s), Some(b)) => core::token_spans_to_bytes(&spans, &bounds, s, b)?,
            (None, None) => spans,
            _ => return Err(crate::Error::invalid_argument("give both token_starts and doc_bytes, or neither")),
        };
        Ok((spans, stats))
    })?;
    spans_out(py, spans, stats)
}

/// suffix_find_repeats_tokenized(docs, tokenizer, min_length, keep, threads=0,
///     memory_limit=None, work_dir=None, resume=False)
///     -> (doc, start, end, occurrences, stats); token mode, spans as byte ranges.
#[pyfunction]
#[pyo3(signature = (docs, tokenizer, min_length, keep, threads=0, memory_limit=None, work_dir=None, resume=false))]
#[allow(clippy::too_many_arguments)]
fn suffix_find_repeats_tokenized<'py>(
    py: Python<'py>,
    docs: DocsArg<'py>,
    tokenizer: PyRef<'py, super::bpe::PyTokenizer>,
    min_length: usize,
    keep: &str,
    threads: usize,
    memory_limit: Option<usize>,
    work_dir: Option<std::path::PathBuf>,
    resume: bool,
) -> PyResult<SpanArrays<'py>> {
    let keep: Keep = keep.parse()?;
    let view = docs.view()?;
    let opts = RepeatOptions { min_length, keep, threads, width: IndexWidth::Auto };
    let lim = limited(memory_limit, work_dir, resume);
    let tok = tokenizer.core();
    let (spans, stats) = super::detach_interruptible(py, || match memory_limit {
        None => core::find_repeats_tokenized(view, tok, &opts),
        Some(_) => core::find_repeats_tokenized_external(view, tok, &opts, &lim),
    })?;
    spans_out(py, spans, stats)
}

/// suffix_contamination_tokenized(train, eval, tokenizer, min_length, threads=0)
///     -> (eval_doc, start, end, train_occurrences, stats); token mode, byte spans.
#[pyfunction]
#[pyo3(signature = (train, eval, tokenizer, min_length, threads=0))]
fn suffix_contamination_tokenized<'py>(
    py: Python<'py>,
    train: DocsArg<'py>,
    eval: DocsArg<'py>,
    tokenizer: PyRef<'py, super::bpe::PyTokenizer>,
    min_length: usize,
    threads: usize,
) -> PyResult<SpanArrays<'py>> {
    let (tv, ev) = (train.view()?, eval.view()?);
    let opts = RepeatOptions { min_length, keep: Keep::None, threads, width: IndexWidth::Auto };
    let tok = tokenizer.core();
    let (spans, stats) = super::detach_interruptible(py, || core::contamination_tokenized(tv, ev, tok, &opts))?;
    spans_out(py, spans, stats)
}

/// suffix_contamination(train, eval, min_length, threads=0, force_64=False)
///     -> (eval_doc, start, end, train_occurrences, stats)
#[pyfunction]
#[pyo3(signature = (train, eval, min_length, threads=0, force_64=false))]
fn suffix_contamination<'py>(
    py: Python<'py>,
    train: DocsArg<'py>,
    eval: DocsArg<'py>,
    min_length: usize,
    threads: usize,
    force_64: bool,
) -> PyResult<SpanArrays<'py>> {
    let (t, e) = (train.view()?, eval.view()?);
    let opts = RepeatOptions { min_length, keep: Keep::None, threads, width: width(force_64) };
    let (spans, stats) = super::detach_interruptible(py, || core::contamination(t, e, &opts))?;
    spans_out(py, spans, stats)
}

/// suffix_trim(docs, doc, start, end) -> (data uint8, offsets int64): the documents with the
/// spans removed (spans sorted by doc then start, non-overlapping).
#[pyfunction]
fn suffix_trim<'py>(
    py: Python<'py>,
    docs: DocsArg<'py>,
    doc: PyReadonlyArray1<'py, i64>,
    start: PyReadonlyArray1<'py, i64>,
    end: PyReadonlyArray1<'py, i64>,
) -> PyResult<Trimmed<'py>> {
    let view = docs.view()?;
    let (d, s, e) = (doc.as_slice()?, start.as_slice()?, end.as_slice()?);
    if d.len() != s.len() || d.len() != e.len() {
        return Err(crate::Error::invalid_argument("doc, start and end must have the same length").into());
    }
    let mut spans = Vec::with_capacity(d.len());
    for i in 0..d.len() {
        if d[i] < 0 || s[i] < 0 || e[i] < 0 {
            return Err(crate::Error::invalid_argument(format!("span {i} has a negative value")).into());
        }
        spans.push(Span { doc: d[i] as usize, start: s[i] as usize, end: e[i] as usize, occurrences: 0 });
    }
    let (data, offsets) = py.detach(|| core::trim_docs(view, &spans))?;
    Ok((data.into_pyarray(py), offsets.into_pyarray(py)))
}

/// suffix_array(data: uint8[:], threads=0, force_64=False) -> int32[:] | int64[:]
#[pyfunction]
#[pyo3(signature = (data, threads=0, force_64=false))]
fn suffix_array_bytes<'py>(py: Python<'py>, data: PyReadonlyArray1<'py, u8>, threads: usize, force_64: bool) -> PyResult<Bound<'py, PyAny>> {
    let text = data.as_slice()?;
    let w = width(force_64).bytes_for(text.len())?;
    if w == 4 {
        let sa = super::detach_interruptible(py, || suffix_array::<u8, i32>(text, threads))?;
        Ok(sa.into_pyarray(py).into_any())
    } else {
        let sa = super::detach_interruptible(py, || suffix_array::<u8, i64>(text, threads))?;
        Ok(sa.into_pyarray(py).into_any())
    }
}

/// suffix_corpus_checksum(docs) -> int
#[pyfunction]
fn suffix_corpus_checksum<'py>(py: Python<'py>, docs: DocsArg<'py>) -> PyResult<u64> {
    let view = docs.view()?;
    Ok(py.detach(|| core::corpus_checksum(view)))
}

fn info_dict<'py>(py: Python<'py>, i: &IndexInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", i.version)?;
    d.set_item("sa_width", i.sa_width)?;
    d.set_item("num_docs", i.num_docs)?;
    d.set_item("text_bytes", i.text_len)?;
    d.set_item("file_bytes", i.file_len)?;
    d.set_item("corpus_checksum", i.corpus_checksum)?;
    d.set_item("has_ids", i.has_ids)?;
    Ok(d)
}

/// A memory-mapped suffix index (see `gristmill.suffix.SuffixIndex`).
#[pyclass(name = "NativeSuffixIndex", module = "gristmill._native", frozen)]
struct PySuffixIndex {
    inner: core::SuffixIndex,
}

#[pymethods]
impl PySuffixIndex {
    #[staticmethod]
    #[pyo3(signature = (docs, path, threads=0, force_64=false, ids=None))]
    fn build<'py>(
        py: Python<'py>,
        docs: DocsArg<'py>,
        path: PathBuf,
        threads: usize,
        force_64: bool,
        ids: Option<DocsArg<'py>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let view = docs.view()?;
        let ids_view = ids.as_ref().map(|d| d.view()).transpose()?;
        let info = super::detach_interruptible(py, || core::SuffixIndex::build_with_ids(view, ids_view, &path, threads, width(force_64)))?;
        info_dict(py, &info)
    }

    #[staticmethod]
    #[pyo3(signature = (path, verify=false))]
    fn open(py: Python<'_>, path: PathBuf, verify: bool) -> PyResult<Self> {
        let inner = py.detach(|| core::SuffixIndex::open(&path, verify))?;
        Ok(PySuffixIndex { inner })
    }

    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        info_dict(py, &self.inner.info())
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.verify())?;
        Ok(())
    }

    fn check_corpus<'py>(&self, py: Python<'py>, docs: DocsArg<'py>) -> PyResult<()> {
        let view = docs.view()?;
        py.detach(|| self.inner.check_corpus(view))?;
        Ok(())
    }

    fn count(&self, pattern: &[u8]) -> PyResult<u64> {
        Ok(self.inner.count(pattern)?)
    }

    fn locate<'py>(&self, py: Python<'py>, pattern: &[u8], limit: usize) -> PyResult<I64Pair<'py>> {
        let hits = py.detach(|| self.inner.locate(pattern, limit))?;
        let docs: Vec<i64> = hits.iter().map(|h| h.0 as i64).collect();
        let offs: Vec<i64> = hits.iter().map(|h| h.1 as i64).collect();
        Ok((docs.into_pyarray(py), offs.into_pyarray(py)))
    }

    /// document(i) -> str (a corrupted-index error when it is not UTF-8 any more)
    fn document(&self, i: usize) -> PyResult<String> {
        Ok(self.inner.document_str(i)?.to_owned())
    }

    /// doc_id(i) -> str | None: the stored id of document i (None without ids).
    fn doc_id(&self, i: usize) -> PyResult<Option<String>> {
        Ok(self.inner.doc_id(i)?.map(str::to_owned))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(suffix_find_repeats, m)?)?;
    m.add_function(wrap_pyfunction!(suffix_contamination, m)?)?;
    m.add_function(wrap_pyfunction!(suffix_find_repeats_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(suffix_find_repeats_tokenized, m)?)?;
    m.add_function(wrap_pyfunction!(suffix_contamination_tokenized, m)?)?;
    m.add_function(wrap_pyfunction!(suffix_trim, m)?)?;
    m.add_function(wrap_pyfunction!(suffix_array_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(suffix_corpus_checksum, m)?)?;
    m.add_class::<PySuffixIndex>()?;
    Ok(())
}
