//! Feed-forward activations by their transformers name (`ACT2FN`), shared by every model.

use candle_core::op::{Relu, Silu, Tanh, UnaryOpT};
use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::kernels::gelu::{gelu_erf_in_place, gelu_tanh_in_place};

/// Values per parallel task of [`Activation::apply_in_place`].
const CHUNK: usize = 16 * 1024;

/// Feed-forward activation, as named by `activation_function` (transformers' `ACT2FN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    Relu,
    /// "gelu": the exact erf form.
    GeluErf,
    /// "gelu_new" / "gelu_pytorch_tanh": the tanh approximation.
    GeluTanh,
    Silu,
    Tanh,
    /// "quick_gelu": `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// "relu6": `min(max(x, 0), 6)`.
    Relu6,
    Sigmoid,
    /// "linear": the identity.
    Identity,
}

impl Activation {
    pub(crate) fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "relu" => Activation::Relu,
            "gelu" | "gelu_python" => Activation::GeluErf,
            // "gelu_fast" writes the same tanh formula as "gelu_new" in another order.
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            "quick_gelu" => Activation::QuickGelu,
            "relu6" => Activation::Relu6,
            "sigmoid" => Activation::Sigmoid,
            "linear" => Activation::Identity,
            _ => candle_core::bail!("unsupported activation_function '{name}'"),
        })
    }

    pub(crate) fn apply(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => xs.relu(),
            Activation::GeluErf => on_cpu_f32(xs, gelu_erf_in_place, Tensor::gelu_erf),
            Activation::GeluTanh => on_cpu_f32(xs, gelu_tanh_in_place, Tensor::gelu),
            Activation::Silu => xs.silu(),
            Activation::Tanh => xs.tanh(),
            Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?,
            Activation::Relu6 => xs.clamp(0f32, 6f32),
            Activation::Sigmoid => candle_nn::ops::sigmoid(xs),
            Activation::Identity => Ok(xs.clone()),
        }
    }

    /// `values` -> the activation of each, in place, on the thread pool: bit for bit what
    /// [`Self::apply`] gives on a float32 CPU tensor, as it is the same function per value
    /// (candle's, or a vectorised GELU of `kernels::gelu` that `apply` uses too), without
    /// a fresh tensor and without candle's second thread pool spinning between the products.
    /// `false`, with `values` untouched, for the activations candle composes from several ops.
    pub(crate) fn apply_in_place(self, values: &mut [f32]) -> bool {
        match self {
            Activation::Relu => map::<Relu>(values),
            Activation::GeluErf => gelu_erf_in_place(values),
            Activation::GeluTanh => gelu_tanh_in_place(values),
            Activation::Silu => map::<Silu>(values),
            Activation::Tanh => map::<Tanh>(values),
            Activation::Identity => {}
            Activation::QuickGelu | Activation::Relu6 | Activation::Sigmoid => return false,
        }
        true
    }

    /// Whether [`Self::apply_in_place`] takes this activation.
    pub(crate) fn has_in_place(self) -> bool {
        self.apply_in_place(&mut [])
    }
}

/// `in_place` (a vectorised kernel, the one the in-place path runs, so both paths give the same
/// bits) on a float32 CPU tensor, `elsewhere` (candle's) on any other device or dtype.
fn on_cpu_f32(
    xs: &Tensor,
    in_place: fn(&mut [f32]),
    elsewhere: fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return elsewhere(xs);
    }
    let mut values = xs.flatten_all()?.to_vec1::<f32>()?;
    in_place(&mut values);
    Tensor::from_vec(values, xs.shape(), xs.device())
}

fn map<Op: UnaryOpT>(values: &mut [f32]) {
    values
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| chunk.iter_mut().for_each(|v| *v = Op::f32(*v)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn apply(name: &str, xs: &[f32]) -> Vec<f32> {
        let t = Tensor::new(xs, &Device::Cpu).unwrap();
        let act = Activation::parse(name).unwrap();
        act.apply(&t).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn less_common_activations_follow_their_transformers_definitions() {
        let xs = [-7.0f32, -1.0, 0.0, 0.5, 7.0];
        let close = |got: Vec<f32>, want: Vec<f32>| {
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
            }
        };
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        close(
            apply("quick_gelu", &xs),
            xs.iter().map(|&x| x * sigmoid(1.702 * x)).collect(),
        );
        close(apply("relu6", &xs), vec![0.0, 0.0, 0.0, 0.5, 6.0]);
        close(
            apply("sigmoid", &xs),
            xs.iter().map(|&x| sigmoid(x)).collect(),
        );
        close(apply("linear", &xs), xs.to_vec());
        close(apply("gelu_fast", &xs), apply("gelu_new", &xs));
        close(apply("gelu_python", &xs), apply("gelu", &xs));
        assert!(Activation::parse("mystery").is_err());
    }

    #[test]
    fn in_place_activations_are_bit_identical_to_apply_or_decline() {
        // Enough values for several parallel chunks, over the range where each one bends.
        let xs: Vec<f32> = (0..40_000).map(|i| (i as f32 - 20_000.0) * 4e-4).collect();
        let tensor = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        for name in ["relu", "gelu", "gelu_new", "silu", "tanh", "linear"] {
            let act = Activation::parse(name).unwrap();
            let mut ours = xs.clone();
            assert!(act.apply_in_place(&mut ours), "{name}");
            let theirs: Vec<f32> = act.apply(&tensor).unwrap().to_vec1().unwrap();
            let same = ours
                .iter()
                .zip(&theirs)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name}");
        }
        for name in ["quick_gelu", "relu6", "sigmoid"] {
            let mut values = xs.clone();
            assert!(!Activation::parse(name).unwrap().apply_in_place(&mut values));
            assert_eq!(values, xs, "{name} left its values alone");
        }
    }
}
