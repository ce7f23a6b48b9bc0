//! Bindings for `crate::corpus`: read a JSONL file into Arrow-layout numpy buffers
//! (handed over without a copy: numpy takes ownership of the Rust vectors), either all at
//! once (`read_jsonl_file`) or streamed batch by batch (`_JsonlReader`, what `gristmill.Corpus`
//! uses: memory stays bounded and parsing runs ahead of the consumer on a worker thread).

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::corpus::{read_jsonl, Batch, Compression, Options, Utf8Policy};
use crate::Error;

fn compression_of(c: Option<&str>) -> PyResult<Compression> {
    Ok(match c {
        None => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(c) => return Err(Error::invalid_argument(format!("unknown compression {c:?}")).into()),
    })
}

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
    let numbers = PyList::empty(py);
    for v in b.numbers {
        numbers.append(v.into_pyarray(py))?;
    }
    d.set_item("numbers", numbers)?;
    let kinds = PyList::empty(py);
    for v in b.number_kinds {
        kinds.append(v.into_pyarray(py))?;
    }
    d.set_item("number_kinds", kinds)?;
    Ok(d)
}

/// read_jsonl_file(path, compression, display, text_field, id_field, on_invalid_utf8, batch_docs, number_fields=()) -> list[dict]
///
/// Parse a JSONL file (compression None, "gzip" or "zstd") into batches of Arrow-layout
/// buffers: `text`/`text_offsets` (a large_string column), `valid`, `lines`, byte ranges
/// `starts`/`ends`, with an id field `ids`/`id_offsets`/`id_is_json`, and per number field
/// (same order) `numbers` (float64, NaN unless a number or boolean) and `number_kinds` (uint8:
/// 0 missing, 1 null, 2 number, 3 boolean, 4 string, 5 array, 6 object).
#[pyfunction]
#[pyo3(signature = (path, compression, display, text_field, id_field, on_invalid_utf8, batch_docs, number_fields=Vec::new()))]
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
    number_fields: Vec<String>,
) -> PyResult<Bound<'py, PyList>> {
    let compression = compression_of(compression.as_deref())?;
    let opts = Options { display, text_field, id_field, policy: Utf8Policy::parse(&on_invalid_utf8)?, number_fields };
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

/// Batches parsed ahead of the consumer (bounds memory: about this many batches plus the
/// chunks being parsed).
const AHEAD: usize = 2;

/// `_JsonlReader(path, compression, display, text_field, id_field, on_invalid_utf8, batch_docs, number_fields=())`:
/// an iterator of the batches `read_jsonl_file` would return, in order. A worker thread
/// parses ahead (at most `AHEAD` batches); the first error ends the iteration by raising.
/// Dropping the iterator stops the worker at its next batch.
#[pyclass(module = "gristmill._native", name = "_JsonlReader")]
struct PyJsonlReader {
    rx: Mutex<Option<Receiver<Result<Batch, Error>>>>,
}

#[pymethods]
impl PyJsonlReader {
    #[new]
    #[pyo3(signature = (path, compression, display, text_field, id_field, on_invalid_utf8, batch_docs, number_fields=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: String,
        compression: Option<String>,
        display: String,
        text_field: String,
        id_field: Option<String>,
        on_invalid_utf8: String,
        batch_docs: usize,
        number_fields: Vec<String>,
    ) -> PyResult<Self> {
        let compression = compression_of(compression.as_deref())?;
        let opts =
            Options { display, text_field, id_field, policy: Utf8Policy::parse(&on_invalid_utf8)?, number_fields };
        let (tx, rx) = sync_channel::<Result<Batch, Error>>(AHEAD);
        std::thread::Builder::new()
            .name("gristmill-jsonl".into())
            .spawn(move || {
                let r = read_jsonl(&path, compression, &opts, batch_docs.max(1), |b| {
                    // the consumer went away: stop reading (the error is never seen)
                    tx.send(Ok(b)).map_err(|_| Error::invalid_argument("reader dropped"))
                });
                if let Err(e) = r {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| Error::io("gristmill-jsonl thread", e))?;
        Ok(PyJsonlReader { rx: Mutex::new(Some(rx)) })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let mut guard = self.rx.lock().map_err(|_| Error::invalid_argument("reader poisoned"))?;
        let Some(rx) = guard.take() else { return Ok(None) };
        // a Receiver is Send but not Sync: move it into the detached closure and back
        let (rx, got) = py.detach(move || {
            let got = rx.recv();
            (rx, got)
        });
        match got {
            Ok(Ok(b)) => {
                *guard = Some(rx);
                Ok(Some(batch_dict(py, b)?))
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Ok(None), // the worker finished
        }
    }

    /// Stop reading now (the worker ends at its next batch).
    fn close(&self) {
        if let Ok(mut g) = self.rx.lock() {
            *g = None;
        }
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_jsonl_file, m)?)?;
    m.add_class::<PyJsonlReader>()?;
    Ok(())
}
