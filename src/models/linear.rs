//! A linear layer that multiplies every row of its input with one matrix product.
//!
//! candle-nn's `Linear` broadcasts the weight over the batch dimension, which on the CPU runs
//! one matrix product per batch row: during decoding (one token per row) that reads the whole
//! weight matrix once per row, so a batch of 8 × 4 beams read every decoder weight 32 times a
//! step. Folding the leading dimensions into rows reads each weight once per step.

use candle_core::{Module, Result, Tensor};
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

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims();
        let (lead, features) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let ys = xs.reshape((rows, features[0]))?.matmul(&self.weight.t()?)?;
        let ys = match &self.bias {
            Some(bias) => ys.broadcast_add(bias)?,
            None => ys,
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
