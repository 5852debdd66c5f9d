// AVX-512 linear kernels: BF16 / FP8-block / F32 weights dequantized in registers, FP32 accumulation.
// Summation order per output (t, o), identical to Kernels/Linear.swift: one 16-lane accumulator walks 64-column
// chunks ascending; per chunk four fused multiply-adds in phase order 0..3 (FP8: the four phase products summed, then
// one fused multiply-add by the chunk's folded scale); then lanes 0..15 are added in order
// starting from -0 (Swift's SIMD `sum()`). Blocking over rows/tokens and threads never changes that sequence.
#include "kernel_common.h"
#include <string.h>

/// BF16 phase p of a 64-column chunk at `c`: pairs of BF16 as 32-bit words; `<< 16` = even column, mask = odd.
INLINE TGT __m512 bf16_phase(const uint16_t *c, int p) {
    __m512i w = _mm512_loadu_si512((const void *)(c + (p >> 1) * 32));
    __m512i v = (p & 1) ? _mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000u)) : _mm512_slli_epi32(w, 16);
    return _mm512_castsi512_ps(v);
}

/// The four FP8 phases of one 64-byte load: phase p holds byte p of each 32-bit word, moved to bits 20..27 with its
/// sign copied up to bit 31, masked to sign + 7 magnitude bits: exactly the e4m3 value times 2^-120 (see FP8Decoder in
/// Linear.swift). 16-bit arithmetic shifts place two bytes per word at once (bytes 1 and 3 from the word, 0 and 2 after
/// moving each half's low byte up): 5 shifts and 4 masks per load instead of 7 and 4 (vector shifts bound this kernel).
INLINE TGT void fp8_phases(__m512i w, __m512 m[4]) {
    const __m512i mask = _mm512_set1_epi32((int)0x87F00000u);
    __m512i hi = _mm512_srai_epi16(w, 4), lo = _mm512_srai_epi16(_mm512_slli_epi16(w, 8), 4);
    m[0] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(lo, 16), mask));
    m[1] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(hi, 16), mask));
    m[2] = _mm512_castsi512_ps(_mm512_and_si512(lo, mask));
    m[3] = _mm512_castsi512_ps(_mm512_and_si512(hi, mask));
}

/// FP8 chunk `c` for R rows x NT tokens (row i's chunk at w0 + i * rs + c * cs): per (row, token) the four phase
/// products summed (multiply, then three fused multiply-adds), then one fused multiply-add of that sum by the folded
/// scale `sc[i]` into the accumulator (`oneScale`: every row's is `sc[0]`, one broadcast for all). Row by row, so only
/// the accumulators stay live; no per-element scale multiply. The kernel is bound by vector ops, not memory; one Zen 4
/// core, 2048-column rows, one token (C harness, from DRAM / from L2): 13.6-16.0 / 17.3-18.1 GB/s with one phase
/// at a time and 16-row blocks, 16.3-20.3 / 20.9-21.4 with `fp8_phases` and 8-row blocks, 20.7-22.6 / 25.2-25.6 with
/// one broadcast scale per block.
INLINE TGT void chunk_fp8(int R, int NT, int ordered, int oneScale, const char *w0, ptrdiff_t rs, ptrdiff_t cs,
                          ptrdiff_t c, const float *sc, const float *x, ptrdiff_t stride, __m512 acc[16][6]) {
    const __m512 s0 = _mm512_set1_ps(sc[0]);
#define SCALE(i) (oneScale ? s0 : _mm512_set1_ps(sc[i]))
    if (NT == 1) {
        const float *xc = x + c * 64;
        __m512 x0 = _mm512_loadu_ps(xc), x1 = _mm512_loadu_ps(xc + 16), x2 = _mm512_loadu_ps(xc + 32), x3 = _mm512_loadu_ps(xc + 48);
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            __m512i w = _mm512_loadu_si512((const void *)(w0 + i * rs + c * cs));
            if (ordered) ORDERED(w);
            __m512 m[4];
            fp8_phases(w, m);
            __m512 part = _mm512_mul_ps(m[0], x0);
            part = _mm512_fmadd_ps(m[1], x1, part);
            part = _mm512_fmadd_ps(m[2], x2, part);
            part = _mm512_fmadd_ps(m[3], x3, part);
            acc[i][0] = _mm512_fmadd_ps(part, SCALE(i), acc[i][0]);
        }
        return;
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < R; i++) {
        __m512i w = _mm512_loadu_si512((const void *)(w0 + i * rs + c * cs));
        __m512 m[4];
        fp8_phases(w, m);
        __m512 m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
#pragma clang loop unroll(full)
        for (int t = 0; t < NT; t++) {
            const float *xt = x + t * stride + c * 64;
            __m512 part = _mm512_mul_ps(m0, _mm512_loadu_ps(xt));
            part = _mm512_fmadd_ps(m1, _mm512_loadu_ps(xt + 16), part);
            part = _mm512_fmadd_ps(m2, _mm512_loadu_ps(xt + 32), part);
            part = _mm512_fmadd_ps(m3, _mm512_loadu_ps(xt + 48), part);
            acc[i][t] = _mm512_fmadd_ps(part, SCALE(i), acc[i][t]);
        }
    }
#undef SCALE
}

/// One BF16 row chunk at `q` for one token: its two lines loaded in address order, decoded from registers, four fused
/// multiply-adds in phase order 0..3 into `acc`.
INLINE TGT void ordered_row(const char *q, __m512 x0, __m512 x1, __m512 x2, __m512 x3, __m512 *acc) {
    const __m512i odd = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512i a = _mm512_loadu_si512((const void *)q);
    ORDERED(a);
    __m512i b = _mm512_loadu_si512((const void *)(q + 64));
    ORDERED(b);
    *acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), x0, *acc);
    *acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(a, odd)), x1, *acc);
    *acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(b, 16)), x2, *acc);
    *acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(b, odd)), x3, *acc);
}

/// The four phases of chunk `c` for R rows x NT tokens of BF16 (fp32 = 0) or F32 (fp32 = 1) weights
/// (the fixed per-accumulator order: phases 0..3). `ordered` (one BF16 token): each row chunk's two lines are loaded
/// once, in ascending address order, and decoded from registers.
INLINE TGT void chunk_phases(int R, int NT, int fp32, int ordered, const char *w0, ptrdiff_t rs, ptrdiff_t cs,
                             ptrdiff_t c, const float *x, ptrdiff_t stride, __m512 acc[16][6]) {
    if (ordered && NT == 1 && !fp32) {
        const float *xc = x + c * 64;
        __m512 x0 = _mm512_loadu_ps(xc), x1 = _mm512_loadu_ps(xc + 16), x2 = _mm512_loadu_ps(xc + 32), x3 = _mm512_loadu_ps(xc + 48);
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) ordered_row(w0 + i * rs + c * cs, x0, x1, x2, x3, &acc[i][0]);
        return;
    }
#pragma clang loop unroll(full)
    for (int p = 0; p < 4; p++) {
        __m512 wv[16];
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            const char *rowc = w0 + i * rs + c * cs;
            wv[i] = fp32 ? _mm512_loadu_ps((const float *)rowc + p * 16) : bf16_phase((const uint16_t *)rowc, p);
        }
#pragma clang loop unroll(full)
        for (int t = 0; t < NT; t++) {
            __m512 xv = _mm512_loadu_ps(x + t * stride + c * 64 + p * 16);
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
        }
    }
}

/// The partial last chunk `c` of F32 rows (`tail` < 64 valid columns): lanes past the row's end load as zeros, the
/// activations are zero-padded, and the four phases run as for a whole chunk (Linear.swift's zero-padded tail copy).
INLINE TGT void chunk_tail_f32(int R, int NT, const char *w0, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t c, int tail,
                               const float *x, ptrdiff_t stride, __m512 acc[16][6]) {
#pragma clang loop unroll(full)
    for (int p = 0; p < 4; p++) {
        int valid = tail - 16 * p;
        __mmask16 m = valid >= 16 ? 0xFFFF : valid <= 0 ? 0 : (__mmask16)((1u << valid) - 1);
        __m512 wv[16];
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) wv[i] = _mm512_maskz_loadu_ps(m, (const float *)(w0 + i * rs + c * cs) + p * 16);
#pragma clang loop unroll(full)
        for (int t = 0; t < NT; t++) {
            __m512 xv = _mm512_loadu_ps(x + t * stride + c * 64 + p * 16);
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
        }
    }
}

/// R rows x NT tokens at `a` (logical rows r..r+R-1: output index and FP8 scale row). `fp8` selects the decoder
/// (0 BF16, 1 FP8 blocks, 2 F32). While it works it may prefetch into L2 (`prefetcht1`): streaming row-major weights
/// from DRAM with several rows in flight needs more memory-level parallelism than the hardware prefetcher gives
/// (measured: ~15 -> ~22 GB/s on one Zen 4 core; into L1 it did not help). `pf` > 0: row-major decode blocks (one
/// token, R >= 8) prefetch linearly, per chunk as many lines as the chunk reads, `pf` bytes past the block's start
/// plus what the block has read so far; 4-row blocks prefetch the same chunk of the rows `pf` bytes ahead. Nothing at
/// or past `pfLimit`. Interleaved decode blocks (`ordered`) read one ascending run and prefetch nothing.
INLINE TGT void block(int R, int NT, int fp8, rows_at a, const float *scales, ptrdiff_t scaleCols, ptrdiff_t chunks,
                      ptrdiff_t tail, ptrdiff_t r, const float *x, ptrdiff_t stride, float *out, ptrdiff_t outStride, ptrdiff_t pf,
                      const char *pfLimit) {
    __m512 acc[16][6];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++)
#pragma clang loop unroll(full)
        for (int t = 0; t < 6; t++) acc[i][t] = _mm512_setzero_ps();
    const ptrdiff_t esize = fp8 == 1 ? 1 : fp8 == 2 ? 4 : 2;
    const int linear = NT == 1 && R >= 8, ordered = a.rs < a.cs;
    // FP8: each row's line of block scales, found once (row / 128 is fixed for the whole row).
    const float *srow[16];
    if (fp8 == 1) {
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) srow[i] = scales + ((r + i) / 128) * scaleCols;
    }
    // Rows of one 128-row scale block (all but blocks straddling a block edge) share one broadcast scale per chunk.
    const int oneScale = fp8 == 1 && r / 128 == (r + R - 1) / 128;
    for (ptrdiff_t c = 0; c < chunks; c++) {
        prefetch_chunk(R, linear, a, pf, c, (int)esize, pfLimit);  // a row chunk: 64 columns of esize bytes
        if (fp8 == 1) {
            float sc[16];
            if (oneScale) {
                sc[0] = srow[0][c >> 1] * 0x1p56f;  // chunk c lies in scale column c*64/128
                chunk_fp8(R, NT, ordered && linear, 1, a.w0, a.rs, a.cs, c, sc, x, stride, acc);
                continue;
            }
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) sc[i] = srow[i][c >> 1] * 0x1p56f;
            chunk_fp8(R, NT, ordered && linear, 0, a.w0, a.rs, a.cs, c, sc, x, stride, acc);
        } else {
            chunk_phases(R, NT, fp8 == 2, ordered && linear, a.w0, a.rs, a.cs, c, x, stride, acc);
        }
    }
    if (fp8 == 2 && tail) chunk_tail_f32(R, NT, a.w0, a.rs, a.cs, chunks, (int)tail, x, stride, acc);
#pragma clang loop unroll(full)
    for (int t = 0; t < NT; t++)
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) out[t * outStride + r + i] = lane_sum(acc[i][t]);
}

#define DEFINE_BLOCK(NAME, R, NT, FP8)                                                                              \
    static TGT __attribute__((noinline)) void NAME(rows_at a, const float *s, ptrdiff_t sc, ptrdiff_t chunks,        \
                                                   ptrdiff_t tail, ptrdiff_t r, const float *x, ptrdiff_t stride, float *out,        \
                                                   ptrdiff_t os, ptrdiff_t pf, const char *pl) {                     \
        block(R, NT, FP8, a, s, sc, chunks, tail, r, x, stride, out, os, pf, pl);                                          \
    }
typedef void (*block_fn)(rows_at, const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *,
                         ptrdiff_t, ptrdiff_t, const char *);
#define DEFINE_ALL(FP8, P)                                                                                           \
    DEFINE_BLOCK(P##_4x1, 4, 1, FP8) DEFINE_BLOCK(P##_4x2, 4, 2, FP8) DEFINE_BLOCK(P##_4x3, 4, 3, FP8)              \
    DEFINE_BLOCK(P##_4x4, 4, 4, FP8) DEFINE_BLOCK(P##_4x5, 4, 5, FP8) DEFINE_BLOCK(P##_4x6, 4, 6, FP8)              \
    DEFINE_BLOCK(P##_1x1, 1, 1, FP8) DEFINE_BLOCK(P##_8x1, 8, 1, FP8) DEFINE_BLOCK(P##_16x1, 16, 1, FP8)            \
    static const block_fn P##_blocks[9] = {P##_1x1, P##_4x1, P##_4x2, P##_4x3, P##_4x4, P##_4x5, P##_4x6, P##_8x1, P##_16x1};
DEFINE_ALL(0, bf16)
DEFINE_ALL(1, fp8)
DEFINE_ALL(2, f32)

/// Two interleaved 8-row BF16 groups for one token, chunk by chunk: the group at `a` (rows ra..ra+7), then the one at
/// `b` (rows rb..rb+7). Two ascending runs in flight instead of one: one Zen 4 core streamed one decode step's
/// matrices (C replay, 1 thread) at 0.88-0.93 of the read probe with one run, 0.99-1.03 with two. Per output the
/// same sequence as the 8x1 block, so the same bits.
static TGT __attribute__((noinline)) void bf16_two8x1(rows_at a, rows_at b, ptrdiff_t chunks, ptrdiff_t ra, ptrdiff_t rb,
                                                     const float *x, float *out) {
    __m512 acc[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (ptrdiff_t c = 0; c < chunks; c++) {
        const float *xc = x + c * 64;
        __m512 x0 = _mm512_loadu_ps(xc), x1 = _mm512_loadu_ps(xc + 16), x2 = _mm512_loadu_ps(xc + 32), x3 = _mm512_loadu_ps(xc + 48);
#pragma clang loop unroll(full)
        for (int i = 0; i < 8; i++) ordered_row(a.w0 + i * a.rs + c * a.cs, x0, x1, x2, x3, &acc[i]);
#pragma clang loop unroll(full)
        for (int i = 0; i < 8; i++) ordered_row(b.w0 + i * b.rs + c * b.cs, x0, x1, x2, x3, &acc[8 + i]);
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {
        out[ra + i] = lane_sum(acc[i]);
        out[rb + i] = lane_sum(acc[8 + i]);
    }
}

int mr_interleave_group(void) { return 8; }

void mr_interleave(void *dst, const void *src, ptrdiff_t rows, ptrdiff_t rowBytes, ptrdiff_t chunkBytes, ptrdiff_t G) {
    ptrdiff_t packed = rows / G * G, chunks = rowBytes / chunkBytes;
    char *d = (char *)dst;
    for (ptrdiff_t r0 = 0; r0 < packed; r0 += G) {
        const char *g = (const char *)src + r0 * rowBytes;
        for (ptrdiff_t c = 0; c < chunks; c++)
            for (ptrdiff_t j = 0; j < G; j++, d += chunkBytes) memcpy(d, g + j * rowBytes + c * chunkBytes, (size_t)chunkBytes);
    }
    memcpy(d, (const char *)src + packed * rowBytes, (size_t)((rows - packed) * rowBytes));
}

typedef void (*two_fn)(rows_at, rows_at, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *, float *);

/// Rows r0..<r1 of a weight with rows [0, packedEnd) in interleaved groups of G (0: row-major, see `rows_from`);
/// prefetches stay below `pfEnd` (the end of the caller's row range: an L2 tile's next tile is useful). `two8`: the
/// dtype's two-group decode block, or 0 (groups one at a time); `tail`: valid columns of a partial last F32 chunk.
static void drive(const block_fn *fns, two_fn two8, const void *w, const float *s, ptrdiff_t sc, ptrdiff_t cols, ptrdiff_t chunks,
                  ptrdiff_t tail,
                  const float *xp, ptrdiff_t stride, ptrdiff_t tokens, float *out, ptrdiff_t os, ptrdiff_t r0,
                  ptrdiff_t r1, ptrdiff_t pfEnd, ptrdiff_t esize, ptrdiff_t G, ptrdiff_t packedEnd) {
    ptrdiff_t rowBytes = cols * esize, cb = 64 * esize, unit = G > 4 ? G : 4;
    // 4-row blocks prefetch whole groups ahead, so the rows there sit at the same place in their group.
    ptrdiff_t PREFETCH_ROWS = (PREFETCH_BYTES + rowBytes - 1) / rowBytes;
    PREFETCH_ROWS = PREFETCH_ROWS < 16 ? 16 : (PREFETCH_ROWS + unit - 1) / unit * unit;
    // More than one token block re-reads the rows once per block: walk the rows in L2-sized tiles so the re-reads
    // hit L2 instead of DRAM (same per-element sequence, so the same bits).
    if (tokens > TOKEN_BLOCK) {
        ptrdiff_t tile = TILE_BYTES / rowBytes;
        tile = tile < unit ? unit : tile / unit * unit;
        if (r1 - r0 > tile) {
            for (ptrdiff_t t0 = r0; t0 < r1; t0 += tile)
                drive(fns, two8, w, s, sc, cols, chunks, tail, xp, stride, tokens, out, os, t0, t0 + tile < r1 ? t0 + tile : r1,
                      pfEnd, esize, G, packedEnd);
            return;
        }
    }
    // Prefetch distance of an R-row block at r: none where it would reach past pfEnd (those rows were prefetched by
    // earlier blocks; reaching past streamed up to 64 KB of another thread's or another matrix's rows per range:
    // one decode step's 361 BF16 matrices replayed by a C harness, 1 thread: 72-74 -> 77-78% of the read probe).
#define PF(r, R) ((r) + (R) + PREFETCH_ROWS <= pfEnd ? PREFETCH_ROWS * rowBytes : 0)
#define AT(r) rows_from(w, r, rowBytes, cb, G, packedEnd)
    const char *limit = (const char *)w + pfEnd * rowBytes;
    for (ptrdiff_t tb = 0; tb < tokens; tb += TOKEN_BLOCK) {
        ptrdiff_t te = tokens < tb + TOKEN_BLOCK ? tokens : tb + TOKEN_BLOCK;
        const float *xt = xp + tb * stride;
        float *ot = out + tb * os;
        ptrdiff_t r = r0;
        if (te - tb == 1 && G) {
            // Interleaved groups: each group is one ascending run read with ordered loads and no software prefetch
            // (the hardware prefetcher follows it). One decode step's 361 BF16 matrices replayed by a C harness,
            // 1 thread: row-major with prefetch 72-77%, interleaved 94% of the read probe (2 threads, ~33 GB/s mode:
            // 83-91% -> 94-95%); an up-front or per-chunk software prefetch cost 7-8 points there.
            for (; r % G && r + 4 <= r1; r += 4) fns[1](AT(r), s, sc, chunks, tail, r, xt, stride, ot, os, 0, limit);
            ptrdiff_t end = r1 < packedEnd ? r1 : packedEnd;
            if (two8 && G == 8) {  // BF16: the range's first and second halves of groups as two runs
                ptrdiff_t pairs = group_pairs(r, end), rb = r + pairs * 8;
                for (ptrdiff_t k = 0; k < pairs; k++) two8(AT(r + k * 8), AT(rb + k * 8), chunks, r + k * 8, rb + k * 8, xt, ot);
                r = rb + pairs * 8;
            }
            for (; r + G <= end; r += G) fns[G == 16 ? 8 : 7](AT(r), s, sc, chunks, tail, r, xt, stride, ot, os, 0, limit);
        }
        // One token (decode), row-major: 8 rows per block (16 for rows of <= 2 KB) keeps more weight streams in flight
        // (measured on Zen 4: 2048-col BF16 rows 20 -> 23 GB/s with 8 rows; 512-col rows 17 -> 21.7 GB/s with 16;
        // 768-col rows 10.6 -> 20 GB/s with 16; 4 KB rows lose with 16). FP8 keeps 8: its decode is bound by vector
        // ops, and with 16 rows the accumulators and decoded phases spill (one core, 2048-col rows: 12.3-14.4 GB/s
        // with 16, 20.7-22.6 with 8).
        if (te - tb == 1 && r >= packedEnd) {
            ptrdiff_t R = rowBytes <= 2048 && esize != 1 ? 16 : 8, lead = decode_prefetch_start(w, r, r1, R, rowBytes, limit);
            if (R == 16)
                for (; r + 16 <= r1; r += 16) fns[8](AT(r), s, sc, chunks, tail, r, xt, stride, ot, os, lead, limit);
            for (; r + 8 <= r1; r += 8) fns[7](AT(r), s, sc, chunks, tail, r, xt, stride, ot, os, decode_lead(8, rowBytes), limit);
        }
        for (; r + 4 <= r1; r += 4) {
            ptrdiff_t t = tb;
            // 4 x 4 blocks: with 6 tokens the decoded weight phases and 24 accumulators spill (50 vs 104 GFLOP/s).
            for (; t + 4 <= te; t += 4) fns[4](AT(r), s, sc, chunks, tail, r, xp + t * stride, stride, out + t * os, os, PF(r, 4), limit);
            if (t < te) fns[te - t](AT(r), s, sc, chunks, tail, r, xp + t * stride, stride, out + t * os, os, PF(r, 4), limit);
        }
        for (; r < r1; r++)
            for (ptrdiff_t t = tb; t < te; t++) fns[0](AT(r), s, sc, chunks, tail, r, xp + t * stride, stride, out + t * os, os, 0, limit);
    }
#undef AT
#undef PF
}

void mr_linear_bf16(const uint16_t *w, ptrdiff_t cols, ptrdiff_t chunks, const float *xp, ptrdiff_t stride,
                    ptrdiff_t tokens, float *out, ptrdiff_t outStride, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t group,
                    ptrdiff_t packedEnd) {
    drive(bf16_blocks, bf16_two8x1, w, 0, 0, cols, chunks, 0, xp, stride, tokens, out, outStride, r0, r1, r1, 2, group, packedEnd);
}

void mr_linear_f32(const float *w, ptrdiff_t cols, ptrdiff_t chunks, const float *xp, ptrdiff_t stride,
                   ptrdiff_t tokens, float *out, ptrdiff_t outStride, ptrdiff_t r0, ptrdiff_t r1) {
    drive(f32_blocks, 0, w, 0, 0, cols, chunks, cols - chunks * 64, xp, stride, tokens, out, outStride, r0, r1, r1, 4, 0, 0);
}

void mr_linear_fp8(const uint8_t *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t cols, ptrdiff_t chunks,
                   const float *xp, ptrdiff_t stride, ptrdiff_t tokens, float *out, ptrdiff_t outStride,
                   ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t group, ptrdiff_t packedEnd) {
    drive(fp8_blocks, 0, w, scales, scaleCols, cols, chunks, 0, xp, stride, tokens, out, outStride, r0, r1, r1, 1, group, packedEnd);
}
