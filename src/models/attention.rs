//! Multi-head attention math shared by every architecture: head split and softmax attention.
//!
//! A decoder step (one query per row) on the CPU in float32 goes through the fused kernel in
//! [`kernels::attention`]; everything else (the encoder, GPUs, half precision) through candle.

use candle_core::{DType, Layout, Result, Storage, Tensor};

use super::kernels::attention::{self as kernel, KeyBias};

/// `(batch, seq, heads * head_dim)` -> `(batch, heads, seq, head_dim)`, contiguous.
pub fn split_heads(xs: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let (batch, seq, _) = xs.dims3()?;
    xs.reshape((batch, seq, heads, head_dim))?
        .transpose(1, 2)?
        .contiguous()
}

/// `softmax(q · kᵀ + bias) · v` for `q (batch, heads, queries, head_dim)` and
/// `k, v (batch, heads, keys, head_dim)`, with `bias` broadcastable to
/// `(batch, heads, queries, keys)`. Returns the context `(batch, queries, heads * head_dim)`.
/// Scores are taken in float32 for half-precision inputs, as transformers' kernels do.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if let Some(context) = attend_single_query(q, k, v, bias)? {
        return Ok(context);
    }
    let dtype = q.dtype();
    let mut scores = q.matmul(&k.t()?)?;
    if let Some(bias) = bias {
        scores = scores.broadcast_add(bias)?;
    }
    let weights =
        candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(dtype)?;
    let (batch, heads, queries, head_dim) = q.dims4()?;
    weights
        .matmul(v)?
        .transpose(1, 2)?
        .reshape((batch, queries, heads * head_dim))
}

/// The fused path, when there is one query per row and every tensor is float32 on the CPU.
fn attend_single_query(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Option<Tensor>> {
    let (rows, heads, queries, head_dim) = q.dims4()?;
    let keys = k.dim(2)?;
    if queries != 1 || !q.device().is_cpu() || q.dtype() != DType::F32 {
        return Ok(None);
    }
    let bias = match bias {
        Some(bias) => {
            let (bias_rows, bias_heads, bias_queries, bias_keys) = bias.dims4()?;
            let broadcastable = |n: usize, full: usize| n == 1 || n == full;
            if !broadcastable(bias_rows, rows)
                || !broadcastable(bias_heads, heads)
                || bias_queries != 1
                || bias_keys != keys
                || bias.dtype() != DType::F32
            {
                return Ok(None);
            }
            let strides = (
                if bias_rows == 1 { 0 } else { bias_heads * keys },
                if bias_heads == 1 { 0 } else { keys },
            );
            Some((bias.contiguous()?, strides))
        }
        None => None,
    };
    let (q_storage, q_layout) = q.storage_and_layout();
    let (k_storage, k_layout) = k.storage_and_layout();
    let (v_storage, v_layout) = v.storage_and_layout();
    let bias_guard = bias.as_ref().map(|(b, _)| b.storage_and_layout());
    let (Some(q_values), Some(k_values), Some(v_values)) = (
        cpu_f32(&q_storage, q_layout),
        cpu_f32(&k_storage, k_layout),
        cpu_f32(&v_storage, v_layout),
    ) else {
        return Ok(None);
    };
    let key_bias = match (&bias_guard, &bias) {
        (Some((storage, layout)), Some((_, (row_stride, head_stride)))) => {
            match cpu_f32(storage, layout) {
                Some(values) => Some(KeyBias {
                    values,
                    row_stride: *row_stride,
                    head_stride: *head_stride,
                }),
                None => return Ok(None),
            }
        }
        _ => None,
    };
    let shape = kernel::Shape {
        rows,
        heads,
        keys,
        head_dim,
    };
    let context = kernel::single_query(q_values, k_values, v_values, key_bias, shape);
    Ok(Some(Tensor::from_vec(
        context,
        (rows, 1, heads * head_dim),
        q.device(),
    )?))
}

/// A float32 CPU tensor's values, when they are stored contiguously.
pub(crate) fn cpu_f32<'a>(storage: &'a Storage, layout: &Layout) -> Option<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else {
        return None;
    };
    let (start, end) = layout.contiguous_offsets()?;
    cpu.as_slice::<f32>().ok().map(|values| &values[start..end])
}
