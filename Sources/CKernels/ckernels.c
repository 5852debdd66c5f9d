// AVX-512 linear kernels (BF16 / FP8-block weights dequantized in registers, FP32 accumulation) and peak probes.
// Summation order per output (t, o), identical to Kernels/Linear.swift: one 16-lane accumulator walks 64-column
// chunks ascending; per chunk four fused multiply-adds in phase order 0..3 (FP8: the four phase products summed, then
// one fused multiply-add by the chunk's folded scale); then lanes 0..15 are added in order
// starting from -0 (Swift's SIMD `sum()`). Blocking over rows/tokens and threads never changes that sequence.
#include "ckernels.h"
#include <immintrin.h>
#include <string.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define TGT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

int mr_cpu_features(void) {
    __builtin_cpu_init();
    int f = 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) f |= 1;
    if ((f & 1) && __builtin_cpu_supports("avx512bf16")) f |= 2;
    return f;
}

/// Swift's `SIMD16<Float>.sum()`: sequential, from -0.
INLINE TGT float lane_sum(__m512 v) {
    float a[16];
    _mm512_storeu_ps(a, v);
    float s = -0.0f;
    for (int i = 0; i < 16; i++) s += a[i];
    return s;
}

/// BF16 phase p of a 64-column chunk at `c`: pairs of BF16 as 32-bit words; `<< 16` = even column, mask = odd.
INLINE TGT __m512 bf16_phase(const uint16_t *c, int p) {
    __m512i w = _mm512_loadu_si512((const void *)(c + (p >> 1) * 32));
    __m512i v = (p & 1) ? _mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000u)) : _mm512_slli_epi32(w, 16);
    return _mm512_castsi512_ps(v);
}

/// FP8 phase p: byte p of each 32-bit word, moved to the top, arithmetic shift by 4, mask sign + 7 magnitude bits:
/// exactly the e4m3 value times 2^-120 (see FP8Decoder in Linear.swift).
INLINE TGT __m512 fp8_phase(__m512i w, int p) {
    __m512i top = p == 3 ? w : _mm512_slli_epi32(w, 24 - 8 * p);
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_srai_epi32(top, 4), _mm512_set1_epi32((int)0x87F00000u)));
}

/// Prefetches (into L2) `lines` consecutive cache lines from `q`, none at or past `limit`.
INLINE TGT void prefetch_lines(const char *q, int lines, const char *limit) {
    if (q + lines * 64 <= limit) {
#pragma clang loop unroll(full)
        for (int k = 0; k < lines; k++) _mm_prefetch(q + k * 64, _MM_HINT_T1);
    } else {
        for (int k = 0; k < lines && q + k * 64 < limit; k++) _mm_prefetch(q + k * 64, _MM_HINT_T1);
    }
}

/// Prefetches (into L2) every cache line of [a, e).
INLINE void prefetch_range(const char *a, const char *e) {
    for (a = (const char *)((uintptr_t)a & ~(uintptr_t)63); a < e; a += 64) _mm_prefetch(a, _MM_HINT_T1);
}

/// Keeps a weight load in program order: loads of an interleaved block then reach memory strictly ascending
/// (compiler-scheduled loads of one 16-row chunk went out of order; see `block`).
#define ORDERED(v) __asm__ volatile("" : "+v"(v) : : "memory")

/// FP8 chunk `c` for R rows x NT tokens (row i's chunk at w0 + i * rs + c * cs): per (row, token) the four phase
/// products summed (multiply, then three fused multiply-adds), then one fused multiply-add of that sum by the folded
/// scale `sc[i]` into the accumulator. Row by row, so only the accumulators stay live (16-row decode blocks fit the
/// registers); no per-element scale multiply (the FP8 kernel was bound by vector ops, not memory: 12 -> ~24 GB/s
/// per core from L2).
INLINE TGT void chunk_fp8(int R, int NT, int ordered, const char *w0, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t c,
                          const float *sc, const float *x, ptrdiff_t stride, __m512 acc[16][6]) {
    if (NT == 1) {
        const float *xc = x + c * 64;
        __m512 x0 = _mm512_loadu_ps(xc), x1 = _mm512_loadu_ps(xc + 16), x2 = _mm512_loadu_ps(xc + 32), x3 = _mm512_loadu_ps(xc + 48);
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            __m512i w = _mm512_loadu_si512((const void *)(w0 + i * rs + c * cs));
            if (ordered) ORDERED(w);
            __m512 part = _mm512_mul_ps(fp8_phase(w, 0), x0);
            part = _mm512_fmadd_ps(fp8_phase(w, 1), x1, part);
            part = _mm512_fmadd_ps(fp8_phase(w, 2), x2, part);
            part = _mm512_fmadd_ps(fp8_phase(w, 3), x3, part);
            acc[i][0] = _mm512_fmadd_ps(part, _mm512_set1_ps(sc[i]), acc[i][0]);
        }
        return;
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < R; i++) {
        __m512i w = _mm512_loadu_si512((const void *)(w0 + i * rs + c * cs));
        __m512 m0 = fp8_phase(w, 0), m1 = fp8_phase(w, 1), m2 = fp8_phase(w, 2), m3 = fp8_phase(w, 3);
#pragma clang loop unroll(full)
        for (int t = 0; t < NT; t++) {
            const float *xt = x + t * stride + c * 64;
            __m512 part = _mm512_mul_ps(m0, _mm512_loadu_ps(xt));
            part = _mm512_fmadd_ps(m1, _mm512_loadu_ps(xt + 16), part);
            part = _mm512_fmadd_ps(m2, _mm512_loadu_ps(xt + 32), part);
            part = _mm512_fmadd_ps(m3, _mm512_loadu_ps(xt + 48), part);
            acc[i][t] = _mm512_fmadd_ps(part, _mm512_set1_ps(sc[i]), acc[i][t]);
        }
    }
}

/// The four phases of chunk `c` for R rows x NT tokens of BF16 (fp32 = 0) or F32 (fp32 = 1) weights
/// (the fixed per-accumulator order: phases 0..3). `ordered` (one BF16 token): each row chunk's two lines are loaded
/// once, in ascending address order, and decoded from registers.
INLINE TGT void chunk_phases(int R, int NT, int fp32, int ordered, const char *w0, ptrdiff_t rs, ptrdiff_t cs,
                             ptrdiff_t c, const float *x, ptrdiff_t stride, __m512 acc[16][6]) {
    if (ordered && NT == 1 && !fp32) {
        const float *xc = x + c * 64;
        __m512 x0 = _mm512_loadu_ps(xc), x1 = _mm512_loadu_ps(xc + 16), x2 = _mm512_loadu_ps(xc + 32), x3 = _mm512_loadu_ps(xc + 48);
        const __m512i odd = _mm512_set1_epi32((int)0xFFFF0000u);
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            const char *q = w0 + i * rs + c * cs;
            __m512i a = _mm512_loadu_si512((const void *)q);
            ORDERED(a);
            __m512i b = _mm512_loadu_si512((const void *)(q + 64));
            ORDERED(b);
            acc[i][0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), x0, acc[i][0]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(a, odd)), x1, acc[i][0]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(b, 16)), x2, acc[i][0]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(b, odd)), x3, acc[i][0]);
        }
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

/// Where the rows of a block live: row i's chunk c at w0 + i * rs + c * cs. Row-major: rs = row bytes, cs = chunk
/// bytes; interleaved groups (`Weight.interleaved`): rs = chunk bytes, cs = group x chunk bytes.
typedef struct { const char *w0; ptrdiff_t rs, cs; } rows_at;

/// Rows from r in a weight whose rows [0, packedEnd) are stored in groups of G (0: none) with the chunks of the
/// group's rows interleaved (chunk c of row g*G + j at group start + (c*G + j) * chunk bytes); rows past packedEnd
/// are row-major. A block must not cross a group boundary.
INLINE rows_at rows_from(const void *w, ptrdiff_t r, ptrdiff_t rowBytes, ptrdiff_t cb, ptrdiff_t G, ptrdiff_t packedEnd) {
    if (G && r < packedEnd) return (rows_at){(const char *)w + (r - r % G) * rowBytes + (r % G) * cb, cb, G * cb};
    return (rows_at){(const char *)w + r * rowBytes, rowBytes, cb};
}

/// R rows x NT tokens at `a` (logical rows r..r+R-1: output index and FP8 scale row). `fp8` selects the decoder
/// (0 BF16, 1 FP8 blocks, 2 F32). While it works it may prefetch into L2 (`prefetcht1`): streaming row-major weights
/// from DRAM with several rows in flight needs more memory-level parallelism than the hardware prefetcher gives
/// (measured: ~15 -> ~22 GB/s on one Zen 4 core; into L1 it did not help). `pf` > 0: row-major decode blocks (one
/// token, R >= 8) prefetch linearly, per chunk as many lines as the chunk reads, `pf` bytes past the block's start
/// plus what the block has read so far; 4-row blocks prefetch the same chunk of the rows `pf` bytes ahead. Nothing at
/// or past `pfLimit`. Interleaved decode blocks (`ordered`) read one ascending run and prefetch nothing.
INLINE TGT void block(int R, int NT, int fp8, rows_at a, const float *scales, ptrdiff_t scaleCols, ptrdiff_t chunks,
                      ptrdiff_t r, const float *x, ptrdiff_t stride, float *out, ptrdiff_t outStride, ptrdiff_t pf,
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
    for (ptrdiff_t c = 0; c < chunks; c++) {
        if (linear) {
            if (pf) prefetch_lines(a.w0 + pf + c * R * 64 * esize, R * (int)esize, pfLimit);
        } else if (pf) {
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) {
                const char *q = a.w0 + pf + i * a.rs + c * a.cs;
                if (q >= pfLimit) break;
                _mm_prefetch(q, _MM_HINT_T1);
                if (fp8 == 0) _mm_prefetch(q + 64, _MM_HINT_T1);  // both lines of a BF16 row chunk (4-row blocks)
                if (fp8 == 2) { _mm_prefetch(q + 64, _MM_HINT_T1); _mm_prefetch(q + 128, _MM_HINT_T1); _mm_prefetch(q + 192, _MM_HINT_T1); }
            }
        }
        if (fp8 == 1) {
            float sc[16];
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) sc[i] = srow[i][c >> 1] * 0x1p56f;  // chunk c lies in scale column c*64/128
            chunk_fp8(R, NT, ordered && linear, a.w0, a.rs, a.cs, c, sc, x, stride, acc);
        } else {
            chunk_phases(R, NT, fp8 == 2, ordered && linear, a.w0, a.rs, a.cs, c, x, stride, acc);
        }
    }
#pragma clang loop unroll(full)
    for (int t = 0; t < NT; t++)
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) out[t * outStride + r + i] = lane_sum(acc[i][t]);
}

#define DEFINE_BLOCK(NAME, R, NT, FP8)                                                                              \
    static TGT __attribute__((noinline)) void NAME(rows_at a, const float *s, ptrdiff_t sc, ptrdiff_t chunks,        \
                                                   ptrdiff_t r, const float *x, ptrdiff_t stride, float *out,        \
                                                   ptrdiff_t os, ptrdiff_t pf, const char *pl) {                     \
        block(R, NT, FP8, a, s, sc, chunks, r, x, stride, out, os, pf, pl);                                          \
    }
typedef void (*block_fn)(rows_at, const float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *,
                         ptrdiff_t, ptrdiff_t, const char *);
#define DEFINE_ALL(FP8, P)                                                                                           \
    DEFINE_BLOCK(P##_4x1, 4, 1, FP8) DEFINE_BLOCK(P##_4x2, 4, 2, FP8) DEFINE_BLOCK(P##_4x3, 4, 3, FP8)              \
    DEFINE_BLOCK(P##_4x4, 4, 4, FP8) DEFINE_BLOCK(P##_4x5, 4, 5, FP8) DEFINE_BLOCK(P##_4x6, 4, 6, FP8)              \
    DEFINE_BLOCK(P##_1x1, 1, 1, FP8) DEFINE_BLOCK(P##_8x1, 8, 1, FP8) DEFINE_BLOCK(P##_16x1, 16, 1, FP8)            \
    static const block_fn P##_blocks[9] = {P##_1x1, P##_4x1, P##_4x2, P##_4x3, P##_4x4, P##_4x5, P##_4x6, P##_8x1, P##_16x1};
DEFINE_ALL(0, bf16)
DEFINE_ALL(1, fp8)
DEFINE_ALL(2, f32)

/// Tokens per outer block: bounds the activation panel re-read for every 4-row block (L2-resident; 24 measured best).
/// Prefetch distance of 4-row blocks: at least 16 rows and PREFETCH_BYTES ahead. 16 KB instead of 32 KB for rows
/// < 2 KB (expert down, q_b, kv_b): in the VM's fast-bandwidth mode (2 threads ~50 GB/s) 2048x512 products went
/// 79 -> 83% of the read probe, 2048x256 62 -> 69%, 1536x384 75 -> 77%; 4 KB and 2 KB rows keep their 16 rows.
/// Decode blocks prefetch linearly PREFETCH_BYTES past their own end (see `decode_lead`).
enum { TOKEN_BLOCK = 24, PREFETCH_BYTES = 16384, TILE_BYTES = 196608 };

/// Decode blocks of R rows prefetch linearly one block + PREFETCH_BYTES ahead (`decode_lead`); that much of the range
/// from row r is prefetched by `decode_prefetch_start`, up front, since no earlier block did. One decode step's 361
/// BF16 matrices replayed by a C harness (rows split over threads like `Ops.linear`): 1 thread 69-78 -> 79-86% of the
/// read probe, 2 threads 88-93 -> 92-96%; in that harness the linear pattern alone or the up-front range alone gained
/// nothing.
INLINE ptrdiff_t decode_lead(ptrdiff_t R, ptrdiff_t rowBytes) { return R * rowBytes + PREFETCH_BYTES; }

static ptrdiff_t decode_prefetch_start(const void *w, ptrdiff_t r, ptrdiff_t r1, ptrdiff_t R, ptrdiff_t rowBytes,
                                       const char *limit) {
    ptrdiff_t lead = decode_lead(R, rowBytes);
    if (r + R <= r1) {
        const char *a = (const char *)w + r * rowBytes;
        prefetch_range(a, a + lead < limit ? a + lead : limit);
    }
    return lead;
}

int mr_interleave_group(ptrdiff_t rowBytes) { return rowBytes <= 2048 ? 16 : 8; }

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

/// Rows r0..<r1 of a weight with rows [0, packedEnd) in interleaved groups of G (0: row-major, see `rows_from`);
/// prefetches stay below `pfEnd` (the end of the caller's row range: an L2 tile's next tile is useful).
static void drive(const block_fn *fns, const void *w, const float *s, ptrdiff_t sc, ptrdiff_t cols, ptrdiff_t chunks,
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
                drive(fns, w, s, sc, cols, chunks, xp, stride, tokens, out, os, t0, t0 + tile < r1 ? t0 + tile : r1,
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
            for (; r % G && r + 4 <= r1; r += 4) fns[1](AT(r), s, sc, chunks, r, xt, stride, ot, os, 0, limit);
            ptrdiff_t end = r1 < packedEnd ? r1 : packedEnd;
            for (; r + G <= end; r += G) fns[G == 16 ? 8 : 7](AT(r), s, sc, chunks, r, xt, stride, ot, os, 0, limit);
        }
        // One token (decode), row-major: 8 rows per block (16 for rows of <= 2 KB) keeps more weight streams in flight
        // (measured on Zen 4: 2048-col BF16 rows 20 -> 23 GB/s with 8 rows; 512-col rows 17 -> 21.7 GB/s with 16;
        // 768-col rows 10.6 -> 20 GB/s with 16; 4 KB rows lose with 16).
        if (te - tb == 1 && r >= packedEnd) {
            ptrdiff_t R = mr_interleave_group(rowBytes), lead = decode_prefetch_start(w, r, r1, R, rowBytes, limit);
            if (R == 16)
                for (; r + 16 <= r1; r += 16) fns[8](AT(r), s, sc, chunks, r, xt, stride, ot, os, lead, limit);
            for (; r + 8 <= r1; r += 8) fns[7](AT(r), s, sc, chunks, r, xt, stride, ot, os, decode_lead(8, rowBytes), limit);
        }
        for (; r + 4 <= r1; r += 4) {
            ptrdiff_t t = tb;
            // 4 x 4 blocks: with 6 tokens the decoded weight phases and 24 accumulators spill (50 vs 104 GFLOP/s).
            for (; t + 4 <= te; t += 4) fns[4](AT(r), s, sc, chunks, r, xp + t * stride, stride, out + t * os, os, PF(r, 4), limit);
            if (t < te) fns[te - t](AT(r), s, sc, chunks, r, xp + t * stride, stride, out + t * os, os, PF(r, 4), limit);
        }
        for (; r < r1; r++)
            for (ptrdiff_t t = tb; t < te; t++) fns[0](AT(r), s, sc, chunks, r, xp + t * stride, stride, out + t * os, os, 0, limit);
    }
#undef AT
#undef PF
}

void mr_linear_bf16(const uint16_t *w, ptrdiff_t cols, ptrdiff_t chunks, const float *xp, ptrdiff_t stride,
                    ptrdiff_t tokens, float *out, ptrdiff_t outStride, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t group,
                    ptrdiff_t packedEnd) {
    drive(bf16_blocks, w, 0, 0, cols, chunks, xp, stride, tokens, out, outStride, r0, r1, r1, 2, group, packedEnd);
}

void mr_linear_f32(const float *w, ptrdiff_t cols, ptrdiff_t chunks, const float *xp, ptrdiff_t stride,
                   ptrdiff_t tokens, float *out, ptrdiff_t outStride, ptrdiff_t r0, ptrdiff_t r1) {
    drive(f32_blocks, w, 0, 0, cols, chunks, xp, stride, tokens, out, outStride, r0, r1, r1, 4, 0, 0);
}

void mr_linear_fp8(const uint8_t *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t cols, ptrdiff_t chunks,
                   const float *xp, ptrdiff_t stride, ptrdiff_t tokens, float *out, ptrdiff_t outStride,
                   ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t group, ptrdiff_t packedEnd) {
    drive(fp8_blocks, w, scales, scaleCols, cols, chunks, xp, stride, tokens, out, outStride, r0, r1, r1, 1, group, packedEnd);
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

// MARK: - BF16 dot-product path (opt-in precision mode: activations rounded to BF16)

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
        if (linear) {
            if (pf) prefetch_lines(a.w0 + pf + c * R * 128, R * 2, pfLimit);
        } else if (pf) {
#pragma clang loop unroll(full)
            for (int i = 0; i < R; i++) {
                const char *q = a.w0 + pf + i * a.rs + c * a.cs;
                if (q >= pfLimit) break;
                _mm_prefetch(q, _MM_HINT_T1);
                _mm_prefetch(q + 64, _MM_HINT_T1);
            }
        }
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

// MARK: - transposed products (absorbed attention: q_nope · W_UK over a BF16 / FP8 weight view `[k, n]`)

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

/// Weight columns c..c+15 of row i, exact as `Ops.dequantizeRow` gives them.
INLINE TGT __m512 trow16(int fp8, const void *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t n, ptrdiff_t i,
                         ptrdiff_t c) {
    if (!fp8) return bf16x16((const uint16_t *)w + i * n + c);
    return fp8x16((const uint8_t *)w + i * n + c, _mm512_set1_ps(scales[(i / 128) * scaleCols + c / 128]));
}

/// out[t, c] = Σ_i x[t, i] · W[i, c]: per output one fused multiply-add per row i ascending, from +0 (the sequence
/// of `Ops.axpy` over dequantized rows). 256 columns stay in registers while i walks the rows, so each row is read
/// as one contiguous run (the weights come from DRAM once per decode step; 64-column tiles read them with a
/// 4-way stride and were slower than the dequantize-and-axpy loop).
static TGT void transposed(int fp8, const void *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t k, ptrdiff_t n,
                           const float *x, ptrdiff_t tokens, float *out) {
    const ptrdiff_t esize = fp8 ? 1 : 2;
    for (ptrdiff_t t = 0; t < tokens; t++) {
        const float *xt = x + t * k;
        float *ot = out + t * n;
        ptrdiff_t c = 0;
        for (; c + 256 <= n; c += 256) {
            __m512 a[16];
#pragma clang loop unroll(full)
            for (int v = 0; v < 16; v++) a[v] = _mm512_setzero_ps();
            for (ptrdiff_t i = 0; i < k; i++) {
                if (i + 8 < k) prefetch_range((const char *)w + ((i + 8) * n + c) * esize, (const char *)w + ((i + 8) * n + c + 256) * esize);
                __m512 xi = _mm512_set1_ps(xt[i]);
#pragma clang loop unroll(full)
                for (int v = 0; v < 16; v++) a[v] = _mm512_fmadd_ps(xi, trow16(fp8, w, scales, scaleCols, n, i, c + 16 * v), a[v]);
            }
#pragma clang loop unroll(full)
            for (int v = 0; v < 16; v++) _mm512_storeu_ps(ot + c + 16 * v, a[v]);
        }
        // Widths that are not a multiple of 256 (not MLA's kv_lora_rank of 512): the rest 16 columns at a time.
        for (; c + 16 <= n; c += 16) {
            __m512 a = _mm512_setzero_ps();
            for (ptrdiff_t i = 0; i < k; i++) a = _mm512_fmadd_ps(_mm512_set1_ps(xt[i]), trow16(fp8, w, scales, scaleCols, n, i, c), a);
            _mm512_storeu_ps(ot + c, a);
        }
    }
}

void mr_linear_transposed_bf16(const uint16_t *w, ptrdiff_t k, ptrdiff_t n, const float *x, ptrdiff_t tokens, float *out) {
    transposed(0, w, 0, 0, k, n, x, tokens, out);
}

void mr_linear_transposed_fp8(const uint8_t *w, const float *scales, ptrdiff_t scaleCols, ptrdiff_t k, ptrdiff_t n,
                              const float *x, ptrdiff_t tokens, float *out) {
    transposed(1, w, scales, scaleCols, k, n, x, tokens, out);
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

