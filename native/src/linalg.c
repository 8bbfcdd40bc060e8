/* linalg.c -- matrix products on the bound BLAS: "gemm" (batched, broadcast batch, transposes,
 * accumulation) and "linear" (x @ W + b with a fused activation, the dense layer's forward). */
#include "internal.h"

/* Matrices are described as stored: (rows, cols) or (batch, rows, cols), inner stride 1, row
 * stride >= cols; a batch stride of 0 broadcasts one matrix over the batch. */
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

/* "gemm": inputs A, B; outputs C. iattr: trans_a, trans_b[, accumulate]; fattr: [alpha].
 * C = alpha * op(A) @ op(B) (+ C when accumulate), batched when any operand has 3 dims. */
typedef struct {
    int dtype, ta, tb;
    int64_t m, n, k;
    const char *a, *b;
    char *c;
    int64_t lda, ldb, ldc, sa, sb, sc;
    double alpha, beta;
} batch_job;

static void batch_task(void *p, int64_t b0, int64_t b1) {
    const batch_job *j = (const batch_job *)p;
    for (int64_t i = b0; i < b1; i++) {
        if (j->dtype == PF_FLOAT32)
            pf_sgemm_serial(j->ta, j->tb, j->m, j->n, j->k, (float)j->alpha,
                            (const float *)j->a + i * j->sa, j->lda, (const float *)j->b + i * j->sb,
                            j->ldb, (float)j->beta, (float *)j->c + i * j->sc, j->ldc);
        else
            pf_dgemm_serial(j->ta, j->tb, j->m, j->n, j->k, j->alpha,
                            (const double *)j->a + i * j->sa, j->lda,
                            (const double *)j->b + i * j->sb, j->ldb, j->beta,
                            (double *)j->c + i * j->sc, j->ldc);
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
    double alpha = a->n_fattr > 0 && a->fattr ? a->fattr[0] : 1.0;
    int64_t ba, ra, ca, lda, sa, bb, rb, cb, ldb, sb, bc, rc, cc, ldc, sc;
    PF_TRY(matrix_view(A, "A", &ba, &ra, &ca, &lda, &sa));
    PF_TRY(matrix_view(B, "B", &bb, &rb, &cb, &ldb, &sb));
    PF_TRY(matrix_view(C, "C", &bc, &rc, &cc, &ldc, &sc));
    PF_CHECK(bc <= 1 || rc * cc == 0 || sc >= (rc - 1) * ldc + cc || -sc >= (rc - 1) * ldc + cc,
             PF_ERR_ARGUMENT, "C's batch stride %lld makes its %lld matrices overlap",
             (long long)sc, (long long)bc);
    int64_t m = ta ? ca : ra, ka = ta ? ra : ca;
    int64_t kb = tb ? cb : rb, n = tb ? rb : cb;
    PF_CHECK(ka == kb, PF_ERR_SHAPE, "inner sizes differ: A gives %lld, B gives %lld", (long long)ka,
             (long long)kb);
    PF_CHECK(rc == m && cc == n, PF_ERR_SHAPE, "C is (%lld, %lld), expected (%lld, %lld)",
             (long long)rc, (long long)cc, (long long)m, (long long)n);
    PF_CHECK((ba == bc || (ba == 1 && sa == 0) || A->ndim == 2) &&
             (bb == bc || (bb == 1 && sb == 0) || B->ndim == 2), PF_ERR_SHAPE,
             "batch sizes differ: A %lld, B %lld, C %lld", (long long)ba, (long long)bb,
             (long long)bc);
    if (A->ndim == 2 || ba == 1) sa = A->ndim == 3 && ba == bc ? sa : 0;
    if (B->ndim == 2 || bb == 1) sb = B->ndim == 3 && bb == bc ? sb : 0;
    double beta = accumulate ? 1.0 : 0.0;
    if (bc == 1) {
        if (A->dtype == PF_FLOAT32)
            return pf_sgemm(ta, tb, m, n, ka, (float)alpha, (const float *)A->data, lda,
                            (const float *)B->data, ldb, (float)beta, (float *)C->data, ldc);
        return pf_dgemm(ta, tb, m, n, ka, alpha, (const double *)A->data, lda,
                        (const double *)B->data, ldb, beta, (double *)C->data, ldc);
    }
    PF_CHECK(pf_blas_bound(), PF_ERR_BLAS, "no BLAS is loaded (pf_load_blas was not called)");
    batch_job j = {A->dtype, ta, tb, m, n, ka, (const char *)A->data, (const char *)B->data,
                   (char *)C->data, lda, ldb, ldc, sa, sb, sc, alpha, beta};
    double flops = (double)m * n * ka;
    if (flops >= (1 << 20) * (double)bc / pf_threads() || bc < pf_threads()) {
        /* few large products: one after another, each split over the pool */
        for (int64_t i = 0; i < bc; i++) {
            int status = A->dtype == PF_FLOAT32
                ? pf_sgemm(ta, tb, m, n, ka, (float)alpha, (const float *)A->data + i * sa, lda,
                           (const float *)B->data + i * sb, ldb, (float)beta,
                           (float *)C->data + i * sc, ldc)
                : pf_dgemm(ta, tb, m, n, ka, alpha, (const double *)A->data + i * sa, lda,
                           (const double *)B->data + i * sb, ldb, beta,
                           (double *)C->data + i * sc, ldc);
            if (status != PF_OK) return status;
        }
        return PF_OK;
    }
    pf_parallel_for(bc, 1, batch_task, &j);
    return PF_OK;
}

/* "linear": inputs x (M, K), W (K, N)[, b (N)]; outputs y (M, N). iattr[0]: pf_activation
 * (PF_ACT_UNARY: iattr[1] names any pf_unary_op); fattr[0]: leaky-relu slope (or fattr[0..1]:
 * the unary op's parameters). Each pool part fills its block with the bias, multiplies into it
 * and applies the activation while the block is still in cache. */
typedef struct {
    int dtype, act, split_rows;
    int64_t m, n, k, ldx, ldw, ldy;
    const char *x, *w, *b;
    char *y;
    double alpha;
    int unary_op;
    double p1;
} linear_job;

#define DEFINE_LINEAR_BLOCK(T, SUF, GEMM, TILES, EXPF, TANHF, SIGF, GELUF, UNARY)              \
    static PF_HOT void linear_block_##SUF(const linear_job *j, int64_t r0, int64_t r1,         \
                                          int64_t c0, int64_t c1) {                            \
        const T *x = (const T *)j->x, *w = (const T *)j->w, *b = (const T *)j->b;              \
        T *y = (T *)j->y;                                                                      \
        /* the register tiles add the bias and apply ReLU as they store the block */           \
        if (TILES(r1 - r0, c1 - c0, j->k, x + r0 * j->ldx, j->ldx, w + c0, j->ldw,             \
                  b ? b + c0 : NULL, j->act == PF_ACT_RELU, y + r0 * j->ldy + c0, j->ldy)) {   \
            if (j->act == PF_ACT_NONE || j->act == PF_ACT_RELU) return;                        \
        } else {                                                                               \
            T beta = 0;                                                                        \
            if (b) {                                                                           \
                for (int64_t r = r0; r < r1; r++)                                              \
                    memcpy(y + r * j->ldy + c0, b + c0, (size_t)(c1 - c0) * sizeof(T));        \
                beta = 1;                                                                      \
            }                                                                                  \
            GEMM(0, 0, r1 - r0, c1 - c0, j->k, (T)1, x + r0 * j->ldx, j->ldx, w + c0, j->ldw,  \
                 beta, y + r0 * j->ldy + c0, j->ldy);                                          \
        }                                                                                      \
        if (j->act == PF_ACT_NONE) return;                                                     \
        T al = (T)j->alpha;                                                                    \
        for (int64_t r = r0; r < r1; r++) {                                                    \
            T *row = y + r * j->ldy;                                                           \
            switch (j->act) {                                                                  \
            case PF_ACT_RELU:                                                                  \
                for (int64_t c = c0; c < c1; c++)                                              \
                    row[c] = row[c] > 0 || row[c] != row[c] ? row[c] : 0;                      \
                break;                                                                         \
            case PF_ACT_LEAKY_RELU:                                                            \
                for (int64_t c = c0; c < c1; c++) row[c] = row[c] > 0 ? row[c] : al * row[c];  \
                break;                                                                         \
            case PF_ACT_SIGMOID: for (int64_t c = c0; c < c1; c++) row[c] = SIGF(row[c]); break; \
            case PF_ACT_TANH: for (int64_t c = c0; c < c1; c++) row[c] = TANHF(row[c]); break; \
            case PF_ACT_GELU: for (int64_t c = c0; c < c1; c++) row[c] = GELUF(row[c]); break; \
            case PF_ACT_UNARY: UNARY(j->unary_op, c1 - c0, row + c0, row + c0, al, (T)j->p1); break; \
            default: break;                                                                    \
            }                                                                                  \
        }                                                                                      \
    }

/* float64 has no register tiles: its products stay with the BLAS */
#define NO_DOUBLE_TILES(m, n, k, a, lda, b, ldb, bias, relu, c, ldc) 0
DEFINE_LINEAR_BLOCK(float, f32, pf_sgemm_serial, pf_sgemm_tiles, pf_expf, pf_tanhf, pf_sigmoidf,
                    pf_geluf, pf_unary_apply_f32)
DEFINE_LINEAR_BLOCK(double, f64, pf_dgemm_serial, NO_DOUBLE_TILES, exp, tanh, pf_sigmoid,
                    pf_gelu, pf_unary_apply_f64)

/* Parts split rows or columns in blocks of 16, the last block taking the remainder: no part
 * is narrower than 16 (a narrow remainder would leave the register tiles for the BLAS and its
 * outputs' bits would depend on the thread count). */
#define LINEAR_BLOCK 16
static void linear_task(void *p, int64_t b0, int64_t b1) {
    const linear_job *j = (const linear_job *)p;
    int64_t extent = j->split_rows ? j->m : j->n;
    int64_t lo = b0 * LINEAR_BLOCK, hi = b1 >= extent / LINEAR_BLOCK ? extent : b1 * LINEAR_BLOCK;
    int64_t r0 = 0, r1 = j->m, c0 = 0, c1 = j->n;
    if (j->split_rows) { r0 = lo; r1 = hi; } else { c0 = lo; c1 = hi; }
    if (j->dtype == PF_FLOAT32) linear_block_f32(j, r0, r1, c0, c1);
    else linear_block_f64(j, r0, r1, c0, c1);
}

/* Products smaller than this run on one thread. Single-row products (inference on one sample)
 * are memory-bound, and splitting them keeps each half of the weights in one core's cache. */
#define LINEAR_SPLIT_MIN_FLOPS (1 << 17)

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
    PF_CHECK(act >= PF_ACT_NONE && act <= PF_ACT_UNARY, PF_ERR_ARGUMENT,
             "unknown activation %d", act);
    int unary_op = act == PF_ACT_UNARY && a->n_iattr > 1 ? pf_code(a->iattr[1]) : -1;
    PF_CHECK(act != PF_ACT_UNARY || (unary_op >= 0 && unary_op < PF_U_COUNT), PF_ERR_ARGUMENT,
             "activation PF_ACT_UNARY needs a unary op in iattr[1], got %d", unary_op);
    PF_CHECK(pf_blas_bound(), PF_ERR_BLAS, "no BLAS is loaded (pf_load_blas was not called)");
    /* threads split the rows where there are enough of them: split by columns, each thread
     * packs all of x again, and a batch of 128 by 64 -> 256 ran 1.07x faster on 2 threads
     * (1.54x by rows); few rows split by columns (32 by 512 -> 512: 1.77x, by rows 1.47x) */
    int split_rows = m >= n || m >= 128;
    linear_job j = {x->dtype, act, split_rows, m, n, k, ldx, ldw, ldy,
                    (const char *)x->data, (const char *)W->data, b ? (const char *)b->data : NULL,
                    (char *)y->data, a->n_fattr > 0 && a->fattr ? a->fattr[0] : 0.01,
                    unary_op, a->n_fattr > 1 && a->fattr ? a->fattr[1] : 0.0};
    if (m == 0 || n == 0) return PF_OK;
    double flops = (double)m * n * k;
    int64_t extent = j.split_rows ? m : n;
    int64_t blocks = extent / LINEAR_BLOCK;
    if (pf_threads() > 1 && flops >= LINEAR_SPLIT_MIN_FLOPS && blocks >= 2)
        pf_parallel_for(blocks, 1, linear_task, &j);
    else
        linear_task(&j, 0, blocks);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_linalg[] = {
    {"gemm", k_gemm, NULL},
    {"linear", k_linear, NULL},
    {NULL, NULL, NULL},
};
