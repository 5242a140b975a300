//! Token matrices that checkpoints save under several names.

use candle_core::{Result, Tensor};
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
    let differs = copy.ne(shared)?.flatten_all()?.max(0)?.to_scalar::<u8>()? != 0;
    Ok(if differs { copy } else { shared.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    #[test]
    fn an_identical_copy_is_not_kept_twice_and_a_different_one_is_used() {
        let shared = Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu).unwrap();
        let other = Tensor::new(&[[1f32, 2.], [3., 5.]], &Device::Cpu).unwrap();
        let tensors = HashMap::from([
            ("same".to_string(), shared.copy().unwrap()),
            ("different".to_string(), other.clone()),
        ]);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let same = own_copy_or_shared(&vb, "same", &shared).unwrap();
        assert_eq!(
            same.id(),
            shared.id(),
            "an identical copy must reuse the shared matrix"
        );
        let different = own_copy_or_shared(&vb, "different", &shared).unwrap();
        assert_eq!(
            different.to_vec2::<f32>().unwrap(),
            other.to_vec2::<f32>().unwrap()
        );
        let missing = own_copy_or_shared(&vb, "missing", &shared).unwrap();
        assert_eq!(missing.id(), shared.id());
    }
}
