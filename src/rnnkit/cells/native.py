"""Optional compiled CPU kernels (Mamba's selective scan, convolution and gate; minGRU / minLSTM's gated scan;
sLSTM's recurrence; mLSTM's block-diagonal products), with the PyTorch forms as the fallback.

Why: the selective scan touches ``seq * batch * inner * N`` state elements (268M per layer at batch 32, 1,024
steps, inner 512, N 16) and needs an ``exp`` for each. In PyTorch every step of the recurrence is a separate pass
over memory - about twenty of them forward and backward together (:class:`rnnkit.cells.scan.SelectiveScan`) - which
made Mamba the slowest of the modern cells on a CPU. A loop that keeps one channel's N states in registers does
each element once: the forward is one pass, the backward recomputes a block of states and runs the adjoint in the
same loop, like the CUDA kernel of mamba-ssm does on a GPU.

How: plain C (no PyTorch headers, so it compiles in about a second with the system's C compiler), built on first use
into the user cache (``~/.cache/rnnkit/native/<hash>``, keyed by the source, the compiler and this CPU's flags, as
it is compiled with ``-march=native``) and called through ``ctypes`` on contiguous CPU tensors. ``ctypes`` releases
the GIL, so the batch is split over ``torch.get_num_threads()`` Python threads. Nothing here is required: without
a C compiler, on another device or dtype, or with ``RNNKIT_NATIVE=0``, the PyTorch form runs, and the two agree to
float rounding (tests/cells/test_modern.py runs both).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

MAX_STATE = 1 << 16  # N per channel (the kernel's buffers are on the heap: no real limit)
MAX_BLOCK = 64  # time steps recomputed per block in the backward (its buffers: 2 * block * inner * N values)

_BODY = r"""
/* the logistic sigmoid, shared by every kernel below */
static inline REAL FN(sigm)(REAL x) { return 1 / (1 + EXP(-x)); }

/* softplus as PyTorch computes it (threshold 20: x itself above), log1p(exp(x)) below: log1p by Goldberg's
   u = 1 + e; log(u) e / (u - 1), exact to the log's rounding where 1 + e rounds; 0 for a masked step's -inf */
static inline REAL FN(softplus)(REAL x) {  /* branch-free: the loops over channels that call it vectorise */
    const REAL e = EXP(x), v = 1 + e;
    const REAL l = v == 1 ? e : LOG(v) * (e / (v - 1));
    return x > 20 ? x : (x < -80 ? 0 : l);
}

/* delta for one row of D channels: softplus(raw) into buf, or the row itself */
static inline const REAL* FN(deltas)(int64_t raw, const REAL* restrict dl, int64_t D, REAL* restrict buf) {
    if (!raw) return dl;
    for (int64_t d = 0; d < D; d++) buf[d] = FN(softplus)(dl[d]);
    return buf;
}

/* layout (time-major, contiguous): u, delta, y, d_u, d_delta: (T, Bt, D); B, C, dB, dC: (T, Bt, N);
   A, dA: (D, N); h0, h_last, dh_last, dh0: (Bt, D, N); starts: (ceil(T / K), Bt, D, N), the state at each
   block start. Each call handles batch rows [b0, b1). For each row the (D, N) state stays in cache while time
   advances, and every per-step read is a contiguous row. Returns 0, or -1 when out of memory.
   Two optional fusions (Mamba's block around its scan, each a pass over (T, Bt, D) and a tensor of that size
   fewer): raw != 0: delta holds dt_proj's output before its softplus (delta = softplus(raw)), and d_delta
   becomes the gradient of that raw input; z != NULL (rows at stride zs) with Dv (D): y is the gated output
   (y + Dv u) * silu(z) instead of y. */
int FN(ss_forward)(int64_t T, int64_t Bt, int64_t D, int64_t N, int64_t K, int64_t b0, int64_t b1,
                   const REAL* restrict u, const REAL* restrict delta, const REAL* restrict A,
                   const REAL* restrict B, const REAL* restrict C, const REAL* restrict h0, REAL* restrict y,
                   REAL* restrict h_last, REAL* restrict starts, int64_t raw, const REAL* restrict z, int64_t zs,
                   const REAL* restrict Dv) {
    const int64_t S = D * N;
    REAL* restrict h = (REAL*)malloc(sizeof(REAL) * (S + D));  /* the state, a row of deltas */
    if (!h) return -1;
    REAL* restrict dbuf = h + S;
    for (int64_t b = b0; b < b1; b++) {
        memcpy(h, h0 + b * S, sizeof(REAL) * S);
        for (int64_t t = 0; t < T; t++) {
            if (t % K == 0) memcpy(starts + ((t / K) * Bt + b) * S, h, sizeof(REAL) * S);
            const int64_t row = t * Bt + b;
            const REAL* restrict dl = FN(deltas)(raw, delta + row * D, D, dbuf);
            const REAL* restrict ur = u + row * D;
            const REAL* restrict bt = B + row * N;
            const REAL* restrict ct = C + row * N;
            REAL* restrict yt = y + row * D;
#define FWD_CHANNELS(NN)                                                    \
            for (int64_t d = 0; d < D; d++) {                               \
                const REAL dt = dl[d], du = dt * ur[d];                     \
                const REAL* restrict a = A + d * (NN);                      \
                REAL* restrict hd = h + d * (NN);                           \
                REAL acc = 0;                                               \
                for (int64_t n = 0; n < (NN); n++) {                        \
                    hd[n] = EXP(dt * a[n]) * hd[n] + du * bt[n];            \
                    acc += hd[n] * ct[n];                                   \
                }                                                           \
                yt[d] = acc;                                                \
            }
            if (N == 16) { FWD_CHANNELS(16) } else { FWD_CHANNELS(N) }  /* N = 16: one vector, no remainder */
#undef FWD_CHANNELS
            if (z) {  /* the gate, in its own loop over the channels (it vectorises there) */
                const REAL* restrict zt = z + row * zs;
                for (int64_t d = 0; d < D; d++) yt[d] = (yt[d] + Dv[d] * ur[d]) * (zt[d] * FN(sigm)(zt[d]));
            }
        }
        memcpy(h_last + b * S, h, sizeof(REAL) * S);
    }
    free(h);
    return 0;
}

/* dB, dC must be zero on entry; dA is this call's own (D, N) buffer, zero on entry. With the gate (z != NULL)
   dy is the gradient of the gated output, dz (T, Bt, D) receives z's, and dD is this call's own zeroed (D). */
int FN(ss_backward)(int64_t T, int64_t Bt, int64_t D, int64_t N, int64_t K, int64_t b0, int64_t b1,
                    const REAL* restrict u, const REAL* restrict delta, const REAL* restrict A,
                    const REAL* restrict B, const REAL* restrict C, const REAL* restrict starts,
                    const REAL* restrict dy, const REAL* restrict dh_last, REAL* restrict d_u,
                    REAL* restrict d_delta, REAL* restrict dA, REAL* restrict dB, REAL* restrict dC,
                    REAL* restrict dh0, int64_t raw, const REAL* restrict z, int64_t zs,
                    const REAL* restrict Dv, REAL* restrict dz, REAL* restrict dD) {
    const int64_t S = D * N;
    /* K + 1 states, K decays, dh, each step's y (the gate's backward needs it) and delta, a row of dL/dy */
    REAL* restrict hs = (REAL*)malloc(sizeof(REAL) * (S * (2 * K + 2) + 2 * K * D + D));
    if (!hs) return -1;
    REAL* restrict ex = hs + S * (K + 1);
    REAL* restrict dh = ex + S * K;
    REAL* restrict ys = dh + S;
    REAL* restrict dts = ys + K * D;
    REAL* restrict gbuf = dts + K * D;
    const int64_t blocks = (T + K - 1) / K;
    for (int64_t b = b0; b < b1; b++) {
        memcpy(dh, dh_last + b * S, sizeof(REAL) * S);
        for (int64_t k = blocks - 1; k >= 0; k--) {
            const int64_t t0 = k * K, L = (t0 + K < T ? K : T - t0);
            memcpy(hs, starts + (k * Bt + b) * S, sizeof(REAL) * S);
            for (int64_t j = 0; j < L; j++) {  /* recompute the block's states */
                const int64_t row = (t0 + j) * Bt + b;
                const REAL* restrict dl = FN(deltas)(raw, delta + row * D, D, dts + j * D);
                const REAL* restrict ur = u + row * D;
                const REAL* restrict bt = B + row * N;
                const REAL* restrict ct = C + row * N;
                const REAL* restrict hp = hs + j * S;
                REAL* restrict hn = hs + (j + 1) * S;
                REAL* restrict e = ex + j * S;
                REAL* restrict yj = ys + j * D;
#define RECOMPUTE(NN)                                                       \
                for (int64_t d = 0; d < D; d++) {                           \
                    const REAL dt = dl[d], du = dt * ur[d];                 \
                    const REAL* restrict a = A + d * (NN);                  \
                    REAL acc = 0;                                           \
                    for (int64_t n = 0; n < (NN); n++) {                    \
                        const int64_t q = d * (NN) + n;                     \
                        e[q] = EXP(dt * a[n]);                              \
                        hn[q] = e[q] * hp[q] + du * bt[n];                  \
                        acc += hn[q] * ct[n];                               \
                    }                                                       \
                    yj[d] = acc;                                            \
                }
                if (N == 16) { RECOMPUTE(16) } else { RECOMPUTE(N) }
#undef RECOMPUTE
            }
            for (int64_t j = L - 1; j >= 0; j--) {  /* the adjoint recurrence, in reverse */
                const int64_t row = (t0 + j) * Bt + b;
                const REAL* restrict dl = raw ? dts + j * D : delta + row * D;
                const REAL* restrict ur = u + row * D;
                const REAL* restrict g = dy + row * D;
                const REAL* restrict bt = B + row * N;
                const REAL* restrict ct = C + row * N;
                REAL* restrict dbt = dB + row * N;
                REAL* restrict dct = dC + row * N;
                REAL* restrict dur = d_u + row * D;
                REAL* restrict ddr = d_delta + row * D;
                const REAL* restrict hp = hs + j * S;
                const REAL* restrict hn = hs + (j + 1) * S;
                const REAL* restrict e = ex + j * S;
                if (z) {  /* the gate out = (y + Dv u) silu(z): z's gradient and D's, and g becomes dL/dy */
                    const REAL* restrict zt = z + row * zs;
                    const REAL* restrict yj = ys + j * D;
                    REAL* restrict dzt = dz + row * D;
                    for (int64_t d = 0; d < D; d++) {
                        const REAL sg = FN(sigm)(zt[d]), gy = g[d] * zt[d] * sg;
                        dzt[d] = g[d] * (yj[d] + Dv[d] * ur[d]) * sg * (1 + zt[d] * (1 - sg));
                        dD[d] += gy * ur[d];
                        gbuf[d] = gy;
                    }
                    g = gbuf;
                }
#define ADJOINT(NN)                                                                 \
                for (int64_t d = 0; d < D; d++) {                                   \
                    const REAL dt = dl[d], uu = ur[d], du = dt * uu, gd = g[d];     \
                    const REAL* restrict a = A + d * (NN);                             \
                    REAL* restrict da = dA + d * (NN);                                 \
                    REAL* restrict dhd = dh + d * (NN);                                \
                    REAL d_du = 0, d_exp = 0;                                       \
                    for (int64_t n = 0; n < (NN); n++) {                               \
                        const int64_t q = d * (NN) + n;                                \
                        const REAL gh = dhd[n] + gd * ct[n];  /* dL/dh_t */         \
                        dct[n] += hn[q] * gd;                                       \
                        d_du += gh * bt[n];                                         \
                        dbt[n] += gh * du;                                          \
                        const REAL p = gh * hp[q] * e[q];  /* dL/d(delta_t A) */    \
                        d_exp += p * a[n];                                          \
                        da[n] += p * dt;                                            \
                        dhd[n] = gh * e[q];                                         \
                    }                                                               \
                    ddr[d] = d_exp + d_du * uu;                                     \
                    dur[d] = d_du * dt;                                             \
                }
                if (N == 16) { ADJOINT(16) } else { ADJOINT(N) }
#undef ADJOINT
                if (z) for (int64_t d = 0; d < D; d++) dur[d] += g[d] * Dv[d];  /* the skip D u */
                if (raw) {  /* through the softplus: its derivative is the sigmoid (1 above PyTorch's threshold) */
                    const REAL* restrict pre = delta + row * D;
                    for (int64_t d = 0; d < D; d++) ddr[d] *= pre[d] > 20 ? 1 : FN(sigm)(pre[d]);
                }
            }
        }
        memcpy(dh0 + b * S, dh, sizeof(REAL) * S);
    }
    free(hs);
    return 0;
}
"""


_BLOCKDIAG = r"""
/* Block-diagonal products (mLSTM's q, k, v projections: blocks of K = 4): x, g (rows, C) with row strides xs,
   gs; W (C / K, K, K) as (block, out, in); y (rows, C) at row stride ys. Rows [r0, r1). */
void FN(bd_apply)(int64_t r0, int64_t r1, int64_t C, int64_t K, const REAL* restrict x, int64_t xs,
                  const REAL* restrict W, const REAL* restrict bias, REAL* restrict y, int64_t ys) {
#define BD_APPLY(KK)                                                            \
    for (int64_t r = r0; r < r1; r++) {                                         \
        const REAL* restrict xr = x + r * xs;                                   \
        REAL* restrict yr = y + r * ys;                                         \
        for (int64_t c = 0; c < C; c += (KK)) {                                 \
            const REAL* restrict w = W + c * (KK);                              \
            for (int64_t o = 0; o < (KK); o++) {                                \
                REAL acc = bias ? bias[c + o] : 0;                              \
                for (int64_t j = 0; j < (KK); j++) acc += w[o * (KK) + j] * xr[c + j]; \
                yr[c + o] = acc;                                                \
            }                                                                   \
        }                                                                       \
    }
    if (K == 4) { BD_APPLY(4) } else { BD_APPLY(K) }
#undef BD_APPLY
}

/* dW[h, o, j] += sum_r g[r, hK + o] x[r, hK + j] and db[c] += sum_r g[r, c] (db may be NULL): this call's own
   zeroed buffers. */
void FN(bd_grad_weight)(int64_t r0, int64_t r1, int64_t C, int64_t K, const REAL* restrict g, int64_t gs,
                        const REAL* restrict x, int64_t xs, REAL* restrict dW, REAL* restrict db) {
#define BD_GRAD(KK)                                                             \
    for (int64_t r = r0; r < r1; r++) {                                         \
        const REAL* restrict gr = g + r * gs;                                   \
        const REAL* restrict xr = x + r * xs;                                   \
        for (int64_t c = 0; c < C; c += (KK)) {                                 \
            REAL* restrict w = dW + c * (KK);                                   \
            for (int64_t o = 0; o < (KK); o++)                                  \
                for (int64_t j = 0; j < (KK); j++) w[o * (KK) + j] += gr[c + o] * xr[c + j]; \
        }                                                                       \
        if (db) for (int64_t c = 0; c < C; c++) db[c] += gr[c];                 \
    }
    if (K == 4) { BD_GRAD(4) } else { BD_GRAD(K) }
#undef BD_GRAD
}
"""


_MINSCAN = r"""
/* minGRU (G = 2) and minLSTM (G = 3): the gates and the scan h_t = a_t h_{t-1} + b_t in one pass over memory.
   P (T, Bt, G * D): the input projection, rows [candidate | gate] or [candidate | forget | input]; h0 (Bt, D);
   lengths (Bt) or NULL: past a sequence's length h is carried unchanged (a = 1, b = 0); H (T, Bt, D): every h_t.
   h_{t-1} is read back from H, so no state buffer. Batch rows [b0, b1). */
void FN(min_forward)(int64_t G, int64_t T, int64_t Bt, int64_t D, int64_t b0, int64_t b1,
                     const REAL* restrict P, const REAL* restrict h0, const int64_t* restrict lengths,
                     REAL* restrict H) {
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = b0; b < b1; b++) {
            const int64_t row = t * Bt + b;
            const REAL* restrict hp = t ? H + (row - Bt) * D : h0 + b * D;
            REAL* restrict ht = H + row * D;
            const REAL* restrict c = P + row * G * D;
            if (lengths && t >= lengths[b]) { memcpy(ht, hp, sizeof(REAL) * D); continue; }
            if (G == 2) {
                const REAL* restrict s = c + D;
                for (int64_t d = 0; d < D; d++) {
                    const REAL z = FN(sigm)(s[d]);
                    const REAL gc = c[d] >= 0 ? c[d] + (REAL)0.5 : FN(sigm)(c[d]);
                    ht[d] = (1 - z) * hp[d] + z * gc;
                }
            } else {
                const REAL* restrict fl = c + D;
                const REAL* restrict il = c + 2 * D;
                for (int64_t d = 0; d < D; d++) {
                    const REAL f = FN(sigm)(fl[d]), i = FN(sigm)(il[d]), tot = f + i;
                    const REAL gc = c[d] >= 0 ? c[d] + (REAL)0.5 : FN(sigm)(c[d]);
                    ht[d] = (f / tot) * hp[d] + (i / tot) * gc;
                }
            }
        }
    }
}

/* The gradients: dH (T, Bt, D) -> dP (T, Bt, G * D); carry (Bt, D), zero on entry, ends as dL/dh0. carry holds
   a_{t+1} G_{t+1}, the gradient reaching h_t from the later steps. */
void FN(min_backward)(int64_t G, int64_t T, int64_t Bt, int64_t D, int64_t b0, int64_t b1,
                      const REAL* restrict P, const REAL* restrict h0, const int64_t* restrict lengths,
                      const REAL* restrict H, const REAL* restrict dH, REAL* restrict dP, REAL* restrict carry) {
    for (int64_t t = T - 1; t >= 0; t--) {
        for (int64_t b = b0; b < b1; b++) {
            const int64_t row = t * Bt + b;
            const REAL* restrict hp = t ? H + (row - Bt) * D : h0 + b * D;
            const REAL* restrict c = P + row * G * D;
            const REAL* restrict g = dH + row * D;
            REAL* restrict dc = dP + row * G * D;
            REAL* restrict cr = carry + b * D;
            if (lengths && t >= lengths[b]) {
                for (int64_t d = 0; d < D; d++) cr[d] += g[d];
                memset(dc, 0, sizeof(REAL) * G * D);
                continue;
            }
            if (G == 2) {
                const REAL* restrict s = c + D;
                REAL* restrict ds = dc + D;
                for (int64_t d = 0; d < D; d++) {
                    const REAL gt = g[d] + cr[d], z = FN(sigm)(s[d]), sc = FN(sigm)(c[d]);
                    const REAL pos = c[d] >= 0, gc = pos ? c[d] + (REAL)0.5 : sc, gd = pos ? 1 : sc * (1 - sc);
                    ds[d] = gt * (gc - hp[d]) * z * (1 - z);
                    dc[d] = gt * z * gd;
                    cr[d] = gt * (1 - z);
                }
            } else {
                const REAL* restrict fl = c + D;
                const REAL* restrict il = c + 2 * D;
                REAL* restrict df = dc + D;
                REAL* restrict di = dc + 2 * D;
                for (int64_t d = 0; d < D; d++) {
                    const REAL gt = g[d] + cr[d], f = FN(sigm)(fl[d]), i = FN(sigm)(il[d]), sc = FN(sigm)(c[d]);
                    const REAL tot = f + i, a = f / tot, bb = i / tot;
                    const REAL pos = c[d] >= 0, gc = pos ? c[d] + (REAL)0.5 : sc, gd = pos ? 1 : sc * (1 - sc);
                    const REAL q = gt * (hp[d] - gc) * a * bb;  /* dh/d(logit f) = q (1 - f), d(logit i): -q (1 - i) */
                    df[d] = q * (1 - f);
                    di[d] = -q * (1 - i);
                    dc[d] = gt * bb * gd;
                    cr[d] = gt * a;
                }
            }
        }
    }
}
"""

_CONV = r"""
/* The causal depthwise convolution with its bias and SiLU (Mamba, mLSTM): u_t = silu(b + sum_j w_j full_{t+j}),
   full = [state; x]. x (T, Bt, C) at row stride xs (a column block of the input projection); state (P, Bt, C),
   P = width - 1; wt (width, C): the weight transposed; bias (C) or NULL; u (T, Bt, C). acc: a buffer of C. */
static inline const REAL* FN(cs_row)(int64_t t, int64_t s, int64_t P, int64_t Bt, int64_t b, int64_t C,
                                     const REAL* x, int64_t xs, const REAL* state) {
    return t >= s ? x + ((t - s) * Bt + b) * xs : state + ((t - s + P) * Bt + b) * C;
}

static void FN(cs_acc)(int64_t t, int64_t b, int64_t Bt, int64_t C, int64_t P, const REAL* x, int64_t xs,
                       const REAL* state, const REAL* restrict wt, const REAL* restrict bias, REAL* restrict acc) {
    for (int64_t c = 0; c < C; c++) acc[c] = bias ? bias[c] : 0;
    for (int64_t j = 0; j <= P; j++) {
        const REAL* restrict src = FN(cs_row)(t, P - j, P, Bt, b, C, x, xs, state);
        const REAL* restrict w = wt + j * C;
        for (int64_t c = 0; c < C; c++) acc[c] += w[c] * src[c];
    }
}

int FN(cs_forward)(int64_t T, int64_t Bt, int64_t C, int64_t P, int64_t b0, int64_t b1, const REAL* x, int64_t xs,
                   const REAL* state, const REAL* restrict wt, const REAL* restrict bias, REAL* restrict u) {
    REAL* restrict acc = (REAL*)malloc(sizeof(REAL) * C);
    if (!acc) return -1;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = b0; b < b1; b++) {
            FN(cs_acc)(t, b, Bt, C, P, x, xs, state, wt, bias, acc);
            REAL* restrict ut = u + (t * Bt + b) * C;
            for (int64_t c = 0; c < C; c++) ut[c] = acc[c] * FN(sigm)(acc[c]);
        }
    free(acc);
    return 0;
}

/* du (T, Bt, C) -> dx (T, Bt, C), d_state (P, Bt, C): both zero on entry; dwt (width, C), dbias (C) or NULL: this
   call's own zeroed buffers. The convolution is recomputed (width products a value) rather than stored. */
int FN(cs_backward)(int64_t T, int64_t Bt, int64_t C, int64_t P, int64_t b0, int64_t b1, const REAL* x, int64_t xs,
                    const REAL* state, const REAL* restrict wt, const REAL* restrict bias, const REAL* restrict du,
                    REAL* dx, REAL* d_state, REAL* restrict dwt, REAL* restrict dbias) {
    REAL* restrict acc = (REAL*)malloc(sizeof(REAL) * C);
    if (!acc) return -1;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = b0; b < b1; b++) {
            FN(cs_acc)(t, b, Bt, C, P, x, xs, state, wt, bias, acc);
            const REAL* restrict g = du + (t * Bt + b) * C;
            for (int64_t c = 0; c < C; c++) {  /* acc becomes dL/d(conv output): du silu'(a) */
                const REAL a = acc[c], sg = FN(sigm)(a);
                acc[c] = g[c] * sg * (1 + a * (1 - sg));
            }
            if (dbias) for (int64_t c = 0; c < C; c++) dbias[c] += acc[c];
            for (int64_t j = 0; j <= P; j++) {
                const int64_t s = P - j;
                const REAL* restrict src = FN(cs_row)(t, s, P, Bt, b, C, x, xs, state);
                REAL* restrict dst = t >= s ? dx + ((t - s) * Bt + b) * C : d_state + ((t - s + P) * Bt + b) * C;
                const REAL* restrict w = wt + j * C;
                REAL* restrict dw = dwt + j * C;
                for (int64_t c = 0; c < C; c++) {
                    dw[c] += acc[c] * src[c];
                    dst[c] += acc[c] * w[c];
                }
            }
        }
    free(acc);
    return 0;
}

/* Mamba's output gate: out = (y + Dv u) * silu(z). Rows [r0, r1) of (rows, C); z at row stride zs. */
void FN(mg_forward)(int64_t r0, int64_t r1, int64_t C, const REAL* restrict y, const REAL* restrict u,
                    const REAL* restrict z, int64_t zs, const REAL* restrict Dv, REAL* restrict out) {
    for (int64_t r = r0; r < r1; r++) {
        const REAL* restrict yr = y + r * C;
        const REAL* restrict ur = u + r * C;
        const REAL* restrict zr = z + r * zs;
        REAL* restrict o = out + r * C;
        for (int64_t c = 0; c < C; c++) o[c] = (yr[c] + Dv[c] * ur[c]) * (zr[c] * FN(sigm)(zr[c]));
    }
}

/* dy (rows, C), du (rows, C), dz (rows, C); dD (C): this call's own zeroed buffer. */
void FN(mg_backward)(int64_t r0, int64_t r1, int64_t C, const REAL* restrict y, const REAL* restrict u,
                     const REAL* restrict z, int64_t zs, const REAL* restrict Dv, const REAL* restrict dout,
                     REAL* restrict dy, REAL* restrict du, REAL* restrict dz, REAL* restrict dD) {
    for (int64_t r = r0; r < r1; r++) {
        const REAL* restrict yr = y + r * C;
        const REAL* restrict ur = u + r * C;
        const REAL* restrict zr = z + r * zs;
        const REAL* restrict g = dout + r * C;
        for (int64_t c = 0; c < C; c++) {
            const REAL sg = FN(sigm)(zr[c]), gate = zr[c] * sg, pre = yr[c] + Dv[c] * ur[c];
            const REAL gy = g[c] * gate;
            dy[r * C + c] = gy;
            du[r * C + c] = gy * Dv[c];
            dD[c] += gy * ur[c];
            dz[r * C + c] = g[c] * pre * sg * (1 + zr[c] * (1 - sg));
        }
    }
}
"""

_SLSTM = r"""
/* y[0..n) = init (or 0) + sum_k x[k] M[k, 0..n), M's rows ld apart. Columns in blocks of 64 (then 16) held in
   registers across the k loop (one load and one fma a value of M), where a row-at-a-time update of y would load
   and store y for every k. */
#define VECMAT_BLOCKS(W)                                                        \
    for (; c0 + (W) <= n; c0 += (W)) {                                          \
        REAL acc[W];                                                            \
        for (int j = 0; j < (W); j++) acc[j] = init ? init[c0 + j] : 0;         \
        for (int64_t k = 0; k < K; k++) {                                       \
            const REAL xk = x[k];                                               \
            const REAL* restrict m = M + k * ld + c0;                           \
            for (int j = 0; j < (W); j++) acc[j] += xk * m[j];                  \
        }                                                                       \
        for (int j = 0; j < (W); j++) y[c0 + j] = acc[j];                       \
    }
static inline void FN(vecmat)(int64_t n, int64_t K, const REAL* restrict init, const REAL* restrict x,
                              const REAL* restrict M, int64_t ld, REAL* restrict y) {
    int64_t c0 = 0;
    VECMAT_BLOCKS(64)
    VECMAT_BLOCKS(16)
    for (; c0 < n; c0++) {
        REAL acc = init ? init[c0] : 0;
        for (int64_t k = 0; k < K; k++) acc += x[k] * M[k * ld + c0];
        y[c0] = acc;
    }
}
#undef VECMAT_BLOCKS

/* One step's gates and states for one (head, batch row): every pointer its own restrict parameter, so the loop
   vectorises (written inline, the overlapping views of A and of the state arrays defeat the dependence analysis). */
static inline void FN(sl_gates)(int64_t d, const REAL* restrict ip_, const REAL* restrict fp_,
                                const REAL* restrict zp_, const REAL* restrict op_, const REAL* restrict cp,
                                const REAL* restrict np, const REAL* restrict mp, REAL* restrict ai, REAL* restrict af_,
                                REAL* restrict az, REAL* restrict ao, REAL* restrict sf, REAL* restrict sel,
                                REAL* restrict hn, REAL* restrict cn, REAL* restrict nn, REAL* restrict mn) {
    for (int64_t k = 0; k < d; k++) {
        const REAL ip = ip_[k], fp = fp_[k], zp = zp_[k], op = op_[k];
        const REAL e = EXP(-(fp < 0 ? -fp : fp));  /* log sigmoid(f~), stable on both sides */
        const REAL log_f = (fp < 0 ? fp : 0) - LOG(1 + e);
        const REAL af = log_f + mp[k], m = ip > af ? ip : af;
        const REAL i = EXP(ip - m), f = EXP(af - m);
        const REAL z = 1 - 2 / (EXP(2 * zp) + 1), o = FN(sigm)(op);
        sf[k] = FN(sigm)(-fp);
        sel[k] = ip > af ? 1 : 0;
        mn[k] = m;
        ai[k] = i;
        af_[k] = f;
        az[k] = z;
        ao[k] = o;
        const REAL c = f * cp[k] + i * z, n = i + f * np[k];
        cn[k] = c;
        nn[k] = n;
        hn[k] = o * c / n;
    }
}

/* sLSTM's recurrence (rnnkit.cells.slstm.SLSTMScan). gx (T, nh, Bt, 4d): the input half of the gate
   pre-activations (i, f, z, o per head); Rt (nh, d, 4d): the recurrent matrix transposed; h0, c0, n0, m0
   (nh, Bt, d); lengths (Bt) or NULL. Writes,
   each (T, nh, Bt, .): A (4d: i, f, tanh z~, o), SF (d: sigmoid(-f~)), SEL (d: m_t came from i~), Hs, Cs, Ns, Ms
   (d). Past a sequence's length every state keeps its value (and A, SF, SEL are zero). SEL holds 0 / 1. Batch
   rows [b0, b1). */
int FN(sl_forward)(int64_t T, int64_t nh, int64_t Bt, int64_t d, int64_t b0, int64_t b1, const REAL* restrict gx,
                   const REAL* restrict Rt, const REAL* h0, const REAL* c0, const REAL* n0, const REAL* m0,
                   const int64_t* restrict lengths, REAL* restrict A, REAL* restrict SF, REAL* restrict SEL,
                   REAL* Hs, REAL* Cs, REAL* Ns, REAL* Ms) {
    REAL* restrict raw = (REAL*)malloc(sizeof(REAL) * 4 * d);
    if (!raw) return -1;
    for (int64_t t = 0; t < T; t++)
        for (int64_t hh = 0; hh < nh; hh++)
            for (int64_t b = b0; b < b1; b++) {
                const int64_t row = (t * nh + hh) * Bt + b, s0 = (hh * Bt + b) * d, cur = row * d;
                const int64_t prev = t ? ((t - 1) * nh + hh) * Bt + b : -1;
                const REAL* restrict hp = t ? Hs + prev * d : h0 + s0;
                const REAL* restrict cp = t ? Cs + prev * d : c0 + s0;
                const REAL* restrict np = t ? Ns + prev * d : n0 + s0;
                const REAL* restrict mp = t ? Ms + prev * d : m0 + s0;
                REAL* restrict a = A + row * 4 * d;
                if (lengths && t >= lengths[b]) {
                    memcpy(Hs + cur, hp, sizeof(REAL) * d);
                    memcpy(Cs + cur, cp, sizeof(REAL) * d);
                    memcpy(Ns + cur, np, sizeof(REAL) * d);
                    memcpy(Ms + cur, mp, sizeof(REAL) * d);
                    memset(a, 0, sizeof(REAL) * 4 * d);
                    memset(SF + cur, 0, sizeof(REAL) * d);
                    memset(SEL + cur, 0, sizeof(REAL) * d);
                    continue;
                }
                const REAL* restrict g = gx + row * 4 * d;
                const REAL* restrict Rh = Rt + hh * 4 * d * d;
                FN(vecmat)(4 * d, d, g, hp, Rh, 4 * d, raw);  /* raw = g + h R^T */
                FN(sl_gates)(d, raw, raw + d, raw + 2 * d, raw + 3 * d, cp, np, mp, a, a + d, a + 2 * d, a + 3 * d,
                             SF + cur, SEL + cur, Hs + cur, Cs + cur, Ns + cur, Ms + cur);
            }
    free(raw);
    return 0;
}

/* The gradients. dHs (T, nh, Bt, d) or NULL; dh, dc, dn, dm (nh, Bt, d): on entry the gradients of the final
   states, on return those of h0, c0, n0, m0; DG (T, nh, Bt, 4d): the gate pre-activations' gradients (zero where
   a step is past its sequence's length). */
int FN(sl_backward)(int64_t T, int64_t nh, int64_t Bt, int64_t d, int64_t b0, int64_t b1, const REAL* restrict R,
                    const REAL* c0, const REAL* n0, const int64_t* restrict lengths, const REAL* restrict A,
                    const REAL* restrict SF, const REAL* restrict SEL, const REAL* Hs, const REAL* Cs,
                    const REAL* Ns, const REAL* restrict dHs, REAL* restrict dh, REAL* restrict dc,
                    REAL* restrict dn, REAL* restrict dm, REAL* restrict DG) {
    for (int64_t hh = 0; hh < nh; hh++)  /* dh starts with the last output's gradient */
        for (int64_t b = b0; b < b1; b++)
            if (dHs) {
                const int64_t s0 = (hh * Bt + b) * d, last = (((T - 1) * nh + hh) * Bt + b) * d;
                for (int64_t k = 0; k < d; k++) dh[s0 + k] += dHs[last + k];
            }
    for (int64_t t = T - 1; t >= 0; t--)
        for (int64_t hh = 0; hh < nh; hh++)
            for (int64_t b = b0; b < b1; b++) {
                const int64_t row = (t * nh + hh) * Bt + b, s0 = (hh * Bt + b) * d, cur = row * d;
                REAL* restrict dg = DG + row * 4 * d;
                REAL* restrict gh = dh + s0;
                if (lengths && t >= lengths[b]) {  /* a frozen step passes its states' gradients straight on */
                    memset(dg, 0, sizeof(REAL) * 4 * d);
                } else {
                    const int64_t prev = t ? ((t - 1) * nh + hh) * Bt + b : -1;
                    const REAL* restrict cp = t ? Cs + prev * d : c0 + s0;
                    const REAL* restrict np = t ? Ns + prev * d : n0 + s0;
                    const REAL* restrict a = A + row * 4 * d;
                    const REAL* restrict ct = Cs + cur;
                    const REAL* restrict nt = Ns + cur;
                    const REAL* restrict ht = Hs + cur;
                    const REAL* restrict sf = SF + cur;
                    const REAL* restrict sel = SEL + cur;
                    REAL* restrict gc = dc + s0;
                    REAL* restrict gn = dn + s0;
                    REAL* restrict gm = dm + s0;
                    for (int64_t k = 0; k < d; k++) {
                        const REAL i = a[k], f = a[d + k], z = a[2 * d + k], o = a[3 * d + k];
                        const REAL dhk = gh[k], inv_n = 1 / nt[k];
                        const REAL dcv = gc[k] + dhk * o * inv_n, dnv = gn[k] - dhk * ht[k] * inv_n;
                        const REAL df = dcv * cp[k] + dnv * np[k], di = dnv + dcv * z;
                        const REAL gi = di * i, gf = df * f, dmt = gm[k] - gi - gf;
                        const REAL da = gf + (1 - sel[k]) * dmt;
                        dg[k] = gi + sel[k] * dmt;
                        dg[d + k] = da * sf[k];
                        dg[2 * d + k] = dcv * i * (1 - z * z);
                        dg[3 * d + k] = dhk * ct[k] * inv_n * o * (1 - o);
                        gc[k] = dcv * f;
                        gn[k] = dnv * f;
                        gm[k] = da;
                    }
                    const REAL* restrict Rh = R + hh * 4 * d * d;
                    FN(vecmat)(d, 4 * d, NULL, dg, Rh, d, gh);  /* dh_{t-1} = DG_t R */
                }
                if (t > 0 && dHs) {
                    const int64_t prev = (((t - 1) * nh + hh) * Bt + b) * d;
                    for (int64_t k = 0; k < d; k++) gh[k] += dHs[prev + k];
                }
            }
    return 0;
}
"""

# A vectorisable exp for float (Cephes' expf polynomial: within 1e-7 relative on the clamped range): glibc's expf is a
# scalar call, which left the loops above and the selective scan unvectorised. double keeps libm's exp (the f64
# build is for the float64 checks, where exactness matters more than speed).
_FAST_EXPF = r"""
static inline float rk_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float k = __builtin_rintf(x * 1.44269504088896341f);
    /* Cody-Waite: ln 2 in two parts, each product an fma, which -fassociative-math cannot merge back into one */
    const float r = __builtin_fmaf(k, 2.12194440e-4f, __builtin_fmaf(-k, 0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
"""


# Its log (Cephes' logf polynomial, within 1e-7 relative) for the same reason; positive normal inputs only.
_FAST_LOGF = r"""
static inline float rk_logf(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    float e = (float)(((bits >> 23) & 0xff) - 126);  /* x = m 2^e, m in [0.5, 1) */
    bits = (bits & 0x807fffff) | 0x3f000000;
    float m;
    memcpy(&m, &bits, sizeof m);
    const int small = m < 0.70710678f;
    e = small ? e - 1 : e;
    m = small ? m + m - 1 : m - 1;
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = __builtin_fmaf(e, -2.12194440e-4f, y * m * z);
    y = __builtin_fmaf(-0.5f, z, y);
    return __builtin_fmaf(e, 0.693359375f, m + y);  /* ln 2 in two parts, as in rk_expf */
}
"""


def _source() -> str:
    parts = ["#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n"]
    parts += [_FAST_EXPF, _FAST_LOGF]
    for real, suffix, exp, log in (("float", "f32", "rk_expf", "rk_logf"), ("double", "f64", "exp", "log")):
        body = f"{_BODY}\n{_BLOCKDIAG}\n{_MINSCAN}\n{_CONV}\n{_SLSTM}\n"
        macros = f"#define REAL {real}\n#define FN(x) x##_{suffix}\n#define EXP {exp}\n#define LOG {log}\n"
        parts.append(macros + body)
        parts.append("#undef REAL\n#undef FN\n#undef EXP\n#undef LOG\n")
    return "".join(parts)


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
# Not -ffast-math: a shared object linked with it carries crtfastmath, whose constructor sets flush-to-zero and
# denormals-are-zero for the whole process the moment it is loaded (every later float op in Python, NumPy and
# torch then rounds subnormals to zero). The individual flags below allow the same vectorised reductions.
_FLAGS = [
    "-O3",
    "-march=native",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-fassociative-math",
    "-freciprocal-math",
    "-fPIC",
    "-shared",
]


def _cpu_key() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    import platform

    return platform.processor() + platform.machine()


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("rnnkit")) / "native"


def _build() -> ctypes.CDLL | None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or sys.platform == "win32":
        return None
    source = _source()
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    key = hashlib.sha256("\0".join([source, " ".join(_FLAGS), version, _cpu_key()]).encode()).hexdigest()[:16]
    target = _cache_dir() / key / "rnnkit_scan.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                src = Path(tmp) / "scan.c"
                src.write_text(source)
                out = Path(tmp) / "scan.so"
                proc = subprocess.run(
                    [compiler, *_FLAGS, str(src), "-o", str(out), "-lm"], capture_output=True, text=True, timeout=300
                )
                if proc.returncode != 0:
                    return None
                os.replace(out, target)  # atomic: another process may build the same file
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        lib = ctypes.CDLL(str(target))
    except OSError:
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for suffix in ("f32", "f64"):
        getattr(lib, f"ss_forward_{suffix}").argtypes = [i64] * 7 + [ptr] * 9 + [i64, ptr, i64, ptr]
        getattr(lib, f"ss_backward_{suffix}").argtypes = [i64] * 7 + [ptr] * 14 + [i64, ptr, i64, ptr, ptr, ptr]
        getattr(lib, f"ss_forward_{suffix}").restype = ctypes.c_int
        getattr(lib, f"ss_backward_{suffix}").restype = ctypes.c_int
        getattr(lib, f"bd_apply_{suffix}").argtypes = [i64] * 4 + [ptr, i64, ptr, ptr, ptr, i64]
        getattr(lib, f"bd_grad_weight_{suffix}").argtypes = [i64] * 4 + [ptr, i64, ptr, i64, ptr, ptr]
        getattr(lib, f"bd_apply_{suffix}").restype = None
        getattr(lib, f"bd_grad_weight_{suffix}").restype = None
        getattr(lib, f"min_forward_{suffix}").argtypes = [i64] * 6 + [ptr] * 4
        getattr(lib, f"min_backward_{suffix}").argtypes = [i64] * 6 + [ptr] * 7
        getattr(lib, f"min_forward_{suffix}").restype = None
        getattr(lib, f"cs_forward_{suffix}").argtypes = [i64] * 6 + [ptr, i64] + [ptr] * 4
        getattr(lib, f"cs_backward_{suffix}").argtypes = [i64] * 6 + [ptr, i64] + [ptr] * 8
        getattr(lib, f"cs_forward_{suffix}").restype = ctypes.c_int
        getattr(lib, f"cs_backward_{suffix}").restype = ctypes.c_int
        getattr(lib, f"mg_forward_{suffix}").argtypes = [i64] * 3 + [ptr] * 3 + [i64] + [ptr] * 2
        getattr(lib, f"mg_backward_{suffix}").argtypes = [i64] * 3 + [ptr] * 3 + [i64] + [ptr] * 6
        getattr(lib, f"mg_forward_{suffix}").restype = None
        getattr(lib, f"sl_forward_{suffix}").argtypes = [i64] * 6 + [ptr] * 14
        getattr(lib, f"sl_backward_{suffix}").argtypes = [i64] * 6 + [ptr] * 16
        getattr(lib, f"sl_forward_{suffix}").restype = ctypes.c_int
        getattr(lib, f"sl_backward_{suffix}").restype = ctypes.c_int
        getattr(lib, f"mg_backward_{suffix}").restype = None
        getattr(lib, f"min_backward_{suffix}").restype = None
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on first call; None where they cannot be (or ``RNNKIT_NATIVE=0``)."""
    global _lib, _tried
    if os.environ.get("RNNKIT_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    with _lock:
        if not _tried:
            _tried = True
            _lib = _build()
    return _lib


def usable(*tensors: Tensor) -> bool:
    """Whether the kernel can run on these tensors (CPU, one float dtype, N and the block within its limits).
    Not while tracing or compiling (TorchScript, ONNX export, torch.compile): a tracer records the empty output
    buffer, not the C call."""
    first = tensors[0]
    return (
        not torch.jit.is_tracing()
        and not torch.onnx.is_in_onnx_export()
        and not torch.compiler.is_compiling()
        and first.device.type == "cpu"
        and first.dtype in (torch.float32, torch.float64)
        and all(t.device.type == "cpu" and t.dtype == first.dtype for t in tensors)
        and library() is not None
    )


def _ptr(t: Tensor) -> int:
    return t.data_ptr()


def _split(batch: int) -> list[tuple[int, int]]:
    workers = max(1, min(torch.get_num_threads(), batch))
    step = -(-batch // workers)
    return [(b, min(b + step, batch)) for b in range(0, batch, step)]


def _parallel(fn, ranges: list[tuple[int, int]]) -> None:
    if len(ranges) == 1:
        codes = [fn(*ranges[0])]
    else:
        with ThreadPoolExecutor(len(ranges)) as pool:
            codes = [f.result() for f in [pool.submit(fn, b0, b1) for b0, b1 in ranges]]
    if any(codes):
        raise MemoryError("rnnkit's selective scan could not allocate its state buffer")


def scan_forward(
    u: Tensor,
    delta: Tensor,
    A: Tensor,  # noqa: N803
    B: Tensor,  # noqa: N803
    C: Tensor,  # noqa: N803
    h0: Tensor,
    block: int,
    raw: bool = False,
    gate: tuple[Tensor, Tensor] | None = None,
):
    """(y (T, batch, D), h_last (batch, D, N), starts) from contiguous CPU tensors; see the C source's layout.
    ``raw``: ``delta`` is the softplus's input; ``gate`` = (z with evenly spaced rows, D): y is the gated output."""
    lib = library()
    assert lib is not None
    T, batch, D = u.shape
    N = A.size(1)
    u, delta, A, B, C, h0 = (t.contiguous() for t in (u, delta, A, B, C, h0))
    y = torch.empty_like(u)
    h_last = torch.empty_like(h0)
    starts = torch.empty(-(-T // block), batch, D, N, dtype=u.dtype)
    fn = lib.ss_forward_f32 if u.dtype == torch.float32 else lib.ss_forward_f64
    ptrs = [_ptr(t) for t in (u, delta, A, B, C, h0, y, h_last, starts)]
    _keep, tail = _gate_args(gate)
    _parallel(lambda b0, b1: fn(T, batch, D, N, block, b0, b1, *ptrs, int(raw), *tail), _split(batch))
    return y, h_last, starts


def _gate_args(gate: tuple[Tensor, Tensor] | None) -> tuple[list[Tensor], tuple[Any, ...]]:
    """(the tensors to keep alive for the call, (z's pointer, its row stride, D's pointer)) for the C kernels,
    NULLs without the gate."""
    if gate is None:
        return [], (None, 0, None)
    (zf, zs), dv = _rows(gate[0]), gate[1].contiguous()
    return [zf, dv], (_ptr(zf), zs, _ptr(dv))


def scan_backward(u, delta, A, B, C, starts, dy, dh_last, block, raw: bool = False, gate=None):  # noqa: N803
    """The gradients (d_u, d_delta, dA, dB, dC, dh0, and with ``gate`` dz, dD) of :func:`scan_forward`'s
    outputs; d_delta is the gradient of the softplus's input where ``raw``."""
    lib = library()
    assert lib is not None
    T, batch, D = u.shape
    N = A.size(1)
    u, delta, A, B, C, starts, dy, dh_last = (t.contiguous() for t in (u, delta, A, B, C, starts, dy, dh_last))
    d_u, d_delta = torch.empty_like(u), torch.empty_like(delta)
    dB, dC = torch.zeros_like(B), torch.zeros_like(C)
    dh0 = torch.empty(batch, D, N, dtype=u.dtype)
    ranges = _split(batch)
    dA_parts = torch.zeros(len(ranges), D, N, dtype=u.dtype)
    dz = torch.empty_like(u) if gate is not None else None
    dD_parts = torch.zeros(len(ranges), D, dtype=u.dtype) if gate is not None else None
    fn = lib.ss_backward_f32 if u.dtype == torch.float32 else lib.ss_backward_f64
    ptrs = [_ptr(t) for t in (u, delta, A, B, C, starts, dy, dh_last, d_u, d_delta)]
    tail = [_ptr(t) for t in (dB, dC, dh0)]
    _keep, gate_ptrs = _gate_args(gate)

    def run(b0: int, b1: int) -> int:
        k = ranges.index((b0, b1))
        extra = (None, None) if dz is None else (_ptr(dz), _ptr(dD_parts[k]))
        return fn(T, batch, D, N, block, b0, b1, *ptrs, _ptr(dA_parts[k]), *tail, int(raw), *gate_ptrs, *extra)

    _parallel(run, ranges)
    grads = (d_u, d_delta, dA_parts.sum(0), dB, dC, dh0)
    return grads if gate is None else (*grads, dz, dD_parts.sum(0))


def _rows(t: Tensor) -> tuple[Tensor, int]:
    """``t`` (..., C) as (rows, C) rows without a copy where its rows are evenly spaced, and the row stride."""
    flat = t.reshape(-1, t.size(-1)) if t.stride(-1) == 1 else t.contiguous().view(-1, t.size(-1))
    if flat.stride(-1) != 1:
        flat = flat.contiguous()
    return flat, flat.stride(0)


def _row_ranges(rows: int) -> list[tuple[int, int]]:
    workers = max(1, min(torch.get_num_threads(), rows // 256 or 1))
    step = -(-rows // workers)
    return [(r, min(r + step, rows)) for r in range(0, rows, step)]


def _each(fn, ranges: list[tuple[int, int]]) -> None:
    if len(ranges) == 1:
        fn(*ranges[0])
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        for f in [pool.submit(fn, r0, r1) for r0, r1 in ranges]:
            f.result()


def block_diagonal(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x`` (..., C) times the block-diagonal matrix of ``weight`` (C / K, K, K) (block, out, in), plus ``bias``:
    (..., C), contiguous. CPU, one float dtype (:func:`usable`)."""
    lib = library()
    assert lib is not None
    C, K = x.size(-1), weight.size(-1)
    flat, xs = _rows(x)
    weight = weight.contiguous()
    y = torch.empty(flat.size(0), C, dtype=x.dtype)
    fn = lib.bd_apply_f32 if x.dtype == torch.float32 else lib.bd_apply_f64
    b = None if bias is None else bias.contiguous()
    bp = None if b is None else _ptr(b)
    _each(lambda r0, r1: fn(r0, r1, C, K, _ptr(flat), xs, _ptr(weight), bp, _ptr(y), C), _row_ranges(flat.size(0)))
    return y.view(x.shape)


def block_diagonal_weight_grad(g: Tensor, x: Tensor, K: int, with_bias: bool) -> tuple[Tensor, Tensor | None]:  # noqa: N803
    """The gradients of :func:`block_diagonal`'s weight (C / K, K, K) and bias (C,) from the output's ``g``."""
    lib = library()
    assert lib is not None
    C = x.size(-1)
    gf, gs = _rows(g)
    xf, xs = _rows(x)
    ranges = _row_ranges(xf.size(0))
    dW = torch.zeros(len(ranges), C // K, K, K, dtype=x.dtype)
    db = torch.zeros(len(ranges), C, dtype=x.dtype) if with_bias else None
    fn = lib.bd_grad_weight_f32 if x.dtype == torch.float32 else lib.bd_grad_weight_f64

    def run(r0: int, r1: int) -> None:
        k = ranges.index((r0, r1))
        fn(r0, r1, C, K, _ptr(gf), gs, _ptr(xf), xs, _ptr(dW[k]), None if db is None else _ptr(db[k]))

    _each(run, ranges)
    return dW.sum(0), None if db is None else db.sum(0)


def min_forward(P: Tensor, h0: Tensor, lengths: Tensor | None) -> Tensor:  # noqa: N803
    """minGRU / minLSTM's gates and scan (the C source's ``min_forward``): ``P`` (T, batch, G * D) with G = 2 or 3,
    ``h0`` (batch, D), ``lengths`` (batch,) or None -> every state H (T, batch, D)."""
    lib = library()
    assert lib is not None
    T, batch, width = P.shape
    D = h0.size(-1)
    P, h0 = P.contiguous(), h0.contiguous()
    lens = None if lengths is None else lengths.to(torch.int64).contiguous()
    H = torch.empty(T, batch, D, dtype=P.dtype)
    fn = lib.min_forward_f32 if P.dtype == torch.float32 else lib.min_forward_f64
    lp = None if lens is None else _ptr(lens)
    ptrs = (_ptr(P), _ptr(h0), lp, _ptr(H))
    _each(lambda b0, b1: fn(width // D, T, batch, D, b0, b1, *ptrs), _split(batch))
    return H


def min_backward(P: Tensor, h0: Tensor, lengths: Tensor | None, H: Tensor, dH: Tensor) -> tuple[Tensor, Tensor]:  # noqa: N803
    """The gradients (dP, dh0) of :func:`min_forward` from ``dH`` (T, batch, D)."""
    lib = library()
    assert lib is not None
    T, batch, width = P.shape
    D = h0.size(-1)
    P, h0, H, dH = (t.contiguous() for t in (P, h0, H, dH))
    lens = None if lengths is None else lengths.to(torch.int64).contiguous()
    dP = torch.empty_like(P)
    carry = torch.zeros(batch, D, dtype=P.dtype)
    fn = lib.min_backward_f32 if P.dtype == torch.float32 else lib.min_backward_f64
    lp = None if lens is None else _ptr(lens)
    ptrs = (_ptr(P), _ptr(h0), lp, _ptr(H), _ptr(dH), _ptr(dP), _ptr(carry))
    _each(lambda b0, b1: fn(width // D, T, batch, D, b0, b1, *ptrs), _split(batch))
    return dP, carry


def conv_silu_forward(x: Tensor, state: Tensor, wt: Tensor, bias: Tensor | None) -> Tensor:
    """``silu(causal_conv(x) + bias)`` (the C source's ``cs_forward``): ``x`` (T, batch, C) with evenly spaced rows,
    ``state`` (width - 1, batch, C), ``wt`` (width, C) -> (T, batch, C)."""
    lib = library()
    assert lib is not None
    T, batch, C = x.shape
    xf, xs = _rows(x)
    state, wt = state.contiguous(), wt.contiguous()
    b = None if bias is None else bias.contiguous()
    u = torch.empty(T, batch, C, dtype=x.dtype)
    fn = lib.cs_forward_f32 if x.dtype == torch.float32 else lib.cs_forward_f64
    ptrs = (_ptr(xf), xs, _ptr(state), _ptr(wt), None if b is None else _ptr(b), _ptr(u))
    _parallel(lambda b0, b1: fn(T, batch, C, wt.size(0) - 1, b0, b1, *ptrs), _split(batch))
    return u


def conv_silu_backward(x: Tensor, state: Tensor, wt: Tensor, bias: Tensor | None, du: Tensor):
    """The gradients (dx, d_state, dwt, dbias or None) of :func:`conv_silu_forward`."""
    lib = library()
    assert lib is not None
    T, batch, C = x.shape
    xf, xs = _rows(x)
    state, wt, du = state.contiguous(), wt.contiguous(), du.contiguous()
    b = None if bias is None else bias.contiguous()
    dx, d_state = torch.zeros(T, batch, C, dtype=x.dtype), torch.zeros_like(state)
    ranges = _split(batch)
    dwt = torch.zeros(len(ranges), *wt.shape, dtype=x.dtype)
    dbias = None if b is None else torch.zeros(len(ranges), C, dtype=x.dtype)
    fn = lib.cs_backward_f32 if x.dtype == torch.float32 else lib.cs_backward_f64
    head = (_ptr(xf), xs, _ptr(state), _ptr(wt), None if b is None else _ptr(b), _ptr(du), _ptr(dx), _ptr(d_state))

    def run(b0: int, b1: int) -> int:
        k = ranges.index((b0, b1))
        return fn(T, batch, C, wt.size(0) - 1, b0, b1, *head, _ptr(dwt[k]), None if dbias is None else _ptr(dbias[k]))

    _parallel(run, ranges)
    return dx, d_state, dwt.sum(0), None if dbias is None else dbias.sum(0)


def mamba_gate_forward(y: Tensor, u: Tensor, z: Tensor, D: Tensor) -> Tensor:  # noqa: N803
    """Mamba's ``(y + D u) * silu(z)`` (``mg_forward``): ``y``, ``u`` (..., C) contiguous, ``z`` (..., C) with
    evenly spaced rows, ``D`` (C,)."""
    lib = library()
    assert lib is not None
    C = y.size(-1)
    y, u, D = y.contiguous(), u.contiguous(), D.contiguous()
    zf, zs = _rows(z)
    out = torch.empty_like(y)
    fn = lib.mg_forward_f32 if y.dtype == torch.float32 else lib.mg_forward_f64
    ptrs = (_ptr(y), _ptr(u), _ptr(zf), zs, _ptr(D), _ptr(out))
    _each(lambda r0, r1: fn(r0, r1, C, *ptrs), _row_ranges(zf.size(0)))
    return out


def mamba_gate_backward(y: Tensor, u: Tensor, z: Tensor, D: Tensor, dout: Tensor):  # noqa: N803
    """The gradients (dy, du, dz, dD) of :func:`mamba_gate_forward`."""
    lib = library()
    assert lib is not None
    C = y.size(-1)
    y, u, D, dout = y.contiguous(), u.contiguous(), D.contiguous(), dout.contiguous()
    zf, zs = _rows(z)
    dy, du, dz = torch.empty_like(y), torch.empty_like(y), torch.empty_like(y)
    ranges = _row_ranges(zf.size(0))
    dD = torch.zeros(len(ranges), C, dtype=y.dtype)
    fn = lib.mg_backward_f32 if y.dtype == torch.float32 else lib.mg_backward_f64
    ptrs = (_ptr(y), _ptr(u), _ptr(zf), zs, _ptr(D), _ptr(dout), _ptr(dy), _ptr(du), _ptr(dz))

    def run(r0: int, r1: int) -> None:
        fn(r0, r1, C, *ptrs, _ptr(dD[ranges.index((r0, r1))]))

    _each(run, ranges)
    return dy, du, dz, dD.sum(0)


def slstm_forward(gx: Tensor, R: Tensor, h0: Tensor, c0: Tensor, n0: Tensor, m0: Tensor, lengths: Tensor | None):  # noqa: N803
    """sLSTM's recurrence (``sl_forward``): ``(A, SF, SEL, Hs, Cs, Ns, Ms)`` in :class:`SLSTMScan`'s layout."""
    lib = library()
    assert lib is not None
    T, nh, B, G = gx.shape
    d = G // 4
    gx, h0, c0, n0, m0 = (t.contiguous() for t in (gx, h0, c0, n0, m0))
    Rt = R.transpose(1, 2).contiguous()  # (heads, d, 4d)
    lens = None if lengths is None else lengths.to(torch.int64).contiguous()
    A = torch.empty_like(gx)
    SF, Hs, Cs, Ns, Ms = (torch.empty(T, nh, B, d, dtype=gx.dtype) for _ in range(5))
    SEL = torch.empty(T, nh, B, d, dtype=gx.dtype)  # 0 / 1 in the compute dtype: one vector width in the loop
    fn = lib.sl_forward_f32 if gx.dtype == torch.float32 else lib.sl_forward_f64
    ptrs = [_ptr(t) for t in (gx, Rt, h0, c0, n0, m0)] + [None if lens is None else _ptr(lens)]
    ptrs += [_ptr(t) for t in (A, SF, SEL, Hs, Cs, Ns, Ms)]
    _parallel(lambda b0, b1: fn(T, nh, B, d, b0, b1, *ptrs), _split(B))
    return A, SF, SEL, Hs, Cs, Ns, Ms


def slstm_backward(R, c0, n0, lengths, A, SF, SEL, Hs, Cs, Ns, dHs, dh, dc, dn, dm):  # noqa: N803
    """The gradients (DG, dh0, dc0, dn0, dm0) of :func:`slstm_forward`; ``dh``... are the final states' (copied)."""
    lib = library()
    assert lib is not None
    T, nh, B, d = Hs.shape
    R, c0, n0 = R.contiguous(), c0.contiguous(), n0.contiguous()
    lens = None if lengths is None else lengths.to(torch.int64).contiguous()
    dh, dc, dn, dm = (t.contiguous().clone() for t in (dh, dc, dn, dm))
    dHs = None if dHs is None else dHs.contiguous()
    DG = torch.empty_like(A)
    fn = lib.sl_backward_f32 if Hs.dtype == torch.float32 else lib.sl_backward_f64
    ptrs = [_ptr(R), _ptr(c0), _ptr(n0), None if lens is None else _ptr(lens)]
    ptrs += [_ptr(t) for t in (A, SF, SEL, Hs, Cs, Ns)] + [None if dHs is None else _ptr(dHs)]
    ptrs += [_ptr(t) for t in (dh, dc, dn, dm, DG)]
    _parallel(lambda b0, b1: fn(T, nh, B, d, b0, b1, *ptrs), _split(B))
    return DG, dh, dc, dn, dm
