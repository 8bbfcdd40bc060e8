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
 * The reserve (forward output, backward input) holds per (n, t) a row of R values:
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

/* workspace in elements: forward (GRU only) one row of h U + rb per batch row; backward the
 * gate gradients of every step, the running dh and dc, and one bias-gradient row per chunk */
static int64_t workspace_elems(int kind, int grad, int64_t N, int64_t T, int64_t H) {
    if (!grad) return kind == RNN_GRU ? N * 3 * H : 0;
    int64_t DG = grad_width(kind, H);
    return N * T * DG + 2 * N * H + RNN_MAX_CHUNKS * DG;
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
    int64_t need = workspace_elems(j->kind, grad, j->N, j->steps, j->H) * (int64_t)pf_dtype_size(j->dtype);
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
 * Workspace (gru): N * 3H elements. */
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
 * Workspace: N*T*DG + 2*N*H + 16*DG elements (DG = 4H for LSTM and GRU, H for SimpleRNN). */
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
    *bytes = workspace_elems(kind, grad, x->shape[0], x->shape[1], U->shape[0]) *
             (int64_t)pf_dtype_size(x->dtype);
    return PF_OK;
}

static int k_lstm(const pf_args *a) { return rnn_forward(a, RNN_LSTM); }
static int k_gru(const pf_args *a) { return rnn_forward(a, RNN_GRU); }
static int k_simple_rnn(const pf_args *a) { return rnn_forward(a, RNN_SIMPLE); }
static int k_lstm_grad(const pf_args *a) { return rnn_backward(a, RNN_LSTM); }
static int k_gru_grad(const pf_args *a) { return rnn_backward(a, RNN_GRU); }
static int k_simple_rnn_grad(const pf_args *a) { return rnn_backward(a, RNN_SIMPLE); }
static int ws_gru(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_GRU, 0, b); }
static int ws_lstm_grad(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_LSTM, 1, b); }
static int ws_gru_grad(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_GRU, 1, b); }
static int ws_simple_rnn_grad(const pf_args *a, int64_t *b) { return rnn_workspace(a, RNN_SIMPLE, 1, b); }

const pf_kernel_entry pf_kernels_rnn[] = {
    {"lstm", k_lstm, NULL},
    {"lstm_grad", k_lstm_grad, ws_lstm_grad},
    {"gru", k_gru, ws_gru},
    {"gru_grad", k_gru_grad, ws_gru_grad},
    {"simple_rnn", k_simple_rnn, NULL},
    {"simple_rnn_grad", k_simple_rnn_grad, ws_simple_rnn_grad},
    {NULL, NULL, NULL},
};

#else /* RNN_TEMPLATE: the typed half, compiled once for float and once for double */

/* One forward step for rows [n0, n1) at time t: gate nonlinearities, the new state written into
 * the next step's h_prev (and c_prev) slots, or into the final-state outputs after the last. */
static PF_HOT void SFX(forward_step)(const rnn_job *j, int64_t n0, int64_t n1, int64_t t, int last,
                                     const T *hu) {
    const int64_t Tn = j->steps, H = j->H, GH = j->GH, R = j->R;
    const int64_t next = j->reverse ? -R : R;
    T *res = (T *)j->res, *y = (T *)j->y;
    for (int64_t n = n0; n < n1; n++) {
        T *z = res + (n * Tn + t) * R;
        const T *hp = z + GH;
        T *hn = last ? (T *)j->hT + n * H : z + next + GH;
        T *yo = y + (n * Tn + t) * H;
        int valid = mask_valid(j->mask, n, t, Tn);
        if (j->kind == RNN_LSTM) {
            const T *cp = hp + H;
            T *cn = last ? (T *)j->cT + n * H : hn + H;
            if (!valid) {
                memcpy(hn, hp, (size_t)H * sizeof(T));
                memcpy(cn, cp, (size_t)H * sizeof(T));
                memset(yo, 0, (size_t)H * sizeof(T));
                continue;
            }
            for (int64_t k = 0; k < 2 * H; k++) z[k] = SIGM(z[k]);
            for (int64_t k = 2 * H; k < 3 * H; k++) z[k] = TANH(z[k]);
            for (int64_t k = 3 * H; k < 4 * H; k++) z[k] = SIGM(z[k]);
            for (int64_t k = 0; k < H; k++) {
                T c = z[H + k] * cp[k] + z[k] * z[2 * H + k];
                T h = z[3 * H + k] * TANH(c);
                cn[k] = c;
                hn[k] = h;
                yo[k] = h;
            }
        } else if (j->kind == RNN_GRU) {
            if (!valid) {
                memcpy(hn, hp, (size_t)H * sizeof(T));
                memset(yo, 0, (size_t)H * sizeof(T));
                continue;
            }
            const T *u = hu + (n - n0) * GH;
            T *un = z + GH + H;   /* (h U + rb)_n, needed for the gradient of r */
            for (int64_t k = 0; k < 2 * H; k++) z[k] = SIGM(z[k] + u[k]);
            for (int64_t k = 0; k < H; k++) {
                T a = u[2 * H + k];
                T nn = TANH(z[2 * H + k] + z[k] * a);
                T h = nn + z[H + k] * (hp[k] - nn);
                un[k] = a;
                z[2 * H + k] = nn;
                hn[k] = h;
                yo[k] = h;
            }
        } else {
            if (!valid) {
                memcpy(hn, hp, (size_t)H * sizeof(T));
                memset(yo, 0, (size_t)H * sizeof(T));
                continue;
            }
            if (j->relu)
                for (int64_t k = 0; k < H; k++) { T h = z[k] > 0 ? z[k] : 0; z[k] = h; hn[k] = h; yo[k] = h; }
            else
                for (int64_t k = 0; k < H; k++) { T h = TANH(z[k]); z[k] = h; hn[k] = h; yo[k] = h; }
        }
    }
}

static int SFX(forward_chunk)(rnn_job *j, int64_t n0, int64_t n1) {
    const int64_t Tn = j->steps, H = j->H, GH = j->GH, R = j->R, F = j->F, m = n1 - n0;
    const T *h0 = (const T *)j->h0, *c0 = (const T *)j->c0;
    T *res = (T *)j->res;
    if (m <= 0) return PF_OK;
    if (Tn == 0) {   /* the final state is the initial one */
        for (int64_t n = n0; n < n1; n++) {
            T *hT = (T *)j->hT + n * H;
            if (h0) memcpy(hT, h0 + n * H, (size_t)H * sizeof(T)); else memset(hT, 0, (size_t)H * sizeof(T));
            if (j->kind == RNN_LSTM) {
                T *cT = (T *)j->cT + n * H;
                if (c0) memcpy(cT, c0 + n * H, (size_t)H * sizeof(T)); else memset(cT, 0, (size_t)H * sizeof(T));
            }
        }
        return PF_OK;
    }
    /* the input projection of every step of these rows: one GEMM onto the bias */
    const T *b = (const T *)j->b;
    for (int64_t r = n0 * Tn; r < n1 * Tn; r++) memcpy(res + r * R, b, (size_t)GH * sizeof(T));
    PF_TRY(GEMM_SERIAL(0, 0, m * Tn, GH, F, (T)1, (const T *)j->x + n0 * Tn * F, F,
                       (const T *)j->W, GH, (T)1, res + n0 * Tn * R, R));
    int64_t t0 = j->reverse ? Tn - 1 : 0, dir = j->reverse ? -1 : 1;
    for (int64_t n = n0; n < n1; n++) {
        T *slot = res + (n * Tn + t0) * R + GH;
        if (h0) memcpy(slot, h0 + n * H, (size_t)H * sizeof(T)); else memset(slot, 0, (size_t)H * sizeof(T));
        if (j->kind == RNN_LSTM) {
            if (c0) memcpy(slot + H, c0 + n * H, (size_t)H * sizeof(T));
            else memset(slot + H, 0, (size_t)H * sizeof(T));
        }
    }
    const int64_t ld = Tn * R;   /* from one batch row to the next at a fixed step */
    T *hu = j->kind == RNN_GRU ? (T *)j->ws + n0 * GH : NULL;
    for (int64_t s = 0; s < Tn; s++) {
        int64_t t = t0 + s * dir;
        T *row = res + (n0 * Tn + t) * R;
        if (j->kind == RNN_GRU) {
            const T *rb = (const T *)j->rb;
            for (int64_t i = 0; i < m; i++) memcpy(hu + i * GH, rb, (size_t)GH * sizeof(T));
            PF_TRY(GEMM_SERIAL(0, 0, m, GH, H, (T)1, row + GH, ld, (const T *)j->U, GH, (T)1, hu, GH));
        } else {
            PF_TRY(GEMM_SERIAL(0, 0, m, GH, H, (T)1, row + GH, ld, (const T *)j->U, GH, (T)1, row, ld));
        }
        SFX(forward_step)(j, n0, n1, t, s == Tn - 1, hu);
    }
    return PF_OK;
}

/* One backward step for rows [n0, n1) at time t: the gate gradients dZ of the step (zero at
 * masked steps), dh and dc updated to flow on (dh holds only the direct part here; the caller
 * adds dZ U^T), and the bias gradient accumulated into dbias. */
static PF_HOT void SFX(backward_step)(const rnn_job *j, int64_t n0, int64_t n1, int64_t t, T *dh,
                                      T *dc, T *dbias) {
    const int64_t Tn = j->steps, H = j->H, GH = j->GH, R = j->R, DG = j->DG;
    const T *res = (const T *)j->res, *gy = (const T *)j->gy;
    T *dZ = (T *)j->ws;
    for (int64_t n = n0; n < n1; n++) {
        const T *z = res + (n * Tn + t) * R;
        const T *hp = z + GH;
        const T *g = gy + (n * Tn + t) * H;
        T *dz = dZ + (n * Tn + t) * DG;
        T *dhr = dh + (n - n0) * H;
        if (!mask_valid(j->mask, n, t, Tn)) {   /* the state passed through: dh, dc flow on */
            memset(dz, 0, (size_t)DG * sizeof(T));
            continue;
        }
        if (j->kind == RNN_LSTM) {
            const T *cp = hp + H;
            T *dcr = dc + (n - n0) * H;
            for (int64_t k = 0; k < H; k++) {
                T ig = z[k], fg = z[H + k], gg = z[2 * H + k], og = z[3 * H + k];
                T tc = TANH(fg * cp[k] + ig * gg);
                T dho = dhr[k] + g[k];
                T dct = dcr[k] + dho * og * (1 - tc * tc);
                dz[k] = dct * gg * ig * (1 - ig);
                dz[H + k] = dct * cp[k] * fg * (1 - fg);
                dz[2 * H + k] = dct * ig * (1 - gg * gg);
                dz[3 * H + k] = dho * tc * og * (1 - og);
                dcr[k] = dct * fg;
                dhr[k] = 0;
            }
        } else if (j->kind == RNN_GRU) {
            const T *un = hp + H;
            for (int64_t k = 0; k < H; k++) {
                T r = z[k], zz = z[H + k], nn = z[2 * H + k];
                T dho = dhr[k] + g[k];
                T dpn = dho * (1 - zz) * (1 - nn * nn);
                dz[k] = dpn * un[k] * r * (1 - r);
                dz[H + k] = dho * (hp[k] - nn) * zz * (1 - zz);
                dz[2 * H + k] = dpn * r;
                dz[3 * H + k] = dpn;
                dhr[k] = dho * zz;
            }
        } else if (j->relu) {
            for (int64_t k = 0; k < H; k++) { dz[k] = z[k] > 0 ? dhr[k] + g[k] : 0; dhr[k] = 0; }
        } else {
            for (int64_t k = 0; k < H; k++) { dz[k] = (dhr[k] + g[k]) * (1 - z[k] * z[k]); dhr[k] = 0; }
        }
        for (int64_t k = 0; k < DG; k++) dbias[k] += dz[k];
    }
}

static int SFX(backward_chunk)(rnn_job *j, int64_t c) {
    const int64_t n0 = chunk_begin(j, c), n1 = chunk_begin(j, c + 1), m = n1 - n0;
    const int64_t Tn = j->steps, H = j->H, GH = j->GH, DG = j->DG, N = j->N, F = j->F;
    T *dZ = (T *)j->ws;
    T *dh = dZ + N * Tn * DG + n0 * H;
    T *dc = dZ + N * Tn * DG + N * H + n0 * H;
    T *dbias = dZ + N * Tn * DG + 2 * N * H + c * DG;
    memset(dbias, 0, (size_t)DG * sizeof(T));
    if (m <= 0) return PF_OK;
    memcpy(dh, (const T *)j->ghT + n0 * H, (size_t)(m * H) * sizeof(T));
    if (j->kind == RNN_LSTM) memcpy(dc, (const T *)j->gcT + n0 * H, (size_t)(m * H) * sizeof(T));
    const int64_t GU = GH;   /* recurrent-side gradient columns: dZ[:, 0:GH] for every kind */
    for (int64_t s = Tn - 1; s >= 0; s--) {
        int64_t t = j->reverse ? Tn - 1 - s : s;
        SFX(backward_step)(j, n0, n1, t, dh, dc, dbias);
        PF_TRY(GEMM_SERIAL(0, 1, m, H, GU, (T)1, dZ + (n0 * Tn + t) * DG, Tn * DG, (const T *)j->U, GH,
                           (T)1, dh, H));
    }
    memcpy((T *)j->dh0 + n0 * H, dh, (size_t)(m * H) * sizeof(T));
    if (j->kind == RNN_LSTM) memcpy((T *)j->dc0 + n0 * H, dc, (size_t)(m * H) * sizeof(T));
    /* dx of these rows for every step */
    T *dx = (T *)j->dx + n0 * Tn * F;
    const T *dzr = dZ + n0 * Tn * DG;
    if (j->kind == RNN_GRU) {
        PF_TRY(GEMM_SERIAL(0, 1, m * Tn, F, 2 * H, (T)1, dzr, DG, (const T *)j->W, GH, (T)0, dx, F));
        PF_TRY(GEMM_SERIAL(0, 1, m * Tn, F, H, (T)1, dzr + 3 * H, DG, (const T *)j->W + 2 * H, GH,
                           (T)1, dx, F));
    } else {
        PF_TRY(GEMM_SERIAL(0, 1, m * Tn, F, GH, (T)1, dzr, DG, (const T *)j->W, GH, (T)0, dx, F));
    }
    return PF_OK;
}

/* dW, dU from every step's gate gradients (large GEMMs, split over the pool) and the bias
 * gradients from the chunks' partial sums. */
static int SFX(backward_weights)(rnn_job *j) {
    const int64_t Tn = j->steps, H = j->H, GH = j->GH, DG = j->DG, R = j->R, N = j->N, F = j->F;
    const int64_t rows = N * Tn;
    const T *dZ = (const T *)j->ws, *x = (const T *)j->x, *res = (const T *)j->res;
    T *dW = (T *)j->dW, *dU = (T *)j->dU, *db = (T *)j->db;
    if (j->kind == RNN_GRU) {
        PF_TRY(GEMM(1, 0, F, 2 * H, rows, (T)1, x, F, dZ, DG, (T)0, dW, GH));
        PF_TRY(GEMM(1, 0, F, H, rows, (T)1, x, F, dZ + 3 * H, DG, (T)0, dW + 2 * H, GH));
    } else {
        PF_TRY(GEMM(1, 0, F, GH, rows, (T)1, x, F, dZ, DG, (T)0, dW, GH));
    }
    PF_TRY(GEMM(1, 0, H, GH, rows, (T)1, res + GH, R, dZ, DG, (T)0, dU, GH));
    const T *partial = dZ + N * Tn * DG + 2 * N * H;
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
