use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::DocsArg;
use crate::text::stats::corpus_stats;

/// corpus_stats(docs) -> dict
///
/// Counts documents, empty documents, bytes, characters, lines and words of a batch
/// given as the `(data, offsets)` buffers of an Arrow string array.
#[pyfunction]
fn corpus_stats_batch<'py>(py: Python<'py>, docs: DocsArg<'py>) -> PyResult<Bound<'py, PyDict>> {
    let view = docs.view()?;
    let s = py.detach(|| corpus_stats(view));
    let d = PyDict::new(py);
    d.set_item("docs", s.docs)?;
    d.set_item("empty_docs", s.empty_docs)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("chars", s.chars)?;
    d.set_item("lines", s.lines)?;
    d.set_item("words", s.words)?;
    d.set_item("max_doc_bytes", s.max_doc_bytes)?;
    Ok(d)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(corpus_stats_batch, m)?)?;
    Ok(())
}
