// Machine facts for the kernels: CPU feature detection, peak probes (fp32 FMA, bf16 dot product, streaming read)
// and allocator tuning.
#include "kernel_common.h"

int mr_cpu_features(void) {
    __builtin_cpu_init();
    int f = 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) f |= 1;
    if ((f & 1) && __builtin_cpu_supports("avx512bf16")) f |= 2;
    return f;
}

// MARK: - peak probes (register-only loops: 12 independent accumulators hide the instruction latency)

static TGT_BF16 __attribute__((noinline)) float bf16_dot_loop(long n) {
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (long k = 0; k < n; k++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));
    }
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

static TGT __attribute__((noinline)) float fma_loop(long n) {
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-7f);
    for (long k = 0; k < n; k++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
        __asm__ volatile("" : "+v"(a));
    }
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

volatile float mr_probe_sink;

/// FLOPs executed: 12 accumulators x 16 lanes x 4 (2 products + 2 adds per lane per dpbf16ps).
double mr_probe_bf16_dot_flops(long iterations) {
    if (!(mr_cpu_features() & 2)) return 0;
    mr_probe_sink = bf16_dot_loop(iterations);
    return (double)iterations * 12 * 16 * 4;
}

double mr_probe_fp32_fma_flops(long iterations) {
    if (!(mr_cpu_features() & 1)) return 0;
    mr_probe_sink = fma_loop(iterations);
    return (double)iterations * 12 * 16 * 2;
}

/// Streaming read of `bytes` (multiple of 256) with independent accumulators: the machine's read bandwidth as a
/// kernel-free loop sees it. Portable C when AVX-512 is absent.
static TGT __attribute__((noinline)) float stream_read_avx512(const char *p, size_t bytes) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= bytes; i += 256) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps((const float *)(p + i)));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps((const float *)(p + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps((const float *)(p + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps((const float *)(p + i + 192)));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float mr_stream_read(const void *p, size_t bytes) {
    if (mr_cpu_features() & 1) return stream_read_avx512((const char *)p, bytes);
    const uint64_t *q = (const uint64_t *)p;
    uint64_t s[8] = {0};
    for (size_t i = 0; i + 8 <= bytes / 8; i += 8)
        for (int k = 0; k < 8; k++) s[k] += q[i + k];
    return (float)(s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]);
}

/// glibc: large buffers stay on the heap (mmap threshold at its 32 MB maximum) and freed memory is kept, so the
/// per-step activation buffers reuse warm pages instead of faulting in fresh zeroed ones. Returns 0 off glibc.
#if defined(__GLIBC__)
#include <malloc.h>
int mr_tune_allocator(void) {
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) && mallopt(M_TRIM_THRESHOLD, 1 << 30) && mallopt(M_TOP_PAD, 64 << 20);
}
#else
int mr_tune_allocator(void) { return 0; }
#endif
