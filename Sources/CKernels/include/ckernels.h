// CKernels: AVX-512 hot loops behind a plain C API, used by Kernels/Linear.swift when the CPU supports them.
// Every function reproduces the Swift kernel's per-(t, o) summation order exactly (same bits), see Linear.swift.
#ifndef MOERUN_CKERNELS_H
#define MOERUN_CKERNELS_H
#include <stdint.h>
#include <stddef.h>

/// Bit 0: AVX-512 F+BW usable (CPU and OS); bit 1: AVX-512 BF16 dot product as well.
int mr_cpu_features(void);

/// Rows per interleaved group (`Weight.interleaved`): the rows one decode block reads (BF16 decode reads two groups).
int mr_interleave_group(void);

/// Copies a row-major `[rows, rowBytes]` matrix into interleaved groups of G rows (chunks of `chunkBytes`; the last
/// rows % G rows stay row-major). See `Weight.interleaved`.
void mr_interleave(void *dst, const void *src, ptrdiff_t rows, ptrdiff_t rowBytes, ptrdiff_t chunkBytes, ptrdiff_t G);

/// out[t * outStride + r] = Σ_i x[t, i] · W[r, i] for r in [r0, r1), t in [0, tokens), BF16 weights `[rows, cols]`,
/// cols = chunks · 64; x packed in the BF16 pair layout (`stride` floats per token). Rows [0, packedEnd) are stored
/// in interleaved groups of `group` rows (0: none): chunk c (64 columns) of row g·group + j at element
/// (g·group·cols + (c·group + j)·64); the rest row-major.
void mr_linear_bf16(const uint16_t *w, ptrdiff_t cols, ptrdiff_t chunks, const float *xp, ptrdiff_t stride,
                    ptrdiff_t tokens, float *out, ptrdiff_t outStride, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t group,
                    ptrdiff_t packedEnd);

/// The same for F32 weights (activation matrices such as attention keys; x in natural order), row-major; `chunks`
/// whole chunks and, when cols is not a multiple of 64, a partial last one read with masked loads (x zero-padded to
/// `stride` >= the chunk's end): the sequence of Linear.swift's zero-padded tail.
void mr_linear_f32(const float *w, ptrdiff_t cols, ptrdiff_t chunks, const float *xp, ptrdiff_t stride,
                   ptrdiff_t tokens, float *out, ptrdiff_t outStride, ptrdiff_t r0, ptrdiff_t r1);

/// The same for FP8 e4m3 codes (interleaved groups as for BF16, chunks of 64 bytes) with 128x128 block scales `[ceil(rows/128), scaleCols]` (each < 2^64); x in the
/// byte-phase layout and multiplied by 2^64 (the kernel folds 2^56 into each scale; see FP8Decoder in Linear.swift).
void mr_linear_fp8(const uint8_t *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t cols, ptrdiff_t chunks,
                   const float *xp, ptrdiff_t stride, ptrdiff_t tokens, float *out, ptrdiff_t outStride,
                   ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t group, ptrdiff_t packedEnd);

/// BF16 x BF16 products with `vdpbf16ps` (requires AVX-512 BF16): x already rounded to BF16 in natural column
/// order (`stride` elements per token). Per output: one 16-lane accumulator, per 64-column chunk two dot-product
/// instructions (columns 0..31 then 32..63), then the sequential lane sum. Independent of tokens / rows / threads.
void mr_linear_bf16dot(const uint16_t *w, ptrdiff_t cols, ptrdiff_t chunks, const uint16_t *xb, ptrdiff_t stride,
                       ptrdiff_t tokens, float *out, ptrdiff_t outStride, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t group,
                       ptrdiff_t packedEnd);

/// out[t * n + c] = Σ_i x[t * k + i] · W[i, c] for c in [0, n), t in [0, tokens); n a multiple of 16. Per output
/// one fused multiply-add per row i ascending from +0, on the weights as `Ops.dequantizeRow` gives them (BF16 exact;
/// FP8: fl(e4m3 · scale), scales `[ceil(k/128), scaleCols]`): the bits of the row-by-row axpy path.
void mr_linear_transposed_bf16(const uint16_t *w, ptrdiff_t k, ptrdiff_t n, const float *x, ptrdiff_t tokens, float *out);
/// F32: the first n columns of rows `ldw` elements apart.
void mr_linear_transposed_f32(const float *w, ptrdiff_t k, ptrdiff_t n, ptrdiff_t ldw, const float *x, ptrdiff_t tokens,
                              float *out);
void mr_linear_transposed_fp8(const uint8_t *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t k, ptrdiff_t n,
                              const float *x, ptrdiff_t tokens, float *out);

/// out[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u with the polynomial exp of `FastExp` (Kernels/Ops.swift),
/// bit-identical to its Swift twin. Requires AVX-512.
void mr_silu_mul(const float *g, const float *u, float *out, ptrdiff_t n);

/// Peak-rate probes for the bench: run a register-only loop of bf16 dot products (fp32 FMAs) and return the
/// FLOPs executed (the caller times the call); 0 when the instruction set is missing.
double mr_probe_bf16_dot_flops(long iterations);
double mr_probe_fp32_fma_flops(long iterations);

/// Streams `bytes` from `p` (read bandwidth probe); the result only keeps the reads alive.
float mr_stream_read(const void *p, size_t bytes);

int mr_tune_allocator(void);

#endif
