/* test_engine.c: the compute engine under the layers: matrix products against a plain triple
 * loop (every transpose, tails, epilogues, thread counts), the thread pool's splits, and the
 * promise that results do not depend on the thread count or on batching. */
#include "testutil.h"
#include "ops/ops.h"
#include "util/threads.h"
#include "util/isa.h"
#include "model_view.h"

/* C = op(A) op(B) (+ C) (+ bias, relu) in double, the reference. */
static void reference_gemm(const kc_gemm_args *g, const float *c_in, double *out) {
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            double sum = g->accumulate ? c_in[i * g->ldc + j] : 0.0;
            for (int p = 0; p < g->k; p++)
                sum += (double)g->a[i * g->a_rs + p * g->a_cs] * g->b[p * g->b_rs + j * g->b_cs];
            if (g->bias) sum += g->bias[j];
            if (g->relu && sum < 0) sum = 0;
            out[i * g->n + j] = sum;
        }
}

static void fill(float *x, int64_t n, unsigned seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* One product of the given shape and layout, checked element by element: float sums of k
 * terms of size ~1 are good to about k * 2^-24 relative to their magnitude. */
static void check_gemm(int m, int n, int k, int trans_a, int trans_b, int accumulate,
                       int with_bias, int relu) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n), *c0 = malloc(sizeof(float) * (size_t)m * n);
    float *bias = malloc(sizeof(float) * (size_t)n);
    double *want = malloc(sizeof(double) * (size_t)m * n);
    fill(a, (int64_t)m * k, 1u + m);
    fill(b, (int64_t)k * n, 2u + n);
    fill(c0, (int64_t)m * n, 3u + k);
    fill(bias, n, 4u);
    memcpy(c, c0, sizeof(float) * (size_t)m * n);
    kc_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .b = b, .c = c, .ldc = n,
                      .accumulate = accumulate, .bias = with_bias ? bias : NULL, .relu = relu};
    g.a_rs = trans_a ? 1 : k;
    g.a_cs = trans_a ? m : 1;
    g.b_rs = trans_b ? 1 : n;
    g.b_cs = trans_b ? k : 1;
    reference_gemm(&g, c0, want);
    kc_gemm_ex(&g);
    double tol = 4e-7 * (k + 4);
    for (int64_t i = 0; i < (int64_t)m * n; i++)
        cr_assert(fabs(c[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
                  "gemm %dx%dx%d ta%d tb%d acc%d bias%d relu%d: C[%lld] = %.9g, want %.9g", m, n,
                  k, trans_a, trans_b, accumulate, with_bias, relu, (long long)i, c[i], want[i]);
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias);
    free(want);
}

static const int shapes[][3] = {
    {1, 1, 1},    {1, 10, 512},  {1, 512, 784}, {1, 300, 7},   {3, 5, 2},      {7, 33, 17},
    {8, 32, 256}, {9, 31, 257},  {16, 64, 513}, {128, 10, 512}, {128, 512, 784}, {784, 512, 128},
    {100, 70, 600}, {2, 1000, 3}, {65, 130, 260},
};

static void check_all_layouts(int threads) {
    kc_set_num_threads(threads);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int layout = 0; layout < 4; layout++)
            check_gemm(shapes[s][0], shapes[s][1], shapes[s][2], layout & 1, layout >> 1, 0, 0, 0);
}

Test(gemm, every_layout_one_thread) { check_all_layouts(1); }
Test(gemm, every_layout_two_threads) { check_all_layouts(2); }
Test(gemm, three_threads_uneven_splits) { check_all_layouts(3); }

Test(gemm, epilogues) {
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            check_gemm(shapes[s][0], shapes[s][1], shapes[s][2], 0, 0, 0, 1, 1);
            check_gemm(shapes[s][0], shapes[s][1], shapes[s][2], 0, 0, 1, 1, 0);
            check_gemm(shapes[s][0], shapes[s][1], shapes[s][2], 1, 1, 1, 0, 1);
        }
    }
}

/* Skipping the k where a tile of A is zero must give the dense result's exact bits. */
static void check_sparse_matches_dense(int m, int n, int k, int trans_a) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *dense = malloc(sizeof(float) * (size_t)m * n), *sparse = malloc(sizeof(float) * (size_t)m * n);
    float bias[1024];
    fill(a, (int64_t)m * k, 9);
    fill(b, (int64_t)k * n, 10);
    fill(bias, n, 11);
    /* zeros in blocks, as in images: whole stretches of k, and some rows entirely */
    for (int64_t i = 0; i < (int64_t)m * k; i++)
        if ((i / 7) % 3 || (i / k) % 5 == 0) a[i] = 0.0f;
    kc_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .b = b, .c = dense, .ldc = n,
                      .bias = bias, .relu = 1};
    g.a_rs = trans_a ? 1 : k;
    g.a_cs = trans_a ? m : 1;
    g.b_rs = n;
    g.b_cs = 1;
    kc_gemm_ex(&g);
    g.c = sparse;
    g.a_sparse = 1;
    kc_gemm_ex(&g);
    cr_assert(memcmp(dense, sparse, sizeof(float) * (size_t)m * n) == 0,
              "sparse and dense products differ for %dx%dx%d trans_a %d", m, n, k, trans_a);
    free(a);
    free(b);
    free(dense);
    free(sparse);
}

Test(gemm, sparse_a_gives_the_dense_bits) {
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int trans_a = 0; trans_a < 2; trans_a++)
                check_sparse_matches_dense(shapes[s][0], shapes[s][1], shapes[s][2], trans_a);
        check_sparse_matches_dense(1100, 40, 300, 0); /* more rows than one chunk */
        check_sparse_matches_dense(1100, 40, 300, 1);
    }
}

/* ---- the AVX2 kernels (CPUs without AVX-512) against the AVX-512 ones ------------------- */

/* the same product under the avx512 and the avx2 tier: the same bits, every epilogue */
static void check_avx2_bits(int m, int n, int k, int trans_a, int trans_b, int variant) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c[2], *gate = malloc(sizeof(float) * (size_t)m * n), *bias = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < (int64_t)m * k; i++)
        a[i] = variant & 4 && (i / 3) % 4 ? 0.0f : (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < (int64_t)k * n; i++) b[i] = (float)((i * 104729) % 997) / 498.0f - 1.0f;
    for (int64_t i = 0; i < (int64_t)m * n; i++) gate[i] = (float)((i * 31) % 7) - 3.0f;
    for (int j = 0; j < n; j++) bias[j] = (float)(j % 13) / 7.0f - 0.9f;
    for (int t = 0; t < 2; t++) {
        c[t] = malloc(sizeof(float) * (size_t)m * n);
        for (int64_t i = 0; i < (int64_t)m * n; i++) c[t][i] = (float)(i % 11) / 3.0f - 1.5f;
        kc_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .b = b, .c = c[t], .ldc = n,
                          .accumulate = variant & 1, .a_sparse = (variant & 4) != 0};
        g.a_rs = trans_a ? 1 : k;
        g.a_cs = trans_a ? m : 1;
        g.b_rs = trans_b ? 1 : n;
        g.b_cs = trans_b ? k : 1;
        if (variant & 2) {
            g.bias = bias;
            g.relu = 1;
            g.dropout_rate = 0.3f;
            g.dropout_key = 12345;
        }
        if (variant & 8) {
            g.gate = gate;
            g.gate_scale = 1.25f;
        }
        kc_isa_override(t ? KC_ISA_AVX2 : KC_ISA_AVX512);
        kc_gemm_ex(&g);
    }
    kc_isa_override(KC_ISA_AVX512);
    for (int64_t i = 0; i < (int64_t)m * n; i++)
        cr_assert(memcmp(&c[0][i], &c[1][i], sizeof(float)) == 0,
                  "%dx%dx%d ta%d tb%d variant %d: C[%lld] avx512 %.9g, avx2 %.9g", m, n, k,
                  trans_a, trans_b, variant, (long long)i, c[0][i], c[1][i]);
    free(a), free(b), free(c[0]), free(c[1]), free(gate), free(bias);
}

Test(gemm, avx2_kernels_give_the_avx512_bits) {
    kc_isa_override(KC_ISA_AVX512);
    if (kc_isa() != KC_ISA_AVX512 || strcmp(kc_gemm_backend(), "kerac-avx512"))
        cr_skip_test("needs an AVX-512 CPU and kerac's own kernels");
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int layout = 0; layout < 4; layout++)
                for (int variant = 0; variant < 16; variant += 1 + (layout & 1))
                    check_avx2_bits(shapes[s][0], shapes[s][1], shapes[s][2], layout & 1,
                                    layout >> 1, variant);
    }
    check_avx2_bits(1100, 40, 300, 1, 0, 4); /* more rows than one chunk */
}

/* ---- C handed over block by block (the fused optimizer step) ---------------------------- */

typedef struct {
    const float *plain; /* the same product without block_done */
    int64_t n;
    unsigned char *seen; /* per element of C: times handed over */
    int bad;             /* the first mismatch, as a flag (blocks may arrive on two threads) */
} block_check;

static void check_block(void *arg, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
                        const float *block, int64_t ld) {
    block_check *bc = arg;
    if (row0 < 0 || row1 <= row0 || col0 < 0 || col1 <= col0 || col1 > bc->n || ld < col1 - col0)
        bc->bad = 1;
    for (int64_t i = row0; i < row1 && !bc->bad; i++)
        for (int64_t j = col0; j < col1; j++) {
            __atomic_fetch_add(&bc->seen[i * bc->n + j], 1, __ATOMIC_RELAXED);
            if (memcmp(&block[(i - row0) * ld + (j - col0)], &bc->plain[i * bc->n + j], 4))
                bc->bad = 1;
        }
}

/* Every element of C reaches block_done exactly once, with the bits of the plain product:
 * weight-gradient layouts (A transposed), sparse A, several K blocks, scratch or C. */
static void check_blocks(int m, int n, int k, int sparse, int scratch, int accumulate) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *plain = malloc(sizeof(float) * (size_t)m * n), *c = malloc(sizeof(float) * (size_t)m * n);
    fill(a, (int64_t)m * k, 21u + m);
    fill(b, (int64_t)k * n, 22u + n);
    fill(plain, (int64_t)m * n, 23u);
    memcpy(c, plain, sizeof(float) * (size_t)m * n);
    if (sparse)
        for (int64_t i = 0; i < (int64_t)m * k; i++)
            if ((i / 5) % 3) a[i] = 0.0f;
    kc_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .a_rs = 1, .a_cs = m, .b = b, .b_rs = n,
                      .b_cs = 1, .c = plain, .ldc = n, .a_sparse = sparse, .accumulate = accumulate};
    kc_gemm_ex(&g);
    block_check bc = {plain, n, calloc((size_t)m * n, 1), 0};
    g.c = c;
    g.block_done = check_block;
    g.block_arg = &bc;
    g.block_scratch = scratch;
    kc_gemm_ex(&g);
    cr_assert(!bc.bad, "%dx%dx%d sparse %d scratch %d acc %d: a block differs from the plain product",
              m, n, k, sparse, scratch, accumulate);
    for (int64_t i = 0; i < (int64_t)m * n; i++)
        cr_assert_eq(bc.seen[i], 1, "%dx%dx%d: C[%lld] handed over %d times", m, n, k,
                     (long long)i, bc.seen[i]);
    if (!scratch || accumulate)
        cr_assert(memcmp(c, plain, sizeof(float) * (size_t)m * n) == 0, "C not written");
    free(a);
    free(b);
    free(plain);
    free(c);
    free(bc.seen);
}

Test(gemm, block_done_hands_over_every_element_once) {
    static const int block_shapes[][3] = {{784, 512, 128}, {53, 37, 300}, {1, 5, 7}, {9, 1, 1},
                                          {100, 70, 600}, {33, 100, 17}, {8, 32, 256}};
    for (int threads = 1; threads <= 3; threads++) {
        kc_set_num_threads(threads);
        for (size_t s = 0; s < sizeof block_shapes / sizeof block_shapes[0]; s++)
            for (int variant = 0; variant < 8; variant++)
                check_blocks(block_shapes[s][0], block_shapes[s][1], block_shapes[s][2],
                             variant & 1, variant >> 1 & 1, variant >> 2);
    }
}

/* ---- bfloat16 products ---------------------------------------------------------------- */

static float round_bf16(float x) { /* to nearest even, as VCVTNE2PS2BF16 */
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* bf16 products against the sum of the bf16-rounded operands' products in double: only the
 * fp32 accumulation differs */
static void check_bf16(int m, int n, int k, int trans_a, int trans_b, int sparse, int epilogue) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *ar = malloc(sizeof(float) * (size_t)m * k), *br = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n), bias[1024];
    double *want = malloc(sizeof(double) * (size_t)m * n);
    fill(a, (int64_t)m * k, 51u + m);
    fill(b, (int64_t)k * n, 52u + n);
    fill(bias, n, 53u);
    if (sparse)
        for (int64_t i = 0; i < (int64_t)m * k; i++)
            if ((i / 7) % 3) a[i] = 0.0f;
    for (int64_t i = 0; i < (int64_t)m * k; i++) ar[i] = round_bf16(a[i]);
    for (int64_t i = 0; i < (int64_t)k * n; i++) br[i] = round_bf16(b[i]);
    kc_gemm_args g = {.m = m, .n = n, .k = k, .a = ar, .b = br, .c = c, .ldc = n,
                      .bias = epilogue ? bias : NULL, .relu = epilogue};
    g.a_rs = trans_a ? 1 : k;
    g.a_cs = trans_a ? m : 1;
    g.b_rs = trans_b ? 1 : n;
    g.b_cs = trans_b ? k : 1;
    reference_gemm(&g, NULL, want);
    g.a = a;
    g.b = b;
    g.bf16 = 1;
    g.a_sparse = sparse;
    kc_gemm_ex(&g);
    double tol = 4e-7 * (k + 4);
    for (int64_t i = 0; i < (int64_t)m * n; i++)
        cr_assert(fabs(c[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
                  "bf16 gemm %dx%dx%d ta%d tb%d sparse%d: C[%lld] = %.9g, want %.9g", m, n, k,
                  trans_a, trans_b, sparse, (long long)i, c[i], want[i]);
    free(a);
    free(b);
    free(ar);
    free(br);
    free(c);
    free(want);
}

/* every shape, transposes, sparse A; bias and relu on one layout */
static void check_bf16_all(int epilogue_layout) {
    if (!kc_gemm_bf16_supported()) cr_skip_test("no AVX512-BF16 on this CPU");
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int layout = 0; layout < 8; layout++)
                check_bf16(shapes[s][0], shapes[s][1], shapes[s][2], layout & 1, layout >> 1 & 1,
                           layout >> 2, layout == epilogue_layout);
    }
}

Test(gemm, bf16_products_round_the_operands_and_sum_in_fp32) { check_bf16_all(5); }

/* the same with the AVX512-BF16 dot-product tiles instead of AMX (KERAC_NO_AMX, read when a
 * thread first multiplies in bf16: each test runs in its own process) */
Test(gemm, bf16_products_without_amx) {
    setenv("KERAC_NO_AMX", "1", 1);
    cr_assert(!kc_gemm_bf16_supported() || kc_gemm_bf16_native());
    check_bf16_all(6);
}

/* the same as fp32 products of the rounded operands (KERAC_BF16_FP32, read once per process) */
Test(gemm, bf16_products_as_fp32) {
    setenv("KERAC_BF16_FP32", "1", 1);
    check_bf16_all(3);
}

/* With KERAC_BF16_FP32 the bf16 products are the fp32 kernels' sums of the rounded operands'
 * products (exact in fp32): each K block of k_block_depth summed from zero by fmaf in k order, the
 * blocks added in order (onto C when accumulating), then bias and relu. The bits of that
 * scalar reference, every layout, sparse A, accumulate, the epilogue, block_done. */
static int ref_block_depth(int k) {
    int blocks = (k + 255) / 256;
    return (k + blocks - 1) / blocks;
}

static void reference_bf16_bits(const kc_gemm_args *g, const float *ar, const float *br,
                                const float *c_in, float *out) {
    int depth = ref_block_depth(g->k);
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            float c = g->accumulate ? c_in[i * g->ldc + j] : 0.0f;
            for (int kb = 0; kb < g->k; kb += depth) {
                float s = 0.0f;
                for (int p = kb; p < g->k && p < kb + depth; p++)
                    s = fmaf(ar[i * g->a_rs + p * g->a_cs], br[p * g->b_rs + j * g->b_cs], s);
                c = kb == 0 && !g->accumulate ? s : s + c;
            }
            if (g->bias) c += g->bias[j];
            if (g->relu) c = c < 0.0f ? 0.0f : c;
            out[i * g->n + j] = c;
        }
}

typedef struct {
    float *c; /* where the handed-over blocks are copied */
    int64_t n;
} block_copy;

static void copy_block(void *arg, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
                       const float *block, int64_t ld) {
    block_copy *bc = arg;
    for (int64_t i = row0; i < row1; i++)
        memcpy(bc->c + i * bc->n + col0, block + (i - row0) * ld, sizeof(float) * (size_t)(col1 - col0));
}

static void check_bf16_bits(int m, int n, int k, int trans_a, int trans_b, int sparse,
                            int variant) {
    int accumulate = variant & 1, epilogue = variant >> 1 & 1, blocks = variant >> 2 & 1;
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *ar = malloc(sizeof(float) * (size_t)m * k), *br = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n), *c0 = malloc(sizeof(float) * (size_t)m * n);
    float *want = malloc(sizeof(float) * (size_t)m * n), *seen = malloc(sizeof(float) * (size_t)m * n);
    float bias[1000];
    fill(a, (int64_t)m * k, 71u + m);
    fill(b, (int64_t)k * n, 72u + n);
    fill(c0, (int64_t)m * n, 73u + k);
    fill(bias, n, 74u);
    if (sparse)
        for (int64_t i = 0; i < (int64_t)m * k; i++)
            if ((i / 3) % 4) a[i] = 0.0f;
    for (int64_t i = 0; i < (int64_t)m * k; i++) ar[i] = round_bf16(a[i]);
    for (int64_t i = 0; i < (int64_t)k * n; i++) br[i] = round_bf16(b[i]);
    memcpy(c, c0, sizeof(float) * (size_t)m * n);
    kc_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .b = b, .c = c, .ldc = n, .bf16 = 1,
                      .a_sparse = sparse, .accumulate = accumulate,
                      .bias = epilogue && !blocks ? bias : NULL, .relu = epilogue && !blocks};
    g.a_rs = trans_a ? 1 : k;
    g.a_cs = trans_a ? m : 1;
    g.b_rs = trans_b ? 1 : n;
    g.b_cs = trans_b ? k : 1;
    reference_bf16_bits(&g, ar, br, c0, want);
    block_copy bc = {seen, n};
    if (blocks) {
        g.block_done = copy_block;
        g.block_arg = &bc;
        g.block_scratch = epilogue; /* blocks in a per-thread buffer */
    }
    kc_gemm_ex(&g);
    const float *got = blocks ? seen : c;
    for (int64_t i = 0; i < (int64_t)m * n; i++)
        cr_assert(memcmp(&got[i], &want[i], 4) == 0,
                  "bf16 as fp32 %dx%dx%d ta%d tb%d sparse%d variant%d: C[%lld] = %.9g, want %.9g",
                  m, n, k, trans_a, trans_b, sparse, variant, (long long)i, got[i], want[i]);
    free(a);
    free(b);
    free(ar);
    free(br);
    free(c);
    free(c0);
    free(want);
    free(seen);
}

Test(gemm, bf16_as_fp32_gives_the_bits_of_fp32_sums_of_rounded_operands) {
    setenv("KERAC_BF16_FP32", "1", 1);
    if (!kc_gemm_bf16_supported()) cr_skip_test("no AVX512-BF16 on this CPU");
    cr_assert(!kc_gemm_bf16_native());
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int layout = 0; layout < 8; layout++)
                for (int variant = 0; variant < 8; variant++)
                    check_bf16_bits(shapes[s][0], shapes[s][1], shapes[s][2], layout & 1,
                                    layout >> 1 & 1, layout >> 2, variant);
    }
    check_bf16_bits(1100, 40, 300, 1, 0, 1, 4); /* more rows than one chunk */
}

static int notices;
static void count_notice(const char *message, void *user) {
    (void)user;
    if (strstr(message, "bf16 products run as float32")) notices++;
}

/* kc_set_mixed_bfloat16 says once per process that the products run as fp32 */
Test(gemm, bf16_as_fp32_says_so_once) {
    setenv("KERAC_BF16_FP32", "1", 1);
    if (!kc_gemm_bf16_supported()) cr_skip_test("no AVX512-BF16 on this CPU");
    kc_set_warning_handler(count_notice, NULL);
    for (int r = 0; r < 3; r++) {
        kc_model *m = kc_sequential(kc_shape1(4));
        kc_add(m, kc_dense(3, KC_RELU));
        KC_CHECK(kc_set_mixed_bfloat16(m, 1));
        KC_CHECK(kc_set_mixed_bfloat16(m, 0));
        kc_model_free(m);
    }
    kc_set_warning_handler(NULL, NULL);
    cr_assert_eq(notices, 1, "the notice came %d times", notices);
}

/* kc_set_mixed_bfloat16: training in bf16 products follows the float32 run closely (a few
 * steps of the seed network's shape, smaller), the weights stay float32 */
Test(fused_step, mixed_bfloat16_trains_like_float32) {
    if (!kc_gemm_bf16_supported()) {
        kc_model *m = kc_sequential(kc_shape1(4));
        KC_EXPECT_ERR(kc_set_mixed_bfloat16(m, 1), KC_EINVAL, "AVX512-BF16");
        kc_model_free(m);
        return;
    }
    enum { N = 256, IN = 64, OUT = 5 };
    static float x[N * IN], y[N * OUT];
    fill(x, N * IN, 61);
    for (int i = 0; i < N * IN; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) y[i * OUT + j] = (float)(j == (x[i * IN] > 0.5f) + 2 * (x[i * IN + 1] > 0.5f));
    double loss[2];
    for (int bf16 = 0; bf16 < 2; bf16++) {
        kc_set_random_seed(5);
        kc_model *m = kc_sequential(kc_shape1(IN));
        kc_add(m, kc_dense(96, KC_RELU));
        kc_add(m, kc_dropout(0.2f));
        kc_add(m, kc_dense(96, KC_RELU));
        kc_add(m, kc_dense(OUT, KC_SOFTMAX));
        KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_rmsprop(NULL), KC_METRIC_ACCURACY));
        KC_CHECK(kc_set_mixed_bfloat16(m, bf16));
        kc_dataset d = {.count = N, .x_shape = kc_shape1(IN), .x_dtype = KC_FLOAT32, .x = x,
                        .y_shape = kc_shape1(OUT), .y_dtype = KC_FLOAT32, .y = y};
        KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.batch_size = 32, .epochs = 5, .verbose = -1}, NULL));
        kc_metrics score;
        KC_CHECK(kc_evaluate(m, &d, NULL, &score));
        loss[bf16] = score.loss;
        kc_model_free(m);
    }
    cr_assert(isfinite(loss[1]) && fabs(loss[1] - loss[0]) < 0.05 * loss[0] + 0.01,
              "loss after 5 epochs: float32 %g, mixed_bfloat16 %g", loss[0], loss[1]);
}

Test(gemm, empty_sum_gives_zero_then_epilogue) {
    float c[6] = {5, 5, 5, 5, 5, 5}, bias[3] = {1, -2, 3};
    kc_gemm_ex(&(kc_gemm_args){.m = 2, .n = 3, .k = 0, .a = c, .b = c, .c = c, .ldc = 3,
                               .bias = bias, .relu = 1});
    const float want[6] = {1, 0, 3, 1, 0, 3};
    for (int i = 0; i < 6; i++) cr_assert_eq(c[i], want[i], "C[%d] = %g", i, c[i]);
}

Test(gemm, relu_keeps_nan) {
    float a[2] = {NAN, 1}, b[2] = {1, 1}, c[1];
    kc_gemm_ex(&(kc_gemm_args){.m = 1, .n = 1, .k = 2, .a = a, .a_rs = 2, .a_cs = 1, .b = b,
                               .b_rs = 1, .b_cs = 1, .c = c, .ldc = 1, .relu = 1});
    cr_assert(isnan(c[0]), "relu(NaN) must stay NaN, got %g", c[0]);
}

/* ---- the pool ---------------------------------------------------------------------------- */

static void count_range(void *arg, int64_t begin, int64_t end) {
    int *seen = arg;
    for (int64_t i = begin; i < end; i++) __atomic_add_fetch(&seen[i], 1, __ATOMIC_RELAXED);
}

Test(pool, every_index_exactly_once) {
    static const int64_t sizes[] = {1, 15, 16, 17, 1000, 65536, 100003};
    for (int threads = 1; threads <= 4; threads++) {
        kc_set_num_threads(threads);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int64_t align = 1; align <= 32; align *= 4) {
                int *seen = calloc((size_t)sizes[s], sizeof(int));
                kc_parallel_range(sizes[s], align, 1, count_range, seen);
                for (int64_t i = 0; i < sizes[s]; i++)
                    cr_assert_eq(seen[i], 1, "threads %d n %lld align %lld: index %lld ran %d times",
                                 threads, (long long)sizes[s], (long long)align, (long long)i, seen[i]);
                free(seen);
            }
    }
}

Test(pool, split_shares_are_contiguous_and_aligned) {
    for (int threads = 1; threads <= 5; threads++) {
        int64_t expect = 0;
        for (int t = 0; t < threads; t++) {
            int64_t begin, end;
            kc_split(1000, t, threads, 32, &begin, &end);
            cr_assert_eq(begin, expect);
            cr_assert(begin % 32 == 0 || begin == 1000);
            expect = end;
        }
        cr_assert_eq(expect, 1000);
    }
}

/* ---- results independent of threads and batching ----------------------------------------- */

static kc_model *mlp(void) {
    kc_set_random_seed(7);
    kc_model *m = kc_sequential(kc_shape1(20));
    kc_add(m, kc_dense(300, KC_RELU));
    kc_add(m, kc_dropout(0.3f));
    kc_add(m, kc_dense(40, KC_TANH));
    kc_add(m, kc_dense(5, KC_SOFTMAX));
    return m;
}

static float *train_weights(int threads, int64_t *count) {
    enum { N = 300 };
    static float x[N * 20], y[N * 5];
    fill(x, N * 20, 11);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 5; j++) y[i * 5 + j] = (float)(j == i % 5);
    kc_set_num_threads(threads);
    kc_model *m = mlp();
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, kc_rmsprop(NULL), KC_METRIC_ACCURACY));
    kc_dataset d = {.count = N, .x_shape = kc_shape1(20), .x_dtype = KC_FLOAT32, .x = x,
                    .y_shape = kc_shape1(5), .y_dtype = KC_FLOAT32, .y = y};
    KC_CHECK(kc_fit(m, &d, &(kc_fit_opts){.batch_size = 32, .epochs = 3, .verbose = -1}, NULL));
    *count = kc_count_params(m);
    float *w = malloc(sizeof(float) * (size_t)*count);
    KC_CHECK(kc_get_weights(m, w, *count));
    kc_model_free(m);
    return w;
}

/* kerac's own kernels promise this; OpenBLAS (CPUs without AVX-512) does not */
static void skip_without_own_kernels(void) {
    if (!strcmp(kc_gemm_backend(), "openblas"))
        cr_skip_test("OpenBLAS products depend on the thread count and the batch");
}

Test(determinism, training_is_the_same_on_one_and_two_threads) {
    skip_without_own_kernels();
    int64_t n1, n2;
    float *w1 = train_weights(1, &n1), *w2 = train_weights(2, &n2);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(w1, w2, sizeof(float) * (size_t)n1) == 0,
              "weights after training differ between 1 and 2 threads");
    free(w1);
    free(w2);
}

/* Dense layers step their weights inside the gradient product (kc_train_on_batch); the same
 * steps taken the plain way (all gradients first, then the optimizer over the whole buffer)
 * must give the same bits, for every optimizer, batches of several K blocks and of one
 * sample, data input (sparse products) and hidden layers. */
static kc_model *fused_model(kc_optimizer *opt) {
    kc_set_random_seed(3);
    kc_model *m = kc_sequential(kc_shape1(53));
    kc_add(m, kc_dense(37, KC_RELU));
    kc_add(m, kc_dropout(0.25f));
    kc_add(m, kc_dense(70, KC_TANH));
    kc_add(m, kc_dense(5, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, opt, KC_METRIC_ACCURACY));
    return m;
}

static kc_optimizer *make_optimizer(int which) {
    switch (which) {
    case 0: return kc_rmsprop(NULL);
    case 1: return kc_rmsprop(&(kc_rmsprop_opts){.momentum = 0.5f, .centered = 1});
    case 2: return kc_adam(NULL);
    case 3: return kc_sgd(&(kc_sgd_opts){.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = 1});
    case 4: return kc_adadelta(NULL);
    case 5: return kc_adagrad(NULL);
    case 6: return kc_nadam(NULL);
    default: return kc_adamw(NULL);
    }
}

Test(fused_step, equals_gradients_then_optimizer) {
    enum { N = 300, IN = 53, OUT = 5 };
    static float x[N * IN], y[N * OUT];
    fill(x, N * IN, 31);
    for (int i = 0; i < N * IN; i++) x[i] = x[i] < 0.2f ? 0.0f : x[i]; /* mostly zeros, as images */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) y[i * OUT + j] = (float)(j == i % OUT);
    static const int batches[] = {300, 7, 1, 128};
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        for (int which = 0; which < 8; which++) {
            kc_model *fused = fused_model(make_optimizer(which)), *plain = fused_model(make_optimizer(which));
            int64_t count = kc_count_params(fused);
            float *grads = malloc(sizeof(float) * (size_t)count);
            float *wf = malloc(sizeof(float) * (size_t)count), *wp = malloc(sizeof(float) * (size_t)count);
            kc_model_view v;
            KC_CHECK(kc_model_view_get(plain, &v));
            for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
                double loss;
                KC_CHECK(kc_train_on_batch(fused, x, y, batches[b], NULL));
                /* the same dropout masks: kc_compute_gradients keys them by the step count */
                KC_CHECK(kc_compute_gradients(plain, x, y, batches[b], 1, &loss, grads, count));
                kc_optimizer_update(v.opt, v.params, grads, 0, count);
                kc_optimizer_finish_step(v.opt);
                (*v.step)++;
                KC_CHECK(kc_get_weights(fused, wf, count));
                KC_CHECK(kc_get_weights(plain, wp, count));
                int64_t q = 0;
                while (q < count && !memcmp(&wf[q], &wp[q], sizeof(float))) q++;
                cr_assert(q == count,
                          "threads %d, optimizer %d, step %zu (batch %d): weight %lld is %.9g "
                          "stepped in the product, %.9g stepped after it",
                          threads, which, b, batches[b], (long long)q, wf[q], wp[q]);
            }
            free(grads);
            free(wf);
            free(wp);
            kc_model_free(fused);
            kc_model_free(plain);
        }
    }
}

/* Dense(relu) + Dropout + Dense runs fused (the mask and the relu derivative in the products'
 * last stores, the Dropout skipped); Dense(linear) + Activation(relu) + Dropout + Dense is not
 * fused and computes the same things pass by pass. Same weights bit for bit after training,
 * with the dropout masks made the same (a layer's mask seed follows its position). */
static kc_model *relu_dropout_model(int fused, int which_opt) {
    kc_set_random_seed(11);
    kc_model *m = kc_sequential(kc_shape1(53));
    kc_add(m, kc_dense(64, fused ? KC_RELU : KC_LINEAR));
    if (!fused) kc_add(m, kc_activation(KC_RELU));
    kc_add(m, kc_dropout(0.3f));
    kc_add(m, kc_dense(40, fused ? KC_RELU : KC_LINEAR));
    if (!fused) kc_add(m, kc_activation(KC_RELU));
    kc_add(m, kc_dense(5, KC_SOFTMAX));
    KC_CHECK(kc_compile(m, KC_CATEGORICAL_CROSSENTROPY, make_optimizer(which_opt), KC_METRIC_ACCURACY));
    kc_model_layer(m, fused ? 1 : 2)->seed = 0x1234567;
    return m;
}

Test(fused_step, relu_dropout_fusion_changes_no_bit) {
    enum { N = 300, IN = 53, OUT = 5 };
    static float x[N * IN], y[N * OUT], pf[N * OUT], pp[N * OUT];
    fill(x, N * IN, 41);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) y[i * OUT + j] = (float)(j == i % OUT);
    static const int batches[] = {128, 300, 1, 7};
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        for (int which = 0; which < 3; which++) {
            kc_model *fused = relu_dropout_model(1, which), *plain = relu_dropout_model(0, which);
            int64_t count = kc_count_params(fused);
            cr_assert_eq(count, kc_count_params(plain));
            float *wf = malloc(sizeof(float) * (size_t)count), *wp = malloc(sizeof(float) * (size_t)count);
            for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
                KC_CHECK(kc_train_on_batch(fused, x, y, batches[b], NULL));
                KC_CHECK(kc_train_on_batch(plain, x, y, batches[b], NULL));
                KC_CHECK(kc_get_weights(fused, wf, count));
                KC_CHECK(kc_get_weights(plain, wp, count));
                int64_t q = 0;
                while (q < count && !memcmp(&wf[q], &wp[q], sizeof(float))) q++;
                cr_assert(q == count, "threads %d, optimizer %d, step %zu: weight %lld is %.9g fused, %.9g not",
                          threads, which, b, (long long)q, wf[q], wp[q]);
            }
            /* gradients without an update, and inference (the Dropout inactive) */
            double lf, lp;
            KC_CHECK(kc_compute_gradients(fused, x, y, 200, 1, &lf, wf, count));
            KC_CHECK(kc_compute_gradients(plain, x, y, 200, 1, &lp, wp, count));
            cr_assert(lf == lp && !memcmp(wf, wp, sizeof(float) * (size_t)count),
                      "gradients differ with the fusion");
            KC_CHECK(kc_predict(fused, x, N, pf));
            KC_CHECK(kc_predict(plain, x, N, pp));
            cr_assert(!memcmp(pf, pp, sizeof pf), "predictions differ with the fusion");
            free(wf);
            free(wp);
            kc_model_free(fused);
            kc_model_free(plain);
        }
    }
}

Test(determinism, one_sample_predict_equals_its_row_in_a_batch) {
    skip_without_own_kernels();
    for (int threads = 1; threads <= 2; threads++) {
        kc_set_num_threads(threads);
        kc_model *m = mlp();
        enum { N = 9 };
        float x[N * 20], batch_out[N * 5], one_out[5];
        fill(x, N * 20, 5);
        KC_CHECK(kc_predict(m, x, N, batch_out));
        for (int i = 0; i < N; i++) {
            KC_CHECK(kc_predict(m, x + i * 20, 1, one_out));
            cr_assert(memcmp(one_out, batch_out + i * 5, sizeof one_out) == 0,
                      "threads %d: sample %d alone differs from its row in the batch", threads, i);
        }
        kc_model_free(m);
    }
}
