//! Task sizes for rayon loops.
//!
//! Rayon's default splitting of an indexed loop stops early: on 2 threads each thread may get
//! one fixed half of the items and nothing left to steal, so when the halves cost different
//! amounts (a corpus whose languages change along the way) one thread idles while the other
//! finishes. Capping the items per task keeps enough unstarted tasks for idle threads to steal.

/// Most items per task for a loop over `n` items: at least 16 tasks per thread of the current
/// pool, but never fewer than `min_len` items per task (per-task setup costs something).
pub(crate) fn max_task_len(n: usize, min_len: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (n / (threads * 16)).max(min_len).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_small_enough_to_balance() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            assert_eq!(max_task_len(1_000_000, 8), 31_250);
            assert_eq!(max_task_len(100, 8), 8);
            assert_eq!(max_task_len(0, 0), 1);
        });
    }
}
