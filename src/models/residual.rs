//! BART-family residual sub-layers `x + f(x)` with their layer norm after (BART) or before
//! (Pegasus, mBART), and the CPU float32 path that sums and normalises in one pass.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::LayerNorm;

use super::attention::cpu_f32;
use super::bart_common::NormPlacement;
use super::kernels::norm::add_layer_norm;

/// One residual sub-layer `x + f(x)` with its norm before or after, as the layout says.
pub(crate) fn residual(
    xs: &Tensor,
    norm: &LayerNorm,
    placement: NormPlacement,
    sublayer: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    match placement {
        NormPlacement::Post => {
            let ys = sublayer(xs)?;
            match add_norm_cpu_f32(xs, &ys, norm)? {
                Some(normed) => Ok(normed),
                None => norm.forward(&(xs + ys)?),
            }
        }
        NormPlacement::Pre => xs + sublayer(&norm.forward(xs)?)?,
    }
}

/// `norm(xs + ys)` by the fused kernel when everything is float32 on the CPU and the norm is a
/// layer norm with a bias (candle's fused case); `None` otherwise.
fn add_norm_cpu_f32(xs: &Tensor, ys: &Tensor, norm: &LayerNorm) -> Result<Option<Tensor>> {
    let Some(bias) = norm.bias() else {
        return Ok(None);
    };
    let tensors = [xs, ys, norm.weight(), bias];
    let cpu_f32_all = tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if !cpu_f32_all || !norm.remove_mean() || xs.dims() != ys.dims() {
        return Ok(None);
    }
    let (xs, ys) = (xs.contiguous()?, ys.contiguous()?);
    let guards = [&xs, &ys, norm.weight(), bias].map(Tensor::storage_and_layout);
    let values: Option<Vec<&[f32]>> = guards
        .iter()
        .map(|(storage, layout)| cpu_f32(storage, layout))
        .collect();
    let Some([x, y, weight, bias]) = values.as_deref() else {
        return Ok(None);
    };
    if weight.len() != xs.dim(candle_core::D::Minus1)? {
        return Ok(None);
    }
    let normed = add_layer_norm(x, y, (weight, bias), norm.eps() as f32);
    Ok(Some(Tensor::from_vec(normed, xs.dims(), xs.device())?))
}
