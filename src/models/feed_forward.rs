//! The feed-forward sub-layer `down(act(up(x)) [* gate(x)])` shared by every architecture, with
//! a CPU path over packed weights (float32 or `--quantize q8`'s int8).
//!
//! Through tensors, the hidden activations (four times the model's width: 128 MB for 8 inputs
//! of 1024 tokens in DistilBART) are written three times into fresh tensors (the product, the
//! activation, the product again), whose pages the kernel zeroes and faults in each time, and
//! the activation runs on candle's second thread pool, which spins between the products. On the
//! packed path the rows go in chunks of [`CHUNK`]: each chunk's hidden activations are one
//! buffer, activated in place on the thread pool, and its output is written straight into the
//! result. Every row's values are the same as through tensors, bit for bit: the products sum
//! each row alone, and the activation is the same function per value (`Activation`).

use candle_core::{DType, Module, Result, Tensor};

use super::activation::Activation;
use super::attention::cpu_f32;
use super::linear::Linear;

/// Rows per chunk: their hidden activations (8 MiB at 4096 wide) are reused chunk after chunk,
/// and 512 rows still give each product several token blocks to split between threads.
const CHUNK: usize = 512;

/// `down(act(up(x)) * gate(x))`, or without the gate: T5's gated variants multiply by a second
/// projection, BART's and T5's original feed-forward have none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedForwardRef<'a> {
    pub up: &'a Linear,
    pub gate: Option<&'a Linear>,
    pub down: &'a Linear,
    pub activation: Activation,
}

impl FeedForwardRef<'_> {
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let Some(ys) = self.forward_packed(xs)? {
            return Ok(ys);
        }
        let mut hidden = self.activation.apply(&self.up.forward(xs)?)?;
        if let Some(gate) = self.gate {
            hidden = hidden.mul(&gate.forward(xs)?)?;
        }
        self.down.forward(&hidden)
    }

    /// The chunked path (see the module header); `None` when it does not apply.
    fn forward_packed(&self, xs: &Tensor) -> Result<Option<Tensor>> {
        let all_packed = [Some(self.up), self.gate, Some(self.down)]
            .into_iter()
            .flatten()
            .all(Linear::is_packed);
        let cpu_f32_input = xs.device().is_cpu() && xs.dtype() == DType::F32;
        if !all_packed || !cpu_f32_input || !self.activation.has_in_place() {
            return Ok(None);
        }
        let dims = xs.dims();
        let (lead, last) = dims.split_at(dims.len() - 1);
        let (rows, inner) = (lead.iter().product::<usize>(), last[0]);
        let (hidden_width, out) = (self.up.out_features()?, self.down.out_features()?);
        let xs = xs.contiguous()?;
        let (storage, layout) = xs.storage_and_layout();
        let Some(x) = cpu_f32(&storage, layout) else {
            return Ok(None);
        };
        let mut ys = vec![0f32; rows * out];
        let mut hidden = vec![0f32; CHUNK.min(rows) * hidden_width];
        let mut gated = vec![0f32; if self.gate.is_some() { hidden.len() } else { 0 }];
        let chunks = x.chunks(CHUNK * inner).zip(ys.chunks_mut(CHUNK * out));
        for (x, y) in chunks {
            let n = x.len() / inner;
            let hidden = &mut hidden[..n * hidden_width];
            if !self.up.packed_product_into(x, n, hidden) || !self.activation.apply_in_place(hidden)
            {
                return Ok(None);
            }
            if let Some(gate) = self.gate {
                let gated = &mut gated[..n * hidden_width];
                if !gate.packed_product_into(x, n, gated) {
                    return Ok(None);
                }
                multiply_in_place(hidden, gated);
            }
            if !self.down.packed_product_into(hidden, n, y) {
                return Ok(None);
            }
        }
        let mut shape = lead.to_vec();
        shape.push(out);
        Ok(Some(Tensor::from_vec(ys, shape, xs.device())?))
    }
}

/// `hidden *= gate`, element by element, on the thread pool.
fn multiply_in_place(hidden: &mut [f32], gate: &[f32]) {
    use rayon::prelude::*;
    hidden
        .par_chunks_mut(16 * 1024)
        .zip(gate.par_chunks(16 * 1024))
        .for_each(|(h, g)| h.iter_mut().zip(g).for_each(|(h, g)| *h *= g));
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::models::Quantization;

    /// A layer of `out x inner` random weights with a bias, packed as `--quantize` would leave it.
    fn layer(out: usize, inner: usize, quantization: Option<Quantization>) -> Linear {
        let weight = Tensor::randn(0f32, 0.5, (out, inner), &Device::Cpu).unwrap();
        let bias = Tensor::randn(0f32, 0.5, out, &Device::Cpu).unwrap();
        let mut layer = Linear::owning(weight, Some(bias)).unwrap();
        if let Some(quantization) = quantization {
            assert!(layer.quantize(quantization).unwrap());
        }
        layer
    }

    #[test]
    fn chunked_rows_get_the_same_bits_as_the_tensor_path_in_float32_and_q8() {
        // More rows than a chunk, and a ragged last chunk.
        let (rows, width, hidden) = (2 * CHUNK + 37, 40, 72);
        let xs = Tensor::randn(0f32, 1.0, (1, rows, width), &Device::Cpu).unwrap();
        for quantization in [None, Some(Quantization::Q8)] {
            let (up, gate, down) = (
                layer(hidden, width, quantization),
                layer(hidden, width, quantization),
                layer(width, hidden, quantization),
            );
            for gate in [None, Some(&gate)] {
                let ffn = FeedForwardRef {
                    up: &up,
                    gate,
                    down: &down,
                    activation: Activation::GeluErf,
                };
                let chunked = ffn.forward_packed(&xs).unwrap();
                let chunked = chunked.unwrap_or_else(|| panic!("{quantization:?}: not chunked"));
                let mut through_tensors = ffn.activation.apply(&up.forward(&xs).unwrap()).unwrap();
                if let Some(gate) = gate {
                    through_tensors = through_tensors.mul(&gate.forward(&xs).unwrap()).unwrap();
                }
                let through_tensors = down.forward(&through_tensors).unwrap();
                let bits = |t: &Tensor| -> Vec<u32> {
                    let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    values.into_iter().map(f32::to_bits).collect()
                };
                assert_eq!(
                    bits(&chunked),
                    bits(&through_tensors),
                    "{quantization:?}, gate {}",
                    gate.is_some()
                );
            }
        }
    }
}
