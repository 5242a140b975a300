//! Multi-head attention math shared by every architecture: head split and softmax attention.
//!
//! On the CPU in float32 a decoder step (one query per row) goes through the fused kernel in
//! [`kernels::attention`] and the encoder (many queries) through [`kernels::multi_query`];
//! everything else (GPUs, half precision) through candle.

use std::borrow::Cow;

use candle_core::{DType, Layout, Result, Storage, Tensor};

use super::cache::SelfKvView;
use super::kernels::attention::{self as kernel, KeyBias};
pub use super::kernels::multi_query::Products;
use super::kernels::multi_query::{self, Bias, Heads};
use super::linear::Linear;

/// `(batch, seq, heads * head_dim)` -> `(batch, heads, seq, head_dim)`, as a strided view: the
/// CPU kernels read it in place, and the other paths make it contiguous where they need to.
pub fn split_heads(xs: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let (batch, seq, _) = xs.dims3()?;
    xs.reshape((batch, seq, heads, head_dim))?.transpose(1, 2)
}

/// `softmax(q · kᵀ + Σ biases) · v` for `q (rows, heads, queries, head_dim)` and
/// `k, v (kv_rows, heads, keys, head_dim)`, where `rows` is a multiple of `kv_rows` and query row
/// `r` attends to key/value row `r / (rows / kv_rows)` (the beams of one input share its
/// encoder keys and values). Each bias is broadcastable to `(rows or kv_rows, heads, queries,
/// keys)`. Returns the context `(rows, queries, heads * head_dim)`. Scores are taken in float32
/// for half-precision inputs, as transformers' kernels do. `products`: how the encoder's
/// products run on the CPU ([`products_of`] the attention's projections).
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    biases: &[&Tensor],
    products: Products,
) -> Result<Tensor> {
    let (rows, heads, queries, head_dim) = q.dims4()?;
    let kv_rows = k.dim(0)?;
    if kv_rows == 0 || rows % kv_rows != 0 {
        candle_core::bail!("attention: {rows} query rows cannot share {kv_rows} key/value rows");
    }
    let group = rows / kv_rows;
    if group == 1
        && queries > 1
        && let Some(context) = attend_multi_query(q, k, v, biases, products)?
    {
        return Ok(context);
    }
    if fused_path_applies(q, queries) {
        let bias = summed(biases)?;
        if let Some(context) = attend_single_query(q, k, v, bias.as_deref(), group)? {
            return Ok(context);
        }
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    // A group of query rows sharing keys and values is one row with `group` times the queries.
    let grouped_q = if group == 1 {
        q.clone()
    } else {
        q.reshape((kv_rows, group, heads, queries, head_dim))?
            .transpose(1, 2)?
            .reshape((kv_rows, heads, group * queries, head_dim))?
    };
    let scores = grouped_q.matmul(&k.t()?)?;
    let weights = match fused_weights(&scores, biases, group)? {
        Some(weights) => weights,
        None => {
            let bias = grouped_bias(summed(biases)?, (rows, kv_rows, group, queries))?;
            let scores = match &bias {
                Some(bias) => scores.broadcast_add(bias)?,
                None => scores,
            };
            candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(q.dtype())?
        }
    };
    // (kv_rows, heads, group * queries, head_dim) -> (rows, queries, heads * head_dim)
    weights
        .matmul(&v)?
        .reshape((kv_rows, heads, group, queries, head_dim))?
        .permute((0, 2, 3, 1, 4))?
        .reshape((rows, queries, heads * head_dim))
}

/// The attention weights `softmax(scores + Σ biases)` from the CUDA kernel of
/// `kernels::cuda_softmax`, where it applies (on a GPU, one query row per key/value row).
fn fused_weights(scores: &Tensor, biases: &[&Tensor], group: usize) -> Result<Option<Tensor>> {
    #[cfg(feature = "cuda")]
    if group == 1 {
        return super::kernels::cuda_softmax::softmax_with_biases(scores, biases);
    }
    let _ = (scores, biases, group);
    Ok(None)
}

/// The summed bias of an attention whose query rows come in groups of `group` sharing one
/// key/value row, regrouped like the queries where it has a row per query row.
fn grouped_bias(
    bias: Option<Cow<'_, Tensor>>,
    (rows, kv_rows, group, queries): (usize, usize, usize, usize),
) -> Result<Option<Tensor>> {
    Ok(match bias.as_deref() {
        Some(bias) if group > 1 && bias.dim(0)? == rows => {
            // Per-query-row bias: regroup it like the queries.
            let (_, bias_heads, _, keys) = bias.dims4()?;
            Some(
                bias.broadcast_as((rows, bias_heads, queries, keys))?
                    .reshape((kv_rows, group, bias_heads, queries, keys))?
                    .transpose(1, 2)?
                    .reshape((kv_rows, bias_heads, group * queries, keys))?,
            )
        }
        other => other.cloned(),
    })
}

/// How an attention whose output projection is `projection` runs its products: in bfloat16
/// when its projections are (`--dtype bf16` on the CPU), else float32.
pub fn products_of(projection: &Linear) -> Products {
    if projection.is_bf16() {
        Products::Bf16
    } else {
        Products::Float32
    }
}

/// The biases added into one tensor (broadcasting), for the paths that take a single bias.
fn summed<'a>(biases: &[&'a Tensor]) -> Result<Option<Cow<'a, Tensor>>> {
    match biases {
        [] => Ok(None),
        [one] => Ok(Some(Cow::Borrowed(*one))),
        [first, rest @ ..] => {
            let mut sum = (*first).clone();
            for bias in rest {
                sum = sum.broadcast_add(bias)?;
            }
            Ok(Some(Cow::Owned(sum)))
        }
    }
}

/// The encoder's attention on the CPU in float32, each input attending to its own keys: the
/// multi-query kernel reads `q`, `k`, `v` and the biases in place. `None` when it does not apply.
fn attend_multi_query(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    biases: &[&Tensor],
    products: Products,
) -> Result<Option<Tensor>> {
    let all_f32_cpu = [q, k, v]
        .into_iter()
        .chain(biases.iter().copied())
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if !all_f32_cpu {
        return Ok(None);
    }
    let (rows, heads, queries, head_dim) = q.dims4()?;
    let keys = k.dim(2)?;
    // Each bias as a (rows, heads, queries, keys) view with the keys contiguous.
    let biases = biases
        .iter()
        .map(|bias| {
            let full = bias.broadcast_as((rows, heads, queries, keys))?;
            if full.stride()[3] == 1 {
                Ok(full)
            } else {
                full.contiguous()
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = [q, k, v]
        .into_iter()
        .chain(&biases)
        .map(Tensor::storage_and_layout)
        .collect();
    let views: Option<Vec<(&[f32], [usize; 3])>> = guards
        .iter()
        .map(|(storage, layout)| strided_f32(storage, layout))
        .collect();
    let Some(views) = views else {
        return Ok(None);
    };
    let bias_views: Vec<Bias> = views[3..]
        .iter()
        .map(|&(values, strides)| Bias { values, strides })
        .collect();
    let shape = multi_query::Shape {
        rows,
        heads,
        queries,
        keys,
        head_dim,
    };
    let [q_heads, k_heads, v_heads] = [0, 1, 2].map(|i| Heads {
        data: views[i].0,
        strides: views[i].1,
    });
    let context = multi_query::multi_query(q_heads, k_heads, v_heads, &bias_views, shape, products);
    Ok(Some(Tensor::from_vec(
        context,
        (rows, queries, heads * head_dim),
        q.device(),
    )?))
}

/// A 4-d float32 CPU tensor whose last dimension is contiguous: its values from its first
/// element on, and the strides of its first three dimensions.
fn strided_f32<'a>(storage: &'a Storage, layout: &Layout) -> Option<(&'a [f32], [usize; 3])> {
    let Storage::Cpu(cpu) = storage else {
        return None;
    };
    match layout.stride() {
        &[s0, s1, s2, 1] => {
            let values = cpu.as_slice::<f32>().ok()?;
            Some((values.get(layout.start_offset()..)?, [s0, s1, s2]))
        }
        _ => None,
    }
}

/// The fused kernels take one query per row, in float32, on the CPU.
fn fused_path_applies(q: &Tensor, queries: usize) -> bool {
    queries == 1 && q.device().is_cpu() && q.dtype() == DType::F32
}

/// The fused path, when there is one query per row and every tensor is float32 on the CPU.
fn attend_single_query(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    group: usize,
) -> Result<Option<Tensor>> {
    let (rows, heads, queries, head_dim) = q.dims4()?;
    let (kv_rows, keys) = (k.dim(0)?, k.dim(2)?);
    if !fused_path_applies(q, queries) {
        return Ok(None);
    }
    let Some(bias) = bias_layout(bias, rows, kv_rows, heads, keys)? else {
        return Ok(None);
    };
    let shape = kernel::Shape {
        kv_rows,
        group,
        heads,
        keys,
        head_dim,
    };
    let context = with_cpu_values((q, k, v), &bias, |q, (k, v), bias| {
        kernel::single_query(q, k, v, bias, shape)
    });
    context_tensor(context, q)
}

/// A bias made contiguous, with its (row, head) strides and row group for [`KeyBias`]; `None`
/// when there is no bias.
type BiasLayout = Option<(Tensor, (usize, usize, usize))>;

/// The bias as the fused kernels read it: `Some(None)` for no bias, `None` when its shape or
/// dtype has no fused path.
fn bias_layout(
    bias: Option<&Tensor>,
    rows: usize,
    kv_rows: usize,
    heads: usize,
    keys: usize,
) -> Result<Option<BiasLayout>> {
    let Some(bias) = bias else {
        return Ok(Some(None));
    };
    let (bias_rows, bias_heads, bias_queries, bias_keys) = bias.dims4()?;
    let row_group = match bias_rows {
        1 => 1,
        n if n == rows => 1,
        n if n == kv_rows => rows / kv_rows,
        _ => return Ok(None),
    };
    if !(bias_heads == 1 || bias_heads == heads)
        || bias_queries != 1
        || bias_keys != keys
        || bias.dtype() != DType::F32
    {
        return Ok(None);
    }
    let row_stride = if bias_rows == 1 { 0 } else { bias_heads * keys };
    let head_stride = if bias_heads == 1 { 0 } else { keys };
    Ok(Some(Some((
        bias.contiguous()?,
        (row_stride, head_stride, row_group),
    ))))
}

/// `(rows, 1, heads * head_dim)` -> `(rows, 1, heads, head_dim)`: a decoder step's keys or
/// values as the self-attention cache stores them.
pub fn step_heads(xs: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let (rows, seq, _) = xs.dims3()?;
    xs.reshape((rows, seq, heads, head_dim))
}

/// [`attend`] for a decoder step over its self-attention cache: `q (rows, heads, 1, head_dim)`.
pub fn attend_cached(q: &Tensor, cache: SelfKvView, bias: Option<&Tensor>) -> Result<Tensor> {
    if let Some(context) = attend_cached_fused(q, cache, bias)? {
        return Ok(context);
    }
    let (k, v) = cache.gather()?;
    // One query per row: the multi-query kernel, the only one `products` changes, never runs.
    attend(q, &k, &v, bias.as_slice(), Products::Float32)
}

fn attend_cached_fused(
    q: &Tensor,
    cache: SelfKvView,
    bias: Option<&Tensor>,
) -> Result<Option<Tensor>> {
    let (rows, heads, queries, head_dim) = q.dims4()?;
    let capacity = cache.k.dim(1)?;
    if !fused_path_applies(q, queries) {
        return Ok(None);
    }
    let Some(bias) = bias_layout(bias, rows, rows, heads, cache.keys)? else {
        return Ok(None);
    };
    let shape = kernel::CacheShape {
        rows,
        heads,
        keys: cache.keys,
        head_dim,
        capacity,
    };
    let first_keys: Vec<usize> = (0..rows).map(|row| cache.first_key(row)).collect();
    let context = with_cpu_values((q, cache.k, cache.v), &bias, |q, kv, bias| {
        kernel::single_query_cached(q, kv, (cache.buffer_rows, &first_keys), bias, shape)
    });
    context_tensor(context, q)
}

/// Run a fused kernel on the float32 CPU values of `q`, `k`, `v` and the resolved bias; `None`
/// when any of them is not stored contiguously on the CPU.
fn with_cpu_values(
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    bias: &BiasLayout,
    kernel: impl FnOnce(&[f32], (&[f32], &[f32]), Option<KeyBias>) -> Vec<f32>,
) -> Option<Vec<f32>> {
    let (q_storage, q_layout) = q.storage_and_layout();
    let (k_storage, k_layout) = k.storage_and_layout();
    let (v_storage, v_layout) = v.storage_and_layout();
    let bias_guard = bias.as_ref().map(|(b, _)| b.storage_and_layout());
    let guard = bias_guard
        .as_ref()
        .map(|(storage, layout)| (&**storage, *layout));
    let key_bias = key_bias(guard, bias.as_ref())?;
    Some(kernel(
        cpu_f32(&q_storage, q_layout)?,
        (
            cpu_f32(&k_storage, k_layout)?,
            cpu_f32(&v_storage, v_layout)?,
        ),
        key_bias,
    ))
}

/// A fused kernel's `(rows, heads, head_dim)` output as the context `(rows, 1, heads * head_dim)`.
fn context_tensor(context: Option<Vec<f32>>, q: &Tensor) -> Result<Option<Tensor>> {
    let Some(context) = context else {
        return Ok(None);
    };
    let (rows, heads, _, head_dim) = q.dims4()?;
    Ok(Some(Tensor::from_vec(
        context,
        (rows, 1, heads * head_dim),
        q.device(),
    )?))
}

/// The kernel's view of a resolved bias: `Some(None)` for no bias, `None` if it is not on the CPU.
fn key_bias<'a>(
    guard: Option<(&'a Storage, &Layout)>,
    bias: Option<&(Tensor, (usize, usize, usize))>,
) -> Option<Option<KeyBias<'a>>> {
    match (guard, bias) {
        (Some((storage, layout)), Some((_, (row_stride, head_stride, row_group)))) => {
            cpu_f32(storage, layout).map(|values| {
                Some(KeyBias {
                    values,
                    row_stride: *row_stride,
                    head_stride: *head_stride,
                    row_group: *row_group,
                })
            })
        }
        _ => Some(None),
    }
}

/// A float32 CPU tensor's values, when they are stored contiguously.
pub(crate) fn cpu_f32<'a>(storage: &'a Storage, layout: &Layout) -> Option<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else {
        return None;
    };
    let (start, end) = layout.contiguous_offsets()?;
    cpu.as_slice::<f32>().ok().map(|values| &values[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, IndexOp};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let device = Device::Cpu;
        let len: usize = shape.iter().product();
        let values: Vec<f32> = (0..len as u64)
            .map(|i| ((i * 2_654_435_761 + seed) % 1000) as f32 / 250.0 - 2.0)
            .collect();
        Tensor::from_vec(values, shape, &device).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// Key/value rows repeated for every query row of their group: what sharing must equal.
    fn repeat_rows(t: &Tensor, group: usize) -> Tensor {
        let rows = t.dim(0).unwrap() as u32;
        let index: Vec<u32> = (0..rows)
            .flat_map(|r| std::iter::repeat_n(r, group))
            .collect();
        let index = Tensor::new(index.as_slice(), t.device()).unwrap();
        t.index_select(&index, 0).unwrap()
    }

    #[test]
    fn shared_key_value_rows_equal_repeated_ones_on_both_paths() {
        let (kv_rows, group, heads, keys, head_dim) = (2, 3, 2, 5, 4);
        let k = random(&[kv_rows, heads, keys, head_dim], 1);
        let v = random(&[kv_rows, heads, keys, head_dim], 2);
        let bias = random(&[kv_rows, 1, 1, keys], 3);
        for queries in [1, 2] {
            let q = random(&[kv_rows * group, heads, queries, head_dim], 4);
            let expected = attend(
                &q,
                &repeat_rows(&k, group),
                &repeat_rows(&v, group),
                &[&repeat_rows(&bias, group)],
                Products::Float32,
            )
            .unwrap();
            // float32 takes the fused kernel for one query; float64 always takes candle's path.
            for dtype in [DType::F32, DType::F64] {
                let cast = |t: &Tensor| t.to_dtype(dtype).unwrap();
                let shared = attend(
                    &cast(&q),
                    &cast(&k),
                    &cast(&v),
                    &[&cast(&bias)],
                    Products::Float32,
                )
                .unwrap();
                assert_eq!(shared.dims(), &[kv_rows * group, queries, heads * head_dim]);
                assert!(
                    max_diff(&shared, &expected) < 1e-5,
                    "{dtype:?}, {queries} queries"
                );
            }
        }
    }

    #[test]
    fn fused_single_query_path_matches_candles_path() {
        let (rows, heads, keys, head_dim) = (3, 4, 9, 8);
        let q = random(&[rows, heads, 1, head_dim], 5);
        let k = random(&[rows, heads, keys, head_dim], 6);
        let v = random(&[rows, heads, keys, head_dim], 7);
        // A per-head bias like T5's relative positions, and a per-row one like padding.
        for bias in [
            random(&[1, heads, 1, keys], 8),
            random(&[rows, 1, 1, keys], 9),
        ] {
            let fused = attend(&q, &k, &v, &[&bias], Products::Float32).unwrap();
            let f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
            let reference = attend(
                &f64(&q),
                &f64(&k),
                &f64(&v),
                &[&f64(&bias)],
                Products::Float32,
            )
            .unwrap();
            assert!(max_diff(&fused, &reference) < 1e-5);
        }
        let without_bias = attend(&q, &k, &v, &[], Products::Float32).unwrap();
        assert_eq!(without_bias.i(0).unwrap().dims(), &[1, heads * head_dim]);
    }

    #[test]
    fn encoder_attention_over_strided_heads_and_two_biases_matches_candles_path() {
        let (rows, heads, seq, head_dim) = (2, 3, 6, 4);
        // q, k, v as projections split into heads without a copy, as the encoder has them.
        let heads_of = |seed| {
            split_heads(
                &random(&[rows, seq, heads * head_dim], seed),
                heads,
                head_dim,
            )
            .unwrap()
        };
        let (q, k, v) = (heads_of(1), heads_of(2), heads_of(3));
        assert!(!q.is_contiguous());
        let positions = random(&[1, heads, seq, seq], 4);
        let padding = Tensor::new(&[[0f32, 0., 0., 0., 0., f32::MIN]; 2], &Device::Cpu)
            .unwrap()
            .reshape((rows, 1, 1, seq))
            .unwrap();
        let fused = attend(&q, &k, &v, &[&positions, &padding], Products::Float32).unwrap();
        let f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let biases = [&f64(&positions), &f64(&padding)];
        let reference = attend(&f64(&q), &f64(&k), &f64(&v), &biases, Products::Float32).unwrap();
        assert_eq!(fused.dims(), &[rows, seq, heads * head_dim]);
        assert!(max_diff(&fused, &reference) < 1e-5);
    }

    #[test]
    fn cached_attention_is_the_same_fused_or_gathered() {
        use crate::models::DecoderState;
        let (rows, heads, head_dim) = (3, 2, 4);
        // float32 takes the fused kernel; float64 gathers the cache and takes candle's path.
        let run = |dtype: DType| -> Tensor {
            let cross = random(&[rows, heads, 2, head_dim], 1)
                .to_dtype(dtype)
                .unwrap();
            let mask = Tensor::new(&[[1u32, 1], [1, 1], [1, 1]], &Device::Cpu).unwrap();
            let mut state = DecoderState::new(vec![(cross.clone(), cross)], &mask, dtype).unwrap();
            let mut context = None;
            for step in 0..4u64 {
                if step == 2 {
                    state.reorder_beams(&[2, 0, 0]).unwrap();
                }
                state.begin_step().unwrap();
                let kv = |seed| {
                    random(&[rows, 1, heads, head_dim], seed)
                        .to_dtype(dtype)
                        .unwrap()
                };
                state
                    .append_self_kv(0, &kv(10 + step), &kv(20 + step))
                    .unwrap();
                let q = random(&[rows, heads, 1, head_dim], 30 + step)
                    .to_dtype(dtype)
                    .unwrap();
                let keys = step as usize + 1;
                let bias = random(&[1, heads, 1, keys], 40 + step)
                    .to_dtype(dtype)
                    .unwrap();
                context = Some(attend_cached(&q, state.self_kv(0).unwrap(), Some(&bias)).unwrap());
                state.end_step();
            }
            context.unwrap()
        };
        let (fused, gathered) = (run(DType::F32), run(DType::F64));
        assert_eq!(fused.dims(), &[rows, 1, heads * head_dim]);
        assert!(max_diff(&fused, &gathered) < 1e-5);
    }
}
