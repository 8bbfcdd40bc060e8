/* rnn.cu -- the CUDA twin of rnn.c: LSTM, GRU and SimpleRNN over whole sequences, forward and
 * backward (BPTT), with rnn.c's inputs, outputs, attributes, math and mask convention (see its
 * header: PyTorch's gate order and layout, GRU "reset after", a masked step carries the state
 * and outputs zero). No workspace: what the backward needs lives in the reserve.
 *
 * Forward: one cuBLAS product gives every step's input projection x W at once, written into the
 * reserve; then per step (in processing order) one product adds h_{t-1} U and one kernel applies
 * the gates, writes y and hands the state to the next step's reserve row.
 * Backward: per step (reverse order) one kernel gives the gate gradients dZ of every row (kept
 * for all steps in stream-ordered scratch memory) and the carried dh, dc; one product adds
 * dZ_t U^T to dh. Then whole-sequence products: dx = dZ W^T, dW = X^T dZ, dU = Hprev^T dZ, and
 * column sums for the biases. The running dh (dc) lives in the dh0 (dc0) output.
 *
 * The reserve (N, T*R + 1), R = rnn.c's (width*H + F + 1), is read here as N*T rows of R values,
 * row n*T + t for step t of sequence n (the values it leaves unused are zeroed):
 *   LSTM        [i f g o (activated) | h_prev | c_prev]     6H values
 *   GRU         [r z n (activated) | h U_n + rb_n | h_prev]  5H values
 *   SimpleRNN   [h (activated) | h_prev]                    2H values
 * h_prev, c_prev: the state before step t in processing order. A forward product first holds
 * the pre-activations where the activated gates end up. */
#include "internal.cuh"

enum { RNN_LSTM = 0, RNN_GRU = 1, RNN_SIMPLE = 2 };

struct rnn_geom {
    int kind, reverse, relu, mask_dtype;
    int64_t N, T, F, H, G, GH, R;
    int64_t hoff, coff, aoff;   /* h_prev, c_prev (LSTM), h U_n + rb_n (GRU) in a reserve row */
    int64_t ZR;                 /* values per row of dZ: GH, GRU 4H [r z n | n's recurrent part] */
    const void *mask;
};

static int64_t kind_gates(int kind) { return kind == RNN_LSTM ? 4 : kind == RNN_GRU ? 3 : 1; }
/* rnn.c's reserve width per unit (R = width * H + F + 1) */
static int64_t kind_width(int kind) { return kind == RNN_LSTM ? 6 : kind == RNN_GRU ? 5 : 2; }
static const char *const KIND_NAMES[] = {"lstm", "gru", "simple_rnn"};

__device__ __forceinline__ bool mask_valid(const rnn_geom &g, int64_t n, int64_t t) {
    if (g.mask == NULL) return true;
    int64_t i = n * g.T + t;
    switch (g.mask_dtype) {
    case PF_FLOAT32: return ((const float *)g.mask)[i] != 0;
    case PF_FLOAT64: return ((const double *)g.mask)[i] != 0;
    case PF_INT32: return ((const int32_t *)g.mask)[i] != 0;
    case PF_BOOL: return ((const uint8_t *)g.mask)[i] != 0;
    default: return ((const int64_t *)g.mask)[i] != 0;
    }
}

template <typename T> __device__ __forceinline__ T sigm(T x) { return (T)1 / ((T)1 + exp(-x)); }

/* ---- forward ---- */

/* The state before the first step (h0, c0 or zeros) into its reserve row; with no steps, the
 * final state is that state. */
template <typename T>
__global__ void init_state_kernel(rnn_geom g, int64_t t0, const T *h0, const T *c0, T *res,
                                  T *hT, T *cT) {
    PF_GRID_LOOP(e, g.N * g.H) {
        int64_t n = e / g.H, k = e % g.H;
        T h = h0 ? h0[e] : (T)0, c = c0 ? c0[e] : (T)0;
        if (g.T == 0) {
            hT[e] = h;
            if (cT) cT[e] = c;
            continue;
        }
        T *row = res + (n * g.T + t0) * g.R;
        row[g.hoff + k] = h;
        if (g.kind == RNN_LSTM) row[g.coff + k] = c;
    }
}

/* Step t's cells: the row's pre-activations (x W + h U, without biases) become the activated
 * gates; y, and the next step's h_prev/c_prev (or the final state) are written. */
template <typename T>
__global__ void cell_kernel(rnn_geom g, int64_t t, int64_t tn, const T *b, const T *rb,
                            T *res, T *y, T *hT, T *cT) {
    const int64_t H = g.H;
    PF_GRID_LOOP(e, g.N * H) {
        int64_t n = e / H, k = e % H;
        T *row = res + (n * g.T + t) * g.R;
        T hp = row[g.hoff + k], h, c = 0, cp = 0;
        if (g.kind == RNN_LSTM) {
            cp = row[g.coff + k];
            T i = sigm(row[k] + b[k]), f = sigm(row[H + k] + b[H + k]);
            T gg = tanh(row[2 * H + k] + b[2 * H + k]), o = sigm(row[3 * H + k] + b[3 * H + k]);
            row[k] = i;
            row[H + k] = f;
            row[2 * H + k] = gg;
            row[3 * H + k] = o;
            c = f * cp + i * gg;
            h = o * tanh(c);
        } else if (g.kind == RNN_GRU) {
            T r = sigm(row[k] + b[k] + rb[k]), z = sigm(row[H + k] + b[H + k] + rb[H + k]);
            T a = row[g.aoff + k] + rb[2 * H + k];
            T nn = tanh(row[2 * H + k] + b[2 * H + k] + r * a);
            row[k] = r;
            row[H + k] = z;
            row[2 * H + k] = nn;
            row[g.aoff + k] = a;
            h = nn + z * (hp - nn);
        } else {
            T v = row[k] + b[k];
            h = g.relu ? (v > 0 ? v : (T)0) : tanh(v);
            row[k] = h;
        }
        bool valid = mask_valid(g, n, t);
        if (!valid) {   /* the state passes through, the output is zero */
            h = hp;
            c = cp;
        }
        y[(n * g.T + t) * H + k] = valid ? h : (T)0;
        if (tn < 0) {
            hT[e] = h;
            if (g.kind == RNN_LSTM) cT[e] = c;
        } else {
            T *next = res + (n * g.T + tn) * g.R;
            next[g.hoff + k] = h;
            if (g.kind == RNN_LSTM) next[g.coff + k] = c;
        }
    }
}

/* ---- backward ---- */

/* Step t's gate gradients into dZ's row, and the carried dh (dc) updated in place: what flows
 * past the gates (LSTM: dc f; GRU: dh z) -- the product dZ U^T is added next. A masked step has
 * no gate gradients and passes dh and dc through. */
template <typename T>
__global__ void cell_grad_kernel(rnn_geom g, int64_t t, const T *res, const T *gy, T *dZ, T *dh,
                                 T *dc) {
    const int64_t H = g.H;
    PF_GRID_LOOP(e, g.N * H) {
        int64_t n = e / H, k = e % H;
        const T *row = res + (n * g.T + t) * g.R;
        T *dz = dZ + (n * g.T + t) * g.ZR;
        if (!mask_valid(g, n, t)) {
            for (int64_t q = 0; q < g.ZR / H; q++) dz[q * H + k] = 0;
            continue;
        }
        T dho = dh[e] + gy[(n * g.T + t) * H + k];
        if (g.kind == RNN_LSTM) {
            T i = row[k], f = row[H + k], gg = row[2 * H + k], o = row[3 * H + k];
            T cp = row[g.coff + k];
            T tc = tanh(f * cp + i * gg);
            T dct = dc[e] + dho * o * (1 - tc * tc);
            dz[k] = dct * gg * i * (1 - i);
            dz[H + k] = dct * cp * f * (1 - f);
            dz[2 * H + k] = dct * i * (1 - gg * gg);
            dz[3 * H + k] = dho * tc * o * (1 - o);
            dc[e] = dct * f;
            dh[e] = 0;
        } else if (g.kind == RNN_GRU) {
            T r = row[k], z = row[H + k], nn = row[2 * H + k], a = row[g.aoff + k];
            T hp = row[g.hoff + k];
            T dpn = dho * (1 - z) * (1 - nn * nn);
            dz[k] = dpn * a * r * (1 - r);
            dz[H + k] = dho * (hp - nn) * z * (1 - z);
            dz[2 * H + k] = dpn;           /* x W_n + b_n */
            dz[3 * H + k] = dpn * r;       /* h U_n + rb_n */
            dh[e] = dho * z;
        } else {
            T h = row[k];
            dz[k] = g.relu ? (h > 0 ? dho : (T)0) : dho * (1 - h * h);
            dh[e] = 0;
        }
    }
}

/* out[j] = sum over rows of dZ[row, col(j)], col(j) = j, or for GRU's recurrent bias the
 * columns [r z | n's recurrent part]; one thread per column, a fixed order. */
template <typename T>
__global__ void column_sum_kernel(const T *dZ, int64_t rows, int64_t ld, int64_t cols,
                                  int64_t skip_from, int64_t skip, T *out) {
    PF_GRID_LOOP(j, cols) {
        int64_t col = j < skip_from ? j : j + skip;
        T s = 0;
        for (int64_t r = 0; r < rows; r++) s += dZ[r * ld + col];
        out[j] = s;
    }
}

/* ---- argument checks (rnn.c's messages) ---- */

static void shape_text(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
}

/* t must be contiguous, of dtype, with exactly the given dims */
static int expect(const pf_tensor *t, const char *what, int dtype, int ndim, int64_t d0,
                  int64_t d1, int64_t d2) {
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
        else snprintf(exp, sizeof exp, "(%lld, %lld, %lld)", (long long)d0, (long long)d1,
                      (long long)d2);
        return pf_fail(PF_ERR_SHAPE, "%s has shape %s, expected %s", what, got, exp);
    }
    return PF_OK;
}

/* x, W, U (every rnn kernel's first three inputs) and the attributes */
static int setup_common(const pf_args *a, int kind, rnn_geom *g, int *has_state,
                        int *has_mask) {
    PF_TRY(pf_check_attrs(a, kind == RNN_SIMPLE ? 4 : 3, 0));
    PF_CHECK(a->n_in >= 3, PF_ERR_ARGUMENT, "expected at least 3 inputs, got %d", a->n_in);
    for (int i = 0; i < a->n_in; i++)
        PF_CHECK(a->inputs[i] != NULL, PF_ERR_ARGUMENT, "input %d is null", i);
    for (int i = 0; i < a->n_out; i++)
        PF_CHECK(a->outputs[i] != NULL, PF_ERR_ARGUMENT, "output %d is null", i);
    memset(g, 0, sizeof *g);
    g->kind = kind;
    *has_state = a->iattr[0] != 0;
    *has_mask = a->iattr[1] != 0;
    g->reverse = a->iattr[2] != 0;
    if (kind == RNN_SIMPLE) {
        PF_CHECK(a->iattr[3] == 0 || a->iattr[3] == 1, PF_ERR_ARGUMENT,
                 "activation code must be 0 (tanh) or 1 (relu), got %lld",
                 (long long)a->iattr[3]);
        g->relu = a->iattr[3] == 1;
    }
    const pf_tensor *x = a->inputs[0], *W = a->inputs[1], *U = a->inputs[2];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_float(x, "x"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be (batch, time, features), got %d dims",
             x->ndim);
    g->N = x->shape[0];
    g->T = x->shape[1];
    g->F = x->shape[2];
    g->G = kind_gates(kind);
    PF_TRY(pf_check_contiguous(U, "recurrent_kernel"));
    PF_CHECK(U->ndim == 2 && U->shape[0] >= 1 && U->shape[1] == g->G * U->shape[0],
             PF_ERR_SHAPE, "recurrent_kernel must be (units, %lld * units) with units >= 1, "
             "got %d dims (%lld, %lld)", (long long)g->G, U->ndim,
             (long long)(U->ndim > 0 ? U->shape[0] : 0),
             (long long)(U->ndim > 1 ? U->shape[1] : 0));
    g->H = U->shape[0];
    g->GH = g->G * g->H;
    g->R = kind_width(kind) * g->H + g->F + 1;
    g->hoff = kind == RNN_SIMPLE ? g->H : 4 * g->H;
    g->coff = 5 * g->H;
    g->aoff = 3 * g->H;
    g->ZR = kind == RNN_GRU ? 4 * g->H : g->GH;
    PF_TRY(expect(U, "recurrent_kernel", x->dtype, 2, g->H, g->GH, 0));
    PF_TRY(expect(W, "kernel", x->dtype, 2, g->F, g->GH, 0));
    return PF_OK;
}

static int check_mask(const pf_tensor *m, rnn_geom *g) {
    PF_TRY(pf_check_contiguous(m, "mask"));
    if (m->ndim != 2 || m->shape[0] != g->N || m->shape[1] != g->T) {
        char got[160];
        shape_text(m, got, sizeof got);
        return pf_fail(PF_ERR_SHAPE, "mask has shape %s, expected (batch, time) = (%lld, %lld)",
                       got, (long long)g->N, (long long)g->T);
    }
    g->mask = m->data;
    g->mask_dtype = m->dtype;
    return PF_OK;
}

/* C (m x n, row stride ldc) (+)= op(A) op(B), row-major; a product over nothing is zero */
static int gemm(int dtype, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *A,
                int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (m == 0 || n == 0) return PF_OK;
    if (k == 0) {
        if (beta != 0) return PF_OK;
        size_t es = pf_dtype_size(dtype);
        cudaError_t e = cudaMemset2DAsync(C, (size_t)ldc * es, 0, (size_t)n * es, (size_t)m,
                                          pf_stream());
        PF_CHECK(e == cudaSuccess, PF_ERR_INTERNAL, "clearing a product over nothing: %s",
                 cudaGetErrorString(e));
        return PF_OK;
    }
    return pf_cublas_gemm(dtype, ta, tb, m, n, k, 1.0, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

/* ---- forward: "lstm", "gru", "simple_rnn" (inputs and outputs as rnn.c's) ---- */

template <typename T>
static int forward_typed(const rnn_geom &g, int dtype, const T *x, const T *W, const T *U,
                         const T *b, const T *rb, const T *h0, const T *c0, T *y, T *hT, T *cT,
                         T *res) {
    const int64_t N = g.N, Tn = g.T, H = g.H, GH = g.GH;
    int64_t t0 = g.reverse ? Tn - 1 : 0, dir = g.reverse ? -1 : 1;
    if (N == 0) return PF_OK;
    /* the reserve values this layout leaves unused are zeroed, so that every output value is
     * defined (PYFRONT_DEBUG checks whole outputs for NaN) */
    const int64_t used = kind_width(g.kind) * H;
    cudaError_t e = cudaSuccess;
    if (Tn > 0)
        e = cudaMemset2DAsync(res + used, (size_t)g.R * sizeof(T), 0,
                              (size_t)(g.R - used) * sizeof(T), (size_t)(N * Tn), pf_stream());
    if (e == cudaSuccess)
        e = cudaMemsetAsync(res + N * Tn * g.R, 0, (size_t)N * sizeof(T), pf_stream());
    PF_CHECK(e == cudaSuccess, PF_ERR_INTERNAL, "clearing the reserve: %s",
             cudaGetErrorString(e));
    init_state_kernel<T><<<pf_blocks(N * H), PF_THREADS, 0, pf_stream()>>>(g, t0, h0, c0, res,
                                                                           hT, cT);
    PF_TRY(PF_LAUNCHED());
    if (Tn == 0) return PF_OK;
    /* every step's x W at once: rows n*T + t of x and of the reserve */
    PF_TRY(gemm(dtype, 0, 0, N * Tn, GH, g.F, x, g.F, W, GH, 0.0, res, g.R));
    for (int64_t s = 0; s < Tn; s++) {
        const int64_t t = t0 + s * dir, tn = s == Tn - 1 ? -1 : t + dir;
        T *row = res + t * g.R;      /* step t of sequence 0; sequences T*R apart */
        const T *hp = row + g.hoff;
        if (g.kind == RNN_GRU) {     /* r, z take h U in place; n's h U_n apart */
            PF_TRY(gemm(dtype, 0, 0, N, 2 * H, H, hp, Tn * g.R, U, GH, 1.0, row, Tn * g.R));
            PF_TRY(gemm(dtype, 0, 0, N, H, H, hp, Tn * g.R, U + 2 * H, GH, 0.0, row + g.aoff,
                        Tn * g.R));
        } else {
            PF_TRY(gemm(dtype, 0, 0, N, GH, H, hp, Tn * g.R, U, GH, 1.0, row, Tn * g.R));
        }
        cell_kernel<T><<<pf_blocks(N * H), PF_THREADS, 0, pf_stream()>>>(g, t, tn, b, rb, res,
                                                                         y, hT, cT);
        PF_TRY(PF_LAUNCHED());
    }
    return PF_OK;
}

static int rnn_forward(const pf_args *a, int kind) {
    rnn_geom g;
    int has_state = 0, has_mask = 0;
    PF_TRY(setup_common(a, kind, &g, &has_state, &has_mask));
    int dtype = a->inputs[0]->dtype;
    int n_bias = kind == RNN_GRU ? 2 : 1, n_state = kind == RNN_LSTM ? 2 : 1;
    int n_in = 3 + n_bias + (has_state ? n_state : 0) + (has_mask ? 1 : 0);
    int n_out = kind == RNN_LSTM ? 4 : 3;
    PF_CHECK(a->n_in == n_in && a->n_out == n_out, PF_ERR_ARGUMENT,
             "expected %d inputs and %d outputs for these attributes, got %d and %d", n_in,
             n_out, a->n_in, a->n_out);
    int i = 3;
    const void *b, *rb = NULL, *h0 = NULL, *c0 = NULL;
    PF_TRY(expect(a->inputs[i], "bias", dtype, 1, g.GH, 0, 0));
    b = a->inputs[i++]->data;
    if (kind == RNN_GRU) {
        PF_TRY(expect(a->inputs[i], "recurrent_bias", dtype, 1, g.GH, 0, 0));
        rb = a->inputs[i++]->data;
    }
    if (has_state) {
        PF_TRY(expect(a->inputs[i], "initial h", dtype, 2, g.N, g.H, 0));
        h0 = a->inputs[i++]->data;
        if (kind == RNN_LSTM) {
            PF_TRY(expect(a->inputs[i], "initial c", dtype, 2, g.N, g.H, 0));
            c0 = a->inputs[i++]->data;
        }
    }
    if (has_mask) PF_TRY(check_mask(a->inputs[i++], &g));
    int o = 0;
    void *y, *hT, *cT = NULL, *res;
    PF_TRY(expect(a->outputs[o], "y", dtype, 3, g.N, g.T, g.H));
    y = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "final h", dtype, 2, g.N, g.H, 0));
    hT = a->outputs[o++]->data;
    if (kind == RNN_LSTM) {
        PF_TRY(expect(a->outputs[o], "final c", dtype, 2, g.N, g.H, 0));
        cT = a->outputs[o++]->data;
    }
    PF_TRY(expect(a->outputs[o], "reserve", dtype, 2, g.N, g.T * g.R + 1, 0));
    res = a->outputs[o]->data;
    int status;
    PF_FLOAT_DISPATCH(dtype, T, status = forward_typed<T>(
        g, dtype, (const T *)a->inputs[0]->data, (const T *)a->inputs[1]->data,
        (const T *)a->inputs[2]->data, (const T *)b, (const T *)rb, (const T *)h0,
        (const T *)c0, (T *)y, (T *)hT, (T *)cT, (T *)res));
    return status;
}

/* ---- backward: "lstm_grad", "gru_grad", "simple_rnn_grad" (as rnn.c's) ---- */

struct rnn_grads {
    const void *res, *gy, *ghT, *gcT;
    void *dx, *dW, *dU, *db, *drb, *dh0, *dc0;
};

template <typename T>
static int backward_typed(const rnn_geom &g, int dtype, const T *x, const T *W, const T *U,
                          const rnn_grads &q, T *dZ) {
    const int64_t N = g.N, Tn = g.T, H = g.H, GH = g.GH, F = g.F, ZR = g.ZR, rows = N * Tn;
    const size_t es = sizeof(T);
    const T *res = (const T *)q.res;
    T *dh = (T *)q.dh0, *dc = (T *)q.dc0;
    cudaStream_t st = pf_stream();
    cudaError_t e = cudaMemcpyAsync(dh, q.ghT, (size_t)(N * H) * es, cudaMemcpyDeviceToDevice,
                                    st);
    if (e == cudaSuccess && g.kind == RNN_LSTM)
        e = cudaMemcpyAsync(dc, q.gcT, (size_t)(N * H) * es, cudaMemcpyDeviceToDevice, st);
    PF_CHECK(e == cudaSuccess, PF_ERR_INTERNAL, "copying the final state's gradient: %s",
             cudaGetErrorString(e));
    for (int64_t s = Tn - 1; s >= 0 && N > 0; s--) {
        const int64_t t = g.reverse ? Tn - 1 - s : s;
        cell_grad_kernel<T><<<pf_blocks(N * H), PF_THREADS, 0, st>>>(g, t, res, (const T *)q.gy,
                                                                     dZ, dh, dc);
        PF_TRY(PF_LAUNCHED());
        const T *dz = dZ + t * ZR;   /* step t of sequence 0; sequences T*ZR apart */
        if (g.kind == RNN_GRU) {
            PF_TRY(gemm(dtype, 0, 1, N, H, 2 * H, dz, Tn * ZR, U, GH, 1.0, dh, H));
            PF_TRY(gemm(dtype, 0, 1, N, H, H, dz + 3 * H, Tn * ZR, U + 2 * H, GH, 1.0, dh, H));
        } else {
            PF_TRY(gemm(dtype, 0, 1, N, H, GH, dz, Tn * ZR, U, GH, 1.0, dh, H));
        }
    }
    /* the whole sequence at once: dx = dZx W^T, dW = X^T dZx, dU = Hprev^T dZh */
    PF_TRY(gemm(dtype, 0, 1, rows, F, GH, dZ, ZR, W, GH, 0.0, q.dx, F));
    PF_TRY(gemm(dtype, 1, 0, F, GH, rows, x, F, dZ, ZR, 0.0, q.dW, GH));
    const T *hp = res + g.hoff;
    if (g.kind == RNN_GRU) {
        PF_TRY(gemm(dtype, 1, 0, H, 2 * H, rows, hp, g.R, dZ, ZR, 0.0, q.dU, GH));
        PF_TRY(gemm(dtype, 1, 0, H, H, rows, hp, g.R, dZ + 3 * H, ZR, 0.0, (T *)q.dU + 2 * H,
                    GH));
    } else {
        PF_TRY(gemm(dtype, 1, 0, H, GH, rows, hp, g.R, dZ, ZR, 0.0, q.dU, GH));
    }
    column_sum_kernel<T><<<pf_blocks(GH), PF_THREADS, 0, st>>>(dZ, rows, ZR, GH, GH, 0,
                                                               (T *)q.db);
    PF_TRY(PF_LAUNCHED());
    if (g.kind == RNN_GRU) {   /* rb: the r, z columns and n's recurrent part */
        column_sum_kernel<T><<<pf_blocks(GH), PF_THREADS, 0, st>>>(dZ, rows, ZR, GH, 2 * H, H,
                                                                   (T *)q.drb);
        PF_TRY(PF_LAUNCHED());
    }
    return PF_OK;
}

static int rnn_backward(const pf_args *a, int kind) {
    rnn_geom g;
    int has_state = 0, has_mask = 0;
    PF_TRY(setup_common(a, kind, &g, &has_state, &has_mask));
    int dtype = a->inputs[0]->dtype;
    int n_in = (kind == RNN_LSTM ? 7 : 6) + (has_mask ? 1 : 0);
    int n_out = kind == RNN_SIMPLE ? 5 : 6;
    PF_CHECK(a->n_in == n_in && a->n_out == n_out, PF_ERR_ARGUMENT,
             "expected %d inputs and %d outputs for these attributes, got %d and %d", n_in,
             n_out, a->n_in, a->n_out);
    rnn_grads q;
    memset(&q, 0, sizeof q);
    PF_TRY(expect(a->inputs[3], "reserve", dtype, 2, g.N, g.T * g.R + 1, 0));
    q.res = a->inputs[3]->data;
    PF_TRY(expect(a->inputs[4], "gradient of y", dtype, 3, g.N, g.T, g.H));
    q.gy = a->inputs[4]->data;
    PF_TRY(expect(a->inputs[5], "gradient of final h", dtype, 2, g.N, g.H, 0));
    q.ghT = a->inputs[5]->data;
    int i = 6;
    if (kind == RNN_LSTM) {
        PF_TRY(expect(a->inputs[i], "gradient of final c", dtype, 2, g.N, g.H, 0));
        q.gcT = a->inputs[i++]->data;
    }
    if (has_mask) PF_TRY(check_mask(a->inputs[i], &g));
    int o = 0;
    PF_TRY(expect(a->outputs[o], "dx", dtype, 3, g.N, g.T, g.F));
    q.dx = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "dkernel", dtype, 2, g.F, g.GH, 0));
    q.dW = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "drecurrent_kernel", dtype, 2, g.H, g.GH, 0));
    q.dU = a->outputs[o++]->data;
    PF_TRY(expect(a->outputs[o], "dbias", dtype, 1, g.GH, 0, 0));
    q.db = a->outputs[o++]->data;
    if (kind == RNN_GRU) {
        PF_TRY(expect(a->outputs[o], "drecurrent_bias", dtype, 1, g.GH, 0, 0));
        q.drb = a->outputs[o++]->data;
    }
    PF_TRY(expect(a->outputs[o], "dh0", dtype, 2, g.N, g.H, 0));
    q.dh0 = a->outputs[o++]->data;
    if (kind == RNN_LSTM) {
        PF_TRY(expect(a->outputs[o], "dc0", dtype, 2, g.N, g.H, 0));
        q.dc0 = a->outputs[o++]->data;
    }
    /* every step's gate gradients, stream-ordered (a CUDA graph records the allocation) */
    size_t bytes = (size_t)(g.N * g.T * g.ZR) * pf_dtype_size(dtype);
    void *dZ = NULL;
    if (bytes) {
        cudaError_t e = cudaMallocAsync(&dZ, bytes, pf_stream());
        if (e != cudaSuccess) {
            cudaGetLastError();
            return pf_fail(PF_ERR_MEMORY, "cannot allocate %lld bytes for the %s gate "
                           "gradients: %s", (long long)bytes, KIND_NAMES[kind],
                           cudaGetErrorString(e));
        }
    }
    int status;
    PF_FLOAT_DISPATCH(dtype, T, status = backward_typed<T>(
        g, dtype, (const T *)a->inputs[0]->data, (const T *)a->inputs[1]->data,
        (const T *)a->inputs[2]->data, q, (T *)dZ));
    if (dZ) cudaFreeAsync(dZ, pf_stream());
    return status;
}

static int k_lstm(const pf_args *a) { return rnn_forward(a, RNN_LSTM); }
static int k_gru(const pf_args *a) { return rnn_forward(a, RNN_GRU); }
static int k_simple_rnn(const pf_args *a) { return rnn_forward(a, RNN_SIMPLE); }
static int k_lstm_grad(const pf_args *a) { return rnn_backward(a, RNN_LSTM); }
static int k_gru_grad(const pf_args *a) { return rnn_backward(a, RNN_GRU); }
static int k_simple_rnn_grad(const pf_args *a) { return rnn_backward(a, RNN_SIMPLE); }

const pf_kernel_entry pf_cuda_kernels_rnn[] = {
    {"lstm", k_lstm, NULL},
    {"lstm_grad", k_lstm_grad, NULL},
    {"gru", k_gru, NULL},
    {"gru_grad", k_gru_grad, NULL},
    {"simple_rnn", k_simple_rnn, NULL},
    {"simple_rnn_grad", k_simple_rnn_grad, NULL},
    {NULL, NULL, NULL},
};
