//! Bindings for `crate::corpus`: read a JSONL file into Arrow-layout numpy buffers
//! (handed over without a copy: numpy takes ownership of the Rust vectors).

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::corpus::{read_jsonl, Batch, Compression, Options, Utf8Policy};
use crate::Error;

fn batch_dict<'py>(py: Python<'py>, b: Batch) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("text", b.text.into_pyarray(py))?;
    d.set_item("text_offsets", b.text_offsets.into_pyarray(py))?;
    d.set_item("valid", b.valid.into_pyarray(py))?;
    d.set_item("ids", PyBytes::new(py, &b.ids))?;
    d.set_item("id_offsets", b.id_offsets.into_pyarray(py))?;
    d.set_item("id_is_json", b.id_is_json.into_pyarray(py))?;
    d.set_item("lines", b.lines.into_pyarray(py))?;
    d.set_item("starts", b.starts.into_pyarray(py))?;
    d.set_item("ends", b.ends.into_pyarray(py))?;
    Ok(d)
}

/// read_jsonl_file(path, compression, display, text_field, id_field, on_invalid_utf8, batch_docs) -> list[dict]
///
/// Parse a JSONL file (compression None, "gzip" or "zstd") into batches of Arrow-layout
/// buffers: `text`/`text_offsets` (a large_string column), `valid`, `lines`, byte ranges
/// `starts`/`ends`, and with an id field `ids`/`id_offsets`/`id_is_json`.
#[pyfunction]
#[pyo3(signature = (path, compression, display, text_field, id_field, on_invalid_utf8, batch_docs))]
#[allow(clippy::too_many_arguments)]
fn read_jsonl_file<'py>(
    py: Python<'py>,
    path: String,
    compression: Option<String>,
    display: String,
    text_field: String,
    id_field: Option<String>,
    on_invalid_utf8: String,
    batch_docs: usize,
) -> PyResult<Bound<'py, PyList>> {
    let compression = match compression.as_deref() {
        None => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(c) => return Err(Error::invalid_argument(format!("unknown compression {c:?}")).into()),
    };
    let opts = Options { display, text_field, id_field, policy: Utf8Policy::parse(&on_invalid_utf8)? };
    let batches = py.detach(|| -> Result<Vec<Batch>, Error> {
        let mut v = Vec::new();
        read_jsonl(&path, compression, &opts, batch_docs.max(1), |b| {
            v.push(b);
            Ok(())
        })?;
        Ok(v)
    })?;
    let out = PyList::empty(py);
    for b in batches {
        out.append(batch_dict(py, b)?)?;
    }
    Ok(out)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_jsonl_file, m)?)?;
    Ok(())
}
