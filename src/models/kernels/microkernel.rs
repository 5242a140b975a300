//! The register tiles of the packed float32 product: a panel block of 48 features times a few
//! tokens, accumulated over a block of inputs, one variant per kernel path.
//!
//! AVX-512 keeps 8 tokens x 3 registers of 16 features in 24 accumulators; AVX2 keeps 6 tokens
//! x 2 registers of 8 features in 12 (and 1-2 tokens x the whole row of 6 registers); the portable tile is plain loops the compiler vectorises
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
    /// `None`: the sums are added to what `dst` holds. `Some(base)` (`columns` values): each
    /// output becomes `base[j] + Σ`, whatever `dst` held, so that the first block of a product
    /// needs no pass that fills its output with the bias or zeros first.
    pub base: Option<&'a [f32]>,
    /// The weights the next tile will read, or empty. The AVX-512 tile prefetches them into L2
    /// while it works, a share of the lines in each group of tokens, so that the next block is
    /// not pulled from memory by the FMAs that need it; without them (a decoder step's panels,
    /// streamed one after the other, or a task's last tile) its first group prefetches its own
    /// rows `PREFETCH_ROWS` ahead. (The AVX2 tile prefetches its own block ahead on its
    /// first pass always.)
    pub next_w: &'a [f32],
}

/// How many panel rows ahead a tile's first pass over weights that come from memory
/// prefetches them: 12 KiB, a memory latency's worth of a decoder step's stream. Without it
/// the AVX-512 tile left up to a tenth of the bandwidth unused on the AMD EPYC Zen 5 with
/// several rows a step (2 threads, alternating runs): t5-small's step at batch 8 6.86-8.0 ms
/// against 6.37-6.94 with it, at 4 beams 4.47-6.16 against 3.98-4.61, distilbart-cnn-12-6's
/// at batch 4 16.4-17.6 against 15.1-15.4; batch 1 within the noise.
#[cfg(target_arch = "x86_64")]
const PREFETCH_ROWS: usize = 64;

/// `dst[t * dst_stride + j] += Σ_k x[t][k] · w[k][j]` (or `= base[j] + Σ`, see
/// [`Tile::base`]) for every token `t` and feature `j < columns` of `tile`.
///
/// # Safety
/// `dst` must be valid for those writes (and for reads of them, without a base) and `path`
/// must be one the CPU supports.
pub unsafe fn f32_tile(path: KernelPath, tile: &Tile, dst: *mut f32) {
    let kc = tile.w.len() / PANEL;
    assert!(tile.w.len() == kc * PANEL && tile.columns <= PANEL);
    assert!(
        tile.base.is_none_or(|base| base.len() >= tile.columns),
        "tile base"
    );
    // No inputs would leave a base unwritten: the caller fills the output itself then.
    assert!(
        kc > 0 || tile.base.is_none(),
        "a tile with a base and no inputs"
    );
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
    match path.vector_kernels() {
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

/// Prefetches the outputs `dst[t * dst_stride + j]`, `j < width`, of the tile's tokens `t0..t0 +
/// tokens`, before the accumulation starts. An encoder task's outputs (256 rows by a run of
/// panels, megabytes) do not stay in cache between its blocks of inputs, and the epilogue's
/// loads of them come only after the whole block's FMAs: unfetched, a memory latency per tile
/// was a sixth of an AVX2 tile's time on a 4096-wide product (Zen 3).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_outputs(tile: &Tile, t0: usize, tokens: usize, dst: *mut f32, width: usize) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    for t in t0..t0 + tokens {
        let row = dst
            .wrapping_add(t * tile.dst_stride)
            .cast::<i8>()
            .cast_const();
        // Every line the row's `width` floats touch: a row need not start on a line.
        let mut at = 0;
        while at < 4 * width {
            // SAFETY: a prefetch never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(at)) };
            at += 64;
        }
        unsafe { _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(4 * width - 4)) };
    }
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
            unsafe {
                let at = dst.add((t0 + t) * tile.dst_stride + j);
                // (The output is read only without a base: with one it may be uninitialised.)
                let start = match tile.base {
                    Some(base) => base[j],
                    None => *at,
                };
                *at = start + acc[t][j];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{GROUP, PANEL, PREFETCH_ROWS, Tile};

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    pub unsafe fn tile(tile: &Tile, dst: *mut f32) {
        // Lanes of each of the 3 registers that hold real features.
        let masks: [__mmask16; 3] = std::array::from_fn(|v| {
            let lanes = tile.columns.saturating_sub(16 * v).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        });
        // The next block's lines, spread over the groups of tokens: each group prefetches its
        // share, one line per input in its first iterations.
        let groups = tile.tokens.div_ceil(8);
        let next_lines = tile.next_w.len() / 16;
        let share = next_lines.div_ceil(groups);
        token_groups!(tile.tokens, 8, [1, 2, 3, 4, 5, 6, 7], |t0, N| unsafe {
            let first = t0 / 8 * share;
            let prefetch = first..next_lines.min(first + share);
            // The first group's pass pulls the block from memory; the later ones hit the cache.
            let ahead = tile.next_w.is_empty() && t0 == 0;
            group::<N>(tile, t0, dst, masks, prefetch, ahead)
        });
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn group<const N: usize>(
        tile: &Tile,
        t0: usize,
        dst: *mut f32,
        masks: [__mmask16; 3],
        prefetch: std::ops::Range<usize>,
        ahead: bool,
    ) {
        let kc = tile.w.len() / PANEL;
        let w = tile.w.as_ptr();
        let x = unsafe {
            tile.x
                .as_ptr()
                .add(t0 / GROUP * tile.group_stride + t0 % GROUP)
        };
        super::prefetch_outputs(tile, t0, N, dst, PANEL);
        let mut acc = [[_mm512_setzero_ps(); 3]; N];
        let next = tile.next_w.as_ptr().cast::<i8>();
        for k in 0..kc {
            if k < prefetch.len() {
                // Into L2, where the next tile's groups read the block from (48 KiB fills L1).
                _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add(64 * (prefetch.start + k)));
            }
            // SAFETY: k < kc and t < tokens: inside `w` and `x` (checked by the caller).
            let wk = unsafe { w.add(k * PANEL) };
            if ahead {
                // Whole rows ahead, so that the stream from memory stays sequential.
                let row = wk.wrapping_add(PREFETCH_ROWS * PANEL).cast::<i8>();
                for line in 0..PANEL / 16 {
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64 * line));
                }
            }
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
        // The base's registers, loaded once for all the group's tokens.
        let base = tile.base.map(|base| {
            // SAFETY: the masks keep the reads to the base's `columns` values.
            std::array::from_fn::<_, 3, _>(|v| unsafe {
                _mm512_maskz_loadu_ps(masks[v], base.as_ptr().add(16 * v))
            })
        });
        for t in 0..N {
            for v in 0..3 {
                // SAFETY: the masks keep the reads and writes to the tile's real columns.
                unsafe {
                    let at = dst.add((t0 + t) * tile.dst_stride + 16 * v);
                    let start = match base {
                        Some(base) => base[v],
                        None => _mm512_maskz_loadu_ps(masks[v], at),
                    };
                    _mm512_mask_storeu_ps(at, masks[v], _mm512_add_ps(start, acc[t][v]));
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{GROUP, PANEL, PREFETCH_ROWS, Tile};

    /// Features per pass: a third of the panel row, one cache line, two registers.
    const PART: usize = 16;
    /// Tokens per pass: 6 x 2 accumulators, 2 weights and a broadcast are 15 of AVX2's 16
    /// registers.
    const TOKENS: usize = 6;
    const _: () = assert!(
        GROUP.is_multiple_of(2) && PANEL.is_multiple_of(PART),
        "token pairs stay inside a packed group, parts inside a panel"
    );

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile(tile: &Tile, dst: *mut f32) {
        // Tokens go 6 at a time (and 3 to 5 at the end) over 16 features: 12 accumulator chains
        // cover the FMA latency and each weight load serves 6 tokens. (4 x 24 needed all 16
        // registers and the compiler spilled an accumulator to the stack.) Each pass streams
        // one line of each panel row: 16 KiB of a 256-input block, which stays in a 32 KiB L1
        // while the task's tokens go over it. 1 or 2 tokens (a decoder step's few rows, or
        // what is left) go over the whole row instead, whose 6 chains per token keep up with
        // memory where 2 would wait on FMA latency. Each output is one FMA chain over k in
        // order either way, so the grouping never changes a result.
        let mut passes = tile.tokens / TOKENS * TOKENS;
        if tile.tokens - passes >= 3 {
            passes = tile.tokens;
        }
        for part in 0..PANEL / PART {
            let columns = tile.columns.saturating_sub(PART * part).min(PART);
            if columns == 0 || passes == 0 {
                break;
            }
            let lanes = lanes::<2>(columns);
            let dst = dst.wrapping_add(PART * part);
            let mut t0 = 0;
            while t0 < passes {
                // The first pass over the block pulls it from memory: that one prefetches.
                let prefetch = part == 0 && t0 == 0;
                match passes - t0 {
                    3 => unsafe { part_group::<3>(tile, part, t0, dst, lanes, prefetch) },
                    4 => unsafe { part_group::<4>(tile, part, t0, dst, lanes, prefetch) },
                    5 => unsafe { part_group::<5>(tile, part, t0, dst, lanes, prefetch) },
                    _ => unsafe { part_group::<TOKENS>(tile, part, t0, dst, lanes, prefetch) },
                }
                t0 += TOKENS;
            }
        }
        let lanes = lanes::<{ PANEL / 8 }>(tile.columns);
        let mut t0 = passes;
        while t0 < tile.tokens {
            if tile.tokens - t0 >= 2 {
                unsafe { row_group::<2>(tile, t0, dst, lanes) };
                t0 += 2;
            } else {
                unsafe { row_group::<1>(tile, t0, dst, lanes) };
                t0 += 1;
            }
        }
    }

    /// Which lanes of each of `R` registers of 8 features hold one of a tile's real columns.
    #[derive(Clone, Copy)]
    struct Lanes<const R: usize> {
        /// All bits set = a real column.
        masks: [__m256i; R],
        /// The register's 8 lanes are all real: it is loaded and stored whole. (`vmaskmovps`
        /// stores are microcoded on Zen 2/3: masking every register took a fifth of the
        /// tile's time in an encoder there.)
        whole: [bool; R],
    }

    /// The lanes of `R` registers that hold one of the first `columns` features.
    #[target_feature(enable = "avx2,fma")]
    fn lanes<const R: usize>(columns: usize) -> Lanes<R> {
        let count = |v: usize| columns.saturating_sub(8 * v).min(8);
        Lanes {
            masks: std::array::from_fn(|v| {
                _mm256_cmpgt_epi32(
                    _mm256_set1_epi32(count(v) as i32),
                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                )
            }),
            whole: std::array::from_fn(|v| count(v) == 8),
        }
    }

    /// Token `t0`'s packed inputs: its input `k` is `k * GROUP` floats on.
    unsafe fn inputs(tile: &Tile, t0: usize) -> *const f32 {
        unsafe {
            tile.x
                .as_ptr()
                .add(t0 / GROUP * tile.group_stride + t0 % GROUP)
        }
    }

    /// `dst` rows `t0..t0 + N` += `acc` (or `= base + acc`), in the real columns of the `R`
    /// registers from feature `8 * first` on.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn add_into<const N: usize, const R: usize>(
        tile: &Tile,
        (t0, first): (usize, usize),
        dst: *mut f32,
        acc: &[[__m256; R]; N],
        lanes: &Lanes<R>,
    ) {
        // The whole registers and the masks keep every read and write to the real columns.
        let load = |at: *const f32, v: usize| unsafe {
            if lanes.whole[v] {
                _mm256_loadu_ps(at)
            } else {
                _mm256_maskload_ps(at, lanes.masks[v])
            }
        };
        // SAFETY (both): the base holds the tile's `columns` values.
        let base: Option<[__m256; R]> = tile.base.map(|base| {
            std::array::from_fn(|v| load(unsafe { base.as_ptr().add(8 * (first + v)) }, v))
        });
        for t in 0..N {
            for v in 0..R {
                unsafe {
                    let at = dst.add((t0 + t) * tile.dst_stride + 8 * v);
                    let sum = _mm256_add_ps(base.map_or_else(|| load(at, v), |b| b[v]), acc[t][v]);
                    if lanes.whole[v] {
                        _mm256_storeu_ps(at, sum);
                    } else {
                        _mm256_maskstore_ps(at, lanes.masks[v], sum);
                    }
                }
            }
        }
    }

    /// Tokens `t0..t0 + N` times features `16 part..16 part + 16`, prefetching the block's rows
    /// ahead when `prefetch` (the first pass over it).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn part_group<const N: usize>(
        tile: &Tile,
        part: usize,
        t0: usize,
        dst: *mut f32,
        lanes: Lanes<2>,
        prefetch: bool,
    ) {
        let kc = tile.w.len() / PANEL;
        let w = unsafe { tile.w.as_ptr().add(PART * part) };
        // Six tokens may straddle two packed groups: one input pointer per token.
        let x: [*const f32; N] = std::array::from_fn(|t| unsafe { inputs(tile, t0 + t) });
        super::prefetch_outputs(tile, t0, N, dst, PART);
        let mut acc = [[_mm256_setzero_ps(); 2]; N];
        for k in 0..kc {
            // SAFETY: k < kc and t < tokens: inside `w` and `x` (checked by the caller).
            let wk = unsafe { w.add(k * PANEL) };
            if prefetch {
                // The first pass over the block (`prefetch`) pulls it from memory one line of each
                // row apart: fetch whole rows ahead, so the stream stays sequential and the later
                // passes hit the cache. (Only the first: the later ones would fetch into L1 what
                // is already in L2, evicting what they use.)
                let ahead = wk.wrapping_add(PREFETCH_ROWS * PANEL).cast::<i8>();
                for line in 0..PANEL / PART {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line * 64));
                }
            }
            let wv = unsafe { [_mm256_loadu_ps(wk), _mm256_loadu_ps(wk.add(8))] };
            for t in 0..N {
                let xb = _mm256_set1_ps(unsafe { *x[t].add(k * GROUP) });
                for v in 0..2 {
                    acc[t][v] = _mm256_fmadd_ps(wv[v], xb, acc[t][v]);
                }
            }
        }
        unsafe { add_into(tile, (t0, 2 * part), dst, &acc, &lanes) };
    }

    /// Tokens `t0..t0 + N` (N = 1 or 2) times the whole panel row.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn row_group<const N: usize>(
        tile: &Tile,
        t0: usize,
        dst: *mut f32,
        lanes: Lanes<{ PANEL / 8 }>,
    ) {
        let kc = tile.w.len() / PANEL;
        let w = tile.w.as_ptr();
        let x = unsafe { inputs(tile, t0) };
        let mut acc = [[_mm256_setzero_ps(); PANEL / 8]; N];
        for k in 0..kc {
            // SAFETY: k < kc and t < tokens: inside `w` and `x` (checked by the caller).
            let wk = unsafe { w.add(k * PANEL) };
            let xb: [__m256; N] =
                std::array::from_fn(|t| _mm256_set1_ps(unsafe { *x.add(k * GROUP + t) }));
            for v in 0..PANEL / 8 {
                let wv = unsafe { _mm256_loadu_ps(wk.add(8 * v)) };
                for t in 0..N {
                    acc[t][v] = _mm256_fmadd_ps(wv, xb[t], acc[t][v]);
                }
            }
        }
        unsafe { add_into(tile, (t0, 0), dst, &acc, &lanes) };
    }
}
