//! The register tiles of the int8 product: one block of [`BLOCK`] features times up to
//! [`TILE_TOKENS`] tokens over every input, one variant per kernel path, each giving the exact
//! 32-bit sums `Σ_k x[t][k] · w[f][k]` of the quantized values.
//!
//! - AVX-512 (`vpdpbusd`, 512-bit): 4 registers of 16 features × up to 6 tokens, 24
//!   accumulators. `vpdpbusd` multiplies unsigned by signed bytes, so the inputs go in as
//!   `x + 128` (a sign-bit flip) and `128 · Σ_k w[f][k]` is taken off at the end; it sums into
//!   32 bits without saturating, so the result is exact.
//! - AVX-VNNI (`vpdpbusd`, 256-bit): the same trick, a quarter block (2 registers) × 6 tokens.
//! - AVX2 (`vpmaddubsw`): that instruction adds pairs of products into *saturating* 16 bits,
//!   where `(x + 128) · w` would overflow. So the sign moves instead (as llama.cpp does):
//!   `|x|` times `w` with the sign of `x`. With |x|, |w| ≤ 127 a pair is at most
//!   2 · 127 · 127 = 32258 < 32767: never saturates. `vpmaddwd` by ones then widens to 32 bits.
//! - Portable: plain loops over 32-bit sums.
//!
//! On the 256-bit paths the unsigned operand (`x + 128`, or `|x|`) is made once per product,
//! in the pass that quantizes the inputs ([`unsigned_form`]), not in every tile: their tiles
//! go over each token's inputs once per quarter block of features, and the in-register `vpxor`
//! or `vpabsb` was one more vector instruction for every two products, on tiles bound by how
//! many vector instructions issue a cycle (AVX2 products +11-18%, AVX-VNNI +5-12% on a Zen 5).
//! The AVX-512 tile flips the sign bit in a register: there one `vpxor` serves four
//! `vpdpbusd`, and writing the flipped rows cost more than it saved (-3-5%).

// Register tiles are indexed by position on purpose: the loops unroll into fixed registers.
#![allow(clippy::needless_range_loop)]

use super::path::KernelPath;

/// Output features per block of packed weights: four 512-bit registers of 32-bit sums.
pub const BLOCK: usize = 64;
/// Inputs per group: `vpdpbusd` sums 4 byte products into each 32-bit lane.
pub const GROUP: usize = 4;
/// The most tokens one tile takes.
pub const TILE_TOKENS: usize = 6;

/// One block of weights against a few tokens' quantized inputs.
pub struct Tile<'a> {
    /// The block: for each group of [`GROUP`] inputs, the [`BLOCK`] features' [`GROUP`] bytes
    /// side by side.
    pub w: &'a [i8],
    /// `tokens` rows of `inner` quantized inputs (`inner` a multiple of [`GROUP`]).
    pub x: &'a [i8],
    /// The same rows in the path's [`unsigned_form`]; empty on a path without one.
    pub x_unsigned: &'a [u8],
    pub inner: usize,
    pub tokens: usize,
    /// `Σ_k w[f][k]` for each of the block's features (the `x + 128` correction).
    pub sums: &'a [i32],
    /// Whether this is the first tile over the block, which pulls it from memory (the 256-bit
    /// paths then prefetch its rows ahead; see [`prefetch_ahead`]).
    pub first: bool,
}

/// How a tile takes the quantized inputs as unsigned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsignedForm {
    /// `x + 128`, the sign bit flipped (`vpdpbusd`).
    Flipped,
    /// `|x|` (AVX2's `vpmaddubsw`, which takes the sign from `x` itself).
    Magnitude,
}

impl UnsignedForm {
    /// `out[i]` = `x[i]` in this form.
    pub fn fill(self, x: &[i8], out: &mut [u8]) {
        assert_eq!(x.len(), out.len(), "unsigned form of {} bytes", x.len());
        // One loop per form, so that each vectorises.
        match self {
            Self::Flipped => {
                for (u, &x) in out.iter_mut().zip(x) {
                    *u = x as u8 ^ 0x80;
                }
            }
            Self::Magnitude => {
                for (u, &x) in out.iter_mut().zip(x) {
                    *u = x.unsigned_abs();
                }
            }
        }
    }
}

/// The unsigned form of the inputs that `path`'s tile reads, if it reads one (see the module
/// header).
pub fn unsigned_form(path: KernelPath) -> Option<UnsignedForm> {
    match path.vector_kernels() {
        KernelPath::Avx2Vnni => Some(UnsignedForm::Flipped),
        KernelPath::Avx2 => Some(UnsignedForm::Magnitude),
        _ => None,
    }
}

/// `acc[t * BLOCK + f] = Σ_k x[t][k] · w[f][k]` for the tile's tokens and the block's features.
///
/// # Safety
/// `path` must be one the CPU supports.
pub unsafe fn dots(path: KernelPath, tile: &Tile, acc: &mut [i32; TILE_TOKENS * BLOCK]) {
    let unsigned_rows = unsigned_form(path).map_or(0, |_| tile.tokens);
    assert!(
        tile.inner.is_multiple_of(GROUP)
            && tile.w.len() == tile.inner * BLOCK
            && tile.x.len() >= tile.tokens * tile.inner
            && tile.x_unsigned.len() >= unsigned_rows * tile.inner
            && tile.sums.len() == BLOCK
            && (1..=TILE_TOKENS).contains(&tile.tokens),
        "int8 tile: {} tokens of {} inputs",
        tile.tokens,
        tile.inner
    );
    // SAFETY (each arm): the reads stay inside `w`, `x` and `sums` and the writes inside `acc`
    // (checked above), and the caller guarantees the CPU supports the path.
    match path.vector_kernels() {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { avx512::dots(tile, acc) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Vnni => unsafe { avx_vnni::dots(tile, acc) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => unsafe { avx2::dots(tile, acc) },
        _ => portable(tile, acc),
    }
}

fn portable(tile: &Tile, acc: &mut [i32; TILE_TOKENS * BLOCK]) {
    acc.fill(0);
    for (g, w) in tile.w.chunks_exact(BLOCK * GROUP).enumerate() {
        for t in 0..tile.tokens {
            let x = &tile.x[t * tile.inner + g * GROUP..][..GROUP];
            let sums = &mut acc[t * BLOCK..(t + 1) * BLOCK];
            for (sum, w) in sums.iter_mut().zip(w.chunks_exact(GROUP)) {
                *sum += (0..GROUP)
                    .map(|i| i32::from(x[i]) * i32::from(w[i]))
                    .sum::<i32>();
            }
        }
    }
}

/// Calls `$call` with the constant `$n` set to `$tokens` (1 to [`TILE_TOKENS`]).
macro_rules! with_tokens {
    ($tokens:expr, |$n:ident| $call:expr) => {
        match $tokens {
            1 => {
                const $n: usize = 1;
                $call
            }
            2 => {
                const $n: usize = 2;
                $call
            }
            3 => {
                const $n: usize = 3;
                $call
            }
            4 => {
                const $n: usize = 4;
                $call
            }
            5 => {
                const $n: usize = 5;
                $call
            }
            6 => {
                const $n: usize = 6;
                $call
            }
            _ => unreachable!("a tile has 1 to 6 tokens"),
        }
    };
}

/// Groups of inputs ahead of the one in use that the first quarter pass prefetches (3 KiB).
#[cfg(target_arch = "x86_64")]
const PREFETCH_GROUPS: usize = 12;

/// Prefetches the whole block row of group `g + PREFETCH_GROUPS`. The 256-bit paths go over a
/// block in quarter passes, one line of each 256-byte group row apart: without this the first
/// pass pulls the block from memory with strided misses; with it the stream stays sequential
/// and the later passes hit the cache. (A prefetch never faults, past the end included.)
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn prefetch_ahead(tile: &Tile, g: usize) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let ahead = tile
        .w
        .as_ptr()
        .wrapping_add((g + PREFETCH_GROUPS) * BLOCK * GROUP);
    for line in 0..BLOCK * GROUP / 64 {
        // SAFETY: a prefetch reads nothing the program sees and never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 64)) };
    }
}

/// The 4 bytes of group `g` of row `t` of `rows` (rows of `inner` bytes: `x` or its unsigned
/// form), as one 32-bit lane.
///
/// # Safety
/// Row `t`'s group `g` must lie inside `rows`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn input_group<B: Copy>(rows: &[B], inner: usize, t: usize, g: usize) -> i32 {
    const { assert!(size_of::<B>() == 1, "rows of bytes") };
    unsafe {
        rows.as_ptr()
            .add(t * inner + g * GROUP)
            .cast::<i32>()
            .read_unaligned()
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, TILE_TOKENS, Tile, input_group};

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dots(tile: &Tile, acc: &mut [i32; TILE_TOKENS * BLOCK]) {
        with_tokens!(tile.tokens, |N| unsafe { group::<N>(tile, acc) })
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn group<const N: usize>(tile: &Tile, acc: &mut [i32; TILE_TOKENS * BLOCK]) {
        let flip = _mm512_set1_epi32(0x8080_8080_u32 as i32);
        let mut sums = [[_mm512_setzero_si512(); 4]; N];
        for g in 0..tile.inner / GROUP {
            // SAFETY: group g of the block is inside `w` (checked by the caller).
            let w = unsafe { tile.w.as_ptr().add(g * BLOCK * GROUP) };
            let wv: [__m512i; 4] =
                std::array::from_fn(|v| unsafe { _mm512_loadu_si512(w.add(64 * v).cast()) });
            for t in 0..N {
                // x + 128 as unsigned bytes: flipping the sign bit of each.
                let x = _mm512_set1_epi32(unsafe { input_group(tile.x, tile.inner, t, g) });
                let x = _mm512_xor_si512(x, flip);
                for v in 0..4 {
                    sums[t][v] = _mm512_dpbusd_epi32(sums[t][v], x, wv[v]);
                }
            }
        }
        for v in 0..4 {
            // SAFETY: `sums` holds BLOCK values and `acc` TILE_TOKENS rows of BLOCK.
            let correction = _mm512_slli_epi32::<7>(unsafe {
                _mm512_loadu_si512(tile.sums[16 * v..].as_ptr().cast())
            });
            for t in 0..N {
                let exact = _mm512_sub_epi32(sums[t][v], correction);
                unsafe {
                    _mm512_storeu_si512(acc[t * BLOCK + 16 * v..].as_mut_ptr().cast(), exact)
                };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx_vnni {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, TILE_TOKENS, Tile, input_group, prefetch_ahead};

    /// Features per pass: two 256-bit registers.
    const QUARTER: usize = BLOCK / 4;

    #[target_feature(enable = "avx2,avxvnni")]
    pub unsafe fn dots(tile: &Tile, acc: &mut [i32; TILE_TOKENS * BLOCK]) {
        for quarter in 0..4 {
            with_tokens!(tile.tokens, |N| unsafe { group::<N>(tile, quarter, acc) })
        }
    }

    #[target_feature(enable = "avx2,avxvnni")]
    #[inline]
    unsafe fn group<const N: usize>(
        tile: &Tile,
        quarter: usize,
        acc: &mut [i32; TILE_TOKENS * BLOCK],
    ) {
        let mut sums = [[_mm256_setzero_si256(); 2]; N];
        let first = QUARTER * quarter;
        for g in 0..tile.inner / GROUP {
            // SAFETY: group g of the block is inside `w` (checked by the caller).
            let w = unsafe { tile.w.as_ptr().add(g * BLOCK * GROUP + first * GROUP) };
            if quarter == 0 && tile.first {
                unsafe { prefetch_ahead(tile, g) };
            }
            let wv: [__m256i; 2] =
                std::array::from_fn(|v| unsafe { _mm256_loadu_si256(w.add(32 * v).cast()) });
            for t in 0..N {
                // x + 128 as unsigned bytes.
                let x =
                    _mm256_set1_epi32(unsafe { input_group(tile.x_unsigned, tile.inner, t, g) });
                for v in 0..2 {
                    sums[t][v] = _mm256_dpbusd_avx_epi32(sums[t][v], x, wv[v]);
                }
            }
        }
        for v in 0..2 {
            let at = first + 8 * v;
            // SAFETY: `sums` holds BLOCK values and `acc` TILE_TOKENS rows of BLOCK.
            let correction = _mm256_slli_epi32::<7>(unsafe {
                _mm256_loadu_si256(tile.sums[at..].as_ptr().cast())
            });
            for t in 0..N {
                let exact = _mm256_sub_epi32(sums[t][v], correction);
                unsafe { _mm256_storeu_si256(acc[t * BLOCK + at..].as_mut_ptr().cast(), exact) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, GROUP, TILE_TOKENS, Tile, input_group, prefetch_ahead};

    /// Features per pass: two 256-bit registers.
    const QUARTER: usize = BLOCK / 4;
    /// Tokens per pass: 3 × 2 accumulators leave registers for the weights, both forms of
    /// each input and the temporaries of sign, multiply and widen.
    const TOKENS: usize = 3;

    #[target_feature(enable = "avx2")]
    pub unsafe fn dots(tile: &Tile, acc: &mut [i32; TILE_TOKENS * BLOCK]) {
        for quarter in 0..4 {
            let mut t0 = 0;
            while t0 < tile.tokens {
                let n = TOKENS.min(tile.tokens - t0);
                with_tokens!(n, |N| unsafe { group::<N>(tile, quarter, t0, acc) });
                t0 += n;
            }
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn group<const N: usize>(
        tile: &Tile,
        quarter: usize,
        t0: usize,
        acc: &mut [i32; TILE_TOKENS * BLOCK],
    ) {
        let ones = _mm256_set1_epi16(1);
        let mut sums = [[_mm256_setzero_si256(); 2]; N];
        let first = QUARTER * quarter;
        for g in 0..tile.inner / GROUP {
            // SAFETY: group g of the block is inside `w` (checked by the caller).
            let w = unsafe { tile.w.as_ptr().add(g * BLOCK * GROUP + first * GROUP) };
            if quarter == 0 && tile.first {
                unsafe { prefetch_ahead(tile, g) };
            }
            let wv: [__m256i; 2] =
                std::array::from_fn(|v| unsafe { _mm256_loadu_si256(w.add(32 * v).cast()) });
            for t in 0..N {
                let x = _mm256_set1_epi32(unsafe { input_group(tile.x, tile.inner, t0 + t, g) });
                let magnitude = _mm256_set1_epi32(unsafe {
                    input_group(tile.x_unsigned, tile.inner, t0 + t, g)
                });
                for v in 0..2 {
                    // |x| · (w with x's sign) = x · w; pairs stay within 16 bits (see header).
                    let signed = _mm256_sign_epi8(wv[v], x);
                    let pairs = _mm256_maddubs_epi16(magnitude, signed);
                    sums[t][v] = _mm256_add_epi32(sums[t][v], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        for t in 0..N {
            for v in 0..2 {
                let at = (t0 + t) * BLOCK + first + 8 * v;
                // SAFETY: `acc` holds TILE_TOKENS rows of BLOCK.
                unsafe { _mm256_storeu_si256(acc[at..].as_mut_ptr().cast(), sums[t][v]) };
            }
        }
    }
}
