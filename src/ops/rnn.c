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
#include "rnn.h"
#include "ops.h"
#include <math.h>
#include <string.h>

int kc_rnn_gates(kc_cell_kind cell) { return cell == KC_CELL_LSTM ? 4 : cell == KC_CELL_GRU ? 3 : 1; }

int kc_rnn_act_ok(kc_act act) {
    return act == KC_LINEAR || act == KC_RELU || act == KC_SIGMOID || act == KC_TANH ||
           act == KC_HARD_SIGMOID || act == KC_SOFTSIGN;
}

static inline float sigm(float z) {
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

static inline float actf(float x, kc_act act) {
    switch (act) {
    case KC_TANH: return tanhf(x);
    case KC_SIGMOID: return sigm(x);
    case KC_RELU: return x > 0.0f ? x : 0.0f;
    case KC_HARD_SIGMOID: {
        float y = x + 3.0f;
        y = y < 0.0f ? 0.0f : y > 6.0f ? 6.0f : y;
        return y / 6.0f;
    }
    case KC_SOFTSIGN: return x / (fabsf(x) + 1.0f);
    default: return x;
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
        float d = 1.0f - fabsf(y);
        return d * d;
    }
    default: return 1.0f;
    }
}

/* ---- the workspace ---- */
typedef struct {
    float *xp;    /* B T G u: projections, then gate values, then gate gradients */
    float *hprev; /* B T u: the state h before the step at t */
    float *cp, *cn; /* LSTM, B T u: c before and after the step at t */
    float *rh;    /* GRU, B T u: reset_after: h @ U_h + b_h; else r * h */
    float *dzr;   /* GRU reset_after, B T 3u: the recurrent side's gate gradients */
    float *xd;    /* B T F: the input after dropout */
    float *hd;    /* B T u: hprev after recurrent dropout (backward's dU) */
    float *in_keep, *rec_keep; /* B F, B u */
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
    if (a->in_dropout) {
        TAKE(xd, B * T * F);
        TAKE(in_keep, B * F);
    }
    if (a->rec_dropout) {
        TAKE(hd, B * T * u);
        TAKE(rec_keep, B * u);
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

void kc_rnn_forward(const kc_rnn_args *a, const float *x, const float *h0, const float *c0,
                    float *out, float *h_last, float *c_last) {
    ws_parts p;
    layout(a, &p);
    const int B = a->B, T = a->T, F = a->F, u = a->u, G = kc_rnn_gates(a->cell), Gu = G * u;
    const int64_t TGu = (int64_t)T * Gu, Tu = (int64_t)T * u;
    const kc_act act = a->act, ra = a->rec_act;
    const float *xin = x;
    if (a->in_dropout) { /* the same mask at every step */
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *xr = x + ((int64_t)b * T + t) * F;
                float *yr = p.xd + ((int64_t)b * T + t) * F;
                const float *k = p.in_keep + (int64_t)b * F;
                for (int f = 0; f < F; f++) yr[f] = xr[f] * k[f];
            }
        xin = p.xd;
    }
    /* every step's input projection in one product, with the input bias */
    mm(B * T, Gu, F, xin, F, 1, a->W, Gu, 1, p.xp, Gu, 0, a->b);
    if (h0) memcpy(p.h, h0, sizeof(float) * (size_t)B * u);
    else memset(p.h, 0, sizeof(float) * (size_t)B * u);
    if (a->cell == KC_CELL_LSTM) {
        if (c0) memcpy(p.c, c0, sizeof(float) * (size_t)B * u);
        else memset(p.c, 0, sizeof(float) * (size_t)B * u);
    }
    const float *rbias = a->cell == KC_CELL_GRU && a->reset_after && a->b ? a->b + Gu : NULL;
    for (int s = 0; s < T; s++) {
        const int t = a->go_backwards ? T - 1 - s : s;
        float *z = p.xp + (int64_t)t * Gu; /* row b at z + b * TGu */
        for (int b = 0; b < B; b++)
            memcpy(p.hprev + b * Tu + (int64_t)t * u, p.h + (int64_t)b * u, sizeof(float) * u);
        const float *hd = p.h;
        if (a->rec_dropout) {
            for (int64_t i = 0; i < (int64_t)B * u; i++) p.hdrop[i] = p.h[i] * p.rec_keep[i];
            for (int b = 0; b < B; b++)
                memcpy(p.hd + b * Tu + (int64_t)t * u, p.hdrop + (int64_t)b * u,
                       sizeof(float) * u);
            hd = p.hdrop;
        }
        if (a->cell == KC_CELL_LSTM) {
            mm(B, Gu, u, hd, u, 1, a->U, Gu, 1, z, TGu, 1, NULL);
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *h = p.h + (int64_t)b * u, *c = p.c + (int64_t)b * u;
                float *cp = p.cp + b * Tu + (int64_t)t * u, *cn = p.cn + b * Tu + (int64_t)t * u;
                int keep = !a->mask || a->mask[(int64_t)b * T + t];
                for (int j = 0; j < u; j++) {
                    float ig = actf(zr[j], ra), fg = actf(zr[u + j], ra);
                    float gg = actf(zr[2 * u + j], act), og = actf(zr[3 * u + j], ra);
                    zr[j] = ig, zr[u + j] = fg, zr[2 * u + j] = gg, zr[3 * u + j] = og;
                    float cv = fg * c[j] + ig * gg;
                    cp[j] = c[j];
                    cn[j] = cv;
                    if (keep) {
                        c[j] = cv;
                        h[j] = og * actf(cv, act);
                    }
                }
            }
        } else if (a->cell == KC_CELL_SIMPLE) {
            mm(B, u, u, hd, u, 1, a->U, u, 1, z, TGu, 1, NULL);
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *h = p.h + (int64_t)b * u;
                int keep = !a->mask || a->mask[(int64_t)b * T + t];
                for (int j = 0; j < u; j++) {
                    float y = actf(zr[j], act);
                    zr[j] = y;
                    if (keep) h[j] = y;
                }
            }
        } else if (a->reset_after) { /* GRU, reset_after=True */
            mm(B, Gu, u, hd, u, 1, a->U, Gu, 1, p.rbuf, Gu, 0, rbias);
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *h = p.h + (int64_t)b * u, *r = p.rbuf + (int64_t)b * Gu;
                float *rh = p.rh + b * Tu + (int64_t)t * u;
                int keep = !a->mask || a->mask[(int64_t)b * T + t];
                for (int j = 0; j < u; j++) {
                    float zg = actf(zr[j] + r[j], ra), rg = actf(zr[u + j] + r[u + j], ra);
                    float hh = actf(zr[2 * u + j] + rg * r[2 * u + j], act);
                    zr[j] = zg, zr[u + j] = rg, zr[2 * u + j] = hh;
                    rh[j] = r[2 * u + j];
                    if (keep) h[j] = zg * h[j] + (1.0f - zg) * hh;
                }
            }
        } else { /* GRU, reset_after=False */
            mm(B, 2 * u, u, hd, u, 1, a->U, Gu, 1, p.rbuf, Gu, 0, NULL);
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *r = p.rbuf + (int64_t)b * Gu;
                const float *hdr = hd + (int64_t)b * u;
                float *rh = p.rh + b * Tu + (int64_t)t * u;
                for (int j = 0; j < u; j++) {
                    float zg = actf(zr[j] + r[j], ra), rg = actf(zr[u + j] + r[u + j], ra);
                    zr[j] = zg, zr[u + j] = rg;
                    rh[j] = rg * hdr[j];
                }
            }
            /* (r * h) @ U_h, into the h gate's projection */
            mm(B, u, u, p.rh + (int64_t)t * u, Tu, 1, a->U + 2 * u, Gu, 1, z + 2 * u, TGu, 1,
               NULL);
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *h = p.h + (int64_t)b * u;
                int keep = !a->mask || a->mask[(int64_t)b * T + t];
                for (int j = 0; j < u; j++) {
                    float zg = zr[j], hh = actf(zr[2 * u + j], act);
                    zr[2 * u + j] = hh;
                    if (keep) h[j] = zg * h[j] + (1.0f - zg) * hh;
                }
            }
        }
        if (a->return_sequences)
            for (int b = 0; b < B; b++)
                memcpy(out + ((int64_t)b * T + s) * u, p.h + (int64_t)b * u, sizeof(float) * u);
    }
    if (!a->return_sequences) memcpy(out, p.h, sizeof(float) * (size_t)B * u);
    if (h_last) memcpy(h_last, p.h, sizeof(float) * (size_t)B * u);
    if (c_last && a->cell == KC_CELL_LSTM) memcpy(c_last, p.c, sizeof(float) * (size_t)B * u);
}

void kc_rnn_backward(const kc_rnn_args *a, const float *x, const float *dout, float *dx,
                     float *dW, float *dU, float *db) {
    ws_parts p;
    layout(a, &p);
    const int B = a->B, T = a->T, F = a->F, u = a->u, G = kc_rnn_gates(a->cell), Gu = G * u;
    const int64_t TGu = (int64_t)T * Gu, Tu = (int64_t)T * u;
    const kc_act act = a->act, ra = a->rec_act;
    const int gru_ra = a->cell == KC_CELL_GRU && a->reset_after;
    memset(p.dh, 0, sizeof(float) * (size_t)B * u);
    memset(p.dc, 0, sizeof(float) * (size_t)B * u);
    const float *hds = a->rec_dropout ? p.hd : p.hprev; /* the recurrent products' inputs */
    for (int s = T - 1; s >= 0; s--) {
        const int t = a->go_backwards ? T - 1 - s : s;
        float *z = p.xp + (int64_t)t * Gu;
        if (a->return_sequences) {
            for (int b = 0; b < B; b++) {
                const float *d = dout + ((int64_t)b * T + s) * u;
                float *dh = p.dh + (int64_t)b * u;
                for (int j = 0; j < u; j++) dh[j] += d[j];
            }
        } else if (s == T - 1) {
            for (int64_t i = 0; i < (int64_t)B * u; i++) p.dh[i] += dout[i];
        }
        if (a->cell == KC_CELL_LSTM) {
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *dh = p.dh + (int64_t)b * u, *dc = p.dc + (int64_t)b * u;
                if (a->mask && !a->mask[(int64_t)b * T + t]) {
                    memset(zr, 0, sizeof(float) * Gu);
                    continue;
                }
                const float *cp = p.cp + b * Tu + (int64_t)t * u, *cn = p.cn + b * Tu + (int64_t)t * u;
                for (int j = 0; j < u; j++) {
                    float ig = zr[j], fg = zr[u + j], gg = zr[2 * u + j], og = zr[3 * u + j];
                    float ac = actf(cn[j], act);
                    float dct = dc[j] + dh[j] * og * dactf(ac, act);
                    zr[j] = dct * gg * dactf(ig, ra);
                    zr[u + j] = dct * cp[j] * dactf(fg, ra);
                    zr[2 * u + j] = dct * ig * dactf(gg, act);
                    zr[3 * u + j] = dh[j] * ac * dactf(og, ra);
                    dc[j] = dct * fg;
                }
            }
            mm(B, u, Gu, z, TGu, 1, a->U, 1, Gu, p.tmp, u, 0, NULL);
        } else if (a->cell == KC_CELL_SIMPLE) {
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *dh = p.dh + (int64_t)b * u;
                if (a->mask && !a->mask[(int64_t)b * T + t]) {
                    memset(zr, 0, sizeof(float) * u);
                    continue;
                }
                for (int j = 0; j < u; j++) zr[j] = dh[j] * dactf(zr[j], act);
            }
            mm(B, u, u, z, TGu, 1, a->U, 1, u, p.tmp, u, 0, NULL);
        } else if (gru_ra) {
            float *dzr = p.dzr + (int64_t)t * Gu;
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *dr = dzr + b * TGu, *dh = p.dh + (int64_t)b * u;
                if (a->mask && !a->mask[(int64_t)b * T + t]) {
                    memset(zr, 0, sizeof(float) * Gu);
                    memset(dr, 0, sizeof(float) * Gu);
                    continue;
                }
                const float *hp = p.hprev + b * Tu + (int64_t)t * u;
                const float *rh = p.rh + b * Tu + (int64_t)t * u;
                for (int j = 0; j < u; j++) {
                    float zg = zr[j], rg = zr[u + j], hh = zr[2 * u + j];
                    float dhh = dh[j] * (1.0f - zg) * dactf(hh, act);
                    float dz = dh[j] * (hp[j] - hh) * dactf(zg, ra);
                    p.rbuf[(int64_t)b * u + j] = dh[j] * zg;
                    float drg = dhh * rh[j] * dactf(rg, ra);
                    zr[j] = dr[j] = dz;
                    zr[u + j] = dr[u + j] = drg;
                    zr[2 * u + j] = dhh;
                    dr[2 * u + j] = dhh * rg;
                }
            }
            mm(B, u, Gu, dzr, TGu, 1, a->U, 1, Gu, p.tmp, u, 0, NULL);
        } else { /* GRU, reset_after=False */
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *dh = p.dh + (int64_t)b * u;
                int keep = !a->mask || a->mask[(int64_t)b * T + t];
                const float *hp = p.hprev + b * Tu + (int64_t)t * u;
                for (int j = 0; j < u; j++) {
                    float zg = zr[j], hh = zr[2 * u + j];
                    p.rbuf[(int64_t)b * u + j] = dh[j] * zg;
                    zr[2 * u + j] = keep ? dh[j] * (1.0f - zg) * dactf(hh, act) : 0.0f;
                    zr[j] = keep ? dh[j] * (hp[j] - hh) * dactf(zg, ra) : 0.0f;
                }
            }
            /* d(r * h) = dhh @ U_h^T */
            mm(B, u, u, z + 2 * u, TGu, 1, a->U + 2 * u, 1, Gu, p.tmp2, u, 0, NULL);
            for (int b = 0; b < B; b++) {
                float *zr = z + b * TGu, *d2 = p.tmp2 + (int64_t)b * u;
                const float *hdr = hds + b * Tu + (int64_t)t * u;
                for (int j = 0; j < u; j++) {
                    float rg = zr[u + j];
                    zr[u + j] = d2[j] * hdr[j] * dactf(rg, ra);
                    d2[j] *= rg; /* the h part's gradient w.r.t. the dropped h */
                }
            }
            mm(B, u, 2 * u, z, TGu, 1, a->U, 1, Gu, p.tmp, u, 0, NULL);
            for (int64_t i = 0; i < (int64_t)B * u; i++) p.tmp[i] += p.tmp2[i];
        }
        /* dh_{t-1}: through the recurrent product (and recurrent dropout), plus z * dh in a
         * GRU; a masked step passes dh (and dc) on unchanged */
        for (int b = 0; b < B; b++) {
            if (a->mask && !a->mask[(int64_t)b * T + t]) continue;
            float *dh = p.dh + (int64_t)b * u;
            const float *tm = p.tmp + (int64_t)b * u;
            const float *rk = a->rec_dropout ? p.rec_keep + (int64_t)b * u : NULL;
            const float *carry = p.rbuf + (int64_t)b * u; /* GRU: dh * z */
            for (int j = 0; j < u; j++) {
                float g = rk ? tm[j] * rk[j] : tm[j];
                dh[j] = a->cell == KC_CELL_GRU ? g + carry[j] : g;
            }
        }
    }
    /* the weight gradients: one product each over all B T rows */
    const float *xin = a->in_dropout ? p.xd : x;
    mm(F, Gu, B * T, xin, 1, F, p.xp, Gu, 1, dW, Gu, 0, NULL);
    if (gru_ra) {
        mm(u, Gu, B * T, hds, 1, u, p.dzr, Gu, 1, dU, Gu, 0, NULL);
        if (db) {
            kc_colsum(p.xp, B * T, Gu, db);
            kc_colsum(p.dzr, B * T, Gu, db + Gu);
        }
    } else if (a->cell == KC_CELL_GRU) {
        mm(u, 2 * u, B * T, hds, 1, u, p.xp, Gu, 1, dU, Gu, 0, NULL);
        mm(u, u, B * T, p.rh, 1, u, p.xp + 2 * u, Gu, 1, dU + 2 * u, Gu, 0, NULL);
        if (db) kc_colsum(p.xp, B * T, Gu, db);
    } else {
        mm(u, Gu, B * T, hds, 1, u, p.xp, Gu, 1, dU, Gu, 0, NULL);
        if (db) kc_colsum(p.xp, B * T, Gu, db);
    }
    if (dx) {
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
