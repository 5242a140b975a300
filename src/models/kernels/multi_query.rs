//! Softmax attention for many queries at once (the encoder), on the CPU, in float32, without
//! materialising the scores of all heads.
//!
//! candle runs attention as `q · kᵀ` over every head into a `(rows, heads, queries, keys)`
//! tensor, adds the bias broadcast to that size, softmaxes it into another one, multiplies by
//! the values and copies the context back into `(rows, queries, heads · head_dim)`: for 8 inputs
//! of 1024 tokens and 16 heads each of those tensors is 512 MB. Here one task takes one head of
//! one input row and a panel of [`PANEL`] queries, and runs both products on the register tiles
//! of the packed float32 product ([`microkernel`]):
//! - scoresᵀ `(keys, PANEL)` = keys · the panel's queries, the queries packed as a weight panel
//!   and the keys as inputs in groups of [`GROUP`];
//! - the biases added, each column exponentiated against its maximum (a softmax without its
//!   division), which leaves the scores in exactly the layout of a weight panel;
//! - contextᵀ `(head_dim, PANEL)` = valuesᵀ · those weights, over the keys in blocks of
//!   [`K_BLOCK`], divided by each column's sum as it is written into the context's columns.
//!
//! Each input row's keys and values are packed once per head, for all its query panels.
//! Every sum runs over keys or head dimensions in a fixed order, whatever the batch.
//!
//! With [`Products::Bf16`] (`--dtype bf16`) on the `amx` path, both products run on the AMX
//! tiles instead ([`super::amx`]), and on `avx512-bf16` on `vdpbf16ps` ([`super::bf16`]):
//! queries, keys, values and the exponentiated scores are rounded to bfloat16 and summed in
//! float32, as PyTorch's bfloat16 attention does; the biases, the softmax and the division
//! stay float32. Elsewhere both products stay float32 (the widening bfloat16 kernels would
//! be no faster than these tiles).

use rayon::prelude::*;

use super::microkernel::{self, GROUP, Tile};
use super::packed::{K_BLOCK, PANEL, SharedOut};
use super::path::{self, KernelPath};
use super::softmax::exp_columns_on;
use super::transpose::{Block, Write, transpose};

/// Queries, keys or values: element `(row, head, token, d)` is at
/// `data[row * strides[0] + head * strides[1] + token * strides[2] + d]`.
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub strides: [usize; 3],
}

impl<'a> Heads<'a> {
    /// The `head_dim` values of one token of one row and head.
    fn token(&self, row: usize, head: usize, token: usize, head_dim: usize) -> &'a [f32] {
        let start = row * self.strides[0] + head * self.strides[1] + token * self.strides[2];
        &self.data[start..start + head_dim]
    }

    /// Tokens `first..first + count` of one row and head as a block to transpose: a pointer
    /// to the first value, checked to hold the whole block.
    fn tokens(
        &self,
        (row, head): (usize, usize),
        first: usize,
        count: usize,
        head_dim: usize,
    ) -> (*const f32, Block) {
        let block = Block {
            rows: count,
            cols: head_dim,
            stride: self.strides[2],
        };
        if count > 0 {
            // Its last value, bounds-checked.
            self.token(row, head, first + count - 1, head_dim);
        }
        let start = row * self.strides[0] + head * self.strides[1] + first * self.strides[2];
        (self.data.as_ptr().wrapping_add(start), block)
    }
}

/// An additive bias over keys: the biases of query `(row, head, query)` are the `keys` values
/// from `values[row * strides[0] + head * strides[1] + query * strides[2]]` on (a stride of 0
/// broadcasts).
#[derive(Debug, Clone, Copy)]
pub struct Bias<'a> {
    pub values: &'a [f32],
    pub strides: [usize; 3],
}

/// Shapes of one call: `rows` inputs with `heads` heads of `head_dim`, `queries` queries
/// attending to `keys` keys.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub rows: usize,
    pub heads: usize,
    pub queries: usize,
    pub keys: usize,
    pub head_dim: usize,
}

/// How attention's two products run: float32, or (for a model whose projections are
/// bfloat16) bfloat16 on the AMX tiles where the path has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    Float32,
    Bf16,
}

/// The context `(rows, queries, heads * head_dim)` of `softmax(q · kᵀ + Σ biases) · v`.
pub fn multi_query(
    q: Heads,
    k: Heads,
    v: Heads,
    biases: &[Bias],
    shape: Shape,
    products: Products,
) -> Vec<f32> {
    let path = path::active();
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if products == Products::Bf16 && path.has_avx512_bf16() {
        // SAFETY: the `amx` path exists only where the tiles are usable, and every path with
        // AVX512-BF16 has AVX-512 F/BW too.
        return unsafe { tiles::multi_query(path, (q, k, v), biases, shape) };
    }
    let _ = products;
    multi_query_on(path, (q, k, v), biases, shape)
}

/// [`multi_query`] on a given path, which the CPU must support.
pub(crate) fn multi_query_on(
    path: KernelPath,
    (q, k, v): (Heads, Heads, Heads),
    biases: &[Bias],
    shape: Shape,
) -> Vec<f32> {
    let Shape {
        rows,
        heads,
        queries,
        keys,
        head_dim,
    } = shape;
    let mut out = vec![0f32; rows * queries * heads * head_dim];
    if out.is_empty() || keys == 0 {
        return out;
    }
    let packing = Packing {
        path,
        keys,
        head_dim,
    };
    // Padding stays zero: every row packs into the same positions.
    let mut packed = vec![0f32; heads * packing.len()];
    let panels = queries.div_ceil(PANEL);
    let dst = SharedOut(out.as_mut_ptr());
    for row in 0..rows {
        packed
            .par_chunks_mut(packing.len())
            .enumerate()
            .for_each(|(head, buffer)| packing.pack(k, v, (row, head), buffer));
        // Tasks of one head next to each other: its packed keys and values stay in cache.
        (0..heads * panels).into_par_iter().for_each(|task| {
            let (head, panel) = (task / panels, task % panels);
            let buffer = &packed[head * packing.len()..(head + 1) * packing.len()];
            let task = Task {
                path,
                row,
                head,
                first: panel * PANEL,
                shape,
            };
            task.run(q, packing.split(buffer), biases, &dst);
        });
    }
    out
}

/// Where one head's keys and values go in its packing buffer: keys as product inputs in groups
/// of [`GROUP`] keys, then valuesᵀ (head dimensions as the inputs' tokens, keys as their
/// inner index) in groups of [`GROUP`] dimensions.
#[derive(Debug, Clone, Copy)]
struct Packing {
    path: KernelPath,
    keys: usize,
    head_dim: usize,
}

impl Packing {
    fn keys_len(&self) -> usize {
        self.keys.div_ceil(GROUP) * GROUP * self.head_dim
    }

    fn len(&self) -> usize {
        self.keys_len() + self.head_dim.div_ceil(GROUP) * GROUP * self.keys
    }

    fn split<'a>(&self, buffer: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        buffer.split_at(self.keys_len())
    }

    fn pack(&self, k: Heads, v: Heads, (row, head): (usize, usize), buffer: &mut [f32]) {
        let Self {
            path,
            keys,
            head_dim,
        } = *self;
        let (packed_k, packed_v) = buffer.split_at_mut(self.keys_len());
        for s0 in (0..keys).step_by(GROUP) {
            // The group's keys transposed: dimension `d` of key `s0 + t` at `d * GROUP + t`.
            let (src, block) = k.tokens((row, head), s0, GROUP.min(keys - s0), head_dim);
            let group = &mut packed_k[s0 * head_dim..(s0 + GROUP) * head_dim];
            // SAFETY: `tokens` checked the block's reads; the group holds its transposition.
            unsafe { transpose(path, src, block, group.as_mut_ptr(), GROUP, Write::Store) };
        }
        for s in 0..keys {
            for (d, value) in v.token(row, head, s, head_dim).iter().enumerate() {
                packed_v[d / GROUP * keys * GROUP + s * GROUP + d % GROUP] = *value;
            }
        }
    }
}

/// One head of one input row, for the panel of queries from `first` on.
struct Task {
    path: KernelPath,
    row: usize,
    head: usize,
    first: usize,
    shape: Shape,
}

impl Task {
    fn run(
        &self,
        q: Heads,
        (keys_in, values_in): (&[f32], &[f32]),
        biases: &[Bias],
        dst: &SharedOut,
    ) {
        let Shape {
            queries,
            keys,
            head_dim,
            ..
        } = self.shape;
        let count = PANEL.min(queries - self.first);
        // The panel's queries as a weight panel: row `d` holds dimension `d` of each query.
        let mut panel = vec![0f32; head_dim * PANEL];
        self.transpose_queries(q, count, &mut panel);
        let mut weights = vec![0f32; keys * PANEL];
        let scores = Tile {
            w: &panel,
            x: keys_in,
            group_stride: head_dim * GROUP,
            tokens: keys,
            columns: count,
            dst_stride: PANEL,
            base: None,
            next_w: &[],
        };
        // SAFETY: `weights` holds `keys` rows of PANEL >= `count` columns.
        unsafe { microkernel::f32_tile(self.path, &scores, weights.as_mut_ptr()) };
        self.add_biases(biases, count, &mut weights);
        let sums = exp_columns_on(self.path, &mut weights);
        let mut context = vec![0f32; head_dim * PANEL];
        for k0 in (0..keys).step_by(K_BLOCK) {
            let kc = K_BLOCK.min(keys - k0);
            let tile = Tile {
                w: &weights[k0 * PANEL..(k0 + kc) * PANEL],
                x: &values_in[k0 * GROUP..],
                group_stride: keys * GROUP,
                tokens: head_dim,
                columns: count,
                dst_stride: PANEL,
                base: None,
                next_w: &[],
            };
            // SAFETY: `context` holds `head_dim` rows of PANEL >= `count` columns.
            unsafe { microkernel::f32_tile(self.path, &tile, context.as_mut_ptr()) };
        }
        self.write_context(&context, &sums, dst);
    }

    /// The task's `count` queries of its head, transposed into the first `head_dim` rows of
    /// [`PANEL`] of `rows`, zeros past the last query (`rows` may be reused from another task).
    fn transpose_queries(&self, q: Heads, count: usize, rows: &mut [f32]) {
        let head_dim = self.shape.head_dim;
        assert!(count <= PANEL && rows.len() >= head_dim * PANEL);
        let (queries, block) = q.tokens((self.row, self.head), self.first, count, head_dim);
        // SAFETY: `queries` holds the block (`tokens` checked it); `rows` holds `head_dim`
        // rows of PANEL (checked above), and the block writes `count` <= PANEL of each.
        unsafe {
            transpose(
                self.path,
                queries,
                block,
                rows.as_mut_ptr(),
                PANEL,
                Write::Store,
            )
        };
        for row in rows.chunks_exact_mut(PANEL).take(head_dim) {
            row[count..].fill(0.0);
        }
    }

    /// Writes the contextᵀ `context` (`head_dim` rows of [`PANEL`] queries, the first of them
    /// this task's) into its queries' rows of the output, each divided by its query's `sums`.
    fn write_context(&self, context: &[f32], sums: &[f32; PANEL], dst: &SharedOut) {
        let Shape {
            heads,
            queries,
            head_dim,
            ..
        } = self.shape;
        let count = PANEL.min(queries - self.first);
        assert!(context.len() >= head_dim * PANEL);
        let width = heads * head_dim;
        let start = (self.row * queries + self.first) * width + self.head * head_dim;
        let block = Block {
            rows: head_dim,
            cols: count,
            stride: PANEL,
        };
        // SAFETY: this task alone writes this head's columns of its queries' rows, all inside
        // the output (`multi_query_on` gives each task its own head and panel); `context`
        // holds the block.
        unsafe {
            transpose(
                self.path,
                context.as_ptr(),
                block,
                dst.at(start),
                width,
                Write::Store,
            );
            for (i, sum) in sums.iter().take(count).enumerate() {
                let query = std::slice::from_raw_parts_mut(dst.at(start + i * width), head_dim);
                query.iter_mut().for_each(|value| *value /= sum);
            }
        }
    }

    /// Adds every bias to the scoresᵀ `weights` (`keys` rows of [`PANEL`] queries).
    fn add_biases(&self, biases: &[Bias], count: usize, weights: &mut [f32]) {
        let keys = self.shape.keys;
        for bias in biases {
            let [rs, hs, qs] = bias.strides;
            let start = |i: usize| self.row * rs + self.head * hs + (self.first + i) * qs;
            if qs == 0 {
                // The same bias for every query (padding): one value per key, added across.
                let values = &bias.values[start(0)..start(0) + keys];
                for (row, b) in weights.chunks_exact_mut(PANEL).zip(values) {
                    row.iter_mut().for_each(|w| *w += b);
                }
                continue;
            }
            // A bias per query (T5's positions) is transposed on the way in.
            let block = Block {
                rows: count,
                cols: keys,
                stride: qs,
            };
            let values = &bias.values[start(0)..start(count - 1) + keys];
            // SAFETY: `values` holds the block (sliced above) and `weights` its transposition.
            unsafe {
                transpose(
                    self.path,
                    values.as_ptr(),
                    block,
                    weights.as_mut_ptr(),
                    PANEL,
                    Write::Add,
                )
            };
        }
    }
}

/// Both products of attention in bfloat16, on the AMX tiles or by `vdpbf16ps` (see the
/// module header).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tiles {
    use rayon::prelude::*;

    use super::super::amx::Tiles;
    use super::super::bf16::{TILE_ROWS, bf16_row_into, dot_tile};
    use super::super::softmax::exp_columns_on;
    use super::super::transpose::{Write, transpose};
    use super::{Bias, Heads, PANEL, Shape, SharedOut, Task};
    use crate::models::kernels::path::KernelPath;

    /// Inputs per tile step; also the row count the tiles take (two input tiles).
    const CHUNK: usize = 32;
    /// Features of one weight tile: the query panel (48) is three of them.
    const TILE_FEATURES: usize = 16;

    /// One head's keys (`keys` rows of `head_dim`) and valuesᵀ (`head_dim` rows of `keys`) as
    /// bfloat16, both padded with zeros to whole chunks, the layouts the input tiles read.
    #[derive(Clone, Copy)]
    struct Packing {
        keys: usize,
        head_dim: usize,
    }

    impl Packing {
        fn keys_padded(&self) -> usize {
            self.keys.div_ceil(CHUNK) * CHUNK
        }

        fn dims_padded(&self) -> usize {
            self.head_dim.div_ceil(CHUNK) * CHUNK
        }

        fn len(&self) -> usize {
            2 * self.keys_padded() * self.dims_padded()
        }

        /// Packs one row's head into `buffer`, whose padding (keys past the last, dimensions
        /// past the head's) is zero and stays so; `transposed` is room for the values
        /// transposed in float32 before they are rounded row by row.
        fn pack(
            &self,
            path: KernelPath,
            (k, v): (Heads, Heads),
            (row, head): (usize, usize),
            buffer: &mut [u16],
            transposed: &mut Vec<f32>,
        ) {
            let (keys, head_dim) = (self.keys, self.head_dim);
            let (kp, dp) = (self.keys_padded(), self.dims_padded());
            let (packed_k, packed_v) = buffer.split_at_mut(kp * dp);
            for s in 0..keys {
                let key = k.token(row, head, s, head_dim);
                bf16_row_into(path, key, &mut packed_k[s * dp..s * dp + head_dim]);
            }
            transposed.resize(head_dim * keys, 0.0);
            let (values, block) = v.tokens((row, head), 0, keys, head_dim);
            // SAFETY: `values` holds the block (`tokens` checked it), `transposed` its
            // `head_dim` rows of `keys`.
            unsafe {
                transpose(
                    path,
                    values,
                    block,
                    transposed.as_mut_ptr(),
                    keys,
                    Write::Store,
                )
            };
            for (d, values) in transposed.chunks_exact(keys).enumerate() {
                bf16_row_into(path, values, &mut packed_v[d * kp..d * kp + keys]);
            }
        }
    }

    /// `rows` (a multiple of 32) input rows at `x` (`inner` values each, a multiple of 32)
    /// times the three weight panels at `w` (`inner / 2` pairs × 16 features each), into
    /// `out` (`rows` rows of [`PANEL`] floats).
    ///
    /// # Safety
    /// The tiles must be configured; the buffers must hold what is described.
    unsafe fn panel_product(tiles: &Tiles, x: &[u16], inner: usize, w: &[u16], out: &mut [f32]) {
        let rows = x.len() / inner;
        let panel = inner * TILE_FEATURES;
        assert!(
            x.len() == rows * inner && rows.is_multiple_of(CHUNK) && inner.is_multiple_of(CHUNK)
        );
        assert!(w.len() == 3 * panel && out.len() >= rows * PANEL);
        for r0 in (0..rows).step_by(CHUNK) {
            let a = (x[r0 * inner..].as_ptr(), inner * size_of::<u16>());
            let y = out[r0 * PANEL..].as_mut_ptr();
            let stride = PANEL * size_of::<f32>();
            // SAFETY: rows r0..r0 + 32 of `x` and the panels of `w` are inside them (checked
            // above); the stores write 32 rows of 48 floats inside `out`.
            unsafe {
                let panels = (w.as_ptr(), panel * size_of::<u16>());
                tiles.product(a, CHUNK, panels, 32, inner / CHUNK, None, (y, stride));
                let third = (w[2 * panel..].as_ptr(), panel * size_of::<u16>());
                tiles.product(
                    a,
                    CHUNK,
                    third,
                    16,
                    inner / CHUNK,
                    None,
                    (y.add(32), stride),
                );
            }
        }
    }

    /// [`panel_product`] by `vdpbf16ps`: 8 rows at a time against the first two panels, then
    /// against the third.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and BF16; the buffers must hold what is described.
    unsafe fn dot_panel_product(x: &[u16], inner: usize, w: &[u16], out: &mut [f32]) {
        let rows = x.len() / inner;
        let panel = inner * TILE_FEATURES;
        assert!(x.len() == rows * inner && rows.is_multiple_of(TILE_ROWS));
        assert!(w.len() == 3 * panel && out.len() >= rows * PANEL);
        let mut sums = [[0f32; 2 * TILE_FEATURES]; TILE_ROWS];
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let x = &x[r0 * inner..(r0 + TILE_ROWS) * inner];
            let out = &mut out[r0 * PANEL..(r0 + TILE_ROWS) * PANEL];
            for (first, panels) in [(0, 0..2 * panel), (2 * TILE_FEATURES, 2 * panel..3 * panel)] {
                // SAFETY: the CPU's features are the caller's promise; `x` is 8 rows of
                // `inner`, `w[panels]` one or two whole panels over them.
                unsafe { dot_tile(x, inner, &w[panels.clone()], &mut sums) };
                let width = (panels.len() / panel) * TILE_FEATURES;
                for (out, sums) in out.chunks_exact_mut(PANEL).zip(&sums) {
                    out[first..first + width].copy_from_slice(&sums[..width]);
                }
            }
        }
    }

    /// Writes the `rows` rows of [`PANEL`] floats `x` (the first `valid` of them, zeros for
    /// the rest up to `pairs` × 2) as three weight panels of bfloat16 pairs into `w`.
    /// Compiled for AVX-512 (both paths have it), where the rounding and the interleaving of
    /// two rows vectorise: this runs over every score of the attention.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and BF16.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn as_weight_panels(x: &[f32], valid: usize, pairs: usize, w: &mut [u16]) {
        use std::arch::x86_64::*;
        const ZEROS: [f32; PANEL] = [0.0; PANEL];
        // Where each of the 32 outputs comes from in [16 even-row values, 16 odd-row values].
        const INTERLEAVE: [u16; 2 * TILE_FEATURES] = {
            let mut index = [0; 2 * TILE_FEATURES];
            let mut j = 0;
            while j < TILE_FEATURES {
                index[2 * j] = j as u16;
                index[2 * j + 1] = (TILE_FEATURES + j) as u16;
                j += 1;
            }
            index
        };
        let panel = 2 * pairs * TILE_FEATURES;
        assert!(w.len() == 3 * panel && x.len() >= valid * PANEL && valid <= 2 * pairs);
        let row = |k: usize| x.get(k * PANEL..(k + 1) * PANEL).filter(|_| k < valid);
        // SAFETY: 32 u16 read from the index array.
        let interleave = unsafe { _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()) };
        for pair in 0..pairs {
            let even = row(2 * pair).unwrap_or(&ZEROS);
            let odd = row(2 * pair + 1).unwrap_or(&ZEROS);
            for p in 0..3 {
                let out = &mut w[p * panel + pair * 2 * TILE_FEATURES..][..2 * TILE_FEATURES];
                let first = p * TILE_FEATURES;
                // SAFETY: 16 floats read at `first` of each 48-float row; 32 u16 written to
                // `out`, which holds them. The conversion rounds as `to_bf16` does.
                unsafe {
                    let rounded = _mm512_cvtne2ps_pbh(
                        _mm512_loadu_ps(odd[first..].as_ptr()),
                        _mm512_loadu_ps(even[first..].as_ptr()),
                    );
                    let rounded = std::mem::transmute::<__m512bh, __m512i>(rounded);
                    let pairs = _mm512_permutexvar_epi16(interleave, rounded);
                    _mm512_storeu_si512(out.as_mut_ptr().cast(), pairs);
                }
            }
        }
    }

    /// One task's buffers, reused from task to task on a thread (fresh ones cost a zeroing
    /// each). The query rows past the head's dimensions are zero and stay so.
    struct Scratch {
        query_rows: Vec<f32>,
        query_panels: Vec<u16>,
        weights: Vec<f32>,
        weight_panels: Vec<u16>,
        context: Vec<f32>,
    }

    impl Scratch {
        fn new(packing: Packing) -> Self {
            let (kp, dp) = (packing.keys_padded(), packing.dims_padded());
            Self {
                query_rows: vec![0.0; dp * PANEL],
                query_panels: vec![0; 3 * dp * TILE_FEATURES],
                weights: vec![0.0; kp * PANEL],
                weight_panels: vec![0; 3 * kp * TILE_FEATURES],
                context: vec![0.0; dp * PANEL],
            }
        }
    }

    /// [`super::multi_query`] on the tiles (`path` `amx`) or by `vdpbf16ps` (`avx512-bf16`).
    ///
    /// # Safety
    /// `path` is one of those two, and one the CPU supports (on `amx`,
    /// [`super::super::amx::usable`] holds).
    pub(super) unsafe fn multi_query(
        path: KernelPath,
        (q, k, v): (Heads, Heads, Heads),
        biases: &[Bias],
        shape: Shape,
    ) -> Vec<f32> {
        let Shape {
            rows,
            heads,
            queries,
            keys,
            head_dim,
        } = shape;
        let mut out = vec![0f32; rows * queries * heads * head_dim];
        if out.is_empty() || keys == 0 {
            return out;
        }
        let packing = Packing { keys, head_dim };
        let (kp, dp) = (packing.keys_padded(), packing.dims_padded());
        // Padding stays zero: every row packs into the same positions.
        let mut packed = vec![0u16; heads * packing.len()];
        let panels = queries.div_ceil(PANEL);
        let dst = SharedOut(out.as_mut_ptr());
        for row in 0..rows {
            packed
                .par_chunks_mut(packing.len())
                .enumerate()
                .for_each_init(Vec::new, |transposed, (head, buffer)| {
                    packing.pack(path, (k, v), (row, head), buffer, transposed);
                });
            let tasks = (0..heads * panels).into_par_iter();
            tasks.for_each_init(
                || Scratch::new(packing),
                |scratch, task| {
                    let (head, panel) = (task / panels, task % panels);
                    let buffer = &packed[head * packing.len()..(head + 1) * packing.len()];
                    let (keys_in, values_in) = buffer.split_at(kp * dp);
                    let task = Task {
                        path,
                        row,
                        head,
                        first: panel * PANEL,
                        shape,
                    };
                    let count = PANEL.min(queries - task.first);
                    // The panel's queries as three weight panels over the head dimensions.
                    task.transpose_queries(q, count, &mut scratch.query_rows);
                    let Scratch {
                        query_rows,
                        query_panels,
                        weights,
                        weight_panels,
                        context,
                    } = scratch;
                    // SAFETY: both paths have AVX-512 F, BW and BF16.
                    unsafe { as_weight_panels(query_rows, dp, dp / 2, query_panels) };
                    // SAFETY: on `amx` the caller checked that the tiles are usable.
                    let tiles = (path == KernelPath::Amx).then(|| unsafe { Tiles::configure() });
                    let product = |x: &[u16], inner, w: &[u16], out: &mut [f32]| match &tiles {
                        // SAFETY: configured tiles, or a CPU with AVX-512 F and BF16; `x` is
                        // whole chunks of rows of `inner`, `w` three panels of `inner / 2`
                        // pairs, `out` as many rows of PANEL (all written).
                        Some(tiles) => unsafe { panel_product(tiles, x, inner, w, out) },
                        None => unsafe { dot_panel_product(x, inner, w, out) },
                    };
                    // `keys_in` is `kp` rows of `dp`, `weights` `kp` rows of PANEL.
                    product(keys_in, dp, query_panels, weights);
                    let weights = &mut weights[..keys * PANEL];
                    task.add_biases(biases, count, weights);
                    let sums = exp_columns_on(path, weights);
                    // SAFETY: as above.
                    unsafe { as_weight_panels(weights, keys, kp / 2, weight_panels) };
                    // Over `values_in` (`dp` rows of `kp`); `context` is `dp` rows of PANEL.
                    product(values_in, kp, weight_panels, context);
                    task.write_context(context, &sums, &dst);
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    /// The formula in f64 over contiguous `(rows, heads, tokens, head_dim)` inputs.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        bias: &dyn Fn(usize, usize, usize, usize) -> f64,
        s: Shape,
    ) -> Vec<f32> {
        let at = |x: &[f32], tokens: usize, r: usize, h: usize, t: usize, d: usize| {
            f64::from(x[((r * s.heads + h) * tokens + t) * s.head_dim + d])
        };
        let mut out = vec![0f32; s.rows * s.queries * s.heads * s.head_dim];
        for r in 0..s.rows {
            for h in 0..s.heads {
                for i in 0..s.queries {
                    let scores: Vec<f64> = (0..s.keys)
                        .map(|j| {
                            let dot: f64 = (0..s.head_dim)
                                .map(|d| at(q, s.queries, r, h, i, d) * at(k, s.keys, r, h, j, d))
                                .sum();
                            dot + bias(r, h, i, j)
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = scores.iter().map(|x| (x - max).exp()).sum();
                    for d in 0..s.head_dim {
                        let value: f64 = (0..s.keys)
                            .map(|j| (scores[j] - max).exp() / total * at(v, s.keys, r, h, j, d))
                            .sum();
                        out[((r * s.queries + i) * s.heads + h) * s.head_dim + d] = value as f32;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_path_matches_the_formula_with_summed_broadcast_biases() {
        for (rows, heads, queries, keys, head_dim) in [
            (1, 1, 1, 1, 4),
            (2, 3, 9, 9, 8),
            (2, 2, 300, 300, 16),
            (1, 2, 5, 700, 8),
        ] {
            let shape = Shape {
                rows,
                heads,
                queries,
                keys,
                head_dim,
            };
            let q = values(rows * heads * queries * head_dim, 1);
            let k = values(rows * heads * keys * head_dim, 2);
            let v = values(rows * heads * keys * head_dim, 3);
            // T5's relative positions (per head and query) plus padding (per row).
            let positions = values(heads * queries * keys, 4);
            let mut padding = vec![0f32; rows * keys];
            padding[keys - 1] = f32::MIN;
            let biases = [
                Bias {
                    values: &positions,
                    strides: [0, queries * keys, keys],
                },
                Bias {
                    values: &padding,
                    strides: [keys, 0, 0],
                },
            ];
            let bias = |r: usize, h: usize, i: usize, j: usize| {
                f64::from(positions[(h * queries + i) * keys + j] + padding[r * keys + j])
            };
            let expected = reference(&q, &k, &v, &bias, shape);
            let contiguous = |x, tokens| Heads {
                data: x,
                strides: [heads * tokens * head_dim, tokens * head_dim, head_dim],
            };
            for path in KernelPath::supported() {
                let inputs = (
                    contiguous(&q, queries),
                    contiguous(&k, keys),
                    contiguous(&v, keys),
                );
                let ours = multi_query_on(path, inputs, &biases, shape);
                for (a, b) in ours.iter().zip(&expected) {
                    assert!(
                        (a - b).abs() <= 2e-5 * (1.0 + b.abs()),
                        "{path} {shape:?}: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// The largest error of `multi_query` with bfloat16 products against the formula, over
    /// the largest output, for inputs scaled by `scale`; on a path with neither the tiles nor
    /// `vdpbf16ps`, checks that the products stay float32 (the same bits as
    /// [`Products::Float32`]) and returns 0.
    fn bf16_error(shape: Shape, scale: f32) -> f32 {
        let Shape {
            rows,
            heads,
            queries,
            keys,
            head_dim,
        } = shape;
        let scaled =
            |len, seed| -> Vec<f32> { values(len, seed).iter().map(|v| v * scale).collect() };
        let q = scaled(rows * heads * queries * head_dim, 1);
        let k = scaled(rows * heads * keys * head_dim, 2);
        let v = values(rows * heads * keys * head_dim, 3);
        let positions = values(heads * queries * keys, 4);
        let biases = [Bias {
            values: &positions,
            strides: [0, queries * keys, keys],
        }];
        let contiguous = |x, tokens| Heads {
            data: x,
            strides: [heads * tokens * head_dim, tokens * head_dim, head_dim],
        };
        let inputs = (
            contiguous(&q, queries),
            contiguous(&k, keys),
            contiguous(&v, keys),
        );
        let run = |products| multi_query(inputs.0, inputs.1, inputs.2, &biases, shape, products);
        let ours = run(Products::Bf16);
        if !path::active().has_avx512_bf16() {
            assert_eq!(
                ours,
                run(Products::Float32),
                "{shape:?}: float32 without the tiles or vdpbf16ps"
            );
            return 0.0;
        }
        let bias = |_: usize, h: usize, i: usize, j: usize| {
            f64::from(positions[(h * queries + i) * keys + j])
        };
        let expected = reference(&q, &k, &v, &bias, shape);
        let largest = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
        let error = ours
            .iter()
            .zip(&expected)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        error / largest
    }

    #[test]
    fn bf16_products_stay_close_to_the_formula_on_the_tiles_and_vdpbf16ps() {
        // Head widths that are and are not whole chunks, keys and queries past whole tiles
        // and panels, and attention as sharp as a trained model's (scale 0.3: scores of a few
        // units) and sharper. Measured 0.24%, 0.25% and 0.6% of the largest output; a weight
        // pair swapped in the layout gives 136%.
        for (shape, scale, bound) in [
            ((2, 3, 9, 9, 8), 0.3, 0.01),
            ((1, 2, 100, 70, 64), 0.3, 0.01),
            ((2, 2, 300, 300, 16), 1.0, 0.02),
        ] {
            let (rows, heads, queries, keys, head_dim) = shape;
            let shape = Shape {
                rows,
                heads,
                queries,
                keys,
                head_dim,
            };
            let error = bf16_error(shape, scale);
            assert!(error < bound, "{shape:?}: bf16 attention off by {error}");
        }
    }

    #[test]
    fn projections_are_read_in_place_through_their_strides() {
        // q, k and v as the (rows, tokens, heads * head_dim) outputs of their projections.
        let (rows, heads, tokens, head_dim) = (2, 3, 7, 4);
        let shape = Shape {
            rows,
            heads,
            queries: tokens,
            keys: tokens,
            head_dim,
        };
        let width = heads * head_dim;
        let projected = |seed| values(rows * tokens * width, seed);
        let (q, k, v) = (projected(5), projected(6), projected(7));
        let split = |x: &[f32]| -> Vec<f32> {
            let mut out = Vec::new();
            for r in 0..rows {
                for h in 0..heads {
                    for t in 0..tokens {
                        let start = (r * tokens + t) * width + h * head_dim;
                        out.extend_from_slice(&x[start..start + head_dim]);
                    }
                }
            }
            out
        };
        let in_place = |x| Heads {
            data: x,
            strides: [tokens * width, head_dim, width],
        };
        let ours = multi_query(
            in_place(&q),
            in_place(&k),
            in_place(&v),
            &[],
            shape,
            Products::Float32,
        );
        let expected = reference(&split(&q), &split(&k), &split(&v), &|_, _, _, _| 0.0, shape);
        for (a, b) in ours.iter().zip(&expected) {
            assert!((a - b).abs() <= 2e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn a_rows_context_is_bit_identical_however_far_its_keys_are_padded() {
        // One input of 9 tokens alone, then padded to 300 keys (masked) and 300 queries: its
        // 9 queries' context must not change by a bit on any path.
        let (heads, head_dim, real) = (2, 8, 9);
        let run = |path, tokens: usize| {
            let shape = Shape {
                rows: 1,
                heads,
                queries: tokens,
                keys: tokens,
                head_dim,
            };
            // (heads, tokens, head_dim) with the real tokens' values the same at every width.
            let at = |seed: u32| -> Vec<f32> {
                let base = values(heads * real * head_dim, seed);
                let mut x = vec![0.25f32; heads * tokens * head_dim];
                for h in 0..heads {
                    let (from, to) = (h * real * head_dim, h * tokens * head_dim);
                    x[to..to + real * head_dim]
                        .copy_from_slice(&base[from..from + real * head_dim]);
                }
                x
            };
            let (q, k, v) = (at(1), at(2), at(3));
            let mask: Vec<f32> = (0..tokens)
                .map(|s| if s < real { 0.0 } else { f32::MIN })
                .collect();
            let bias = [Bias {
                values: &mask,
                strides: [0, 0, 0],
            }];
            let heads_of = |x| Heads {
                data: x,
                strides: [heads * tokens * head_dim, tokens * head_dim, head_dim],
            };
            let out = multi_query_on(
                path,
                (heads_of(&q), heads_of(&k), heads_of(&v)),
                &bias,
                shape,
            );
            out[..real * heads * head_dim].to_vec()
        };
        for path in KernelPath::supported() {
            let alone = run(path, real);
            for tokens in [10, 17, 300] {
                assert_eq!(run(path, tokens), alone, "{path}, padded to {tokens}");
            }
        }
    }
}
