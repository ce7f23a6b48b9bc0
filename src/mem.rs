//! Memory: how much is available, large allocations that fail with an error instead of
//! aborting, and large lookup tables on transparent huge pages.
//!
//! The tokenizer's caches are probed at random positions; with 4 KiB pages nearly every
//! probe of a multi-MiB table also misses the TLB. A table allocated 2 MiB-aligned and
//! advised with `MADV_HUGEPAGE` before first touch is backed by 2 MiB pages where the
//! kernel allows (best effort: otherwise it simply keeps 4 KiB pages).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Environment variable that overrides [`available_memory`] (a byte count, or `500M`, `2G`…).
/// Meant for tests of the out-of-memory paths; not a tuning knob.
pub const AVAILABLE_MEMORY_ENV: &str = "GRISTMILL_AVAILABLE_MEMORY";

/// Bytes this process can still allocate before something fails, as far as it can be told:
/// the smallest of `MemAvailable` (/proc/meminfo), the headroom of the cgroup memory limit
/// (v2 `memory.max - memory.current`, or v1 `limit_in_bytes - usage_in_bytes`) and the
/// headroom of the address-space limit (`ulimit -v`: `RLIMIT_AS - VmSize`). `None` when
/// none of them can be read. [`AVAILABLE_MEMORY_ENV`] overrides it (for tests).
pub fn available_memory() -> Option<u64> {
    if let Ok(v) = std::env::var(AVAILABLE_MEMORY_ENV) {
        if let Some(b) = parse_size(&v) {
            return Some(b);
        }
    }
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let num = |s: Option<String>| s.and_then(|s| s.trim().parse::<u64>().ok());
    let mut best: Option<u64> = None;
    let mut take = |x: Option<u64>| {
        if let Some(x) = x {
            best = Some(best.map_or(x, |b| b.min(x)));
        }
    };
    take(read("/proc/meminfo").and_then(|m| kib_field(&m, "MemAvailable:")));
    // cgroup v2 ("max" when unlimited, which does not parse), then v1 (a huge number when unlimited)
    if let (Some(max), Some(cur)) = (num(read("/sys/fs/cgroup/memory.max")), num(read("/sys/fs/cgroup/memory.current"))) {
        take(Some(max.saturating_sub(cur)));
    } else if let (Some(max), Some(cur)) = (
        num(read("/sys/fs/cgroup/memory/memory.limit_in_bytes")),
        num(read("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
    ) {
        if max < 1 << 60 {
            take(Some(max.saturating_sub(cur)));
        }
    }
    take(address_space_headroom());
    best
}

#[cfg(target_os = "linux")]
fn address_space_headroom() -> Option<u64> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) } != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let used = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| kib_field(&s, "VmSize:"))?;
    Some((rl.rlim_cur as u64).saturating_sub(used))
}

#[cfg(not(target_os = "linux"))]
fn address_space_headroom() -> Option<u64> {
    None
}

/// `NAME:   1234 kB` in /proc files, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse::<u64>().ok().map(|k| k * 1024)
}

/// `123`, `500M`, `2G`, `1.5GiB` (powers of 1024) as bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let t = t.strip_suffix('I').unwrap_or(t);
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        'T' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v >= 0.0).then(|| (v * mult as f64) as u64)
}

/// A byte count for messages: `1.62 GB`, `17.3 MB` (powers of 1000, like the progress lines).
pub fn gb(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.2} GB", bytes as f64 / 1e9)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// `Err(Error::OutOfMemory)` when `need` bytes (more than are in use now) are estimated not
/// to fit in [`available_memory`]. `what` names the computation in the message.
pub fn ensure_fits(need: u64, what: impl fmt::Display) -> crate::Result<()> {
    match available_memory() {
        Some(avail) if need > avail => Err(crate::Error::out_of_memory(format!(
            "{what} needs about {} of memory but only {} is available",
            gb(need),
            gb(avail)
        ))),
        _ => Ok(()),
    }
}

/// The error for a failed allocation of `n` values of `T` (for `what`).
pub(crate) fn alloc_failed<T>(n: usize, what: &str) -> crate::Error {
    crate::Error::out_of_memory(format!(
        "out of memory: allocating {} for {what} failed",
        gb((n as u64).saturating_mul(std::mem::size_of::<T>() as u64))
    ))
}

/// An empty vector with room for `n` values, or an out-of-memory error instead of an abort.
pub(crate) fn try_with_capacity<T>(n: usize, what: &str) -> crate::Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| alloc_failed::<T>(n, what))?;
    Ok(v)
}

/// Ask the kernel to back the 2 MiB-aligned interior of `[ptr, ptr + len)` with transparent
/// huge pages (`advice` = [`MADV_HUGEPAGE`] before first touch, [`MADV_COLLAPSE`] for memory
/// already in use). Best effort: errors (no THP, an old kernel) are ignored.
#[cfg(target_os = "linux")]
pub(crate) fn advise_huge(ptr: *const u8, len: usize, advice: libc::c_int) {
    let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
    let end = (ptr as usize + len) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        // SAFETY: the range lies inside one live allocation of `len` bytes; these advices
        // never change its contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, advice);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn advise_huge(_ptr: *const u8, _len: usize, _advice: i32) {}

#[cfg(target_os = "linux")]
pub(crate) const MADV_HUGEPAGE: libc::c_int = libc::MADV_HUGEPAGE;
#[cfg(target_os = "linux")]
pub(crate) const MADV_COLLAPSE: libc::c_int = 25; // Linux >= 6.1; older kernels return EINVAL (ignored)
#[cfg(not(target_os = "linux"))]
pub(crate) const MADV_HUGEPAGE: i32 = 0;
#[cfg(not(target_os = "linux"))]
pub(crate) const MADV_COLLAPSE: i32 = 0;

/// Types whose all-zero bit pattern is a valid value.
///
/// # Safety
/// Implement only for plain integer data (and structs or arrays of it) with no padding
/// requirements beyond zero.
pub(crate) unsafe trait Zeroable: Copy {}

/// A fixed-length, zero-initialised table, 2 MiB-aligned and on huge pages when it is at
/// least that large.
pub(crate) struct HugeTable<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
    layout: Option<Layout>,
}

// SAFETY: a HugeTable owns its elements like a Box<[T]>.
unsafe impl<T: Zeroable + Send> Send for HugeTable<T> {}
// SAFETY: as above.
unsafe impl<T: Zeroable + Sync> Sync for HugeTable<T> {}

impl<T: Zeroable> HugeTable<T> {
    /// `len` zeroed entries.
    pub(crate) fn zeroed(len: usize) -> Self {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        if bytes == 0 {
            return HugeTable {
                ptr: NonNull::dangling(),
                len,
                layout: None,
            };
        }
        // Tables of 2 MiB or more: whole huge pages, 2 MiB-aligned.
        let (size, align) = if bytes >= HUGE_PAGE {
            (bytes.next_multiple_of(HUGE_PAGE), HUGE_PAGE)
        } else {
            (bytes, 1)
        };
        let align = align.max(std::mem::align_of::<T>());
        let layout = match Layout::from_size_align(size, align) {
            Ok(l) => l,
            Err(_) => handle_alloc_error(Layout::new::<T>()),
        };
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw as *mut T) else {
            handle_alloc_error(layout)
        };
        if bytes >= HUGE_PAGE {
            // Before the first touch (the zeroing below), so the pages fault in as 2 MiB.
            advise_huge(raw, size, MADV_HUGEPAGE);
        }
        // SAFETY: `raw` is a fresh allocation of `size >= bytes` bytes; all-zero is a valid `T`.
        unsafe { std::ptr::write_bytes(raw, 0, size) };
        HugeTable {
            ptr,
            len,
            layout: Some(layout),
        }
    }
}

impl<T: Zeroable> Deref for HugeTable<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised (zeroed, `Zeroable`) values, or is dangling
        // with a zero-size allocation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> DerefMut for HugeTable<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for HugeTable<T> {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: allocated in `zeroed` with this very layout.
            unsafe { dealloc(self.ptr.as_ptr() as *mut u8, layout) }
        }
    }
}

impl<T: Zeroable> Default for HugeTable<T> {
    fn default() -> Self {
        HugeTable::zeroed(0)
    }
}

/// Hint the CPU to start loading the cache line of `x` (no effect on results).
#[inline(always)]
pub(crate) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and does not change memory; `x` is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            x as *const T as *const i8,
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size(" 1.5gib "), Some(3 << 29));
        assert_eq!(parse_size("500M"), Some(500 << 20));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn an_impossible_reservation_is_an_error_not_an_abort() {
        let e = try_with_capacity::<u64>(usize::MAX / 16, "a test").unwrap_err();
        assert!(matches!(e, crate::Error::OutOfMemory(_)), "{e}");
        assert!(e.to_string().contains("a test"), "{e}");
    }

    // SAFETY: u64 is plain data.
    unsafe impl Zeroable for u64 {}

    #[test]
    fn tables_are_zeroed_aligned_and_writable() {
        for n in [0usize, 1, 1000, (4 << 20) / 8] {
            let mut t = HugeTable::<u64>::zeroed(n);
            assert_eq!(t.len(), n);
            assert!(t.iter().all(|&x| x == 0));
            if n * 8 >= HUGE_PAGE {
                assert_eq!(t.as_ptr() as usize % HUGE_PAGE, 0);
            }
            for (i, x) in t.iter_mut().enumerate() {
                *x = i as u64;
            }
            assert_eq!(t.iter().sum::<u64>(), (n as u64) * (n as u64).saturating_sub(1) / 2);
        }
    }
}
