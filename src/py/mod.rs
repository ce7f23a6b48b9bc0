//! PyO3 bindings: extract inputs, run the core inside `py.detach`, hand back buffers.
//! No algorithm lives here.

use pyo3::prelude::*;

mod bpe;
mod corpus;
mod convert;
mod minhash;
mod mixture;
mod stats;
mod suffix;
mod train;

pub(crate) use convert::{DocsArg, GristmillError};

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("GristmillError", m.py().get_type::<GristmillError>())?;
    minhash::register(m)?;
    mixture::register(m)?;
    stats::register(m)?;
    suffix::register(m)?;
    bpe::register(m)?;
    corpus::register(m)?;
    train::register(m)?;
    Ok(())
}
