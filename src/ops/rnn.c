/* rnn.c: SimpleRNN, LSTM and GRU over whole sequences (see rnn.h).
 *
 * Layout: x (B, T, F) row-major; the projections XP (B, T, G u) = x @ W + b are one product
 * over all B T rows. Step s consumes input position t = s (go_backwards: T - 1 - s); every
 * per-step array is kept by position t, so that one product over B T rows gives each weight
 * gradient at the end (dW = X^T dZ, dU = Hprev^T dZ). The per-step gate values overwrite XP in
 * place, and backward overwrites them with the gate gradients.
 *
 * Masks (Keras 3's backend.rnn without zero_output_for_mask): at a masked step the state (h
 * and c) is kept, and the step's output is the previous output, i.e. the kept h. */
/* clang reports the `omp simd` loops it leaves scalar (the generic activations' switch); GCC
 * vectorises the constant-activation copies, which are the ones that run */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif
#include "../util/isa.h"
#include "rnn.h"
#include "ops.h"
#include <math.h>
#include <string.h>
#include "../util/threads.h"

int kc_rnn_gates(kc_cell_kind cell) { return cell == KC_CELL_LSTM ? 4 : cell == KC_CELL_GRU ? 3 : 1; }

int kc_rnn_act_ok(kc_act act) {
    return act == KC_LINEAR || act == KC_RELU || act == KC_SIGMOID || act == KC_TANH ||
           act == KC_HARD_SIGMOID || act == KC_SOFTSIGN;
}

/* exp(x) for the activations, in a form the compiler vectorises: Cephes's range reduction
 * and polynomial (about 1 ulp), x clamped to [-87.3, 88.7] */
static inline float exp_v(float x) {
    x = x < -87.3f ? -87.3f : x > 88.7f ? 88.7f : x;
    /* round to nearest by the 1.5 * 2^23 trick (no libm call, so it vectorises) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float q = 1.9875691500e-4f;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    q = q * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } sc = {.i = ((int32_t)n + 127) << 23};
    return q * sc.f;
}
static inline float sigm_v(float x) { return 1.0f / (1.0f + exp_v(-x)); }
/* tanh: Cephes's odd polynomial below |x| 0.625, else 1 - 2 / (exp(2|x|) + 1) */
static inline float tanh_v(float x) {
    float ax = x < 0 ? -x : x, z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float big = 1.0f - 2.0f / (exp_v(2.0f * ax) + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

/* y = act(x) over n values, in place */
KC_CLONES static void gate_act_row(float *restrict x, int n, kc_act act) {
    switch (act) {
    case KC_TANH:
#pragma omp simd
        for (int j = 0; j < n; j++) x[j] = tanh_v(x[j]);
        break;
    case KC_SIGMOID:
#pragma omp simd
        for (int j = 0; j < n; j++) x[j] = sigm_v(x[j]);
        break;
    case KC_RELU:
#pragma omp simd
        for (int j = 0; j < n; j++) x[j] = x[j] > 0.0f ? x[j] : 0.0f;
        break;
    case KC_HARD_SIGMOID:
#pragma omp simd
        for (int j = 0; j < n; j++) {
            float y = x[j] + 3.0f;
            y = y < 0.0f ? 0.0f : y > 6.0f ? 6.0f : y;
            x[j] = y / 6.0f;
        }
        break;
    case KC_SOFTSIGN:
#pragma omp simd
        for (int j = 0; j < n; j++) x[j] = x[j] / ((x[j] < 0 ? -x[j] : x[j]) + 1.0f);
        break;
    default: break;
    }
}

/* the derivative from the output y = act(x) */
static inline float dactf(float y, kc_act act) {
    switch (act) {
    case KC_TANH: return 1.0f - y * y;
    case KC_SIGMOID: return y * (1.0f - y);
    case KC_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case KC_HARD_SIGMOID: return y > 0.0f && y < 1.0f ? 1.0f / 6.0f : 0.0f;
    case KC_SOFTSIGN: {
        float d = 1.0f - (y < 0 ? -y : y);
        return d * d;
    }
    default: return 1.0f;
    }
}

/* one LSTM row's gate gradients, in place of the gate values (i f g o), and dc; inlined with
 * constant activations so that the loop has no switch and vectorises */
static inline __attribute__((always_inline)) void lstm_back(
    float *restrict zr, float *restrict dc, const float *restrict dh, const float *restrict cp,
    const float *restrict ac, int u, kc_act act, kc_act ra) {
#pragma omp simd
    for (int j = 0; j < u; j++) {
        float ig = zr[j], fg = zr[u + j], gg = zr[2 * u + j], og = zr[3 * u + j];
        float d = dc[j] + dh[j] * og * dactf(ac[j], act);
        zr[j] = d * gg * dactf(ig, ra);
        zr[u + j] = d * cp[j] * dactf(fg, ra);
        zr[2 * u + j] = d * ig * dactf(gg, act);
        zr[3 * u + j] = dh[j] * ac[j] * dactf(og, ra);
        dc[j] = d * fg;
    }
}

/* one GRU (reset_after) row's gate gradients (z r h), the recurrent side's in dr, and dh z */
static inline __attribute__((always_inline)) void gru_back(
    float *restrict zr, float *restrict dr, float *restrict carry, const float *restrict dh,
    const float *restrict hp, const float *restrict rh, int u, kc_act act, kc_act ra) {
#pragma omp simd
    for (int j = 0; j < u; j++) {
        float zg = zr[j], rg = zr[u + j], hh = zr[2 * u + j];
        float dhh = dh[j] * (1.0f - zg) * dactf(hh, act);
        float dz = dh[j] * (hp[j] - hh) * dactf(zg, ra);
        float drg = dhh * rh[j] * dactf(rg, ra);
        carry[j] = dh[j] * zg;
        zr[j] = dr[j] = dz;
        zr[u + j] = dr[u + j] = drg;
        zr[2 * u + j] = dhh;
        dr[2 * u + j] = dhh * rg;
    }
}

/* ---- the workspace ---- */
typedef struct {
    float *xp;    /* B T G u: projections, then gate values, then gate gradients */
    float *hprev; /* B T u: the state h before the step at t */
    float *cp, *cn; /* LSTM, B T u: c before and after the step at t */
    float *rh;    /* GRU, B T u: reset_after: h @ U_h + b_h; else r * h */
    float *dzr;   /* GRU reset_after, B T 3u: the recurrent side's gate gradients */
    float *xd;    /* B T M F: the input after dropout (M: the masks' count) */
    float *hd;    /* B T M u: hprev after recurrent dropout (backward's dU) */
    float *in_keep, *rec_keep; /* B M F, B M u */
    float *dxg;   /* per_gate input dropout, B T F: one gate's part of dx */
    float *h, *c, *hdrop, *tmp, *tmp2, *rbuf, *dh, *dc; /* B G u each */
} ws_parts;

static int64_t layout(const kc_rnn_args *a, ws_parts *p) {
    int64_t B = a->B, T = a->T, F = a->F, u = a->u, G = kc_rnn_gates(a->cell);
    int64_t at = 0;
    float *base = a->ws;
#define TAKE(field, n)                                                                        \
    do {                                                                                      \
        if (p) p->field = base ? base + at : NULL;                                            \
        at += (n);                                                                            \
    } while (0)
    if (p) memset(p, 0, sizeof *p);
    TAKE(xp, B * T * G * u);
    TAKE(hprev, B * T * u);
    if (a->cell == KC_CELL_LSTM) {
        TAKE(cp, B * T * u);
        TAKE(cn, B * T * u);
    }
    if (a->cell == KC_CELL_GRU) {
        TAKE(rh, B * T * u);
        if (a->reset_after) TAKE(dzr, B * T * 3 * u);
    }
    const int64_t M = kc_rnn_mask_count(a);
    if (a->in_dropout) {
        TAKE(xd, B * T * M * F);
        TAKE(in_keep, B * M * F);
        if (M > 1) TAKE(dxg, B * T * F);
    }
    if (a->rec_dropout) {
        TAKE(hd, B * T * M * u);
        TAKE(rec_keep, B * M * u);
    }
    TAKE(h, B * G * u);
    TAKE(c, B * G * u);
    TAKE(hdrop, B * G * u);
    TAKE(tmp, B * G * u);
    TAKE(tmp2, B * G * u);
    TAKE(rbuf, B * G * u);
    TAKE(dh, B * G * u);
    TAKE(dc, B * G * u);
#undef TAKE
    return at;
}

int64_t kc_rnn_workspace(const kc_rnn_args *a) { return layout(a, NULL); }
int kc_rnn_mask_count(const kc_rnn_args *a) {
    return a->per_gate && a->cell != KC_CELL_SIMPLE ? kc_rnn_gates(a->cell) : 1;
}
float *kc_rnn_in_keep(const kc_rnn_args *a) {
    ws_parts p;
    layout(a, &p);
    return p.in_keep;
}
float *kc_rnn_rec_keep(const kc_rnn_args *a) {
    ws_parts p;
    layout(a, &p);
    return p.rec_keep;
}

/* C (m, n) (+)= A (m, k) @ B (k, n), with strides */
static void mm(int m, int n, int k, const float *A, int64_t a_rs, int64_t a_cs, const float *Bm,
               int64_t b_rs, int64_t b_cs, float *C, int64_t ldc, int acc, const float *bias) {
    kc_gemm_ex(&(kc_gemm_args){.m = m, .n = n, .k = k, .a = A, .a_rs = a_rs, .a_cs = a_cs,
                               .b = Bm, .b_rs = b_rs, .b_cs = b_cs, .c = C, .ldc = ldc,
                               .accumulate = acc, .bias = bias});
}

/* one step's elementwise work over rows [b0, b1), on the pool */
typedef struct {
    const kc_rnn_args *a;
    ws_parts *p;
    float *z;        /* the step's gate rows (row b at z + b T G u) */
    const float *hd; /* GRU reset_after=False: the h gate's input h (after recurrent dropout) */
    int64_t hd_rs;   /* its row stride */
    int t, phase;
} step_ctx;

static inline int real_step(const kc_rnn_args *a, int64_t b, int t) {
    return !a->mask || a->mask[b * a->T + t];
}

KC_CLONES static void fwd_rows(void *arg, int64_t b0, int64_t b1) {
    const step_ctx *s = arg;
    const kc_rnn_args *a = s->a;
    const ws_parts *p = s->p;
    const int u = a->u, Gu = kc_rnn_gates(a->cell) * u, t = s->t;
    const int64_t TGu = (int64_t)a->T * Gu, Tu = (int64_t)a->T * u;
    const kc_act act = a->act, ra = a->rec_act;
    for (int64_t b = b0; b < b1; b++) {
        float *restrict zr = s->z + b * TGu, *restrict h = p->h + b * u;
        const int keep = real_step(a, b, t);
        if (a->cell == KC_CELL_LSTM) {
            float *restrict c = p->c + b * u;
            float *restrict cp = p->cp + b * Tu + (int64_t)t * u;
            float *restrict cn = p->cn + b * Tu + (int64_t)t * u;
            gate_act_row(zr, 2 * u, ra);
            gate_act_row(zr + 2 * u, u, act);
            gate_act_row(zr + 3 * u, u, ra);
#pragma omp simd
            for (int j = 0; j < u; j++) {
                cp[j] = c[j];
                cn[j] = zr[u + j] * c[j] + zr[j] * zr[2 * u + j];
            }
            if (keep) memcpy(c, cn, sizeof(float) * (size_t)u);
            gate_act_row(cn, u, act); /* cn keeps act(c) for backward */
            if (keep)
#pragma omp simd
                for (int j = 0; j < u; j++) h[j] = zr[3 * u + j] * cn[j];
        } else if (a->cell == KC_CELL_SIMPLE) {
            gate_act_row(zr, u, act);
            if (keep) memcpy(h, zr, sizeof(float) * (size_t)u);
        } else if (a->reset_after) {
            const float *restrict r = p->rbuf + b * Gu;
            float *restrict rh = p->rh + b * Tu + (int64_t)t * u;
#pragma omp simd
            for (int j = 0; j < 2 * u; j++) zr[j] += r[j];
            gate_act_row(zr, 2 * u, ra);
#pragma omp simd
            for (int j = 0; j < u; j++) {
                rh[j] = r[2 * u + j];
                zr[2 * u + j] += zr[u + j] * r[2 * u + j];
            }
            gate_act_row(zr + 2 * u, u, act);
            if (keep)
#pragma omp simd
                for (int j = 0; j < u; j++) h[j] = zr[j] * h[j] + (1.0f - zr[j]) * zr[2 * u + j];
        } else if (s->phase == 0) { /* GRU reset_after=False: z, r and r * h */
            const float *restrict r = p->rbuf + b * Gu, *restrict hdr = s->hd + b * s->hd_rs;
            float *restrict rh = p->rh + b * Tu + (int64_t)t * u;
#pragma omp simd
            for (int j = 0; j < 2 * u; j++) zr[j] += r[j];
            gate_act_row(zr, 2 * u, ra);
#pragma omp simd
            for (int j = 0; j < u; j++) rh[j] = zr[u + j] * hdr[j];
        } else { /* GRU reset_after=False: hh and h */
            gate_act_row(zr + 2 * u, u, act);
            if (keep)
#pragma omp simd
                for (int j = 0; j < u; j++) h[j] = zr[j] * h[j] + (1.0f - zr[j]) * zr[2 * u + j];
        }
    }
}

static void run_rows(step_ctx *s, kc_range_fn fn, int phase) {
    s->phase = phase;
    kc_parallel_range(s->a->B, 1, (int64_t)kc_rnn_gates(s->a->cell) * s->a->u * 16, fn, s);
}

void kc_rnn_forward(const kc_rnn_args *a, const float *x, const float *h0, const float *c0,
                    float *out, float *h_last, float *c_last) {
    ws_parts p;
    layout(a, &p);
    const int B = a->B, T = a->T, F = a->F, u = a->u, G = kc_rnn_gates(a->cell), Gu = G * u;
    const int64_t TGu = (int64_t)T * Gu, Tu = (int64_t)T * u;
    const int M = kc_rnn_mask_count(a);
    if (a->in_dropout) { /* the same masks at every step */
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int g = 0; g < M; g++) {
                    const float *xr = x + ((int64_t)b * T + t) * F;
                    float *yr = p.xd + (((int64_t)b * T + t) * M + g) * F;
                    const float *k = p.in_keep + ((int64_t)b * M + g) * F;
                    for (int f = 0; f < F; f++) yr[f] = xr[f] * k[f];
                }
    }
    /* every step's input projection in one product (one per gate with per-gate masks), with
     * the input bias */
    if (a->in_dropout && M > 1)
        for (int g = 0; g < G; g++)
            mm(B * T, u, F, p.xd + (int64_t)g * F, (int64_t)M * F, 1, a->W + (int64_t)g * u, Gu,
               1, p.xp + (int64_t)g * u, Gu, 0, a->b ? a->b + (int64_t)g * u : NULL);
    else
        mm(B * T, Gu, F, a->in_dropout ? p.xd : x, F, 1, a->W, Gu, 1, p.xp, Gu, 0, a->b);
    if (h0) memcpy(p.h, h0, sizeof(float) * (size_t)B * u);
    else memset(p.h, 0, sizeof(float) * (size_t)B * u);
    if (a->cell == KC_CELL_LSTM) {
        if (c0) memcpy(p.c, c0, sizeof(float) * (size_t)B * u);
        else memset(p.c, 0, sizeof(float) * (size_t)B * u);
    }
    const float *rbias = a->cell == KC_CELL_GRU && a->reset_after && a->b ? a->b + Gu : NULL;
    step_ctx sc = {.a = a, .p = &p};
    for (int s = 0; s < T; s++) {
        const int t = a->go_backwards ? T - 1 - s : s;
        float *z = p.xp + (int64_t)t * Gu; /* row b at z + b * TGu */
        for (int b = 0; b < B; b++)
            memcpy(p.hprev + b * Tu + (int64_t)t * u, p.h + (int64_t)b * u, sizeof(float) * u);
        const float *hd = p.h; /* the recurrent products' input, rows of hd_rs */
        int64_t hd_rs = u;
        if (a->rec_dropout) {
            for (int b = 0; b < B; b++)
                for (int g = 0; g < M; g++) {
                    const float *hr = p.h + (int64_t)b * u;
                    const float *k = p.rec_keep + ((int64_t)b * M + g) * u;
                    float *d = p.hdrop + ((int64_t)b * M + g) * u;
                    for (int j = 0; j < u; j++) d[j] = hr[j] * k[j];
                }
            for (int b = 0; b < B; b++)
                memcpy(p.hd + ((int64_t)b * T + t) * M * u, p.hdrop + (int64_t)b * M * u,
                       sizeof(float) * (size_t)M * u);
            hd = p.hdrop;
            hd_rs = (int64_t)M * u;
        }
        const int pg = a->rec_dropout && M > 1; /* a product per gate */
        sc.z = z, sc.t = t;
        sc.hd = pg ? hd + 2 * u : hd, sc.hd_rs = hd_rs;
        if (a->cell == KC_CELL_LSTM || a->cell == KC_CELL_SIMPLE) {
            /* z += h @ U straight into the step's projections */
            if (pg)
                for (int g = 0; g < G; g++)
                    mm(B, u, u, hd + (int64_t)g * u, hd_rs, 1, a->U + (int64_t)g * u, Gu, 1,
                       z + (int64_t)g * u, TGu, 1, NULL);
            else
                mm(B, Gu, u, hd, hd_rs, 1, a->U, Gu, 1, z, TGu, 1, NULL);
            run_rows(&sc, fwd_rows, 0);
        } else if (a->reset_after) {
            if (pg)
                for (int g = 0; g < G; g++)
                    mm(B, u, u, hd + (int64_t)g * u, hd_rs, 1, a->U + (int64_t)g * u, Gu, 1,
                       p.rbuf + (int64_t)g * u, Gu, 0, rbias ? rbias + (int64_t)g * u : NULL);
            else
                mm(B, Gu, u, hd, hd_rs, 1, a->U, Gu, 1, p.rbuf, Gu, 0, rbias);
            run_rows(&sc, fwd_rows, 0);
        } else {
            if (pg)
                for (int g = 0; g < 2; g++)
                    mm(B, u, u, hd + (int64_t)g * u, hd_rs, 1, a->U + (int64_t)g * u, Gu, 1,
                       p.rbuf + (int64_t)g * u, Gu, 0, NULL);
            else
                mm(B, 2 * u, u, hd, hd_rs, 1, a->U, Gu, 1, p.rbuf, Gu, 0, NULL);
            run_rows(&sc, fwd_rows, 0);
            /* (r * h) @ U_h, into the h gate's projection */
            mm(B, u, u, p.rh + (int64_t)t * u, Tu, 1, a->U + 2 * u, Gu, 1, z + 2 * u, TGu, 1,
               NULL);
            run_rows(&sc, fwd_rows, 1);
        }
        if (a->return_sequences)
            for (int b = 0; b < B; b++) {
                float *o = out + ((int64_t)b * T + s) * u;
                if (a->zero_output && !real_step(a, b, t)) memset(o, 0, sizeof(float) * u);
                else memcpy(o, p.h + (int64_t)b * u, sizeof(float) * u);
            }
    }
    if (!a->return_sequences) {
        memcpy(out, p.h, sizeof(float) * (size_t)B * u);
        /* the last step's output: 0 where it is masked, with zero_output_for_mask */
        const int tl = a->go_backwards ? 0 : T - 1;
        for (int b = 0; a->zero_output && b < B; b++)
            if (!real_step(a, b, tl)) memset(out + (int64_t)b * u, 0, sizeof(float) * u);
    }
    if (h_last) memcpy(h_last, p.h, sizeof(float) * (size_t)B * u);
    if (c_last && a->cell == KC_CELL_LSTM) memcpy(c_last, p.c, sizeof(float) * (size_t)B * u);
}

/* backward's elementwise work of one step: the gate gradients (in place of the gate values)
 * from dh (and dc), phase 0; phase 1 (GRU reset_after=False): r's gradient from d(r h);
 * phase 2: dh_{t-1} from the recurrent product's result in tmp */
KC_CLONES static void bwd_rows(void *arg, int64_t b0, int64_t b1) {
    const step_ctx *s = arg;
    const kc_rnn_args *a = s->a;
    const ws_parts *p = s->p;
    const int u = a->u, Gu = kc_rnn_gates(a->cell) * u, t = s->t;
    const int64_t TGu = (int64_t)a->T * Gu, Tu = (int64_t)a->T * u;
    const kc_act act = a->act, ra = a->rec_act;
    for (int64_t b = b0; b < b1; b++) {
        float *restrict zr = s->z + b * TGu, *restrict dh = p->dh + b * u;
        const int keep = real_step(a, b, t);
        if (s->phase == 2) {
            if (!keep) continue; /* a masked step passes dh (and dc) on unchanged */
            const float *restrict tm = p->tmp + b * u;
            /* per-gate masks were applied gate by gate (rec_back_gates) */
            const float *restrict rk =
                a->rec_dropout && kc_rnn_mask_count(a) == 1 ? p->rec_keep + b * u : NULL;
            const float *restrict carry = p->rbuf + b * u; /* GRU: dh * z */
            for (int j = 0; j < u; j++) {
                float g = rk ? tm[j] * rk[j] : tm[j];
                dh[j] = a->cell == KC_CELL_GRU ? g + carry[j] : g;
            }
            continue;
        }
        if (a->cell == KC_CELL_LSTM) {
            if (!keep) {
                memset(zr, 0, sizeof(float) * (size_t)Gu);
                continue;
            }
            float *restrict dc = p->dc + b * u;
            const float *restrict cp = p->cp + b * Tu + (int64_t)t * u;
            const float *restrict ac = p->cn + b * Tu + (int64_t)t * u; /* act(c) */
            if (act == KC_TANH && ra == KC_SIGMOID) /* Keras's defaults: a loop with no switch */
                lstm_back(zr, dc, dh, cp, ac, u, KC_TANH, KC_SIGMOID);
            else
                lstm_back(zr, dc, dh, cp, ac, u, act, ra);
        } else if (a->cell == KC_CELL_SIMPLE) {
            if (!keep) {
                memset(zr, 0, sizeof(float) * (size_t)u);
                continue;
            }
            for (int j = 0; j < u; j++) zr[j] = dh[j] * dactf(zr[j], act);
        } else if (a->reset_after) {
            float *restrict dr = p->dzr + (int64_t)t * Gu + b * TGu;
            if (!keep) {
                memset(zr, 0, sizeof(float) * (size_t)Gu);
                memset(dr, 0, sizeof(float) * (size_t)Gu);
                continue;
            }
            const float *restrict hp = p->hprev + b * Tu + (int64_t)t * u;
            const float *restrict rh = p->rh + b * Tu + (int64_t)t * u;
            float *restrict carry = p->rbuf + b * u;
            if (act == KC_TANH && ra == KC_SIGMOID)
                gru_back(zr, dr, carry, dh, hp, rh, u, KC_TANH, KC_SIGMOID);
            else
                gru_back(zr, dr, carry, dh, hp, rh, u, act, ra);
        } else if (s->phase == 0) { /* GRU reset_after=False */
            const float *restrict hp = p->hprev + b * Tu + (int64_t)t * u;
            float *restrict carry = p->rbuf + b * u;
#pragma omp simd
            for (int j = 0; j < u; j++) {
                float zg = zr[j], hh = zr[2 * u + j];
                carry[j] = dh[j] * zg;
                zr[2 * u + j] = keep ? dh[j] * (1.0f - zg) * dactf(hh, act) : 0.0f;
                zr[j] = keep ? dh[j] * (hp[j] - hh) * dactf(zg, ra) : 0.0f;
            }
        } else { /* phase 1 */
            float *restrict d2 = p->tmp2 + b * u;
            const int M = a->rec_dropout ? kc_rnn_mask_count(a) : 1;
            const float *restrict hdr = a->rec_dropout ? p->hd + ((b * a->T + t) * M + M - 1) * u
                                                       : p->hprev + b * Tu + (int64_t)t * u;
#pragma omp simd
            for (int j = 0; j < u; j++) {
                float rg = zr[u + j];
                zr[u + j] = d2[j] * hdr[j] * dactf(rg, ra);
                d2[j] *= rg; /* the h part's gradient w.r.t. the dropped h */
            }
        }
    }
}

/* per-gate recurrent masks: tmp (+)= sum over gates g in [0, ng) of (D_g @ U_g^T) * m_g, D's
 * rows ld apart (hdrop, unused in backward, holds each product) */
static void rec_back_gates(const kc_rnn_args *a, const ws_parts *p, const float *D, int64_t ld,
                           int ng, int acc) {
    const int B = a->B, u = a->u, G = kc_rnn_gates(a->cell), Gu = G * u;
    for (int g = 0; g < ng; g++) {
        mm(B, u, u, D + (int64_t)g * u, ld, 1, a->U + (int64_t)g * u, 1, Gu, p->hdrop, u, 0,
           NULL);
        for (int b = 0; b < B; b++) {
            const float *pr = p->hdrop + (int64_t)b * u, *k = p->rec_keep + ((int64_t)b * G + g) * u;
            float *tm = p->tmp + (int64_t)b * u;
            for (int j = 0; j < u; j++) tm[j] = (acc || g ? tm[j] : 0.0f) + pr[j] * k[j];
        }
    }
}

void kc_rnn_backward(const kc_rnn_args *a, const float *x, const float *dout, float *dx,
                     float *dW, float *dU, float *db) {
    kc_rnn_backward_ex(a, x, dout, NULL, NULL, dx, dW, dU, db, NULL, NULL);
}

void kc_rnn_backward_ex(const kc_rnn_args *a, const float *x, const float *dout,
                        const float *dh_last, const float *dc_last, float *dx, float *dW,
                        float *dU, float *db, float *dh0, float *dc0) {
    ws_parts p;
    layout(a, &p);
    const int B = a->B, T = a->T, F = a->F, u = a->u, G = kc_rnn_gates(a->cell), Gu = G * u;
    const int64_t TGu = (int64_t)T * Gu;
    const int gru_ra = a->cell == KC_CELL_GRU && a->reset_after;
    /* the final state's own gradients (return_state) reach it unchanged through masked steps */
    if (dh_last) memcpy(p.dh, dh_last, sizeof(float) * (size_t)B * u);
    else memset(p.dh, 0, sizeof(float) * (size_t)B * u);
    if (dc_last && a->cell == KC_CELL_LSTM) memcpy(p.dc, dc_last, sizeof(float) * (size_t)B * u);
    else memset(p.dc, 0, sizeof(float) * (size_t)B * u);
    const float *hds = a->rec_dropout ? p.hd : p.hprev; /* the recurrent products' inputs */
    const int M = kc_rnn_mask_count(a), pg = a->rec_dropout && M > 1;
    const int64_t hds_rs = a->rec_dropout ? (int64_t)M * u : u; /* gate g's at column g u */
    step_ctx sc = {.a = a, .p = &p};
    for (int s = T - 1; s >= 0; s--) {
        const int t = a->go_backwards ? T - 1 - s : s;
        float *z = p.xp + (int64_t)t * Gu;
        if (a->return_sequences || s == T - 1) {
            for (int b = 0; b < B; b++) {
                /* a zeroed output (zero_output_for_mask) passes no gradient */
                if (a->zero_output && !real_step(a, b, t)) continue;
                const float *d = dout + ((int64_t)b * (a->return_sequences ? T : 1) +
                                         (a->return_sequences ? s : 0)) * u;
                float *dh = p.dh + (int64_t)b * u;
                for (int j = 0; j < u; j++) dh[j] += d[j];
            }
        }
        sc.z = z, sc.t = t;
        run_rows(&sc, bwd_rows, 0);
        if (a->cell != KC_CELL_GRU) {
            if (pg) rec_back_gates(a, &p, z, TGu, G, 0);
            else mm(B, u, Gu, z, TGu, 1, a->U, 1, Gu, p.tmp, u, 0, NULL);
        } else if (gru_ra) {
            if (pg) rec_back_gates(a, &p, p.dzr + (int64_t)t * Gu, TGu, G, 0);
            else mm(B, u, Gu, p.dzr + (int64_t)t * Gu, TGu, 1, a->U, 1, Gu, p.tmp, u, 0, NULL);
        } else {
            /* d(r * h) = dhh @ U_h^T, then r's gradient; dh_{t-1} through z, r and r * h */
            mm(B, u, u, z + 2 * u, TGu, 1, a->U + 2 * u, 1, Gu, p.tmp2, u, 0, NULL);
            run_rows(&sc, bwd_rows, 1);
            if (pg) {
                rec_back_gates(a, &p, z, TGu, 2, 0);
                for (int b = 0; b < B; b++) {
                    const float *k = p.rec_keep + ((int64_t)b * G + 2) * u;
                    for (int j = 0; j < u; j++) p.tmp[(int64_t)b * u + j] += p.tmp2[(int64_t)b * u + j] * k[j];
                }
            } else {
                mm(B, u, 2 * u, z, TGu, 1, a->U, 1, Gu, p.tmp, u, 0, NULL);
                for (int64_t i = 0; i < (int64_t)B * u; i++) p.tmp[i] += p.tmp2[i];
            }
        }
        run_rows(&sc, bwd_rows, 2);
    }
    if (dh0) memcpy(dh0, p.dh, sizeof(float) * (size_t)B * u);
    if (dc0 && a->cell == KC_CELL_LSTM) memcpy(dc0, p.dc, sizeof(float) * (size_t)B * u);
    /* the weight gradients: one product each over all B T rows */
    /* the weight gradients: one product each over all B T rows (one per gate and weight with
     * per-gate masks) */
    const int mi = a->in_dropout ? M : 1;
    if (a->in_dropout && M > 1)
        for (int g = 0; g < G; g++)
            mm(F, u, B * T, p.xd + (int64_t)g * F, 1, (int64_t)M * F, p.xp + (int64_t)g * u, Gu, 1,
               dW + (int64_t)g * u, Gu, 0, NULL);
    else
        mm(F, Gu, B * T, a->in_dropout ? p.xd : x, 1, F, p.xp, Gu, 1, dW, Gu, 0, NULL);
    /* dU over gates [0, ng) from the gate gradients D (rows of Gu) */
#define DU(D, ng)                                                                              \
    do {                                                                                       \
        if (pg)                                                                                \
            for (int g = 0; g < (ng); g++)                                                     \
                mm(u, u, B * T, hds + (int64_t)g * u, 1, hds_rs, (D) + (int64_t)g * u, Gu, 1,   \
                   dU + (int64_t)g * u, Gu, 0, NULL);                                          \
        else                                                                                   \
            mm(u, (ng) * u, B * T, hds, 1, hds_rs, (D), Gu, 1, dU, Gu, 0, NULL);               \
    } while (0)
    if (gru_ra) {
        DU(p.dzr, G);
        if (db) {
            kc_colsum(p.xp, B * T, Gu, db);
            kc_colsum(p.dzr, B * T, Gu, db + Gu);
        }
    } else if (a->cell == KC_CELL_GRU) {
        DU(p.xp, 2);
        mm(u, u, B * T, p.rh, 1, u, p.xp + 2 * u, Gu, 1, dU + 2 * u, Gu, 0, NULL);
        if (db) kc_colsum(p.xp, B * T, Gu, db);
    } else {
        DU(p.xp, G);
        if (db) kc_colsum(p.xp, B * T, Gu, db);
    }
#undef DU
    if (dx) {
        if (a->in_dropout && mi > 1) { /* sum over gates of (dz_g @ W_g^T) * m_g */
            memset(dx, 0, sizeof(float) * (size_t)B * T * F);
            for (int g = 0; g < G; g++) {
                mm(B * T, F, u, p.xp + (int64_t)g * u, Gu, 1, a->W + (int64_t)g * u, 1, Gu, p.dxg,
                   F, 0, NULL);
                for (int b = 0; b < B; b++) {
                    const float *k = p.in_keep + ((int64_t)b * M + g) * F;
                    for (int t = 0; t < T; t++) {
                        float *r = dx + ((int64_t)b * T + t) * F;
                        const float *q = p.dxg + ((int64_t)b * T + t) * F;
                        for (int f = 0; f < F; f++) r[f] += q[f] * k[f];
                    }
                }
            }
            return;
        }
        mm(B * T, F, Gu, p.xp, Gu, 1, a->W, 1, Gu, dx, F, 0, NULL);
        if (a->in_dropout)
            for (int b = 0; b < B; b++)
                for (int t = 0; t < T; t++) {
                    float *r = dx + ((int64_t)b * T + t) * F;
                    const float *k = p.in_keep + (int64_t)b * F;
                    for (int f = 0; f < F; f++) r[f] *= k[f];
                }
    }
}
