//! The one place where core errors become Python exceptions, and where Arrow-style
//! string buffers arrive from Python.

use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::text::Docs;
use crate::Error;

pyo3::create_exception!(
    gristmill,
    GristmillError,
    PyValueError,
    "Base class of gristmill's errors about bad input or arguments (a subclass of ValueError)."
);

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Io { .. } => PyOSError::new_err(e.to_string()),
            Error::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
            Error::OutOfMemory(m) => PyMemoryError::new_err(m),
            other => GristmillError::new_err(other.to_string()),
        }
    }
}

/// A batch of documents as `(data: uint8[:], offsets: int32[:] | int64[:])`, the two
/// buffers of an Arrow `string`/`large_string` array (see `gristmill._arrow`).
pub(crate) struct DocsArg<'py> {
    data: PyReadonlyArray1<'py, u8>,
    offsets: OffsetsArg<'py>,
}

enum OffsetsArg<'py> {
    I32(PyReadonlyArray1<'py, i32>),
    I64(PyReadonlyArray1<'py, i64>),
}

impl<'py> FromPyObject<'_, 'py> for DocsArg<'py> {
    type Error = PyErr;

    fn extract(ob: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let (data, offsets): (Bound<'py, PyAny>, Bound<'py, PyAny>) = ob.extract()?;
        let data: PyReadonlyArray1<'py, u8> = data.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("document data must be a contiguous uint8 numpy array")
        })?;
        let offsets = if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i64>>() {
            OffsetsArg::I64(o)
        } else if let Ok(o) = offsets.extract::<PyReadonlyArray1<'py, i32>>() {
            OffsetsArg::I32(o)
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "document offsets must be an int32 or int64 numpy array",
            ));
        };
        if !data.is_contiguous() {
            return Err(pyo3::exceptions::PyTypeError::new_err("document data must be contiguous"));
        }
        Ok(DocsArg { data, offsets })
    }
}

impl DocsArg<'_> {
    /// Borrow the buffers as a core [`Docs`] view (validated, so slicing cannot panic).
    pub(crate) fn view(&self) -> PyResult<Docs<'_>> {
        let data = self.data.as_slice()?;
        let docs = match &self.offsets {
            OffsetsArg::I32(o) => Docs::from_i32(data, o.as_slice()?)?,
            OffsetsArg::I64(o) => Docs::from_i64(data, o.as_slice()?)?,
        };
        Ok(docs)
    }
}
