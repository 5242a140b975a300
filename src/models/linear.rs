//! A linear layer that multiplies every row of its input with one matrix product.
//!
//! candle-nn's `Linear` broadcasts the weight over the batch dimension, which on the CPU runs
//! one matrix product per batch row: during decoding (one token per row) that reads the whole
//! weight matrix once per row, so a batch of 8 × 4 beams read every decoder weight 32 times a
//! step. Folding the leading dimensions into rows reads each weight once per step.

use candle_core::{DType, Module, Result, Tensor};

use super::attention::cpu_f32;
use super::kernels::{self, skinny};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct Linear {
    /// `(out, in)`, as PyTorch stores it.
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }
}

/// Up to this many rows go through the streaming kernel; past it the product is compute-bound
/// and candle's packed GEMM is faster (measured with `precis bench`, t5-small shape, 2 threads).
const SKINNY_MAX_ROWS: usize = 8;

impl Linear {
    /// The decoder-step fast path: float32 rows on a CPU with AVX2, weight and bias in plain
    /// row-major storage. `None` when any of that does not hold.
    fn forward_skinny(&self, xs: &Tensor, rows: usize, inner: usize) -> Result<Option<Tensor>> {
        if rows > SKINNY_MAX_ROWS
            || !xs.device().is_cpu()
            || xs.dtype() != DType::F32
            || self.weight.dtype() != DType::F32
            || !kernels::has_avx2_fma()
        {
            return Ok(None);
        }
        let xs = xs.contiguous()?;
        let out = self.weight.dim(0)?;
        let (x_storage, x_layout) = xs.storage_and_layout();
        let (w_storage, w_layout) = self.weight.storage_and_layout();
        let bias = self.bias.as_ref().map(Tensor::storage_and_layout);
        let (Some(x), Some(w)) = (cpu_f32(&x_storage, x_layout), cpu_f32(&w_storage, w_layout))
        else {
            return Ok(None);
        };
        let b = match &bias {
            Some((storage, layout)) => match cpu_f32(storage, layout) {
                Some(b) => Some(b),
                None => return Ok(None),
            },
            None => None,
        };
        let ys = skinny::matmul_transposed(x, w, b, rows, inner, out);
        Ok(Some(Tensor::from_vec(ys, (rows, out), xs.device())?))
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims();
        let (lead, features) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let xs = xs.reshape((rows, features[0]))?;
        let ys = match self.forward_skinny(&xs, rows, features[0])? {
            Some(ys) => ys,
            None => {
                let ys = xs.matmul(&self.weight.t()?)?;
                match &self.bias {
                    Some(bias) => ys.broadcast_add(bias)?,
                    None => ys,
                }
            }
        };
        let mut out = lead.to_vec();
        out.push(self.weight.dim(0)?);
        ys.reshape(out)
    }
}

/// `in_dim -> out_dim` with a bias, weights under `vb` as `weight` and `bias`.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Ok(Linear::new(weight, Some(bias)))
}

/// `in_dim -> out_dim` without a bias.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    Ok(Linear::new(weight, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn matches_candle_nn_linear_on_batched_input() {
        let device = Device::Cpu;
        let weight = Tensor::arange(0f32, 12., &device)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let bias = Tensor::new(&[0.5f32, -1., 2.], &device).unwrap();
        let xs = Tensor::arange(0f32, 24., &device)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let ours = Linear::new(weight.clone(), Some(bias.clone()))
            .forward(&xs)
            .unwrap();
        let theirs = candle_nn::Linear::new(weight, Some(bias))
            .forward(&xs)
            .unwrap();
        assert_eq!(ours.dims(), &[2, 3, 3]);
        let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(
            diff.to_dtype(DType::F32)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }
}
