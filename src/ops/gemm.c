/* gemm.c: matrix products on kerac's thread pool. On CPUs with AVX-512 an own kernel (8x32
 * register tiles over B panels packed to fit L1, bias + relu fused into the last store, zero
 * tiles of sparse input skipped, a streaming kernel for one row, finished blocks of C handed
 * to a callback while still in cache: the fused optimizer step); elsewhere OpenBLAS. Each
 * element of C is summed in one part in a fixed order, so results depend neither on the
 * thread count nor on timing. */
#include "ops.h"
#include "../internal.h"
#include "../util/threads.h"
#include "../util/isa.h"
#ifdef KC_X86
#include <immintrin.h>
#endif
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#define MR 8     /* rows of C per register tile */
#define NR 32    /* columns: two 16-float vectors */
#define MC 512   /* rows per chunk: the row tiles whose non-zero k lists are kept */
#define KC 256   /* depth per block: a 32 x 256 panel of B is 32 KB, the size of L1 */

/* A thread-local buffer's address, made opaque to the optimiser: the tile functions receive
 * it as a plain pointer. Else GCC specialises them for the buffer (constprop) and, with -fPIC,
 * computes its address inside the k loop by a call to __tls_get_addr, which clobbers every
 * vector register: the accumulators then went through the stack on every term. */
#define KC_TLS_ADDR(type, name, tls) \
    type *name = tls;                \
    __asm__("" : "+r"(name))

/* The depth of the K blocks: equal blocks of at most KC (784 = 4 x 196). Every path sums each
 * block from zero in k order and adds the blocks in order, so a sample's outputs are the same
 * bits whichever kernel (AVX-512 or AVX2), batch or thread count computed them. */
static int k_block_depth(int k) {
    int blocks = (k + KC - 1) / KC;
    return (k + blocks - 1) / blocks;
}

/* ---- the AVX-512 kernels: compiled for AVX-512 whatever the build's flags, called only
 * where kc_isa() is avx512 ---- */
#ifdef KC_X86
KC_TARGET_BEGIN(KC_TARGET_AVX512_FEATURES)

/* Rows per register tile: 4 for sparse column-major A (the transposed images of a first
 * layer's weight gradient: a tile's rows are neighbouring pixels), where a k (image) is zero
 * in all 4 rows far more often than in all 8 (MNIST: 28% against 40% of the terms remain).
 * For row-major sparse A (rows are images: 39% against 47%) the 8-row tile was faster in
 * training, measured side by side. */
#define SPARSE_MR 4
static inline int sparse_rows(const kc_gemm_args *g) {
    return g->a_sparse && g->a_rs == 1 && g->a_cs != 1 ? SPARSE_MR : MR;
}
/* tile_wide for 4-row tiles while its two panels fit in L1 with room to spare (32 KB: k up
 * to 128). Deeper, they would stream from L2 for every row tile: the first layer's forward
 * product (k blocks of 196) ran 10% slower per training step that way. */
static inline int use_wide(int step, int kc) { return step == SPARSE_MR && kc * 2 * NR <= 8192; }

/* The rarer parts of the epilogue on C(i, j .. j + 15), after bias and relu: dropout's mask
 * (kc_dropout_apply's, element i * ldc + j) and the gate (see kc_gemm_args). Same arithmetic
 * as kc_dropout_apply and kc_act_backward, so the bits are those of the separate passes. */
static inline __m512 epilogue_extra(const kc_gemm_args *g, int64_t i, int64_t j, __m512 v,
                                    __mmask16 m) {
    if (g->dropout_rate > 0.0f) {
        __m512i h = _mm512_add_epi32(
            _mm512_set1_epi32((int)(uint32_t)(i * g->ldc + j)),
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        h = _mm512_add_epi32(_mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x9e3779b9u)),
                             _mm512_set1_epi32((int)kc_dropout_key32(g->dropout_key)));
        h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
        h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x7feb352du));
        h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 15));
        h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x846ca68bu));
        h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
        __mmask16 keep = _mm512_cmpge_epu32_mask(
            h, _mm512_set1_epi32((int)kc_dropout_threshold(g->dropout_rate)));
        v = _mm512_maskz_mul_ps(keep, v, _mm512_set1_ps(1.0f / (1.0f - g->dropout_rate)));
    }
    if (g->gate) {
        __mmask16 open = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, g->gate + i * g->ldc + j),
                                                 _mm512_setzero_ps(), _CMP_GT_OQ);
        v = _mm512_maskz_mul_ps(open, v, _mm512_set1_ps(g->gate_scale));
    }
    return v;
}

/* x rounded to bfloat16 (to nearest even) and back to fp32 by VCVTNEPS2BF16 itself (the
 * rounding of the bf16 paths: denormal inputs to signed zero, NaN to a quiet NaN), written as
 * assembly so that the AVX-512 kernels need no AVX512-BF16 target: called only where the CPU
 * has it (bf16 products without AMX, gemm_bf16_as_fp32: B is rounded as it is packed). */
static inline __m512 round_bf16_ps(__m512 x) {
    __m256i h;
    __asm__("vcvtneps2bf16 %1, %0" : "=v"(h) : "v"(x));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
static inline __m512 maybe_round_bf16(int round, __m512 x) { return round ? round_bf16_ps(x) : x; }

/* C[0:mr, 0:16*nv masked] (+)= A[0:mr, 0:kc] B[0:kc, 0:16*nv], with A(r, k) = a[r*a_rs + k*a_cs]
 * and B(k, j) = b[k*b_rs + j]; nv = 1 for products at most 16 columns wide. With packed set, B
 * is a packed panel: rows of NR floats, zero past the last column, read without masks (a
 * masked load costs an extra operation on the ports that do the FMAs). With last set, adds
 * bias, applies relu and, with ex, the rest of ex's epilogue (the tile is C(ci.., cj..))
 * before the store. Inlined with constant mr, nv and strides, so the
 * nv*mr accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile(
    const int mr, const int nv, const int packed, int kc, const int *kidx, const float *a,
    const int64_t a_rs, const int64_t a_cs, const float *b, int64_t b_rs, __mmask16 m0,
    __mmask16 m1, float *c, int64_t ldc, int load_c, int last, const float *bias, int relu,
    const kc_gemm_args *ex, int64_t ci, int64_t cj) {
    __m512 acc0[MR], acc1[MR];
    const float *arow[MR]; /* row-major A: a pointer per row, indexed by k without adds */
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        acc0[r] = acc1[r] = _mm512_setzero_ps();
        arow[r] = a + r * a_rs;
    }
    if (packed) b_rs = NR;
    /* with kidx, only the listed k (in increasing order): the others are zero in every row of
     * this tile of A, and skipping a zero term leaves a sum's bits unchanged */
    for (int t = 0; t < kc; t++) {
        const int k = kidx ? kidx[t] : t;
        const float *bk = b + k * b_rs;
        __m512 b0 = packed ? _mm512_load_ps(bk) : _mm512_maskz_loadu_ps(m0, bk);
        __m512 b1 = nv == 1 ? b0 : packed ? _mm512_load_ps(bk + 16) : _mm512_maskz_loadu_ps(m1, bk + 16);
        const float *ak = a + k * a_cs;
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512 ar = _mm512_set1_ps(a_cs == 1 ? arow[r][k] : ak[r * a_rs]);
            acc0[r] = _mm512_fmadd_ps(ar, b0, acc0[r]);
            if (nv == 2) acc1[r] = _mm512_fmadd_ps(ar, b1, acc1[r]);
        }
    }
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps(), zero = _mm512_setzero_ps();
    if (last && bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, bias);
        if (nv == 2) bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m512 v0 = acc0[r], v1 = acc1[r];
        if (load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            if (nv == 2) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        if (last) {
            v0 = _mm512_add_ps(v0, bias0);
            v1 = _mm512_add_ps(v1, bias1);
            if (relu) {
                v0 = _mm512_max_ps(zero, v0); /* NaN stays NaN: max returns its second operand */
                v1 = _mm512_max_ps(zero, v1);
            }
            if (ex) {
                v0 = epilogue_extra(ex, ci + r, cj, v0, m0);
                if (nv == 2) v1 = epilogue_extra(ex, ci + r, cj + 16, v1, m1);
            }
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        if (nv == 2) _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

/* The row tiles of one column panel; A either row-major (a_cs == 1) or column-major
 * (a_rs == 1), dense or through a list of k, B packed or where it lies, one or two vectors
 * wide: each its own specialisation of tile(). */
#define TILE(MR_, K, A_RS, A_CS)                                                              \
    (packed ? (m1 ? tile(MR_, 2, 1, kc, K, a, A_RS, A_CS, b, b_rs, m0, m1, c, ldc, load_c,    \
                         last, bias, relu, ex, ci, cj)                                        \
                  : tile(MR_, 1, 1, kc, K, a, A_RS, A_CS, b, b_rs, m0, m1, c, ldc, load_c,    \
                         last, bias, relu, ex, ci, cj))                                       \
            : (m1 ? tile(MR_, 2, 0, kc, K, a, A_RS, A_CS, b, b_rs, m0, m1, c, ldc, load_c,    \
                         last, bias, relu, ex, ci, cj)                                        \
                  : tile(MR_, 1, 0, kc, K, a, A_RS, A_CS, b, b_rs, m0, m1, c, ldc, load_c,    \
                         last, bias, relu, ex, ci, cj)))
#define TILE_CASES(K, A_RS, A_CS)                      \
    switch (mr) {                                      \
    case 8: TILE(8, K, A_RS, A_CS); break;             \
    case 7: TILE(7, K, A_RS, A_CS); break;             \
    case 6: TILE(6, K, A_RS, A_CS); break;             \
    case 5: TILE(5, K, A_RS, A_CS); break;             \
    case 4: TILE(4, K, A_RS, A_CS); break;             \
    case 3: TILE(3, K, A_RS, A_CS); break;             \
    case 2: TILE(2, K, A_RS, A_CS); break;             \
    default: TILE(1, K, A_RS, A_CS); break;            \
    }

/* Sparse A (through a list of k): 4 rows by 64 columns, two packed panels side by side (b,
 * b_hi), 16 accumulators: where 4-row tiles pay (sparse_rows), four vectors of B per k carry
 * the 4 broadcasts of A, 8 loads per 16 FMAs against 6 per 8 for a 4 x 32 tile. Measured: 2%
 * of a training step of the MNIST network. m: the four column masks. */
static inline __attribute__((always_inline)) void tile_wide(
    const int mr, int kc, const int *kidx, const float *a, const int64_t a_rs, const int64_t a_cs,
    const float *b, const float *b_hi, const __mmask16 m[4], float *c, int64_t ldc, int load_c,
    int last, const float *bias, int relu, const kc_gemm_args *ex, int64_t ci, int64_t cj) {
    __m512 acc[SPARSE_MR][4];
    const float *arow[SPARSE_MR];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
        arow[r] = a + r * a_rs;
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
    }
    for (int t = 0; t < kc; t++) {
        const int k = kidx[t];
        __m512 bv[4] = {_mm512_load_ps(b + k * NR), _mm512_load_ps(b + k * NR + 16),
                        _mm512_load_ps(b_hi + k * NR), _mm512_load_ps(b_hi + k * NR + 16)};
        const float *ak = a + k * a_cs;
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++) {
            __m512 ar = _mm512_set1_ps(a_cs == 1 ? arow[r][k] : ak[r * a_rs]);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
    __m512 bias_v[4], zero = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
        bias_v[v] = last && bias ? _mm512_maskz_loadu_ps(m[v], bias + 16 * v) : zero;
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m512 x = acc[r][v];
            if (load_c) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m[v], cr + 16 * v));
            if (last) {
                x = _mm512_add_ps(x, bias_v[v]);
                if (relu) x = _mm512_max_ps(zero, x);
                if (ex) x = epilogue_extra(ex, ci + r, cj + 16 * v, x, m[v]);
            }
            _mm512_mask_storeu_ps(cr + 16 * v, m[v], x);
        }
    }
}

static void tile_wide_dispatch(int mr, int kc, const int *kidx, const float *a, int64_t a_rs,
                               int64_t a_cs, const float *b, const float *b_hi,
                               const __mmask16 m[4], float *c, int64_t ldc, int load_c,
                               int last, const float *bias, int relu, const kc_gemm_args *ex,
                               int64_t ci, int64_t cj) {
#define WIDE(MR_, A_RS, A_CS)                                                                  \
    tile_wide(MR_, kc, kidx, a, A_RS, A_CS, b, b_hi, m, c, ldc, load_c, last, bias, relu, ex, \
              ci, cj)
    if (a_cs == 1) {
        switch (mr) {
        case 4: WIDE(4, a_rs, 1); break;
        case 3: WIDE(3, a_rs, 1); break;
        case 2: WIDE(2, a_rs, 1); break;
        default: WIDE(1, a_rs, 1); break;
        }
    } else {
        switch (mr) {
        case 4: WIDE(4, 1, a_cs); break;
        case 3: WIDE(3, 1, a_cs); break;
        case 2: WIDE(2, 1, a_cs); break;
        default: WIDE(1, 1, a_cs); break;
        }
    }
#undef WIDE
}

static void tile_dispatch(int mr, int kc, const int *kidx, const float *a, int64_t a_rs,
                          int64_t a_cs, const float *b, int64_t b_rs, int packed, __mmask16 m0,
                          __mmask16 m1, float *c, int64_t ldc, int load_c, int last,
                          const float *bias, int relu, const kc_gemm_args *ex, int64_t ci,
                          int64_t cj) {
    if (a_cs == 1 && kidx) TILE_CASES(kidx, a_rs, 1)
    else if (a_cs == 1) TILE_CASES(NULL, a_rs, 1)
    else if (kidx) TILE_CASES(kidx, 1, a_cs)
    else TILE_CASES(NULL, 1, a_cs)
}

/* r[i] = column i of the 16 x 16 block whose rows are r[0..15] */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

/* A panel of transposed B (B(k, j) = src[k + j*b_cs], nr <= 32 columns, kc rows) into rows of
 * 32 floats, zero past nr: blocks of 16 x 16 read along k and transposed in registers. */
static void pack_transposed(float *packed, const float *src, int64_t b_cs, int kc, int nr,
                            int round) {
    for (int k = 0; k < kc; k += 16) {
        __mmask16 km = (__mmask16)(kc - k >= 16 ? 0xFFFF : (1u << (kc - k)) - 1);
        int rows = kc - k < 16 ? kc - k : 16;
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
#pragma GCC unroll 16
            for (int jj = 0; jj < 16; jj++)
                r[jj] = h * 16 + jj < nr ? _mm512_maskz_loadu_ps(km, src + (h * 16 + jj) * b_cs + k)
                                         : _mm512_setzero_ps();
            transpose16(r);
            for (int q = 0; q < rows; q++)
                _mm512_store_ps(packed + (k + q) * NR + h * 16, maybe_round_bf16(round, r[q]));
        }
    }
}

/* For each row tile of A[i0:i1, kb:kb+kc], the k (relative to kb) where some row of the tile
 * is non-zero: list[tile * kc ...], count[tile]. Input data such as images is mostly zeros
 * (MNIST: 81%; a tile of 8 images is zero at half the pixels). */
static void nonzero_k_lists(const kc_gemm_args *g, int64_t i0, int64_t i1, int kb, int kc,
                            int *list, int *count) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int step = sparse_rows(g);
    for (int64_t i = i0, t = 0; i < i1; i += step, t++) {
        int mr = (int)(i1 - i < step ? i1 - i : step), n = 0;
        int *out = list + t * kc;
        const float *a = g->a + i * g->a_rs + kb * g->a_cs;
        if (g->a_cs == 1) { /* rows: 16 k at a time, or-ed over the tile's rows */
            for (int k = 0; k < kc; k += 16) {
                __mmask16 in = (__mmask16)(kc - k >= 16 ? 0xFFFF : (1u << (kc - k)) - 1), any = 0;
                for (int r = 0; r < mr; r++)
                    any |= _mm512_mask_cmpneq_ps_mask(in, _mm512_maskz_loadu_ps(in, a + r * g->a_rs + k),
                                                      _mm512_setzero_ps());
                _mm512_mask_compressstoreu_epi32(out + n, any, _mm512_add_epi32(lane, _mm512_set1_epi32(k)));
                n += __builtin_popcount(any);
            }
        } else { /* columns: the tile's mr values at each k lie together */
            __mmask8 rows = (__mmask8)((1u << mr) - 1);
            for (int k = 0; k < kc; k++) { /* without a branch: zeros follow no pattern */
                out[n] = k;
                n += _mm256_mask_cmp_ps_mask(rows, _mm256_maskz_loadu_ps(rows, a + k * g->a_cs),
                                             _mm256_setzero_ps(), _CMP_NEQ_UQ) != 0;
            }
        }
        count[t] = n;
    }
}

/* One row of C (a single sample: predict's latency case): the row of A times B read row
 * after row, 256 columns at a time in 16 accumulators, so the weights stream through memory
 * in order. nv vectors of 16 columns, the last one masked. No epilogue: gemm_one_row adds the
 * blocks, the bias and the activation. */
static inline __attribute__((always_inline)) void row_chunk(const kc_gemm_args *g, int64_t j,
                                                            const int nv, __mmask16 last_mask,
                                                            const int round) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int v = 0; v < nv; v++) acc[v] = _mm512_setzero_ps();
    for (int k = 0; k < g->k; k++) {
        if (g->a_sparse && g->a[k * g->a_cs] == 0.0f) continue; /* a zero term: same bits */
        __m512 a = _mm512_set1_ps(g->a[k * g->a_cs]);
        const float *brow = g->b + k * g->b_rs + j;
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++)
            acc[v] = _mm512_fmadd_ps(a, maybe_round_bf16(round, v == nv - 1
                                                    ? _mm512_maskz_loadu_ps(last_mask, brow + 16 * v)
                                                    : _mm512_loadu_ps(brow + 16 * v)),
                                     acc[v]);
    }
#pragma GCC unroll 16
    for (int v = 0; v < nv; v++)
        _mm512_mask_storeu_ps(g->c + j + 16 * v, v == nv - 1 ? last_mask : 0xFFFF, acc[v]);
}

/* with g->bf16 (gemm_bf16_as_fp32: A already rounded), B rounded to bf16 as it is read */
static void gemm_row_avx512(const kc_gemm_args *g) {
    int64_t j = 0;
    if (g->bf16) {
        for (; j + 256 <= g->n; j += 256) row_chunk(g, j, 16, 0xFFFF, 1);
        for (; j < g->n; j += 16) {
            int64_t left = g->n - j;
            row_chunk(g, j, 1, (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1), 1);
        }
        return;
    }
    for (; j + 256 <= g->n; j += 256) row_chunk(g, j, 16, 0xFFFF, 0);
    for (; j < g->n; j += 16) { /* the tail, 16 columns at a time */
        int64_t left = g->n - j;
        row_chunk(g, j, 1, (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1), 0);
    }
}


/* B[kb:kb+kc, j:j+nr] (nr <= 32) into rows of 32 floats, zero past nr. Where B lies, the rows
 * of a wide B are a power of two apart and thrash a few L1 sets while a panel is reused for
 * every row tile; packed, they are contiguous and need no masks. With g->bf16 (set here only
 * by gemm_bf16_as_fp32) each value is rounded to bf16 on the way. */
static void pack_panel(const kc_gemm_args *g, float *packed, int kb, int kc, int64_t j, int nr) {
    const float *src = g->b + kb * g->b_rs + j * g->b_cs;
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    const int rb = g->bf16;
    if (g->b_cs == 1) {
        for (int k = 0; k < kc; k++) {
            _mm512_store_ps(packed + k * NR, maybe_round_bf16(rb, _mm512_maskz_loadu_ps(m0, src + k * g->b_rs)));
            _mm512_store_ps(packed + k * NR + 16,
                            maybe_round_bf16(rb, _mm512_maskz_loadu_ps(m1, src + k * g->b_rs + 16)));
        }
    } else if (g->b_rs == 1) { /* transposed B: 16 x 16 blocks transposed in registers */
        pack_transposed(packed, src, g->b_cs, kc, nr, rb);
    } else { /* general strides: 32 columns gathered per k */
        const __m512i lanes = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32((int)g->b_cs));
        const float *src_hi = src + 16 * g->b_cs;
        for (int k = 0; k < kc; k++) {
            _mm512_store_ps(packed + k * NR, maybe_round_bf16(rb, _mm512_mask_i32gather_ps(
                _mm512_setzero_ps(), m0, lanes, src + k * g->b_rs, 4)));
            _mm512_store_ps(packed + k * NR + 16, m1 ? maybe_round_bf16(rb, _mm512_mask_i32gather_ps(
                _mm512_setzero_ps(), m1, lanes, src_hi + k * g->b_rs, 4)) : _mm512_setzero_ps());
        }
    }
}

/* Every panel of B[kb:kb+kc, j0:j1], panel p at dst + p * stride: row-major B is read row
 * after row (long runs the prefetchers follow, where one panel at a time reads 128 bytes per
 * row of B) */
static void pack_panels(const kc_gemm_args *g, float *dst, int64_t stride, int kb, int kc,
                        int64_t j0, int64_t j1) {
    int64_t panels = (j1 - j0 + NR - 1) / NR;
    if (g->b_cs != 1) {
        for (int64_t p = 0; p < panels; p++) {
            int64_t j = j0 + p * NR;
            pack_panel(g, dst + p * stride, kb, kc, j, (int)(j1 - j < NR ? j1 - j : NR));
        }
        return;
    }
    int nr_last = (int)(j1 - j0 - (panels - 1) * NR);
    __mmask16 m0 = (__mmask16)(nr_last >= 16 ? 0xFFFF : (1u << nr_last) - 1);
    __mmask16 m1 = (__mmask16)(nr_last >= 32 ? 0xFFFF : nr_last > 16 ? (1u << (nr_last - 16)) - 1 : 0);
    for (int k = 0; k < kc; k++) {
        const float *src = g->b + (kb + k) * g->b_rs + j0;
        float *out = dst + k * NR;
        if (g->bf16) { /* the same, each value rounded to bf16 */
            for (int64_t p = 0; p + 1 < panels; p++) {
                _mm512_store_ps(out + p * stride, round_bf16_ps(_mm512_loadu_ps(src + p * NR)));
                _mm512_store_ps(out + p * stride + 16, round_bf16_ps(_mm512_loadu_ps(src + p * NR + 16)));
            }
            _mm512_store_ps(out + (panels - 1) * stride,
                            round_bf16_ps(_mm512_maskz_loadu_ps(m0, src + (panels - 1) * NR)));
            _mm512_store_ps(out + (panels - 1) * stride + 16,
                            round_bf16_ps(_mm512_maskz_loadu_ps(m1, src + (panels - 1) * NR + 16)));
            continue;
        }
        for (int64_t p = 0; p + 1 < panels; p++) {
            _mm512_store_ps(out + p * stride, _mm512_loadu_ps(src + p * NR));
            _mm512_store_ps(out + p * stride + 16, _mm512_loadu_ps(src + p * NR + 16));
        }
        _mm512_store_ps(out + (panels - 1) * stride, _mm512_maskz_loadu_ps(m0, src + (panels - 1) * NR));
        _mm512_store_ps(out + (panels - 1) * stride + 16,
                        _mm512_maskz_loadu_ps(m1, src + (panels - 1) * NR + 16));
    }
}

/* A per-thread buffer that grows to the largest size asked of it on that thread */
typedef struct {
    float *p;
    int64_t capacity;
} grow_buf;

static float *grow(grow_buf *buf, int64_t floats) {
    if (floats > buf->capacity) {
        float *bigger = kc_alloc(sizeof(float) * (size_t)floats);
        if (!bigger) return NULL;
        kc_free(buf->p);
        buf->p = bigger;
        buf->capacity = floats;
    }
    return buf->p;
}

/* gemm_blocks_avx512's buffers, per thread, freed when the thread ends (the pool's workers end
 * when the thread count changes) */
typedef struct {
    grow_buf packed_b, scratch, a_bf16;
} thread_bufs;

static pthread_key_t bufs_key;
static pthread_once_t bufs_once = PTHREAD_ONCE_INIT;

static void free_bufs(void *p) {
    thread_bufs *t = p;
    kc_free(t->packed_b.p);
    kc_free(t->scratch.p);
    kc_free(t->a_bf16.p);
    free(t);
}

static void make_bufs_key(void) { pthread_key_create(&bufs_key, free_bufs); }

static thread_bufs *my_bufs(void) {
    static _Thread_local thread_bufs *mine;
    if (!mine) {
        pthread_once(&bufs_once, make_bufs_key);
        if ((mine = calloc(1, sizeof *mine)) && pthread_setspecific(bufs_key, mine)) {
            free(mine);
            mine = NULL;
        }
    }
    return mine;
}

/* One thread's block of C: rows [i0, i1), columns [j0, j1). */
static void gemm_chunk_avx512(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                              int64_t j1) {
    static _Thread_local float packed_tls[KC * NR] __attribute__((aligned(64)));
    static _Thread_local float packed_hi_tls[KC * NR] __attribute__((aligned(64)));
    static _Thread_local int nz_list_tls[MC / SPARSE_MR * KC], nz_count_tls[MC / SPARSE_MR];
    KC_TLS_ADDR(float, packed, packed_tls);
    KC_TLS_ADDR(float, packed_hi, packed_hi_tls);
    KC_TLS_ADDR(int, nz_list, nz_list_tls);
    KC_TLS_ADDR(int, nz_count, nz_count_tls);
    const int step = sparse_rows(g);
    const int sparse = g->a_sparse;
    const kc_gemm_args *ex = g->dropout_rate > 0.0f || g->gate ? g : NULL;
    int depth = k_block_depth(g->k);
    for (int kb = 0; kb < g->k; kb += depth) {
        int kc = g->k - kb < depth ? g->k - kb : depth;
        int last = kb + kc >= g->k, load_c = g->accumulate || kb > 0;
        if (sparse) nonzero_k_lists(g, i0, i1, kb, kc, nz_list, nz_count);
        for (int64_t j = j0, width; j < j1; j += width) {
            if (sparse && use_wide(step, kc) && j + NR < j1) { /* two panels: tile_wide */
                int nr_hi = (int)(j1 - j - NR < NR ? j1 - j - NR : NR);
                __mmask16 m[4] = {0xFFFF, 0xFFFF,
                                  (__mmask16)(nr_hi >= 16 ? 0xFFFF : (1u << nr_hi) - 1),
                                  (__mmask16)(nr_hi >= 32 ? 0xFFFF
                                              : nr_hi > 16 ? (1u << (nr_hi - 16)) - 1 : 0)};
                pack_panel(g, packed, kb, kc, j, NR);
                pack_panel(g, packed_hi, kb, kc, j + NR, nr_hi);
                for (int64_t i = i0, t = 0; i < i1; i += step, t++)
                    tile_wide_dispatch((int)(i1 - i < step ? i1 - i : step), nz_count[t],
                                       nz_list + t * kc, g->a + i * g->a_rs + kb * g->a_cs,
                                       g->a_rs, g->a_cs, packed, packed_hi, m,
                                       g->c + i * g->ldc + j, g->ldc, load_c, last,
                                       g->bias ? g->bias + j : NULL, g->relu, ex, i, j);
                width = 2 * NR;
                continue;
            }
            width = NR;
            int nr = (int)(j1 - j < NR ? j1 - j : NR);
            __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
            __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
            /* with a single row tile a panel is not reused: B is read where it lies */
            const float *b = packed;
            int64_t b_rs = NR;
            if (g->b_cs == 1 && i1 - i0 <= MR && !g->bf16) {
                b = g->b + kb * g->b_rs + j;
                b_rs = g->b_rs;
            } else {
                pack_panel(g, packed, kb, kc, j, nr);
            }
            for (int64_t i = i0, t = 0; i < i1; i += step, t++) {
                int mr = (int)(i1 - i < step ? i1 - i : step);
                tile_dispatch(mr, sparse ? nz_count[t] : kc, sparse ? nz_list + t * kc : NULL,
                              g->a + i * g->a_rs + kb * g->a_cs, g->a_rs, g->a_cs, b, b_rs,
                              b == packed, m0, m1, g->c + i * g->ldc + j, g->ldc, load_c, last,
                              g->bias ? g->bias + j : NULL, g->relu, ex, i, j);
            }
        }
    }
}
#define ROW_BLOCK 32 /* rows handed to block_done at a time: 32 KB of 256 columns */

/* C[i0:i1, j0:j1], finished ROW_BLOCK rows at a time and handed to g->block_done while they
 * are still in this core's cache: B's panels j0..j1 are packed once (every K block) and
 * reused by each block of rows. Each element is summed as in gemm_chunk_avx512, so the bits
 * are the same. With g->block_scratch the blocks are kept in a per-thread buffer instead of
 * C. Returns 0 (nothing done) when a buffer cannot be had. */
static int gemm_blocks_avx512(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                              int64_t j1, uint64_t product) {
    static _Thread_local uint64_t packed_for; /* the product whose B is in packed_b */
    thread_bufs *bufs = my_bufs();
    if (!bufs) return 0;
    static _Thread_local int nz_list_tls[ROW_BLOCK / SPARSE_MR * KC], nz_count_tls[ROW_BLOCK / SPARSE_MR];
    KC_TLS_ADDR(int, nz_list, nz_list_tls);
    KC_TLS_ADDR(int, nz_count, nz_count_tls);
    const int step = sparse_rows(g), depth = k_block_depth(g->k);
    const int64_t panels = (j1 - j0 + NR - 1) / NR, panel_floats = (int64_t)depth * NR;
    const int blocks = (g->k + depth - 1) / depth, to_scratch = g->block_scratch && !g->accumulate;
    /* sized for all of B's columns, not this part's: how a product is split between threads
     * varies with the machine's load, and the buffers must not grow in a training loop */
    const int64_t all_panels = (g->n + NR - 1) / NR;
    float *bp = grow(&bufs->packed_b, blocks * all_panels * panel_floats);
    float *out = to_scratch ? grow(&bufs->scratch, ROW_BLOCK * g->n) : NULL;
    if (!bp || (to_scratch && !out)) return 0;
    if (packed_for != product) /* once per thread and product */
        for (int kb = 0, blk = 0; kb < g->k; kb += depth, blk++)
            pack_panels(g, bp + blk * panels * panel_floats, panel_floats, kb,
                        g->k - kb < depth ? g->k - kb : depth, j0, j1);
    packed_for = product;
    for (int64_t r0 = i0; r0 < i1; r0 += ROW_BLOCK) {
        int64_t r1 = i1 - r0 < ROW_BLOCK ? i1 : r0 + ROW_BLOCK;
        /* C(r0 + i, j0 + j) at c[i * ldc + j] */
        float *c = out ? out : g->c + r0 * g->ldc + j0;
        int64_t ldc = out ? j1 - j0 : g->ldc;
        for (int kb = 0, blk = 0; kb < g->k; kb += depth, blk++) {
            int kc = g->k - kb < depth ? g->k - kb : depth;
            int last = kb + kc >= g->k, load_c = g->accumulate || kb > 0;
            if (g->a_sparse) nonzero_k_lists(g, r0, r1, kb, kc, nz_list, nz_count);
            for (int64_t p = 0, width; p < panels; p += width) {
                int64_t j = p * NR;
                const float *b = bp + (blk * panels + p) * panel_floats;
                if (g->a_sparse && use_wide(step, kc) && p + 1 < panels) { /* tile_wide */
                    int nr_hi = (int)(j1 - j0 - j - NR < NR ? j1 - j0 - j - NR : NR);
                    __mmask16 m[4] = {0xFFFF, 0xFFFF,
                                      (__mmask16)(nr_hi >= 16 ? 0xFFFF : (1u << nr_hi) - 1),
                                      (__mmask16)(nr_hi >= 32 ? 0xFFFF
                                                  : nr_hi > 16 ? (1u << (nr_hi - 16)) - 1 : 0)};
                    for (int64_t i = r0, t = 0; i < r1; i += step, t++)
                        tile_wide_dispatch((int)(r1 - i < step ? r1 - i : step), nz_count[t],
                                           nz_list + t * kc, g->a + i * g->a_rs + kb * g->a_cs,
                                           g->a_rs, g->a_cs, b, b + panel_floats, m,
                                           c + (i - r0) * ldc + j, ldc, load_c, last,
                                           g->bias ? g->bias + j0 + j : NULL, g->relu, NULL, 0, 0);
                    width = 2;
                    continue;
                }
                width = 1;
                int nr = (int)(j1 - j0 - j < NR ? j1 - j0 - j : NR);
                __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
                __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
                for (int64_t i = r0, t = 0; i < r1; i += step, t++) {
                    int mr = (int)(r1 - i < step ? r1 - i : step);
                    tile_dispatch(mr, g->a_sparse ? nz_count[t] : kc,
                                  g->a_sparse ? nz_list + t * kc : NULL,
                                  g->a + i * g->a_rs + kb * g->a_cs, g->a_rs, g->a_cs, b, NR, 1,
                                  m0, m1, c + (i - r0) * ldc + j, ldc, load_c, last,
                                  g->bias ? g->bias + j0 + j : NULL, g->relu, NULL, 0, 0);
                }
            }
        }
        g->block_done(g->block_arg, r0, r1, j0, j1, c, ldc);
    }
    return 1;
}

/* Rows in chunks of MC, so the per-tile lists of non-zero k have a fixed home. */
static void gemm_block_avx512(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                              int64_t j1) {
    for (int64_t i = i0; i < i1; i += MC) gemm_chunk_avx512(g, i, i1 - i < MC ? i1 : i + MC, j0, j1);
}

/* Rows [i0, i1) of A (all k) rounded to bf16 into out: row-major A (a_cs == 1) as
 * out[i * k + kk], any other as columns, out[i + kk * m] (gemm_bf16_as_fp32) */
static void round_a_bf16(const kc_gemm_args *g, float *out, int64_t i0, int64_t i1) {
    const int64_t m = g->m, k = g->k;
    if (g->a_cs == 1) {
        for (int64_t i = i0; i < i1; i++)
            for (int64_t kk = 0; kk < k; kk += 16) {
                __mmask16 in = (__mmask16)(k - kk >= 16 ? 0xFFFF : (1u << (k - kk)) - 1);
                _mm512_mask_storeu_ps(out + i * k + kk, in,
                                      round_bf16_ps(_mm512_maskz_loadu_ps(in, g->a + i * g->a_rs + kk)));
            }
    } else if (g->a_rs == 1) {
        for (int64_t kk = 0; kk < k; kk++)
            for (int64_t i = i0; i < i1; i += 16) {
                __mmask16 in = (__mmask16)(i1 - i >= 16 ? 0xFFFF : (1u << (i1 - i)) - 1);
                _mm512_mask_storeu_ps(out + i + kk * m, in,
                                      round_bf16_ps(_mm512_maskz_loadu_ps(in, g->a + i + kk * g->a_cs)));
            }
    } else {
        for (int64_t kk = 0; kk < k; kk++)
            for (int64_t i = i0; i < i1; i++)
                out[i + kk * m] = _mm512_cvtss_f32(round_bf16_ps(_mm512_set1_ps(g->a[i * g->a_rs + kk * g->a_cs])));
    }
}
KC_TARGET_END

/* ---- bfloat16 products (Keras's mixed_bfloat16): A and B rounded to bf16, sums in fp32 ---- */
KC_TARGET_BEGIN(KC_TARGET_BF16_FEATURES)

/* 32 floats (a tail of n < 32 zero-filled) to 32 bf16, round to nearest even: 16 pairs */
static inline __m512i bf16_pairs(const float *x, int n) {
    __mmask16 lo = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    __mmask16 hi = (__mmask16)(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
    return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + 16),
                                        _mm512_maskz_loadu_ps(lo, x));
}

/* A (m, k) as bf16, row-major, kp = ceil(k / 2) pairs per row (zero past k): out[i * kp + p]
 * holds A(i, 2p) and A(i, 2p + 1). Row-major A converts row by row; transposed A (a_rs == 1)
 * goes through 16 x 16 register transposes. */
static void convert_a_bf16(const kc_gemm_args *g, int64_t i0, int64_t i1, uint32_t *out,
                           int64_t kp) {
    if (g->a_cs == 1) {
        for (int64_t i = i0; i < i1; i++)
            for (int64_t k = 0; k < g->k; k += 32) {
                int n = (int)(g->k - k < 32 ? g->k - k : 32);
                _mm512_mask_storeu_epi32(out + (i - i0) * kp + k / 2,
                                         (__mmask16)((1u << ((n + 1) / 2)) - 1),
                                         bf16_pairs(g->a + i * g->a_rs + k * g->a_cs, n));
            }
        return;
    }
    /* A(i, k) = a[i + k * a_cs]: blocks of 16 i by 32 k, each k row read along i */
    for (int64_t i = i0; i < i1; i += 16) {
        int ni = (int)(i1 - i < 16 ? i1 - i : 16);
        __mmask16 im = (__mmask16)(ni >= 16 ? 0xFFFF : (1u << ni) - 1);
        for (int64_t k = 0; k < g->k; k += 32) {
            int nk = (int)(g->k - k < 32 ? g->k - k : 32);
            __m512 lo[16], hi[16];
            for (int q = 0; q < 16; q++) {
                lo[q] = q < nk ? _mm512_maskz_loadu_ps(im, g->a + i + (k + q) * g->a_cs) : _mm512_setzero_ps();
                hi[q] = 16 + q < nk ? _mm512_maskz_loadu_ps(im, g->a + i + (k + 16 + q) * g->a_cs) : _mm512_setzero_ps();
            }
            transpose16(lo); /* lo[r] = A(i + r, k .. k + 15) */
            transpose16(hi);
            __mmask16 pm = (__mmask16)((1u << ((nk + 1) / 2)) - 1);
            for (int r = 0; r < ni; r++)
                _mm512_mask_storeu_epi32(out + (i - i0 + r) * kp + k / 2, pm,
                                         (__m512i)_mm512_cvtne2ps_pbh(hi[r], lo[r]));
        }
    }
}

/* kc rows of nr floats (row r at src + r * rs) to bf16 pairs: out[p * NR + j] holds B(2p, j)
 * and B(2p + 1, j); an odd last row is paired with zero, and zero pairs follow to a whole AMX
 * tile (16 pairs) */
static void rows_to_bf16_pairs(const float *src, int64_t rs, int kc, int nr, uint32_t *out) {
    const __m512i lo_idx = _mm512_setr_epi32(0 | 32 << 16, 1 | 33 << 16, 2 | 34 << 16, 3 | 35 << 16,
                                             4 | 36 << 16, 5 | 37 << 16, 6 | 38 << 16, 7 | 39 << 16,
                                             8 | 40 << 16, 9 | 41 << 16, 10 | 42 << 16, 11 | 43 << 16,
                                             12 | 44 << 16, 13 | 45 << 16, 14 | 46 << 16, 15 | 47 << 16);
    const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
    int p = 0;
    for (; 2 * p < kc; p++) {
        __m512i r0 = bf16_pairs(src + 2 * p * rs, nr);
        __m512i r1 = 2 * p + 1 < kc ? bf16_pairs(src + (2 * p + 1) * rs, nr) : _mm512_setzero_si512();
        _mm512_store_si512(out + p * NR, _mm512_permutex2var_epi16(r0, lo_idx, r1));
        _mm512_store_si512(out + p * NR + 16, _mm512_permutex2var_epi16(r0, hi_idx, r1));
    }
    for (; p % 16; p++) {
        _mm512_store_si512(out + p * NR, _mm512_setzero_si512());
        _mm512_store_si512(out + p * NR + 16, _mm512_setzero_si512());
    }
}

/* For each 8-row tile of the converted A, the pairs p (of kps from p0) non-zero in some row */
static void nonzero_pair_lists(const uint32_t *abf, int64_t rows, int64_t kp, int p0, int kps,
                               int *list, int *count) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t i = 0, t = 0; i < rows; i += MR, t++) {
        int mr = (int)(rows - i < MR ? rows - i : MR), n = 0;
        for (int p = 0; p < kps; p += 16) {
            __mmask16 in = (__mmask16)(kps - p >= 16 ? 0xFFFF : (1u << (kps - p)) - 1), any = 0;
            for (int r = 0; r < mr; r++) /* +0 and -0 pairs are zero too */
                any |= _mm512_mask_test_epi32_mask(
                    in, _mm512_maskz_loadu_epi32(in, abf + (i + r) * kp + p0 + p),
                    _mm512_set1_epi32(0x7FFF7FFF));
            _mm512_mask_compressstoreu_epi32(list + t * kps + n, any,
                                             _mm512_add_epi32(lane, _mm512_set1_epi32(p)));
            n += __builtin_popcount(any);
        }
        count[t] = n;
    }
}

/* One row of a 32-wide block of C, summed in v0, v1: (+ C), then with last + bias, relu and
 * the rest of ex's epilogue, as tile() does; stored masked */
static inline __attribute__((always_inline)) void store_row32(
    float *cr, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1, int load_c, int last,
    __m512 bias0, __m512 bias1, int relu, const kc_gemm_args *ex, int64_t ci, int64_t cj) {
    if (load_c) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
    }
    if (last) {
        v0 = _mm512_add_ps(v0, bias0);
        v1 = _mm512_add_ps(v1, bias1);
        if (relu) {
            v0 = _mm512_max_ps(_mm512_setzero_ps(), v0);
            v1 = _mm512_max_ps(_mm512_setzero_ps(), v1);
        }
        if (ex) {
            v0 = epilogue_extra(ex, ci, cj, v0, m0);
            v1 = epilogue_extra(ex, ci, cj + 16, v1, m1);
        }
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
}

/* The bf16 twin of tile(): 8 rows by 32 columns, pairs of k per dot-product instruction */
static inline __attribute__((always_inline)) void tile_bf16(
    const int mr, int kps, const int *pidx, const uint32_t *a, int64_t lda, const uint32_t *b,
    __mmask16 m0, __mmask16 m1, float *c, int64_t ldc, int load_c, int last, const float *bias,
    int relu, const kc_gemm_args *ex, int64_t ci, int64_t cj) {
    __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    for (int t = 0; t < kps; t++) {
        const int p = pidx ? pidx[t] : t;
        __m512bh b0 = (__m512bh)_mm512_load_si512(b + p * NR);
        __m512bh b1 = (__m512bh)_mm512_load_si512(b + p * NR + 16);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r * lda + p]);
            acc0[r] = _mm512_dpbf16_ps(acc0[r], ar, b0);
            acc1[r] = _mm512_dpbf16_ps(acc1[r], ar, b1);
        }
    }
    __m512 bias0 = last && bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = last && bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        store_row32(c + r * ldc, acc0[r], acc1[r], m0, m1, load_c, last, bias0, bias1, relu, ex,
                    ci + r, cj);
}

static void tile_bf16_dispatch(int mr, int kps, const int *pidx, const uint32_t *a, int64_t lda,
                               const uint32_t *b, __mmask16 m0, __mmask16 m1, float *c,
                               int64_t ldc, int load_c, int last, const float *bias, int relu,
                               const kc_gemm_args *ex, int64_t ci, int64_t cj) {
#define TB(MR_) tile_bf16(MR_, kps, pidx, a, lda, b, m0, m1, c, ldc, load_c, last, bias, relu, ex, ci, cj)
    switch (mr) {
    case 8: TB(8); break;
    case 7: TB(7); break;
    case 6: TB(6); break;
    case 5: TB(5); break;
    case 4: TB(4); break;
    case 3: TB(3); break;
    case 2: TB(2); break;
    default: TB(1); break;
    }
#undef TB
}

/* AMX: 32 rows by 32 columns of C per block, four 16 x 16 accumulator tiles (tmm4-7) fed by
 * two A tiles (tmm0-1: 16 rows by 16 pairs of k) and two B tiles (tmm2-3: 16 pairs by 16
 * columns, pairs interleaved as TDPBF16PS wants them, which is rows_to_bf16_pairs's layout).
 * Linux grants a process the AMX state on request (ARCH_REQ_XCOMP_PERM); each thread loads
 * the tile configuration once. */
#include <sys/syscall.h>
#include <unistd.h>
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed, aligned(64))) amx_config;

static int amx_granted;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static void amx_request(void) {
    amx_granted = kc_isa_has_amx_bf16() &&
                  syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}

static int amx_ready(void) {
    static _Thread_local int configured;
    if (configured) return configured > 0;
    pthread_once(&amx_once, amx_request);
    if (!amx_granted || getenv("KERAC_NO_AMX")) {
        configured = -1;
        return 0;
    }
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    configured = 1;
    return 1;
}

/* C[i:i+mr, j:j+32 masked] (+)= A B over kps pairs: a = the block's first row of converted A
 * (lda pairs per row, 32 rows readable, pairs past kps multiplied by zero pairs of b), b the
 * converted panel (zero past kps, to a whole tile) */
static void amx_block(int mr, int kps, const uint32_t *a, int64_t lda, const uint32_t *b,
                      __mmask16 m0, __mmask16 m1, float *c, int64_t ldc, int load_c, int last,
                      const float *bias, int relu, const kc_gemm_args *ex, int64_t ci, int64_t cj) {
    float out[32 * 32] __attribute__((aligned(64)));
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    for (int p = 0; p < kps; p += 16) {
        _tile_loadd(0, a + p, lda * 4);
        _tile_loadd(1, a + 16 * lda + p, lda * 4);
        _tile_loadd(2, b + p * NR, NR * 4);
        _tile_loadd(3, b + p * NR + 16, NR * 4);
        _tile_dpbf16ps(4, 0, 2);
        _tile_dpbf16ps(5, 0, 3);
        _tile_dpbf16ps(6, 1, 2);
        _tile_dpbf16ps(7, 1, 3);
    }
    _tile_stored(4, out, 32 * 4);
    _tile_stored(5, out + 16, 32 * 4);
    _tile_stored(6, out + 16 * 32, 32 * 4);
    _tile_stored(7, out + 16 * 32 + 16, 32 * 4);
    __m512 bias0 = last && bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = last && bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < mr; r++)
        store_row32(c + r * ldc, _mm512_load_ps(out + r * 32), _mm512_load_ps(out + r * 32 + 16),
                    m0, m1, load_c, last, bias0, bias1, relu, ex, ci + r, cj);
}

/* One part of a bf16 product: C[i0:i1, j0:j1]. A's rows converted once, each B panel packed
 * and converted once per K block; K blocks of k_block_depth, added in order. 0 when a buffer
 * cannot be had. */
static int gemm_bf16_part(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    static _Thread_local float packed_tls[KC * NR] __attribute__((aligned(64)));
    static _Thread_local uint32_t bpairs_tls[(KC / 2 + 16) * NR] __attribute__((aligned(64)));
    KC_TLS_ADDR(float, packed, packed_tls);
    KC_TLS_ADDR(uint32_t, bpairs, bpairs_tls);
    thread_bufs *bufs = my_bufs();
    if (!bufs) return 0;
    const int amx = amx_ready();
    /* with AMX, rows to a multiple of 32 and 16 spare pairs per row, zero: tiles read whole */
    const int64_t kp = (g->k + 1) / 2 + (amx ? 16 : 0), rows = i1 - i0,
                  tiles = (rows + MR - 1) / MR, rows_alloc = amx ? (rows + 31) / 32 * 32 : rows;
    int depth = k_block_depth(g->k);
    depth += depth & 1; /* whole pairs per block */
    const int64_t list_floats = g->a_sparse ? (tiles * (depth / 2) * (int64_t)sizeof(int) + 2 * tiles * sizeof(int) + 3) / 4 : 0;
    float *buf = grow(&bufs->scratch, rows_alloc * kp + list_floats + 16);
    if (!buf) return 0;
    uint32_t *abf = (uint32_t *)buf;
    int *list = (int *)(buf + rows_alloc * kp), *count = list + tiles * (depth / 2);
    if (amx) memset(abf, 0, sizeof(uint32_t) * (size_t)(rows_alloc * kp));
    convert_a_bf16(g, i0, i1, abf, kp);
    const kc_gemm_args *ex = g->dropout_rate > 0.0f || g->gate ? g : NULL;
    for (int kb = 0; kb < g->k; kb += depth) {
        int kc = g->k - kb < depth ? g->k - kb : depth, kps = (kc + 1) / 2;
        int last = kb + kc >= g->k, load_c = g->accumulate || kb > 0;
        if (g->a_sparse && !amx) nonzero_pair_lists(abf, rows, kp, kb / 2, kps, list, count);
        for (int64_t j = j0; j < j1; j += NR) {
            int nr = (int)(j1 - j < NR ? j1 - j : NR);
            __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
            __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
            if (g->b_cs == 1) { /* straight from B's rows */
                rows_to_bf16_pairs(g->b + kb * g->b_rs + j, g->b_rs, kc, nr, bpairs);
            } else {
                pack_panel(g, packed, kb, kc, j, nr);
                rows_to_bf16_pairs(packed, NR, kc, NR, bpairs);
            }
            if (amx) {
                for (int64_t i = i0; i < i1; i += 32)
                    amx_block((int)(i1 - i < 32 ? i1 - i : 32), kps, abf + (i - i0) * kp + kb / 2,
                              kp, bpairs, m0, m1, g->c + i * g->ldc + j, g->ldc, load_c, last,
                              g->bias ? g->bias + j : NULL, g->relu, ex, i, j);
                continue;
            }
            for (int64_t i = i0, t = 0; i < i1; i += MR, t++)
                tile_bf16_dispatch((int)(i1 - i < MR ? i1 - i : MR),
                                   g->a_sparse ? count[t] : kps, g->a_sparse ? list + t * kps : NULL,
                                   abf + (i - i0) * kp + kb / 2, kp, bpairs, m0, m1,
                                   g->c + i * g->ldc + j, g->ldc, load_c, last,
                                   g->bias ? g->bias + j : NULL, g->relu, ex, i, j);
        }
    }
    return 1;
}
KC_TARGET_END
#endif /* KC_X86 */

/* Whether bf16 products run on bf16 units: AMX where the kernel grants it (and KERAC_NO_AMX is
 * not set), else AVX512-BF16's VDPBF16PS (measured on Zen 4: 25-30% faster per epoch than
 * fp32, and than fp32 products of the rounded operands). KERAC_BF16_FP32=1 asks for
 * gemm_bf16_as_fp32 instead (fp32 sums of exact products: a reference, and where VDPBF16PS
 * would be slower). Decided once per process. */
static int bf16_units;
static pthread_once_t bf16_units_once = PTHREAD_ONCE_INIT;
static void bf16_units_decide(void) {
    const char *env = getenv("KERAC_BF16_FP32");
    bf16_units = !(env && *env && strcmp(env, "0") != 0);
}

int kc_gemm_bf16_native(void) {
    if (!kc_isa_has_avx512_bf16()) return 0;
    pthread_once(&bf16_units_once, bf16_units_decide);
    return bf16_units;
}


/* The epilogue's dropout and gate on C(i, j) = v: epilogue_extra one value at a time */
static float epilogue_extra_scalar(const kc_gemm_args *g, int64_t i, int64_t j, float v) {
    if (g->dropout_rate > 0.0f)
        v = kc_dropout_hash((uint32_t)(i * g->ldc + j), kc_dropout_key32(g->dropout_key)) >=
                    kc_dropout_threshold(g->dropout_rate)
                ? v * (1.0f / (1.0f - g->dropout_rate))
                : 0.0f;
    if (g->gate) v = g->gate[i * g->ldc + j] > 0.0f ? v * g->gate_scale : 0.0f;
    return v;
}

/* ---- the AVX2+FMA kernels, for x86-64 CPUs without AVX-512: 6x16 register tiles (12
 * accumulators) over B panels of 16 columns packed to fit L1, zero k of sparse A skipped
 * through per-tile lists. The same arithmetic as the AVX-512 kernels (each K block of
 * k_block_depth summed from zero by FMAs in k order, then + C, + bias, relu, the epilogue),
 * so the same bits. Compiled for AVX2 whatever the build's flags, called only where kc_isa()
 * is avx2. ---- */
#ifdef KC_X86
KC_TARGET_BEGIN(KC_TARGET_AVX2_FEATURES)
#define MR2 6   /* rows of C per register tile */
#define NR2 16  /* columns: two 8-float vectors */
#define MC2 384 /* rows per chunk: the row tiles whose non-zero k lists are kept */

/* epilogue_extra on C(i, j .. j + 7): the same arithmetic (an unsigned >= as max == self) */
static inline __m256 epilogue_extra_avx2(const kc_gemm_args *g, int64_t i, int64_t j, __m256 v) {
    if (g->dropout_rate > 0.0f) {
        __m256i h = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(i * g->ldc + j)),
                                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        h = _mm256_add_epi32(_mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x9e3779b9u)),
                             _mm256_set1_epi32((int)kc_dropout_key32(g->dropout_key)));
        h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
        h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x7feb352du));
        h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 15));
        h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x846ca68bu));
        h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
        __m256i thr = _mm256_set1_epi32((int)kc_dropout_threshold(g->dropout_rate));
        __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_max_epu32(h, thr), h));
        v = _mm256_and_ps(keep, _mm256_mul_ps(v, _mm256_set1_ps(1.0f / (1.0f - g->dropout_rate))));
    }
    if (g->gate) {
        __m256 open = _mm256_cmp_ps(_mm256_loadu_ps(g->gate + i * g->ldc + j),
                                    _mm256_setzero_ps(), _CMP_GT_OQ);
        v = _mm256_and_ps(open, _mm256_mul_ps(v, _mm256_set1_ps(g->gate_scale)));
    }
    return v;
}

/* The end of a tile narrower than 16 columns: C[0:mr, 0:nc] from the sums v, as tile_avx2 */
static __attribute__((noinline)) void store_tail_avx2(int mr, float v[MR2][NR2], float *c,
                                                      int64_t ldc, int nc, int load_c, int last,
                                                      const float *bias, int relu,
                                                      const kc_gemm_args *ex, int64_t ci,
                                                      int64_t cj) {
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nc; j++) {
            float *cr = c + r * ldc, x = load_c ? v[r][j] + cr[j] : v[r][j];
            if (last) {
                x = x + (bias ? bias[j] : 0.0f);
                if (relu) x = 0.0f > x ? 0.0f : x;
                if (ex) x = epilogue_extra_scalar(ex, ci + r, cj + j, x);
            }
            cr[j] = x;
        }
}

/* The end of a whole tile with ex's epilogue (dropout, gate): C[0:mr, 0:16] from the sums v,
 * as tile_avx2 stores them. Out of line, so that no call (epilogue_extra_avx2) follows the
 * accumulators' last use in tile_avx2: with 16 vector registers GCC otherwise kept them on
 * the stack through the whole k loop (an FMA with a memory operand and a store per term). */
static __attribute__((noinline)) void store_ex_avx2(int mr, float v[MR2][NR2], float *c,
                                                    int64_t ldc, int load_c, int last,
                                                    const float *bias, int relu,
                                                    const kc_gemm_args *ex, int64_t ci,
                                                    int64_t cj) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 bias0 = zero, bias1 = zero;
    if (last && bias) {
        bias0 = _mm256_loadu_ps(bias);
        bias1 = _mm256_loadu_ps(bias + 8);
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m256 v0 = _mm256_loadu_ps(v[r]), v1 = _mm256_loadu_ps(v[r] + 8);
        if (load_c) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
        }
        if (last) {
            v0 = _mm256_add_ps(v0, bias0);
            v1 = _mm256_add_ps(v1, bias1);
            if (relu) {
                v0 = _mm256_max_ps(zero, v0);
                v1 = _mm256_max_ps(zero, v1);
            }
            v0 = epilogue_extra_avx2(ex, ci + r, cj, v0);
            v1 = epilogue_extra_avx2(ex, ci + r, cj + 8, v1);
        }
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
    }
}

/* C[0:mr, 0:nc] (+)= A[0:mr, k in kidx or 0:kc] P[0:kc, 0:16], P a packed panel (16 floats a
 * row, zero past nc); with last, + bias, relu and ex's epilogue (the tile is C(ci.., cj..)) */
static inline __attribute__((always_inline)) void tile_avx2(
    const int mr, int kc, const int *kidx, const float *a, const int64_t a_rs,
    const int64_t a_cs, const float *p, float *c, int64_t ldc, int nc, int load_c, int last,
    const float *bias, int relu, const kc_gemm_args *ex, int64_t ci, int64_t cj) {
    __m256 acc0[MR2], acc1[MR2];
    if (mr == MR2) {
        /* the whole tile in 12 named accumulators: as arrays GCC kept some specialisations'
         * accumulators on the stack (a load and a store per FMA); the same FMAs in the same
         * order as the loop below */
        __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
               c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int t = 0; t < kc; t++) {
            const int k = kidx ? kidx[t] : t;
            const __m256 b0 = _mm256_load_ps(p + k * NR2), b1 = _mm256_load_ps(p + k * NR2 + 8);
            const float *ak = a + k * a_cs;
#define ROW2(R)                                                                            \
    {                                                                                      \
        const __m256 ar = _mm256_broadcast_ss(ak + R * a_rs);                              \
        c##R##0 = _mm256_fmadd_ps(ar, b0, c##R##0);                                        \
        c##R##1 = _mm256_fmadd_ps(ar, b1, c##R##1);                                        \
    }
            ROW2(0) ROW2(1) ROW2(2) ROW2(3) ROW2(4) ROW2(5)
#undef ROW2
        }
        acc0[0] = c00, acc1[0] = c01, acc0[1] = c10, acc1[1] = c11, acc0[2] = c20, acc1[2] = c21;
        acc0[3] = c30, acc1[3] = c31, acc0[4] = c40, acc1[4] = c41, acc0[5] = c50, acc1[5] = c51;
    } else {
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
        for (int t = 0; t < kc; t++) {
            const int k = kidx ? kidx[t] : t;
            const __m256 b0 = _mm256_load_ps(p + k * NR2), b1 = _mm256_load_ps(p + k * NR2 + 8);
            const float *ak = a + k * a_cs;
#pragma GCC unroll 6
            for (int r = 0; r < mr; r++) {
                const __m256 ar = _mm256_broadcast_ss(ak + r * a_rs);
                acc0[r] = _mm256_fmadd_ps(ar, b0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(ar, b1, acc1[r]);
            }
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    __m256 bias0 = zero, bias1 = zero;
    if (last && bias && nc == NR2) {
        bias0 = _mm256_loadu_ps(bias);
        bias1 = _mm256_loadu_ps(bias + 8);
    }
    if (nc < NR2 || (last && ex)) { /* a partial panel: one shared, out-of-line tail (GCC
                                     * spent minutes on a scalar epilogue inlined into every
                                     * specialisation); ex's epilogue: store_ex_avx2 */
        float v[MR2][NR2];
#pragma GCC unroll 6 /* constant indices: the accumulators stay registers, never memory */
        for (int r = 0; r < mr; r++) {
            _mm256_storeu_ps(v[r], acc0[r]);
            _mm256_storeu_ps(v[r] + 8, acc1[r]);
        }
        if (nc < NR2) store_tail_avx2(mr, v, c, ldc, nc, load_c, last, bias, relu, ex, ci, cj);
        else store_ex_avx2(mr, v, c, ldc, load_c, last, bias, relu, ex, ci, cj);
        return;
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m256 v0 = acc0[r], v1 = acc1[r];
        if (load_c) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
        }
        if (last) {
            v0 = _mm256_add_ps(v0, bias0);
            v1 = _mm256_add_ps(v1, bias1);
            if (relu) { /* max returns its second operand on NaN: NaN stays NaN */
                v0 = _mm256_max_ps(zero, v0);
                v1 = _mm256_max_ps(zero, v1);
            }
        }
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
    }
}

#define TILE2(MR_, K, A_RS, A_CS)                                                            \
    tile_avx2(MR_, kc, K, a, A_RS, A_CS, p, c, ldc, nc, load_c, last, bias, relu, ex, ci, cj)
#define TILE2_CASES(K, A_RS, A_CS)                                                           \
    switch (mr) {                                                                            \
    case 6: TILE2(6, K, A_RS, A_CS); break;                                                  \
    case 5: TILE2(5, K, A_RS, A_CS); break;                                                  \
    case 4: TILE2(4, K, A_RS, A_CS); break;                                                  \
    case 3: TILE2(3, K, A_RS, A_CS); break;                                                  \
    case 2: TILE2(2, K, A_RS, A_CS); break;                                                  \
    default: TILE2(1, K, A_RS, A_CS); break;                                                 \
    }
static void tile_avx2_dispatch(int mr, int kc, const int *kidx, const float *a, int64_t a_rs,
                               int64_t a_cs, const float *p, float *c, int64_t ldc, int nc,
                               int load_c, int last, const float *bias, int relu,
                               const kc_gemm_args *ex, int64_t ci, int64_t cj) {
    if (a_cs == 1) {
        if (kidx) TILE2_CASES(kidx, a_rs, 1) else TILE2_CASES(NULL, a_rs, 1)
    } else if (a_rs == 1) {
        if (kidx) TILE2_CASES(kidx, 1, a_cs) else TILE2_CASES(NULL, 1, a_cs)
    } else {
        if (kidx) TILE2_CASES(kidx, a_rs, a_cs) else TILE2_CASES(NULL, a_rs, a_cs)
    }
}
#undef TILE2_CASES
#undef TILE2

/* r[i] = column i of the 8 x 8 block whose rows are r[0..7] */
static inline __attribute__((always_inline)) void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* A whole panel (16 columns) of transposed B (B(k, j) = src[k + j*b_cs]) into rows of 16
 * floats: 8 x 8 blocks read along k and transposed in registers, the k tail one by one */
static void pack_transposed_avx2(float *panel, const float *src, int64_t b_cs, int kc) {
    int k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int h = 0; h < 2; h++) {
            __m256 r[8];
#pragma GCC unroll 8
            for (int x = 0; x < 8; x++) r[x] = _mm256_loadu_ps(src + (h * 8 + x) * b_cs + k);
            transpose8(r);
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) _mm256_store_ps(panel + (k + q) * NR2 + h * 8, r[q]);
        }
    for (; k < kc; k++)
        for (int x = 0; x < NR2; x++) panel[k * NR2 + x] = src[k + x * b_cs];
}

/* C[i0:i1, j0:j1] for rows i0.. of at most MC2 */
static void gemm_chunk_avx2(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                            int64_t j1) {
    static _Thread_local float panel_tls[KC * NR2] __attribute__((aligned(32)));
    static _Thread_local int lists_tls[MC2 / MR2][KC], counts_tls[MC2 / MR2];
    KC_TLS_ADDR(float, panel, panel_tls);
    KC_TLS_ADDR(int, counts, counts_tls);
    int(*lists)[KC] = lists_tls;
    __asm__("" : "+r"(lists));
    const kc_gemm_args *ex = g->dropout_rate > 0.0f || g->gate ? g : NULL;
    const int depth = k_block_depth(g->k);
    for (int kb = 0; kb < g->k; kb += depth) {
        const int kc = g->k - kb < depth ? g->k - kb : depth;
        const int load_c = g->accumulate || kb > 0, last = kb + kc >= g->k;
        if (g->a_sparse) /* the k where some row of the tile is non-zero, in order */
            for (int64_t i = i0; i < i1; i += MR2) {
                int mr = i1 - i < MR2 ? (int)(i1 - i) : MR2, n = 0, *list = lists[(i - i0) / MR2];
                const float *a = g->a + i * g->a_rs + (int64_t)kb * g->a_cs;
                int k = 0;
                if (g->a_cs == 1) /* rows: 8 k at a time, or-ed over the tile's rows */
                    for (; k + 8 <= kc; k += 8) {
                        __m256 any = _mm256_setzero_ps();
                        for (int r = 0; r < mr; r++)
                            any = _mm256_or_ps(any, _mm256_cmp_ps(_mm256_loadu_ps(a + r * g->a_rs + k),
                                                                  _mm256_setzero_ps(), _CMP_NEQ_UQ));
                        for (unsigned bits = (unsigned)_mm256_movemask_ps(any); bits; bits &= bits - 1)
                            list[n++] = k + __builtin_ctz(bits);
                    }
                else if (g->a_rs == 1) { /* columns: the tile's mr values at each k lie together */
                    const __m256i rows = _mm256_cmpgt_epi32(_mm256_set1_epi32(mr),
                                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                    for (; k < kc; k++) { /* without a branch: zeros follow no pattern */
                        list[n] = k;
                        n += _mm256_movemask_ps(_mm256_cmp_ps(_mm256_maskload_ps(a + k * g->a_cs, rows),
                                                              _mm256_setzero_ps(), _CMP_NEQ_UQ)) != 0;
                    }
                }
                for (; k < kc; k++) {
                    int any = 0;
                    for (int r = 0; r < mr; r++) any |= a[r * g->a_rs + k * g->a_cs] != 0.0f;
                    if (any) list[n++] = k;
                }
                counts[(i - i0) / MR2] = n;
            }
        for (int64_t j = j0; j < j1; j += NR2) {
            const int nc = j1 - j < NR2 ? (int)(j1 - j) : NR2;
            const float *src = g->b + (int64_t)kb * g->b_rs + j * g->b_cs;
            if (g->b_rs == 1 && nc == NR2) pack_transposed_avx2(panel, src, g->b_cs, kc);
            else for (int k = 0; k < kc; k++) {
                float *row = panel + k * NR2;
                if (g->b_cs == 1 && nc == NR2) {
                    _mm256_store_ps(row, _mm256_loadu_ps(src + k * g->b_rs));
                    _mm256_store_ps(row + 8, _mm256_loadu_ps(src + k * g->b_rs + 8));
                    continue;
                }
                for (int x = 0; x < NR2; x++) row[x] = x < nc ? src[k * g->b_rs + x * g->b_cs] : 0.0f;
            }
            for (int64_t i = i0; i < i1; i += MR2) {
                const int mr = i1 - i < MR2 ? (int)(i1 - i) : MR2, t = (int)((i - i0) / MR2);
                tile_avx2_dispatch(mr, g->a_sparse ? counts[t] : kc,
                                   g->a_sparse ? lists[t] : NULL,
                                   g->a + i * g->a_rs + (int64_t)kb * g->a_cs, g->a_rs, g->a_cs,
                                   panel, g->c + i * g->ldc + j, g->ldc, nc, load_c, last,
                                   g->bias ? g->bias + j : NULL, g->relu, ex, i, j);
            }
        }
    }
}

static void gemm_block_avx2(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                            int64_t j1) {
    for (int64_t i = i0; i < i1; i += MC2) gemm_chunk_avx2(g, i, i1 - i < MC2 ? i1 : i + MC2, j0, j1);
}
KC_TARGET_END
#else /* not x86 (aarch64): no kernels of kerac's own (kc_isa() is generic, so have_avx512()
       * and have_avx2() below are 0) and OpenBLAS computes every product; these stand in for
       * the x86 kernels the dispatch names, and are never called */
#define ROW_BLOCK 32
static void gemm_block_avx512(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                              int64_t j1) {}
static int gemm_blocks_avx512(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                              int64_t j1, uint64_t product) { return 0; }
static int gemm_bf16_part(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    return 0;
}
static void gemm_row_avx512(const kc_gemm_args *g) {}
static void gemm_block_avx2(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                            int64_t j1) {}
#endif /* KC_X86 */

/* KERAC_GEMM_BLAS=1 (any value but empty or 0) sends the products to OpenBLAS */
static int blas_requested(void) {
    const char *env = getenv("KERAC_GEMM_BLAS");
    return env && *env && strcmp(env, "0") != 0;
}

static int blas_forced(void) {
    static int cached = -1;
    if (cached < 0) cached = blas_requested();
    return cached;
}

static int have_avx512(void) { return kc_isa() == KC_ISA_AVX512 && !blas_forced(); }

/* the AVX2 kernels: on an AVX2 CPU without AVX-512, or with KERAC_ISA=avx2 */
static int have_avx2(void) { return kc_isa() == KC_ISA_AVX2 && !blas_forced(); }

/* C[i0:i1, j0:j1] by the tier's own fp32 kernel */
static void gemm_block(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    if (have_avx512()) gemm_block_avx512(g, i0, i1, j0, j1);
    else gemm_block_avx2(g, i0, i1, j0, j1);
}

/* block_done over C[i0:i1, j0:j1] as it lies in C, ROW_BLOCK rows at a time */
static void blocks_done_from_c(const kc_gemm_args *g, int64_t i0, int64_t i1, int64_t j0,
                               int64_t j1) {
    for (int64_t r0 = i0; r0 < i1; r0 += ROW_BLOCK)
        g->block_done(g->block_arg, r0, i1 - r0 < ROW_BLOCK ? i1 : r0 + ROW_BLOCK, j0, j1,
                      g->c + r0 * g->ldc + j0, g->ldc);
}

/* A product with block_done: parts of whole rows (a block of whole rows is one contiguous run
 * of C, of weights for the optimizer step; measured: by columns, runs of 256 floats, an epoch
 * took 30% longer). Each thread packs B once for all the parts it takes. */
typedef struct {
    const kc_gemm_args *g;
    uint64_t product; /* distinct per product */
} blocks_job;

static void blocks_task(void *arg, int part, int parts) {
    const blocks_job *job = arg;
    const kc_gemm_args *g = job->g;
    int64_t i0, i1;
    kc_split(g->m, part, parts, MR, &i0, &i1);
    if (i0 < i1 && (!have_avx512() || !gemm_blocks_avx512(g, i0, i1, 0, g->n, job->product))) {
        gemm_block(g, i0, i1, 0, g->n);
        blocks_done_from_c(g, i0, i1, 0, g->n);
    }
}

/* bf16 products: parts of whole column panels or of whole row tiles, as gemm_task */
static void bf16_task(void *arg, int part, int parts) {
    const kc_gemm_args *g = arg;
    int64_t i0 = 0, i1 = g->m, j0 = 0, j1 = g->n;
    int64_t row_tiles = (g->m + MR - 1) / MR, panels = (g->n + NR - 1) / NR;
    if (panels >= parts && panels >= row_tiles) kc_split(g->n, part, parts, NR, &j0, &j1);
    else kc_split(g->m, part, parts, MR, &i0, &i1);
    if (i0 < i1 && j0 < j1 && !gemm_bf16_part(g, i0, i1, j0, j1))
    { /* no memory for the conversion: the plain fp32 product */
        kc_gemm_args plain = *g;
        plain.bf16 = 0;
        gemm_block_avx512(&plain, i0, i1, j0, j1);
    }
}

static int have_avx512_bf16(void) { return have_avx512() && kc_isa_has_avx512_bf16(); }

int kc_gemm_bf16_supported(void) { return have_avx512_bf16(); }

/* gemm_task's share of C for part of parts: 0 when it has none */
static int gemm_part(const kc_gemm_args *g, int part, int parts, int64_t *pi0, int64_t *pi1,
                     int64_t *pj0, int64_t *pj1) {
    int64_t i0 = 0, i1 = g->m, j0 = 0, j1 = g->n;
    int64_t row_tiles = (g->m + MR - 1) / MR, panels = (g->n + NR - 1) / NR;
    /* parts of whole column panels or whole row tiles, whichever there are more of (columns
     * on a tie: the parts then share A and split B). A weight gradient (A transposed, many
     * rows) goes by rows, so that a part's rows are the ones the optimizer reads next, unless A
     * is sparse data, whose zeros are not spread evenly over the rows. */
    if (g->a_rs == 1 && !g->a_sparse && row_tiles >= parts) kc_split(g->m, part, parts, MR, &i0, &i1);
    else if (panels >= 2 && panels >= row_tiles) kc_split(g->n, part, parts, NR, &j0, &j1);
    else if (row_tiles >= 2) kc_split(g->m, part, parts, MR, &i0, &i1);
    else if (part) return 0;
    *pi0 = i0, *pi1 = i1, *pj0 = j0, *pj1 = j1;
    return i0 < i1 && j0 < j1;
}

static void gemm_task(void *arg, int part, int parts) {
    const kc_gemm_args *g = arg;
    int64_t i0, i1, j0, j1;
    if (gemm_part(g, part, parts, &i0, &i1, &j0, &j1)) gemm_block(g, i0, i1, j0, j1);
}

/* One sample (m == 1): each K block's partial row by the streaming kernel, the blocks shared
 * between threads (whole blocks of B's rows lie together in memory and fill every cache set;
 * halves of each row would use half of the L2 sets when rows are a power of two apart), then
 * the partials added in block order as the tiled kernel adds them. */
static _Thread_local struct {
    float *partial; /* blocks x n, the caller's: two threads may predict at once */
    int64_t capacity;
} row_scratch;

typedef struct {
    const kc_gemm_args *g;
    float *partial;
} row_job;

static void row_blocks_task(void *arg, int part, int parts) {
    const kc_gemm_args *g = ((const row_job *)arg)->g;
    float *partial = ((const row_job *)arg)->partial;
    int depth = k_block_depth(g->k);
    int64_t b0, b1;
    kc_split((g->k + depth - 1) / depth, part, parts, 1, &b0, &b1);
    for (int64_t b = b0; b < b1; b++) {
        int k0 = (int)b * depth, kc = g->k - k0 < depth ? g->k - k0 : depth;
        kc_gemm_args part = {.m = 1, .n = g->n, .k = kc, .a = g->a + k0 * g->a_cs,
                             .a_cs = g->a_cs, .b = g->b + k0 * g->b_rs, .b_rs = g->b_rs,
                             .b_cs = 1, .c = partial + b * g->n, .ldc = g->n,
                             .a_sparse = g->a_sparse, .bf16 = g->bf16};
        gemm_row_avx512(&part);
    }
}

static int gemm_one_row(const kc_gemm_args *g) {
    int depth = k_block_depth(g->k), blocks = (g->k + depth - 1) / depth;
    int64_t need = (int64_t)blocks * g->n;
    if (need > row_scratch.capacity) {
        float *grown = kc_alloc(sizeof(float) * (size_t)need);
        if (!grown) return 0; /* the tiled kernel does it instead */
        kc_free(row_scratch.partial);
        row_scratch.partial = grown;
        row_scratch.capacity = need;
    }
    row_job job = {g, row_scratch.partial};
    if (blocks > 1 && (double)g->n * g->k >= 1 << 17) kc_parallel(row_blocks_task, &job);
    else row_blocks_task(&job, 0, 1);
    for (int64_t j = 0; j < g->n; j++) {
        float sum = g->accumulate ? g->c[j] + row_scratch.partial[j] : row_scratch.partial[j];
        for (int b = 1; b < blocks; b++) sum += row_scratch.partial[(int64_t)b * g->n + j];
        if (g->bias) sum += g->bias[j];
        if (g->relu) sum = sum < 0.0f ? 0.0f : sum; /* NaN stays NaN */
        g->c[j] = g->dropout_rate > 0.0f || g->gate ? epilogue_extra_scalar(g, 0, j, sum) : sum;
    }
    return 1;
}

/* A (rows, cols) matrix given by strides as BLAS sees it: row-major, or transposed (stored
 * cols x rows). A stride along a dimension of size 1 is never used, so BLAS gets the smallest
 * leading dimension it accepts there. */
static void blas_layout(int64_t rs, int64_t cs, int rows, int cols, int *trans, int *ld) {
    if (cs == 1 && (rs >= cols || rows == 1)) {
        *trans = 0;
        *ld = (int)(rows == 1 ? (cols > 1 ? cols : 1) : rs);
    } else {
        *trans = 1;
        *ld = (int)(cols == 1 ? (rows > 1 ? rows : 1) : cs);
    }
}

static void blocks_done_range(void *arg, int64_t begin, int64_t end) {
    const kc_gemm_args *g = arg;
    blocks_done_from_c(g, begin, end, 0, g->n);
}

/* C = extra(relu?(C + bias)), row by row (C's rows may be ldc apart): for the paths without
 * a fused epilogue */
static void epilogue_rows(const kc_gemm_args *g) {
    if (g->bias || g->relu)
        for (int i = 0; i < g->m; i++)
            kc_bias_act(g->c + i * g->ldc, g->bias, 1, g->n, g->relu ? KC_RELU : KC_LINEAR);
    if (g->dropout_rate > 0.0f || g->gate)
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++)
                g->c[i * g->ldc + j] = epilogue_extra_scalar(g, i, j, g->c[i * g->ldc + j]);
}

/* numbers the products that keep per-thread state between their parts (packed B, rounded A) */
static _Atomic uint64_t gemm_products;

/* The tier's own fp32 kernels (B rounded to bf16 as it is packed where g->bf16 is set: only
 * from gemm_bf16_as_fp32) */
static void gemm_own_fp32(const kc_gemm_args *g, int small) {
    if (g->block_done) {
        blocks_job job = {g, atomic_fetch_add(&gemm_products, 1) + 1};
        if (small) blocks_task(&job, 0, 1);
        else kc_parallel_parts(blocks_task, &job, 4);
        return;
    }
    if (have_avx512() && g->m == 1 && g->b_cs == 1 && !g->serial && gemm_one_row(g))
        return;
    /* a product too small to be worth waking the pool runs on the caller */
    if (small) gemm_task((void *)g, 0, 1);
    /* sparse A: every part scans its tiles of A for zeros, so fewer, larger parts */
    else kc_parallel_parts(gemm_task, (void *)g, g->a_sparse ? 1 : 4);
}

#ifdef KC_X86
/* bf16 products where no bf16 unit is used (KERAC_BF16_FP32): the fp32 kernels on the
 * operands rounded to bf16, A into a per-thread copy (in its layout, or by columns; each
 * thread rounds the rows it multiplies, once per product), B as its panels are packed (or,
 * one row of C, as the streaming kernel reads it). A product of two bf16 values is exact in
 * fp32, so each element is the fp32 sum (FMAs, k in order within each K block, blocks added
 * in order) of the exact products of the rounded operands: the fp32 path's arithmetic, zero
 * skipping and fused optimizer step. */
typedef struct {
    const kc_gemm_args *g;
    uint64_t product; /* distinct per product */
} bf16_job;

/* *r = g with A's rows [i0, i1) rounded into this thread's buffer (all rows: once per product
 * and thread); NULL when the buffer cannot be had */
static const kc_gemm_args *bf16_rounded(const bf16_job *job, int64_t i0, int64_t i1, int all,
                                        kc_gemm_args *r) {
    static _Thread_local uint64_t all_for; /* the product whose A is all in a_bf16 */
    const kc_gemm_args *g = job->g;
    thread_bufs *bufs = my_bufs();
    float *buf = bufs ? grow(&bufs->a_bf16, (int64_t)g->m * g->k) : NULL;
    if (!buf) return NULL;
    if (!all) {
        round_a_bf16(g, buf, i0, i1);
        if (all_for == job->product) all_for = 0;
    } else if (all_for != job->product) {
        round_a_bf16(g, buf, 0, g->m);
        all_for = job->product;
    }
    *r = *g;
    r->a = buf;
    r->a_rs = g->a_cs == 1 ? g->k : 1;
    r->a_cs = g->a_cs == 1 ? 1 : g->m;
    return r;
}

static void bf16_fp32_task(void *arg, int part, int parts) {
    const bf16_job *job = arg;
    const kc_gemm_args *g = job->g, *gr;
    kc_gemm_args r, plain;
    int64_t i0, i1, j0 = 0, j1 = g->n;
    if (g->block_done) kc_split(g->m, part, parts, MR, &i0, &i1); /* as blocks_task */
    else if (!gemm_part(g, part, parts, &i0, &i1, &j0, &j1)) return;
    if (i0 >= i1) return;
    if (!(gr = bf16_rounded(job, i0, i1, i1 - i0 < g->m, &r))) { /* no memory: plain fp32 */
        plain = *g;
        plain.bf16 = 0;
        gr = &plain;
    }
    if (!g->block_done) gemm_block(gr, i0, i1, j0, j1);
    else if (!gemm_blocks_avx512(gr, i0, i1, 0, g->n, job->product)) {
        gemm_block(gr, i0, i1, 0, g->n);
        blocks_done_from_c(gr, i0, i1, 0, g->n);
    }
}

static int gemm_bf16_as_fp32(const kc_gemm_args *g, int small) {
    bf16_job job = {g, atomic_fetch_add(&gemm_products, 1) + 1};
    if (small || g->m == 1) { /* on the caller: all of A rounded here */
        kc_gemm_args r;
        const kc_gemm_args *gr = bf16_rounded(&job, 0, g->m, 1, &r);
        if (!gr) return 0;
        gemm_own_fp32(gr, small);
        return 1;
    }
    kc_parallel_parts(bf16_fp32_task, &job, g->a_sparse && !g->block_done ? 1 : 4);
    return 1;
}

#else /* no bf16 products off x86 (kc_set_mixed_bfloat16 refuses there) */
static int gemm_bf16_as_fp32(const kc_gemm_args *g, int small) { return 0; }
#endif

void kc_gemm_ex(const kc_gemm_args *g) {
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) { /* an empty sum: C keeps its value or becomes 0, then the epilogue */
        for (int i = 0; i < g->m && !g->accumulate; i++)
            memset(g->c + i * g->ldc, 0, sizeof(float) * (size_t)g->n);
        epilogue_rows(g);
        if (g->block_done) blocks_done_from_c(g, 0, g->m, 0, g->n);
        return;
    }
    if (have_avx512() || have_avx2()) {
        int small = g->serial || (double)g->m * g->n * g->k < 1 << 17;
        if (g->bf16 && have_avx512_bf16()) {
            if (kc_gemm_bf16_native() && (g->a_cs == 1 || g->a_rs == 1)) {
                if (small) bf16_task((void *)g, 0, 1);
                else kc_parallel_parts(bf16_task, (void *)g, 1);
                if (g->block_done) {
                    if (small) blocks_done_from_c(g, 0, g->m, 0, g->n);
                    else kc_parallel_range(g->m, 1, g->n, blocks_done_range, (void *)g);
                }
                return;
            }
            if (!kc_gemm_bf16_native() && gemm_bf16_as_fp32(g, small)) return;
        }
        kc_gemm_args plain; /* the fp32 kernels round B to bf16 where bf16 is set */
        if (g->bf16) {
            plain = *g;
            plain.bf16 = 0;
            g = &plain;
        }
        gemm_own_fp32(g, small);
        return;
    }
    int trans_a, trans_b, lda, ldb;
    blas_layout(g->a_rs, g->a_cs, g->m, g->k, &trans_a, &lda);
    blas_layout(g->b_rs, g->b_cs, g->k, g->n, &trans_b, &ldb);
    kc_blas_sgemm(trans_a, trans_b, g->m, g->n, g->k, g->a, lda, g->b, ldb, g->accumulate, g->c,
                  (int)g->ldc);
    epilogue_rows(g);
    if (g->block_done) {
        if (g->serial) blocks_done_from_c(g, 0, g->m, 0, g->n);
        else kc_parallel_range(g->m, 1, g->n, blocks_done_range, (void *)g);
    }
}

void kc_gemm(int trans_a, int trans_b, int m, int n, int k, const float *a, const float *b,
             float *c) {
    kc_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .b = b, .c = c, .ldc = n};
    g.a_rs = trans_a ? 1 : k;
    g.a_cs = trans_a ? m : 1;
    g.b_rs = trans_b ? 1 : n;
    g.b_cs = trans_b ? k : 1;
    kc_gemm_ex(&g);
}

const char *kc_gemm_backend(void) {
    return have_avx512() ? "kerac-avx512" : have_avx2() ? "kerac-avx2" : "openblas";
}
