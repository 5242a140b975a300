//! Opens a model's weights as a candle `VarBuilder`: safetensors read tensor by tensor (one
//! file or shards), or a PyTorch pickle for checkpoints that have nothing else.

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::files::{ModelFiles, Weights};
use super::safetensors_reader::SafetensorsReader;
use crate::error::{Error, Result};

/// A `VarBuilder` over the weights of `files`, converting tensors to `dtype` on `device` as
/// they are read, and the number of parameters the checkpoint stores when its headers say so
/// (safetensors; a pickle would have to be read whole). A corrupt or truncated file is
/// reported by name.
pub(crate) fn var_builder(
    files: &ModelFiles,
    dtype: DType,
    device: &Device,
) -> Result<(VarBuilder<'static>, Option<usize>)> {
    match &files.weights {
        Weights::Safetensors(paths) => {
            let reader = SafetensorsReader::open(paths)?;
            let parameters = reader.parameters();
            let vb = VarBuilder::from_backend(Box::new(reader), dtype, device.clone());
            Ok((vb, Some(parameters)))
        }
        Weights::PytorchBin(path) => {
            let vb =
                VarBuilder::from_pth(path, dtype, device).map_err(|source| Error::WeightsFile {
                    path: path.clone(),
                    source,
                })?;
            Ok((vb, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loading::{JsonFile, TokenizerFiles};
    use candle_core::Tensor;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    fn files_with(weights: Weights) -> ModelFiles {
        ModelFiles {
            name: "test".into(),
            config: JsonFile {
                path: PathBuf::from("config.json"),
                json: serde_json::Value::Null,
            },
            tokenizer: TokenizerFiles::Json(PathBuf::from("tokenizer.json")),
            weights,
            generation_config: None,
            preset: None,
        }
    }

    fn open_error(files: &ModelFiles) -> Error {
        match var_builder(files, DType::F32, &Device::Cpu) {
            Ok(_) => panic!("expected the weights to be refused"),
            Err(err) => err,
        }
    }

    fn save(path: &Path, name: &str, values: &[f32]) {
        let tensor = Tensor::from_slice(values, values.len(), &Device::Cpu).unwrap();
        candle_core::safetensors::save(&HashMap::from([(name.to_string(), tensor)]), path).unwrap();
    }

    #[test]
    fn single_and_sharded_safetensors_load_with_the_requested_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            dir.path().join("a.safetensors"),
            dir.path().join("b.safetensors"),
        );
        save(&a, "encoder.w", &[1.0, 2.0]);
        save(&b, "decoder.w", &[3.0]);
        let files = files_with(Weights::Safetensors(vec![a, b]));
        let (vb, parameters) = var_builder(&files, DType::BF16, &Device::Cpu).unwrap();
        assert_eq!(
            parameters,
            Some(3),
            "every tensor of every shard, counted from the headers"
        );
        let decoder = vb.pp("decoder").get(1, "w").unwrap();
        assert_eq!(decoder.dtype(), DType::BF16);
        let encoder = vb
            .get(2, "encoder.w")
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        assert_eq!(encoder.to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
    }

    #[test]
    fn a_corrupt_shard_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (good, bad) = (
            dir.path().join("1.safetensors"),
            dir.path().join("2.safetensors"),
        );
        save(&good, "w", &[1.0]);
        std::fs::write(&bad, b"this is not a safetensors file").unwrap();
        let files = files_with(Weights::Safetensors(vec![good, bad.clone()]));
        let err = open_error(&files);
        assert!(
            matches!(err, Error::WeightsFile { ref path, .. } if *path == bad),
            "{err:?}"
        );
        assert!(err.to_string().contains("2.safetensors"));
    }

    #[test]
    fn a_tensor_in_two_shards_names_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (
            dir.path().join("1.safetensors"),
            dir.path().join("2.safetensors"),
        );
        save(&first, "w", &[1.0]);
        save(&second, "w", &[2.0]);
        let err = open_error(&files_with(Weights::Safetensors(vec![
            first,
            second.clone(),
        ])));
        assert!(
            matches!(err, Error::WeightsFile { ref path, .. } if *path == second),
            "{err:?}"
        );
        assert!(format!("{:?}", err).contains("earlier shard"), "{err:?}");
    }

    #[test]
    fn a_truncated_safetensors_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        save(&path, "w", &[1.0; 64]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 16]).unwrap();
        let err = open_error(&files_with(Weights::Safetensors(vec![path.clone()])));
        assert!(
            matches!(err, Error::WeightsFile { path: ref p, .. } if *p == path),
            "{err:?}"
        );
    }

    #[test]
    fn pytorch_pickles_load() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/loading/testdata/tiny_pytorch_model.bin");
        let (vb, parameters) = var_builder(
            &files_with(Weights::PytorchBin(path)),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(parameters, None, "a pickle is not counted");
        assert_eq!(
            vb.get(2, "encoder.w").unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0, 2.0]
        );
        assert_eq!(
            vb.pp("decoder")
                .get(1, "w")
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            vec![3.0]
        );
    }

    #[test]
    fn a_corrupt_pytorch_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pytorch_model.bin");
        std::fs::write(&path, b"PK\x03\x04 definitely not a zip").unwrap();
        let err = open_error(&files_with(Weights::PytorchBin(path.clone())));
        assert!(
            matches!(err, Error::WeightsFile { path: ref p, .. } if *p == path),
            "{err:?}"
        );
    }
}
