//! Token matrices that checkpoints save under several names.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

/// The copy of the shared token matrix saved as `name`, or `shared` itself when the file has no
/// such copy or the copy holds the same values.
///
/// transformers 5 uses a stack's (or the head's) own saved copy whenever the file has one, tied
/// or not, and warns when it differs from the shared matrix. Released checkpoints save
/// identical copies or none; reusing `shared` then keeps one matrix in memory instead of three.
pub(crate) fn own_copy_or_shared(vb: &VarBuilder, name: &str, shared: &Tensor) -> Result<Tensor> {
    if !vb.contains_tensor(name) {
        return Ok(shared.clone());
    }
    let copy = vb.get(shared.shape(), name)?;
    // A sum of absolute differences is zero only when every element is equal; unlike a u8
    // comparison mask it reduces in every dtype on every device.
    let differences = (&copy - shared)?.abs()?.sum_all()?;
    let differs = differences.to_dtype(DType::F32)?.to_scalar::<f32>()? != 0.0;
    Ok(if differs { copy } else { shared.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use std::collections::HashMap;

    #[test]
    fn an_identical_copy_is_not_kept_twice_and_a_different_one_is_used() {
        for dtype in [DType::F32, DType::BF16] {
            check(dtype);
        }
    }

    fn check(dtype: DType) {
        let as_dtype = |t: Tensor| t.to_dtype(dtype).unwrap();
        let shared = as_dtype(Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu).unwrap());
        let other = as_dtype(Tensor::new(&[[1f32, 2.], [3., 5.]], &Device::Cpu).unwrap());
        let tensors = HashMap::from([
            ("same".to_string(), shared.copy().unwrap()),
            ("different".to_string(), other.clone()),
        ]);
        let vb = VarBuilder::from_tensors(tensors, dtype, &Device::Cpu);
        let same = own_copy_or_shared(&vb, "same", &shared).unwrap();
        assert_eq!(
            same.id(),
            shared.id(),
            "an identical copy must reuse the shared matrix"
        );
        let different = own_copy_or_shared(&vb, "different", &shared).unwrap();
        let floats = |t: &Tensor| t.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(floats(&different), floats(&other));
        let missing = own_copy_or_shared(&vb, "missing", &shared).unwrap();
        assert_eq!(missing.id(), shared.id());
    }
}
