/* linalg.cu -- the CUDA twin of linalg.c: "gemm" (batched, broadcast batch, transposes,
 * accumulation) on cuBLAS, and "linear" (x @ W + b with a fused activation): cuBLAS multiplies
 * into y, then one epilogue kernel adds the bias and applies the activation. */
#include "internal.cuh"

static int matrix_view(const pf_tensor *t, const char *what, int64_t *batch, int64_t *rows,
                       int64_t *cols, int64_t *ld, int64_t *bstride) {
    PF_TRY(pf_check_tensor(t, what));
    PF_CHECK(t->ndim == 2 || t->ndim == 3, PF_ERR_SHAPE, "%s must have 2 or 3 dims, got %d", what,
             t->ndim);
    int r = t->ndim - 2;
    *batch = t->ndim == 3 ? t->shape[0] : 1;
    *bstride = t->ndim == 3 ? t->strides[0] : 0;
    *rows = t->shape[r];
    *cols = t->shape[r + 1];
    *ld = t->strides[r];
    PF_CHECK(t->strides[r + 1] == 1 || *cols <= 1, PF_ERR_ARGUMENT,
             "%s must have unit stride in its last dim", what);
    if (*cols <= 1 && *ld < 1) *ld = 1;
    PF_CHECK(*ld >= *cols || *rows <= 1, PF_ERR_ARGUMENT,
             "%s has row stride %lld below its %lld columns", what, (long long)*ld, (long long)*cols);
    if (*ld < (*cols > 1 ? *cols : 1)) *ld = *cols > 1 ? *cols : 1;
    return PF_OK;
}

template <typename T> __global__ void scale_kernel(int64_t rows, int64_t cols, int64_t ld,
                                                   int64_t sc, int64_t batch, T *c) {
    PF_GRID_LOOP(e, rows * cols * batch) {
        int64_t j = e % cols, r = (e / cols) % rows, b = e / (cols * rows);
        c[b * sc + r * ld + j] = 0;
    }
}

static int k_gemm(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 2, 0));
    const pf_tensor *A = a->inputs[0], *B = a->inputs[1], *C = a->outputs[0];
    PF_TRY(pf_check_float(A, "A"));
    PF_TRY(pf_check_dtype(B, A->dtype, "B"));
    PF_TRY(pf_check_dtype(C, A->dtype, "C"));
    int ta = a->iattr[0] != 0, tb = a->iattr[1] != 0;
    int accumulate = a->n_iattr > 2 && a->iattr[2] != 0;
    double alpha = pf_fattr_or(a, 0, 1.0);
    int64_t ba, ra, ca, lda, sa, bb, rb, cb, ldb, sb, bc, rc, cc, ldc, sc;
    PF_TRY(matrix_view(A, "A", &ba, &ra, &ca, &lda, &sa));
    PF_TRY(matrix_view(B, "B", &bb, &rb, &cb, &ldb, &sb));
    PF_TRY(matrix_view(C, "C", &bc, &rc, &cc, &ldc, &sc));
    PF_CHECK(bc <= 1 || rc * cc == 0 || sc >= (rc - 1) * ldc + cc || -sc >= (rc - 1) * ldc + cc,
             PF_ERR_ARGUMENT, "C's batch stride %lld makes its %lld matrices overlap",
             (long long)sc, (long long)bc);
    int64_t m = ta ? ca : ra, ka = ta ? ra : ca;
    int64_t kb = tb ? cb : rb, n = tb ? rb : cb;
    PF_CHECK(ka == kb, PF_ERR_SHAPE, "inner sizes differ: A gives %lld, B gives %lld",
             (long long)ka, (long long)kb);
    PF_CHECK(rc == m && cc == n, PF_ERR_SHAPE, "C is (%lld, %lld), expected (%lld, %lld)",
             (long long)rc, (long long)cc, (long long)m, (long long)n);
    PF_CHECK((ba == bc || (ba == 1 && sa == 0) || A->ndim == 2) &&
             (bb == bc || (bb == 1 && sb == 0) || B->ndim == 2), PF_ERR_SHAPE,
             "batch sizes differ: A %lld, B %lld, C %lld", (long long)ba, (long long)bb,
             (long long)bc);
    if (A->ndim == 2 || ba == 1) sa = A->ndim == 3 && ba == bc ? sa : 0;
    if (B->ndim == 2 || bb == 1) sb = B->ndim == 3 && bb == bc ? sb : 0;
    if (ka == 0) {   /* cuBLAS may leave C untouched when k == 0: a product of nothing is 0 */
        if (accumulate || m * n * bc == 0) return PF_OK;
        PF_FLOAT_DISPATCH(C->dtype, T, scale_kernel<T><<<pf_blocks(m * n * bc), PF_THREADS, 0,
                          pf_stream()>>>(m, n, ldc, sc, bc, (T *)C->data));
        return PF_LAUNCHED();
    }
    return pf_cublas_gemm(A->dtype, ta, tb, m, n, ka, alpha, A->data, lda, sa, B->data, ldb, sb,
                          accumulate ? 1.0 : 0.0, C->data, ldc, sc, bc);
}

template <typename T>
__global__ void epilogue_kernel(int64_t m, int64_t n, int64_t ldy, const T *b, T *y, int act,
                                T alpha) {
    PF_GRID_LOOP(e, m * n) {
        int64_t c = e % n, r = e / n;
        T v = y[r * ldy + c];
        if (b) v += b[c];
        switch (act) {
        case PF_ACT_RELU: v = v > 0 || v != v ? v : (T)0; break;
        case PF_ACT_LEAKY_RELU: v = v > 0 ? v : alpha * v; break;
        case PF_ACT_SIGMOID: v = pf_sigmoid(v); break;
        case PF_ACT_TANH: v = tanh(v); break;
        case PF_ACT_GELU: v = pf_gelu(v); break;
        default: break;
        }
        y[r * ldy + c] = v;
    }
}

static int k_linear(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 3, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *W = a->inputs[1], *y = a->outputs[0];
    const pf_tensor *b = a->n_in > 2 ? a->inputs[2] : NULL;
    PF_TRY(pf_check_float(x, "x"));
    PF_TRY(pf_check_dtype(W, x->dtype, "W"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_CHECK(x->ndim == 2 && W->ndim == 2 && y->ndim == 2, PF_ERR_SHAPE,
             "x, W and y must be matrices (got %d, %d, %d dims)", x->ndim, W->ndim, y->ndim);
    int64_t bx, m, k, ldx, sx, bw, kw, n, ldw, sw, by, my, ny, ldy, sy;
    PF_TRY(matrix_view(x, "x", &bx, &m, &k, &ldx, &sx));
    PF_TRY(matrix_view(W, "W", &bw, &kw, &n, &ldw, &sw));
    PF_TRY(matrix_view(y, "y", &by, &my, &ny, &ldy, &sy));
    PF_CHECK(k == kw, PF_ERR_SHAPE, "x has %lld features but W has %lld rows", (long long)k,
             (long long)kw);
    PF_CHECK(my == m && ny == n, PF_ERR_SHAPE, "y is (%lld, %lld), expected (%lld, %lld)",
             (long long)my, (long long)ny, (long long)m, (long long)n);
    if (b) {
        PF_TRY(pf_check_contiguous(b, "b"));
        PF_TRY(pf_check_dtype(b, x->dtype, "b"));
        PF_CHECK(pf_numel(b) == n, PF_ERR_SHAPE, "b has %lld elements, expected %lld",
                 (long long)pf_numel(b), (long long)n);
    }
    int act = pf_code(a->iattr[0]);
    PF_CHECK(act >= PF_ACT_NONE && act <= PF_ACT_LEAKY_RELU, PF_ERR_ARGUMENT,
             "unknown activation %d", act);
    if (m == 0 || n == 0) return PF_OK;
    if (k == 0) {
        PF_FLOAT_DISPATCH(y->dtype, T, scale_kernel<T><<<pf_blocks(m * n), PF_THREADS, 0,
                          pf_stream()>>>(m, n, ldy, 0, 1, (T *)y->data));
        PF_TRY(PF_LAUNCHED());
    } else {
        PF_TRY(pf_cublas_gemm(x->dtype, 0, 0, m, n, k, 1.0, x->data, ldx, 0, W->data, ldw, 0, 0.0,
                              y->data, ldy, 0, 1));
    }
    if (b == NULL && act == PF_ACT_NONE) return PF_OK;
    PF_FLOAT_DISPATCH(y->dtype, T, epilogue_kernel<T><<<pf_blocks(m * n), PF_THREADS, 0,
                      pf_stream()>>>(m, n, ldy, b ? (const T *)b->data : NULL, (T *)y->data, act,
                                     (T)pf_fattr_or(a, 0, 0.01)));
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_linalg[] = {
    {"gemm", k_gemm, NULL},
    {"linear", k_linear, NULL},
    {NULL, NULL, NULL},
};
