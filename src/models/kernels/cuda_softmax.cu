// Attention weights on CUDA in one pass over the scores: softmax(scores + biases) over the
// last dimension, taken in float32 and written in the scores' type. Through candle's
// kernels this was four: a broadcast add (whose per-element index arithmetic made it the
// slowest kernel of the encoder), a cast to float32, the softmax and a cast back.
//
// One warp per row of `cols` scores. Row `r` is (batch, head, query) = (r / (heads *
// queries), r / queries % heads, r % queries); each bias is read through its own strides
// (zero where it broadcasts), so a (batch, 1, 1, keys) padding mask and a (1, heads,
// queries, keys) position bias are read where they lie, never expanded.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float widen(__half x) { return __half2float(x); }

__device__ __forceinline__ void narrow(float x, float *out) { *out = x; }
__device__ __forceinline__ void narrow(float x, __nv_bfloat16 *out) { *out = __float2bfloat16_rn(x); }
__device__ __forceinline__ void narrow(float x, __half *out) { *out = __float2half_rn(x); }

// A bias's (batch, head, query, key) strides in elements; `present` 0 for none.
struct Bias {
    int64_t strides[4];
    int32_t present;
};

template <typename T>
__device__ __forceinline__ float biased(const T *scores, const T *b0, const T *b1, Bias s0,
                                        Bias s1, int64_t col) {
    float v = widen(scores[col]);
    if (s0.present) v += widen(b0[col * s0.strides[3]]);
    if (s1.present) v += widen(b1[col * s1.strides[3]]);
    return v;
}

template <typename T>
__device__ void softmax_biased(const T *scores, const T *bias0, const T *bias1, T *out,
                               int64_t rows, int64_t cols, int64_t heads, int64_t queries,
                               Bias s0, Bias s1) {
    const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const int64_t q = row % queries, h = row / queries % heads, b = row / (queries * heads);
    const T *x = scores + row * cols;
    const T *b0 = bias0 + b * s0.strides[0] + h * s0.strides[1] + q * s0.strides[2];
    const T *b1 = bias1 + b * s1.strides[0] + h * s1.strides[1] + q * s1.strides[2];
    float peak = -INFINITY;
    for (int64_t c = lane; c < cols; c += 32) peak = fmaxf(peak, biased(x, b0, b1, s0, s1, c));
    for (int m = 16; m > 0; m >>= 1) peak = fmaxf(peak, __shfl_xor_sync(0xffffffff, peak, m));
    float sum = 0.f;
    for (int64_t c = lane; c < cols; c += 32) sum += expf(biased(x, b0, b1, s0, s1, c) - peak);
    for (int m = 16; m > 0; m >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, m);
    T *y = out + row * cols;
    for (int64_t c = lane; c < cols; c += 32)
        narrow(expf(biased(x, b0, b1, s0, s1, c) - peak) / sum, &y[c]);
}

#define SOFTMAX_BIASED(T, NAME)                                                              \
    extern "C" __global__ void NAME(const T *scores, const T *bias0, const T *bias1, T *out, \
                                    int64_t rows, int64_t cols, int64_t heads,             \
                                    int64_t queries, Bias s0, Bias s1) {                   \
        softmax_biased<T>(scores, bias0, bias1, out, rows, cols, heads, queries, s0, s1);  \
    }

SOFTMAX_BIASED(float, softmax_biased_f32)
SOFTMAX_BIASED(__nv_bfloat16, softmax_biased_bf16)
SOFTMAX_BIASED(__half, softmax_biased_f16)
