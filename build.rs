//! With the `cuda` feature, compiles the CUDA kernels under `src/models/kernels/*.cu` to PTX
//! (loaded by the driver at run time) with nvcc, as candle's own kernels are: for compute
//! capability `CUDA_COMPUTE_CAP` (default 80, Ampere; PTX also runs on every later GPU).
//! Without it, nothing.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: &[&str] = &["cuda_softmax"];

fn main() {
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo::rerun-if-env-changed=NVCC");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".to_string());
    let cap: String = cap.chars().filter(char::is_ascii_digit).collect();
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".to_string());
    for kernel in KERNELS {
        let source = format!("src/models/kernels/{kernel}.cu");
        println!("cargo::rerun-if-changed={source}");
        let ptx = out.join(format!("{kernel}.ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "-o"])
            .arg(&ptx)
            .arg(&source)
            .status()
            .unwrap_or_else(|e| panic!("the cuda feature needs nvcc ({nvcc}: {e})"));
        assert!(status.success(), "nvcc failed on {source}");
    }
}
