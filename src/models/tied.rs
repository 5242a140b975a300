//! Token matrices: the copies checkpoints save under several names, and one matrix in memory
//! for the embeddings and a tied output head.
//!
//! On the CPU in float32 a tied head runs on the packed product kernels like every other
//! projection ([`PackedF32`]): their summation order is the same for any number of rows, so a
//! sequence gets the same logits alone or in any batch (the streaming kernel and the blocked
//! GEMM that a plain shared matrix went through summed in different orders below and above 8
//! rows). Packing is a copy in another layout, so the embeddings that share the matrix read
//! their rows from the packed copy and the plain one is dropped: memory does not grow.

use candle_core::{DType, Device, Module, Result, Tensor, TensorId};
use candle_nn::{Embedding, VarBuilder};

use super::kernels::packed::PackedF32;
use super::linear::{Linear, pack_f32};

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

/// Token embeddings: candle's lookup in a plain matrix, or rows read from a packed one.
#[derive(Debug, Clone)]
pub(crate) enum TokenEmbedding {
    Plain(Embedding),
    Packed { matrix: PackedF32, device: Device },
}

impl Module for TokenEmbedding {
    /// `ids` of any shape -> their embeddings, with a last dimension of the hidden size.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (matrix, device) = match self {
            Self::Plain(embedding) => return embedding.forward(ids),
            Self::Packed { matrix, device } => (matrix, device),
        };
        let hidden = matrix.inner();
        let flat = ids.flatten_all()?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let mut values = vec![0f32; flat.len() * hidden];
        for (&id, row) in flat.iter().zip(values.chunks_exact_mut(hidden)) {
            if id as usize >= matrix.out() {
                candle_core::bail!("token id {id} is past the vocabulary ({})", matrix.out());
            }
            matrix.row_into(id as usize, row);
        }
        let mut shape = ids.dims().to_vec();
        shape.push(hidden);
        Tensor::from_vec(values, shape, device)
    }
}

/// Builds the embeddings and the head of one model, packing each distinct float32 CPU token
/// matrix once (a matrix that `own_copy_or_shared` returned for several of them is one tensor).
#[derive(Default)]
pub(crate) struct TokenMatrices {
    packed: Vec<(TensorId, PackedF32)>,
}

impl TokenMatrices {
    /// `matrix` packed, once per tensor; `None` when it is not float32 on the CPU.
    fn packed(&mut self, matrix: &Tensor) -> Result<Option<PackedF32>> {
        if let Some((_, packed)) = self.packed.iter().find(|(id, _)| *id == matrix.id()) {
            return Ok(Some(packed.clone()));
        }
        let Some(packed) = pack_f32(matrix)? else {
            return Ok(None);
        };
        self.packed.push((matrix.id(), packed.clone()));
        Ok(Some(packed))
    }

    /// The embedding of the `(vocab, hidden)` token matrix `matrix`.
    pub(crate) fn embedding(&mut self, matrix: Tensor) -> Result<TokenEmbedding> {
        Ok(match self.packed(&matrix)? {
            Some(packed) => TokenEmbedding::Packed {
                matrix: packed,
                device: matrix.device().clone(),
            },
            None => {
                let hidden = matrix.dim(1)?;
                TokenEmbedding::Plain(Embedding::new(matrix, hidden))
            }
        })
    }

    /// An output head over the `(vocab, hidden)` token matrix `matrix`, without a bias.
    pub(crate) fn head(&mut self, matrix: Tensor) -> Result<Linear> {
        Ok(match self.packed(&matrix)? {
            Some(packed) => Linear::packed(packed, None),
            None => Linear::new(matrix, None),
        })
    }
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

#[cfg(test)]
mod token_matrix_tests {
    use super::*;

    #[test]
    fn packed_embeddings_and_head_match_the_plain_matrix() {
        let device = Device::Cpu;
        // 50 tokens: not a whole number of 48-token panels.
        let matrix = Tensor::randn(0f32, 1.0, (50, 12), &device).unwrap();
        let mut tokens = TokenMatrices::default();
        let embedding = tokens.embedding(matrix.clone()).unwrap();
        let head = tokens.head(matrix.clone()).unwrap();
        assert!(matches!(embedding, TokenEmbedding::Packed { .. }));
        assert_eq!(tokens.packed.len(), 1, "one matrix packed once");
        let ids = Tensor::new(&[[0u32, 49, 7], [48, 47, 0]], &device).unwrap();
        let plain = Embedding::new(matrix.clone(), 12).forward(&ids).unwrap();
        let ours = embedding.forward(&ids).unwrap();
        assert_eq!(ours.dims(), &[2, 3, 12]);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&ours), flat(&plain));
        let xs = Tensor::randn(0f32, 1.0, (3, 12), &device).unwrap();
        let want = xs.matmul(&matrix.t().unwrap()).unwrap();
        let got = head.forward(&xs).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        let error = embedding
            .forward(&Tensor::new(&[50u32], &device).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("token id 50") && error.contains("(50)"),
            "{error}"
        );
    }

    #[test]
    fn half_precision_matrices_stay_plain() {
        let matrix = Tensor::ones((4, 3), DType::F16, &Device::Cpu).unwrap();
        let mut tokens = TokenMatrices::default();
        let embedding = tokens.embedding(matrix).unwrap();
        assert!(matches!(embedding, TokenEmbedding::Plain(_)));
        assert!(tokens.packed.is_empty());
    }
}
