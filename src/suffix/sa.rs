//! Suffix array and permuted-LCP construction through libsais (Ilya Grebnov's SA-IS
//! implementation, via the `libsais` crate). Nothing here re-implements SA-IS.
//!
//! Indices are 32-bit while the text is shorter than 2^31 symbols and 64-bit beyond, so the
//! suffix array costs 4 bytes per symbol on every realistic in-memory build. Multithreading
//! is OpenMP inside libsais; a suffix array is unique, so the result never depends on the
//! thread count.

use libsais::{SuffixArrayConstruction, ThreadCount};

use crate::{Error, Result};

use crate::mem::{advise_huge, HUGE_PAGE, MADV_COLLAPSE, MADV_HUGEPAGE};

/// A zero-filled vector of `n` entries, backed by huge pages where the kernel allows; an
/// out-of-memory error (naming `what`) instead of an abort when it cannot be allocated.
pub(crate) fn huge_vec<T: Copy>(n: usize, zero: T, what: &str) -> Result<Vec<T>> {
    let mut v: Vec<T> = crate::mem::try_with_capacity(n, what)?;
    if n * std::mem::size_of::<T>() >= 2 * HUGE_PAGE {
        advise_huge(v.as_ptr() as *const u8, n * std::mem::size_of::<T>(), MADV_HUGEPAGE);
    }
    v.resize(n, zero);
    Ok(v)
}

/// Return freed heap memory to the operating system before the large suffix-array
/// allocations (glibc keeps freed small blocks, e.g. from parsing the corpus, in its arenas).
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused memory of the allocator to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Move an existing buffer (e.g. the text, owned by Arrow) onto huge pages, best effort.
pub(crate) fn collapse_huge<T>(data: &[T]) {
    let len = std::mem::size_of_val(data);
    if len >= 8 * HUGE_PAGE {
        advise_huge(data.as_ptr() as *const u8, len, MADV_COLLAPSE);
    }
}

/// Integer type of a suffix-array entry (`i32` or `i64`).
pub trait SaIndex: Copy + Send + Sync + Ord + std::fmt::Debug + 'static {
    const BYTES: usize;
    const ZERO: Self;
    fn get(self) -> usize;
    fn from_usize(v: usize) -> Self;
}

impl SaIndex for i32 {
    const BYTES: usize = 4;
    const ZERO: Self = 0;
    #[inline]
    fn get(self) -> usize {
        self as u32 as usize
    }
    #[inline]
    fn from_usize(v: usize) -> Self {
        v as i32
    }
}

impl SaIndex for i64 {
    const BYTES: usize = 8;
    const ZERO: Self = 0;
    #[inline]
    fn get(self) -> usize {
        self as u64 as usize
    }
    #[inline]
    fn from_usize(v: usize) -> Self {
        v as i64
    }
}

/// Which index width to use. `Auto` picks 32 bits when the text has fewer than 2^31 symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IndexWidth {
    #[default]
    Auto,
    /// Force 32-bit indices (fails for texts of 2^31 symbols or more).
    W32,
    /// Force 64-bit indices (useful to test the large-corpus path on small inputs).
    W64,
}

impl IndexWidth {
    /// Resolve to 4 or 8 bytes for a text of `n` symbols.
    pub fn bytes_for(self, n: usize) -> Result<usize> {
        let fits32 = n <= i32::MAX as usize;
        match self {
            IndexWidth::Auto => Ok(if fits32 { 4 } else { 8 }),
            IndexWidth::W32 if fits32 => Ok(4),
            IndexWidth::W32 => Err(Error::invalid_argument(format!(
                "a text of {n} symbols needs 64-bit suffix-array indices"
            ))),
            IndexWidth::W64 => Ok(8),
        }
    }
}

/// A symbol type libsais can sort directly: bytes (`u8`) or 16-bit token ids (`u16`).
/// Larger vocabularies (u32 ids) go through libsais' integer-alphabet entry points; the
/// rest of the suffix module is generic over this trait.
pub trait Symbol: libsais::SmallAlphabet + Copy + Eq + Ord + Send + Sync + 'static {
    /// Name of the length unit in messages ("bytes", "tokens").
    const UNIT: &'static str;
}
impl Symbol for u8 {
    const UNIT: &'static str = "bytes";
}
impl Symbol for u16 {
    const UNIT: &'static str = "tokens";
}

/// Suffix array of `text` with entries of type `O` (`i32` or `i64`), using `threads`
/// OpenMP threads (`0` = OpenMP default = all cores, `1` = single-threaded code path).
pub fn suffix_array<S: Symbol, O: SaIndex + libsais::OutputElement + libsais::IsValidOutputFor<S>>(
    text: &[S],
    threads: usize,
) -> Result<Vec<O>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if O::BYTES == 4 && text.len() > i32::MAX as usize {
        return Err(Error::invalid_argument("text too long for 32-bit suffix-array indices"));
    }
    release_free_heap();
    collapse_huge(text);
    let mut sa = huge_vec(text.len(), O::ZERO, "the suffix array")?;
    let c = SuffixArrayConstruction::for_text(text).in_borrowed_buffer(&mut sa[..]);
    let res = if threads == 1 {
        c.single_threaded().run().map(|_| ())
    } else {
        let tc = if threads == 0 { ThreadCount::openmp_default() } else { ThreadCount::fixed(clamp_threads(threads)) };
        c.multi_threaded(tc).run().map(|_| ())
    };
    res.map_err(|e| Error::invalid_data("suffix array construction", format!("libsais failed: {e:?}")))?;
    Ok(sa)
}

/// Suffix array plus permuted LCP array: `plcp[sa[i]]` is the length of the longest common
/// prefix of the suffixes starting at `sa[i]` and `sa[i - 1]` (0 for `i == 0`). Memory: the
/// two arrays (2 x 4 bytes per symbol with 32-bit indices), nothing else of size n.
/// Also returns the seconds spent on each of the two constructions.
pub fn suffix_array_with_plcp<S, O>(text: &[S], threads: usize) -> Result<(Vec<O>, Vec<O>, [f64; 2])>
where
    S: Symbol,
    O: SaIndex + libsais::OutputElement + libsais::SupportsPlcpOutputFor<S>,
{
    if text.is_empty() {
        return Ok((Vec::new(), Vec::new(), [0.0; 2]));
    }
    if O::BYTES == 4 && text.len() > i32::MAX as usize {
        return Err(Error::invalid_argument("text too long for 32-bit suffix-array indices"));
    }
    let err = |e: libsais::LibsaisError| Error::invalid_data("suffix array construction", format!("libsais failed: {e:?}"));
    let t0 = std::time::Instant::now();
    release_free_heap();
    collapse_huge(text);
    let mut sa = huge_vec(text.len(), O::ZERO, "the suffix array")?;
    let c = SuffixArrayConstruction::for_text(text).in_borrowed_buffer(&mut sa[..]);
    let t_sa;
    let mut plcp;
    if threads == 1 {
        let sa = c.single_threaded().run().map_err(err)?;
        t_sa = t0.elapsed().as_secs_f64();
        plcp = huge_vec(text.len(), O::ZERO, "the LCP array")?;
        sa.plcp_construction().in_borrowed_buffer(&mut plcp[..]).single_threaded().run().map_err(err)?;
    } else {
        let tc = if threads == 0 { ThreadCount::openmp_default() } else { ThreadCount::fixed(clamp_threads(threads)) };
        let sa = c.multi_threaded(tc).run().map_err(err)?;
        t_sa = t0.elapsed().as_secs_f64();
        plcp = huge_vec(text.len(), O::ZERO, "the LCP array")?;
        sa.plcp_construction().in_borrowed_buffer(&mut plcp[..]).multi_threaded(tc).run().map_err(err)?;
    }
    let t_all = t0.elapsed().as_secs_f64();
    Ok((sa, plcp, [t_sa, t_all - t_sa]))
}

fn clamp_threads(t: usize) -> u16 {
    t.min(u16::MAX as usize) as u16
}

/// Suffix array of an integer text with symbols in `0..k` (libsais' large-alphabet path,
/// 32-bit indices). libsais uses `text` as scratch space and restores it.
pub fn suffix_array_int(text: &mut [i32], k: usize, threads: usize) -> Result<Vec<i32>> {
    use libsais::suffix_array::AlphabetSize;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if k > i32::MAX as usize || text.iter().any(|&x| x < 0 || x as usize >= k) {
        return Err(Error::invalid_argument("integer text symbols must lie in 0..k"));
    }
    let err = |e: libsais::LibsaisError| Error::invalid_data("suffix array construction", format!("libsais failed: {e:?}"));
    let c = SuffixArrayConstruction::for_text_mut(text).in_owned_buffer32();
    let sa = if threads == 1 {
        // SAFETY: every symbol was checked to lie in 0..k just above.
        let c = unsafe { c.single_threaded().with_alphabet_size(AlphabetSize::new(k as i32)) };
        c.run().map_err(err)?.into_vec()
    } else {
        let tc = if threads == 0 { ThreadCount::openmp_default() } else { ThreadCount::fixed(clamp_threads(threads)) };
        // SAFETY: every symbol was checked to lie in 0..k just above.
        let c = unsafe { c.multi_threaded(tc).with_alphabet_size(AlphabetSize::new(k as i32)) };
        c.run().map_err(err)?.into_vec()
    };
    Ok(sa)
}

/// Suffix array + PLCP of an integer text with symbols in `0..k` (libsais' large-alphabet
/// path, 32-bit indices). libsais uses `text` as scratch space and restores it.
pub fn suffix_array_with_plcp_int(text: &mut [i32], k: usize, threads: usize) -> Result<(Vec<i32>, Vec<i32>, [f64; 2])> {
    use libsais::suffix_array::AlphabetSize;
    if text.is_empty() {
        return Ok((Vec::new(), Vec::new(), [0.0; 2]));
    }
    if k > i32::MAX as usize || text.iter().any(|&x| x < 0 || x as usize >= k) {
        return Err(Error::invalid_argument("integer text symbols must lie in 0..k"));
    }
    let err = |e: libsais::LibsaisError| Error::invalid_data("suffix array construction", format!("libsais failed: {e:?}"));
    let t0 = std::time::Instant::now();
    let c = SuffixArrayConstruction::for_text_mut(text).in_owned_buffer32();
    let t_sa;
    let (sa, plcp) = if threads == 1 {
        // SAFETY: every symbol was checked to lie in 0..k just above.
        let c = unsafe { c.single_threaded().with_alphabet_size(AlphabetSize::new(k as i32)) };
        let sa = c.run().map_err(err)?;
        t_sa = t0.elapsed().as_secs_f64();
        let (sa, plcp, _) = sa.plcp_construction().single_threaded().run().map_err(err)?.into_parts();
        (sa, plcp)
    } else {
        let tc = if threads == 0 { ThreadCount::openmp_default() } else { ThreadCount::fixed(clamp_threads(threads)) };
        // SAFETY: every symbol was checked to lie in 0..k just above.
        let c = unsafe { c.multi_threaded(tc).with_alphabet_size(AlphabetSize::new(k as i32)) };
        let sa = c.run().map_err(err)?;
        t_sa = t0.elapsed().as_secs_f64();
        let (sa, plcp, _) = sa.plcp_construction().multi_threaded(tc).run().map_err(err)?.into_parts();
        (sa, plcp)
    };
    let t_all = t0.elapsed().as_secs_f64();
    Ok((sa, plcp, [t_sa, t_all - t_sa]))
}
