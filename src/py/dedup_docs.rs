//! Bindings of `crate::dedup_docs`: a stateful set of seen keys fed batch by batch.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use super::minhash::with_threads;
use super::DocsArg;
use crate::dedup_docs::{ExactDedup, Normalize};

/// `(changed, data, offsets, paragraphs, removed, removed_bytes)` of one paragraph batch.
type ParagraphsOut<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<i64>>,
    u64,
    u64,
    u64,
);

#[pyclass(module = "gristmill._native", name = "_ExactDedup")]
struct PyExactDedup {
    inner: ExactDedup,
    threads: Option<usize>,
}

#[pymethods]
impl PyExactDedup {
    #[new]
    #[pyo3(signature = (normalize, min_length, threads=None))]
    fn new(normalize: &str, min_length: usize, threads: Option<usize>) -> PyResult<Self> {
        Ok(PyExactDedup { inner: ExactDedup::new(Normalize::parse(normalize)?, min_length), threads })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// docs(docs) -> (keep: bool[:], removed, removed_bytes)
    fn docs<'py>(&mut self, py: Python<'py>, docs: DocsArg<'py>) -> PyResult<(Bound<'py, PyArray1<bool>>, u64, u64)> {
        let view = docs.view()?;
        let threads = self.threads;
        let inner = &mut self.inner;
        let r = py.detach(|| with_threads(threads, || inner.docs(view)))??;
        Ok((r.keep.into_pyarray(py), r.removed, r.removed_bytes))
    }

    /// paragraphs(docs) -> (changed: uint64[:], data: uint8[:], offsets: int64[:], paragraphs, removed, removed_bytes)
    fn paragraphs<'py>(&mut self, py: Python<'py>, docs: DocsArg<'py>) -> PyResult<ParagraphsOut<'py>> {
        let view = docs.view()?;
        let threads = self.threads;
        let inner = &mut self.inner;
        let r = py.detach(|| with_threads(threads, || inner.paragraphs(view)))??;
        let changed: Vec<u64> = r.changed.iter().map(|&i| i as u64).collect();
        Ok((
            changed.into_pyarray(py),
            r.data.into_pyarray(py),
            r.offsets.into_pyarray(py),
            r.paragraphs,
            r.removed,
            r.removed_bytes,
        ))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExactDedup>()?;
    Ok(())
}
