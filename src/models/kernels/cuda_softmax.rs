//! Attention weights on CUDA: `softmax(scores + biases)` in one kernel (`cuda_softmax.cu`,
//! compiled to PTX by `build.rs` with the `cuda` feature).
//!
//! candle's kernels took four passes (broadcast add, cast to float32, softmax, cast back), and
//! its broadcast add computes every element's index from the shape with divisions: on an
//! H200 those four took 5.8 ms of each of DistilBART's twelve encoder layers at batch 8 (its
//! projections 0.5 ms), the encoder 88 ms where transformers takes 6.

use std::sync::Once;

use candle_core::backend::BackendStorage;
use candle_core::cuda::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda::{CudaDType, WrapErr};
use candle_core::{
    CpuStorage, CudaDevice, CudaStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor,
};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/cuda_softmax.ptx"));

/// The name candle caches the loaded PTX under.
const MODULE: &str = "precis_softmax_biased";

/// Biases one kernel call takes; with more, attention uses candle's kernels.
const MAX_BIASES: usize = 2;

/// Rows per block of threads: one warp each.
const ROWS_PER_BLOCK: u32 = 4;

/// `softmax(scores + Σ biases)` over the last dimension, in float32, returned in the scores'
/// dtype; `scores` is `(batch, heads, queries, keys)` and each bias broadcastable to it, in the
/// scores' dtype. `None` when this kernel does not apply (not on CUDA, another shape or dtype).
pub fn softmax_with_biases(scores: &Tensor, biases: &[&Tensor]) -> Result<Option<Tensor>> {
    let applies = scores.device().is_cuda()
        && scores.rank() == 4
        && biases.len() <= MAX_BIASES
        && biases.iter().all(|b| b.dtype() == scores.dtype());
    let Some(kernel) = kernel_name(scores.dtype()).filter(|_| applies) else {
        return Ok(None);
    };
    if !loads(scores.device().as_cuda_device()?, kernel) {
        return Ok(None);
    }
    let biases = biases
        .iter()
        .map(|b| b.broadcast_as(scores.shape()))
        .collect::<Result<Vec<_>>>()?;
    scores
        .contiguous()?
        .apply_op1_no_bwd(&SoftmaxBiased { biases })
        .map(Some)
}

/// The kernel for scores of `dtype`, if there is one.
fn kernel_name(dtype: DType) -> Option<&'static str> {
    match dtype {
        DType::F32 => Some("softmax_biased_f32"),
        DType::BF16 => Some("softmax_biased_bf16"),
        DType::F16 => Some("softmax_biased_f16"),
        _ => None,
    }
}

/// Whether `kernel` loads on `device`: the PTX is built for one compute capability
/// (`build.rs`) and a GPU older than it cannot run it, where candle's kernels (built the same
/// way, but maybe for another) still may. Said once in the log when it does not.
fn loads(device: &CudaDevice, kernel: &str) -> bool {
    static WARNED: Once = Once::new();
    match device.get_or_load_custom_func(kernel, MODULE, PTX) {
        Ok(_) => true,
        Err(e) => {
            WARNED.call_once(|| {
                tracing::warn!("attention: the fused softmax kernel does not load ({e}); using candle's kernels");
            });
            false
        }
    }
}

/// A bias as the kernel reads it: (batch, head, query, key) strides in elements, zero where
/// it broadcasts; `present` 0 for an absent one. Laid out like the kernel's `struct Bias`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct BiasArg {
    strides: [i64; 4],
    present: i32,
}

// SAFETY: plain old data with the C layout the kernel declares.
unsafe impl DeviceRepr for BiasArg {}

struct SoftmaxBiased {
    /// Each broadcast to the scores' shape (a view: strides zero where it broadcasts).
    biases: Vec<Tensor>,
}

impl CustomOp1 for SoftmaxBiased {
    fn name(&self) -> &'static str {
        "softmax-biased"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("softmax-biased is a CUDA kernel")
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> Result<(CudaStorage, Shape)> {
        let Some(kernel) = kernel_name(storage.dtype()) else {
            candle_core::bail!("softmax-biased: no kernel for {:?}", storage.dtype());
        };
        let out = match storage.dtype() {
            DType::F32 => self.launch::<f32>(kernel, storage, layout)?,
            DType::BF16 => self.launch::<half::bf16>(kernel, storage, layout)?,
            _ => self.launch::<half::f16>(kernel, storage, layout)?,
        };
        Ok((out, layout.shape().clone()))
    }
}

impl SoftmaxBiased {
    fn launch<T: CudaDType + DeviceRepr>(
        &self,
        kernel: &str,
        storage: &CudaStorage,
        layout: &Layout,
    ) -> Result<CudaStorage> {
        let (batch, heads, queries, keys) = layout.shape().dims4()?;
        let rows = batch * heads * queries;
        let device = storage.device();
        let scores = storage.as_cuda_slice::<T>()?.slice(layout.start_offset()..);
        let guards: Vec<_> = self.biases.iter().map(Tensor::storage_and_layout).collect();
        let mut views = Vec::with_capacity(MAX_BIASES);
        let mut args = [BiasArg::default(); MAX_BIASES];
        for ((storage, layout), arg) in guards.iter().zip(&mut args) {
            let Storage::Cuda(storage) = &**storage else {
                candle_core::bail!("softmax-biased: a bias is not on the GPU");
            };
            views.push(storage.as_cuda_slice::<T>()?.slice(layout.start_offset()..));
            for (to, &stride) in arg.strides.iter_mut().zip(layout.stride()) {
                *to = stride as i64;
            }
            arg.present = 1;
        }
        let func = device.get_or_load_custom_func(kernel, MODULE, PTX)?;
        // SAFETY: the kernel writes every one of the `rows x keys` values.
        let out = unsafe { device.alloc::<T>(rows * keys)? };
        // The kernel's int64_t sizes.
        let [rows_arg, keys_arg, heads_arg, queries_arg] =
            [rows, keys, heads, queries].map(|n| n as i64);
        let mut builder = func.builder();
        builder.arg(&scores);
        // An absent bias is never read: any pointer of the type will do.
        builder.arg(views.first().unwrap_or(&scores));
        builder.arg(views.get(1).unwrap_or(&scores));
        builder.arg(&out);
        builder.arg(&rows_arg);
        builder.arg(&keys_arg);
        builder.arg(&heads_arg);
        builder.arg(&queries_arg);
        builder.arg(&args[0]);
        builder.arg(&args[1]);
        let config = LaunchConfig {
            grid_dim: ((rows as u32).div_ceil(ROWS_PER_BLOCK), 1, 1),
            block_dim: (32 * ROWS_PER_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match the kernel's signature; every read is inside the scores
        // (`rows x keys`, contiguous) or a bias viewed at the scores' shape through its strides.
        unsafe { builder.launch(config) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
    }
}
