//! Bindings for `crate::bpe`: a frozen `_Tokenizer` class; all compute runs detached.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyList, PyString};

use super::DocsArg;
use crate::bpe::vocab::{byte_level_decode, parse_tiktoken};
use crate::bpe::{Pretokenizer, SpecialSet, Tokenizer, Vocab};
use crate::Error;

/// Flat token ids and `n + 1` document offsets.
type TokensAndOffsets<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>);

#[pyclass(frozen, module = "gristmill._native", name = "_Tokenizer")]
pub(super) struct PyTokenizer {
    inner: Tokenizer,
    /// One Python int per token id, made on first use: lists of ids are built from these
    /// (a reference each) instead of a new int object per token.
    ints: std::sync::OnceLock<Vec<Py<PyAny>>>,
}

impl PyTokenizer {
    /// Wrap a core tokenizer (used by the trainer bindings).
    pub(super) fn from_core(inner: Tokenizer) -> Self {
        PyTokenizer { inner, ints: std::sync::OnceLock::new() }
    }

    /// `ids` as a Python list of int.
    fn id_list<'py>(&self, py: Python<'py>, ids: &[u32]) -> PyResult<Bound<'py, PyList>> {
        let ints = self.ints.get_or_init(|| {
            (0..self.inner.n_vocab() as u32)
                .map(|i| i.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|e| match e {}))
                .collect()
        });
        PyList::new(
            py,
            ids.iter().map(|&t| match ints.get(t as usize) {
                Some(o) => o.clone_ref(py),
                None => t.into_pyobject(py).map(|o| o.into_any().unbind()).unwrap_or_else(|e| match e {}),
            }),
        )
    }

    /// The core tokenizer (used by the suffix bindings' token mode).
    pub(super) fn core(&self) -> &Tokenizer {
        &self.inner
    }
}

fn special_set(t: &Tokenizer, arg: &Bound<'_, PyAny>) -> PyResult<SpecialSet> {
    if let Ok(s) = arg.cast::<PyString>() {
        if s.to_cow()? == "all" {
            return Ok(SpecialSet::All);
        }
        return Err(PyTypeError::new_err(
            "special-token set must be 'all' or a collection of strings",
        ));
    }
    let names: Vec<String> = arg.extract().map_err(|_| {
        PyTypeError::new_err("special-token set must be 'all' or a collection of strings")
    })?;
    if names.is_empty() {
        return Ok(SpecialSet::None);
    }
    let idx = t
        .special_tokens()
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| names.iter().any(|n| n == s))
        .map(|(i, _)| i)
        .collect();
    Ok(SpecialSet::Some(idx))
}

fn ids_u32(ids: &[i64]) -> Result<Vec<u32>, Error> {
    ids.iter()
        .enumerate()
        .map(|(i, &x)| {
            u32::try_from(x).map_err(|_| {
                Error::UnknownToken(format!(
                    "token id {x} (at position {i}) is not in the vocabulary"
                ))
            })
        })
        .collect()
}

#[pymethods]
impl PyTokenizer {
    /// Build from the contents of a `.tiktoken` file (uncompressed bytes).
    #[staticmethod]
    #[pyo3(signature = (data, source, pat_str, special_tokens))]
    fn from_tiktoken_bytes(
        py: Python<'_>,
        data: &[u8],
        source: &str,
        pat_str: &str,
        special_tokens: Vec<(String, u32)>,
    ) -> PyResult<Self> {
        let inner = py.detach(|| -> Result<Tokenizer, Error> {
            let ranks = parse_tiktoken(data, source)?;
            let vocab = Vocab::from_ranks(ranks)?;
            Tokenizer::new(vocab, Pretokenizer::new(pat_str)?, special_tokens)
        })?;
        Ok(PyTokenizer::from_core(inner))
    }

    /// Build from explicit `(token bytes, rank)` pairs (tiktoken semantics).
    #[staticmethod]
    #[pyo3(signature = (ranks, pat_str, special_tokens))]
    fn from_ranks(
        py: Python<'_>,
        ranks: Vec<(Vec<u8>, u32)>,
        pat_str: &str,
        special_tokens: Vec<(String, u32)>,
    ) -> PyResult<Self> {
        let inner = py.detach(|| -> Result<Tokenizer, Error> {
            Tokenizer::new(
                Vocab::from_ranks(ranks)?,
                Pretokenizer::new(pat_str)?,
                special_tokens,
            )
        })?;
        Ok(PyTokenizer::from_core(inner))
    }

    /// Build from a byte-level BPE vocabulary (GPT-2 character alphabet) and merge list.
    #[staticmethod]
    #[pyo3(signature = (vocab, merges, pat_str, special_tokens, ignore_merges=false, nfc=false))]
    fn from_byte_level(
        py: Python<'_>,
        vocab: Vec<(String, u32)>,
        merges: Vec<(String, String)>,
        pat_str: &str,
        special_tokens: Vec<(String, u32)>,
        ignore_merges: bool,
        nfc: bool,
    ) -> PyResult<Self> {
        let inner = py.detach(|| -> Result<Tokenizer, Error> {
            let dec = |s: &str, what: &str| {
                byte_level_decode(s).ok_or_else(|| {
                    Error::invalid_data(
                        what,
                        format!("{s:?} contains a character outside the byte-level alphabet"),
                    )
                })
            };
            let specials: std::collections::HashSet<&str> =
                special_tokens.iter().map(|(s, _)| s.as_str()).collect();
            let mut toks = Vec::with_capacity(vocab.len());
            for (s, id) in &vocab {
                match byte_level_decode(s) {
                    Some(b) => toks.push((b, *id)),
                    // Added tokens may appear in the vocabulary in plain text.
                    None if specials.contains(s.as_str()) => {}
                    None => {
                        return Err(Error::invalid_data(
                            format!("vocab token {id}"),
                            format!("{s:?} contains a character outside the byte-level alphabet"),
                        ))
                    }
                }
            }
            let mut ms = Vec::with_capacity(merges.len());
            for (k, (a, b)) in merges.iter().enumerate() {
                ms.push((
                    dec(a, &format!("merge {k}"))?,
                    dec(b, &format!("merge {k}"))?,
                ));
            }
            let v = Vocab::from_merges(toks, &ms, ignore_merges)?;
            Ok(Tokenizer::new(
                v,
                Pretokenizer::new(pat_str)?.keep_gaps(true),
                special_tokens,
            )?
            .with_nfc(nfc))
        })?;
        Ok(PyTokenizer::from_core(inner))
    }

    /// The normalizer applied before pre-tokenization: "NFC" or None.
    #[getter]
    fn normalizer(&self) -> Option<&'static str> {
        self.inner.normalizes_nfc().then_some("NFC")
    }

    #[getter]
    fn n_vocab(&self) -> usize {
        self.inner.n_vocab()
    }

    #[getter]
    fn pattern(&self) -> String {
        self.inner.pretokenizer().pattern().to_string()
    }

    #[getter]
    fn special_tokens(&self) -> Vec<(String, u32)> {
        self.inner.special_tokens().to_vec()
    }

    fn encode_ordinary<'py>(
        &self,
        py: Python<'py>,
        text: PyBackedStr,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let v = py.detach(|| self.inner.encode_ordinary(&text))?;
        Ok(v.into_pyarray(py))
    }

    /// `encode_ordinary` as a list of int (tiktoken's return type).
    fn encode_ordinary_list<'py>(&self, py: Python<'py>, text: PyBackedStr) -> PyResult<Bound<'py, PyList>> {
        let v = py.detach(|| self.inner.encode_ordinary(&text))?;
        self.id_list(py, &v)
    }

    /// `encode` as a list of int (tiktoken's return type).
    fn encode_list<'py>(
        &self,
        py: Python<'py>,
        text: PyBackedStr,
        allowed_special: &Bound<'py, PyAny>,
        disallowed_special: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let a = special_set(&self.inner, allowed_special)?;
        let d = special_set(&self.inner, disallowed_special)?;
        let v = py.detach(|| self.inner.encode(&text, &a, &d))?;
        self.id_list(py, &v)
    }

    /// Flat ids + `n + 1` offsets as `n` lists of int.
    fn split_lists<'py>(
        &self,
        py: Python<'py>,
        tokens: PyReadonlyArray1<'py, u32>,
        offsets: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let t = tokens.as_slice()?;
        let o = offsets.as_slice()?;
        let mut out = Vec::with_capacity(o.len().saturating_sub(1));
        for (i, w) in o.windows(2).enumerate() {
            out.push(self.id_list(py, &t[doc_range(i, w[0], w[1], t.len())?])?);
        }
        PyList::new(py, out)
    }

    fn encode<'py>(
        &self,
        py: Python<'py>,
        text: PyBackedStr,
        allowed_special: &Bound<'py, PyAny>,
        disallowed_special: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let a = special_set(&self.inner, allowed_special)?;
        let d = special_set(&self.inner, disallowed_special)?;
        let v = py.detach(|| self.inner.encode(&text, &a, &d))?;
        Ok(v.into_pyarray(py))
    }

    fn count(&self, py: Python<'_>, text: PyBackedStr) -> PyResult<usize> {
        Ok(py.detach(|| self.inner.count_ordinary(&text))?)
    }

    #[pyo3(signature = (docs, allowed_special, disallowed_special, ordinary, num_threads=None))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        docs: DocsArg<'py>,
        allowed_special: &Bound<'py, PyAny>,
        disallowed_special: &Bound<'py, PyAny>,
        ordinary: bool,
        num_threads: Option<usize>,
    ) -> PyResult<TokensAndOffsets<'py>> {
        if num_threads == Some(0) {
            return Err(Error::invalid_argument("num_threads must be at least 1").into());
        }
        let a = special_set(&self.inner, allowed_special)?;
        let d = special_set(&self.inner, disallowed_special)?;
        let view = docs.view()?;
        let (t, o) = py.detach(|| self.inner.encode_batch(view, &a, &d, ordinary, num_threads))?;
        Ok((t.into_pyarray(py), o.into_pyarray(py)))
    }

    fn decode_bytes<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ids = ids.as_slice()?;
        let b = py.detach(|| self.inner.decode_bytes(&ids_u32(ids)?))?;
        Ok(PyBytes::new(py, &b))
    }

    fn token_offsets<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let ids = ids.as_slice()?;
        let v = py.detach(|| self.inner.token_offsets(&ids_u32(ids)?))?;
        Ok(v.into_pyarray(py))
    }

    /// Decode documents given as flat ids + `n + 1` offsets; returns a list of bytes.
    fn decode_batch_bytes<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, i64>,
        offsets: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let ids = ids.as_slice()?;
        let offs = offsets.as_slice()?;
        let docs = py.detach(|| -> Result<Vec<Vec<u8>>, Error> {
            let mut out = Vec::with_capacity(offs.len().saturating_sub(1));
            for (i, w) in offs.windows(2).enumerate() {
                out.push(
                    self.inner
                        .decode_bytes(&ids_u32(&ids[doc_range(i, w[0], w[1], ids.len())?])?)
                        .map_err(|e| Error::UnknownToken(format!("document {i}: {e}")))?,
                );
            }
            Ok(out)
        })?;
        PyList::new(py, docs.iter().map(|d| PyBytes::new(py, d)))
    }

    fn token_bytes<'py>(&self, py: Python<'py>, id: i64) -> Option<Bound<'py, PyBytes>> {
        let id = u32::try_from(id).ok()?;
        self.inner.token_bytes(id).map(|b| PyBytes::new(py, b))
    }

    fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        self.inner.vocab().token_id(bytes)
    }

    /// Byte ranges of the pre-tokenized pieces of `text`, as an `(n, 2)` array.
    fn pretokenize<'py>(
        &self,
        py: Python<'py>,
        text: PyBackedStr,
    ) -> PyResult<Bound<'py, PyArray2<u64>>> {
        let v = py.detach(|| self.inner.pretokenizer().pieces(&text))?;
        let flat: Vec<u64> = v
            .iter()
            .flat_map(|r| [r.start as u64, r.end as u64])
            .collect();
        let n = v.len();
        flat.into_pyarray(py).reshape([n, 2])
    }

    /// The ordered merge list as an `(m, 3)` array of `(left, right, merged)` ids.
    fn merges<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let m = py.detach(|| self.inner.vocab().merges());
        let n = m.len();
        let flat: Vec<u32> = m.into_iter().flat_map(|(a, b, c)| [a, b, c]).collect();
        flat.into_pyarray(py).reshape([n, 3])
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenizer>()?;
    Ok(())
}

/// The ids of document `i` given `n + 1` offsets (`a = offsets[i]`, `b = offsets[i + 1]`)
/// into `len` ids, or an error naming the bad range.
fn doc_range(i: usize, a: i64, b: i64, len: usize) -> Result<std::ops::Range<usize>, Error> {
    if a < 0 || b < a || b as u64 > len as u64 {
        return Err(Error::invalid_argument(format!("offsets {i}..{}: invalid range {a}..{b}", i + 1)));
    }
    Ok(a as usize..b as usize)
}
