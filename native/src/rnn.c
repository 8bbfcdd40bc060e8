/* rnn.c -- recurrent layers (LSTM, GRU, SimpleRNN) over whole sequences: one call runs the
 * whole forward recurrence, one call the whole backward (BPTT).
 *
 * Layout and math follow PyTorch so that weights copy over (transposed):
 *   x (N, T, F) batch-first; W (F, G*H) = weight_ih.T; U (H, G*H) = weight_hh.T.
 *   LSTM gates [i f g o]:  z = x W + b + h U;  c' = f c + i g;  h' = o tanh(c')
 *        (b = bias_ih + bias_hh; Keras' LSTM uses the same [i f c o] order and layout)
 *   GRU gates [r z n], "reset after":  a = h U + rb;  r = s(xW_r + b_r + a_r),
 *        z = s(xW_z + b_z + a_z),  n = tanh(xW_n + b_n + r * a_n),  h' = (1 - z) n + z h
 *        (b = bias_ih, rb = bias_hh; Keras orders these gates [z r n])
 *   SimpleRNN:  h' = act(x W + b + h U), act tanh or relu.
 * mask (N, T), any dtype, nonzero = valid step: at a masked step the state is carried through
 * unchanged and the output is zero (Keras' convention), so right-padded sequences end with the
 * state of their last valid step.
 *
 * The input projection of every step is one large GEMM before the recurrence; each step then
 * adds h U with one GEMM and applies the gate nonlinearities row by row. The batch is split
 * into chunks of rows that run their whole recurrences independently on the pool (rows of a
 * batch never interact), so the small per-step GEMMs stay single-threaded and need no per-step
 * synchronisation. Backward keeps the gate gradients of every step (the workspace) and turns
 * them into dW and dU with two large GEMMs at the end.
 *
 * The reserve (forward output, backward input; declared (N, T, R) but laid out time-major, row
 * t * N + n, so that the rows one step touches are contiguous) holds per (t, n) R values:
 *   LSTM [i f g o (activated) | h_prev | c_prev]                        R = 6H
 *   GRU  [r z n (activated)   | h_prev | (h U + rb)_n]                  R = 5H
 *   RNN  [h (activated)       | h_prev]                                 R = 2H
 * where h_prev is the state before step t (t in processing order; reversed with `reverse`).
 */
#ifndef RNN_TEMPLATE
#include <stdio.h>

#include "internal.h"

enum { RNN_LSTM = 0, RNN_GRU = 1, RNN_SIMPLE = 2 };

/* Chunks of the batch that run their recurrences in parallel: at least this many rows each
 * (below that a GEMM of a few rows wastes the BLAS kernels), at most this many chunks (the
 * backward workspace holds one bias-gradient row per chunk). */
#define RNN_MIN_CHUNK_ROWS 16
#define RNN_MAX_CHUNKS 16

typedef struct {
    int kind, dtype, reverse, relu;
    int64_t N, steps, F, H;
    int64_t G;        /* gates: 4, 3, 1 */
    int64_t GH;       /* G * H */
    int64_t R;        /* reserve row width */
    int64_t DG;       /* gradient row width in the backward workspace */
    int64_t chunks;
    const pf_tensor *mask;
    const void *x, *W, *U, *b, *rb, *h0, *c0;
    void *y, *hT, *cT, *res;
    const void *gy, *ghT, *gcT;
    void *dx, *dW, *dU, *db, *drb, *dh0, *dc0;
    void *ws;
    int status;       /* first failure inside a pool task */
} rnn_job;

static const char *const KIND_NAMES[] = {"lstm", "gru", "simple_rnn"};

static int64_t kind_gates(int kind) { return kind == RNN_LSTM ? 4 : kind == RNN_GRU ? 3 : 1; }

static int64_t reserve_width(int kind, int64_t H) {
    return kind == RNN_LSTM ? 6 * H : kind == RNN_GRU ? 5 * H : 2 * H;
}

/* GRU's gradient rows are [dr dz | dn*r | dn]: the first 3H feed U, the others W. */
static int64_t grad_width(int kind, int64_t H) { return kind == RNN_GRU ? 4 * H : kind_gates(kind) * H; }

static inline int mask_valid(const pf_tensor *mask, int64_t n, int64_t t, int64_t T) {
    if (mask == NULL) return 1;
    int64_t i = n * T + t;
    switch (mask->dtype) {
    case PF_FLOAT32: return ((const float *)mask->data)[i] != 0;
    case PF_FLOAT64: return ((const double *)mask->data)[i] != 0;
    case PF_INT32: return ((const int32_t *)mask->data)[i] != 0;
    default: return ((const int64_t *)mask->data)[i] != 0;
    }
}

static int64_t chunk_begin(const rnn_job *j, int64_t c) { return c * j->N / j->chunks; }

static int64_t pick_chunks(int64_t N) {
    int64_t c = pf_threads();
    int64_t by_rows = N / RNN_MIN_CHUNK_ROWS;
    if (c > by_rows) c = by_rows;
    if (c > RNN_MAX_CHUNKS) c = RNN_MAX_CHUNKS;
    return c < 1 ? 1 : c;
}

/* Workspace in elements.
 * forward:  [x time-major: T*N*F][GRU: h U + rb of one step: N*3H]
 * backward: [gate gradients, time-major: T*N*DG][dh: N*H][dc: N*H][bias partials: 16*DG]
 *           [U transposed: G*H*H][x time-major, then dx time-major: T*N*F] */
static int64_t workspace_elems(int kind, int grad, int64_t N, int64_t T, int64_t F, int64_t H) {
    int64_t GH = kind_gates(kind) * H, DG = grad_width(kind, H);
    if (!grad) return T * N * F + (kind == RNN_GRU ? N * GH : 0);
    return T * N * DG + 2 * N * H + RNN_MAX_CHUNKS * DG + GH * H + T * N * F;
}

#define RNN_TEMPLATE
#define T float
#define SFX(name) name##_f32
#define GEMM pf_sgemm
#define GEMM_SERIAL pf_sgemm_serial
#define SIGM pf_sigmoidf
#define TANH pf_tanhf
#include "rnn.c"
#undef T
#undef SFX
#undef GEMM
#undef GEMM_SERIAL
#undef SIGM
#undef TANH

#define T double
#define SFX(name) name##_f64
#define GEMM pf_dgemm
#define GEMM_SERIAL pf_dgemm_serial
#define SIGM pf_sigmoid
#define TANH tanh
#include "rnn.c"
#undef T
#undef SFX
#undef GEMM
#undef GEMM_SERIAL
#undef SIGM
#undef TANH
#undef RNN_TEMPLATE

/* ---- argument checks ---- */

static void shape_text(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
}

/* t must be contiguous, of dtype, with exactly the given dims */
static int expect(const pf_tensor *t, const char *what, int dtype, int ndim, int64_t d0, int64_t d1,
                  int64_t d2) {
    PF_TRY(pf_check_contiguous(t, what));
    PF_TRY(pf_check_dtype(t, dtype, what));
    int64_t want[3] = {d0, d1, d2};
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[160], exp[160];
        shape_text(t, got, sizeof got);
        if (ndim == 1) snprintf(exp, sizeof exp, "(%lld)", (long long)d0);
        else if (ndim == 2) snprintf(exp, sizeof exp, "(%lld, %lld)", (long long)d0, (long long)d1);
        else snprintf(exp, sizeof exp, "(%lld, %lld, %lld)", (long long)d0, (long long)d1, (long long)d2);
        return pf_fail(PF_ERR_SHAPE, "%s has shape %s, expected %s", what, got, exp);
    }
    return PF_OK;
}

/* Reads x, W, U (the first three inputs of every rnn kernel) and the attributes. */
static int setup_common(const pf_args *a, int kind, int grad, rnn_job *j, int *has_state,
                        int *has_mask) {
    PF_TRY(pf_check_attrs(a, kind == RNN_SIMPLE ? 4 : 3, 0));
    PF_CHECK(a->n_in >= 3, PF_ERR_ARGUMENT, "expected at least 3 inputs, got %d", a->n_in);
    for (int i = 0; i < a->n_in; i++)
        PF_CHECK(a->inputs[i] != NULL, PF_ERR_ARGUMENT, "input %d is null", i);
    for (int i = 0; i < a->n_out; i++)
        PF_CHECK(a->outputs[i] != NULL, PF_ERR_ARGUMENT, "output %d is null", i);
    memset(j, 0, sizeof *j);
    j->kind = kind;
    *has_state = a->iattr[0] != 0;
    *has_mask = a->iattr[1] != 0;
    j->reverse = a->iattr[2] != 0;
    if (kind == RNN_SIMPLE) {
        PF_CHECK(a->iattr[3] == 0 || a->iattr[3] == 1, PF_ERR_ARGUMENT,
                 "activation code must be 0 (tanh) or 1 (relu), got %lld", (long long)a->iattr[3]);
        j->relu = a->iattr[3] == 1;
    }
    const pf_tensor *x = a->inputs[0], *W = a->inputs[1], *U = a->inputs[2];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_float(x, "x"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be (batch, time, features), got %d dims", x->ndim);
    j->dtype = x->dtype;
    j->N = x->shape[0];
    j->steps = x->shape[1];
    j->F = x->shape[2];
    j->G = kind_gates(kind);
    PF_TRY(pf_check_contiguous(U, "recurrent_kernel"));
    PF_CHECK(U->ndim == 2 && U->shape[0] >= 1 && U->shape[1] == j->G * U->shape[0], PF_ERR_SHAPE,
             "recurrent_kernel must be (units, %lld * units) with units >= 1, got %d dims (%lld, %lld)",
             (long long)j->G, U->ndim, (long long)(U->ndim > 0 ? U->shape[0] : 0),
             (long long)(U->ndim > 1 ? U->shape[1] : 0));
    j->H = U->shape[0];
    j->GH = j->G * j->H;
    j->R = reserve_width(kind, j->H);
    j->DG = grad_width(kind, j->H);
    PF_TRY(expect(U, "recurrent_kernel", j->dtype, 2, j->H, j->GH, 0));
    PF_TRY(expect(W, "kernel", j->dtype, 2, j->F, j->GH, 0));
    /* leading dimensions and row counts handed to the 32-bit BLAS */
    PF_CHECK(j->N * j->steps <= INT32_MAX && j->steps * j->R <= INT32_MAX && j->steps * j->DG <= INT32_MAX &&
             j->F <= INT32_MAX, PF_ERR_BLAS, "sequence batch too large for the 32-bit BLAS: "
             "N=%lld T=%lld units=%lld", (long long)j->N, (long long)j->steps, (long long)j->H);
    PF_CHECK(pf_blas_bound(), PF_ERR_BLAS, "no BLAS is loaded (pf_load_blas was not called)");
    j->x = x->data;
    j->W = W->data;
    j->U = U->data;
    (void)grad;
    return PF_OK;
}

static int check_mask(const pf_tensor *m, const rnn_job *j) {
    PF_TRY(pf_check_contiguous(m, "mask"));
    if (m->ndim != 2 || m->shape[0] != j->N || m->shape[1] != j->steps) {
        char got[160];
        shape_text(m, got, sizeof got);
        return pf_fail(PF_ERR_SHAPE, "mask has shape %s, expected (batch, time) = (%lld, %lld)",
                       got, (long long)j->N, (long long)j->steps);
    }
    return PF_OK;
}

static int check_workspace(const pf_args *a, const rnn_job *j, int grad) {
    int64_t need = workspace_elems(j->kind, grad, j->N, j->steps, j->F, j->H) * (int64_t)pf_dtype_size(j->dtype);
    if (need == 0) return PF_OK;
    PF_CHECK(a->workspace != NULL && a->workspace_bytes >= need, PF_ERR_ARGUMENT,
             "needs a workspace of %lld bytes, got %lld", (long long)need,
             (long long)(a->workspace ? a->workspace_bytes : 0));
    return PF_OK;
}

/* ---- forward ---- */

static void forward_task(void *p, int64_t c0, int64_t c1) {
    rnn_job *j = (rnn_job *)p;
    for (int64_t c = c0; c < c1; c++) {
        int64_t n0 = chunk_begin(j, c), n1 = chunk_begin(j, c + 1);
        int status = j->dtype == PF_FLOAT32 ? forward_chunk_f32(j, n0, n1) : forward_chunk_f64(j, n0, n1);
        if (status != PF_OK) j->status = status;
    }
}

/* "lstm":  inputs x, W, U, b[, h0, c0][, mask]; outputs y (N, T, H), hT, cT, reserve (N, T, 6H)
 * "gru":   inputs x, W, U, b, rb[, h0][, mask];   outputs y, hT, reserve (N, T, 5H)
 * "simple_rnn": inputs x, W, U, b[, h0][, mask];   outputs y, hT, reserve (N, T, 2H)
 * iattr: has_initial_state, has_mask, reverse[, activation (simple_rnn: 0 tanh, 1 relu)].
 * Workspace: T*N*F (+ N*3H for gru) elements. */
static int rnn_forward(const pf_args *a, int kind) {
    rnn_job j;
    int has_state, has_mask;
    PF_TRY(setup_common(a, kind, 0, &j, &has_state, &has_mask));
    int n_bias = kind == RNN_GRU ? 2 : 1, n_state = kind == RNN_LSTM ? 2 : 1;
    int n_in = 3 + n_bias + (has_state ? n_state : 0) + (has_mask ? 1 : 0);
    int n_out = kind == RNN_LSTM ? 4 : 3;
    PF_CHECK(a->n_in == n_in && a->n_out == n_out, PF_ERR_ARGUMENT,
             "expected %d inputs and %d outputs for these attributes, got %d and %d", n_in, n_out,
             a->n_in, a->n_out);
    int i = 3;
    const pf_tensor *b = a->inputs[i++];
    PF_TRY(expect(b, "bias", j.dtype, 1, j.GH, 0, 0));
    j.b = b->data;
    if (kind == RNN_GRU) {
        const pf_tensor *rb = a->inputs[i++];
        PF_TRY(expect(rb, "recurrent_bias", j.dtype, 1, j.GH, 0, 0));
        j.rb = rb->data;
    }
    if (has_state) {
        PF_TRY(expect(a->inputs[i], "initial h", j.dtype, 2, j.N, j.H, 0));
        j.h0 = a->inputs[i++]->data;
        if (kind == RNN_LSTM) {
            PF_TRY(expect(a->inputs[i], "initial c", j.dtype, 2, j.N, j.H, 0));
            j.c0 = a->inputs[i++]->data;
        }
    }
    if (has_mask) {
        PF_TRY(check_mask(a->inputs[i], &j));
        j.mask = a->inputs[i++];
    }
    int o = 0;
    PF_TRY(expect(a->outputs[o], "y", j.dtype, 3, j.N, j.steps, j.H));
    j.y = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "final h", j.dtype, 2, j.N, j.H, 0));
    j.hT = a->outputs[o++]->data;
    if (kind == RNN_LSTM) {
        PF_TRY(expect(a->outputs[o], "final c", j.dtype, 2, j.N, j.H, 0));
        j.cT = a->outputs[o++]->data;
    }
    PF_TRY(expect(a->outputs[o], "reserve", j.dtype, 3, j.N, j.steps, j.R));
    j.res = a->outputs[o]->data;
    PF_TRY(check_workspace(a, &j, 0));
    j.ws = a->workspace;
    j.chunks = pick_chunks(j.N);
    PF_TRY(j.dtype == PF_FLOAT32 ? forward_prepare_f32(&j) : forward_prepare_f64(&j));
    if (j.chunks > 1) pf_parallel_for(j.chunks, 1, forward_task, &j);
    else forward_task(&j, 0, 1);
    return j.status;
}

/* ---- backward ---- */

static void backward_task(void *p, int64_t c0, int64_t c1) {
    rnn_job *j = (rnn_job *)p;
    for (int64_t c = c0; c < c1; c++) {
        int status = j->dtype == PF_FLOAT32 ? backward_chunk_f32(j, c) : backward_chunk_f64(j, c);
        if (status != PF_OK) j->status = status;
    }
}

/* "lstm_grad": inputs x, W, U, reserve, gy (N, T, H), ghT, gcT[, mask];
 *              outputs dx, dW, dU, db, dh0, dc0
 * "gru_grad":  inputs x, W, U, reserve, gy, ghT[, mask]; outputs dx, dW, dU, db, drb, dh0
 * "simple_rnn_grad": inputs x, W, U, reserve, gy, ghT[, mask]; outputs dx, dW, dU, db, dh0
 * iattr: as the forward (has_initial_state is ignored: dh0 is always computed).
 * Workspace: see workspace_elems(). */
static int rnn_backward(const pf_args *a, int kind) {
    rnn_job j;
    int has_state, has_mask;
    PF_TRY(setup_common(a, kind, 1, &j, &has_state, &has_mask));
    int n_in = (kind == RNN_LSTM ? 7 : 6) + (has_mask ? 1 : 0);
    int n_out = kind == RNN_SIMPLE ? 5 : 6;
    PF_CHECK(a->n_in == n_in && a->n_out == n_out, PF_ERR_ARGUMENT,
             "expected %d inputs and %d outputs for these attributes, got %d and %d", n_in, n_out,
             a->n_in, a->n_out);
    PF_TRY(expect(a->inputs[3], "reserve", j.dtype, 3, j.N, j.steps, j.R));
    j.res = a->inputs[3]->data;
    PF_TRY(expect(a->inputs[4], "gradient of y", j.dtype, 3, j.N, j.steps, j.H));
    j.gy = a->inputs[4]->data;
    PF_TRY(expect(a->inputs[5], "gradient of final h", j.dtype, 2, j.N, j.H, 0));
    j.ghT = a->inputs[5]->data;
    int i = 6;
    if (kind == RNN_LSTM) {
        PF_TRY(expect(a->inputs[i], "gradient of final c", j.dtype, 2, j.N, j.H, 0));
        j.gcT = a->inputs[i++]->data;
    }
    if (has_mask) {
        PF_TRY(check_mask(a->inputs[i], &j));
        j.mask = a->inputs[i];
    }
    int o = 0;
    PF_TRY(expect(a->outputs[o], "dx", j.dtype, 3, j.N, j.steps, j.F));
    j.dx = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "dkernel", j.dtype, 2, j.F, j.GH, 0));
    j.dW = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "drecurrent_kernel", j.dtype, 2, j.H, j.GH, 0));
    j.dU = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "dbias", j.dtype, 1, j.GH, 0, 0));
    j.db = a->outputs[o++]->data;
    if (kind == RNN_GRU) {
        PF_TRY(expect(a->outputs[o], "drecurrent_bias", j.dtype, 1, j.GH, 0, 0));
        j.drb = a->outputs[o++]->data;
    }
    PF_TRY(expect(a->outputs[o], "dh0", j.dtype, 2, j.N, j.H, 0));
    j.dh0 = a->outputs[o++]->data;
    if (kind == RNN_LSTM) {
        PF_TRY(expect(a->outputs[o], "dc0", j.dtype, 2, j.N, j.H, 0));
        j.dc0 = a->outputs[o++]->data;
    }
    PF_TRY(check_workspace(a, &j, 1));
    j.ws = a->workspace;
    j.chunks = pick_chunks(j.N);
    if (j.dtype == PF_FLOAT32) backward_prepare_f32(&j); else backward_prepare_f64(&j);
    if (j.chunks > 1) pf_parallel_for(j.chunks, 1, backward_task, &j);
    else backward_task(&j, 0, 1);
    PF_TRY(j.status);
    return j.dtype == PF_FLOAT32 ? backward_weights_f32(&j) : backward_weights_f64(&j);
}

static int rnn_workspace(const pf_args *a, int kind, int grad, int64_t *bytes) {
    PF_CHECK(a != NULL && a->n_in >= 3 && a->inputs[0] != NULL && a->inputs[2] != NULL,
             PF_ERR_ARGUMENT, "%s: expected x, kernel and recurrent_kernel inputs", KIND_NAMES[kind]);
    const pf_tensor *x = a->inputs[0], *U = a->inputs[2];
    PF_TRY(pf_check_tensor(x, "x"));
    PF_TRY(pf_check_tensor(U, "recurrent_kernel"));
    PF_CHECK(x->ndim == 3 && U->ndim == 2, PF_ERR_SHAPE,
             "x must have 3 dims and recurrent_kernel 2, got %d and %d", x->ndim, U->ndim);
    *bytes = workspace_elems(kind, grad, x->shape[0], x->shape[1], x->shape[2], U->shape[0]) *
             (int64_t)pf_dtype_size(x->dtype);
    return PF_OK;
}

static int k_lstm(const pf_args *a) { return rnn_forward(a, RNN_LSTM); }
static int k_gru(const pf_args *a) { return rnn_forward(a, RNN_GRU); }
static int k_simple_rnn(const pf_args *a) { return rnn_forward(a, RNN_SIMPLE); }
static int k_lstm_grad(const pf_args *a) { return rnn_backward(a, RNN_LSTM); }
static int k_gru_grad(const pf_args *a) { return rnn_backward(a, RNN_GRU); }
static int k_simple_rnn_grad(const pf_args *a) { return rnn_backward(a, RNN_SIMPLE); }
static int ws_lstm(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_LSTM, 0, b); }
static int ws_gru(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_GRU, 0, b); }
static int ws_simple_rnn(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_SIMPLE, 0, b); }
static int ws_lstm_grad(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_LSTM, 1, b); }
static int ws_gru_grad(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_GRU, 1, b); }
static int ws_simple_rnn_grad(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_SIMPLE, 1, b); }

const pf_kernel_entry pf_kernels_rnn[] = {
    {"lstm", k_lstm, ws_lstm},
    {"lstm_grad", k_lstm_grad, ws_lstm_grad},
    {"gru", k_gru, ws_gru},
    {"gru_grad", k_gru_grad, ws_gru_grad},
    {"simple_rnn", k_simple_rnn, ws_simple_rnn},
    {"simple_rnn_grad", k_simple_rnn_grad, ws_simple_rnn_grad},
    {NULL, NULL, NULL},
};

#else /* RNN_TEMPLATE: the typed half, compiled once for float and once for double */

/* The cells, one batch row each. The pointers never overlap (distinct rows, or distinct slots
 * of a reserve row); restrict lets the compiler vectorise across units. z holds x W + h U of
 * the step; the bias is added here, while the row is in cache. */
static inline __attribute__((always_inline)) void SFX(lstm_cell)(
        int64_t H, T *restrict z, const T *restrict b, const T *restrict cp, T *restrict cn,
        T *restrict hn, T *restrict yo) {
    for (int64_t k = 0; k < 2 * H; k++) z[k] = SIGM(z[k] + b[k]);
    for (int64_t k = 2 * H; k < 3 * H; k++) z[k] = TANH(z[k] + b[k]);
    for (int64_t k = 3 * H; k < 4 * H; k++) z[k] = SIGM(z[k] + b[k]);
    const T *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
    for (int64_t k = 0; k < H; k++) {
        T c = fg[k] * cp[k] + ig[k] * gg[k];
        T h = og[k] * TANH(c);
        cn[k] = c;
        hn[k] = h;
        yo[k] = h;
    }
}

static inline __attribute__((always_inline)) void SFX(gru_cell)(
        int64_t H, T *restrict z, const T *restrict b, const T *restrict u, const T *restrict hp,
        T *restrict un, T *restrict hn, T *restrict yo) {
    for (int64_t k = 0; k < 2 * H; k++) z[k] = SIGM(z[k] + b[k] + u[k]);
    T *restrict rg = z, *restrict zg = z + H, *restrict ng = z + 2 * H;
    const T *restrict ua = u + 2 * H, *restrict bn = b + 2 * H;
    for (int64_t k = 0; k < H; k++) {
        T a = ua[k];
        T nn = TANH(ng[k] + bn[k] + rg[k] * a);
        T h = nn + zg[k] * (hp[k] - nn);
        un[k] = a;
        ng[k] = nn;
        hn[k] = h;
        yo[k] = h;
    }
}

static inline __attribute__((always_inline)) void SFX(simple_cell)(
        int64_t H, int relu, T *restrict z, const T *restrict b, T *restrict hn, T *restrict yo) {
    if (relu)
        for (int64_t k = 0; k < H; k++) { T v = z[k] + b[k]; T h = v > 0 ? v : 0; z[k] = h; hn[k] = h; yo[k] = h; }
    else
        for (int64_t k = 0; k < H; k++) { T h = TANH(z[k] + b[k]); z[k] = h; hn[k] = h; yo[k] = h; }
}

/* dst (cols, rows) = src (rows, cols) transposed; both contiguous */
static void SFX(transpose)(const T *src, T *dst, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
}

/* x (N, T, F) -> time-major rows (T, N, F) */
static void SFX(to_time_major)(const rnn_job *j, const T *x, T *xt) {
    const int64_t N = j->N, Tn = j->steps, F = j->F;
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < Tn; t++) memcpy(xt + (t * N + n) * F, x + (n * Tn + t) * F, (size_t)F * sizeof(T));
}

/* Before the recurrences: x W for every step of every row, one GEMM (split over the pool). */
static int SFX(forward_prepare)(rnn_job *j) {
    const int64_t N = j->N, Tn = j->steps, F = j->F;
    if (N == 0 || Tn == 0) return PF_OK;
    T *xt = (T *)j->ws;
    SFX(to_time_major)(j, (const T *)j->x, xt);
    return GEMM(0, 0, Tn * N, j->GH, F, (T)1, xt, F, (const T *)j->W, j->GH, (T)0, (T *)j->res, j->R);
}

/* One forward step for rows [n0, n1) at time t: gate nonlinearities, the new state written into
 * the next step's h_prev (and c_prev) slots, or into the final-state outputs after the last. */
static PF_HOT void SFX(forward_step)(const rnn_job *j, int64_t n0, int64_t n1, int64_t t, int last,
                                     const T *hu) {
    const int64_t N = j->N, Tn = j->steps, H = j->H, GH = j->GH, R = j->R;
    const int64_t next = j->reverse ? -N * R : N * R;
    const size_t row_bytes = (size_t)H * sizeof(T);
    const T *b = (const T *)j->b;
    T *res = (T *)j->res, *y = (T *)j->y;
    for (int64_t n = n0; n < n1; n++) {
        T *z = res + (t * N + n) * R;
        T *hp = z + GH;
        T *hn = last ? (T *)j->hT + n * H : z + next + GH;
        T *yo = y + (n * Tn + t) * H;
        if (!mask_valid(j->mask, n, t, Tn)) {   /* the state passes through; the output is zero */
            memcpy(hn, hp, row_bytes);
            if (j->kind == RNN_LSTM) memcpy(last ? (T *)j->cT + n * H : hn + H, hp + H, row_bytes);
            memset(yo, 0, row_bytes);
            continue;
        }
        if (j->kind == RNN_LSTM)
            SFX(lstm_cell)(H, z, b, hp + H, last ? (T *)j->cT + n * H : hn + H, hn, yo);
        else if (j->kind == RNN_GRU)
            SFX(gru_cell)(H, z, b, hu + (n - n0) * GH, hp, hp + H, hn, yo);
        else
            SFX(simple_cell)(H, j->relu, z, b, hn, yo);
    }
}

static void SFX(copy_or_zero)(T *dst, const T *src, int64_t n) {
    if (src) memcpy(dst, src, (size_t)n * sizeof(T));
    else memset(dst, 0, (size_t)n * sizeof(T));
}

static int SFX(forward_chunk)(rnn_job *j, int64_t n0, int64_t n1) {
    const int64_t N = j->N, Tn = j->steps, H = j->H, GH = j->GH, R = j->R, m = n1 - n0;
    const T *h0 = (const T *)j->h0, *c0 = (const T *)j->c0;
    T *res = (T *)j->res;
    if (m <= 0) return PF_OK;
    if (Tn == 0) {   /* the final state is the initial one */
        SFX(copy_or_zero)((T *)j->hT + n0 * H, h0 ? h0 + n0 * H : NULL, m * H);
        if (j->kind == RNN_LSTM) SFX(copy_or_zero)((T *)j->cT + n0 * H, c0 ? c0 + n0 * H : NULL, m * H);
        return PF_OK;
    }
    int64_t t0 = j->reverse ? Tn - 1 : 0, dir = j->reverse ? -1 : 1;
    for (int64_t n = n0; n < n1; n++) {
        T *slot = res + (t0 * N + n) * R + GH;
        SFX(copy_or_zero)(slot, h0 ? h0 + n * H : NULL, H);
        if (j->kind == RNN_LSTM) SFX(copy_or_zero)(slot + H, c0 ? c0 + n * H : NULL, H);
    }
    T *hu = j->kind == RNN_GRU ? (T *)j->ws + Tn * N * j->F + n0 * GH : NULL;
    for (int64_t s = 0; s < Tn; s++) {
        int64_t t = t0 + s * dir;
        T *row = res + (t * N + n0) * R;
        if (j->kind == RNN_GRU) {
            const T *rb = (const T *)j->rb;
            for (int64_t i = 0; i < m; i++) memcpy(hu + i * GH, rb, (size_t)GH * sizeof(T));
            PF_TRY(GEMM_SERIAL(0, 0, m, GH, j->H, (T)1, row + GH, R, (const T *)j->U, GH, (T)1, hu, GH));
        } else {
            PF_TRY(GEMM_SERIAL(0, 0, m, GH, j->H, (T)1, row + GH, R, (const T *)j->U, GH, (T)1, row, R));
        }
        SFX(forward_step)(j, n0, n1, t, s == Tn - 1, hu);
    }
    return PF_OK;
}

static inline __attribute__((always_inline)) void SFX(lstm_cell_grad)(
        int64_t H, const T *restrict z, const T *restrict cp, const T *restrict g,
        T *restrict dz, T *restrict dh, T *restrict dc) {
    const T *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
    T *restrict di = dz, *restrict df = dz + H, *restrict dg = dz + 2 * H, *restrict dO = dz + 3 * H;
    for (int64_t k = 0; k < H; k++) {
        T tc = TANH(fg[k] * cp[k] + ig[k] * gg[k]);
        T dho = dh[k] + g[k];
        T dct = dc[k] + dho * og[k] * (1 - tc * tc);
        di[k] = dct * gg[k] * ig[k] * (1 - ig[k]);
        df[k] = dct * cp[k] * fg[k] * (1 - fg[k]);
        dg[k] = dct * ig[k] * (1 - gg[k] * gg[k]);
        dO[k] = dho * tc * og[k] * (1 - og[k]);
        dc[k] = dct * fg[k];
        dh[k] = 0;
    }
}

static inline __attribute__((always_inline)) void SFX(gru_cell_grad)(
        int64_t H, const T *restrict z, const T *restrict hp, const T *restrict un,
        const T *restrict g, T *restrict dz, T *restrict dh) {
    const T *rg = z, *zg = z + H, *ng = z + 2 * H;
    T *restrict dr = dz, *restrict dzg = dz + H, *restrict dnr = dz + 2 * H, *restrict dn = dz + 3 * H;
    for (int64_t k = 0; k < H; k++) {
        T dho = dh[k] + g[k];
        T dpn = dho * (1 - zg[k]) * (1 - ng[k] * ng[k]);
        dr[k] = dpn * un[k] * rg[k] * (1 - rg[k]);
        dzg[k] = dho * (hp[k] - ng[k]) * zg[k] * (1 - zg[k]);
        dnr[k] = dpn * rg[k];
        dn[k] = dpn;
        dh[k] = dho * zg[k];
    }
}

static inline __attribute__((always_inline)) void SFX(simple_cell_grad)(
        int64_t H, int relu, const T *restrict z, const T *restrict g, T *restrict dz,
        T *restrict dh) {
    if (relu)
        for (int64_t k = 0; k < H; k++) { dz[k] = z[k] > 0 ? dh[k] + g[k] : 0; dh[k] = 0; }
    else
        for (int64_t k = 0; k < H; k++) { dz[k] = (dh[k] + g[k]) * (1 - z[k] * z[k]); dh[k] = 0; }
}

static inline __attribute__((always_inline)) void SFX(accumulate)(int64_t n, T *restrict acc,
                                                                  const T *restrict v) {
    for (int64_t k = 0; k < n; k++) acc[k] += v[k];
}

/* the backward workspace's parts */
static T *SFX(ws_dz)(const rnn_job *j) { return (T *)j->ws; }
static T *SFX(ws_dh)(const rnn_job *j) { return (T *)j->ws + j->steps * j->N * j->DG; }
static T *SFX(ws_dc)(const rnn_job *j) { return SFX(ws_dh)(j) + j->N * j->H; }
static T *SFX(ws_partial)(const rnn_job *j) { return SFX(ws_dc)(j) + j->N * j->H; }
static T *SFX(ws_ut)(const rnn_job *j) { return SFX(ws_partial)(j) + RNN_MAX_CHUNKS * j->DG; }
static T *SFX(ws_xt)(const rnn_job *j) { return SFX(ws_ut)(j) + j->GH * j->H; }

/* One backward step for rows [n0, n1) at time t: the gate gradients dZ of the step (zero at
 * masked steps), dh and dc updated to flow on (dh holds only the direct part here; the caller
 * adds dZ U^T), and the bias gradient accumulated into dbias. */
static PF_HOT void SFX(backward_step)(const rnn_job *j, int64_t n0, int64_t n1, int64_t t, T *dh,
                                      T *dc, T *dbias) {
    const int64_t N = j->N, Tn = j->steps, H = j->H, GH = j->GH, R = j->R, DG = j->DG;
    const T *res = (const T *)j->res, *gy = (const T *)j->gy;
    T *dZ = SFX(ws_dz)(j);
    for (int64_t n = n0; n < n1; n++) {
        const T *z = res + (t * N + n) * R;
        const T *g = gy + (n * Tn + t) * H;
        T *dz = dZ + (t * N + n) * DG;
        T *dhr = dh + (n - n0) * H;
        if (!mask_valid(j->mask, n, t, Tn)) {   /* the state passed through: dh, dc flow on */
            memset(dz, 0, (size_t)DG * sizeof(T));
            continue;
        }
        if (j->kind == RNN_LSTM)
            SFX(lstm_cell_grad)(H, z, z + GH + H, g, dz, dhr, dc + (n - n0) * H);
        else if (j->kind == RNN_GRU)
            SFX(gru_cell_grad)(H, z, z + GH, z + GH + H, g, dz, dhr);
        else
            SFX(simple_cell_grad)(H, j->relu, z, g, dz, dhr);
        SFX(accumulate)(DG, dbias, dz);
    }
}

/* Before the recurrences: U transposed (each step's dh GEMM then reads it without repacking)
 * and x time-major (for dW). */
static void SFX(backward_prepare)(rnn_job *j) {
    SFX(transpose)((const T *)j->U, SFX(ws_ut)(j), j->H, j->GH);
    SFX(to_time_major)(j, (const T *)j->x, SFX(ws_xt)(j));
}

static int SFX(backward_chunk)(rnn_job *j, int64_t c) {
    const int64_t n0 = chunk_begin(j, c), n1 = chunk_begin(j, c + 1), m = n1 - n0;
    const int64_t N = j->N, Tn = j->steps, H = j->H, GH = j->GH, DG = j->DG;
    T *dZ = SFX(ws_dz)(j);
    T *dh = SFX(ws_dh)(j) + n0 * H, *dc = SFX(ws_dc)(j) + n0 * H;
    T *dbias = SFX(ws_partial)(j) + c * DG;
    const T *ut = SFX(ws_ut)(j);
    memset(dbias, 0, (size_t)DG * sizeof(T));
    if (m <= 0) return PF_OK;
    memcpy(dh, (const T *)j->ghT + n0 * H, (size_t)(m * H) * sizeof(T));
    if (j->kind == RNN_LSTM) memcpy(dc, (const T *)j->gcT + n0 * H, (size_t)(m * H) * sizeof(T));
    for (int64_t s = Tn - 1; s >= 0; s--) {
        int64_t t = j->reverse ? Tn - 1 - s : s;
        SFX(backward_step)(j, n0, n1, t, dh, dc, dbias);
        /* dh += dZ[:, :GH] U^T: the recurrent-side gate gradients (GRU: dr, dz, dn * r) */
        PF_TRY(GEMM_SERIAL(0, 0, m, H, GH, (T)1, dZ + (t * N + n0) * DG, DG, ut, H, (T)1, dh, H));
    }
    memcpy((T *)j->dh0 + n0 * H, dh, (size_t)(m * H) * sizeof(T));
    if (j->kind == RNN_LSTM) memcpy((T *)j->dc0 + n0 * H, dc, (size_t)(m * H) * sizeof(T));
    return PF_OK;
}

/* After the recurrences: dW, dU and dx from every step's gate gradients (large GEMMs, split
 * over the pool) and the bias gradients from the chunks' partial sums. */
static int SFX(backward_weights)(rnn_job *j) {
    const int64_t Tn = j->steps, H = j->H, GH = j->GH, DG = j->DG, R = j->R, N = j->N, F = j->F;
    const int64_t rows = Tn * N;
    const T *dZ = SFX(ws_dz)(j), *res = (const T *)j->res, *W = (const T *)j->W;
    T *xt = SFX(ws_xt)(j);
    T *dW = (T *)j->dW, *dU = (T *)j->dU, *db = (T *)j->db;
    if (j->kind == RNN_GRU) {   /* input-side columns: dr, dz and dn (not dn * r) */
        PF_TRY(GEMM(1, 0, F, 2 * H, rows, (T)1, xt, F, dZ, DG, (T)0, dW, GH));
        PF_TRY(GEMM(1, 0, F, H, rows, (T)1, xt, F, dZ + 3 * H, DG, (T)0, dW + 2 * H, GH));
    } else {
        PF_TRY(GEMM(1, 0, F, GH, rows, (T)1, xt, F, dZ, DG, (T)0, dW, GH));
    }
    PF_TRY(GEMM(1, 0, H, GH, rows, (T)1, res + GH, R, dZ, DG, (T)0, dU, GH));
    /* dx, time-major into the buffer x used, then back to (N, T, F) */
    T *dxt = xt;
    if (j->kind == RNN_GRU) {
        PF_TRY(GEMM(0, 1, rows, F, 2 * H, (T)1, dZ, DG, W, GH, (T)0, dxt, F));
        PF_TRY(GEMM(0, 1, rows, F, H, (T)1, dZ + 3 * H, DG, W + 2 * H, GH, (T)1, dxt, F));
    } else {
        PF_TRY(GEMM(0, 1, rows, F, GH, (T)1, dZ, DG, W, GH, (T)0, dxt, F));
    }
    T *dx = (T *)j->dx;
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < Tn; t++) memcpy(dx + (n * Tn + t) * F, dxt + (t * N + n) * F, (size_t)F * sizeof(T));
    const T *partial = SFX(ws_partial)(j);
    if (j->kind == RNN_GRU) {
        T *drb = (T *)j->drb;
        for (int64_t k = 0; k < 3 * H; k++) {
            T s = 0;
            for (int64_t c = 0; c < j->chunks; c++) s += partial[c * DG + k];
            drb[k] = s;
            if (k < 2 * H) db[k] = s;
        }
        for (int64_t k = 0; k < H; k++) {
            T s = 0;
            for (int64_t c = 0; c < j->chunks; c++) s += partial[c * DG + 3 * H + k];
            db[2 * H + k] = s;
        }
    } else {
        for (int64_t k = 0; k < GH; k++) {
            T s = 0;
            for (int64_t c = 0; c < j->chunks; c++) s += partial[c * DG + k];
            db[k] = s;
        }
    }
    return PF_OK;
}

#endif /* RNN_TEMPLATE */
