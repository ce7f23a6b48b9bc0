//! Bindings for `crate::minhash`: signatures, shingles, LSH parameters and clustering.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::bpe::PyTokenizer;
use super::DocsArg;
use crate::minhash::lsh::{self, SigView, Verify};
use crate::minhash::shingle::{self, ShingleConfig, Unit};
use crate::minhash::signature::{self, Scheme, Signatures};
use crate::Error;

/// `(unit, n, lowercase, strip_punct, fold_digits, nfkc, tokenizer)` from Python
/// (`tokenizer`: a `_Tokenizer` for unit "token", else None).
type ShingleTuple<'py> = (String, usize, bool, bool, bool, bool, Option<Bound<'py, PyTokenizer>>);

fn shingle_cfg<'a>(t: &'a ShingleTuple<'_>) -> PyResult<ShingleConfig<'a>> {
    let cfg = ShingleConfig {
        unit: Unit::parse(&t.0)?,
        n: t.1,
        lowercase: t.2,
        strip_punct: t.3,
        fold_digits: t.4,
        nfkc: t.5,
        tokenizer: t.6.as_ref().map(|b| b.get().core()),
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Run `f` in a rayon pool of `threads` threads (None/0: the global pool).
fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> crate::Result<T> {
    match threads {
        None | Some(0) => Ok(f()),
        Some(k) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(k)
                .build()
                .map_err(|e| Error::invalid_argument(format!("cannot start {k} threads: {e}")))?;
            Ok(pool.install(f))
        }
    }
}

fn build_scheme(scheme: &str, a: &[u64], b: &[u64]) -> PyResult<Scheme> {
    let to32 = |v: &[u64], what: &str| -> PyResult<Vec<u32>> {
        v.iter()
            .map(|&x| u32::try_from(x).map_err(|_| Error::invalid_argument(format!("32-bit scheme parameter {what} = {x} does not fit in 32 bits")).into()))
            .collect()
    };
    let s = match scheme {
        "fast" => Scheme::Fast { a: to32(a, "a")?, b: to32(b, "b")? },
        "affine32" => Scheme::DatasketchAffine32 { a: to32(a, "a")?, b: to32(b, "b")? },
        "affine64" => Scheme::DatasketchAffine64 { a: a.to_vec(), b: b.to_vec() },
        "legacy" => Scheme::DatasketchLegacy { a: a.to_vec(), b: b.to_vec() },
        other => {
            return Err(Error::invalid_argument(format!(
                "scheme must be 'fast', 'affine32', 'affine64' or 'legacy', got {other:?}"
            ))
            .into())
        }
    };
    s.validate()?;
    Ok(s)
}

type ArrayPair<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>);

/// minhash_fast_params(num_perm, seed) -> (a, b): parameters of the fast scheme.
#[pyfunction]
fn minhash_fast_params<'py>(py: Python<'py>, num_perm: usize, seed: u64) -> PyResult<ArrayPair<'py>> {
    match Scheme::fast(num_perm, seed)? {
        Scheme::Fast { a, b } => {
            let widen = |v: Vec<u32>| v.into_iter().map(u64::from).collect::<Vec<u64>>();
            Ok((PyArray1::from_vec(py, widen(a)), PyArray1::from_vec(py, widen(b))))
        }
        _ => unreachable!("Scheme::fast returns the fast scheme"),
    }
}

/// minhash_signatures(docs, shingle, scheme, a, b, threads=None) -> ndarray[n, num_perm]
#[pyfunction]
#[pyo3(signature = (docs, shingle, scheme, a, b, threads=None))]
fn minhash_signatures<'py>(
    py: Python<'py>,
    docs: DocsArg<'py>,
    shingle: ShingleTuple<'py>,
    scheme: &str,
    a: PyReadonlyArray1<'py, u64>,
    b: PyReadonlyArray1<'py, u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = shingle_cfg(&shingle)?;
    let scheme = build_scheme(scheme, a.as_slice()?, b.as_slice()?)?;
    let view = docs.view()?;
    let p = scheme.num_perm();
    let n = view.len();
    let sig = py.detach(|| with_threads(threads, || signature::signatures(view, &cfg, &scheme)))??;
    Ok(match sig {
        Signatures::U32(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
        Signatures::U64(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
    })
}

/// minhash_signatures_of_strs(texts, shingle, scheme, a, b, threads=None) -> ndarray[n, num_perm]
///
/// Documents as a Python list or tuple of `str`: each str's UTF-8 is borrowed (CPython's
/// cached copy, no Arrow conversion), a reference to every str is held while the work runs
/// without the GIL, so the bytes stay valid even if the list is changed meanwhile.
#[pyfunction]
#[pyo3(signature = (texts, shingle, scheme, a, b, threads=None))]
fn minhash_signatures_of_strs<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
    shingle: ShingleTuple<'py>,
    scheme: &str,
    a: PyReadonlyArray1<'py, u64>,
    b: PyReadonlyArray1<'py, u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = shingle_cfg(&shingle)?;
    let scheme = build_scheme(scheme, a.as_slice()?, b.as_slice()?)?;
    let mut held: Vec<Bound<'py, PyString>> = Vec::new();
    for_each_item(texts, |i, item| {
        let s = item.cast::<PyString>().map_err(|_| {
            let t = item.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            PyTypeError::new_err(format!("texts[{i}] is {t}, expected str"))
        })?;
        held.push(s.clone());
        Ok(())
    })?;
    let mut slices: Vec<&[u8]> = Vec::with_capacity(held.len());
    for (i, s) in held.iter().enumerate() {
        slices.push(str_utf8(s).map_err(|e| PyValueError::new_err(format!("texts[{i}] is not valid Unicode text: {e}")))?);
    }
    let p = scheme.num_perm();
    let n = slices.len();
    let slices = &slices;
    let sig = py.detach(|| with_threads(threads, || signature::signatures_with(n, |i| slices[i], &cfg, &scheme)))??;
    drop(held);
    Ok(match sig {
        Signatures::U32(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
        Signatures::U64(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
    })
}

/// minhash_signatures_of_sets(items, groups, scheme, a, b, threads=None) -> ndarray[n, num_perm]
///
/// Pre-made shingles: `items` is a string column of shingles, set `i` is items
/// `groups[i]..groups[i+1]`.
#[pyfunction]
#[pyo3(signature = (items, groups, scheme, a, b, threads=None))]
fn minhash_signatures_of_sets<'py>(
    py: Python<'py>,
    items: DocsArg<'py>,
    groups: PyReadonlyArray1<'py, i64>,
    scheme: &str,
    a: PyReadonlyArray1<'py, u64>,
    b: PyReadonlyArray1<'py, u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let scheme = build_scheme(scheme, a.as_slice()?, b.as_slice()?)?;
    let view = items.view()?;
    let groups = groups.as_slice()?;
    let p = scheme.num_perm();
    let n = groups.len().saturating_sub(1);
    let sig = py.detach(|| with_threads(threads, || signature::signatures_of_sets(view, groups, &scheme)))??;
    Ok(match sig {
        Signatures::U32(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
        Signatures::U64(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
    })
}

extern "C" {
    // Part of CPython's API in every 3.x (stable ABI from 3.10); declared here because the
    // abi3-py39 bindings do not expose it. Returns the str's cached UTF-8 (no copy).
    fn PyUnicode_AsUTF8AndSize(o: *mut pyo3::ffi::PyObject, size: *mut pyo3::ffi::Py_ssize_t) -> *const std::os::raw::c_char;
}

/// The UTF-8 bytes of a Python `str`, borrowed from the object (CPython caches them).
fn str_utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a [u8]> {
    let mut n: pyo3::ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live str object; the returned buffer lives as long as the object,
    // which `'a` borrows; on failure CPython sets an exception and returns NULL.
    let p = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut n) };
    if p.is_null() {
        return Err(PyErr::fetch(s.py()));
    }
    // SAFETY: CPython guarantees `n` valid bytes at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) })
}

/// Call `f` with every item of a list, a tuple or (slower) any iterable.
fn for_each_item<'py>(ob: &Bound<'py, PyAny>, mut f: impl FnMut(usize, &Bound<'py, PyAny>) -> PyResult<()>) -> PyResult<()> {
    if let Ok(l) = ob.cast::<PyList>() {
        for (j, x) in l.iter().enumerate() {
            f(j, &x)?;
        }
    } else if let Ok(t) = ob.cast::<PyTuple>() {
        for (j, x) in t.iter().enumerate() {
            f(j, &x)?;
        }
    } else {
        for (j, x) in ob.try_iter()?.enumerate() {
            f(j, &x?)?;
        }
    }
    Ok(())
}

/// Hash every shingle of every set (sequences of `str`) with `hash`: flat hashes and
/// `n + 1` set offsets.
fn hash_lists<'py>(py: Python<'py>, sets: &Bound<'py, PyAny>, hash: impl Fn(&[u8]) -> u64) -> PyResult<(Vec<u64>, Vec<usize>)> {
    let mut hashes: Vec<u64> = Vec::new();
    let mut groups = vec![0usize];
    let mut spans: Vec<(*const u8, usize)> = Vec::new();
    for_each_item(sets, |i, set| {
        if set.is_instance_of::<PyString>() || set.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(format!("shingle set {i} must be a sequence of str, not a single {}", set.get_type().name()?)));
        }
        let not_str = |j: usize, item: &Bound<'py, PyAny>| {
            let t = item.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            PyTypeError::new_err(format!("shingles: set {i} item {j} is a {t}, expected a str"))
        };
        if let Ok(list) = set.cast::<PyList>() {
            // The hot path: borrowed items, no reference counting, no Python code runs
            // while the list is read (the GIL is held throughout).
            let len = list.len();
            hashes.reserve(len);
            let utf8 = |j: usize| -> PyResult<&[u8]> {
                // SAFETY: `j < len` and the list cannot change: we hold the GIL and call
                // no Python code between the length check and the read.
                let item = unsafe { pyo3::ffi::PyList_GetItem(list.as_ptr(), j as pyo3::ffi::Py_ssize_t) };
                if item.is_null() {
                    return Err(PyErr::fetch(py));
                }
                let mut n: pyo3::ffi::Py_ssize_t = 0;
                // SAFETY: `item` is a live object; for a str CPython returns its cached
                // UTF-8 (valid while the list holds the str), otherwise NULL + TypeError.
                let p = unsafe { PyUnicode_AsUTF8AndSize(item, &mut n) };
                if p.is_null() {
                    let err = PyErr::fetch(py);
                    // SAFETY: a non-NULL borrowed reference from a list we hold.
                    let item = unsafe { Bound::from_borrowed_ptr(py, item) };
                    return Err(if item.is_instance_of::<PyString>() { err } else { not_str(j, &item) });
                }
                // SAFETY: CPython guarantees `n` valid bytes at `p`, alive while the list
                // holds the str (it cannot change while we hold the GIL, see above).
                Ok(unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) })
            };
            // All items are fetched first, then hashed in a tight loop: consecutive hashes
            // are independent, so their multiply chains overlap instead of each waiting
            // behind two CPython calls.
            spans.clear();
            for j in 0..len {
                let s = utf8(j)?;
                spans.push((s.as_ptr(), s.len()));
            }
            // SAFETY: every span was returned by `utf8` for a str the list holds, and no
            // Python code has run since (GIL held), so the bytes are still alive.
            hashes.extend(spans.iter().map(|&(p, n)| hash(unsafe { std::slice::from_raw_parts(p, n) })));
            groups.push(hashes.len());
            return Ok(());
        }
        for_each_item(set, |j, item| {
            let s = item.cast::<PyString>().map_err(|_| not_str(j, item))?;
            hashes.push(hash(str_utf8(s)?));
            Ok(())
        })
        .map_err(|e| if e.is_instance_of::<PyTypeError>(set.py()) { e } else { PyTypeError::new_err(format!("shingle set {i}: {e}")) })?;
        groups.push(hashes.len());
        Ok(())
    })?;
    Ok((hashes, groups))
}

/// minhash_signatures_of_lists(sets, scheme, a, b, threads=None) -> ndarray[n, num_perm]
///
/// Pre-made shingles as Python sequences of `str`: every shingle's UTF-8 is borrowed from
/// its object (no copy, no intermediate objects) and hashed while iterating; the
/// permutations then run without the GIL, in parallel over sets.
#[pyfunction]
#[pyo3(signature = (sets, scheme, a, b, threads=None))]
fn minhash_signatures_of_lists<'py>(
    py: Python<'py>,
    sets: &Bound<'py, PyAny>,
    scheme: &str,
    a: PyReadonlyArray1<'py, u64>,
    b: PyReadonlyArray1<'py, u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let scheme = build_scheme(scheme, a.as_slice()?, b.as_slice()?)?;
    if sets.is_instance_of::<PyString>() || sets.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err("shingle_sets must be a sequence of sequences of str"));
    }
    // one instantiation per base hash, so the hash inlines into the list loop
    let (hashes, groups) = match scheme {
        Scheme::Fast { .. } => hash_lists(py, sets, xxhash_rust::xxh3::xxh3_64)?,
        _ => hash_lists(py, sets, |b| scheme.base_hash(b))?,
    };
    let p = scheme.num_perm();
    let n = groups.len() - 1;
    let sig = py.detach(|| with_threads(threads, || signature::signatures_of_hashed_sets(&hashes, &groups, &scheme)))??;
    Ok(match sig {
        Signatures::U32(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
        Signatures::U64(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
    })
}

/// minhash_shingles(text, shingle) -> list[str]
#[pyfunction]
fn minhash_shingles(text: &str, shingle: ShingleTuple<'_>) -> PyResult<Vec<String>> {
    let cfg = shingle_cfg(&shingle)?;
    Ok(shingle::shingles(text, &cfg)?)
}

/// minhash_token_shingles(text, shingle) -> list[tuple[int, ...]]: the ids of every token shingle.
#[pyfunction]
fn minhash_token_shingles(text: &str, shingle: ShingleTuple<'_>) -> PyResult<Vec<Vec<u32>>> {
    let cfg = shingle_cfg(&shingle)?;
    Ok(shingle::token_shingles(text, &cfg)?)
}

/// minhash_shingle_counts(docs, shingle, threads=None) -> ndarray[uint32]: distinct shingles per doc.
#[pyfunction]
#[pyo3(signature = (docs, shingle, threads=None))]
fn minhash_shingle_counts<'py>(py: Python<'py>, docs: DocsArg<'py>, shingle: ShingleTuple<'py>, threads: Option<usize>) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let cfg = shingle_cfg(&shingle)?;
    let view = docs.view()?;
    let c = py.detach(|| with_threads(threads, || signature::shingle_counts(view, &cfg)))??;
    Ok(PyArray1::from_vec(py, c))
}

/// lsh_optimal_params(threshold, num_perm, fp_weight, fn_weight) -> (bands, rows)
#[pyfunction]
fn lsh_optimal_params(py: Python<'_>, threshold: f64, num_perm: usize, fp_weight: f64, fn_weight: f64) -> PyResult<(usize, usize)> {
    Ok(py.detach(|| lsh::optimal_params(threshold, num_perm, fp_weight, fn_weight))?)
}

/// lsh_check_bands(num_perm, bands, rows) -> None (raises on a bad layout)
#[pyfunction]
fn lsh_check_bands(num_perm: usize, bands: usize, rows: usize) -> PyResult<()> {
    Ok(lsh::check_bands(num_perm, bands, rows)?)
}

/// A C-contiguous 2-D signature matrix of uint32 or uint64.
enum SigArg<'py> {
    U32(PyReadonlyArray2<'py, u32>),
    U64(PyReadonlyArray2<'py, u64>),
}

impl<'py> SigArg<'py> {
    fn extract(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        let s = if let Ok(a) = ob.extract::<PyReadonlyArray2<'py, u32>>() {
            SigArg::U32(a)
        } else if let Ok(a) = ob.extract::<PyReadonlyArray2<'py, u64>>() {
            SigArg::U64(a)
        } else {
            return Err(PyTypeError::new_err("signatures must be a 2-D uint32 or uint64 numpy array"));
        };
        let contiguous = match &s {
            SigArg::U32(a) => a.is_c_contiguous(),
            SigArg::U64(a) => a.is_c_contiguous(),
        };
        if !contiguous {
            return Err(PyTypeError::new_err("signatures must be C-contiguous (use np.ascontiguousarray)"));
        }
        Ok(s)
    }
    fn shape(&self) -> (usize, usize) {
        let s = match self {
            SigArg::U32(a) => a.shape(),
            SigArg::U64(a) => a.shape(),
        };
        (s[0], s[1])
    }
    fn view(&self) -> PyResult<SigView<'_>> {
        Ok(match self {
            SigArg::U32(a) => SigView::U32(a.as_slice()?),
            SigArg::U64(a) => SigView::U64(a.as_slice()?),
        })
    }
}

/// lsh_band_keys(signatures, bands, rows, threads=None) -> ndarray[n, bands] uint64
#[pyfunction]
#[pyo3(signature = (signatures, bands, rows, threads=None))]
fn lsh_band_keys<'py>(py: Python<'py>, signatures: &Bound<'py, PyAny>, bands: usize, rows: usize, threads: Option<usize>) -> PyResult<Bound<'py, PyAny>> {
    let sig = SigArg::extract(signatures)?;
    let (n, p) = sig.shape();
    let view = sig.view()?;
    let keys = py.detach(|| with_threads(threads, || lsh::band_keys(view, p, bands, rows)))??;
    Ok(PyArray1::from_vec(py, keys).reshape([n, bands])?.into_any())
}

/// lsh_candidate_mask(signatures, bands, rows, eligible, threads=None) -> bool array:
/// which documents share a band with another eligible document.
#[pyfunction]
#[pyo3(signature = (signatures, bands, rows, eligible, threads=None))]
fn lsh_candidate_mask<'py>(
    py: Python<'py>,
    signatures: &Bound<'py, PyAny>,
    bands: usize,
    rows: usize,
    eligible: PyReadonlyArray1<'py, bool>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<bool>>> {
    let sig = SigArg::extract(signatures)?;
    let (n, p) = sig.shape();
    let view = sig.view()?;
    let eligible = eligible.as_slice()?;
    let mask = py.detach(|| {
        with_threads(threads, || -> crate::Result<Vec<bool>> {
            let keys = lsh::band_keys(view, p, bands, rows)?;
            let groups = lsh::candidate_groups(&keys, bands, eligible)?;
            let mut mask = vec![false; n];
            for &d in &groups.members {
                mask[d as usize] = true;
            }
            Ok(mask)
        })
    })??;
    Ok(PyArray1::from_vec(py, mask))
}

/// lsh_cluster(signatures, bands, rows, eligible, scores=None, verify_docs=None,
///             shingle=None, threshold=None, threads=None) -> dict
///
/// Candidate groups → connected components (optionally verified) → kept document per
/// cluster → report columns. See `crate::minhash::lsh`.
#[pyfunction]
#[pyo3(signature = (signatures, bands, rows, eligible, scores=None, verify_docs=None, shingle=None, threshold=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn lsh_cluster<'py>(
    py: Python<'py>,
    signatures: &Bound<'py, PyAny>,
    bands: usize,
    rows: usize,
    eligible: PyReadonlyArray1<'py, bool>,
    scores: Option<PyReadonlyArray1<'py, f64>>,
    verify_docs: Option<DocsArg<'py>>,
    shingle: Option<ShingleTuple<'py>>,
    threshold: Option<f64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let sig = SigArg::extract(signatures)?;
    let (n, p) = sig.shape();
    let view = sig.view()?;
    let eligible = eligible.as_slice()?;
    let scores_slice = match &scores {
        Some(s) => Some(s.as_slice()?),
        None => None,
    };
    let docs_view = match &verify_docs {
        Some(d) => Some(d.view()?),
        None => None,
    };
    let cfg = match &shingle {
        Some(t) => Some(shingle_cfg(t)?),
        None => None,
    };
    let verify = match (docs_view, &cfg, threshold) {
        (Some(docs), Some(cfg), Some(threshold)) => Some(Verify { docs, cfg, threshold }),
        (None, _, _) => None,
        _ => return Err(Error::invalid_argument("verification needs verify_docs, shingle and threshold").into()),
    };
    let (roots, kept, report, edges, stats) = py.detach(|| {
        with_threads(threads, || -> crate::Result<_> {
            let keys = lsh::band_keys(view, p, bands, rows)?;
            let groups = lsh::candidate_groups(&keys, bands, eligible)?;
            drop(keys);
            let (roots, sets, edges, stats) = lsh::components(n, &groups, verify.as_ref())?;
            let kept = lsh::kept_per_doc(&roots, scores_slice)?;
            let report = lsh::cluster_report(view, p, &roots, &kept, sets.as_deref());
            Ok((roots, kept, report, edges, stats))
        })
    })??;
    let d = PyDict::new(py);
    d.set_item("component", PyArray1::from_vec(py, roots))?;
    d.set_item("kept_doc", PyArray1::from_vec(py, kept))?;
    d.set_item("r_cluster", PyArray1::from_vec(py, report.cluster))?;
    d.set_item("r_doc", PyArray1::from_vec(py, report.doc))?;
    d.set_item("r_kept_doc", PyArray1::from_vec(py, report.kept_doc))?;
    d.set_item("r_is_kept", PyArray1::from_vec(py, report.is_kept))?;
    d.set_item("r_est_jaccard", PyArray1::from_vec(py, report.est_jaccard))?;
    match report.exact_jaccard {
        Some(v) => d.set_item("r_exact_jaccard", PyArray1::from_vec(py, v))?,
        None => d.set_item("r_exact_jaccard", py.None())?,
    }
    d.set_item("e_a", PyArray1::from_vec(py, edges.a))?;
    d.set_item("e_b", PyArray1::from_vec(py, edges.b))?;
    d.set_item("e_jaccard", PyArray1::from_vec(py, edges.jaccard))?;
    d.set_item("candidate_groups", stats.candidate_groups)?;
    d.set_item("candidate_pairs", stats.candidate_pairs)?;
    d.set_item("verified_pairs", stats.verified_pairs)?;
    d.set_item("rejected_pairs", stats.rejected_pairs)?;
    Ok(d)
}

/// The persistent LSH index (see `crate::minhash::index`); wrapped by
/// `gristmill.minhash.MinHashIndex`.
#[pyclass(name = "MinHashIndexCore", module = "gristmill._native")]
struct PyMinHashIndex {
    inner: crate::minhash::index::MinHashIndex,
}

#[pymethods]
impl PyMinHashIndex {
    #[new]
    fn new(path: std::path::PathBuf, num_perm: u32, bands: u32, rows: u32, sig_bytes: u32, meta: String) -> PyResult<Self> {
        let params = crate::minhash::index::IndexParams { num_perm, bands, rows, sig_bytes, meta };
        Ok(PyMinHashIndex { inner: crate::minhash::index::MinHashIndex::open(path, &params)? })
    }

    /// insert(keys, signatures): signatures is a 2-D array with one row per key.
    fn insert(&mut self, py: Python<'_>, keys: Vec<String>, signatures: &Bound<'_, PyAny>) -> PyResult<()> {
        let sig = SigArg::extract(signatures)?;
        let view = sig.view()?;
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.insert(&keys, view))?)
    }

    /// query(signature) -> list[str]: keys of the items sharing a band with one signature.
    fn query(&self, py: Python<'_>, signature: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let sig = SigArg::extract(signature)?;
        let view = sig.view()?;
        let ids = py.detach(|| self.inner.query(view))?;
        Ok(ids.iter().filter_map(|&i| self.inner.key(i).map(str::to_owned)).collect())
    }

    /// query_first(signatures) -> int64 array: smallest candidate item id per row, or -1.
    fn query_first<'py>(&self, py: Python<'py>, signatures: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let sig = SigArg::extract(signatures)?;
        let view = sig.view()?;
        let v = py.detach(|| self.inner.query_first(view))?;
        Ok(PyArray1::from_vec(py, v))
    }

    /// key(id) -> str
    fn key(&self, id: u64) -> PyResult<String> {
        self.inner
            .key(id)
            .map(str::to_owned)
            .ok_or_else(|| Error::invalid_argument(format!("no item with id {id}")).into())
    }

    fn contains(&self, key: &str) -> bool {
        self.inner.contains(key)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn num_runs(&self) -> usize {
        self.inner.num_runs()
    }

    fn compact(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.compact())?)
    }

    /// (num_perm, bands, rows, sig_bytes, meta) stored in the header.
    fn params(&self) -> (u32, u32, u32, u32, String) {
        let p = self.inner.params();
        (p.num_perm, p.bands, p.rows, p.sig_bytes, p.meta.clone())
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMinHashIndex>()?;
    m.add_function(wrap_pyfunction!(minhash_fast_params, m)?)?;
    m.add_function(wrap_pyfunction!(minhash_signatures, m)?)?;
    m.add_function(wrap_pyfunction!(minhash_signatures_of_strs, m)?)?;
    m.add_function(wrap_pyfunction!(minhash_shingles, m)?)?;
    m.add_function(wrap_pyfunction!(minhash_token_shingles, m)?)?;
    m.add_function(wrap_pyfunction!(minhash_signatures_of_sets, m)?)?;
    m.add_function(wrap_pyfunction!(minhash_signatures_of_lists, m)?)?;
    m.add_function(wrap_pyfunction!(minhash_shingle_counts, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_optimal_params, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_check_bands, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_band_keys, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_cluster, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_candidate_mask, m)?)?;
    Ok(())
}
