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
use crate::minhash::star::{self, ClusterMode, Confirm};
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

/// Run `f` in a rayon pool of `threads` threads (None/0: the global pool). Pools are kept
/// for reuse (a few thread counts): starting threads on every call costs a noticeable
/// fraction of a small batch.
pub(super) fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> crate::Result<T> {
    use std::sync::{Arc, Mutex};
    static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    const KEEP: usize = 8;
    match threads {
        None | Some(0) => Ok(f()),
        Some(k) => {
            let cached = POOLS.lock().ok().and_then(|p| p.iter().find(|(n, _)| *n == k).map(|(_, pool)| pool.clone()));
            let pool = match cached {
                Some(pool) => pool,
                None => {
                    let pool = Arc::new(
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(k)
                            .build()
                            .map_err(|e| Error::invalid_argument(format!("cannot start {k} threads: {e}")))?,
                    );
                    if let Ok(mut p) = POOLS.lock() {
                        if p.len() < KEEP {
                            p.push((k, pool.clone()));
                        }
                    }
                    pool
                }
            };
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

/// `n` signatures of `p` values as an `n × p` numpy matrix (uint32 or uint64), no copy.
fn sig_matrix(py: Python<'_>, sig: Signatures, n: usize, p: usize) -> PyResult<Bound<'_, PyAny>> {
    Ok(match sig {
        Signatures::U32(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
        Signatures::U64(v) => PyArray1::from_vec(py, v).reshape([n, p])?.into_any(),
    })
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
    sig_matrix(py, sig, n, p)
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
    sig_matrix(py, sig, n, p)
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
    sig_matrix(py, sig, n, p)
}

extern "C" {
    // Part of CPython's API in every 3.x (stable ABI from 3.10); declared here because the
    // abi3-py39 bindings do not expose it. Returns the str's cached UTF-8 (no copy).
    fn PyUnicode_AsUTF8AndSize(o: *mut pyo3::ffi::PyObject, size: *mut pyo3::ffi::Py_ssize_t) -> *const std::os::raw::c_char;
}

/// Where CPython keeps a compact ASCII `str`'s characters, measured at run time.
///
/// Under the stable ABI (abi3) the `str` object layout is not visible, and
/// `PyUnicode_AsUTF8AndSize` (a call with its own checks per item) is the portable way
/// to read a `str`. For the common case — an exact `str` whose characters are all ASCII,
/// stored inline after a fixed header — every CPython 3.x (GIL build) keeps `length`
/// at byte 16 and a `state` word at byte 32 of the object, and the UTF-8 bytes are the
/// characters themselves at a fixed offset. [`AsciiLayout::probe`] checks all of that on
/// probe strings through the public API (offsets and lengths returned by
/// `PyUnicode_AsUTF8AndSize`, non-ASCII and interned probes) and refuses on any
/// disagreement; items that are not exact `str` or whose state word differs take the
/// public call.
#[derive(Clone, Copy)]
struct AsciiLayout {
    data_offset: usize,
    state_mask: u32,
    state_value: u32,
}

const LENGTH_OFFSET: usize = 16;
const STATE_OFFSET: usize = 32;
const LIST_ITEMS_OFFSET: usize = 24;

impl AsciiLayout {
    fn get(py: Python<'_>) -> Option<AsciiLayout> {
        static LAYOUT: std::sync::OnceLock<Option<AsciiLayout>> = std::sync::OnceLock::new();
        *LAYOUT.get_or_init(|| Self::probe(py))
    }

    fn probe(py: Python<'_>) -> Option<AsciiLayout> {
        if std::env::var_os("GRISTMILL_NO_ASCII_FAST_PATH").is_some() {
            return None;
        }
        let is_cpython = py
            .import("sys")
            .and_then(|m| m.getattr("implementation"))
            .and_then(|i| i.getattr("name"))
            .and_then(|n| n.extract::<String>())
            .is_ok_and(|n| n == "cpython");
        if !is_cpython {
            return None;
        }
        // (object, UTF-8 pointer, UTF-8 length, header length word, state word)
        let facts = |s: &Bound<'_, PyString>| -> Option<(usize, usize, usize, i64, u32)> {
            let ob = s.as_ptr();
            let mut n: pyo3::ffi::Py_ssize_t = 0;
            // SAFETY: `s` is a live str.
            let p = unsafe { PyUnicode_AsUTF8AndSize(ob, &mut n) };
            if p.is_null() {
                let _ = PyErr::take(py);
                return None;
            }
            // SAFETY: every str object is larger than 36 bytes (header of at least 40);
            // unaligned reads of plain integers inside it.
            let (len, state) = unsafe {
                (
                    std::ptr::read_unaligned((ob as *const u8).add(LENGTH_OFFSET) as *const i64),
                    std::ptr::read_unaligned((ob as *const u8).add(STATE_OFFSET) as *const u32),
                )
            };
            Some((ob as usize, p as usize, n as usize, len, state))
        };
        let long = "0123456789".repeat(20);
        let ascii = [
            ("gristmill ascii layout probe, a longer string of plain text", false),
            ("x", false),
            ("", false),
            ("gristmill_ascii_probe_interned", true),
            (long.as_str(), false),
        ];
        let mut offset = None;
        let (mut all_and, mut all_or) = (u32::MAX, 0u32);
        for (text, interned) in ascii {
            let s = if interned { PyString::intern(py, text) } else { PyString::new(py, text) };
            let (ob, p, n, len, state) = facts(&s)?;
            let off = p.checked_sub(ob)?;
            if !(24..=128).contains(&off) || *offset.get_or_insert(off) != off || len != n as i64 || n != text.len() {
                return None;
            }
            all_and &= state;
            all_or |= state;
        }
        // bits equal in every ASCII probe (interning may differ)
        let state_mask = !(all_and ^ all_or);
        let state_value = all_and & state_mask;
        for text in ["café", "πρ", "\u{1F600}", "ascii then é"] {
            let s = PyString::new(py, text);
            let (_, _, _, _, state) = facts(&s)?;
            if state & state_mask == state_value {
                return None; // the state word does not tell ASCII from the rest
            }
        }
        // A list keeps its item pointers in an array whose address is the word after
        // the variable-size header (refcount, type, size); check it against the API.
        let items = [PyString::new(py, "a"), PyString::new(py, "b"), PyString::new(py, "c")];
        let list = PyList::new(py, &items).ok()?;
        // SAFETY: a list object is larger than 32 bytes; plain word reads inside it.
        let (size, arr) = unsafe {
            let base = list.as_ptr() as *const u8;
            (
                std::ptr::read_unaligned(base.add(16) as *const isize),
                std::ptr::read_unaligned(base.add(LIST_ITEMS_OFFSET) as *const *const *mut pyo3::ffi::PyObject),
            )
        };
        if size != 3 || arr.is_null() {
            return None;
        }
        for k in 0..3 {
            // SAFETY: `k < 3`, the list's length; `arr` checked non-null above and is
            // validated here item by item against the public call.
            let (direct, api) = unsafe { (*arr.add(k), pyo3::ffi::PyList_GetItem(list.as_ptr(), k as isize)) };
            if direct != api {
                return None;
            }
        }
        Some(AsciiLayout { data_offset: offset?, state_mask, state_value })
    }

    /// The item array of a list (valid until the list is changed).
    ///
    /// # Safety
    /// `list` is a live list (or list subclass) and the GIL is held.
    #[inline(always)]
    unsafe fn list_items(list: *mut pyo3::ffi::PyObject) -> *const *mut pyo3::ffi::PyObject {
        // SAFETY: `probe` found the item array pointer at this offset of a list.
        unsafe { std::ptr::read_unaligned((list as *const u8).add(LIST_ITEMS_OFFSET) as *const *const *mut pyo3::ffi::PyObject) }
    }

    /// The UTF-8 bytes of `ob` if it is an exact, compact ASCII `str`.
    ///
    /// # Safety
    /// `ob` is a live object and the GIL is held.
    #[inline(always)]
    unsafe fn bytes<'a>(&self, ob: *mut pyo3::ffi::PyObject) -> Option<&'a [u8]> {
        // SAFETY (all reads): `ob` is a live object; the type check comes first, so the
        // later reads only touch an exact str, whose header `probe` measured.
        unsafe {
            if pyo3::ffi::Py_TYPE(ob) != std::ptr::addr_of_mut!(pyo3::ffi::PyUnicode_Type) {
                return None;
            }
            let base = ob as *const u8;
            let state = std::ptr::read_unaligned(base.add(STATE_OFFSET) as *const u32);
            if state & self.state_mask != self.state_value {
                return None;
            }
            let len = std::ptr::read_unaligned(base.add(LENGTH_OFFSET) as *const i64);
            Some(std::slice::from_raw_parts(base.add(self.data_offset), len as usize))
        }
    }
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
    let ascii = AsciiLayout::get(py);
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
            // Exact compact-ASCII strs are read inline ([`AsciiLayout`]), others through
            // `PyUnicode_AsUTF8AndSize` (CPython's cached UTF-8).
            let len = list.len();
            hashes.reserve(len);
            // SAFETY: a live list, GIL held.
            let direct = ascii.map(|_| unsafe { AsciiLayout::list_items(list.as_ptr()) });
            for j in 0..len {
                let item = match direct {
                    // SAFETY: `j < len`, and the list cannot change (so neither can its
                    // array): we hold the GIL and call no Python code while reading it.
                    Some(arr) => unsafe { *arr.add(j) },
                    // SAFETY: as above.
                    None => unsafe { pyo3::ffi::PyList_GetItem(list.as_ptr(), j as pyo3::ffi::Py_ssize_t) },
                };
                if item.is_null() {
                    return Err(PyErr::fetch(py));
                }
                // SAFETY: `item` is a live object the list holds; GIL held.
                if let Some(bytes) = ascii.and_then(|l| unsafe { l.bytes(item) }) {
                    hashes.push(hash(bytes));
                    continue;
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
                // SAFETY: CPython guarantees `n` valid bytes at `p`.
                hashes.push(hash(unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) }));
            }
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
    sig_matrix(py, sig, n, p)
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

type GroupArrays<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>);

/// lsh_candidates(signatures, bands, rows, eligible, threads=None) -> (members, offsets)
///
/// The candidate groups (documents sharing a band key; `crate::minhash::lsh::candidate_groups`):
/// group `g` is `members[offsets[g]:offsets[g + 1]]`. Pass them to `lsh_cluster(groups=...)`.
#[pyfunction]
#[pyo3(signature = (signatures, bands, rows, eligible, threads=None))]
fn lsh_candidates<'py>(
    py: Python<'py>,
    signatures: &Bound<'py, PyAny>,
    bands: usize,
    rows: usize,
    eligible: PyReadonlyArray1<'py, bool>,
    threads: Option<usize>,
) -> PyResult<GroupArrays<'py>> {
    let sig = SigArg::extract(signatures)?;
    let (n, p) = sig.shape();
    let view = sig.view()?;
    let eligible = eligible.as_slice()?;
    if eligible.len() != n {
        return Err(Error::invalid_argument(format!("eligible mask has {} entries for {n} documents", eligible.len())).into());
    }
    let groups = py.detach(|| {
        with_threads(threads, || -> crate::Result<_> {
            let keys = lsh::band_keys(view, p, bands, rows)?;
            lsh::candidate_groups(&keys, bands, eligible)
        })
    })??;
    let offsets: Vec<i64> = groups.offsets.iter().map(|&o| o as i64).collect();
    Ok((PyArray1::from_vec(py, groups.members), PyArray1::from_vec(py, offsets)))
}

/// A progress callback from Python, called with the GIL re-acquired (errors are ignored:
/// progress display never stops the work).
fn progress_fn(cb: &Option<Py<PyAny>>) -> impl Fn(u64) + Sync + '_ {
    move |k: u64| {
        if let Some(cb) = cb {
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (k,)) {
                    drop(e);
                }
            });
        }
    }
}

type GroupsArg<'py> = (PyReadonlyArray1<'py, u32>, PyReadonlyArray1<'py, i64>);

/// lsh_cluster(signatures, bands, rows, eligible, scores=None, verify_docs=None,
///             shingle=None, threshold=None, threads=None, cluster="components",
///             groups=None, progress=None) -> dict
///
/// Candidate groups (`groups=(members, offsets)` from `lsh_candidates`, else computed from
/// the band keys) → clusters: connected components (optionally verified) or stars
/// (`cluster="star"`: every member confirmed similar to the kept one, by exact Jaccard with
/// `verify_docs`, by the estimate otherwise; needs `threshold`) → kept document per cluster
/// → report columns. `progress(k)` is called now and then with the candidate groups
/// (components) or documents (star) processed. See `crate::minhash::lsh` and `::star`.
#[pyfunction]
#[pyo3(signature = (signatures, bands, rows, eligible, scores=None, verify_docs=None, shingle=None, threshold=None, threads=None, cluster="components", groups=None, progress=None))]
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
    cluster: &str,
    groups: Option<GroupsArg<'py>>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mode = ClusterMode::parse(cluster)?;
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
    if mode == ClusterMode::Star && threshold.is_none() {
        return Err(Error::invalid_argument("cluster='star' needs threshold").into());
    }
    let given = match &groups {
        Some((m, o)) => Some(candidate_groups_arg(m.as_slice()?, o.as_slice()?, n)?),
        None => None,
    };
    if eligible.len() != n {
        return Err(Error::invalid_argument(format!("eligible mask has {} entries for {n} documents", eligible.len())).into());
    }
    let tick = progress_fn(&progress);
    let (roots, kept, report, edges, stats) = py.detach(|| {
        with_threads(threads, || -> crate::Result<_> {
            let groups = match given {
                Some(g) => g,
                None => {
                    let keys = lsh::band_keys(view, p, bands, rows)?;
                    lsh::candidate_groups(&keys, bands, eligible)?
                }
            };
            let (roots, kept, sets, edges, stats) = match mode {
                ClusterMode::Components => {
                    let (roots, sets, edges, stats) = lsh::components_with_progress(n, &groups, verify.as_ref(), &tick)?;
                    let kept = lsh::kept_per_doc(&roots, scores_slice)?;
                    (roots, kept, sets, edges, stats)
                }
                ClusterMode::Star => {
                    let order = star::keep_order(n, scores_slice)?;
                    let confirm = match verify.as_ref() {
                        Some(v) => Confirm::Exact(v),
                        None => Confirm::Estimate { sig: view, num_perm: p, threshold: threshold.unwrap_or(1.0) },
                    };
                    let st = star::star_clusters(n, &groups, &confirm, &order, &tick)?;
                    (st.roots, st.kept, st.sets, st.edges, st.stats)
                }
            };
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

/// lsh_band_groups(band, key, doc) -> (members, offsets): candidate groups of one shard of
/// `(band, key, doc)` rows (see `crate::minhash::dist::band_groups`).
#[pyfunction]
fn lsh_band_groups<'py>(
    py: Python<'py>,
    band: PyReadonlyArray1<'py, u32>,
    key: PyReadonlyArray1<'py, u64>,
    doc: PyReadonlyArray1<'py, u64>,
) -> PyResult<(Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<i64>>)> {
    let (band, key, doc) = (band.as_slice()?, key.as_slice()?, doc.as_slice()?);
    let (members, offsets) = py.detach(|| crate::minhash::dist::band_groups(band, key, doc))?;
    let offsets: Vec<i64> = offsets.into_iter().map(|o| o as i64).collect();
    Ok((PyArray1::from_vec(py, members), PyArray1::from_vec(py, offsets)))
}

fn candidate_groups_arg(members: &[u32], offsets: &[i64], n: usize) -> PyResult<lsh::CandidateGroups> {
    let mut offs = Vec::with_capacity(offsets.len());
    for w in offsets.windows(2) {
        if w[0] < 0 || w[1] < w[0] {
            return Err(Error::invalid_argument("group offsets must be non-negative and non-decreasing").into());
        }
    }
    if offsets.first().is_some_and(|&o| o != 0) || offsets.last().is_some_and(|&o| o as usize != members.len()) {
        return Err(Error::invalid_argument("group offsets must start at 0 and end at the number of members").into());
    }
    if let Some(&m) = members.iter().find(|&&m| m as usize >= n) {
        return Err(Error::invalid_argument(format!("group member {m} is out of range for {n} documents")).into());
    }
    offs.extend(offsets.iter().map(|&o| o as usize));
    if offs.is_empty() {
        offs.push(0);
    }
    Ok(lsh::CandidateGroups { members: members.to_vec(), offsets: offs })
}

/// lsh_group_edges(members, offsets, n, verify_docs=None, shingle=None, threshold=None,
///                 threads=None) -> dict
///
/// The joining edges (a spanning forest) of candidate groups over `n` local documents,
/// verified by exact Jaccard when `verify_docs` is given (`crate::minhash::lsh::components`).
#[pyfunction]
#[pyo3(signature = (members, offsets, n, verify_docs=None, shingle=None, threshold=None, threads=None))]
#[allow(clippy::too_many_arguments)]
fn lsh_group_edges<'py>(
    py: Python<'py>,
    members: PyReadonlyArray1<'py, u32>,
    offsets: PyReadonlyArray1<'py, i64>,
    n: usize,
    verify_docs: Option<DocsArg<'py>>,
    shingle: Option<ShingleTuple<'py>>,
    threshold: Option<f64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let groups = candidate_groups_arg(members.as_slice()?, offsets.as_slice()?, n)?;
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
    let (_, _, edges, stats) =
        py.detach(|| with_threads(threads, || lsh::components(n, &groups, verify.as_ref())))??;
    let d = PyDict::new(py);
    d.set_item("e_a", PyArray1::from_vec(py, edges.a))?;
    d.set_item("e_b", PyArray1::from_vec(py, edges.b))?;
    d.set_item("e_jaccard", PyArray1::from_vec(py, edges.jaccard))?;
    d.set_item("candidate_pairs", stats.candidate_pairs)?;
    d.set_item("verified_pairs", stats.verified_pairs)?;
    d.set_item("rejected_pairs", stats.rejected_pairs)?;
    Ok(d)
}

type StarArrays<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>, u64);

/// cc_large_star(node, other, is_child) -> (child, parent, not_star)
/// (`crate::minhash::dist::large_star`).
#[pyfunction]
fn cc_large_star<'py>(
    py: Python<'py>,
    node: PyReadonlyArray1<'py, u64>,
    other: PyReadonlyArray1<'py, u64>,
    is_child: PyReadonlyArray1<'py, bool>,
) -> PyResult<StarArrays<'py>> {
    let (node, other, is_child) = (node.as_slice()?, other.as_slice()?, is_child.as_slice()?);
    let o = py.detach(|| crate::minhash::dist::large_star(node, other, is_child))?;
    Ok((PyArray1::from_vec(py, o.child), PyArray1::from_vec(py, o.parent), o.not_star))
}

/// cc_small_star(node, smaller) -> (child, parent, 0) (`crate::minhash::dist::small_star`).
#[pyfunction]
fn cc_small_star<'py>(
    py: Python<'py>,
    node: PyReadonlyArray1<'py, u64>,
    smaller: PyReadonlyArray1<'py, u64>,
) -> PyResult<StarArrays<'py>> {
    let (node, smaller) = (node.as_slice()?, smaller.as_slice()?);
    let o = py.detach(|| crate::minhash::dist::small_star(node, smaller))?;
    Ok((PyArray1::from_vec(py, o.child), PyArray1::from_vec(py, o.parent), o.not_star))
}

/// lsh_cluster_rows(signatures, roots, scores=None, verify_docs=None, shingle=None,
///                  threads=None) -> dict
///
/// Kept document and report rows of whole clusters held by one shard: `roots[i]` is the
/// local index of the smallest member of row `i`'s cluster (`lsh::kept_per_doc` and
/// `lsh::cluster_report`, with exact Jaccard to the kept member when `verify_docs` is given).
#[pyfunction]
#[pyo3(signature = (signatures, roots, scores=None, verify_docs=None, shingle=None, threads=None))]
fn lsh_cluster_rows<'py>(
    py: Python<'py>,
    signatures: &Bound<'py, PyAny>,
    roots: PyReadonlyArray1<'py, u32>,
    scores: Option<PyReadonlyArray1<'py, f64>>,
    verify_docs: Option<DocsArg<'py>>,
    shingle: Option<ShingleTuple<'py>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let sig = SigArg::extract(signatures)?;
    let (n, p) = sig.shape();
    let view = sig.view()?;
    let roots = roots.as_slice()?;
    if roots.len() != n || roots.iter().enumerate().any(|(i, &r)| r as usize > i || roots[r as usize] != r) {
        return Err(Error::invalid_argument("roots must give each row the smallest row of its cluster").into());
    }
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
    if docs_view.is_some() != cfg.is_some() || docs_view.is_some_and(|d| d.len() != n) {
        return Err(Error::invalid_argument("exact Jaccard needs verify_docs (one per row) and shingle").into());
    }
    let (kept, report) = py.detach(|| {
        with_threads(threads, || -> crate::Result<_> {
            let kept = lsh::kept_per_doc(roots, scores_slice)?;
            let sets = match (docs_view, &cfg) {
                (Some(docs), Some(cfg)) => Some(lsh::shingle_sets(docs, cfg, &vec![true; n])?),
                _ => None,
            };
            let report = lsh::cluster_report(view, p, roots, &kept, sets.as_deref());
            Ok((kept, report))
        })
    })??;
    let d = PyDict::new(py);
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

    /// find_same(keys, signatures) -> int64 array: id of the item with that key and the same
    /// signature per row, or -1.
    fn find_same<'py>(&self, py: Python<'py>, keys: Vec<String>, signatures: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let sig = SigArg::extract(signatures)?;
        let view = sig.view()?;
        let v = py.detach(|| self.inner.find_same(&keys, view))?;
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
    m.add_function(wrap_pyfunction!(lsh_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_candidate_mask, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_band_groups, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_group_edges, m)?)?;
    m.add_function(wrap_pyfunction!(lsh_cluster_rows, m)?)?;
    m.add_function(wrap_pyfunction!(cc_large_star, m)?)?;
    m.add_function(wrap_pyfunction!(cc_small_star, m)?)?;
    Ok(())
}
