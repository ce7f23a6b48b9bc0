//! MinHash signatures of many documents, computed in parallel over documents.
//!
//! Four hashing schemes:
//!
//! * [`Scheme::Fast`] (gristmill's own): `h = xxh3_64(shingle)` folded to 32 bits
//!   (`hi ^ lo`), permutation `i` is the bijection `a_i · h + b_i mod 2^32` (`a_i` odd).
//!   The inner loop over permutations is a straight-line u32 multiply-add-min that the
//!   compiler vectorises (compiled twice: baseline and AVX2, picked at run time).
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
        let mut a = Vec::with_capacity(num_perm);
        let mut b = Vec::with_capacity(num_perm);
        for _ in 0..num_perm {
            a.push((splitmix64(&mut st) >> 32) as u32 | 1);
            b.push((splitmix64(&mut st) >> 32) as u32);
        }
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
        match self {
            Scheme::DatasketchAffine32 { a, .. } | Scheme::Fast { a, .. } if a.iter().any(|x| x & 1 == 0) => {
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

#[inline(always)]
fn fast_kernel(sig: &mut [u32], a: &[u32], b: &[u32], hashes: &[u64]) {
    affine_u32_kernel(sig, a, b, hashes.iter().map(|&h| (h ^ (h >> 32)) as u32))
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

dispatch!(fast_update, fast_update_avx2, fast_kernel, u32, u32);
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

fn collect_hashes(w: &mut Worker, text: &str, cfg: &ShingleConfig, scheme: &Scheme) {
    w.hashes.clear();
    let hashes = &mut w.hashes;
    // Repeated shingles are not removed: the permutation kernels cost less per shingle
    // than sorting would, and a repeat cannot change a minimum.
    for_each_shingle(text, cfg, &mut w.scratch, |s| hashes.push(scheme.base_hash(s)));
}

/// Signatures of every document of `docs`, row-major, parallel over documents
/// (rayon, in the current pool). Deterministic: a row depends only on its document.
pub fn signatures(docs: Docs<'_>, cfg: &ShingleConfig, scheme: &Scheme) -> Result<Signatures> {
    cfg.validate()?;
    scheme.validate()?;
    let p = scheme.num_perm();
    let n = docs.len();
    let init = || Worker { scratch: Scratch::new(), hashes: Vec::new() };
    if scheme.is_u64() {
        let mut out = vec![empty_value_u64(scheme); n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).try_for_each_init(init, |w, (i, row)| {
            let text = doc_str(&docs, i)?;
            collect_hashes(w, text, cfg, scheme);
            update_u64(scheme, row, &w.hashes)
        })?;
        Ok(Signatures::U64(out))
    } else {
        let mut out = vec![u32::MAX; n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).try_for_each_init(init, |w, (i, row)| {
            let text = doc_str(&docs, i)?;
            collect_hashes(w, text, cfg, scheme);
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
        out.par_chunks_mut(p).enumerate().with_min_len(8).try_for_each_init(Vec::new, |h, (i, row)| {
            fill(h, i);
            update_u64(scheme, row, h)
        })?;
        Ok(Signatures::U64(out))
    } else {
        let mut out = vec![u32::MAX; n * p];
        out.par_chunks_mut(p).enumerate().with_min_len(8).try_for_each_init(Vec::new, |h, (i, row)| {
            fill(h, i);
            update_u32(scheme, row, h)
        })?;
        Ok(Signatures::U32(out))
    }
}

/// Number of shingles (distinct) of every document; 0 marks documents whose shingle set
/// is empty.
pub fn shingle_counts(docs: Docs<'_>, cfg: &ShingleConfig) -> Result<Vec<u32>> {
    cfg.validate()?;
    let mut out = vec![0u32; docs.len()];
    out.par_iter_mut().enumerate().with_min_len(8).try_for_each_init(
        || (Scratch::new(), Vec::new()),
        |(scratch, set), (i, c)| {
            let text = doc_str(&docs, i)?;
            super::shingle::shingle_hash_set(text, cfg, scratch, set);
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
