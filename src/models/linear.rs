//! A linear layer that multiplies every row of its input with one matrix product.
//!
//! candle-nn's `Linear` broadcasts the weight over the batch dimension, which on the CPU runs
//! one matrix product per batch row: during decoding (one token per row) that reads the whole
//! weight matrix once per row, so a batch of 8 × 4 beams read every decoder weight 32 times a
//! step. Folding the leading dimensions into rows reads each weight once per step.
//!
//! On the CPU in float32 a layer's own weight is packed once, at load, for the product kernels
//! (`kernels::packed`); a weight it shares with something else (an output head tied to the
//! token embeddings) stays as it is and goes through the streaming kernel or the blocked GEMM.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};

use super::Quantization;
use super::attention::cpu_f32;
use super::kernels::gemm::{self, MatMut, MatRef, Threads};
use super::kernels::packed::{self, PackedF32};
use super::kernels::skinny;
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Weight {
    /// `(out, in)`, as PyTorch stores it.
    Dense(Tensor),
    /// CPU float32, packed in panels for the product kernels.
    Packed(PackedF32),
    /// Quantized blocks (`--quantize`); the dense matrix is dropped so memory shrinks too.
    Quantized { matmul: Arc<QMatMul>, out: usize },
}

impl Linear {
    /// A layer over `weight` as it is: for a weight shared with another part of the model.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Dense(weight),
            bias,
        }
    }

    /// A layer that owns `weight`: packed for the CPU kernels when it is float32 on the CPU
    /// (the tensor is dropped, so memory does not grow).
    pub fn owning(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if !weight.device().is_cpu() || weight.dtype() != DType::F32 {
            return Ok(Self::new(weight, bias));
        }
        let (out, inner) = weight.dims2()?;
        let values = weight.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self {
            weight: Weight::Packed(PackedF32::pack(&values, out, inner)),
            bias,
        })
    }

    fn out_features(&self) -> Result<usize> {
        match &self.weight {
            Weight::Dense(weight) => weight.dim(0),
            Weight::Packed(packed) => Ok(packed.out()),
            Weight::Quantized { out, .. } => Ok(*out),
        }
    }

    /// Replaces the weight by its `quantization` blocks. A weight whose input width is not a
    /// multiple of the block size (32), or that is not float32 on the CPU, stays dense:
    /// returns whether it was quantized.
    pub(crate) fn quantize(&mut self, quantization: Quantization) -> Result<bool> {
        let unpacked;
        let weight = match &self.weight {
            Weight::Dense(weight) => weight,
            Weight::Packed(packed) => {
                let shape = (packed.out(), packed.inner());
                unpacked = Tensor::from_vec(packed.unpack(), shape, &Device::Cpu)?;
                &unpacked
            }
            Weight::Quantized { .. } => return Ok(false),
        };
        let format = match quantization {
            Quantization::Q8 => GgmlDType::Q8_0,
        };
        let (out, inner) = weight.dims2()?;
        if !inner.is_multiple_of(format.block_size())
            || !weight.device().is_cpu()
            || weight.dtype() != DType::F32
        {
            return Ok(false);
        }
        let blocks = QTensor::quantize(weight, format)?;
        self.weight = Weight::Quantized {
            matmul: Arc::new(QMatMul::from_qtensor(blocks)?),
            out,
        };
        Ok(true)
    }
}

/// A model part made of projections that can be quantized.
pub(crate) trait Projections {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear>;
}

/// A lone projection (an output head) is its own part.
impl Projections for Linear {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        std::iter::once(self)
    }
}

/// Every projection of an encoder-decoder: its encoder layers', its decoder layers', its head.
pub(crate) fn model_projections<'a>(
    encoder: &'a mut [impl Projections],
    decoder: &'a mut [impl Projections],
    head: &'a mut Linear,
) -> impl Iterator<Item = &'a mut Linear> {
    let encoder = encoder.iter_mut().flat_map(Projections::projections_mut);
    let decoder = decoder.iter_mut().flat_map(Projections::projections_mut);
    encoder.chain(decoder).chain(std::iter::once(head))
}

/// `part` with its projections quantized when `quantization` is asked for. Models call this on
/// each layer as they load it, so only one layer's float32 weights are held at a time.
pub(crate) fn quantized<P: Projections>(
    mut part: P,
    quantization: Option<Quantization>,
) -> Result<P> {
    if let Some(q) = quantization {
        quantize_all(part.projections_mut(), q)?;
    }
    Ok(part)
}

/// Quantizes every layer in `layers`; returns how many were quantized and how many stayed
/// dense (their input width is not a multiple of the block size).
pub(crate) fn quantize_all<'a>(
    layers: impl IntoIterator<Item = &'a mut Linear>,
    quantization: Quantization,
) -> Result<(usize, usize)> {
    let (mut quantized, mut dense) = (0, 0);
    for layer in layers {
        if layer.quantize(quantization)? {
            quantized += 1;
        } else {
            dense += 1;
        }
    }
    Ok((quantized, dense))
}

/// Up to this many rows go through the streaming kernel; past it the product is compute-bound
/// and the blocked GEMM is faster (measured with `precis bench`, t5-small shape, 2 threads).
const SKINNY_MAX_ROWS: usize = 8;

impl Linear {
    /// float32 rows on the CPU, weight and bias in plain row-major storage: the streaming
    /// kernel for a decoder step's few rows, the blocked GEMM of the CPU kernel path otherwise.
    /// `None` when any of that does not hold (GPU, half precision).
    fn forward_cpu_f32(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        rows: usize,
        inner: usize,
    ) -> Result<Option<Tensor>> {
        if !xs.device().is_cpu() || xs.dtype() != DType::F32 || weight.dtype() != DType::F32 {
            return Ok(None);
        }
        let xs = xs.contiguous()?;
        let out = weight.dim(0)?;
        let (x_storage, x_layout) = xs.storage_and_layout();
        let (w_storage, w_layout) = weight.storage_and_layout();
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
        let ys = if rows <= SKINNY_MAX_ROWS {
            skinny::matmul_transposed(x, w, b, rows, inner, out)
        } else {
            // The bias goes in first and the product is added to it: no separate pass.
            let mut ys = match b {
                Some(b) => b.repeat(rows),
                None => vec![0f32; rows * out],
            };
            let (x, w) = (MatRef::row_major(x, inner), MatRef::transposed(w, inner));
            let dst = MatMut::row_major(&mut ys, out);
            gemm::matmul(dst, b.is_some(), x, w, (rows, out, inner), Threads::Pool);
            ys
        };
        Ok(Some(Tensor::from_vec(ys, (rows, out), xs.device())?))
    }
}

impl Linear {
    /// A packed weight's product (its input is float32 on the CPU, like the weight).
    fn forward_packed(&self, xs: &Tensor, packed: &PackedF32, rows: usize) -> Result<Tensor> {
        let xs = xs.to_dtype(DType::F32)?.contiguous()?;
        let (x_storage, x_layout) = xs.storage_and_layout();
        let bias = self.bias.as_ref().map(Tensor::storage_and_layout);
        let x = cpu_f32(&x_storage, x_layout);
        let b = bias
            .as_ref()
            .map(|(storage, layout)| cpu_f32(storage, layout));
        let (Some(x), None | Some(Some(_))) = (x, &b) else {
            candle_core::bail!("a packed layer takes float32 inputs and bias on the CPU");
        };
        let ys = packed::matmul(x, packed, b.flatten(), rows);
        Tensor::from_vec(ys, (rows, packed.out()), xs.device())
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims();
        let (lead, features) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let xs = xs.reshape((rows, features[0]))?;
        let on_cpu = match &self.weight {
            Weight::Dense(weight) => self.forward_cpu_f32(&xs, weight, rows, features[0])?,
            Weight::Packed(packed) => Some(self.forward_packed(&xs, packed, rows)?),
            Weight::Quantized { .. } => None,
        };
        let ys = match on_cpu {
            Some(ys) => ys,
            None => {
                let ys = match &self.weight {
                    Weight::Dense(weight) => xs.matmul(&weight.t()?)?,
                    Weight::Quantized { matmul, .. } => matmul.forward(&xs.contiguous()?)?,
                    Weight::Packed(_) => unreachable!("packed layers always run on the CPU"),
                };
                match &self.bias {
                    Some(bias) => ys.broadcast_add(bias)?,
                    None => ys,
                }
            }
        };
        let mut out = lead.to_vec();
        out.push(self.out_features()?);
        ys.reshape(out)
    }
}

/// `in_dim -> out_dim` with a bias, weights under `vb` as `weight` and `bias`.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Linear::owning(weight, Some(bias))
}

/// `in_dim -> out_dim` without a bias.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    Linear::owning(weight, None)
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
        let theirs = candle_nn::Linear::new(weight.clone(), Some(bias.clone()))
            .forward(&xs)
            .unwrap();
        // Shared (kept as it is) and owned (packed for the CPU kernels).
        let shared = Linear::new(weight.clone(), Some(bias.clone()));
        let owned = Linear::owning(weight, Some(bias)).unwrap();
        assert!(matches!(owned.weight, Weight::Packed(_)));
        for layer in [shared, owned] {
            let ours = layer.forward(&xs).unwrap();
            assert_eq!(ours.dims(), &[2, 3, 3]);
            let diff = (ours - &theirs).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        }
    }

    #[test]
    fn q8_layers_stay_close_to_float32_and_narrow_ones_stay_dense() {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (48, 64), &device).unwrap();
        let bias = Tensor::randn(0f32, 1.0, 48, &device).unwrap();
        let xs = Tensor::randn(0f32, 1.0, (2, 3, 64), &device).unwrap();
        let dense = Linear::new(weight.clone(), Some(bias.clone()));
        let mut q8 = dense.clone();
        assert!(q8.quantize(Quantization::Q8).unwrap());
        let (want, got) = (dense.forward(&xs).unwrap(), q8.forward(&xs).unwrap());
        assert_eq!(got.dims(), &[2, 3, 48]);
        let max = |t: Tensor| {
            t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        // Weights and activations each lose ~1/254 of their block's range.
        let error = max((&got - &want).unwrap());
        assert!(error > 0.0 && error < 0.02 * max(want), "q8 error {error}");

        // 40 inputs is not a whole number of 32-wide blocks: the layer keeps its weight.
        let narrow = Linear::new(Tensor::ones((8, 40), DType::F32, &device).unwrap(), None);
        let mut still_dense = narrow.clone();
        let (quantized, dense_count) = quantize_all([&mut still_dense], Quantization::Q8).unwrap();
        assert_eq!((quantized, dense_count), (0, 1));
        let xs = Tensor::ones((1, 40), DType::F32, &device).unwrap();
        let same = (narrow.forward(&xs).unwrap() - still_dense.forward(&xs).unwrap()).unwrap();
        assert_eq!(max(same), 0.0);
    }
}
