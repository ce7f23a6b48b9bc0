//! Bindings for `crate::mixture`: a `_MixtureCounter` that counts each category's words with
//! a tokenizer's pre-tokenizer and replays its merges, and the `_MixtureOracle` it builds,
//! whose `sweep` returns violated LP constraints as numpy arrays. The LP loop (HiGHS) is in
//! `gristmill.mixture`.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;

use super::bpe::PyTokenizer;
use super::minhash::with_threads;
use super::DocsArg;
use crate::bpe::trainer::WordCounter;
use crate::mixture::{self, CategorySummary, Oracle};
use crate::Error;

#[pyclass(module = "gristmill._native", name = "_MixtureCounter")]
struct PyMixtureCounter {
    tokenizer: Py<PyTokenizer>,
    tables: Vec<WordCounter>,
    merges: Vec<(u32, u32, u32)>,
    num_threads: Option<usize>,
}

/// `(steps, pairs, coefficients, max_violation, violated_steps)` of one sweep.
type SweepOut<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>, Bound<'py, PyArray2<f64>>, f64, usize);

#[pymethods]
impl PyMixtureCounter {
    /// `_MixtureCounter(tokenizer, n_categories, num_merges=None, num_threads=None)`.
    #[new]
    #[pyo3(signature = (tokenizer, n_categories, num_merges=None, num_threads=None))]
    fn new(
        py: Python<'_>,
        tokenizer: Py<PyTokenizer>,
        n_categories: usize,
        num_merges: Option<usize>,
        num_threads: Option<usize>,
    ) -> PyResult<Self> {
        if n_categories == 0 {
            return Err(Error::invalid_argument("at least one category is needed").into());
        }
        let merges = {
            let tok = tokenizer.get().core();
            py.detach(|| mixture::merge_list(tok, num_merges))?
        };
        Ok(PyMixtureCounter { tokenizer, tables: vec![WordCounter::new(); n_categories], merges, num_threads })
    }

    /// Number of merges that will be replayed.
    #[getter]
    fn num_merges(&self) -> usize {
        self.merges.len()
    }

    /// Count one batch of category `category`'s documents; `first_doc` numbers them in errors.
    #[pyo3(signature = (category, docs, first_doc=0))]
    fn count(&mut self, py: Python<'_>, category: usize, docs: DocsArg<'_>, first_doc: u64) -> PyResult<()> {
        let view = docs.view()?;
        let n = self.tables.len();
        let table = self
            .tables
            .get_mut(category)
            .ok_or_else(|| Error::invalid_argument(format!("category {category} out of range (0..{n})")))?;
        let tok = self.tokenizer.get().core();
        let threads = self.num_threads;
        py.detach(|| with_threads(threads, || mixture::count_docs(table, &view, tok, first_doc)))??;
        Ok(())
    }

    /// `(documents, bytes, pieces, distinct words)` counted for `category`.
    fn totals(&self, category: usize) -> PyResult<(u64, u64, u64, usize)> {
        let t = self
            .tables
            .get(category)
            .ok_or_else(|| Error::invalid_argument(format!("category {category} out of range")))?;
        let (d, b, p) = t.totals();
        Ok((d, b, p, t.len()))
    }

    /// Replay the merges on every category and build the oracle. `progress(merges)` is
    /// called with the merges replayed since its last call (summed over categories); an
    /// exception it raises, or Ctrl-C, stops the replay.
    #[pyo3(signature = (progress=None))]
    fn build(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> PyResult<PyMixtureOracle> {
        let byte_ids = mixture::byte_ids(self.tokenizer.get().core().vocab());
        let failure: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
        let report = |done: usize| -> bool {
            Python::attach(|py| {
                let mut err = py.check_signals().err();
                if err.is_none() {
                    if let Some(cb) = &progress {
                        err = cb.call1(py, (done,)).err();
                    }
                }
                match err {
                    None => true,
                    Some(e) => {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        false
                    }
                }
            })
        };
        let (tables, merges, threads) = (&self.tables, &self.merges, self.num_threads);
        let result = py.detach(|| with_threads(threads, || mixture::build(tables, &byte_ids, merges, &report)));
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        let (oracle, summaries) = result??;
        Ok(PyMixtureOracle { oracle, summaries })
    }
}

#[pyclass(module = "gristmill._native", name = "_MixtureOracle")]
struct PyMixtureOracle {
    oracle: Oracle,
    summaries: Vec<CategorySummary>,
}

#[pymethods]
impl PyMixtureOracle {
    #[getter]
    fn n_pairs(&self) -> usize {
        self.oracle.n_pairs()
    }

    #[getter]
    fn num_merges(&self) -> usize {
        self.oracle.steps()
    }

    /// Pair-count changes stored over all steps and categories.
    #[getter]
    fn n_changes(&self) -> usize {
        self.oracle.n_events()
    }

    /// Rows handed out so far.
    #[getter]
    fn rows_added(&self) -> usize {
        self.oracle.rows_added()
    }

    /// Per category: `(distinct words, total pairs, merges seen, changes)`.
    #[getter]
    fn summaries(&self) -> Vec<(usize, u64, usize, usize)> {
        self.summaries.iter().map(|s| (s.words, s.total_pairs, s.merges_seen, s.changes)).collect()
    }

    /// Normalised count of each merge's pair per category, `(num_merges, n_categories)`.
    fn merge_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (t, n) = (self.oracle.steps(), self.oracle.n_cats());
        let v = py.detach(|| self.oracle.merge_counts());
        v.into_pyarray(py).reshape([t, n])
    }

    /// `(left, right)` token ids of the given pair ids, an `(k, 2)` array.
    fn pair_tokens<'py>(&self, py: Python<'py>, ids: PyReadonlyArray1<'py, u32>) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let keys = self.oracle.pair_keys();
        let ids = ids.as_slice()?;
        let mut out = Vec::with_capacity(ids.len() * 2);
        for &i in ids {
            let k = *keys.get(i as usize).ok_or_else(|| Error::invalid_argument(format!("pair id {i} out of range")))?;
            out.extend([(k >> 32) as u32, k as u32]);
        }
        out.into_pyarray(py).reshape([ids.len(), 2])
    }

    /// Let rows `(steps[i], pairs[i])` be returned again by later sweeps.
    fn forget(&mut self, steps: PyReadonlyArray1<'_, u32>, pairs: PyReadonlyArray1<'_, u32>) -> PyResult<()> {
        let (s, p) = (steps.as_slice()?, pairs.as_slice()?);
        if s.len() != p.len() {
            return Err(Error::invalid_argument("forget needs as many steps as pairs").into());
        }
        self.oracle.forget(s, p);
        Ok(())
    }

    /// Every pair's most violated constraint at `(alpha, v_step, v_pair)`, one row per pair,
    /// as `(steps, pairs, coefficients, max violation, steps with a row)`. Exact: no row means
    /// no constraint is violated by more than `tolerance`.
    fn pair_sweep<'py>(
        &mut self,
        py: Python<'py>,
        alpha: PyReadonlyArray1<'py, f64>,
        v_step: PyReadonlyArray1<'py, f64>,
        v_pair: PyReadonlyArray1<'py, f64>,
        tolerance: f64,
    ) -> PyResult<SweepOut<'py>> {
        let (a, vs, vp) = (alpha.as_slice()?, v_step.as_slice()?, v_pair.as_slice()?);
        let oracle = &mut self.oracle;
        let rows = py.detach(|| oracle.pair_sweep(a, vs, vp, tolerance))?;
        let (r, n) = (rows.steps.len(), oracle.n_cats());
        Ok((
            rows.steps.into_pyarray(py),
            rows.pairs.into_pyarray(py),
            rows.coefs.into_pyarray(py).reshape([r, n])?,
            rows.max_violation,
            rows.violated_steps,
        ))
    }

    /// The segment tree over the steps that stretch rows refer to: the children of its
    /// internal nodes `num_merges + i`, an `(num_merges - 1, 2)` array (nodes below
    /// `num_merges` are the steps).
    fn tree_children<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let ch = self.oracle.tree().children();
        let flat: Vec<u32> = ch.iter().flat_map(|&(l, r)| [l, r]).collect();
        flat.into_pyarray(py).reshape([ch.len(), 2])
    }

    /// Stretch rows handed out so far.
    #[getter]
    fn stretch_rows_added(&self) -> usize {
        self.oracle.stretch_rows_added()
    }

    /// Let stretch rows `(nodes[i], pairs[i])` be returned again by later sweeps.
    fn forget_stretches(&mut self, nodes: PyReadonlyArray1<'_, u32>, pairs: PyReadonlyArray1<'_, u32>) -> PyResult<()> {
        let (k, p) = (nodes.as_slice()?, pairs.as_slice()?);
        if k.len() != p.len() {
            return Err(Error::invalid_argument("forget_stretches needs as many nodes as pairs").into());
        }
        self.oracle.forget_stretches(k, p);
        Ok(())
    }

    /// Violated constraints at `(alpha, v_step, v_pair)` as stretch rows: `(nodes, pairs,
    /// pair counts (rows × categories), max violation, violated stretches)`; at most
    /// `per_pair` rows per pair (0: no limit) and `max_rows` in all, the most violated first;
    /// only the first `first_steps` steps are checked. Exact: no row
    /// means no constraint is violated by more than `tolerance`.
    fn stretch_sweep<'py>(
        &mut self,
        py: Python<'py>,
        alpha: PyReadonlyArray1<'py, f64>,
        v_step: PyReadonlyArray1<'py, f64>,
        v_pair: PyReadonlyArray1<'py, f64>,
        first_steps: usize,
        per_pair: usize,
        max_rows: usize,
        tolerance: f64,
    ) -> PyResult<SweepOut<'py>> {
        let (a, vs, vp) = (alpha.as_slice()?, v_step.as_slice()?, v_pair.as_slice()?);
        let oracle = &mut self.oracle;
        let rows = py.detach(|| oracle.stretch_sweep(a, vs, vp, first_steps, per_pair, max_rows.max(1), tolerance))?;
        let (r, n) = (rows.nodes.len(), oracle.n_cats());
        Ok((
            rows.nodes.into_pyarray(py),
            rows.pairs.into_pyarray(py),
            rows.counts.into_pyarray(py).reshape([r, n])?,
            rows.max_violation,
            rows.stretches,
        ))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMixtureCounter>()?;
    m.add_class::<PyMixtureOracle>()?;
    Ok(())
}
