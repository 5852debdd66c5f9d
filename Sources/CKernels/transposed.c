// Transposed products for absorbed MLA attention: out = x · W over a BF16 / FP8 weight view `[k, n]` (q_nope · W_UK),
// one fused multiply-add per row ascending from +0 per output (the sequence of `Ops.axpy` over dequantized rows).
#include "kernel_common.h"

/// 16 BF16 weights as floats (exact).
INLINE TGT __m512 bf16x16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/// 16 FP8 e4m3 weights times their block scale: fl(e4m3 · scale), as `Ops.dequantizeRow` (0x7F / 0xFF: NaN).
/// Sign and 7 magnitude bits moved to the float's top give exactly e4m3 · 2^-120; · 2^120 is exact.
INLINE TGT __m512 fp8x16(const uint8_t *p, __m512 scale) {
    __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    __m512i mag = _mm512_and_si512(b, _mm512_set1_epi32(0x7F));
    __m512i bits = _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x80)), 24), _mm512_slli_epi32(mag, 20));
    __m512 v = _mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(0x1p120f));
    __mmask16 nan = _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7F));
    v = _mm512_mask_blend_ps(nan, v, _mm512_castsi512_ps(_mm512_set1_epi32(0x7FC00000)));
    return _mm512_mul_ps(v, scale);
}

/// Weight columns c..c+15 of row i (rows `ldw` elements apart), exact as `Ops.dequantizeRow` gives them (kind 0 BF16,
/// 1 FP8, 2 F32).
INLINE TGT __m512 trow16(int fp8, const void *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t ldw, ptrdiff_t i,
                         ptrdiff_t c) {
    if (fp8 == 2) return _mm512_loadu_ps((const float *)w + i * ldw + c);
    if (!fp8) return bf16x16((const uint16_t *)w + i * ldw + c);
    return fp8x16((const uint8_t *)w + i * ldw + c, _mm512_set1_ps(scales[(i / 128) * scaleCols + c / 128]));
}

/// out[t, c] = Σ_i x[t, i] · W[i, c]: per output one fused multiply-add per row i ascending, from +0 (the sequence
/// of `Ops.axpy` over dequantized rows). 256 columns stay in registers while i walks the rows, so each row is read
/// as one contiguous run (the weights come from DRAM once per decode step; 64-column tiles read them with a
/// 4-way stride and were slower than the dequantize-and-axpy loop).
/// `ldw`: elements per weight row (>= n; the first n columns are computed).
static TGT void transposed(int fp8, const void *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t k, ptrdiff_t n,
                           ptrdiff_t ldw, const float *x, ptrdiff_t tokens, float *out) {
    const ptrdiff_t esize = fp8 == 2 ? 4 : fp8 ? 1 : 2;
    for (ptrdiff_t t = 0; t < tokens; t++) {
        const float *xt = x + t * k;
        float *ot = out + t * n;
        ptrdiff_t c = 0;
        for (; c + 256 <= n; c += 256) {
            __m512 a[16];
#pragma clang loop unroll(full)
            for (int v = 0; v < 16; v++) a[v] = _mm512_setzero_ps();
            for (ptrdiff_t i = 0; i < k; i++) {
                if (i + 8 < k) prefetch_range((const char *)w + ((i + 8) * ldw + c) * esize, (const char *)w + ((i + 8) * ldw + c + 256) * esize);
                __m512 xi = _mm512_set1_ps(xt[i]);
#pragma clang loop unroll(full)
                for (int v = 0; v < 16; v++) a[v] = _mm512_fmadd_ps(xi, trow16(fp8, w, scales, scaleCols, ldw, i, c + 16 * v), a[v]);
            }
#pragma clang loop unroll(full)
            for (int v = 0; v < 16; v++) _mm512_storeu_ps(ot + c + 16 * v, a[v]);
        }
        // Widths that are not a multiple of 256 (not MLA's kv_lora_rank of 512): the rest 16 columns at a time.
        for (; c + 16 <= n; c += 16) {
            __m512 a = _mm512_setzero_ps();
            for (ptrdiff_t i = 0; i < k; i++) a = _mm512_fmadd_ps(_mm512_set1_ps(xt[i]), trow16(fp8, w, scales, scaleCols, ldw, i, c), a);
            _mm512_storeu_ps(ot + c, a);
        }
    }
}

void mr_linear_transposed_bf16(const uint16_t *w, ptrdiff_t k, ptrdiff_t n, const float *x, ptrdiff_t tokens, float *out) {
    transposed(0, w, 0, 0, k, n, n, x, tokens, out);
}

void mr_linear_transposed_fp8(const uint8_t *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t k, ptrdiff_t n,
                              const float *x, ptrdiff_t tokens, float *out) {
    transposed(1, w, scales, scaleCols, k, n, n, x, tokens, out);
}

/// F32 `[k, ldw]`, its first n columns (absorbed attention's o_lat = P · c_kv over the latent cache, without the rope
/// columns): the sequence of `transposedRowF32`.
void mr_linear_transposed_f32(const float *w, ptrdiff_t k, ptrdiff_t n, ptrdiff_t ldw, const float *x, ptrdiff_t tokens,
                              float *out) {
    transposed(2, w, 0, 0, k, n, ldw, x, tokens, out);
}
