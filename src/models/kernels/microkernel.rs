//! The register tiles of the packed float32 product: a panel block of 48 features times a few
//! tokens, accumulated over a block of inputs, one variant per kernel path.
//!
//! AVX-512 keeps 8 tokens x 3 registers of 16 features in 24 accumulators; AVX2 keeps 2 tokens
//! x 6 registers of 8 features in 12; the portable tile is plain loops the compiler vectorises
//! for the baseline target. Every output sums its inputs in order, one FMA chain, whatever the
//! tile's token count: the grouping of tokens never changes a result.

// Register tiles are indexed by position on purpose: the loops unroll into fixed registers.
#![allow(clippy::needless_range_loop)]

use super::packed::PANEL;
use super::path::KernelPath;

/// Tokens per group of packed inputs: input `k` of the group's tokens are [`GROUP`] adjacent
/// floats, so each broadcast in a tile reads the next address.
pub const GROUP: usize = 8;

/// One block of work: `kc = w.len() / PANEL` inputs of one panel against `tokens` tokens.
pub struct Tile<'a> {
    /// `kc` rows of [`PANEL`] weights.
    pub w: &'a [f32],
    /// Packed inputs: token `t`'s input `k` (for `k < kc`) is
    /// `x[(t / GROUP) * group_stride + k * GROUP + t % GROUP]`.
    pub x: &'a [f32],
    pub group_stride: usize,
    pub tokens: usize,
    /// Features of the panel that exist (the last panel of a matrix may be padded).
    pub columns: usize,
    /// Token `t`'s feature `j` is at `dst[t * dst_stride + j]`.
    pub dst_stride: usize,
}

/// `dst[t * dst_stride + j] += Σ_k x[t][k] · w[k][j]` for every token `t` and feature
/// `j < columns` of `tile`.
///
/// # Safety
/// `dst` must be valid for those writes and `path` must be one the CPU supports.
pub unsafe fn f32_tile(path: KernelPath, tile: &Tile, dst: *mut f32) {
    let kc = tile.w.len() / PANEL;
    assert!(tile.w.len() == kc * PANEL && tile.columns <= PANEL);
    if tile.tokens == 0 || kc == 0 {
        return;
    }
    let last = tile.tokens - 1;
    assert!(
        tile.x.len() > last / GROUP * tile.group_stride + (kc - 1) * GROUP + last % GROUP,
        "tile inputs"
    );
    // SAFETY (each arm): the reads stay inside `w` and `x` (checked above), the writes inside
    // what the caller guarantees, and the CPU supports the path.
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { avx512::tile(tile, dst) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe { avx2::tile(tile, dst) },
        _ => unsafe { portable_tile(tile, dst) },
    }
}

/// Runs `$call` with the constant `$n` = `$full` for each whole group of `$full` tokens from
/// `$t0 = 0` on, then once with `$n` = the number of tokens left (one of `$rest`).
macro_rules! token_groups {
    ($tokens:expr, $full:literal, [$($rest:literal),*], |$t0:ident, $n:ident| $call:expr) => {{
        let mut $t0 = 0;
        while $t0 + $full <= $tokens {
            const $n: usize = $full;
            $call;
            $t0 += $full;
        }
        match $tokens - $t0 {
            0 => {}
            $($rest => {
                const $n: usize = $rest;
                $call
            })*
            _ => unreachable!("fewer than a whole group are left"),
        }
    }};
}

unsafe fn portable_tile(tile: &Tile, dst: *mut f32) {
    token_groups!(tile.tokens, 4, [1, 2, 3], |t0, N| unsafe {
        portable_group::<N>(tile, t0, dst)
    });
}

#[inline(always)]
unsafe fn portable_group<const N: usize>(tile: &Tile, t0: usize, dst: *mut f32) {
    let mut acc = [[0f32; PANEL]; N];
    let x = &tile.x[t0 / GROUP * tile.group_stride + t0 % GROUP..];
    for (k, w) in tile.w.chunks_exact(PANEL).enumerate() {
        for t in 0..N {
            let xv = x[k * GROUP + t];
            for j in 0..PANEL {
                acc[t][j] += w[j] * xv;
            }
        }
    }
    for t in 0..N {
        for j in 0..tile.columns {
            // SAFETY: the caller guarantees the destination rows and columns.
            unsafe { *dst.add((t0 + t) * tile.dst_stride + j) += acc[t][j] };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{GROUP, PANEL, Tile};

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    pub unsafe fn tile(tile: &Tile, dst: *mut f32) {
        // Lanes of each of the 3 registers that hold real features.
        let masks: [__mmask16; 3] = std::array::from_fn(|v| {
            let lanes = tile.columns.saturating_sub(16 * v).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        });
        token_groups!(tile.tokens, 8, [1, 2, 3, 4, 5, 6, 7], |t0, N| unsafe {
            group::<N>(tile, t0, dst, masks)
        });
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn group<const N: usize>(tile: &Tile, t0: usize, dst: *mut f32, masks: [__mmask16; 3]) {
        let kc = tile.w.len() / PANEL;
        let w = tile.w.as_ptr();
        let x = unsafe {
            tile.x
                .as_ptr()
                .add(t0 / GROUP * tile.group_stride + t0 % GROUP)
        };
        let mut acc = [[_mm512_setzero_ps(); 3]; N];
        for k in 0..kc {
            // SAFETY: k < kc and t < tokens: inside `w` and `x` (checked by the caller).
            let wk = unsafe { w.add(k * PANEL) };
            let wv = unsafe {
                [
                    _mm512_loadu_ps(wk),
                    _mm512_loadu_ps(wk.add(16)),
                    _mm512_loadu_ps(wk.add(32)),
                ]
            };
            for t in 0..N {
                let xb = _mm512_set1_ps(unsafe { *x.add(k * GROUP + t) });
                for v in 0..3 {
                    acc[t][v] = _mm512_fmadd_ps(wv[v], xb, acc[t][v]);
                }
            }
        }
        for t in 0..N {
            for v in 0..3 {
                // SAFETY: the masks keep the writes to the tile's real columns.
                unsafe {
                    let at = dst.add((t0 + t) * tile.dst_stride + 16 * v);
                    let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], at), acc[t][v]);
                    _mm512_mask_storeu_ps(at, masks[v], sum);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{GROUP, PANEL, Tile};

    /// Registers of 8 floats per panel row.
    const REGISTERS: usize = PANEL / 8;
    const _: () = assert!(
        GROUP.is_multiple_of(2),
        "token pairs stay inside a packed group"
    );

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile(tile: &Tile, dst: *mut f32) {
        // Lanes of each register that hold real features (all bits set = on).
        let masks: [__m256i; REGISTERS] = std::array::from_fn(|v| {
            let lanes = tile.columns.saturating_sub(8 * v).min(8) as i32;
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(lanes),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        });
        // Two tokens over the whole panel row: 12 accumulators, 2 broadcasts and one weight
        // register reused by both tokens fit AVX2's 16 registers. (Four tokens over half a
        // panel needed all 16 and the compiler spilled an accumulator to the stack, a
        // store-to-load chain in the inner loop that made the tile ~40% slower.)
        token_groups!(tile.tokens, 2, [1], |t0, N| unsafe {
            group::<N>(tile, t0, dst, masks)
        });
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn group<const N: usize>(
        tile: &Tile,
        t0: usize,
        dst: *mut f32,
        masks: [__m256i; REGISTERS],
    ) {
        let kc = tile.w.len() / PANEL;
        let w = tile.w.as_ptr();
        // Two tokens never straddle a group of GROUP (even) packed tokens.
        let x = unsafe {
            tile.x
                .as_ptr()
                .add(t0 / GROUP * tile.group_stride + t0 % GROUP)
        };
        let mut acc = [[_mm256_setzero_ps(); REGISTERS]; N];
        for k in 0..kc {
            // SAFETY: k < kc and t < tokens: inside `w` and `x` (checked by the caller).
            let wk = unsafe { w.add(k * PANEL) };
            let xb: [__m256; N] =
                std::array::from_fn(|t| _mm256_set1_ps(unsafe { *x.add(k * GROUP + t) }));
            for v in 0..REGISTERS {
                let wv = unsafe { _mm256_loadu_ps(wk.add(8 * v)) };
                for t in 0..N {
                    acc[t][v] = _mm256_fmadd_ps(wv, xb[t], acc[t][v]);
                }
            }
        }
        for t in 0..N {
            for v in 0..REGISTERS {
                // SAFETY: the masks keep the writes to the tile's real columns.
                unsafe {
                    let at = dst.add((t0 + t) * tile.dst_stride + 8 * v);
                    let sum = _mm256_add_ps(_mm256_maskload_ps(at, masks[v]), acc[t][v]);
                    _mm256_maskstore_ps(at, masks[v], sum);
                }
            }
        }
    }
}
