//! Softmax attention for many queries at once (the encoder), on the CPU, in float32, without
//! materialising the scores of all heads.
//!
//! candle runs attention as `q · kᵀ` over every head into a `(rows, heads, queries, keys)`
//! tensor, adds the bias broadcast to that size, softmaxes it into another one, multiplies by
//! the values and copies the context back into `(rows, queries, heads · head_dim)`: for 8 inputs
//! of 1024 tokens and 16 heads each of those tensors is 512 MB. Here one task takes one input
//! row and a block of queries; for each head it computes the block's scores into a buffer that
//! stays in cache, adds the biases, normalises each row and multiplies by the values straight
//! into the context's columns. Queries, keys and values are read in place through their
//! strides, so splitting the projections into heads copies nothing.

use rayon::prelude::*;

use super::gemm::{MatMut, MatRef, matmul_on};
use super::path::{self, KernelPath};
use super::softmax::softmax_on;

/// Queries, keys or values: element `(row, head, token, d)` is at
/// `data[row * strides[0] + head * strides[1] + token * strides[2] + d]`.
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub strides: [usize; 3],
}

impl<'a> Heads<'a> {
    /// The `(tokens, head_dim)` matrix of one row and head, from token `first` on.
    fn tokens(&self, row: usize, head: usize, first: usize) -> MatRef<'a> {
        let start = row * self.strides[0] + head * self.strides[1] + first * self.strides[2];
        MatRef {
            data: &self.data[start..],
            row_stride: self.strides[2],
            col_stride: 1,
        }
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

/// Scores per task buffer: 32 K floats (128 KiB) stay in a core's L2 cache.
const SCORES_PER_TASK: usize = 1 << 15;

/// The context `(rows, queries, heads * head_dim)` of `softmax(q · kᵀ + Σ biases) · v`.
pub fn multi_query(q: Heads, k: Heads, v: Heads, biases: &[Bias], shape: Shape) -> Vec<f32> {
    multi_query_on(path::active(), (q, k, v), biases, shape)
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
    let width = heads * head_dim;
    let mut out = vec![0f32; rows * queries * width];
    if out.is_empty() {
        return out;
    }
    let block = (SCORES_PER_TASK / keys.max(1)).clamp(8, 128).min(queries);
    out.par_chunks_mut(queries * width)
        .enumerate()
        .for_each(|(row, row_out)| {
            row_out
                .par_chunks_mut(block * width)
                .enumerate()
                .for_each(|(b, out)| {
                    let task = Task {
                        path,
                        row,
                        first: b * block,
                        shape,
                    };
                    task.run((q, k, v), biases, out);
                });
        });
    out
}

/// One input row and a block of its queries, over every head.
struct Task {
    path: KernelPath,
    row: usize,
    first: usize,
    shape: Shape,
}

impl Task {
    fn run(&self, (q, k, v): (Heads, Heads, Heads), biases: &[Bias], out: &mut [f32]) {
        let Shape {
            heads,
            keys,
            head_dim,
            ..
        } = self.shape;
        let width = heads * head_dim;
        let count = out.len() / width;
        let mut scores = vec![0f32; count * keys];
        for head in 0..heads {
            let keys_t = k.tokens(self.row, head, 0);
            let keys_t = MatRef {
                data: keys_t.data,
                row_stride: 1,
                col_stride: keys_t.row_stride,
            };
            let dst = MatMut::row_major(&mut scores, keys);
            let queries = q.tokens(self.row, head, self.first);
            let shape = (count, keys, head_dim);
            matmul_on(self.path, dst, false, queries, keys_t, shape);
            for (i, row) in scores.chunks_exact_mut(keys).enumerate() {
                for bias in biases {
                    let [rs, hs, qs] = bias.strides;
                    let start = self.row * rs + head * hs + (self.first + i) * qs;
                    let values = &bias.values[start..start + keys];
                    row.iter_mut().zip(values).for_each(|(s, b)| *s += b);
                }
                softmax_on(self.path, row);
            }
            let weights = MatRef::row_major(&scores, keys);
            let context = MatMut {
                data: &mut out[head * head_dim..],
                row_stride: width,
            };
            let values = v.tokens(self.row, head, 0);
            let shape = (count, head_dim, keys);
            matmul_on(self.path, context, false, weights, values, shape);
        }
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
        let ours = multi_query(in_place(&q), in_place(&k), in_place(&v), &[], shape);
        let expected = reference(&split(&q), &split(&k), &split(&v), &|_, _, _, _| 0.0, shape);
        for (a, b) in ours.iter().zip(&expected) {
            assert!((a - b).abs() <= 2e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
