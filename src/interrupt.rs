//! Cooperative interruption of long computations (Ctrl-C).
//!
//! An [`Interrupt`] is a shared flag that long loops poll (a relaxed atomic load, done every
//! few thousand iterations) and answer with [`Error::Interrupted`], so the computation
//! unwinds through the ordinary error path: buffers are dropped, temporary files removed by
//! their guards, nothing is written. The core never looks at signals itself; whoever runs
//! it (the Python bindings, a test) raises the flag.
//!
//! The flag is installed for the current thread with [`Interrupt::run`] and picked up by the
//! long entry points with [`Interrupt::current`], so their signatures stay as they are; work
//! handed to other threads (rayon, a spawned writer) captures the `Interrupt` value first.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{Error, Result};

thread_local! {
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// A cancellation flag (or none: never set).
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Option<Arc<AtomicBool>>);

impl Interrupt {
    /// An interrupt that is never raised.
    pub fn none() -> Self {
        Interrupt(None)
    }

    /// An interrupt raised when `flag` becomes `true`.
    pub fn new(flag: Arc<AtomicBool>) -> Self {
        Interrupt(Some(flag))
    }

    /// The interrupt installed on this thread by [`Interrupt::run`] (none outside it).
    pub fn current() -> Self {
        Interrupt(CURRENT.with(|c| c.borrow().clone()))
    }

    /// Run `f` with this interrupt installed as [`Interrupt::current`] on this thread (the
    /// previous one is restored afterwards, also when `f` panics).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Restore(Option<Arc<AtomicBool>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = prev);
            }
        }
        let prev = CURRENT.with(|c| c.replace(self.0.clone()));
        let _restore = Restore(prev);
        f()
    }

    /// Whether the flag has been raised.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// `Err(Error::Interrupted)` once the flag has been raised.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.is_set() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_scoped_to_run() {
        let flag = Arc::new(AtomicBool::new(true));
        assert!(!Interrupt::current().is_set());
        let inner = Interrupt::new(flag.clone()).run(|| Interrupt::current().check());
        assert!(matches!(inner, Err(Error::Interrupted)));
        assert!(Interrupt::current().check().is_ok());
        flag.store(false, Ordering::Relaxed);
        assert!(Interrupt::new(flag).run(|| Interrupt::current().check()).is_ok());
    }
}
