//! PyO3 bindings: extract inputs, run the core inside `py.detach`, hand back buffers.
//! No algorithm lives here.

use pyo3::prelude::*;

mod bpe;
mod corpus;
mod convert;
mod dedup_docs;
mod minhash;
mod mixture;
mod stats;
mod suffix;
mod train;

pub(crate) use convert::{DocsArg, GristmillError};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::interrupt::Interrupt;

/// How often the interpreter is asked whether a signal (Ctrl-C) arrived while native code runs.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Run `f` detached from the interpreter so that Ctrl-C stops it: `f` runs on a helper
/// thread with an [`Interrupt`] installed, while this thread (the interpreter's main thread
/// when called from it) re-attaches every 50 ms to run `check_signals`. When a signal handler
/// raises (`KeyboardInterrupt`), the flag is set, `f` unwinds through its
/// `Error::Interrupted` path at its next poll, and the handler's exception is returned (even
/// if `f` finished meanwhile: the interrupt is never swallowed). A panic in `f` propagates as
/// before. Code that cannot poll (one libsais call) delays the stop until it returns.
///
/// (`Python::check_signals` does nothing off the main thread, so a call made from another
/// Python thread cannot be interrupted, exactly like pure Python code there.)
pub(crate) fn detach_interruptible<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> crate::Result<T> + Send,
{
    let flag = Arc::new(AtomicBool::new(false));
    let stop = Interrupt::new(flag.clone());
    let mut raised: Option<PyErr> = None;
    let result = py.detach(|| {
        std::thread::scope(|s| {
            let (done, finished) = mpsc::channel::<()>();
            let worker = std::thread::Builder::new()
                .name("gristmill-compute".into())
                .stack_size(16 << 20)
                .spawn_scoped(s, move || {
                    let r = stop.run(f);
                    let _ = done.send(());
                    r
                });
            let worker = match worker {
                Ok(w) => w,
                Err(e) => return Err(crate::Error::out_of_memory(format!("cannot start a compute thread: {e}"))),
            };
            loop {
                match finished.recv_timeout(SIGNAL_POLL) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break, // finished, or panicked (the sender is gone)
                }
                if raised.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        raised = Some(e);
                        flag.store(true, Ordering::Relaxed);
                    }
                }
            }
            match worker.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    });
    if let Some(e) = raised {
        return Err(e);
    }
    Ok(result?)
}

/// available_memory() -> int | None: bytes this process can still allocate (the smallest of
/// MemAvailable, the cgroup limit's headroom and the `ulimit -v` headroom; overridden by
/// the GRISTMILL_AVAILABLE_MEMORY environment variable, for tests).
#[pyfunction]
fn available_memory() -> Option<u64> {
    crate::mem::available_memory()
}

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
    dedup_docs::register(m)?;
    train::register(m)?;
    m.add_function(wrap_pyfunction!(available_memory, m)?)?;
    Ok(())
}
