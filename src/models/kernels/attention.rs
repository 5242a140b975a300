//! Softmax attention for one query per row (a decoder step), on the CPU, in float32.
//!
//! With one query, candle runs attention as a batch of tiny matrix products (one per head and
//! row, each handed to the thread pool) plus separate bias, softmax and copy passes. Here each
//! (row, head) pair is one pass over its keys and values: scores, softmax, weighted sum.

use rayon::prelude::*;

use super::path::{self, KernelPath};
use super::softmax::softmax_on;

/// An additive bias over keys, broadcast over rows and/or heads: the value for query row `r`,
/// head `h`, key `s` is `values[(r / row_group) * row_stride + h * head_stride + s]` (a stride of
/// 0 broadcasts; a `row_group` of `group` gives one bias row per key/value row).
#[derive(Debug, Clone, Copy)]
pub struct KeyBias<'a> {
    pub values: &'a [f32],
    pub row_stride: usize,
    pub head_stride: usize,
    pub row_group: usize,
}

impl<'a> KeyBias<'a> {
    /// The `keys` biases of query row `row`, head `head`.
    fn for_query(&self, row: usize, head: usize, keys: usize) -> &'a [f32] {
        let start = row / self.row_group * self.row_stride + head * self.head_stride;
        &self.values[start..start + keys]
    }
}

/// Shapes of one call: `q (kv_rows * group, heads, head_dim)` and
/// `k, v (kv_rows, heads, keys, head_dim)`. Query row `r` attends to key/value row `r / group`:
/// the beams of one input share its encoder keys and values instead of each holding a copy.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub kv_rows: usize,
    pub group: usize,
    pub heads: usize,
    pub keys: usize,
    pub head_dim: usize,
}

/// Below this many multiply-adds the work stays on the calling thread: waking the pool costs more.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// The context `(kv_rows * group, heads, head_dim)` of `softmax(q · kᵀ + bias) · v`.
pub fn single_query(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bias: Option<KeyBias>,
    shape: Shape,
) -> Vec<f32> {
    single_query_on(path::active(), q, (k, v), bias, shape)
}

/// [`single_query`] on a given path, which the CPU must support.
pub(crate) fn single_query_on(
    path: KernelPath,
    q: &[f32],
    (k, v): (&[f32], &[f32]),
    bias: Option<KeyBias>,
    shape: Shape,
) -> Vec<f32> {
    let Shape {
        kv_rows,
        group,
        heads,
        keys,
        head_dim,
    } = shape;
    let rows = kv_rows * group;
    debug_assert_eq!(q.len(), rows * heads * head_dim);
    debug_assert_eq!(k.len(), kv_rows * heads * keys * head_dim);
    debug_assert_eq!(v.len(), k.len());
    // One task per (key/value row, head): its keys and values stay in cache for all the queries
    // of the group. Results land as (kv_row, head, group, head_dim) and are reordered after.
    let mut grouped = vec![0f32; rows * heads * head_dim];
    let one_task = |(task, out): (usize, &mut [f32])| {
        let (kv_row, head) = (task / heads, task % heads);
        let kv = task * keys * head_dim..(task + 1) * keys * head_dim;
        let (k, v) = (&k[kv.clone()], &v[kv]);
        for (g, out) in out.chunks_exact_mut(head_dim).enumerate() {
            let row = kv_row * group + g;
            let bias = bias.map(|b| b.for_query(row, head, keys));
            let attended = bias.map_or(keys, attended_keys);
            let bias = bias.map(|b| &b[..attended]);
            let query = (row * heads + head) * head_dim;
            let q = &q[query..query + head_dim];
            attend_one(path, q, (k, v), attended, |s| s * head_dim, bias, out);
        }
    };
    let task_len = group * head_dim;
    let work = rows * heads * keys * head_dim;
    for_each_chunk(&mut grouped, task_len, work, one_task);
    if group == 1 {
        return grouped;
    }
    let mut out = vec![0f32; grouped.len()];
    for (task, values) in grouped.chunks_exact(task_len).enumerate() {
        let (kv_row, head) = (task / heads, task % heads);
        for (g, values) in values.chunks_exact(head_dim).enumerate() {
            let start = ((kv_row * group + g) * heads + head) * head_dim;
            out[start..start + head_dim].copy_from_slice(values);
        }
    }
    out
}

/// A key whose bias is at most this is padding: masks add the dtype's minimum (as
/// transformers does), which any position bias added to it leaves about as low.
const PADDED_BIAS: f32 = -1e30;

/// The last real key's bias must be at least this for the padding after it to be skipped.
const REAL_BIAS: f32 = -1e20;

/// How many keys a query attends to: all of them but the padding after the last real key.
/// A cross-attention over inputs padded to the batch's longest spends most of a short input's
/// time on keys whose weight is exactly 0, so those are not read at all. Skipping them leaves
/// the result's bits as they are: each one's exponential underflows to exactly 0 (its score is
/// more than 1e29 below the real key's), so it adds nothing to the softmax's lanes or to the
/// weighted sum, and the kernels already give the same bits for any padded width. A row with
/// no real key (all padding) attends to everything, as it would unskipped.
fn attended_keys(bias: &[f32]) -> usize {
    match bias.iter().rposition(|&b| b > PADDED_BIAS) {
        Some(last) if bias[last] >= REAL_BIAS => last + 1,
        _ => bias.len(),
    }
}

/// Shapes of a call over a decoder's self-attention cache: `q (rows, heads, head_dim)`, key and
/// value buffers `(buffer_rows, capacity, heads, head_dim)` of which positions `0..keys` are
/// filled.
#[derive(Debug, Clone, Copy)]
pub struct CacheShape {
    pub rows: usize,
    pub heads: usize,
    pub keys: usize,
    pub head_dim: usize,
    pub capacity: usize,
}

/// The context `(rows, heads, head_dim)` of `softmax(q · kᵀ + bias) · v` over a cache in which
/// row `r`'s key and value at position `p` live in buffer row `buffer_rows[r * keys + p]`.
/// Following that table instead of copying rows is what lets beam search reorder its beams
/// without moving any cached tensor.
///
/// Row `r` attends to positions `first_keys[r]..keys` only: a row that joined a running batch
/// late sees its own keys as key 0, 1, … exactly as it would alone, so the softmax sums them in
/// the same lanes whatever step it joined at (its hidden earlier slots would shift them).
pub fn single_query_cached(
    q: &[f32],
    kv: (&[f32], &[f32]),
    (buffer_rows, first_keys): (&[u32], &[usize]),
    bias: Option<KeyBias>,
    shape: CacheShape,
) -> Vec<f32> {
    single_query_cached_on(
        path::active(),
        q,
        kv,
        (buffer_rows, first_keys),
        bias,
        shape,
    )
}

/// [`single_query_cached`] on a given path, which the CPU must support.
pub(crate) fn single_query_cached_on(
    path: KernelPath,
    q: &[f32],
    (k, v): (&[f32], &[f32]),
    (buffer_rows, first_keys): (&[u32], &[usize]),
    bias: Option<KeyBias>,
    shape: CacheShape,
) -> Vec<f32> {
    let CacheShape {
        rows,
        heads,
        keys,
        head_dim,
        capacity,
    } = shape;
    debug_assert_eq!(q.len(), rows * heads * head_dim);
    debug_assert_eq!(buffer_rows.len(), rows * keys);
    assert!(
        first_keys.len() == rows && first_keys.iter().all(|&first| first < keys),
        "single_query_cached: a first key below {keys} for each of {rows} rows"
    );
    let mut out = vec![0f32; rows * heads * head_dim];
    let one_head = |(unit, out): (usize, &mut [f32])| {
        let (row, head) = (unit / heads, unit % heads);
        let first = first_keys[row];
        let sources = &buffer_rows[row * keys + first..(row + 1) * keys];
        let offset = |p: usize| {
            let slot = first + p;
            ((sources[p] as usize * capacity + slot) * heads + head) * head_dim
        };
        let bias = bias.map(|b| &b.for_query(row, head, keys)[first..]);
        let q = &q[unit * head_dim..(unit + 1) * head_dim];
        attend_one(path, q, (k, v), keys - first, offset, bias, out);
    };
    for_each_chunk(&mut out, head_dim, rows * heads * keys * head_dim, one_head);
    out
}

/// `f((index, chunk))` for each `chunk_len` chunk of `out`, on the thread pool when the call
/// does at least [`PARALLEL_MIN_WORK`] multiply-adds in all.
fn for_each_chunk(
    out: &mut [f32],
    chunk_len: usize,
    work: usize,
    f: impl Fn((usize, &mut [f32])) + Sync + Send,
) {
    if work < PARALLEL_MIN_WORK {
        out.chunks_mut(chunk_len).enumerate().for_each(f);
    } else {
        out.par_chunks_mut(chunk_len).enumerate().for_each(f);
    }
}

/// The head width the weighted sum is compiled for as a constant: nearly every summariser has
/// 64-wide heads (T5, BART, DistilBART, Pegasus), and a fixed width lets the sum stay in
/// registers instead of going through memory for every key (a third less time per decoder step
/// in that loop, measured with `perf` at 32 rows). The arithmetic is the same as for any other
/// width, so the values are too. The scores' dot products gain nothing from it (their time is
/// the sum across lanes, which stays in its order) and keep the general code.
const FIXED_HEAD_DIM: usize = 64;

/// One query against `keys` keys/values; key/value `s` starts at `offset(s)` in `k` and `v`.
fn attend_one(
    path: KernelPath,
    q: &[f32],
    kv: (&[f32], &[f32]),
    keys: usize,
    offset: impl Fn(usize) -> usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    if q.len() == FIXED_HEAD_DIM {
        attend_one_as::<FIXED_HEAD_DIM>(path, q, kv, keys, &offset, bias, out);
    } else {
        attend_one_as::<0>(path, q, kv, keys, &offset, bias, out);
    }
}

/// [`attend_one`] for heads `D` wide, or of any width when `D` is 0.
fn attend_one_as<const D: usize>(
    path: KernelPath,
    q: &[f32],
    (k, v): (&[f32], &[f32]),
    keys: usize,
    offset: &impl Fn(usize) -> usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let mut scores = vec![0f32; keys];
    match path.vector_kernels() {
        // SAFETY: the CPU supports the path's features (`path` is one it runs).
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { scores_avx512(q, k, offset, bias, &mut scores) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe {
            scores_avx2(q, k, offset, bias, &mut scores)
        },
        _ => scores_portable(q, k, offset, bias, &mut scores),
    }
    softmax_on(path, &mut scores);
    match path.vector_kernels() {
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { weighted_sum_avx512::<D>(&scores, v, offset, out) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe {
            weighted_sum_avx2::<D>(&scores, v, offset, out)
        },
        _ => weighted_sum_portable::<D>(&scores, v, offset, out),
    }
}

// The same plain code compiled per path, so the sixteen-lane loops below become vector ops of
// the path's width.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn scores_avx512(
    q: &[f32],
    k: &[f32],
    offset: &impl Fn(usize) -> usize,
    bias: Option<&[f32]>,
    scores: &mut [f32],
) {
    scores_portable(q, k, offset, bias, scores);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scores_avx2(
    q: &[f32],
    k: &[f32],
    offset: &impl Fn(usize) -> usize,
    bias: Option<&[f32]>,
    scores: &mut [f32],
) {
    scores_portable(q, k, offset, bias, scores);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn weighted_sum_avx512<const D: usize>(
    weights: &[f32],
    v: &[f32],
    offset: &impl Fn(usize) -> usize,
    out: &mut [f32],
) {
    weighted_sum_portable::<D>(weights, v, offset, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_avx2<const D: usize>(
    weights: &[f32],
    v: &[f32],
    offset: &impl Fn(usize) -> usize,
    out: &mut [f32],
) {
    weighted_sum_portable::<D>(weights, v, offset, out);
}

/// `scores[s] = q · k[s] + bias[s]`, for heads of any width.
#[inline(always)]
fn scores_portable(
    q: &[f32],
    k: &[f32],
    offset: &impl Fn(usize) -> usize,
    bias: Option<&[f32]>,
    scores: &mut [f32],
) {
    let head_dim = q.len();
    for (s, score) in scores.iter_mut().enumerate() {
        let start = offset(s);
        *score = dot(q, &k[start..start + head_dim]);
    }
    if let Some(bias) = bias {
        scores.iter_mut().zip(bias).for_each(|(s, b)| *s += b);
    }
}

/// `out = Σ_s weights[s] · v[s]`, for heads `D` wide (any width when `D` is 0). A fixed width
/// sums into an array the compiler keeps in registers, in the same order.
#[inline(always)]
fn weighted_sum_portable<const D: usize>(
    weights: &[f32],
    v: &[f32],
    offset: &impl Fn(usize) -> usize,
    out: &mut [f32],
) {
    if D == 0 {
        let head_dim = out.len();
        out.fill(0.0);
        for (s, weight) in weights.iter().enumerate() {
            let start = offset(s);
            out.iter_mut()
                .zip(&v[start..start + head_dim])
                .for_each(|(o, x)| *o += weight * x);
        }
        return;
    }
    let mut sums = [0f32; D];
    for (s, weight) in weights.iter().enumerate() {
        let start = offset(s);
        sums.iter_mut()
            .zip(&v[start..start + D])
            .for_each(|(o, x)| *o += weight * x);
    }
    out.copy_from_slice(&sums);
}

/// A dot product in sixteen independent lanes, which the compiler turns into vector code.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (a_main, a_tail) = a.split_at(a.len() - a.len() % 16);
    let (b_main, b_tail) = b.split_at(a_main.len());
    for (x, y) in a_main.chunks_exact(16).zip(b_main.chunks_exact(16)) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    /// The textbook formula in f64, one (query row, head) at a time.
    fn reference(q: &[f32], k: &[f32], v: &[f32], bias: Option<KeyBias>, shape: Shape) -> Vec<f32> {
        let Shape {
            kv_rows,
            group,
            heads,
            keys,
            head_dim,
        } = shape;
        let mut out = Vec::new();
        for row in 0..kv_rows * group {
            for head in 0..heads {
                let query = (row * heads + head) * head_dim;
                let kv = (row / group * heads + head) * keys * head_dim;
                let scores: Vec<f64> = (0..keys)
                    .map(|s| {
                        let dot: f64 = (0..head_dim)
                            .map(|d| f64::from(q[query + d]) * f64::from(k[kv + s * head_dim + d]))
                            .sum();
                        dot + bias.map_or(0.0, |b| {
                            f64::from(
                                b.values
                                    [row / b.row_group * b.row_stride + head * b.head_stride + s],
                            )
                        })
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                for d in 0..head_dim {
                    let value: f64 = (0..keys)
                        .map(|s| {
                            (scores[s] - max).exp() / total * f64::from(v[kv + s * head_dim + d])
                        })
                        .sum();
                    out.push(value as f32);
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_formula_with_every_bias_broadcast_and_group() {
        let cases = [
            (1, 1, 1, 1, 3),
            (2, 1, 3, 5, 8),
            (3, 2, 2, 70, 13),
            (2, 4, 8, 300, 64),
            (1, 3, 2, 17, 40),
        ];
        for (kv_rows, group, heads, keys, head_dim) in cases {
            let shape = Shape {
                kv_rows,
                group,
                heads,
                keys,
                head_dim,
            };
            let rows = kv_rows * group;
            let q = values(rows * heads * head_dim, 1);
            let k = values(kv_rows * heads * keys * head_dim, 2);
            let v = values(kv_rows * heads * keys * head_dim, 3);
            let per_query_row = values(rows * keys, 4);
            let per_kv_row = values(kv_rows * keys, 5);
            let per_head = values(heads * keys, 6);
            let biases = [
                None,
                Some(KeyBias {
                    values: &per_query_row,
                    row_stride: keys,
                    head_stride: 0,
                    row_group: 1,
                }),
                Some(KeyBias {
                    values: &per_kv_row,
                    row_stride: keys,
                    head_stride: 0,
                    row_group: group,
                }),
                Some(KeyBias {
                    values: &per_head,
                    row_stride: 0,
                    head_stride: keys,
                    row_group: 1,
                }),
            ];
            for (bias, path) in biases
                .iter()
                .flat_map(|b| KernelPath::supported().into_iter().map(|p| (*b, p)))
            {
                let ours = single_query_on(path, &q, (&k, &v), bias, shape);
                let expected = reference(&q, &k, &v, bias, shape);
                assert_eq!(ours.len(), expected.len());
                for (a, b) in ours.iter().zip(&expected) {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{path} {shape:?}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn cached_keys_follow_the_buffer_row_table() {
        // Two rows, three positions; row 0 continues buffer row 1 up to its last position.
        let (rows, heads, keys, head_dim, capacity) = (2, 2, 3, 4, 5);
        let k_buf = values(rows * capacity * heads * head_dim, 7);
        let v_buf = values(rows * capacity * heads * head_dim, 8);
        let table: [u32; 6] = [1, 1, 0, 1, 1, 1];
        let q = values(rows * heads * head_dim, 9);
        let bias_values = values(heads * keys, 10);
        let bias = KeyBias {
            values: &bias_values,
            row_stride: 0,
            head_stride: keys,
            row_group: 1,
        };
        let shape = CacheShape {
            rows,
            heads,
            keys,
            head_dim,
            capacity,
        };
        let expected_shape = shape;
        // The same keys gathered into contiguous (row, head, key, dim) order.
        let gather = |buf: &[f32]| -> Vec<f32> {
            let mut out = Vec::new();
            for row in 0..rows {
                for head in 0..heads {
                    for p in 0..keys {
                        let start = ((table[row * keys + p] as usize * capacity + p) * heads
                            + head)
                            * head_dim;
                        out.extend_from_slice(&buf[start..start + head_dim]);
                    }
                }
            }
            out
        };
        let flat = Shape {
            kv_rows: rows,
            group: 1,
            heads,
            keys,
            head_dim,
        };
        let expected = reference(&q, &gather(&k_buf), &gather(&v_buf), Some(bias), flat);
        for path in KernelPath::supported() {
            let kv = (k_buf.as_slice(), v_buf.as_slice());
            let rows_of_table = (table.as_slice(), [0, 0].as_slice());
            let ours =
                single_query_cached_on(path, &q, kv, rows_of_table, Some(bias), expected_shape);
            for (a, b) in ours.iter().zip(&expected) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{path}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn a_row_that_joined_late_gets_the_bits_it_gets_alone() {
        // Row 1 joined at slot 3 of 21 (its earlier slots hidden by the bias): it must equal
        // the same 18 keys and values alone in a fresh cache, bit for bit. Past 16 keys the
        // softmax sums in lanes, which a shift by 3 slots would regroup.
        let (heads, head_dim, capacity) = (2, 20, 24);
        let (keys, first) = (21, 3);
        let k_buf = values(2 * capacity * heads * head_dim, 11);
        let v_buf = values(2 * capacity * heads * head_dim, 12);
        let q = values(2 * heads * head_dim, 13);
        let table: Vec<u32> = [0u32; 21].into_iter().chain([1u32; 21]).collect();
        let mut hidden = vec![0f32; 2 * keys];
        hidden[keys..keys + first].fill(f32::MIN);
        let bias = KeyBias {
            values: &hidden,
            row_stride: keys,
            head_stride: 0,
            row_group: 1,
        };
        let shape = CacheShape {
            rows: 2,
            heads,
            keys,
            head_dim,
            capacity,
        };
        // Alone: row 1's slots first..keys moved to slots 0.. of a one-row cache.
        let slot = heads * head_dim;
        let own = |buf: &[f32]| {
            let mut alone = vec![0f32; capacity * slot];
            let start = (capacity + first) * slot;
            alone[..(keys - first) * slot].copy_from_slice(&buf[start..(capacity + keys) * slot]);
            alone
        };
        let alone_shape = CacheShape {
            rows: 1,
            keys: keys - first,
            ..shape
        };
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for path in KernelPath::supported() {
            let (k_alone, v_alone) = (own(&k_buf), own(&v_buf));
            let want = single_query_cached_on(
                path,
                &q[slot..],
                (&k_alone, &v_alone),
                (&[0; 18], &[0]),
                None,
                alone_shape,
            );
            let got = single_query_cached_on(
                path,
                &q,
                (&k_buf, &v_buf),
                (&table, &[0, first]),
                Some(bias),
                shape,
            );
            assert_eq!(bits(&got[slot..]), bits(&want), "{path}");
        }
    }

    #[test]
    fn the_fixed_head_width_gives_the_values_of_any_width_bit_for_bit() {
        let (keys, head_dim) = (37, FIXED_HEAD_DIM);
        // A small query spreads the weights over every key (not one that takes them all), so
        // each value row really goes into the sum.
        let q: Vec<f32> = values(head_dim, 11).iter().map(|x| x * 0.02).collect();
        let k = values(keys * head_dim, 12);
        let v = values(keys * head_dim, 13);
        let bias = values(keys, 14);
        fn run<const D: usize>(path: KernelPath, (q, k, v, bias): Inputs) -> Vec<u32> {
            let mut out = vec![0f32; q.len()];
            let offset = |s: usize| s * q.len();
            attend_one_as::<D>(path, q, (k, v), bias.len(), &offset, Some(bias), &mut out);
            out.iter().map(|x| x.to_bits()).collect()
        }
        type Inputs<'a> = (&'a [f32], &'a [f32], &'a [f32], &'a [f32]);
        let inputs: Inputs = (&q, &k, &v, &bias);
        for path in KernelPath::supported() {
            assert_eq!(
                run::<FIXED_HEAD_DIM>(path, inputs),
                run::<0>(path, inputs),
                "{path}"
            );
        }
    }

    #[test]
    fn keys_after_the_last_real_one_are_not_read_and_the_bits_stay() {
        let (keys, head_dim, real) = (40, 8, 23);
        let q: Vec<f32> = values(head_dim, 21).iter().map(|x| x * 0.1).collect();
        let mut k = values(keys * head_dim, 22);
        let mut v = values(keys * head_dim, 23);
        // A bias over the real keys as well (a position bias), the mask's minimum after them.
        let mut bias = values(keys, 24);
        bias[real..].fill(f32::MIN);
        let shape = |keys| Shape {
            kv_rows: 1,
            group: 1,
            heads: 1,
            keys,
            head_dim,
        };
        let key_bias = |values| KeyBias {
            values,
            row_stride: 0,
            head_stride: 0,
            row_group: 1,
        };
        for path in KernelPath::supported() {
            let narrow = single_query_on(
                path,
                &q,
                (&k[..real * head_dim], &v[..real * head_dim]),
                Some(key_bias(&bias[..real])),
                shape(real),
            );
            // Padding that would poison the result if it were read (0 × NaN is NaN).
            k[real * head_dim..].fill(f32::NAN);
            v[real * head_dim..].fill(f32::NAN);
            let padded = single_query_on(path, &q, (&k, &v), Some(key_bias(&bias)), shape(keys));
            let bits = |xs: &[f32]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&padded), bits(&narrow), "{path}");
        }
        // A row that is all padding attends to every key, as it would unskipped.
        assert_eq!(attended_keys(&[f32::MIN; 5]), 5);
        // So does a row whose last key above the mask is itself far below any real bias.
        assert_eq!(attended_keys(&[0.0, -1e25, f32::MIN]), 3);
        assert_eq!(attended_keys(&[0.0, -3.0, f32::MIN, f32::MIN]), 2);
    }

    #[test]
    fn padded_keys_get_no_weight() {
        let shape = Shape {
            kv_rows: 1,
            group: 1,
            heads: 1,
            keys: 3,
            head_dim: 2,
        };
        let (q, k) = ([1.0, 1.0], [0.5, 0.5, 9.0, 9.0, 0.5, 0.5]);
        let v = [1.0, 2.0, 100.0, 100.0, 3.0, 4.0];
        let mask = [0.0, f32::MIN, 0.0];
        let bias = KeyBias {
            values: &mask,
            row_stride: 0,
            head_stride: 0,
            row_group: 1,
        };
        for path in KernelPath::supported() {
            let context = single_query_on(path, &q, (&k, &v), Some(bias), shape);
            assert_eq!(context, vec![2.0, 3.0], "{path}");
        }
    }
}
