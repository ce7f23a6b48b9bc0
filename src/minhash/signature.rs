//! MinHash signatures of many documents, computed in parallel over documents.
//!
//! Four hashing schemes:
//!
//! * [`Scheme::Fast`] (gristmill's own): `h = xxh3_64(shingle)` split into its 32-bit
//!   halves `lo` and `hi`; hash function `i` is `v_i = lo + a_i · hi + b_i mod 2^32`
//!   where `a_i = a_0 + i·Δa` (`Δa` odd) and `b_i = b_0 + i·Δb` are arithmetic
//!   progressions drawn from the seed. For one shingle `(lo, hi)` is uniform on
//!   `Z_{2^32}²`, so for `j − i` odd the pair `(v_i, v_j)` is uniform too: every function
//!   is a uniform hash and any two of them are pairwise independent (for even `j − i`
//!   they share only their lowest bits), which is all the variance of the Jaccard
//!   estimate depends on. Because the parameters are progressions, `v_{i+1} = v_i +
//!   (Δa · hi + Δb)`: the kernel needs one add and one min per (shingle, permutation) and
//!   no multiply, with eight shingles in the lanes of a vector (compiled twice: baseline
//!   and AVX2, picked at run time).
//! * [`Scheme::DatasketchAffine32`]: datasketch ≥ 2.0 default (`scheme="affine32"`):
//!   `h = fmix32(sha1_hash32(shingle))`, `a_i · h + b_i mod 2^32`.
//! * [`Scheme::DatasketchAffine64`]: datasketch `scheme="affine64"`: `sha1_hash64`,
//!   `fmix64`, `a_i · h + b_i mod 2^64`.
//! * [`Scheme::DatasketchLegacy`]: datasketch < 2.0 (`scheme="legacy"`):
//!   `((a_i · h + b_i) mod 2^64 mod (2^61 − 1)) & 0xffffffff`, the products wrapping in
//!   uint64 exactly as numpy does.
//!
//! `sha1_hash32`/`sha1_hash64` are the first 4/8 bytes of SHA-1, little-endian. The
//! datasketch permutation parameters are drawn by the caller (datasketch draws them from
//! numpy's `RandomState(seed)`) and passed in.
//!
//! A document with no shingle keeps the initial value everywhere: `u32::MAX` (fast,
//! affine32), `u64::MAX` (affine64) or `2^32 − 1` (legacy, as datasketch).

use rayon::prelude::*;

use super::shingle::{for_each_shingle, ShingleConfig, Scratch};
use crate::text::Docs;
use crate::{Error, Result};

/// Mersenne prime 2^61 − 1 used by datasketch's legacy scheme.
pub const MERSENNE_61: u64 = (1 << 61) - 1;

/// A hashing scheme with its permutation parameters (`a.len() == b.len() == num_perm`).
#[derive(Clone, Debug)]
pub enum Scheme {
    Fast { a: Vec<u32>, b: Vec<u32> },
    DatasketchAffine32 { a: Vec<u32>, b: Vec<u32> },
    DatasketchAffine64 { a: Vec<u64>, b: Vec<u64> },
    DatasketchLegacy { a: Vec<u64>, b: Vec<u64> },
}

/// splitmix64: a tiny, well-mixed generator for the fast scheme's parameters.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Scheme {
    /// The fast scheme with parameters derived deterministically from `seed`.
    pub fn fast(num_perm: usize, seed: u64) -> Result<Scheme> {
        check_num_perm(num_perm)?;
        let mut st = seed ^ 0x6772_6973_746D_696C; // "gristmil"
        let a0 = (splitmix64(&mut st) >> 32) as u32;
        let da = (splitmix64(&mut st) >> 32) as u32 | 1;
        let b0 = (splitmix64(&mut st) >> 32) as u32;
        let db = (splitmix64(&mut st) >> 32) as u32;
        let a = (0..num_perm as u32).map(|i| a0.wrapping_add(i.wrapping_mul(da))).collect();
        let b = (0..num_perm as u32).map(|i| b0.wrapping_add(i.wrapping_mul(db))).collect();
        Ok(Scheme::Fast { a, b })
    }

    pub fn num_perm(&self) -> usize {
        match self {
            Scheme::DatasketchAffine64 { a, .. } | Scheme::DatasketchLegacy { a, .. } => a.len(),
            Scheme::Fast { a, .. } | Scheme::DatasketchAffine32 { a, .. } => a.len(),
        }
    }

    /// Validate parameter lengths (and oddness where the scheme requires it).
    pub fn validate(&self) -> Result<()> {
        let (la, lb) = match self {
            Scheme::DatasketchAffine64 { a, b } | Scheme::DatasketchLegacy { a, b } => (a.len(), b.len()),
            Scheme::Fast { a, b } | Scheme::DatasketchAffine32 { a, b } => (a.len(), b.len()),
        };
        if la != lb {
            return Err(Error::invalid_argument(format!(
                "permutation parameters a and b must have the same length, got {la} and {lb}"
            )));
        }
        check_num_perm(la)?;
        if let Scheme::Fast { a, b } = self {
            return fast_progressions(a, b).map(|_| ());
        }
        match self {
            Scheme::DatasketchAffine32 { a, .. } if a.iter().any(|x| x & 1 == 0) => {
                Err(Error::invalid_argument("32-bit permutation parameters `a` must all be odd"))
            }
            Scheme::DatasketchAffine64 { a, .. } if a.iter().any(|x| x & 1 == 0) => {
                Err(Error::invalid_argument("affine64 permutation parameters `a` must all be odd"))
            }
            _ => Ok(()),
        }
    }

    /// True when signatures are 64-bit values.
    pub fn is_u64(&self) -> bool {
        matches!(self, Scheme::DatasketchAffine64 { .. } | Scheme::DatasketchLegacy { .. })
    }

    /// Hash one shingle with this scheme's base hash (before permutation).
    #[inline]
    pub fn base_hash(&self, shingle: &[u8]) -> u64 {
        match self {
            Scheme::Fast { .. } => xxhash_rust::xxh3::xxh3_64(shingle),
            Scheme::DatasketchAffine32 { .. } | Scheme::DatasketchLegacy { .. } => sha1_prefix(shingle, 4),
            Scheme::DatasketchAffine64 { .. } => sha1_prefix(shingle, 8),
        }
    }
}

fn check_num_perm(num_perm: usize) -> Result<()> {
    if num_perm == 0 {
        return Err(Error::invalid_argument("num_perm must be at least 1"));
    }
    if num_perm > 1 << 16 {
        return Err(Error::invalid_argument(format!("num_perm {num_perm} is too large (at most 65536)")));
    }
    Ok(())
}

/// The fast scheme's parameters as `(a_0, Δa, b_0, Δb)`; an error unless `a` and `b` are
/// arithmetic progressions mod 2^32 with `Δa` odd (what [`Scheme::fast`] draws).
fn fast_progressions(a: &[u32], b: &[u32]) -> Result<(u32, u32, u32, u32)> {
    let step = |v: &[u32]| if v.len() > 1 { v[1].wrapping_sub(v[0]) } else { 1 };
    let (da, db) = (step(a), step(b));
    let is_ap = |v: &[u32], d: u32| v.windows(2).all(|w| w[1].wrapping_sub(w[0]) == d);
    if a.is_empty() || b.is_empty() || !is_ap(a, da) || !is_ap(b, db) || da & 1 == 0 {
        return Err(Error::invalid_argument(
            "fast-scheme parameters must be arithmetic progressions mod 2^32 with an odd step for `a` \
             (use minhash_fast_params)",
        ));
    }
    Ok((a[0], da, b[0], db))
}

const SHA1_INIT: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

/// The SHA-1 state after hashing `data` (padding done here, blocks compressed by the
/// `sha1` crate's SHA-NI/soft backend; skipping the generic `Digest` buffering matters
/// because shingles are short, one block each).
#[inline]
pub fn sha1_state(data: &[u8]) -> [u32; 5] {
    let mut st = SHA1_INIT;
    let mut chunks = data.chunks_exact(64);
    let mut block = [0u8; 64];
    for c in &mut chunks {
        block.copy_from_slice(c);
        sha1::block_api::compress(&mut st, std::slice::from_ref(&block));
    }
    let rest = chunks.remainder();
    let bit_len = (data.len() as u64).wrapping_mul(8).to_be_bytes();
    let mut last = [[0u8; 64]; 2];
    last[0][..rest.len()].copy_from_slice(rest);
    last[0][rest.len()] = 0x80;
    let k = if rest.len() + 9 <= 64 {
        last[0][56..].copy_from_slice(&bit_len);
        1
    } else {
        last[1][56..].copy_from_slice(&bit_len);
        2
    };
    sha1::block_api::compress(&mut st, &last[..k]);
    st
}

/// First `k` (4 or 8) bytes of SHA-1, little-endian (datasketch's `sha1_hash32/64`).
#[inline]
pub fn sha1_prefix(data: &[u8], k: usize) -> u64 {
    let st = sha1_state(data);
    let lo = u32::from_le_bytes(st[0].to_be_bytes()) as u64;
    if k <= 4 {
        lo
    } else {
        lo | (u32::from_le_bytes(st[1].to_be_bytes()) as u64) << 32
    }
}

/// Short shingles (< 56 bytes: one padded SHA-1 block) are hashed [`SHA_WAYS`] at a time
/// with the SHA-NI rounds of the messages interleaved: one message's chain of `sha1rnds4`
/// is latency-bound, several fill the unit. Longer shingles go through [`sha1_prefix`].
/// Messages hashed together by [`Sha1Pairs`].
const SHA_WAYS: usize = 4;

pub struct Sha1Pairs {
    blocks: [[u8; 64]; SHA_WAYS],
    pending: usize,
    /// 4 (`sha1_hash32`) or 8 (`sha1_hash64`) leading bytes.
    k: usize,
    shani: bool,
}

/// Pad a message of at most 55 bytes (SHA-1 padding) into the next free one of `blocks`;
/// true when that filled all `SHA_WAYS` of them (the count then restarts at 0).
#[inline(always)]
fn queue_block(blocks: &mut [[u8; 64]; SHA_WAYS], pending: &mut usize, data: &[u8]) -> bool {
    debug_assert!(data.len() <= 55);
    let b = &mut blocks[*pending];
    b.fill(0);
    b[..data.len()].copy_from_slice(data);
    b[data.len()] = 0x80;
    b[56..].copy_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    *pending += 1;
    if *pending == SHA_WAYS {
        *pending = 0;
        true
    } else {
        false
    }
}

impl Sha1Pairs {
    pub fn new(k: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        let shani = std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3");
        #[cfg(not(target_arch = "x86_64"))]
        let shani = false;
        Sha1Pairs { blocks: [[0u8; 64]; SHA_WAYS], pending: 0, k, shani }
    }

    /// Hash `data` (its leading `k` bytes, little-endian, pushed to `out`, possibly after
    /// the next call: order within a document does not matter to a minimum).
    #[inline]
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u64>) {
        if !self.shani || data.len() > 55 {
            out.push(sha1_prefix(data, self.k));
            return;
        }
        if queue_block(&mut self.blocks, &mut self.pending, data) {
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `shani` is true only when the CPU has SHA, SSE4.1 and SSSE3.
                let ab = unsafe { sha1_blocks(&self.blocks) };
                out.extend(ab.iter().map(|&x| prefix_of(x, self.k)));
            }
        }
    }

    /// Hash the messages left waiting for partners.
    pub fn flush(&mut self, out: &mut Vec<u64>) {
        for blk in &self.blocks[..self.pending] {
            let mut st = SHA1_INIT;
            sha1::block_api::compress(&mut st, std::slice::from_ref(blk));
            out.push(prefix_of([st[0], st[1]], self.k));
        }
        self.pending = 0;
    }
}

#[inline(always)]
fn prefix_of(ab: [u32; 2], k: usize) -> u64 {
    let lo = u32::from_le_bytes(ab[0].to_be_bytes()) as u64;
    if k <= 4 {
        lo
    } else {
        lo | (u32::from_le_bytes(ab[1].to_be_bytes()) as u64) << 32
    }
}

/// SHA-1 of padded single-block messages with SHA-NI, rounds interleaved; returns the
/// first two state words `(a, b)` of each digest.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn sha1_blocks<const N: usize>(blocks: &[[u8; 64]; N]) -> [[u32; 2]; N] {
    sha1_blocks_hooked(blocks, |_| {})
}

/// [`sha1_blocks`] calling `hook(r)` after each of the 19 groups of four rounds
/// `r = 1..=19` that follow the first: the SHA-NI round chain leaves the vector
/// multiplier idle, so independent work placed in `hook` (the permutations of the
/// previous shingles, [`Affine32Sha`]) runs in its shadow. `#[inline]` so the hook's
/// code is scheduled between the rounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[inline]
unsafe fn sha1_blocks_hooked<const N: usize>(blocks: &[[u8; 64]; N], mut hook: impl FnMut(usize)) -> [[u32; 2]; N] {
    use std::arch::x86_64::*;
    let mask = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
    // state [a, b, c, d] with `a` in the highest lane, `e` alone in the highest lane
    let abcd0 = _mm_set_epi32(SHA1_INIT[0] as i32, SHA1_INIT[1] as i32, SHA1_INIT[2] as i32, SHA1_INIT[3] as i32);
    let e0 = _mm_set_epi32(SHA1_INIT[4] as i32, 0, 0, 0);
    let mut w = [[_mm_setzero_si128(); N]; 4];
    for (m, blk) in blocks.iter().enumerate() {
        for (i, wi) in w.iter_mut().enumerate() {
            // SAFETY: 16-byte unaligned load inside the 64-byte block.
            wi[m] = _mm_shuffle_epi8(_mm_loadu_si128(blk.as_ptr().add(16 * i) as *const __m128i), mask);
        }
    }
    let mut abcd = [abcd0; N];
    let mut prev = [abcd0; N];
    // rounds 0-3
    for m in 0..N {
        let e = _mm_add_epi32(e0, w[0][m]);
        prev[m] = abcd[m];
        abcd[m] = _mm_sha1rnds4_epu32::<0>(abcd[m], e);
    }
    macro_rules! group {
        ($r:expr, $f:literal) => {
            let r: usize = $r;
            for m in 0..N {
                if r >= 4 {
                    // W[r] = msg2(msg1(W[r-4], W[r-3]) ^ W[r-2], W[r-1]), ring of 4
                    let x = _mm_sha1msg1_epu32(w[r % 4][m], w[(r + 1) % 4][m]);
                    let x = _mm_xor_si128(x, w[(r + 2) % 4][m]);
                    w[r % 4][m] = _mm_sha1msg2_epu32(x, w[(r + 3) % 4][m]);
                }
                let e = _mm_sha1nexte_epu32(prev[m], w[r % 4][m]);
                prev[m] = abcd[m];
                abcd[m] = _mm_sha1rnds4_epu32::<$f>(abcd[m], e);
            }
            hook(r);
        };
    }
    for r in 1..5 {
        group!(r, 0);
    }
    for r in 5..10 {
        group!(r, 1);
    }
    for r in 10..15 {
        group!(r, 2);
    }
    for r in 15..20 {
        group!(r, 3);
    }
    let mut out = [[0u32; 2]; N];
    for (m, o) in out.iter_mut().enumerate() {
        let v = _mm_add_epi32(abcd[m], abcd0);
        *o = [_mm_extract_epi32::<3>(v) as u32, _mm_extract_epi32::<2>(v) as u32];
    }
    out
}

/// Groups of four SHA-1 rounds in [`sha1_blocks_hooked`] that call the hook.
#[cfg(target_arch = "x86_64")]
const SHA_GROUPS: usize = 19;

/// The datasketch `affine32` scheme for one document at a time, SHA-1 and permutations
/// fused. Shingles shorter than 56 bytes are hashed [`SHA_WAYS`] at a time with SHA-NI
/// ([`sha1_blocks_hooked`]); between the rounds of one batch the previous batch's hashes
/// go through the permutations `sig[i] = min(sig[i], a[i]·fmix32(h) + b[i] mod 2^32)`,
/// eight permutations per AVX2 vector. The SHA-1 round chain is latency-bound and leaves
/// the vector multiplier idle, so on a Zen 1 core the permutations cost almost nothing
/// on top of SHA-1 (separately they cost about as much as SHA-1 itself). Long shingles
/// and the leftovers of the last batch go through [`affine32_update`] in
/// [`Affine32Sha::finish`]; a minimum does not depend on the order, so the row equals
/// `affine32_update` over all the shingles' hashes.
pub struct Affine32Sha {
    blocks: [[u8; 64]; SHA_WAYS],
    pending: usize,
    /// Base hashes (`sha1_hash32`) of the last full batch, not yet permuted.
    prev: [u32; SHA_WAYS],
    have_prev: bool,
    /// Signature and parameters, zero-padded to 2, 4, 8, 16 or 32 vectors of [`LANES`].
    sig: Vec<u32>,
    a: Vec<u32>,
    b: Vec<u32>,
    /// Base hashes left for [`affine32_update`]: long shingles, the unfinished batch.
    rest: Vec<u64>,
}

impl Affine32Sha {
    /// `None` unless the CPU has SHA-NI (with SSE4.1, SSSE3) and AVX2.
    pub fn new(a: &[u32], b: &[u32]) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let vectors = a.len().div_ceil(LANES).next_power_of_two().max(2);
            if has!("sha") && has!("sse4.1") && has!("ssse3") && has!("avx2") && a.len() == b.len() && vectors <= 32 {
                let n = vectors * LANES;
                let pad = |v: &[u32]| {
                    let mut x = v.to_vec();
                    x.resize(n, 0);
                    x
                };
                return Some(Affine32Sha {
                    blocks: [[0u8; 64]; SHA_WAYS],
                    pending: 0,
                    prev: [0; SHA_WAYS],
                    have_prev: false,
                    sig: vec![u32::MAX; n],
                    a: pad(a),
                    b: pad(b),
                    rest: Vec::new(),
                });
            }
        }
        let _ = (a, b);
        None
    }

    /// Begin a new document.
    pub fn start(&mut self) {
        self.sig.fill(u32::MAX);
        self.pending = 0;
        self.have_prev = false;
        self.rest.clear();
    }

    /// Add one shingle of the current document.
    #[inline]
    pub fn push(&mut self, data: &[u8]) {
        if data.len() > 55 {
            self.rest.push(sha1_prefix(data, 4));
            return;
        }
        if queue_block(&mut self.blocks, &mut self.pending, data) {
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `new` returns a value only when the CPU has SHA, SSE4.1, SSSE3, AVX2,
                // with `sig`, `a`, `b` of 2, 4, 8, 16 or 32 vectors.
                unsafe {
                    match self.sig.len() / LANES {
                        2 => self.batch::<2>(),
                        4 => self.batch::<4>(),
                        8 => self.batch::<8>(),
                        16 => self.batch::<16>(),
                        _ => self.batch::<32>(),
                    }
                }
            }
        }
    }

    /// Hash the full batch of blocks while permuting the previous batch's hashes with the
    /// `NV` vectors of permutations (`sig.len() == NV · LANES`). `NV` is a constant so
    /// that, once the round groups are unrolled, each group's share of the permutations
    /// is straight-line code the compiler interleaves with the SHA-1 rounds (with a
    /// run-time vector count the two stay apart and the overlap is lost).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1,avx2")]
    unsafe fn batch<const NV: usize>(&mut self) {
        use std::arch::x86_64::*;
        debug_assert_eq!(self.sig.len(), NV * LANES);
        let have = self.have_prev;
        let hv = self.prev.map(|h| _mm256_set1_epi32(fmix32(h) as i32));
        let (sig, a, b) = (self.sig.as_mut_ptr(), self.a.as_ptr(), self.b.as_ptr());
        let ab = sha1_blocks_hooked(&self.blocks, |r| {
            if !have {
                return;
            }
            // group r (1..=SHA_GROUPS) permutes vectors r - 1, r - 1 + SHA_GROUPS, ...
            for k in 0..NV.div_ceil(SHA_GROUPS) {
                let v = r - 1 + k * SHA_GROUPS;
                if v >= NV {
                    break;
                }
                // SAFETY: v < NV; `sig`, `a`, `b` hold NV · LANES values.
                let av = _mm256_loadu_si256(a.add(v * LANES) as *const __m256i);
                let bv = _mm256_loadu_si256(b.add(v * LANES) as *const __m256i);
                let p = |h: __m256i| _mm256_add_epi32(_mm256_mullo_epi32(av, h), bv);
                let m = _mm256_min_epu32(_mm256_min_epu32(p(hv[0]), p(hv[1])), _mm256_min_epu32(p(hv[2]), p(hv[3])));
                let s = sig.add(v * LANES) as *mut __m256i;
                _mm256_storeu_si256(s, _mm256_min_epu32(_mm256_loadu_si256(s), m));
            }
        });
        self.prev = ab.map(|x| prefix_of(x, 4) as u32);
        self.have_prev = true;
    }

    /// Finish the document: `row[i] = min(row[i], its value)`; `a`, `b` as given to `new`.
    pub fn finish(&mut self, row: &mut [u32], a: &[u32], b: &[u32]) {
        if self.have_prev {
            self.rest.extend(self.prev.iter().map(|&h| u64::from(h)));
            self.have_prev = false;
        }
        for blk in &self.blocks[..self.pending] {
            let mut st = SHA1_INIT;
            sha1::block_api::compress(&mut st, std::slice::from_ref(blk));
            self.rest.push(prefix_of([st[0], st[1]], 4));
        }
        self.pending = 0;
        for (r, &s) in row.iter_mut().zip(&self.sig) {
            *r = (*r).min(s);
        }
        affine32_update(row, a, b, &self.rest);
    }
}
#[cfg(target_arch = "x86_64")]
const _: () = assert!(SHA_WAYS == 4, "Affine32Sha::batch permutes four hashes per vector pass");

#[inline(always)]
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

#[inline(always)]
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// `x mod (2^61 − 1)` for any u64 without division.
#[inline(always)]
pub fn mod_mersenne61(x: u64) -> u64 {
    let r = (x & MERSENNE_61) + (x >> 61);
    if r >= MERSENNE_61 {
        r - MERSENNE_61
    } else {
        r
    }
}

// ---- kernels: min over permutations, one shingle hash at a time -----------------------

/// `sig[i] = min(sig[i], a[i]·h + b[i] mod 2^32)` over 32-bit pre-mixed hashes, four
/// hashes per pass so every signature entry is loaded and stored once per four shingles.
#[inline(always)]
fn affine_u32_kernel(sig: &mut [u32], a: &[u32], b: &[u32], hashes: impl Iterator<Item = u32> + Clone) {
    let n = sig.len();
    let (a, b) = (&a[..n], &b[..n]);
    let mut it = hashes;
    loop {
        let mut hs = [0u32; 4];
        let mut k = 0;
        for slot in hs.iter_mut() {
            match it.next() {
                Some(h) => {
                    *slot = h;
                    k += 1;
                }
                None => break,
            }
        }
        if k == 0 {
            break;
        }
        // Pad a short final chunk by repeating its first hash (a repeat cannot change a min).
        for j in k..4 {
            hs[j] = hs[0];
        }
        let [h0, h1, h2, h3] = hs;
        for i in 0..n {
            let v0 = a[i].wrapping_mul(h0).wrapping_add(b[i]);
            let v1 = a[i].wrapping_mul(h1).wrapping_add(b[i]);
            let v2 = a[i].wrapping_mul(h2).wrapping_add(b[i]);
            let v3 = a[i].wrapping_mul(h3).wrapping_add(b[i]);
            sig[i] = sig[i].min(v0.min(v1)).min(v2.min(v3));
        }
        if k < 4 {
            break;
        }
    }
}

const LANES: usize = 8;
/// Perms handled per pass of the fast kernel (their partial minima live on the stack).
const FAST_PERM_CHUNK: usize = 128;

/// One pass of the fast kernel: `G` vectors of `LANES` shingles against the permutations
/// `p0..p0 + part.len()`; `part[i]` keeps per-lane partial minima of permutation `p0 + i`.
#[inline(always)]
fn fast_group<const G: usize>(part: &mut [[u32; LANES]], p0: u32, prm: (u32, u32, u32, u32), hs: &[u64]) {
    let (a0, da, b0, db) = prm;
    let a = a0.wrapping_add(p0.wrapping_mul(da));
    let b = b0.wrapping_add(p0.wrapping_mul(db));
    let mut v = [[0u32; LANES]; G];
    let mut step = [[0u32; LANES]; G];
    for g in 0..G {
        for l in 0..LANES {
            // a short final group repeats its first shingle (a repeat cannot change a min)
            let h = hs.get(g * LANES + l).copied().unwrap_or(hs[0]);
            let (lo, hi) = (h as u32, (h >> 32) as u32);
            v[g][l] = lo.wrapping_add(a.wrapping_mul(hi)).wrapping_add(b);
            step[g][l] = da.wrapping_mul(hi).wrapping_add(db);
        }
    }
    for p in part.iter_mut() {
        let mut m = *p;
        for g in 0..G {
            for l in 0..LANES {
                m[l] = m[l].min(v[g][l]);
                v[g][l] = v[g][l].wrapping_add(step[g][l]);
            }
        }
        *p = m;
    }
}

#[inline(always)]
fn fast_kernel(sig: &mut [u32], a: &[u32], b: &[u32], hashes: &[u64]) {
    if hashes.is_empty() {
        return;
    }
    let Ok(prm) = fast_progressions(a, b) else {
        // unreachable after `Scheme::validate`; the reference formula is always right
        return fast_reference(sig, a, b, hashes);
    };
    let mut part = [[u32::MAX; LANES]; FAST_PERM_CHUNK];
    for (ci, chunk) in sig.chunks_mut(FAST_PERM_CHUNK).enumerate() {
        let part = &mut part[..chunk.len()];
        part.fill([u32::MAX; LANES]);
        let p0 = (ci * FAST_PERM_CHUNK) as u32;
        let mut rest = hashes;
        while rest.len() > LANES * 2 {
            let (now, later) = rest.split_at(rest.len().min(LANES * 4));
            fast_group::<4>(part, p0, prm, now);
            rest = later;
        }
        while !rest.is_empty() {
            let (now, later) = rest.split_at(rest.len().min(LANES));
            fast_group::<1>(part, p0, prm, now);
            rest = later;
        }
        for (s, p) in chunk.iter_mut().zip(part.iter()) {
            *s = p.iter().fold(*s, |m, &x| m.min(x));
        }
    }
}

/// The fast kernel with explicit AVX2: eight shingles per vector, four vectors per pass,
/// each permutation's per-lane minima kept in `part` (one vector per permutation).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fast_update_avx2(sig: &mut [u32], a: &[u32], b: &[u32], hashes: &[u64]) {
    use std::arch::x86_64::*;
    if hashes.is_empty() {
        return;
    }
    let Ok((a0, da, b0, db)) = fast_progressions(a, b) else {
        return fast_reference(sig, a, b, hashes);
    };
    const G: usize = 4;
    const W: usize = LANES * G;
    let ones = _mm256_set1_epi32(-1);
    let mut part = [ones; FAST_PERM_CHUNK];
    // [lo0 hi0 lo1 hi1 lo2 hi2 lo3 hi3] -> [lo0 lo1 lo2 lo3 hi0 hi1 hi2 hi3]
    let deint = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    let mut pad = [0u64; W];
    for (ci, chunk) in sig.chunks_mut(FAST_PERM_CHUNK).enumerate() {
        let np = chunk.len();
        part[..np].fill(ones);
        let p0 = (ci * FAST_PERM_CHUNK) as u32;
        let va = _mm256_set1_epi32(a0.wrapping_add(p0.wrapping_mul(da)) as i32);
        let vb = _mm256_set1_epi32(b0.wrapping_add(p0.wrapping_mul(db)) as i32);
        let vda = _mm256_set1_epi32(da as i32);
        let vdb = _mm256_set1_epi32(db as i32);
        for group in hashes.chunks(W) {
            let hs: &[u64; W] = if group.len() == W {
                group.try_into().expect("chunk of W")
            } else {
                // a short final group repeats its first shingle (a repeat cannot change a min)
                pad.fill(group[0]);
                pad[..group.len()].copy_from_slice(group);
                &pad
            };
            let mut v = [_mm256_setzero_si256(); G];
            let mut st = [_mm256_setzero_si256(); G];
            for g in 0..G {
                // SAFETY: `hs` holds W = 8·G u64s; each load reads 4 of them inside it.
                let x = _mm256_loadu_si256(hs.as_ptr().add(g * 8) as *const __m256i);
                let y = _mm256_loadu_si256(hs.as_ptr().add(g * 8 + 4) as *const __m256i);
                let x = _mm256_permutevar8x32_epi32(x, deint);
                let y = _mm256_permutevar8x32_epi32(y, deint);
                let lo = _mm256_permute2x128_si256(x, y, 0x20);
                let hi = _mm256_permute2x128_si256(x, y, 0x31);
                v[g] = _mm256_add_epi32(_mm256_add_epi32(lo, _mm256_mullo_epi32(va, hi)), vb);
                st[g] = _mm256_add_epi32(_mm256_mullo_epi32(vda, hi), vdb);
            }
            // Short groups (up to 8 distinct shingles) need only one vector.
            if group.len() <= LANES {
                let (v0, s0) = (v[0], st[0]);
                let mut v0 = v0;
                for m in part[..np].iter_mut() {
                    *m = _mm256_min_epu32(*m, v0);
                    v0 = _mm256_add_epi32(v0, s0);
                }
                continue;
            }
            let [mut v0, mut v1, mut v2, mut v3] = v;
            let [s0, s1, s2, s3] = st;
            for m in part[..np].iter_mut() {
                let x = _mm256_min_epu32(_mm256_min_epu32(v0, v1), _mm256_min_epu32(v2, v3));
                *m = _mm256_min_epu32(*m, x);
                v0 = _mm256_add_epi32(v0, s0);
                v1 = _mm256_add_epi32(v1, s1);
                v2 = _mm256_add_epi32(v2, s2);
                v3 = _mm256_add_epi32(v3, s3);
            }
        }
        for (s, m) in chunk.iter_mut().zip(&part[..np]) {
            let mut lanes = [0u32; LANES];
            // SAFETY: `lanes` is 32 bytes.
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, *m);
            *s = lanes.iter().fold(*s, |acc, &x| acc.min(x));
        }
    }
}

fn fast_update(sig: &mut [u32], a: &[u32], b: &[u32], hashes: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { fast_update_avx2(sig, a, b, hashes) };
        }
    }
    fast_kernel(sig, a, b, hashes)
}

/// The fast scheme by its definition, one value at a time (reference for tests and for
/// parameters that are not progressions).
pub fn fast_reference(sig: &mut [u32], a: &[u32], b: &[u32], hashes: &[u64]) {
    for &h in hashes {
        let (lo, hi) = (h as u32, (h >> 32) as u32);
        for ((s, &ai), &bi) in sig.iter_mut().zip(a).zip(b) {
            *s = (*s).min(lo.wrapping_add(ai.wrapping_mul(hi)).wrapping_add(bi));
        }
    }
}

#[inline(always)]
fn affine32_kernel(sig: &mut [u32], a: &[u32], b: &[u32], hashes: &[u64]) {
    affine_u32_kernel(sig, a, b, hashes.iter().map(|&h| fmix32(h as u32)))
}

#[inline(always)]
fn affine64_kernel(sig: &mut [u64], a: &[u64], b: &[u64], hashes: &[u64]) {
    let n = sig.len();
    let (a, b) = (&a[..n], &b[..n]);
    for &h in hashes {
        let h = fmix64(h);
        for i in 0..n {
            let v = a[i].wrapping_mul(h).wrapping_add(b[i]);
            sig[i] = sig[i].min(v);
        }
    }
}

#[inline(always)]
fn legacy_kernel(sig: &mut [u64], a: &[u64], b: &[u64], hashes: &[u64]) {
    let n = sig.len();
    let (a, b) = (&a[..n], &b[..n]);
    for &h in hashes {
        for i in 0..n {
            let v = mod_mersenne61(a[i].wrapping_mul(h).wrapping_add(b[i])) & 0xFFFF_FFFF;
            sig[i] = sig[i].min(v);
        }
    }
}

macro_rules! dispatch {
    ($name:ident, $avx2:ident, $kernel:ident, $t:ty, $p:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2(sig: &mut [$t], a: &[$p], b: &[$p], hashes: &[u64]) {
            $kernel(sig, a, b, hashes)
        }

        fn $name(sig: &mut [$t], a: &[$p], b: &[$p], hashes: &[u64]) {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { $avx2(sig, a, b, hashes) };
                }
            }
            $kernel(sig, a, b, hashes)
        }
    };
}

dispatch!(affine32_update, affine32_update_avx2, affine32_kernel, u32, u32);
dispatch!(affine64_update, affine64_update_avx2, affine64_kernel, u64, u64);
dispatch!(legacy_update, legacy_update_avx2, legacy_kernel, u64, u64);

/// A row-major `[n_docs, num_perm]` signature matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signatures {
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl Signatures {
    pub fn len_values(&self) -> usize {
        match self {
            Signatures::U32(v) => v.len(),
            Signatures::U64(v) => v.len(),
        }
    }
}

/// Per-thread state while hashing documents.
struct Worker {
    scratch: Scratch,
    hashes: Vec<u64>,
    /// The fused SHA-1 + permutation path of the `affine32` scheme, where the CPU has it.
    affine32: Option<Affine32Sha>,
}

/// Update `sig` (one row, initialised by the caller) with pre-computed base hashes.
/// `hashes` may contain repeats.
pub fn update_u32(scheme: &Scheme, sig: &mut [u32], hashes: &[u64]) -> Result<()> {
    match scheme {
        Scheme::Fast { a, b } => fast_update(sig, a, b, hashes),
        Scheme::DatasketchAffine32 { a, b } => affine32_update(sig, a, b, hashes),
        _ => return Err(Error::invalid_argument("this scheme produces 64-bit signatures")),
    }
    Ok(())
}

/// Like [`update_u32`] for the 64-bit schemes.
pub fn update_u64(scheme: &Scheme, sig: &mut [u64], hashes: &[u64]) -> Result<()> {
    match scheme {
        Scheme::DatasketchAffine64 { a, b } => affine64_update(sig, a, b, hashes),
        Scheme::DatasketchLegacy { a, b } => legacy_update(sig, a, b, hashes),
        _ => return Err(Error::invalid_argument("this scheme produces 32-bit signatures")),
    }
    Ok(())
}

/// The value of an untouched signature entry.
pub fn empty_value_u64(scheme: &Scheme) -> u64 {
    match scheme {
        Scheme::DatasketchLegacy { .. } => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

fn doc_str<'a>(docs: &Docs<'a>, i: usize) -> Result<&'a str> {
    std::str::from_utf8(docs.get(i)).map_err(|e| {
        Error::invalid_data(format!("document {i}"), format!("invalid UTF-8 at byte {}", e.valid_up_to()))
    })
}

fn collect_hashes(w: &mut Worker, text: &str, cfg: &ShingleConfig, scheme: &Scheme) -> Result<()> {
    w.hashes.clear();
    let hashes = &mut w.hashes;
    // Repeated shingles are not removed: the permutation kernels cost less per shingle
    // than sorting would, and a repeat cannot change a minimum.
    match scheme {
        Scheme::Fast { .. } => {
            for_each_shingle(text, cfg, &mut w.scratch, |s| hashes.push(xxhash_rust::xxh3::xxh3_64(s)))?;
        }
        _ => {
            let mut sha = Sha1Pairs::new(if matches!(scheme, Scheme::DatasketchAffine64 { .. }) { 8 } else { 4 });
            for_each_shingle(text, cfg, &mut w.scratch, |s| sha.push(s, hashes))?;
            sha.flush(hashes);
        }
    }
    Ok(())
}

/// Signatures of every document of `docs`, row-major, parallel over documents
/// (rayon, in the current pool). Deterministic: a row depends only on its document.
pub fn signatures(docs: Docs<'_>, cfg: &ShingleConfig, scheme: &Scheme) -> Result<Signatures> {
    signatures_with(docs.len(), |i| docs.get(i), cfg, scheme)
}

/// [`signatures`] of `n` documents given by `get(i)` (UTF-8 bytes; checked here).
pub fn signatures_with<'a>(
    n: usize,
    get: impl Fn(usize) -> &'a [u8] + Sync,
    cfg: &ShingleConfig,
    scheme: &Scheme,
) -> Result<Signatures> {
    cfg.validate()?;
    scheme.validate()?;
    let p = scheme.num_perm();
    let init = || Worker {
        scratch: Scratch::new(),
        hashes: Vec::new(),
        affine32: match scheme {
            Scheme::DatasketchAffine32 { a, b } => Affine32Sha::new(a, b),
            _ => None,
        },
    };
    let text = |i: usize| {
        std::str::from_utf8(get(i)).map_err(|e| {
            Error::invalid_data(format!("document {i}"), format!("invalid UTF-8 at byte {}", e.valid_up_to()))
        })
    };
    if scheme.is_u64() {
        let mut out = vec![empty_value_u64(scheme); n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).with_max_len(crate::par::max_task_len(n, 8)).try_for_each_init(init, |w, (i, row)| {
            collect_hashes(w, text(i)?, cfg, scheme)?;
            update_u64(scheme, row, &w.hashes)
        })?;
        Ok(Signatures::U64(out))
    } else {
        let mut out = vec![u32::MAX; n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).with_max_len(crate::par::max_task_len(n, 8)).try_for_each_init(init, |w, (i, row)| {
            if let (Some(f), Scheme::DatasketchAffine32 { a, b }) = (w.affine32.as_mut(), scheme) {
                f.start();
                for_each_shingle(text(i)?, cfg, &mut w.scratch, |s| f.push(s))?;
                f.finish(row, a, b);
                return Ok(());
            }
            collect_hashes(w, text(i)?, cfg, scheme)?;
            update_u32(scheme, row, &w.hashes)
        })?;
        Ok(Signatures::U32(out))
    }
}

/// Signatures of pre-made shingle sets: set `i` is the items `groups[i]..groups[i + 1]` of
/// `items` (each item one shingle, hashed as given, without normalisation). Row-major,
/// parallel over sets, deterministic.
pub fn signatures_of_sets(items: Docs<'_>, groups: &[i64], scheme: &Scheme) -> Result<Signatures> {
    scheme.validate()?;
    if groups.is_empty() {
        return Err(Error::invalid_argument("set offsets must have at least one entry"));
    }
    for (i, w) in groups.windows(2).enumerate() {
        if w[0] < 0 || w[1] < w[0] || w[1] as u64 > items.len() as u64 {
            return Err(Error::invalid_data(
                format!("shingle set {i}"),
                format!("offsets {}..{} are not inside the {} shingles", w[0], w[1], items.len()),
            ));
        }
    }
    if groups[0] < 0 || groups[0] as u64 > items.len() as u64 {
        return Err(Error::invalid_argument("first set offset is outside the shingles"));
    }
    let p = scheme.num_perm();
    let n = groups.len() - 1;
    let fill = |hashes: &mut Vec<u64>, i: usize| {
        hashes.clear();
        hashes.extend((groups[i] as usize..groups[i + 1] as usize).map(|k| scheme.base_hash(items.get(k))));
    };
    if scheme.is_u64() {
        let mut out = vec![empty_value_u64(scheme); n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).with_max_len(crate::par::max_task_len(n, 8)).try_for_each_init(Vec::new, |h, (i, row)| {
            fill(h, i);
            update_u64(scheme, row, h)
        })?;
        Ok(Signatures::U64(out))
    } else {
        let mut out = vec![u32::MAX; n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).with_max_len(crate::par::max_task_len(n, 8)).try_for_each_init(Vec::new, |h, (i, row)| {
            fill(h, i);
            update_u32(scheme, row, h)
        })?;
        Ok(Signatures::U32(out))
    }
}

/// Signatures of sets of already-hashed shingles: set `i` is `hashes[groups[i]..groups[i + 1]]`
/// (base hashes as [`Scheme::base_hash`] makes them). Row-major, parallel over sets.
pub fn signatures_of_hashed_sets(hashes: &[u64], groups: &[usize], scheme: &Scheme) -> Result<Signatures> {
    scheme.validate()?;
    if groups.is_empty() || groups.windows(2).any(|w| w[1] < w[0]) || groups[groups.len() - 1] > hashes.len() {
        return Err(Error::invalid_argument("set offsets must be non-decreasing and inside the hashes"));
    }
    let p = scheme.num_perm();
    let n = groups.len() - 1;
    let set = |i: usize| &hashes[groups[i]..groups[i + 1]];
    if scheme.is_u64() {
        let mut out = vec![empty_value_u64(scheme); n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).with_max_len(crate::par::max_task_len(n, 8)).try_for_each(|(i, row)| update_u64(scheme, row, set(i)))?;
        Ok(Signatures::U64(out))
    } else {
        let mut out = vec![u32::MAX; n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).with_max_len(crate::par::max_task_len(n, 8)).try_for_each(|(i, row)| update_u32(scheme, row, set(i)))?;
        Ok(Signatures::U32(out))
    }
}

/// Number of shingles (distinct) of every document; 0 marks documents whose shingle set
/// is empty.
pub fn shingle_counts(docs: Docs<'_>, cfg: &ShingleConfig) -> Result<Vec<u32>> {
    cfg.validate()?;
    let mut out = vec![0u32; docs.len()];
    out.par_iter_mut().enumerate().with_min_len(8).with_max_len(crate::par::max_task_len(docs.len(), 8)).try_for_each_init(
        || (Scratch::new(), Vec::new()),
        |(scratch, set), (i, c)| {
            let text = doc_str(&docs, i)?;
            super::shingle::shingle_hash_set(text, cfg, scratch, set)?;
            *c = set.len().min(u32::MAX as usize) as u32;
            Ok::<(), Error>(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::corpus::OwnedDocs;

    #[test]
    fn mersenne_mod_matches_division() {
        for &x in &[0u64, 1, MERSENNE_61 - 1, MERSENNE_61, MERSENNE_61 + 1, u64::MAX, u64::MAX - 5, 1 << 62, 12345678901234567] {
            assert_eq!(mod_mersenne61(x), x % MERSENNE_61, "x = {x}");
        }
    }

    #[test]
    fn sha1_matches_the_digest_api_at_every_length() {
        use sha1::{Digest, Sha1};
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let d = Sha1::digest(&data[..len]);
            let mut want = [0u8; 8];
            want.copy_from_slice(&d[..8]);
            assert_eq!(sha1_prefix(&data[..len], 8), u64::from_le_bytes(want), "len {len}");
            assert_eq!(sha1_prefix(&data[..len], 4), u64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]])));
        }
    }

    #[test]
    fn paired_sha1_matches_the_digest_api() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 13 + 5) as u8).collect();
        for k in [4usize, 8] {
            let mut pairs = Sha1Pairs::new(k);
            let mut got = Vec::new();
            let mut want = Vec::new();
            for len in 0..130 {
                let d = &data[len..2 * len];
                pairs.push(d, &mut got);
                want.push(sha1_prefix(d, k));
            }
            pairs.flush(&mut got);
            // a long message can overtake a short one waiting for its partner
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "k {k}");
        }
    }

    /// `cargo test --lib sha1_ways_timing -- --ignored --nocapture`: 1/2/4-way throughput.
    #[test]
    #[ignore]
    fn sha1_ways_timing() {
        if !std::arch::is_x86_feature_detected!("sha") {
            return;
        }
        let mut blocks = [[0u8; 64]; 4];
        for (i, b) in blocks.iter_mut().enumerate() {
            b[..30].fill(i as u8 + 1);
            b[30] = 0x80;
            b[63] = 240;
        }
        let n = 2_000_000usize;
        let mut acc = 0u32;
        let t = std::time::Instant::now();
        for i in 0..n {
            blocks[0][0] = i as u8;
            let mut st = SHA1_INIT;
            sha1::block_api::compress(&mut st, std::slice::from_ref(&blocks[0]));
            acc ^= st[0];
        }
        println!("1-way crate: {:.1} ns/block", t.elapsed().as_nanos() as f64 / n as f64);
        let t = std::time::Instant::now();
        for i in 0..n / 2 {
            blocks[0][0] = i as u8;
            let two: &[[u8; 64]; 2] = blocks[..2].try_into().unwrap();
            acc ^= unsafe { sha1_blocks(two) }[0][0];
        }
        println!("2-way: {:.1} ns/block", t.elapsed().as_nanos() as f64 / n as f64);
        let t = std::time::Instant::now();
        for i in 0..n / 4 {
            blocks[0][0] = i as u8;
            acc ^= unsafe { sha1_blocks(&blocks) }[0][0];
        }
        println!("4-way: {:.1} ns/block ({acc})", t.elapsed().as_nanos() as f64 / n as f64);
    }

    /// The fused SHA-1 + permutation path equals the definition (SHA-1 prefix, fmix32,
    /// `a·h + b mod 2^32`, minimum) for every shingle count around the batch size, long
    /// shingles mixed in, repeated shingles, and num_perm not a multiple of the vector.
    #[test]
    fn fused_affine32_matches_the_definition() {
        let mut st = 9u64;
        let data: Vec<u8> = (0..4000).map(|_| splitmix64(&mut st) as u8).collect();
        for &p in &[1usize, 7, 8, 9, 63, 128, 200, 300] {
            let a: Vec<u32> = (0..p).map(|_| splitmix64(&mut st) as u32 | 1).collect();
            let b: Vec<u32> = (0..p).map(|_| splitmix64(&mut st) as u32).collect();
            #[cfg(target_arch = "x86_64")]
            let fused_cpu = std::arch::is_x86_feature_detected!("sha") && std::arch::is_x86_feature_detected!("avx2");
            #[cfg(not(target_arch = "x86_64"))]
            let fused_cpu = false;
            let Some(mut f) = Affine32Sha::new(&a, &b) else {
                assert!(!fused_cpu || p > 256, "the fused path must be available on this CPU up to 256 permutations");
                return; // CPU without SHA-NI/AVX2: the path is never taken
            };
            for &n in &[0usize, 1, 3, 4, 5, 8, 9, 13, 40, 97] {
                // two documents through the same state: `start` must reset everything
                for doc in 0..2 {
                    let shingles: Vec<&[u8]> = (0..n)
                        .map(|k| {
                            let len = (splitmix64(&mut st) % 70) as usize; // 0..=69: some > 55
                            let at = (splitmix64(&mut st) % 3000) as usize;
                            if k % 5 == 4 { &data[at % 7..at % 7 + len] } else { &data[at..at + len] }
                        })
                        .collect();
                    let mut want = vec![u32::MAX; p];
                    for s in &shingles {
                        let h = fmix32(sha1_prefix(s, 4) as u32);
                        for i in 0..p {
                            want[i] = want[i].min(a[i].wrapping_mul(h).wrapping_add(b[i]));
                        }
                    }
                    f.start();
                    for s in &shingles {
                        f.push(s);
                    }
                    let mut got = vec![u32::MAX; p];
                    f.finish(&mut got, &a, &b);
                    assert_eq!(got, want, "num_perm {p}, {n} shingles, doc {doc}");
                }
            }
        }
    }

    #[test]
    fn sha1_prefix_known_value() {
        // sha1("") = da39a3ee5e6b4b0d...; first four bytes little-endian
        assert_eq!(sha1_prefix(b"", 4), 0xeea339da);
        assert_eq!(sha1_prefix(b"", 8), 0x0d4b6b5eeea339da);
    }

    #[test]
    fn empty_docs_get_max_values_and_identical_docs_identical_rows() {
        let docs: OwnedDocs = ["", "the quick brown fox jumps over the lazy dog", "The quick, brown fox jumps over the lazy dog!"]
            .into_iter()
            .collect();
        let cfg = ShingleConfig::default();
        let s = signatures(docs.view(), &cfg, &Scheme::fast(64, 7).unwrap()).unwrap();
        let Signatures::U32(v) = s else { panic!("fast scheme gives u32") };
        assert!(v[..64].iter().all(|&x| x == u32::MAX));
        assert_eq!(v[64..128], v[128..192]);
        assert!(v[64..128].iter().any(|&x| x != u32::MAX));
    }

    #[test]
    fn pre_made_sets_match_text_shingles() {
        let cfg = ShingleConfig { n: 2, ..Default::default() };
        let texts = ["one two three four", "", "five six"];
        let docs: OwnedDocs = texts.into_iter().collect();
        let scheme = Scheme::fast(32, 2).unwrap();
        let from_text = signatures(docs.view(), &cfg, &scheme).unwrap();
        let mut items = OwnedDocs::new();
        let mut groups = vec![0i64];
        for t in texts {
            for s in super::super::shingle::shingles(t, &cfg).unwrap() {
                items.push(s.as_bytes());
            }
            groups.push(items.view().len() as i64);
        }
        assert_eq!(signatures_of_sets(items.view(), &groups, &scheme).unwrap(), from_text);
        assert!(signatures_of_sets(items.view(), &[0, 99], &scheme).is_err());
        assert!(signatures_of_sets(items.view(), &[2, 1], &scheme).is_err());
    }

    #[test]
    fn fast_kernel_matches_its_definition() {
        let mut st = 42u64;
        for &p in &[1usize, 7, 8, 63, 64, 65, 128, 200] {
            let Scheme::Fast { a, b } = Scheme::fast(p, p as u64).unwrap() else { unreachable!() };
            for &n in &[0usize, 1, 5, 8, 9, 16, 17, 31, 32, 33, 100, 257] {
                let hashes: Vec<u64> = (0..n).map(|_| splitmix64(&mut st)).collect();
                let init: Vec<u32> = (0..p).map(|i| if i % 3 == 0 { u32::MAX } else { splitmix64(&mut st) as u32 }).collect();
                let (mut got, mut want) = (init.clone(), init.clone());
                let mut portable = init.clone();
                fast_update(&mut got, &a, &b, &hashes);
                fast_kernel(&mut portable, &a, &b, &hashes);
                fast_reference(&mut want, &a, &b, &hashes);
                assert_eq!(got, want, "num_perm {p}, {n} hashes");
                assert_eq!(portable, want, "portable kernel, num_perm {p}, {n} hashes");
            }
        }
        // parameters that are not progressions are refused
        assert!(Scheme::Fast { a: vec![1, 3, 7], b: vec![0, 0, 0] }.validate().is_err());
        assert!(Scheme::Fast { a: vec![1, 3, 5], b: vec![0, 1, 3] }.validate().is_err());
        assert!(Scheme::Fast { a: vec![1, 3, 5], b: vec![0, 1, 2] }.validate().is_err(), "even step");
        assert!(Scheme::Fast { a: vec![1, 4, 7], b: vec![0, 1, 2] }.validate().is_ok());
    }

    #[test]
    fn rejects_bad_params() {
        assert!(Scheme::fast(0, 1).is_err());
        let s = Scheme::DatasketchAffine32 { a: vec![2], b: vec![1] };
        assert!(s.validate().is_err());
        let s = Scheme::DatasketchLegacy { a: vec![2, 3], b: vec![1] };
        assert!(s.validate().is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_document() {
        let mut docs = OwnedDocs::new();
        docs.push(b"fine");
        docs.push(b"bad \xff byte");
        let err = signatures(docs.view(), &ShingleConfig::default(), &Scheme::fast(8, 1).unwrap()).unwrap_err();
        assert!(err.to_string().contains("document 1"), "{err}");
    }
}
