//! With the `cuda` feature, compiles the CUDA kernels under `src/models/kernels/*.cu` to PTX
//! (which the driver compiles for the GPU at run time) through cudaforge, as candle's own
//! kernels are: nvcc from the CUDA toolkit, for the compute capability in `CUDA_COMPUTE_CAP`
//! or the one nvidia-smi reports. Without the feature, nothing.

fn main() {
    #[cfg(feature = "cuda")]
    cuda::compile_kernels();
}

#[cfg(feature = "cuda")]
mod cuda {
    const KERNELS: &[&str] = &["src/models/kernels/cuda_softmax.cu"];

    pub fn compile_kernels() {
        for kernel in KERNELS {
            println!("cargo::rerun-if-changed={kernel}");
        }
        cudaforge::KernelBuilder::new()
            .source_files(KERNELS.iter().copied())
            .arg("-O3")
            .build_ptx()
            .unwrap_or_else(|e| panic!("the cuda feature compiles {KERNELS:?} with nvcc: {e}"));
    }
}
