//! A linear layer that multiplies every row of its input with one matrix product.
//!
//! candle-nn's `Linear` broadcasts the weight over the batch dimension, which on the CPU runs
//! one matrix product per batch row: during decoding (one token per row) that reads the whole
//! weight matrix once per row, so a batch of 8 × 4 beams read every decoder weight 32 times a
//! step. Folding the leading dimensions into rows reads each weight once per step.
//!
//! On the CPU in float32 a layer's own weight is packed once, at load, for the product kernels
//! (`kernels::packed`), and so is an output head tied to the token embeddings (see
//! [`super::tied`]); a weight left as it is goes through the streaming kernel. `--quantize q8`
//! turns every weight, shared or not, into its own int8 copy (`kernels::int8`), and
//! `--dtype bf16` on the CPU into its own bfloat16 copy (`kernels::bf16`).
//!
//! Each kernel sums every output in one order whatever the number of rows (batch-invariance:
//! a sequence's logits do not depend on what else is in the batch), so a layer never switches
//! kernels by row count.

use candle_core::{DType, Module, Result, Tensor};

use super::Quantization;
use super::attention::cpu_f32;
use super::kernels::bf16::{self, PackedBf16};
use super::kernels::int8::{self, PackedI8};
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
    /// Int8 with one scale per output feature (`--quantize q8`); the float32 matrix is
    /// dropped so memory shrinks too.
    Quantized(PackedI8),
    /// bfloat16, packed for the CPU's bfloat16 products (`--dtype bf16` on the CPU); the
    /// float32 matrix is dropped.
    Bf16(PackedBf16),
}

impl Linear {
    /// A layer over `weight` as it is: for a weight shared with another part of the model.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Dense(weight),
            bias,
        }
    }

    /// A layer over a float32 weight already packed for the CPU kernels (a tied output head,
    /// whose packed matrix the embeddings share).
    pub(crate) fn packed(weight: PackedF32, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Packed(weight),
            bias,
        }
    }

    /// A layer that owns `weight`: packed for the CPU kernels when it is float32 on the CPU
    /// (the tensor is dropped, so memory does not grow).
    pub fn owning(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        match pack_f32(&weight)? {
            Some(packed) => Ok(Self::packed(packed, bias)),
            None => Ok(Self::new(weight, bias)),
        }
    }

    pub(crate) fn out_features(&self) -> Result<usize> {
        match &self.weight {
            Weight::Dense(weight) => weight.dim(0),
            Weight::Packed(packed) => Ok(packed.out()),
            Weight::Quantized(packed) => Ok(packed.out()),
            Weight::Bf16(packed) => Ok(packed.out()),
        }
    }

    /// Whether the weight is bfloat16 for the CPU's bfloat16 products (`--dtype bf16`).
    pub(crate) fn is_bf16(&self) -> bool {
        matches!(self.weight, Weight::Bf16(_))
    }

    /// Whether the weight is packed for the CPU kernels, float32, int8 or bfloat16
    /// ([`Self::packed_product_into`] applies).
    pub(crate) fn is_packed(&self) -> bool {
        !matches!(self.weight, Weight::Dense(_))
    }

    /// `y = x · Wᵀ (+ bias)` for `rows` float32 rows `x` when the weight is packed (float32,
    /// int8 or bfloat16) and the bias (if any) float32 on the CPU; `false`, with `y` untouched, otherwise.
    pub(crate) fn packed_product_into(&self, x: &[f32], rows: usize, y: &mut [f32]) -> bool {
        let bias = self.bias.as_ref().map(Tensor::storage_and_layout);
        let b = match &bias {
            Some((storage, layout)) => match cpu_f32(storage, layout) {
                Some(b) => Some(b),
                None => return false,
            },
            None => None,
        };
        match &self.weight {
            Weight::Packed(w) => packed::matmul_into(x, w, b, rows, y),
            Weight::Quantized(w) => int8::matmul_into(x, w, b, rows, y),
            Weight::Bf16(w) => bf16::matmul_into(x, w, b, rows, y),
            Weight::Dense(_) => return false,
        }
        true
    }

    /// Replaces the weight by its `quantization` (int8 or bfloat16, any width). A weight that
    /// is not float32 on the CPU stays as it is: returns whether it was quantized.
    pub(crate) fn quantize(&mut self, quantization: Quantization) -> Result<bool> {
        let convert = |values: &[f32], out: usize, inner: usize| match quantization {
            Quantization::Q8 => Weight::Quantized(PackedI8::quantize(values, out, inner)),
            Quantization::Bf16 => Weight::Bf16(PackedBf16::pack(values, out, inner)),
        };
        self.weight = match &self.weight {
            Weight::Dense(weight) if weight.device().is_cpu() && weight.dtype() == DType::F32 => {
                let (out, inner) = weight.dims2()?;
                with_f32_values(weight, |values| convert(values, out, inner))?
            }
            Weight::Packed(packed) => convert(&packed.unpack(), packed.out(), packed.inner()),
            Weight::Dense(_) | Weight::Quantized(_) | Weight::Bf16(_) => return Ok(false),
        };
        Ok(true)
    }
}

/// `f` over the float32 CPU tensor `tensor`'s values in row-major order: read where they lie
/// when stored contiguously (a copy of each weight into fresh memory cost more load time than
/// packing it: the kernel zeroes every fresh page), gathered first from a strided view.
fn with_f32_values<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    {
        let (storage, layout) = tensor.storage_and_layout();
        if let Some(values) = cpu_f32(&storage, layout) {
            return Ok(f(values));
        }
    }
    let values = tensor.flatten_all()?.to_vec1::<f32>()?;
    Ok(f(&values))
}

/// The `(out, inner)` matrix `weight` packed for the CPU kernels; `None` unless it is float32
/// on the CPU.
pub(crate) fn pack_f32(weight: &Tensor) -> Result<Option<PackedF32>> {
    if !weight.device().is_cpu() || weight.dtype() != DType::F32 {
        return Ok(None);
    }
    let (out, inner) = weight.dims2()?;
    with_f32_values(weight, |values| PackedF32::pack(values, out, inner)).map(Some)
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
/// dense (not float32 on the CPU).
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

impl Linear {
    /// float32 rows on the CPU, weight and bias in plain row-major storage: the streaming
    /// kernel, for any number of rows (one summation order). `None` when any of that does not
    /// hold (GPU, half precision).
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
        let ys = skinny::matmul_transposed(x, w, b, rows, inner, out);
        Ok(Some(Tensor::from_vec(ys, (rows, out), xs.device())?))
    }
}

impl Linear {
    /// A packed (float32, int8 or bfloat16) weight's product, by `kernel` over the input rows and the
    /// bias: its input is float32 on the CPU, like the weight.
    fn forward_packed(
        &self,
        xs: &Tensor,
        (rows, out): (usize, usize),
        kernel: impl FnOnce(&[f32], Option<&[f32]>) -> Vec<f32>,
    ) -> Result<Tensor> {
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
        let ys = kernel(x, b.flatten());
        Tensor::from_vec(ys, (rows, out), xs.device())
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
            Weight::Packed(w) => Some(
                self.forward_packed(&xs, (rows, w.out()), |x, b| packed::matmul(x, w, b, rows))?,
            ),
            Weight::Quantized(w) => {
                Some(self.forward_packed(&xs, (rows, w.out()), |x, b| int8::matmul(x, w, b, rows))?)
            }
            Weight::Bf16(w) => {
                Some(self.forward_packed(&xs, (rows, w.out()), |x, b| bf16::matmul(x, w, b, rows))?)
            }
        };
        let ys = match on_cpu {
            Some(ys) => ys,
            None => {
                let ys = match &self.weight {
                    Weight::Dense(weight) => xs.matmul(&weight.t()?)?,
                    Weight::Packed(_) | Weight::Quantized(_) | Weight::Bf16(_) => {
                        unreachable!("packed layers always run on the CPU")
                    }
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
    fn a_weight_packs_the_same_from_its_storage_and_from_a_strided_view() {
        let device = Device::Cpu;
        // (5, 7), and the same matrix as a transposed view of its (7, 5) transpose.
        let weight = Tensor::arange(0f32, 35., &device)
            .unwrap()
            .reshape((5, 7))
            .unwrap();
        let view = weight.t().unwrap().contiguous().unwrap().t().unwrap();
        assert!(!view.is_contiguous());
        let want = weight.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for matrix in [&weight, &view] {
            let packed = pack_f32(matrix)
                .unwrap()
                .expect("float32 on the CPU is packed");
            assert_eq!((packed.out(), packed.inner()), (5, 7));
            assert_eq!(packed.unpack(), want);
        }
        // An offset into a larger storage: the values are the view's, not the storage's.
        let rows = Tensor::arange(0f32, 42., &device)
            .unwrap()
            .reshape((6, 7))
            .unwrap()
            .narrow(0, 1, 5)
            .unwrap();
        let packed = pack_f32(&rows).unwrap().unwrap();
        assert_eq!(
            packed.unpack(),
            (7..42).map(|v| v as f32).collect::<Vec<_>>()
        );
        let half = weight.to_dtype(DType::F16).unwrap();
        assert!(pack_f32(&half).unwrap().is_none(), "only float32 is packed");
    }

    #[test]
    fn q8_layers_stay_close_to_float32_and_half_precision_ones_stay_dense() {
        let device = Device::Cpu;
        // 40 inputs: not a whole number of 4-input groups, padded by the int8 format.
        let weight = Tensor::randn(0f32, 1.0, (48, 40), &device).unwrap();
        let bias = Tensor::randn(0f32, 1.0, 48, &device).unwrap();
        let xs = Tensor::randn(0f32, 1.0, (2, 3, 40), &device).unwrap();
        let max = |t: Tensor| {
            t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let dense = Linear::new(weight.clone(), Some(bias.clone()));
        let owned = Linear::owning(weight, Some(bias)).unwrap();
        let want = dense.forward(&xs).unwrap();
        // A shared weight and a packed one quantize to the same layer.
        let (mut shared_q8, mut owned_q8) = (dense.clone(), owned);
        assert!(shared_q8.quantize(Quantization::Q8).unwrap());
        assert!(owned_q8.quantize(Quantization::Q8).unwrap());
        assert!(matches!(shared_q8.weight, Weight::Quantized(_)));
        let got = shared_q8.forward(&xs).unwrap();
        assert_eq!(got.dims(), &[2, 3, 48]);
        assert_eq!(max((&got - owned_q8.forward(&xs).unwrap()).unwrap()), 0.0);
        // Weights and activations each lose up to half a step of 1/127 of their row's range.
        let error = max((&got - &want).unwrap());
        assert!(error > 0.0 && error < 0.02 * max(want), "q8 error {error}");

        // Half precision is not what the int8 kernels take: the layer keeps its weight.
        let half = Tensor::ones((8, 40), DType::F16, &device).unwrap();
        let mut still_dense = Linear::new(half, None);
        let (quantized, dense_count) = quantize_all([&mut still_dense], Quantization::Q8).unwrap();
        assert_eq!((quantized, dense_count), (0, 1));
        assert!(matches!(still_dense.weight, Weight::Dense(_)));
    }
}
