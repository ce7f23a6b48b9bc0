//! Large lookup tables on transparent huge pages.
//!
//! The tokenizer's caches are probed at random positions; with 4 KiB pages nearly every
//! probe of a multi-MiB table also misses the TLB. A table allocated 2 MiB-aligned and
//! advised with `MADV_HUGEPAGE` before first touch is backed by 2 MiB pages where the
//! kernel allows (best effort: otherwise it simply keeps 4 KiB pages).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

pub(crate) const HUGE_PAGE: usize = 2 << 20;

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
