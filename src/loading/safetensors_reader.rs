//! Safetensors weights read tensor by tensor, for candle's `VarBuilder`.
//!
//! candle memory-maps safetensors files. Every page of a map that has been read stays in the
//! process's resident set until the map is dropped, so loading peaked at twice the model's size
//! (the map, plus the tensors copied out of it): 2.4 GB for distilbart-cnn-12-6's 1.2 GB of
//! weights. Reading each tensor into its own buffer peaks at the model plus one tensor.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Shape, Tensor, WithDType};
use candle_nn::var_builder::SimpleBackend;
use safetensors::tensor::{Metadata, TensorView};

use crate::error::{Error, Result};

/// Where one tensor lives.
#[derive(Debug)]
struct Entry {
    file: usize,
    /// Byte offset of its data from the start of the file.
    start: u64,
    len: usize,
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
}

/// One or more safetensors files (shards), their headers parsed, tensors read on demand.
#[derive(Debug)]
pub struct SafetensorsReader {
    files: Vec<(PathBuf, Mutex<File>)>,
    tensors: HashMap<String, Entry>,
}

impl SafetensorsReader {
    /// Open every shard and index its tensors. A file that is not safetensors, is truncated, or
    /// repeats a tensor of an earlier shard is reported by name.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut reader = Self {
            files: Vec::with_capacity(paths.len()),
            tensors: HashMap::new(),
        };
        for path in paths {
            let fail = |message: String| Error::WeightsFile {
                path: path.clone(),
                source: candle_core::Error::Msg(message),
            };
            let mut file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
            let (data_start, metadata) = read_header(&mut file).map_err(fail)?;
            let index = reader.files.len();
            for (name, info) in metadata.tensors() {
                let (begin, end) = info.data_offsets;
                let entry = Entry {
                    file: index,
                    start: data_start + begin as u64,
                    len: end - begin,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                };
                if reader.tensors.insert(name.clone(), entry).is_some() {
                    return Err(fail(format!("tensor {name} is also in an earlier shard")));
                }
            }
            reader.files.push((path.clone(), Mutex::new(file)));
        }
        Ok(reader)
    }

    /// Parameters over every tensor of every shard (a tied matrix saved once counts once),
    /// from the headers alone.
    pub fn parameters(&self) -> usize {
        self.tensors
            .values()
            .map(|entry| entry.shape.iter().product::<usize>())
            .sum()
    }

    fn load(&self, name: &str, device: &Device) -> candle_core::Result<Tensor> {
        let Some(entry) = self.tensors.get(name) else {
            candle_core::bail!("cannot find tensor {name}");
        };
        let (path, file) = &self.files[entry.file];
        let read = |buffer: &mut [u8]| -> candle_core::Result<()> {
            let mut file = file
                .lock()
                .map_err(|_| candle_core::Error::Msg("a weights file reader panicked".into()))?;
            file.seek(SeekFrom::Start(entry.start))
                .and_then(|_| file.read_exact(buffer))
                .map_err(|e| read_error(path, name, &e))
        };
        // The types candle stores as they are on disk are read straight into the tensor's own
        // buffer: a byte buffer and a copy out of it touched every weight twice more in fresh
        // memory, and fresh pages (zeroed by the kernel) were most of the load time.
        match entry.dtype {
            safetensors::Dtype::F32 => read_into::<f32>(entry, read, device),
            safetensors::Dtype::F16 => read_into::<half::f16>(entry, read, device),
            safetensors::Dtype::BF16 => read_into::<half::bf16>(entry, read, device),
            safetensors::Dtype::F64 => read_into::<f64>(entry, read, device),
            _ => {
                let mut bytes = vec![0u8; entry.len];
                read(&mut bytes)?;
                let view = TensorView::new(entry.dtype, entry.shape.clone(), &bytes)
                    .map_err(|e| read_error(path, name, &e))?;
                view.load(device)
            }
        }
    }
}

/// `entry`'s values of type `T` (its type on disk), read by `read` into a buffer that becomes
/// the tensor's storage on the CPU without a copy.
fn read_into<T: WithDType>(
    entry: &Entry,
    read: impl FnOnce(&mut [u8]) -> candle_core::Result<()>,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let count: usize = entry.shape.iter().product();
    if count * size_of::<T>() != entry.len {
        // safetensors checks this when it parses the header; kept so a bad file cannot panic.
        candle_core::bail!("{} bytes do not hold shape {:?}", entry.len, entry.shape);
    }
    let mut values = vec![T::zero(); count];
    // SAFETY: the bytes of `values`, which `T` (a plain number) can take in any pattern; the
    // file stores them little-endian, as this platform does (safetensors' byte order, which
    // candle's own loader assumes too).
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), entry.len) };
    read(bytes)?;
    Tensor::from_vec(values, entry.shape.as_slice(), device)
}

fn read_error(path: &Path, name: &str, error: &dyn std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{}: tensor {name}: {error}", path.display()))
}

/// Parse the header: an 8-byte little-endian length, then that many bytes of JSON. Returns
/// where the data starts and the metadata, after checking the file holds all the data.
fn read_header(file: &mut File) -> std::result::Result<(u64, Metadata), String> {
    const MAX_HEADER: u64 = 100 << 20;
    let not_safetensors = |detail: &str| format!("not a safetensors file ({detail})");
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|_| not_safetensors("shorter than its header"))?;
    let length = u64::from_le_bytes(length);
    if length > MAX_HEADER {
        return Err(not_safetensors("implausible header length"));
    }
    let mut header = vec![0u8; length as usize];
    file.read_exact(&mut header)
        .map_err(|_| not_safetensors("shorter than its header"))?;
    let metadata: Metadata =
        serde_json::from_slice(&header).map_err(|e| not_safetensors(&e.to_string()))?;
    let data_start = 8 + length;
    let expected = data_start + metadata.data_len() as u64;
    let actual = file
        .metadata()
        .map_err(|e| format!("cannot read its size: {e}"))?
        .len();
    if actual != expected {
        return Err(format!(
            "truncated or padded: {actual} bytes, its header describes {expected}"
        ));
    }
    Ok((data_start, metadata))
}

impl SimpleBackend for SafetensorsReader {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.load(name, device)?.to_dtype(dtype)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            });
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.load(name, device)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_type_reads_back_its_values_and_shape() {
        let device = Device::Cpu;
        let values = Tensor::new(&[[1.5f32, -2.0, 0.25], [3.0, 4.5, -0.5]], &device).unwrap();
        // Read straight into the tensor's buffer (f32, f16, bf16, f64) and through a byte
        // buffer (the integer types).
        let stored = [
            DType::F32,
            DType::F16,
            DType::BF16,
            DType::F64,
            DType::I64,
            DType::U8,
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let tensors: HashMap<String, Tensor> = stored
            .iter()
            .map(|&dtype| {
                let tensor = match dtype {
                    // Whole numbers the integer types hold exactly.
                    DType::I64 | DType::U8 => (values.abs().unwrap() * 2.0).unwrap(),
                    _ => values.clone(),
                };
                (format!("{dtype:?}"), tensor.to_dtype(dtype).unwrap())
            })
            .collect();
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let reader = SafetensorsReader::open(std::slice::from_ref(&path)).unwrap();
        for (name, want) in &tensors {
            let got = reader.load(name, &device).unwrap();
            assert_eq!(got.dtype(), want.dtype(), "{name}");
            assert_eq!(got.dims(), &[2, 3], "{name}");
            let as_f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
            assert_eq!(as_f64(&got), as_f64(want), "{name}");
        }
    }
}
