/* layout.c -- moving elements: strided copies (transpose, slicing, concatenation and their
 * gradients) and gathers along an axis (integer indexing, embeddings) with their scatter-add. */
#include "internal.h"

#define COPY_PARALLEL_MIN 65536

/* "copy": inputs x (any strides); outputs y (any strides, no zero stride on a dim of size > 1;
 * same shape and dtype). iattr[0] (optional): accumulate, y += x. */
typedef struct {
    int dtype, accumulate;
    const char *x;
    char *y;
} copy_job;

#define COPY_ROW(T)                                                                            \
    do {                                                                                       \
        const T *s = (const T *)j->x + off[0];                                                 \
        T *d = (T *)j->y + off[1];                                                             \
        int64_t ss = st[0], ds = st[1];                                                        \
        if (j->accumulate) {                                                                   \
            if (ss == 1 && ds == 1) for (int64_t i = 0; i < n; i++) d[i] += s[i];              \
            else for (int64_t i = 0; i < n; i++) d[i * ds] += s[i * ss];                       \
        } else if (ss == 1 && ds == 1) {                                                       \
            memcpy(d, s, (size_t)n * sizeof(T));                                               \
        } else {                                                                               \
            for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];                             \
        }                                                                                      \
    } while (0)

static void copy_row(void *p, int64_t n, const int64_t *off, const int64_t *st) {
    const copy_job *j = (const copy_job *)p;
    switch (j->dtype) {
    case PF_FLOAT32: COPY_ROW(float); break;
    case PF_FLOAT64: COPY_ROW(double); break;
    case PF_INT32: COPY_ROW(int32_t); break;
    case PF_BOOL: COPY_ROW(uint8_t); break;
    default: COPY_ROW(int64_t); break;
    }
}

/* Writes through t must not land twice on one element (threads would race, and the result
 * would depend on the order). Sufficient: each dim's stride, in order of size, steps past the
 * whole span of the smaller ones. Slices, transposes and concatenation blocks all pass. */
static int check_no_overlap(const pf_tensor *t, const char *what) {
    int64_t stride[PF_MAX_DIMS], size[PF_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) return PF_OK;
        if (t->shape[d] == 1) continue;
        int64_t s = t->strides[d] < 0 ? -t->strides[d] : t->strides[d];
        int k = n++;
        for (; k > 0 && stride[k - 1] > s; k--) { stride[k] = stride[k - 1]; size[k] = size[k - 1]; }
        stride[k] = s;
        size[k] = t->shape[d];
    }
    int64_t span = 0;   /* elements covered by the smaller dims, minus one */
    for (int k = 0; k < n; k++) {
        PF_CHECK(stride[k] > span, PF_ERR_ARGUMENT,
                 "%s has strides that make writes overlap (stride %lld over a span of %lld)",
                 what, (long long)stride[k], (long long)(span + 1));
        span += stride[k] * (size[k] - 1);
    }
    return PF_OK;
}

static int k_copy(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_tensor(x, "x"));
    PF_TRY(pf_check_tensor(y, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_TRY(check_no_overlap(y, "y"));
    const int64_t *strides[2] = {x->strides, y->strides};
    pf_walk w;
    pf_walk_init(&w, y->ndim, y->shape, 2, strides);
    copy_job j = {x->dtype, a->n_iattr > 0 && a->iattr && a->iattr[0] != 0,
                  (const char *)x->data, (char *)y->data};
    pf_walk_run(&w, COPY_PARALLEL_MIN, copy_row, &j);
    return PF_OK;
}

static int64_t index_at(const pf_tensor *idx, int64_t i) {
    return idx->dtype == PF_INT32 ? ((const int32_t *)idx->data)[i] : ((const int64_t *)idx->data)[i];
}

static int check_indices(const pf_tensor *idx, int64_t n) {
    PF_TRY(pf_check_contiguous(idx, "indices"));
    PF_CHECK(idx->dtype == PF_INT32 || idx->dtype == PF_INT64, PF_ERR_DTYPE,
             "indices must be int32 or int64, got %s", pf_dtype_name(idx->dtype));
    int64_t k = pf_numel(idx);
    for (int64_t i = 0; i < k; i++) {
        int64_t v = index_at(idx, i);
        PF_CHECK(v >= 0 && v < n, PF_ERR_INDEX,
                 "index %lld at position %lld is out of range for an axis of size %lld",
                 (long long)v, (long long)i, (long long)n);
    }
    return PF_OK;
}

/* "take": inputs x (O, N, I) contiguous, indices (K elements, int32/int64, 0 <= i < N);
 * outputs y (O, K, I). */
static int k_take(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *x = a->inputs[0], *idx = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, axis, inner)");
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    int64_t O = x->shape[0], N = x->shape[1], I = x->shape[2];
    PF_TRY(check_indices(idx, N));
    int64_t K = pf_numel(idx);
    PF_CHECK(pf_numel(y) == O * K * I, PF_ERR_SHAPE, "y has %lld elements, expected %lld",
             (long long)pf_numel(y), (long long)(O * K * I));
    size_t es = pf_dtype_size(x->dtype), row = (size_t)I * es;
    const char *src = (const char *)x->data;
    char *dst = (char *)y->data;
    for (int64_t o = 0; o < O; o++)
        for (int64_t k = 0; k < K; k++)
            memcpy(dst + ((size_t)(o * K + k)) * row, src + ((size_t)(o * N + index_at(idx, k))) * row, row);
    return PF_OK;
}

/* "take_grad": inputs indices (K), g (O, K, I); outputs dx (O, N, I). iattr[0] (optional):
 * accumulate into dx; otherwise dx is zeroed first. Repeated indices add up. */
static int k_take_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *idx = a->inputs[0], *g = a->inputs[1], *dx = a->outputs[0];
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_contiguous(dx, "dx"));
    PF_TRY(pf_check_float(dx, "dx"));
    PF_TRY(pf_check_dtype(g, dx->dtype, "grad"));
    PF_CHECK(dx->ndim == 3, PF_ERR_SHAPE, "dx must be viewed as (outer, axis, inner)");
    int64_t O = dx->shape[0], N = dx->shape[1], I = dx->shape[2];
    PF_TRY(check_indices(idx, N));
    int64_t K = pf_numel(idx);
    PF_CHECK(pf_numel(g) == O * K * I, PF_ERR_SHAPE, "grad has %lld elements, expected %lld",
             (long long)pf_numel(g), (long long)(O * K * I));
    int accumulate = a->n_iattr > 0 && a->iattr && a->iattr[0] != 0;
    if (!accumulate) memset(dx->data, 0, (size_t)pf_numel(dx) * pf_dtype_size(dx->dtype));
    for (int64_t o = 0; o < O; o++)
        for (int64_t k = 0; k < K; k++) {
            int64_t t = index_at(idx, k);
            if (dx->dtype == PF_FLOAT32) {
                float *d = (float *)dx->data + (o * N + t) * I;
                const float *s = (const float *)g->data + (o * K + k) * I;
                for (int64_t i = 0; i < I; i++) d[i] += s[i];
            } else {
                double *d = (double *)dx->data + (o * N + t) * I;
                const double *s = (const double *)g->data + (o * K + k) * I;
                for (int64_t i = 0; i < I; i++) d[i] += s[i];
            }
        }
    return PF_OK;
}

/* ---- gather / scatter along one axis (take_along_axis, torch.gather/scatter/scatter_add) ----
 * Shapes are viewed as (outer O, axis, inner I); indices have the output's (O, K, I) layout and
 * may be negative (counted from the end, as numpy's take_along_axis). */
#define GATHER_GRAIN 4096

static int check_axis_indices(const pf_tensor *idx, int64_t n) {
    PF_TRY(pf_check_contiguous(idx, "indices"));
    PF_CHECK(idx->dtype == PF_INT32 || idx->dtype == PF_INT64, PF_ERR_DTYPE,
             "indices must be int32 or int64, got %s", pf_dtype_name(idx->dtype));
    int64_t k = pf_numel(idx);
    for (int64_t i = 0; i < k; i++) {
        int64_t v = index_at(idx, i);
        PF_CHECK(v >= -n && v < n, PF_ERR_INDEX,
                 "index %lld at position %lld is out of range for an axis of size %lld",
                 (long long)v, (long long)i, (long long)n);
    }
    return PF_OK;
}

static int check_oki(const pf_tensor *t, int64_t O, int64_t K, int64_t I, const char *what) {
    PF_CHECK(t->ndim == 3 && t->shape[0] == O && t->shape[1] == K && t->shape[2] == I,
             PF_ERR_SHAPE, "%s must be viewed as (%lld, %lld, %lld)", what, (long long)O,
             (long long)K, (long long)I);
    return PF_OK;
}

typedef struct {
    const pf_tensor *idx;
    const char *src;
    char *dst;
    int64_t N, K, I, blocks;
    size_t es;
    int dtype, add;
} axis_job;

#define GATHER_ROWS(T)                                                                         \
    do {                                                                                       \
        const T *s = (const T *)j->src;                                                        \
        T *d = (T *)j->dst;                                                                    \
        for (int64_t r = begin; r < end; r++) {                                                \
            const T *base = s + (r / j->K) * j->N * j->I;                                      \
            for (int64_t i = 0; i < j->I; i++) {                                               \
                int64_t t = index_at(j->idx, r * j->I + i);                                    \
                if (t < 0) t += j->N;                                                          \
                d[r * j->I + i] = base[t * j->I + i];                                          \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* rows r = o * K + k of the output; element i reads x[o, idx[r, i], i] (bits moved, so one
 * loop per element size serves every dtype) */
static void gather_task(void *p, int64_t begin, int64_t end) {
    const axis_job *j = (const axis_job *)p;
    switch (j->es) {
    case 1: GATHER_ROWS(uint8_t); break;
    case 4: GATHER_ROWS(uint32_t); break;
    default: GATHER_ROWS(uint64_t); break;
    }
}

#define SCATTER_LOOP(T)                                                                        \
    do {                                                                                       \
        const T *s = (const T *)j->src;                                                        \
        T *d = (T *)j->dst;                                                                    \
        for (int64_t k = 0; k < j->K; k++)                                                     \
            for (int64_t i = i0; i < i1; i++) {                                                \
                int64_t r = (o * j->K + k) * j->I + i, t = index_at(j->idx, r);                \
                if (t < 0) t += j->N;                                                          \
                if (j->add) d[(o * j->N + t) * j->I + i] += s[r];                              \
                else d[(o * j->N + t) * j->I + i] = s[r];                                      \
            }                                                                                  \
    } while (0)

/* one task: one outer index o and one block of inner columns; collisions happen only along
 * the axis within one (o, i) column, so tasks never write the same element */
static void scatter_task(void *p, int64_t begin, int64_t end) {
    const axis_job *j = (const axis_job *)p;
    for (int64_t b = begin; b < end; b++) {
        int64_t o = b / j->blocks, blk = b % j->blocks;
        int64_t i0 = blk * 64, i1 = i0 + 64 < j->I ? i0 + 64 : j->I;
        switch (j->dtype) {
        case PF_FLOAT32: SCATTER_LOOP(float); break;
        case PF_FLOAT64: SCATTER_LOOP(double); break;
        case PF_INT32: SCATTER_LOOP(int32_t); break;
        case PF_BOOL: SCATTER_LOOP(uint8_t); break;
        default: SCATTER_LOOP(int64_t); break;
        }
    }
}

/* "gather_axis": inputs x (O, N, I) contiguous, indices (O, K, I); outputs y (O, K, I). */
static int k_gather_axis(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *x = a->inputs[0], *idx = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, axis, inner)");
    int64_t O = x->shape[0], N = x->shape[1], I = x->shape[2], K = y->ndim == 3 ? y->shape[1] : -1;
    PF_TRY(check_oki(y, O, K, I, "y"));
    PF_TRY(check_oki(idx, O, K, I, "indices"));
    PF_TRY(check_axis_indices(idx, N));
    axis_job j = {idx, (const char *)x->data, (char *)y->data, N, K, I, 0,
                  pf_dtype_size(x->dtype), x->dtype, 0};
    int64_t grain = I > 0 ? (GATHER_GRAIN + I - 1) / I : 1;
    pf_parallel_for(O * K, grain, gather_task, &j);
    return PF_OK;
}

/* "scatter_axis": inputs indices (O, K, I), src (O, K, I) contiguous; outputs y (O, N, I),
 * updated in place: y[o, idx, i] = src (iattr[0] = 0) or += src (iattr[0] = 1). Repeated
 * indices: the last write wins (assign) or all add up. */
static int k_scatter_axis(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *idx = a->inputs[0], *src = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(src, "src"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(src, y->dtype, "src"));
    PF_CHECK(y->ndim == 3, PF_ERR_SHAPE, "y must be viewed as (outer, axis, inner)");
    int64_t O = y->shape[0], N = y->shape[1], I = y->shape[2];
    int64_t K = src->ndim == 3 ? src->shape[1] : -1;
    PF_TRY(check_oki(src, O, K, I, "src"));
    PF_TRY(check_oki(idx, O, K, I, "indices"));
    PF_TRY(check_axis_indices(idx, N));
    int add = a->iattr[0] != 0;
    PF_CHECK(!add || y->dtype != PF_BOOL, PF_ERR_DTYPE, "scatter_add does not take bool");
    int64_t blocks = (I + 63) / 64;
    axis_job j = {idx, (const char *)src->data, (char *)y->data, N, K, I, blocks,
                  pf_dtype_size(y->dtype), y->dtype, add};
    int64_t per = K * (I < 64 ? I : 64);
    int64_t grain = per > 0 ? (GATHER_GRAIN + per - 1) / per : 1;
    if (O * blocks > 0) pf_parallel_for(O * blocks, grain, scatter_task, &j);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_layout[] = {
    {"copy", k_copy, NULL},
    {"take", k_take, NULL},
    {"take_grad", k_take_grad, NULL},
    {"gather_axis", k_gather_axis, NULL},
    {"scatter_axis", k_scatter_axis, NULL},
    {NULL, NULL, NULL},
};
