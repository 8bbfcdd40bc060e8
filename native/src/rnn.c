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
 * How it runs. The batch is split into chunks of rows that run their whole recurrences
 * independently on the pool (rows never interact), so the small per-step GEMMs stay
 * single-threaded and need no per-step synchronisation. Within a chunk of m rows everything
 * is feature-major: one step's values are rows of m contiguous numbers, so the gate
 * nonlinearities run as flat vector loops over H*m elements (no per-row remainders: H = 50
 * is not a multiple of the vector width). One GEMM per step computes every gate:
 *     Z (ZR x m) = A (ZR x K) @ [x_t ; 1 ; h_{t-1}] (K x m),   A = [W^T | b | U^T],  K = F+1+H
 * so the input projection and the bias ride along. Backward, per step: the gate gradients
 * dZ (ZR x m); one GEMM A^T dZ gives both dx_t and the recurrent dh; one GEMM
 * [x ; 1 ; h] dZ^T accumulates [dW ; db ; dU] while the step's data are in cache.
 * GRU's A has ZR = 4H rows [r z | x_n | h_n]: the n gate needs x W_n and h U_n apart.
 *
 * The reserve (forward output, backward input; declared (N, T*R + 1)) holds, per step t and
 * chunk, a feature-major block of R rows of m values at offset (t*N + n0)*R:
 *   LSTM [i f g o (activated) | x | 1 | h_prev | c_prev]       R = 6H + F + 1
 *   GRU  [r z n (activated) | h U_n + rb_n | x | 1 | h_prev]    R = 5H + F + 1
 *   RNN  [h (activated) | x | 1 | h_prev]                       R = 2H + F + 1
 * (h_prev: the state before step t in processing order); element N*T*R records the number
 * of chunks, which fixes the layout the backward call must read.
 */
#ifndef RNN_TEMPLATE
#include <stdio.h>

#include "internal.h"

enum { RNN_LSTM = 0, RNN_GRU = 1, RNN_SIMPLE = 2 };

/* Chunks: at least this many rows each (a GEMM over a few columns wastes the BLAS kernels),
 * at most this many. */
#define RNN_MIN_CHUNK_ROWS 16
#define RNN_MAX_CHUNKS 16

typedef struct {
    int kind, dtype, reverse, relu;
    int64_t N, steps, F, H;
    int64_t G;        /* gates: 4, 3, 1 */
    int64_t GH;       /* G * H: columns of W and U */
    int64_t ZR;       /* rows of a step's gate block (GRU: 4H) */
    int64_t K;        /* F + 1 + H */
    int64_t R;        /* reserve rows per step */
    int64_t chunks;   /* layout chunks */
    int64_t tasks;    /* backward: pool tasks, each with its own weight-gradient partial */
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
static int64_t gate_rows(int kind, int64_t H) { return kind == RNN_SIMPLE ? H : 4 * H; }
static int64_t reserve_rows(int kind, int64_t F, int64_t H) {
    return gate_rows(kind, H) + F + 1 + H + (kind == RNN_LSTM ? H : 0);
}

static inline int mask_valid(const pf_tensor *mask, int64_t n, int64_t t, int64_t T) {
    if (mask == NULL) return 1;
    int64_t i = n * T + t;
    switch (mask->dtype) {
    case PF_FLOAT32: return ((const float *)mask->data)[i] != 0;
    case PF_FLOAT64: return ((const double *)mask->data)[i] != 0;
    case PF_INT32: return ((const int32_t *)mask->data)[i] != 0;
    case PF_BOOL: return ((const uint8_t *)mask->data)[i] != 0;
    default: return ((const int64_t *)mask->data)[i] != 0;
    }
}

static int64_t chunk_begin(const rnn_job *j, int64_t c) { return c * j->N / j->chunks; }

/* chunks for a batch of N rows on the current pool (also the backward's partial count) */
static int64_t pick_chunks(int64_t N) {
    int64_t c = pf_threads();
    int64_t by_rows = N / RNN_MIN_CHUNK_ROWS;
    if (c > by_rows) c = by_rows;
    if (c > RNN_MAX_CHUNKS) c = RNN_MAX_CHUNKS;
    return c < 1 ? 1 : c;
}

/* Workspace in elements (mirrored in pyfront/ops/rnn.py).
 * forward:  [A: ZR*K][final h and c of each chunk, feature-major: 2*N*H]
 * backward: [A^T: ZR*K][per row: dZ (ZR), two dh/dx buffers (2K), two dc (2H), gy (H)]
 *           [one [dW ; db ; dU] partial (K*ZR) per pool task: pick_chunks(N)] */
static int64_t fixed_workspace(int kind, int grad, int64_t N, int64_t F, int64_t H) {
    int64_t ZR = gate_rows(kind, H), K = F + 1 + H;
    if (!grad) return ZR * K + 2 * N * H;
    return ZR * K + N * (ZR + 2 * K + 3 * H);
}

static int64_t workspace_elems(int kind, int grad, int64_t N, int64_t F, int64_t H) {
    int64_t base = fixed_workspace(kind, grad, N, F, H);
    return grad ? base + pick_chunks(N) * gate_rows(kind, H) * (F + 1 + H) : base;
}

#define RNN_TEMPLATE
#define T float
#define SFX(name) name##_f32
#define GEMM_SERIAL pf_sgemm_serial
#define SIGM pf_sigmoidf
#define TANH pf_tanhf
#include "rnn.c"
#undef T
#undef SFX
#undef GEMM_SERIAL
#undef SIGM
#undef TANH

#define T double
#define SFX(name) name##_f64
#define GEMM_SERIAL pf_dgemm_serial
#define SIGM pf_sigmoid
#define TANH tanh
#include "rnn.c"
#undef T
#undef SFX
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
static int setup_common(const pf_args *a, int kind, rnn_job *j, int *has_state, int *has_mask) {
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
    j->ZR = gate_rows(kind, j->H);
    j->K = j->F + 1 + j->H;
    j->R = reserve_rows(kind, j->F, j->H);
    PF_TRY(expect(U, "recurrent_kernel", j->dtype, 2, j->H, j->GH, 0));
    PF_TRY(expect(W, "kernel", j->dtype, 2, j->F, j->GH, 0));
    /* sizes handed to the 32-bit BLAS */
    PF_CHECK(j->N <= INT32_MAX && j->K <= INT32_MAX && j->ZR <= INT32_MAX && j->F <= INT32_MAX,
             PF_ERR_BLAS, "batch or layer too large for the 32-bit BLAS: N=%lld F=%lld units=%lld",
             (long long)j->N, (long long)j->F, (long long)j->H);
    PF_CHECK(pf_blas_bound(), PF_ERR_BLAS, "no BLAS is loaded (pf_load_blas was not called)");
    j->x = x->data;
    j->W = W->data;
    j->U = U->data;
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

/* The workspace must hold the fixed part and, backward, at least one weight-gradient
 * partial; returns how many partials fit. */
static int check_workspace(const pf_args *a, const rnn_job *j, int grad, int64_t *partials) {
    int64_t size = (int64_t)pf_dtype_size(j->dtype);
    int64_t fixed = fixed_workspace(j->kind, grad, j->N, j->F, j->H);
    int64_t per = grad ? j->ZR * j->K : 0;
    int64_t need = (fixed + per) * size;
    PF_CHECK(a->workspace != NULL && a->workspace_bytes >= need, PF_ERR_ARGUMENT,
             "needs a workspace of at least %lld bytes, got %lld", (long long)need,
             (long long)(a->workspace ? a->workspace_bytes : 0));
    if (partials) *partials = per ? (a->workspace_bytes / size - fixed) / per : 0;
    return PF_OK;
}

/* ---- forward ---- */

static void forward_task(void *p, int64_t c0, int64_t c1) {
    rnn_job *j = (rnn_job *)p;
    for (int64_t c = c0; c < c1; c++) {
        int status = j->dtype == PF_FLOAT32 ? forward_chunk_f32(j, c) : forward_chunk_f64(j, c);
        if (status != PF_OK) j->status = status;
    }
}

/* "lstm":  inputs x, W, U, b[, h0, c0][, mask]; outputs y (N, T, H), hT, cT, reserve
 * "gru":   inputs x, W, U, b, rb[, h0][, mask];   outputs y, hT, reserve
 * "simple_rnn": inputs x, W, U, b[, h0][, mask];   outputs y, hT, reserve
 * reserve: (N, T * R + 1), R as in the header comment.
 * iattr: has_initial_state, has_mask, reverse[, activation (simple_rnn: 0 tanh, 1 relu)].
 * Workspace: see workspace_elems(). */
static int rnn_forward(const pf_args *a, int kind) {
    rnn_job j;
    int has_state, has_mask;
    PF_TRY(setup_common(a, kind, &j, &has_state, &has_mask));
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
    PF_TRY(expect(a->outputs[o], "reserve", j.dtype, 2, j.N, j.steps * j.R + 1, 0));
    j.res = a->outputs[o]->data;
    PF_TRY(check_workspace(a, &j, 0, NULL));
    j.ws = a->workspace;
    j.chunks = pick_chunks(j.N);
    if (j.dtype == PF_FLOAT32) forward_prepare_f32(&j); else forward_prepare_f64(&j);
    if (j.chunks > 1) pf_parallel_for(j.chunks, 1, forward_task, &j);
    else forward_task(&j, 0, 1);
    return j.status;
}

/* ---- backward ---- */

static void backward_task(void *p, int64_t t0, int64_t t1) {
    rnn_job *j = (rnn_job *)p;
    for (int64_t task = t0; task < t1; task++) {
        int64_t c0 = task * j->chunks / j->tasks, c1 = (task + 1) * j->chunks / j->tasks;
        int status = j->dtype == PF_FLOAT32 ? backward_task_f32(j, task, c0, c1)
                                            : backward_task_f64(j, task, c0, c1);
        if (status != PF_OK) j->status = status;
    }
}

/* "lstm_grad": inputs x, W, U, reserve, gy (N, T, H), ghT, gcT[, mask];
 *              outputs dx, dW, dU, db, dh0, dc0
 * "gru_grad":  inputs x, W, U, reserve, gy, ghT[, mask]; outputs dx, dW, dU, db, drb, dh0
 * "simple_rnn_grad": inputs x, W, U, reserve, gy, ghT[, mask]; outputs dx, dW, dU, db, dh0
 * iattr: as the forward (has_initial_state is ignored: dh0 is always computed).
 * Workspace: see workspace_elems(); a smaller one (down to one partial) runs on fewer threads. */
static int rnn_backward(const pf_args *a, int kind) {
    rnn_job j;
    int has_state, has_mask;
    PF_TRY(setup_common(a, kind, &j, &has_state, &has_mask));
    int n_in = (kind == RNN_LSTM ? 7 : 6) + (has_mask ? 1 : 0);
    int n_out = kind == RNN_SIMPLE ? 5 : 6;
    PF_CHECK(a->n_in == n_in && a->n_out == n_out, PF_ERR_ARGUMENT,
             "expected %d inputs and %d outputs for these attributes, got %d and %d", n_in, n_out,
             a->n_in, a->n_out);
    PF_TRY(expect(a->inputs[3], "reserve", j.dtype, 2, j.N, j.steps * j.R + 1, 0));
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
    int64_t partials = 0;
    PF_TRY(check_workspace(a, &j, 1, &partials));
    j.ws = a->workspace;
    j.chunks = 1;
    if (j.N > 0) {   /* the layout the forward call chose */
        double recorded = j.dtype == PF_FLOAT32 ? ((const float *)j.res)[j.N * j.steps * j.R]
                                                : ((const double *)j.res)[j.N * j.steps * j.R];
        PF_CHECK(recorded >= 1 && recorded <= RNN_MAX_CHUNKS && recorded <= (double)j.N &&
                 recorded == (double)(int64_t)recorded, PF_ERR_ARGUMENT,
                 "reserve was not written by the %s forward kernel (chunk count %g)",
                 KIND_NAMES[kind], recorded);
        j.chunks = (int64_t)recorded;
    }
    j.tasks = pf_threads();
    if (j.tasks > j.chunks) j.tasks = j.chunks;
    if (j.tasks > partials) j.tasks = partials;
    if (j.dtype == PF_FLOAT32) backward_prepare_f32(&j); else backward_prepare_f64(&j);
    if (j.tasks > 1) pf_parallel_for(j.tasks, 1, backward_task, &j);
    else backward_task(&j, 0, 1);
    PF_TRY(j.status);
    if (j.dtype == PF_FLOAT32) backward_weights_f32(&j); else backward_weights_f64(&j);
    return PF_OK;
}

static int rnn_workspace(const pf_args *a, int kind, int grad, int64_t *bytes) {
    PF_CHECK(a != NULL && a->n_in >= 3 && a->inputs[0] != NULL && a->inputs[2] != NULL,
             PF_ERR_ARGUMENT, "%s: expected x, kernel and recurrent_kernel inputs", KIND_NAMES[kind]);
    const pf_tensor *x = a->inputs[0], *U = a->inputs[2];
    PF_TRY(pf_check_tensor(x, "x"));
    PF_TRY(pf_check_tensor(U, "recurrent_kernel"));
    PF_CHECK(x->ndim == 3 && U->ndim == 2, PF_ERR_SHAPE,
             "x must have 3 dims and recurrent_kernel 2, got %d and %d", x->ndim, U->ndim);
    *bytes = workspace_elems(kind, grad, x->shape[0], x->shape[2], U->shape[0]) *
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

#define RNN_INLINE static inline __attribute__((always_inline))

/* The cells, flat over the H*m values of one step of a chunk (feature-major rows, so every
 * pointer is one gate's or state's contiguous block; the blocks never overlap). */
RNN_INLINE void SFX(lstm_cell)(int64_t n, T *restrict ig, T *restrict fg, T *restrict gg,
                                T *restrict og, const T *restrict cp, T *restrict cn,
                                T *restrict hn) {
    for (int64_t j = 0; j < n; j++) {
        T i = SIGM(ig[j]), f = SIGM(fg[j]), g = TANH(gg[j]), o = SIGM(og[j]);
        T c = f * cp[j] + i * g;
        ig[j] = i;
        fg[j] = f;
        gg[j] = g;
        og[j] = o;
        cn[j] = c;
        hn[j] = o * TANH(c);
    }
}

RNN_INLINE void SFX(gru_cell)(int64_t n, T *restrict rg, T *restrict zg, T *restrict ng,
                               const T *restrict ua, const T *restrict hp, T *restrict hn) {
    for (int64_t j = 0; j < n; j++) {
        T r = SIGM(rg[j]), z = SIGM(zg[j]);
        T nn = TANH(ng[j] + r * ua[j]);
        rg[j] = r;
        zg[j] = z;
        ng[j] = nn;
        hn[j] = nn + z * (hp[j] - nn);
    }
}

RNN_INLINE void SFX(simple_cell)(int64_t n, int relu, T *restrict z, T *restrict hn) {
    if (relu)
        for (int64_t j = 0; j < n; j++) { T h = z[j] > 0 ? z[j] : 0; z[j] = h; hn[j] = h; }
    else
        for (int64_t j = 0; j < n; j++) { T h = TANH(z[j]); z[j] = h; hn[j] = h; }
}

RNN_INLINE void SFX(lstm_cell_grad)(int64_t n, const T *restrict ig, const T *restrict fg,
                                     const T *restrict gg, const T *restrict og,
                                     const T *restrict cp, const T *restrict gy,
                                     const T *restrict dh_in, const T *restrict dc_in,
                                     T *restrict di, T *restrict df, T *restrict dg,
                                     T *restrict dout, T *restrict dh_out, T *restrict dc_out) {
    for (int64_t j = 0; j < n; j++) {
        T i = ig[j], f = fg[j], g = gg[j], o = og[j];
        T tc = TANH(f * cp[j] + i * g);
        T dho = dh_in[j] + gy[j];
        T dct = dc_in[j] + dho * o * (1 - tc * tc);
        di[j] = dct * g * i * (1 - i);
        df[j] = dct * cp[j] * f * (1 - f);
        dg[j] = dct * i * (1 - g * g);
        dout[j] = dho * tc * o * (1 - o);
        dc_out[j] = dct * f;
        dh_out[j] = 0;
    }
}

RNN_INLINE void SFX(gru_cell_grad)(int64_t n, const T *restrict rg, const T *restrict zg,
                                    const T *restrict ng, const T *restrict ua,
                                    const T *restrict hp, const T *restrict gy,
                                    const T *restrict dh_in, T *restrict dr, T *restrict dz,
                                    T *restrict dxn, T *restrict dhn, T *restrict dh_out) {
    for (int64_t j = 0; j < n; j++) {
        T r = rg[j], z = zg[j], nn = ng[j];
        T dho = dh_in[j] + gy[j];
        T dpn = dho * (1 - z) * (1 - nn * nn);
        dr[j] = dpn * ua[j] * r * (1 - r);
        dz[j] = dho * (hp[j] - nn) * z * (1 - z);
        dxn[j] = dpn;
        dhn[j] = dpn * r;
        dh_out[j] = dho * z;
    }
}

RNN_INLINE void SFX(simple_cell_grad)(int64_t n, int relu, const T *restrict h,
                                       const T *restrict gy, const T *restrict dh_in,
                                       T *restrict dz, T *restrict dh_out) {
    if (relu)
        for (int64_t j = 0; j < n; j++) { dz[j] = h[j] > 0 ? dh_in[j] + gy[j] : 0; dh_out[j] = 0; }
    else
        for (int64_t j = 0; j < n; j++) { dz[j] = (dh_in[j] + gy[j]) * (1 - h[j] * h[j]); dh_out[j] = 0; }
}

/* One step's cells over a chunk (hm = H * m values per gate), compiled per instruction set. */
static PF_HOT void SFX(forward_cells)(const rnn_job *j, int64_t hm, T *blk, const T *hp,
                                      const T *cp, T *hn, T *cn) {
    if (j->kind == RNN_LSTM)
        SFX(lstm_cell)(hm, blk, blk + hm, blk + 2 * hm, blk + 3 * hm, cp, cn, hn);
    else if (j->kind == RNN_GRU)
        SFX(gru_cell)(hm, blk, blk + hm, blk + 2 * hm, blk + 3 * hm, hp, hn);
    else
        SFX(simple_cell)(hm, j->relu, blk, hn);
}

static PF_HOT void SFX(backward_cells)(const rnn_job *j, int64_t hm, const T *blk, const T *hp,
                                       const T *cp, const T *gy, const T *dh_in,
                                       const T *dc_in, T *dZ, T *dh_out, T *dc_out) {
    if (j->kind == RNN_LSTM)
        SFX(lstm_cell_grad)(hm, blk, blk + hm, blk + 2 * hm, blk + 3 * hm, cp, gy, dh_in, dc_in,
                            dZ, dZ + hm, dZ + 2 * hm, dZ + 3 * hm, dh_out, dc_out);
    else if (j->kind == RNN_GRU)
        SFX(gru_cell_grad)(hm, blk, blk + hm, blk + 2 * hm, blk + 3 * hm, hp, gy, dh_in,
                           dZ, dZ + hm, dZ + 2 * hm, dZ + 3 * hm, dh_out);
    else
        SFX(simple_cell_grad)(hm, j->relu, blk, gy, dh_in, dZ, dh_out);
}

/* a chunk's block of step t in the reserve */
static T *SFX(block)(const rnn_job *j, int64_t t, int64_t n0) {
    return (T *)j->res + (t * j->N + n0) * j->R;
}

/* rows (m, cols) batch-major at src with row stride ld  ->  feature-major dst (cols, m) */
static void SFX(gather)(T *dst, const T *src, int64_t m, int64_t cols, int64_t ld) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < cols; k++) dst[k * m + i] = src[i * ld + k];
}

/* the inverse: feature-major src (cols, m) -> rows of dst with row stride ld */
static void SFX(scatter)(T *dst, const T *src, int64_t m, int64_t cols, int64_t ld) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < cols; k++) dst[i * ld + k] = src[k * m + i];
}

/* A = [W^T | b | U^T] with one row per gate-block row (GRU: r, z, x_n, h_n). */
static void SFX(build_a)(const rnn_job *j, T *A) {
    const int64_t F = j->F, H = j->H, GH = j->GH, K = j->K;
    const T *W = (const T *)j->W, *U = (const T *)j->U, *b = (const T *)j->b, *rb = (const T *)j->rb;
    for (int64_t r = 0; r < j->ZR; r++) {
        T *row = A + r * K;
        int64_t wcol = r, ucol = r;
        T bias = b ? b[r] : 0;
        if (j->kind == RNN_GRU) {
            if (r < 2 * H) bias = b ? b[r] + rb[r] : 0;
            else if (r < 3 * H) ucol = -1;
            else { wcol = -1; ucol = r - H; bias = rb ? rb[r - H] : 0; }
        }
        for (int64_t f = 0; f < F; f++) row[f] = wcol >= 0 ? W[f * GH + wcol] : 0;
        row[F] = bias;
        for (int64_t h = 0; h < H; h++) row[F + 1 + h] = ucol >= 0 ? U[h * GH + ucol] : 0;
    }
}

static void SFX(forward_prepare)(rnn_job *j) {
    SFX(build_a)(j, (T *)j->ws);
    if (j->N > 0) ((T *)j->res)[j->N * j->steps * j->R] = (T)j->chunks;
}

static int SFX(forward_chunk)(rnn_job *j, int64_t c) {
    const int64_t n0 = chunk_begin(j, c), n1 = chunk_begin(j, c + 1), m = n1 - n0;
    const int64_t Tn = j->steps, H = j->H, F = j->F, ZR = j->ZR, K = j->K, hm = H * m;
    const int lstm = j->kind == RNN_LSTM;
    const T *A = (const T *)j->ws, *x = (const T *)j->x;
    T *hfin = (T *)j->ws + ZR * K + 2 * H * n0, *cfin = hfin + hm;
    if (m <= 0) return PF_OK;
    int64_t t0 = j->reverse ? Tn - 1 : 0, dir = j->reverse ? -1 : 1;
    /* the state before the first step */
    T *h_first = Tn > 0 ? SFX(block)(j, t0, n0) + (ZR + F + 1) * m : hfin;
    T *c_first = Tn > 0 ? h_first + hm : cfin;
    if (j->h0) SFX(gather)(h_first, (const T *)j->h0 + n0 * H, m, H, H);
    else memset(h_first, 0, (size_t)hm * sizeof(T));
    if (lstm) {
        if (j->c0) SFX(gather)(c_first, (const T *)j->c0 + n0 * H, m, H, H);
        else memset(c_first, 0, (size_t)hm * sizeof(T));
    }
    for (int64_t s = 0; s < Tn; s++) {
        const int64_t t = t0 + s * dir;
        const int last = s == Tn - 1;
        T *blk = SFX(block)(j, t, n0);
        T *xr = blk + ZR * m, *hp = xr + (F + 1) * m, *cp = hp + hm;
        SFX(gather)(xr, x + (n0 * Tn + t) * F, m, F, Tn * F);
        for (int64_t i = 0; i < m; i++) xr[F * m + i] = 1;
        PF_TRY(GEMM_SERIAL(0, 0, ZR, m, K, (T)1, A, K, xr, m, (T)0, blk, m));
        T *hn = last ? hfin : SFX(block)(j, t + dir, n0) + (ZR + F + 1) * m;
        T *cn = last ? cfin : hn + hm;
        SFX(forward_cells)(j, hm, blk, hp, cp, hn, cn);
        for (int64_t i = 0; i < m; i++) {
            T *yo = (T *)j->y + ((n0 + i) * Tn + t) * H;
            if (mask_valid(j->mask, n0 + i, t, Tn)) {
                for (int64_t k = 0; k < H; k++) yo[k] = hn[k * m + i];
                continue;
            }
            /* masked: the state passes through, the output is zero */
            for (int64_t k = 0; k < H; k++) hn[k * m + i] = hp[k * m + i];
            if (lstm) for (int64_t k = 0; k < H; k++) cn[k * m + i] = cp[k * m + i];
            memset(yo, 0, (size_t)H * sizeof(T));
        }
    }
    SFX(scatter)((T *)j->hT + n0 * H, hfin, m, H, H);
    if (lstm) SFX(scatter)((T *)j->cT + n0 * H, cfin, m, H, H);
    return PF_OK;
}

static T *SFX(partial)(const rnn_job *j, int64_t task) {
    return (T *)j->ws + fixed_workspace(j->kind, 1, j->N, j->F, j->H) + task * j->ZR * j->K;
}

/* Backward reads A transposed ([W ; b ; U] rows, K x ZR): the BLAS' small-matrix path takes
 * the plain product A^T dZ without packing. */
static void SFX(backward_prepare)(rnn_job *j) {
    T *at = (T *)j->ws, *a = SFX(partial)(j, 0);   /* the first partial is free until then */
    SFX(build_a)(j, a);
    for (int64_t r = 0; r < j->ZR; r++)
        for (int64_t k = 0; k < j->K; k++) at[k * j->ZR + r] = a[r * j->K + k];
}

static int SFX(backward_chunk)(rnn_job *j, int64_t c, T *dA) {
    const int64_t n0 = chunk_begin(j, c), n1 = chunk_begin(j, c + 1), m = n1 - n0;
    const int64_t Tn = j->steps, H = j->H, F = j->F, ZR = j->ZR, K = j->K, hm = H * m;
    const int lstm = j->kind == RNN_LSTM;
    const T *AT = (const T *)j->ws;
    if (m <= 0) return PF_OK;
    T *dZ = (T *)j->ws + ZR * K + n0 * (ZR + 2 * K + 3 * H);
    T *D[2] = {dZ + ZR * m, dZ + ZR * m + K * m};       /* [dx (F) | d1 | dh (H)] rows */
    T *dcb[2] = {D[1] + K * m, D[1] + K * m + hm};
    T *gyt = dcb[1] + hm;
    int cur = 0;
    SFX(gather)(D[0] + (F + 1) * m, (const T *)j->ghT + n0 * H, m, H, H);
    if (lstm) SFX(gather)(dcb[0], (const T *)j->gcT + n0 * H, m, H, H);
    for (int64_t s = Tn - 1; s >= 0; s--) {
        const int64_t t = j->reverse ? Tn - 1 - s : s;
        const T *blk = SFX(block)(j, t, n0);
        const T *xr = blk + ZR * m, *hp = xr + (F + 1) * m, *cp = hp + hm;
        const int nx = 1 - cur;
        T *dh_in = D[cur] + (F + 1) * m, *dh_out = D[nx] + (F + 1) * m;
        SFX(gather)(gyt, (const T *)j->gy + (n0 * Tn + t) * H, m, H, Tn * H);
        memset(D[nx], 0, (size_t)((F + 1) * m) * sizeof(T));
        SFX(backward_cells)(j, hm, blk, hp, cp, gyt, dh_in, dcb[cur], dZ, dh_out, dcb[nx]);
        if (j->mask) {   /* masked steps: no gate gradients; dh and dc flow through unchanged */
            for (int64_t i = 0; i < m; i++) {
                if (mask_valid(j->mask, n0 + i, t, Tn)) continue;
                for (int64_t r = 0; r < ZR; r++) dZ[r * m + i] = 0;
                for (int64_t k = 0; k < H; k++) dh_out[k * m + i] = dh_in[k * m + i];
                if (lstm) for (int64_t k = 0; k < H; k++) dcb[nx][k * m + i] = dcb[cur][k * m + i];
            }
        }
        /* [dx ; d1 ; dh] += A^T dZ, then [dW ; db ; dU] += [x ; 1 ; h_prev] dZ^T */
        PF_TRY(GEMM_SERIAL(0, 0, K, m, ZR, (T)1, AT, ZR, dZ, m, (T)1, D[nx], m));
        SFX(scatter)((T *)j->dx + (n0 * Tn + t) * F, D[nx], m, F, Tn * F);
        PF_TRY(GEMM_SERIAL(0, 1, K, ZR, m, (T)1, xr, m, dZ, m, (T)1, dA, ZR));
        cur = nx;
    }
    SFX(scatter)((T *)j->dh0 + n0 * H, D[cur] + (F + 1) * m, m, H, H);
    if (lstm) SFX(scatter)((T *)j->dc0 + n0 * H, dcb[cur], m, H, H);
    return PF_OK;
}

static int SFX(backward_task)(rnn_job *j, int64_t task, int64_t c0, int64_t c1) {
    T *dA = SFX(partial)(j, task);
    memset(dA, 0, (size_t)(j->ZR * j->K) * sizeof(T));
    for (int64_t c = c0; c < c1; c++) PF_TRY(SFX(backward_chunk)(j, c, dA));
    return PF_OK;
}

/* Sum the tasks' [dW ; db ; dU] partials (K x ZR) and hand the parts to the outputs. */
static void SFX(backward_weights)(rnn_job *j) {
    const int64_t F = j->F, H = j->H, GH = j->GH, K = j->K, ZR = j->ZR;
    T *dA = SFX(partial)(j, 0);
    for (int64_t task = 1; task < j->tasks; task++) {
        const T *p = SFX(partial)(j, task);
        for (int64_t e = 0; e < ZR * K; e++) dA[e] += p[e];
    }
    T *dW = (T *)j->dW, *dU = (T *)j->dU, *db = (T *)j->db, *drb = (T *)j->drb;
    const T *dwa = dA, *dba = dA + F * ZR, *dua = dA + (F + 1) * ZR;
    if (j->kind != RNN_GRU) {   /* gate-block rows are the columns of W and U */
        memcpy(dW, dwa, (size_t)(F * GH) * sizeof(T));
        memcpy(db, dba, (size_t)GH * sizeof(T));
        memcpy(dU, dua, (size_t)(H * GH) * sizeof(T));
        return;
    }
    /* GRU block rows [r z | x_n | h_n]: r, z feed W, U and both biases; x_n feeds W's n
     * columns and b_n; h_n feeds U's n columns and rb_n */
    for (int64_t f = 0; f < F; f++) memcpy(dW + f * GH, dwa + f * ZR, (size_t)(3 * H) * sizeof(T));
    for (int64_t h = 0; h < H; h++) {
        memcpy(dU + h * GH, dua + h * ZR, (size_t)(2 * H) * sizeof(T));
        memcpy(dU + h * GH + 2 * H, dua + h * ZR + 3 * H, (size_t)H * sizeof(T));
    }
    memcpy(db, dba, (size_t)(3 * H) * sizeof(T));
    memcpy(drb, dba, (size_t)(2 * H) * sizeof(T));
    memcpy(drb + 2 * H, dba + 3 * H, (size_t)H * sizeof(T));
}

#endif /* RNN_TEMPLATE */
