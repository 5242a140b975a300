//! transformers' float16 overflow guards, shared by T5 and the BART family: hidden states are
//! clamped to 1000 below float16's largest value, either always (Pegasus' encoder layers) or
//! only once a value has become infinite (BART's encoder layers, every T5 sub-layer). Other
//! dtypes never clamp.

use candle_core::{DType, Result, Tensor};

/// When a model clamps its float16 hidden states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HalfClamp {
    /// Only once a value is infinite: transformers' `not torch.isfinite(hidden_states).all()`
    /// (BART), or its clamp to `torch.isinf(...).any()`'s bound (T5), which is the same.
    WhenInfinite,
    /// After every layer, whatever the values (Pegasus).
    Always,
}

/// `xs` clamped under `policy` when it is float16; otherwise `xs` as it is.
pub(crate) fn clamp_half(xs: &Tensor, policy: HalfClamp) -> Result<Tensor> {
    if xs.dtype() != DType::F16 {
        return Ok(xs.clone());
    }
    let needed = match policy {
        HalfClamp::Always => true,
        HalfClamp::WhenInfinite => {
            let peak = xs.abs()?.flatten_all()?.max(0)?.to_dtype(DType::F32)?;
            !peak.to_scalar::<f32>()?.is_finite()
        }
    };
    if needed {
        let max = f64::from(half::f16::MAX) - 1000.0;
        xs.clamp(-max, max)
    } else {
        Ok(xs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn half(values: &[f32]) -> Tensor {
        Tensor::new(values, &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap()
    }

    fn read(t: Tensor) -> Vec<f32> {
        t.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap()
    }

    /// 64504 rounded to float16: 64512.
    fn bound() -> f32 {
        half::f16::from_f64(64504.0).to_f32()
    }

    #[test]
    fn when_infinite_touches_finite_values_only_once_one_is_infinite() {
        let clamp =
            |values: &[f32]| read(clamp_half(&half(values), HalfClamp::WhenInfinite).unwrap());
        // transformers clamps to f16::MAX (a no-op) while everything is finite ...
        assert_eq!(clamp(&[65504.0, -1.5]), [65504.0, -1.5]);
        // ... and to 1000 below it once anything overflowed.
        assert_eq!(
            clamp(&[f32::INFINITY, 65504.0, -1.5]),
            [bound(), bound(), -1.5]
        );
    }

    #[test]
    fn always_clamps_finite_values_too() {
        let clamped =
            read(clamp_half(&half(&[65504.0, -65504.0, -1.5]), HalfClamp::Always).unwrap());
        assert_eq!(clamped, [bound(), -bound(), -1.5]);
    }

    #[test]
    fn other_dtypes_pass_through() {
        let big = Tensor::new(&[1e6f32, f32::INFINITY], &Device::Cpu).unwrap();
        for policy in [HalfClamp::WhenInfinite, HalfClamp::Always] {
            assert_eq!(
                read(clamp_half(&big, policy).unwrap()),
                [1e6, f32::INFINITY]
            );
        }
    }
}
