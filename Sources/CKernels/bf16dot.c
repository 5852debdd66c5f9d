// BF16 dot-product path (opt-in precision mode `bf16`: activations rounded to BF16, `vdpbf16ps` on BF16 weights).
// Per output one 16-lane accumulator over 64-column chunks ascending (two instructions per chunk), then the lane sum
// of kernel_common.h: the same sequence for any row/token blocking or thread split.
#include "kernel_common.h"

/// R rows x NT tokens with `vdpbf16ps` at `a` (see `rows_from`): per 64-column chunk two instructions (columns 0..31,
/// then 32..63), each adding the pair products (2j, 2j+1) into lane j. Weights need no decoding (BF16 pairs are the
/// native layout). Prefetch as in `block`.
INLINE TGT_BF16 void dblock(int R, int NT, rows_at a, ptrdiff_t chunks, ptrdiff_t r, const uint16_t *x,
                            ptrdiff_t stride, float *out, ptrdiff_t outStride, ptrdiff_t pf, const char *pfLimit) {
    __m512 acc[16][6];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++)
#pragma clang loop unroll(full)
        for (int t = 0; t < 6; t++) acc[i][t] = _mm512_setzero_ps();
    const int linear = NT == 1 && R >= 8, ordered = a.rs < a.cs;
    for (ptrdiff_t c = 0; c < chunks; c++) {
        prefetch_chunk(R, linear, a, pf, c, 2, pfLimit);
        if (NT == 1) {  // row by row, both lines of a row chunk loaded once (in address order when interleaved)
            __m512bh x0 = (__m512bh)_mm512_loadu_si512((const void *)(x + c * 64)), x1 = (__m512bh)_mm512_loadu_si512((const void *)(x + c * 64 + 32));
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) {
                const char *q = a.w0 + i * a.rs + c * a.cs;
                __m512i w0 = _mm512_loadu_si512((const void *)q);
                if (ordered) ORDERED(w0);
                __m512i w1 = _mm512_loadu_si512((const void *)(q + 64));
                if (ordered) ORDERED(w1);
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)w0, x0);
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)w1, x1);
            }
            continue;
        }
#pragma clang loop unroll(full)
        for (int h = 0; h < 2; h++) {
            __m512bh wv[16];
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) wv[i] = (__m512bh)_mm512_loadu_si512((const void *)(a.w0 + i * a.rs + c * a.cs + h * 64));
#pragma clang loop unroll(full)
            for (int t = 0; t < NT; t++) {
                __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(x + t * stride + c * 64 + h * 32));
#pragma clang loop unroll(full)
                for (int i = 0; i < R; i++) acc[i][t] = _mm512_dpbf16_ps(acc[i][t], wv[i], xv);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int t = 0; t < NT; t++)
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) out[t * outStride + r + i] = lane_sum(acc[i][t]);
}

typedef void (*dblock_fn)(rows_at, ptrdiff_t, ptrdiff_t, const uint16_t *, ptrdiff_t, float *, ptrdiff_t, ptrdiff_t,
                          const char *);
#define DEFINE_DBLOCK(NAME, R, NT)                                                                                  \
    static TGT_BF16 __attribute__((noinline)) void NAME(rows_at a, ptrdiff_t chunks, ptrdiff_t r, const uint16_t *x, \
                                                        ptrdiff_t stride, float *out, ptrdiff_t os, ptrdiff_t pf,     \
                                                        const char *pl) {                                             \
        dblock(R, NT, a, chunks, r, x, stride, out, os, pf, pl);                                                      \
    }
DEFINE_DBLOCK(d1x1, 1, 1) DEFINE_DBLOCK(d4x1, 4, 1) DEFINE_DBLOCK(d4x2, 4, 2) DEFINE_DBLOCK(d4x3, 4, 3)
DEFINE_DBLOCK(d4x4, 4, 4) DEFINE_DBLOCK(d4x5, 4, 5) DEFINE_DBLOCK(d4x6, 4, 6) DEFINE_DBLOCK(d8x1, 8, 1)
DEFINE_DBLOCK(d16x1, 16, 1)
static const dblock_fn dblocks[9] = {d1x1, d4x1, d4x2, d4x3, d4x4, d4x5, d4x6, d8x1, d16x1};

/// Two interleaved 8-row groups for one token, chunk by chunk (group `a` = rows ra.., then `b` = rows rb..): two
/// ascending runs in flight, as `bf16_two8x1` in linear.c. Per output the same two instructions per chunk as d8x1.
static TGT_BF16 __attribute__((noinline)) void d_two8x1(rows_at a, rows_at b, ptrdiff_t chunks, ptrdiff_t ra, ptrdiff_t rb,
                                                       const uint16_t *x, float *out) {
    __m512 acc[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (ptrdiff_t c = 0; c < chunks; c++) {
        __m512bh x0 = (__m512bh)_mm512_loadu_si512((const void *)(x + c * 64)), x1 = (__m512bh)_mm512_loadu_si512((const void *)(x + c * 64 + 32));
#pragma clang loop unroll(full)
        for (int i = 0; i < 16; i++) {
            const char *q = i < 8 ? a.w0 + i * a.rs + c * a.cs : b.w0 + (i - 8) * b.rs + c * b.cs;
            __m512i w0 = _mm512_loadu_si512((const void *)q);
            ORDERED(w0);
            __m512i w1 = _mm512_loadu_si512((const void *)(q + 64));
            ORDERED(w1);
            acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)w0, x0);
            acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)w1, x1);
        }
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {
        out[ra + i] = lane_sum(acc[i]);
        out[rb + i] = lane_sum(acc[8 + i]);
    }
}

void mr_linear_bf16dot(const uint16_t *w, ptrdiff_t cols, ptrdiff_t chunks, const uint16_t *xb, ptrdiff_t stride,
                       ptrdiff_t tokens, float *out, ptrdiff_t os, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t G,
                       ptrdiff_t packedEnd) {
    ptrdiff_t rowBytes = cols * 2, unit = G > 4 ? G : 4;
    ptrdiff_t pfRows = (PREFETCH_BYTES + rowBytes - 1) / rowBytes;
    pfRows = pfRows < 16 ? 16 : (pfRows + unit - 1) / unit * unit;
    // Same prefetch bound as `drive`: nothing past r1.
#define PF(r, R) ((r) + (R) + pfRows <= r1 ? pfRows * rowBytes : 0)
#define AT(r) rows_from(w, r, rowBytes, 128, G, packedEnd)
    const char *limit = (const char *)(w + r1 * cols);
    for (ptrdiff_t tb = 0; tb < tokens; tb += TOKEN_BLOCK) {
        ptrdiff_t te = tokens < tb + TOKEN_BLOCK ? tokens : tb + TOKEN_BLOCK;
        const uint16_t *xt = xb + tb * stride;
        float *ot = out + tb * os;
        ptrdiff_t r = r0;
        if (te - tb == 1 && G) {  // interleaved groups: as in `drive`
            for (; r % G && r + 4 <= r1; r += 4) dblocks[1](AT(r), chunks, r, xt, stride, ot, os, 0, limit);
            ptrdiff_t end = r1 < packedEnd ? r1 : packedEnd;
            if (G == 8) {  // the range's first and second halves of groups as two runs
                ptrdiff_t pairs = group_pairs(r, end), rb = r + pairs * 8;
                for (ptrdiff_t k = 0; k < pairs; k++) d_two8x1(AT(r + k * 8), AT(rb + k * 8), chunks, r + k * 8, rb + k * 8, xt, ot);
                r = rb + pairs * 8;
            }
            for (; r + G <= end; r += G) dblocks[G == 16 ? 8 : 7](AT(r), chunks, r, xt, stride, ot, os, 0, limit);
        }
        if (te - tb == 1 && r >= packedEnd) {
            ptrdiff_t R = rowBytes <= 1024 ? 16 : 8, lead = decode_prefetch_start(w, r, r1, R, rowBytes, limit);
            if (R == 16)
                for (; r + 16 <= r1; r += 16) dblocks[8](AT(r), chunks, r, xt, stride, ot, os, lead, limit);
            for (; r + 8 <= r1; r += 8) dblocks[7](AT(r), chunks, r, xt, stride, ot, os, decode_lead(8, rowBytes), limit);
        }
        for (; r + 4 <= r1; r += 4) {
            ptrdiff_t t = tb;
            for (; t + 6 <= te; t += 6) dblocks[6](AT(r), chunks, r, xb + t * stride, stride, out + t * os, os, PF(r, 4), limit);
            if (t < te) dblocks[te - t](AT(r), chunks, r, xb + t * stride, stride, out + t * os, os, PF(r, 4), limit);
        }
        for (; r < r1; r++)
            for (ptrdiff_t t = tb; t < te; t++) dblocks[0](AT(r), chunks, r, xb + t * stride, stride, out + t * os, os, 0, limit);
    }
#undef AT
#undef PF
}
