// Private helpers shared by the kernel files of CKernels (not part of the public header): target attributes,
// lane sums in Swift's order, prefetch helpers, block row addressing (row-major or interleaved groups) and the
// blocking constants the BF16/FP8 and BF16 dot-product drivers share.
#ifndef MR_KERNEL_COMMON_H
#define MR_KERNEL_COMMON_H
#include "ckernels.h"
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define TGT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

/// Swift's `SIMD16<Float>.sum()`: sequential, from -0.
INLINE TGT float lane_sum(__m512 v) {
    float a[16];
    _mm512_storeu_ps(a, v);
    float s = -0.0f;
    for (int i = 0; i < 16; i++) s += a[i];
    return s;
}

// Software prefetch on this machine class (Zen 4 VM), measured with a throwaway C harness: a burst is mostly dropped once the
// misses in flight fill up. 512 back-to-back prefetcht1 over a cold 32 KB block, then 20 µs idle: reading it took
// 1.05 µs (cold 1.8, after plain loads 0.45); paced at >= ~3.3 ns per line, every line landed (0.5 µs).
// One prefetch per line 4-8 KB ahead in the interleaved BF16 decode loop (ordered_row) cost decode b1 0.95 -> 0.84 of
// the read probe in the ~35 GB/s mode and to 0.58 in the ~60 GB/s mode (0.89 without, same day): the hardware
// prefetcher already does that job.

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

/// Two-run decode over 8-row groups from row r (group-aligned) to `end`: how many pairs (group k of the first half
/// with group k of the second); the pairs cover rows r ..< r + 16 * pairs, an odd last group is left over.
INLINE ptrdiff_t group_pairs(ptrdiff_t r, ptrdiff_t end) { return (end - r) / 16; }

/// The software prefetch a block issues for chunk c, `pf` bytes ahead (none when `pf` is 0, nothing at or past
/// `limit`); a row's chunk spans `lines` cache lines. Decode blocks (`linear`: one token, R >= 8) prefetch linearly
/// as many lines as the chunk reads; other blocks prefetch the same chunk of each of their rows.
INLINE TGT void prefetch_chunk(int R, int linear, rows_at a, ptrdiff_t pf, ptrdiff_t c, int lines, const char *limit) {
    if (!pf) return;
    if (linear) {
        prefetch_lines(a.w0 + pf + c * R * lines * 64, R * lines, limit);
        return;
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < R; i++) {
        const char *q = a.w0 + pf + i * a.rs + c * a.cs;
        if (q >= limit) break;
#pragma clang loop unroll(full)
        for (int k = 0; k < lines; k++) _mm_prefetch(q + k * 64, _MM_HINT_T1);
    }
}

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

INLINE ptrdiff_t decode_prefetch_start(const void *w, ptrdiff_t r, ptrdiff_t r1, ptrdiff_t R, ptrdiff_t rowBytes,
                                     const char *limit) {
    ptrdiff_t lead = decode_lead(R, rowBytes);
    if (r + R <= r1) {
        const char *a = (const char *)w + r * rowBytes;
        prefetch_range(a, a + lead < limit ? a + lead : limit);
    }
    return lead;
}

#endif
