//! Float32 weights packed once at load for `x · Wᵀ` on the CPU, and the product over them.
//!
//! A PyTorch weight is `(out, in)`: each output feature's weights are contiguous. A blocked
//! GEMM wants the opposite, the weights of a few features for the same input next to each
//! other, so candle's GEMM repacks every weight matrix on every call (a strided gather that
//! took a tenth of the encoder's time). Here each matrix is packed once, when the model loads,
//! into panels of [`PANEL`] features: row `k` of panel `p` holds the weights of features
//! `48p..48p+48` for input `k`. The same panels serve every batch size: a decoder step streams
//! each panel once, the encoder reuses each cached block of a panel over many tokens.

use std::mem::MaybeUninit;
use std::sync::Arc;

use rayon::prelude::*;

use super::grid::{Grid, ROW_BLOCK};
use super::microkernel::{self, GROUP, Tile};
use super::path::{self, KernelPath};
use super::transpose::{Block, Write, transpose};

/// Output features per panel: three AVX-512 registers, six AVX2 ones.
pub const PANEL: usize = 48;
const _: () = assert!(PANEL.is_multiple_of(LINE), "a panel row is whole lines");
const _: () = assert!(
    ROW_BLOCK.is_multiple_of(GROUP),
    "a task's first token starts a packed group"
);

/// Inputs per cache block: a panel's block (48 KiB) stays in L1/L2 while tokens pass over it.
pub(super) const K_BLOCK: usize = 256;

/// Up to this many rows a product streams its weights panel after panel (see `matmul_into_on`).
const STREAMED_TOKENS: usize = 32;

/// Sixteen floats on a 64-byte boundary. A panel's row of [`PANEL`] weights is three of them,
/// so each AVX-512 load of a panel reads one whole cache line instead of straddling two.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

const LINE: usize = 16;

/// The floats of `lines`, in order.
fn floats(lines: &[Line]) -> &[f32] {
    // SAFETY: a `Line` is exactly 16 floats (repr(C), 64 bytes, no padding).
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast(), lines.len() * LINE) }
}

fn floats_mut(lines: &mut [Line]) -> &mut [f32] {
    // SAFETY: as in `floats`, and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), lines.len() * LINE) }
}

/// `count` lines of zeros, from zeroed memory: fresh pages are zero already, so none is
/// written here, and each is first touched by the packing thread that fills it. (A fill here
/// took every page fault of the model's weights on one thread: most of the load time.)
fn zeroed_lines(count: usize) -> Vec<Line> {
    if count == 0 {
        return Vec::new();
    }
    let layout = std::alloc::Layout::array::<Line>(count).expect("a weight fits in memory");
    // SAFETY: the layout is not empty; all-zero bytes are a valid `Line` (sixteen 0.0 floats);
    // the buffer comes from the global allocator with the layout a `Vec<Line>` of `count`
    // uses, so the vector frees it correctly.
    unsafe {
        let lines = std::alloc::alloc_zeroed(layout).cast::<Line>();
        if lines.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Vec::from_raw_parts(lines, count, count)
    }
}

/// An `(out, in)` float32 weight in panels (see the module header). Cloning shares the values.
#[derive(Debug, Clone)]
pub struct PackedF32 {
    /// An `Arc<Vec>`, not an `Arc<[Line]>`: making the latter from the packed vector copies
    /// it, into fresh pages, on one thread (a third of the load time).
    panels: Arc<Vec<Line>>,
    out: usize,
    inner: usize,
}

impl PackedF32 {
    /// Packs the row-major `(out, inner)` matrix `w`; the last panel is padded with zeros.
    pub fn pack(w: &[f32], out: usize, inner: usize) -> Self {
        assert_eq!(w.len(), out * inner, "pack: a {out}x{inner} weight");
        let panels = out.div_ceil(PANEL);
        let mut packed = zeroed_lines(panels * inner * PANEL / LINE);
        let path = path::active();
        floats_mut(&mut packed)
            .par_chunks_mut(inner * PANEL)
            .zip(w.par_chunks(inner * PANEL))
            .for_each(|(panel, rows)| {
                // The panel's features (rows of `w`) transposed: feature `j`'s input `k` at
                // `k * PANEL + j`.
                let block = Block {
                    rows: rows.len() / inner,
                    cols: inner,
                    stride: inner,
                };
                // SAFETY: `rows` holds the block's rows and `panel` (`inner` rows of PANEL >=
                // block.rows) its transposition; the CPU supports the active path.
                unsafe {
                    transpose(
                        path,
                        rows.as_ptr(),
                        block,
                        panel.as_mut_ptr(),
                        PANEL,
                        Write::Store,
                    )
                };
            });
        Self {
            panels: Arc::new(packed),
            out,
            inner,
        }
    }

    pub fn out(&self) -> usize {
        self.out
    }

    pub fn inner(&self) -> usize {
        self.inner
    }

    /// The row-major `(out, inner)` matrix back (what `--quantize` quantizes): each panel
    /// transposed back, in parallel.
    pub fn unpack(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.out * self.inner];
        if self.inner == 0 {
            return w;
        }
        let path = path::active();
        w.par_chunks_mut(PANEL * self.inner)
            .enumerate()
            .for_each(|(p, rows)| {
                // Panel `p` is `inner` rows of PANEL features; its real features are `rows`.
                let block = Block {
                    rows: self.inner,
                    cols: rows.len() / self.inner,
                    stride: PANEL,
                };
                // SAFETY: the panel holds `inner` rows of PANEL >= block.cols floats, `rows`
                // the block's transposition (cols rows of `inner`); the CPU supports the path.
                unsafe {
                    transpose(
                        path,
                        self.panel(p).as_ptr(),
                        block,
                        rows.as_mut_ptr(),
                        self.inner,
                        Write::Store,
                    )
                };
            });
        w
    }

    /// Row `feature` of the `(out, inner)` matrix into `row` (`inner` long): a token's
    /// embedding, when the matrix is a token matrix shared with an output head.
    pub fn row_into(&self, feature: usize, row: &mut [f32]) {
        let panel = self.panel(feature / PANEL);
        for (k, value) in row.iter_mut().enumerate() {
            *value = panel[k * PANEL + feature % PANEL];
        }
    }

    fn panel(&self, p: usize) -> &[f32] {
        &floats(&self.panels)[p * self.inner * PANEL..(p + 1) * self.inner * PANEL]
    }
}

/// `x (rows, inner) · Wᵀ (+ bias)`, row-major, on the kernel path in use.
pub fn matmul(x: &[f32], w: &PackedF32, bias: Option<&[f32]>, rows: usize) -> Vec<f32> {
    matmul_on(path::active(), x, w, bias, rows)
}

/// [`matmul`] on a given path, which the CPU must support.
pub(crate) fn matmul_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedF32,
    bias: Option<&[f32]>,
    rows: usize,
) -> Vec<f32> {
    // SAFETY: `product_on` writes every one of the `rows x out` floats, and nothing past them.
    unsafe { written_by(rows * w.out, |y| product_on(path, x, w, bias, rows, y)) }
}

/// [`matmul`] into `y` (`rows x out`, overwritten), so that a caller going over a big input in
/// chunks of rows writes each chunk's product in place.
pub fn matmul_into(x: &[f32], w: &PackedF32, bias: Option<&[f32]>, rows: usize, y: &mut [f32]) {
    matmul_into_on(path::active(), x, w, bias, rows, y);
}

fn matmul_into_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedF32,
    bias: Option<&[f32]>,
    rows: usize,
    y: &mut [f32],
) {
    let y = output_of(y, rows, w.out);
    // SAFETY: `y` holds the `rows x out` floats `product_on` writes.
    unsafe { product_on(path, x, w, bias, rows, y) };
}

/// A vector of `len` floats, each written by `write` (given where they go) and none zeroed
/// first: on the calling thread alone, a fill before the tiles write the output took 4-6% of
/// an encoder's samples.
///
/// # Safety
/// `write` must write all `len` floats from the pointer it gets, and nothing past them.
pub(super) unsafe fn written_by(len: usize, write: impl FnOnce(*mut f32)) -> Vec<f32> {
    let mut y = Vec::with_capacity(len);
    write(y.as_mut_ptr());
    // SAFETY: `write` initialised the `len` floats (the caller's promise).
    unsafe { y.set_len(len) };
    y
}

/// Where a product of `rows x out` floats goes in `y`, after checking that it holds them.
pub(super) fn output_of(y: &mut [f32], rows: usize, out: usize) -> *mut f32 {
    assert_eq!(y.len(), rows * out, "matmul: {rows} rows of {out} out");
    y.as_mut_ptr()
}

/// A zero for each feature of a panel: the base of a product without a bias.
static ZEROS: [f32; PANEL] = [0.0; PANEL];

/// Writes `x · Wᵀ (+ bias)` into the `rows x out` floats at `y`, every one of them, whatever
/// they held (they need not be initialised).
///
/// # Safety
/// `y` must be valid for writes of `rows * w.out()` floats, and the CPU must support `path`.
unsafe fn product_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedF32,
    bias: Option<&[f32]>,
    rows: usize,
    y: *mut f32,
) {
    let (out, inner) = (w.out, w.inner);
    assert_eq!(x.len(), rows * inner, "matmul: {rows} rows of {inner}");
    assert!(bias.is_none_or(|b| b.len() == out), "matmul: bias of {out}");
    // The outputs are written by the tiles of the first block of inputs, so there must be one
    // (`pack` cannot make a weight without inputs either).
    assert!(inner > 0, "matmul: a weight without inputs");
    let xp = pack_inputs(path, x, rows, inner);
    let grid = Grid::new(rows, out.div_ceil(PANEL));
    let dst = SharedOut(y);
    (0..grid.tasks()).into_par_iter().for_each(|task| {
        let (tokens, panels) = grid.task(task);
        let block = |p: usize, k0: usize| {
            let kc = K_BLOCK.min(inner - k0);
            &w.panel(p)[k0 * PANEL..(k0 + kc) * PANEL]
        };
        let tile = |p: usize, k0: usize, next_w: &[f32]| {
            let columns = PANEL.min(out - p * PANEL);
            // The first block of inputs starts each output from the bias (or zero) instead
            // of adding to it: the output needs no pass that fills it first. (On the
            // calling thread alone, such a pass took 4-6% of an encoder's samples.)
            let base = (k0 == 0).then(|| match bias {
                Some(b) => &b[p * PANEL..p * PANEL + columns],
                None => &ZEROS[..columns],
            });
            let tile = Tile {
                w: block(p, k0),
                x: &xp[tokens.start / GROUP * inner * GROUP + k0 * GROUP..],
                group_stride: inner * GROUP,
                tokens: tokens.len(),
                columns,
                dst_stride: out,
                base,
                next_w,
            };
            // SAFETY: this task alone writes the columns of `panels` in rows `tokens` (the
            // tasks of the grid do not overlap), all inside `y`; it reads only what its first
            // block wrote.
            unsafe { microkernel::f32_tile(path, &tile, dst.at(tokens.start * out + p * PANEL)) };
        };
        // Each output adds its blocks of inputs in order either way; only the traversal differs.
        if tokens.len() <= STREAMED_TOKENS {
            // A decoder step's few rows: each panel whole, then the next, which lies right
            // after it: the task's weights are one sequential stream from memory.
            for p in panels {
                (0..inner).step_by(K_BLOCK).for_each(|k0| tile(p, k0, &[]));
            }
        } else {
            // Many tokens: one block of inputs across the task's panels, so the tokens' packed
            // inputs for that block stay in cache while every panel passes over them. The next
            // panel's block is not the next address, which the hardware would prefetch, so each
            // tile prefetches it while it works: on an Intel Xeon (AVX-512) a tile whose weights
            // came cold from memory ran at 125-129 GFLOP/s against 143-152 with this.
            for k0 in (0..inner).step_by(K_BLOCK) {
                for p in panels.clone() {
                    let next_w = if p + 1 < panels.end {
                        block(p + 1, k0)
                    } else if k0 + K_BLOCK < inner {
                        block(panels.start, k0 + K_BLOCK)
                    } else {
                        &[]
                    };
                    tile(p, k0, next_w);
                }
            }
        }
    });
}

/// `x (rows, inner)` in groups of [`GROUP`] tokens: input `k` of token `t` at
/// `(t / GROUP) * inner * GROUP + k * GROUP + t % GROUP` (the last group padded with zeros).
fn pack_inputs(path: KernelPath, x: &[f32], rows: usize, inner: usize) -> Vec<f32> {
    let len = rows.div_ceil(GROUP) * GROUP * inner;
    let mut xp = Vec::with_capacity(len);
    // Written in parallel, never zeroed first: a whole group's transposition writes all of it.
    xp.spare_capacity_mut()[..len]
        .par_chunks_mut(GROUP * inner)
        .zip(x.par_chunks(GROUP * inner))
        .for_each(|(group, x)| pack_group(path, x, inner, group));
    // SAFETY: `pack_group` wrote every group (`len` is a whole number of them).
    unsafe { xp.set_len(len) };
    xp
}

/// One group of up to [`GROUP`] token rows `x` into `group` (see [`pack_inputs`]): the
/// rows transposed, input `k` of token `t` at `k * GROUP + t`; every value of `group` is
/// written, the missing tokens' as zeros.
fn pack_group(path: KernelPath, x: &[f32], inner: usize, group: &mut [MaybeUninit<f32>]) {
    let block = Block {
        rows: x.len() / inner,
        cols: inner,
        stride: inner,
    };
    assert!(block.rows <= GROUP && group.len() >= inner * GROUP);
    if block.rows < GROUP {
        group.fill(MaybeUninit::new(0.0));
    }
    // SAFETY: `x` holds the block's rows, `group` its transposition (checked above), and the
    // CPU supports the path.
    unsafe {
        transpose(
            path,
            x.as_ptr(),
            block,
            group.as_mut_ptr().cast(),
            GROUP,
            Write::Store,
        )
    };
}

/// The output's base pointer, shared by tasks that write disjoint parts of it (this file's
/// panels' columns; `int8`'s (block, row) parts).
#[derive(Clone, Copy)]
pub(super) struct SharedOut(pub(super) *mut f32);

// SAFETY: every user gives each task its own disjoint part of the output (see the callers'
// `matmul_on`).
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub(super) fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    #[test]
    fn a_row_gets_the_same_bits_in_a_batch_of_any_size_on_every_path() {
        // 300 inputs: more than one K block; 100 features: a partial panel.
        let (inner, out) = (300, 100);
        let (w, bias) = (values(out * inner, 5), values(out, 6));
        let packed = PackedF32::pack(&w, out, inner);
        for path in KernelPath::supported() {
            super::super::assert_rows_independent(&format!("packed {path}"), inner, |x, rows| {
                matmul_on(path, x, &packed, Some(&bias), rows)
            });
        }
    }

    #[test]
    fn a_product_overwrites_whatever_its_output_held() {
        // The first block of inputs starts each output from the bias or zero, with nothing
        // filled in first: what the buffer held before must not leak into the product. 3 rows
        // take the decoder's traversal and 40 the encoder's; 300 inputs are two blocks.
        let (inner, out) = (300, 100);
        let packed = PackedF32::pack(&values(out * inner, 7), out, inner);
        super::super::assert_overwrites_its_output(
            (inner, out),
            &[3, 40],
            |path, x, bias, rows| matmul_on(path, x, &packed, bias, rows),
            |path, x, bias, rows, y| matmul_into_on(path, x, &packed, bias, rows, y),
        );
    }

    #[test]
    fn every_path_matches_a_plain_product_on_every_remainder() {
        // Odd sizes exercise every tail: tokens not a multiple of a tile, features not a
        // multiple of a panel, inputs not a multiple of a K block.
        for (rows, inner, out) in [
            (1, 8, 4),
            (3, 13, 50),
            (5, 300, 97),
            (13, 64, 48),
            (300, 24, 5),
        ] {
            let x = values(rows * inner, 1);
            let w = values(out * inner, 2);
            let bias = values(out, 3);
            let packed = PackedF32::pack(&w, out, inner);
            assert_eq!(packed.unpack(), w);
            for path in KernelPath::supported() {
                for bias in [None, Some(bias.as_slice())] {
                    let ours = matmul_on(path, &x, &packed, bias, rows);
                    for r in 0..rows {
                        for f in 0..out {
                            let dot: f64 = (0..inner)
                                .map(|k| f64::from(x[r * inner + k]) * f64::from(w[f * inner + k]))
                                .sum();
                            let want = dot + bias.map_or(0.0, |b| f64::from(b[f]));
                            let got = f64::from(ours[r * out + f]);
                            assert!(
                                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "{path} {rows}x{inner}x{out} [{r},{f}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
