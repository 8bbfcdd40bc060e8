/* scan.c -- running sums and products, and sorting, along the middle axis of an (O, R, I) view.
 *
 * "cumulate": inputs x (contiguous (O, R, I), float or int); outputs y (contiguous, the same
 * shape and dtype). iattr[0]: 0 sum, 1 product; iattr[1]: 1 runs from the end of the axis
 * (the gradient of a forward scan). float32 accumulates in double, as PyTorch does.
 *
 * "sort": inputs x (contiguous (O, R, I), float or int); outputs values (x's dtype) and indices
 * (int64), both (O, R, I). iattr[0]: 1 descending. Stable (ties keep their order); NaN sorts
 * above every number, as in PyTorch. */
#include <stdlib.h>

#include "internal.h"

#define SCAN_PARALLEL_MIN 32768
#define SCAN_COL_CHUNK 256

typedef struct {
    int dtype, prod, reverse;
    int64_t O, R, I;
    const void *x;
    void *y;
} scan_job;

/* A long row's running sum as SCAN_SEGMENTS segments scanned together (independent addition
 * chains instead of one: the add latency, not memory, bounds a single chain), then each later
 * segment shifted by the total before it. */
#define SCAN_SEGMENTS 8
#define SCAN_SEGMENT_MIN 32
#define DEFINE_SUM_ROW_DIR(T, ACC, SUF, DIR, STEP)                                             \
    static PF_HOT void scan_sum_row_##DIR##_##SUF(const T *x, T *y, int64_t R) {              \
        int64_t seg = R / SCAN_SEGMENTS;                                                       \
        const T *xs = STEP < 0 ? x + R - 1 : x;                                                \
        T *ys = STEP < 0 ? y + R - 1 : y;                                                      \
        ACC acc[SCAN_SEGMENTS] = {0};                                                          \
        for (int64_t k = 0; k < seg; k++)                                                      \
            for (int s = 0; s < SCAN_SEGMENTS; s++) {                                          \
                int64_t i = (k + s * seg) * STEP;                                              \
                acc[s] += xs[i];                                                               \
                ys[i] = (T)acc[s];                                                             \
            }                                                                                  \
        for (int64_t k = SCAN_SEGMENTS * seg; k < R; k++) {                                    \
            acc[SCAN_SEGMENTS - 1] += xs[k * STEP];                                            \
            ys[k * STEP] = (T)acc[SCAN_SEGMENTS - 1];                                          \
        }                                                                                      \
        ACC off = 0;                                                                           \
        for (int s = 1; s < SCAN_SEGMENTS; s++) {                                              \
            off += acc[s - 1];                                                                 \
            int64_t end = s == SCAN_SEGMENTS - 1 ? R : (s + 1) * seg;                          \
            for (int64_t k = s * seg; k < end; k++)                                            \
                ys[k * STEP] = (T)((ACC)ys[k * STEP] + off);                                   \
        }                                                                                      \
    }
/* the direction a compile-time constant: with a run-time step the reverse loops ran 2.3x
 * slower than the forward ones */
#define DEFINE_SUM_ROW(T, ACC, SUF)                                                            \
    DEFINE_SUM_ROW_DIR(T, ACC, SUF, fwd, 1)                                                    \
    DEFINE_SUM_ROW_DIR(T, ACC, SUF, rev, -1)                                                   \
    static inline void scan_sum_row_##SUF(const T *x, T *y, int64_t R, int reverse) {          \
        if (reverse) scan_sum_row_rev_##SUF(x, y, R);                                          \
        else scan_sum_row_fwd_##SUF(x, y, R);                                                  \
    }
DEFINE_SUM_ROW(float, double, f32)
DEFINE_SUM_ROW(double, double, f64)
DEFINE_SUM_ROW(int32_t, int64_t, i32)
DEFINE_SUM_ROW(int64_t, int64_t, i64)

#define DEFINE_SCAN(T, ACC, SUF)                                                               \
    /* I == 1: one contiguous row per o */                                                     \
    static PF_HOT void scan_rows_##SUF(const scan_job *j, int64_t o0, int64_t o1) {            \
        int64_t R = j->R;                                                                      \
        for (int64_t o = o0; o < o1; o++) {                                                    \
            const T *x = (const T *)j->x + o * R;                                              \
            T *y = (T *)j->y + o * R;                                                          \
            if (!j->prod && R >= SCAN_SEGMENTS * SCAN_SEGMENT_MIN) {                                       \
                scan_sum_row_##SUF(x, y, R, j->reverse);                                       \
                continue;                                                                      \
            }                                                                                  \
            ACC acc = j->prod ? 1 : 0;                                                         \
            if (!j->reverse) {                                                                 \
                if (j->prod) for (int64_t r = 0; r < R; r++) { acc *= x[r]; y[r] = (T)acc; }   \
                else for (int64_t r = 0; r < R; r++) { acc += x[r]; y[r] = (T)acc; }           \
            } else {                                                                           \
                if (j->prod) for (int64_t r = R - 1; r >= 0; r--) { acc *= x[r]; y[r] = (T)acc; } \
                else for (int64_t r = R - 1; r >= 0; r--) { acc += x[r]; y[r] = (T)acc; }      \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* I > 1: a chunk of columns scanned together, row after row (vectorises over i) */        \
    static PF_HOT void scan_cols_##SUF(const scan_job *j, int64_t o, int64_t i0, int64_t i1) { \
        int64_t I = j->I, R = j->R, n = i1 - i0;                                               \
        const T *x = (const T *)j->x + o * R * I + i0;                                         \
        T *y = (T *)j->y + o * R * I + i0;                                                     \
        ACC acc[SCAN_COL_CHUNK];                                                               \
        for (int64_t i = 0; i < n; i++) acc[i] = j->prod ? 1 : 0;                              \
        for (int64_t k = 0; k < R; k++) {                                                      \
            int64_t r = j->reverse ? R - 1 - k : k;                                            \
            const T *xr = x + r * I;                                                           \
            T *yr = y + r * I;                                                                 \
            if (j->prod) for (int64_t i = 0; i < n; i++) { acc[i] *= xr[i]; yr[i] = (T)acc[i]; } \
            else for (int64_t i = 0; i < n; i++) { acc[i] += xr[i]; yr[i] = (T)acc[i]; }       \
        }                                                                                      \
    }

DEFINE_SCAN(float, double, f32)
DEFINE_SCAN(double, double, f64)
DEFINE_SCAN(int32_t, int64_t, i32)
DEFINE_SCAN(int64_t, int64_t, i64)

static void scan_rows_task(void *p, int64_t b, int64_t e) {
    const scan_job *j = (const scan_job *)p;
    switch (j->dtype) {
    case PF_FLOAT32: scan_rows_f32(j, b, e); break;
    case PF_FLOAT64: scan_rows_f64(j, b, e); break;
    case PF_INT32: scan_rows_i32(j, b, e); break;
    default: scan_rows_i64(j, b, e); break;
    }
}

static void scan_cols_task(void *p, int64_t b, int64_t e) {
    const scan_job *j = (const scan_job *)p;
    int64_t chunks = (j->I + SCAN_COL_CHUNK - 1) / SCAN_COL_CHUNK;
    for (int64_t item = b; item < e; item++) {
        int64_t o = item / chunks, c = item % chunks;
        int64_t i0 = c * SCAN_COL_CHUNK, i1 = i0 + SCAN_COL_CHUNK > j->I ? j->I : i0 + SCAN_COL_CHUNK;
        switch (j->dtype) {
        case PF_FLOAT32: scan_cols_f32(j, o, i0, i1); break;
        case PF_FLOAT64: scan_cols_f64(j, o, i0, i1); break;
        case PF_INT32: scan_cols_i32(j, o, i0, i1); break;
        default: scan_cols_i64(j, o, i0, i1); break;
        }
    }
}

static int check_oRI(const pf_tensor *x, const char *what) {
    PF_TRY(pf_check_contiguous(x, what));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "%s must be viewed as (outer, axis, inner), got %d dims",
             what, x->ndim);
    PF_CHECK(x->dtype != PF_BOOL, PF_ERR_DTYPE, "%s: bool is not taken (cast it first)", what);
    return PF_OK;
}

static int k_cumulate(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    PF_TRY(pf_check_attrs(a, 2, 0));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(check_oRI(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_CHECK(pf_numel(y) == pf_numel(x), PF_ERR_SHAPE, "y has %lld elements, x %lld",
             (long long)pf_numel(y), (long long)pf_numel(x));
    PF_CHECK(a->iattr[0] == 0 || a->iattr[0] == 1, PF_ERR_ARGUMENT, "unknown scan %lld",
             (long long)a->iattr[0]);
    scan_job j = {x->dtype, a->iattr[0] == 1, a->iattr[1] != 0, x->shape[0], x->shape[1],
                  x->shape[2], x->data, y->data};
    if (pf_numel(x) == 0) return PF_OK;
    if (j.I == 1) {
        int64_t grain = SCAN_PARALLEL_MIN / j.R;
        pf_parallel_for(j.O, grain > 0 ? grain : 1, scan_rows_task, &j);
        return PF_OK;
    }
    int64_t chunks = (j.I + SCAN_COL_CHUNK - 1) / SCAN_COL_CHUNK;
    int64_t per_item = j.R * (j.I < SCAN_COL_CHUNK ? j.I : SCAN_COL_CHUNK);
    int64_t grain = SCAN_PARALLEL_MIN / per_item;
    pf_parallel_for(j.O * chunks, grain > 0 ? grain : 1, scan_cols_task, &j);
    return PF_OK;
}

/* ---- sort ---- */
typedef struct {
    double v;         /* float values */
    int64_t iv;       /* integer values (exact beyond 2^53) */
    int64_t idx;
} sort_item;

/* NaN above everything; ties by original position, so the order is stable either way */
static int cmp_float_asc(const void *pa, const void *pb) {
    const sort_item *a = (const sort_item *)pa, *b = (const sort_item *)pb;
    int an = a->v != a->v, bn = b->v != b->v;
    if (an != bn) return an - bn;
    if (!an && a->v != b->v) return a->v < b->v ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}
static int cmp_float_desc(const void *pa, const void *pb) {
    const sort_item *a = (const sort_item *)pa, *b = (const sort_item *)pb;
    int an = a->v != a->v, bn = b->v != b->v;
    if (an != bn) return bn - an;
    if (!an && a->v != b->v) return a->v > b->v ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}
static int cmp_int_asc(const void *pa, const void *pb) {
    const sort_item *a = (const sort_item *)pa, *b = (const sort_item *)pb;
    if (a->iv != b->iv) return a->iv < b->iv ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}
static int cmp_int_desc(const void *pa, const void *pb) {
    const sort_item *a = (const sort_item *)pa, *b = (const sort_item *)pb;
    if (a->iv != b->iv) return a->iv > b->iv ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

typedef struct {
    int dtype, descending;
    int64_t O, R, I;
    const void *x;
    void *values;
    int64_t *indices;
    volatile int failed;
} sort_job;

static void sort_task(void *p, int64_t b, int64_t e) {
    sort_job *j = (sort_job *)p;
    int64_t R = j->R, I = j->I;
    sort_item *items = (sort_item *)malloc((size_t)R * sizeof(sort_item));
    if (!items) { j->failed = 1; return; }
    int is_float = j->dtype == PF_FLOAT32 || j->dtype == PF_FLOAT64;
    int (*cmp)(const void *, const void *) =
        is_float ? (j->descending ? cmp_float_desc : cmp_float_asc)
                 : (j->descending ? cmp_int_desc : cmp_int_asc);
    for (int64_t col = b; col < e; col++) {
        int64_t o = col / I, i = col % I, base = o * R * I + i;
        for (int64_t r = 0; r < R; r++) {
            int64_t k = base + r * I;
            sort_item *it = &items[r];
            it->idx = r;
            switch (j->dtype) {
            case PF_FLOAT32: it->v = ((const float *)j->x)[k]; break;
            case PF_FLOAT64: it->v = ((const double *)j->x)[k]; break;
            case PF_INT32: it->iv = ((const int32_t *)j->x)[k]; break;
            default: it->iv = ((const int64_t *)j->x)[k]; break;
            }
        }
        qsort(items, (size_t)R, sizeof(sort_item), cmp);
        for (int64_t r = 0; r < R; r++) {
            int64_t k = base + r * I;
            switch (j->dtype) {
            case PF_FLOAT32: ((float *)j->values)[k] = (float)items[r].v; break;
            case PF_FLOAT64: ((double *)j->values)[k] = items[r].v; break;
            case PF_INT32: ((int32_t *)j->values)[k] = (int32_t)items[r].iv; break;
            default: ((int64_t *)j->values)[k] = items[r].iv; break;
            }
            j->indices[k] = items[r].idx;
        }
    }
    free(items);
}

static int k_sort(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 2));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *v = a->outputs[0], *ix = a->outputs[1];
    PF_TRY(check_oRI(x, "x"));
    PF_TRY(pf_check_contiguous(v, "values"));
    PF_TRY(pf_check_contiguous(ix, "indices"));
    PF_TRY(pf_check_dtype(v, x->dtype, "values"));
    PF_TRY(pf_check_dtype(ix, PF_INT64, "indices"));
    PF_CHECK(pf_numel(v) == pf_numel(x) && pf_numel(ix) == pf_numel(x), PF_ERR_SHAPE,
             "values and indices must have x's %lld elements", (long long)pf_numel(x));
    sort_job j = {x->dtype, a->iattr[0] != 0, x->shape[0], x->shape[1], x->shape[2], x->data,
                  v->data, (int64_t *)ix->data, 0};
    if (pf_numel(x) == 0) return PF_OK;
    int64_t grain = SCAN_PARALLEL_MIN / (j.R * 8);
    pf_parallel_for(j.O * j.I, grain > 0 ? grain : 1, sort_task, &j);
    PF_CHECK(!j.failed, PF_ERR_MEMORY, "sort: no memory for a row of %lld", (long long)j.R);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_scan[] = {
    {"cumulate", k_cumulate, NULL},
    {"sort", k_sort, NULL},
    {NULL, NULL, NULL},
};
