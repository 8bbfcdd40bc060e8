/* reduce.c -- sum/mean/max/min/argmax/argmin/prod over the middle axis of an (O, R, I) view.
 *
 * "reduce": inputs x (contiguous, shape (O, R, I)); outputs y (contiguous, O*I elements;
 * int64 for argmax/argmin, else x's dtype). iattr[0]: pf_reduce_op. Any set of adjacent axes
 * maps onto this view without a copy; the front end transposes other sets first.
 * float32 sums and products along a row accumulate in double. Over an empty axis the sum is 0,
 * the product 1 and the mean NaN (as in PyTorch); max/min/argmax/argmin refuse it. bool inputs
 * are refused (the front end reduces them as integers). */
#include "internal.h"

#define REDUCE_PARALLEL_MIN 32768

typedef struct {
    int op, dtype;
    int64_t O, R, I;
    const void *x;
    void *y;
} reduce_job;

#define DEFINE_REDUCE(T, ACC, SUF)                                                             \
    /* one output element per (o): reduce a contiguous row of R */                             \
    static PF_HOT void reduce_rows_##SUF(const reduce_job *j, int64_t o0, int64_t o1) {        \
        const T *x = (const T *)j->x;                                                          \
        int64_t R = j->R;                                                                      \
        for (int64_t o = o0; o < o1; o++) {                                                    \
            const T *row = x + o * R;                                                          \
            switch (j->op) {                                                                   \
            case PF_R_SUM: case PF_R_MEAN: {                                                   \
                ACC acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                         \
                int64_t r = 0;                                                                 \
                for (; r + 8 <= R; r += 8)                                                     \
                    for (int k = 0; k < 8; k++) acc[k] += row[r + k];                          \
                ACC s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +                              \
                        ((acc[4] + acc[5]) + (acc[6] + acc[7]));                               \
                for (; r < R; r++) s += row[r];                                                \
                ((T *)j->y)[o] = (T)(j->op == PF_R_MEAN ? s / (ACC)R : s);                     \
                break;                                                                         \
            }                                                                                  \
            case PF_R_PROD: {                                                                  \
                ACC p = 1;                                                                     \
                for (int64_t r = 0; r < R; r++) p *= row[r];                                   \
                ((T *)j->y)[o] = (T)p;                                                         \
                break;                                                                         \
            }                                                                                  \
            case PF_R_MAX: case PF_R_MIN: {                                                    \
                T m = row[0];                                                                  \
                int is_max = j->op == PF_R_MAX;                                                \
                for (int64_t r = 1; r < R && m == m; r++) {                                    \
                    T v = row[r];                                                              \
                    if (v != v || (is_max ? v > m : v < m)) m = v;                             \
                }                                                                              \
                ((T *)j->y)[o] = m;                                                            \
                break;                                                                         \
            }                                                                                  \
            default: { /* argmax / argmin: first extreme; NaN wins, as in numpy */             \
                int64_t best = 0;                                                              \
                T m = row[0];                                                                  \
                int is_max = j->op == PF_R_ARGMAX;                                             \
                for (int64_t r = 1; r < R && m == m; r++) {                                    \
                    T v = row[r];                                                              \
                    if (v != v || (is_max ? v > m : v < m)) { m = v; best = r; }               \
                }                                                                              \
                ((int64_t *)j->y)[o] = best;                                                   \
                break;                                                                         \
            }                                                                                  \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* I > 1: items (o, chunk of I); accumulate row after row into the output */               \
    static PF_HOT void reduce_cols_##SUF(const reduce_job *j, int64_t o, int64_t i0,           \
                                         int64_t i1) {                                         \
        const T *x = (const T *)j->x + o * j->R * j->I;                                        \
        int64_t I = j->I, R = j->R;                                                            \
        if (j->op == PF_R_ARGMAX || j->op == PF_R_ARGMIN) {                                    \
            int64_t *best = (int64_t *)j->y + o * I;                                           \
            int is_max = j->op == PF_R_ARGMAX;                                                 \
            for (int64_t i = i0; i < i1; i++) {                                                \
                T m = x[i];                                                                    \
                int64_t b = 0;                                                                 \
                for (int64_t r = 1; r < R && m == m; r++) {                                    \
                    T v = x[r * I + i];                                                        \
                    if (v != v || (is_max ? v > m : v < m)) { m = v; b = r; }                  \
                }                                                                              \
                best[i] = b;                                                                   \
            }                                                                                  \
            return;                                                                            \
        }                                                                                      \
        T *y = (T *)j->y + o * I;                                                              \
        if (R == 0) {                                                                          \
            T empty = j->op == PF_R_PROD ? (T)1 : (T)0;                                        \
            if (j->op == PF_R_MEAN) empty = (T)(0.0 / 0.0);                                    \
            for (int64_t i = i0; i < i1; i++) y[i] = empty;                                    \
            return;                                                                            \
        }                                                                                      \
        for (int64_t i = i0; i < i1; i++) y[i] = x[i];                                         \
        for (int64_t r = 1; r < R; r++) {                                                      \
            const T *row = x + r * I;                                                          \
            switch (j->op) {                                                                   \
            case PF_R_SUM: case PF_R_MEAN:                                                     \
                for (int64_t i = i0; i < i1; i++) y[i] += row[i];                              \
                break;                                                                         \
            case PF_R_PROD:                                                                    \
                for (int64_t i = i0; i < i1; i++) y[i] *= row[i];                              \
                break;                                                                         \
            case PF_R_MAX:                                                                     \
                for (int64_t i = i0; i < i1; i++)                                              \
                    y[i] = (row[i] > y[i] || row[i] != row[i]) && y[i] == y[i] ? row[i] : y[i];\
                break;                                                                         \
            default:                                                                           \
                for (int64_t i = i0; i < i1; i++)                                              \
                    y[i] = (row[i] < y[i] || row[i] != row[i]) && y[i] == y[i] ? row[i] : y[i];\
                break;                                                                         \
            }                                                                                  \
        }                                                                                      \
        if (j->op == PF_R_MEAN) {                                                              \
            T inv = (T)1 / (T)R;                                                               \
            for (int64_t i = i0; i < i1; i++) y[i] *= inv;                                     \
        }                                                                                      \
    }

DEFINE_REDUCE(float, double, f32)
DEFINE_REDUCE(double, double, f64)
DEFINE_REDUCE(int32_t, int64_t, i32)
DEFINE_REDUCE(int64_t, int64_t, i64)

static void rows_task(void *p, int64_t b, int64_t e) {
    const reduce_job *j = (const reduce_job *)p;
    switch (j->dtype) {
    case PF_FLOAT32: reduce_rows_f32(j, b, e); break;
    case PF_FLOAT64: reduce_rows_f64(j, b, e); break;
    case PF_INT32: reduce_rows_i32(j, b, e); break;
    default: reduce_rows_i64(j, b, e); break;
    }
}

#define COL_CHUNK 512
static void cols_task(void *p, int64_t b, int64_t e) {
    const reduce_job *j = (const reduce_job *)p;
    int64_t chunks = (j->I + COL_CHUNK - 1) / COL_CHUNK;
    for (int64_t item = b; item < e; item++) {
        int64_t o = item / chunks, c = item % chunks;
        int64_t i0 = c * COL_CHUNK, i1 = i0 + COL_CHUNK > j->I ? j->I : i0 + COL_CHUNK;
        switch (j->dtype) {
        case PF_FLOAT32: reduce_cols_f32(j, o, i0, i1); break;
        case PF_FLOAT64: reduce_cols_f64(j, o, i0, i1); break;
        case PF_INT32: reduce_cols_i32(j, o, i0, i1); break;
        default: reduce_cols_i64(j, o, i0, i1); break;
        }
    }
}

/* Long rows (I == 1, R >= REDUCE_PARALLEL_MIN) are summed in chunks whose size depends on R
 * alone, combined in order: the result is the same whatever the number of threads. */
#define SUM_MAX_CHUNKS 64
#define SUM_CHUNK 16384

typedef struct {
    const reduce_job *j;
    int64_t o, chunk;
    double partial[SUM_MAX_CHUNKS];
} sum_split_job;

#define DEFINE_SPAN_SUM(T, SUF)                                                                \
    static PF_HOT double span_sum_##SUF(const T *x, int64_t n) {                               \
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                              \
        int64_t r = 0;                                                                         \
        for (; r + 8 <= n; r += 8)                                                             \
            for (int k = 0; k < 8; k++) acc[k] += x[r + k];                                    \
        double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])); \
        for (; r < n; r++) s += x[r];                                                          \
        return s;                                                                              \
    }
DEFINE_SPAN_SUM(float, f32)
DEFINE_SPAN_SUM(double, f64)

static void sum_split_task(void *p, int64_t b, int64_t e) {
    sum_split_job *s = (sum_split_job *)p;
    int64_t R = s->j->R;
    for (int64_t part = b; part < e; part++) {
        int64_t lo = part * s->chunk, hi = lo + s->chunk > R ? R : lo + s->chunk;
        s->partial[part] = s->j->dtype == PF_FLOAT32
            ? span_sum_f32((const float *)s->j->x + s->o * R + lo, hi - lo)
            : span_sum_f64((const double *)s->j->x + s->o * R + lo, hi - lo);
    }
}

static int k_reduce(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, reduced, inner), got %d dims",
             x->ndim);
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= 0 && op < PF_R_COUNT, PF_ERR_ARGUMENT, "unknown reduce op %d", op);
    int64_t O = x->shape[0], R = x->shape[1], I = x->shape[2];
    PF_CHECK(pf_numel(y) == O * I, PF_ERR_SHAPE, "y has %lld elements, expected %lld",
             (long long)pf_numel(y), (long long)(O * I));
    int arg = op == PF_R_ARGMAX || op == PF_R_ARGMIN;
    PF_TRY(pf_check_dtype(y, arg ? PF_INT64 : x->dtype, "y"));
    PF_CHECK(x->dtype != PF_BOOL, PF_ERR_DTYPE, "reduce does not take bool inputs");
    PF_CHECK(R > 0 || op == PF_R_SUM || op == PF_R_PROD || op == PF_R_MEAN || O * I == 0,
             PF_ERR_SHAPE,
             "cannot take %s over an empty axis",
             op == PF_R_MEAN ? "the mean" : op == PF_R_MAX || op == PF_R_ARGMAX ? "the maximum" : "the minimum");
    PF_CHECK(!(op == PF_R_MEAN && (x->dtype == PF_INT32 || x->dtype == PF_INT64)), PF_ERR_DTYPE,
             "mean needs a float input, got %s", pf_dtype_name(x->dtype));
    reduce_job j = {op, x->dtype, O, R, I, x->data, y->data};
    if (O * I == 0) return PF_OK;
    if (I == 1) {
        if ((op == PF_R_SUM || op == PF_R_MEAN) && R >= REDUCE_PARALLEL_MIN &&
            (x->dtype == PF_FLOAT32 || x->dtype == PF_FLOAT64)) {
            int64_t chunk = R > SUM_CHUNK * SUM_MAX_CHUNKS ? (R + SUM_MAX_CHUNKS - 1) / SUM_MAX_CHUNKS
                                                           : SUM_CHUNK;
            int64_t parts = (R + chunk - 1) / chunk;
            for (int64_t o = 0; o < O; o++) {
                sum_split_job s = {&j, o, chunk, {0}};
                pf_parallel_for(parts, 1, sum_split_task, &s);
                double total = 0;
                for (int64_t p = 0; p < parts; p++) total += s.partial[p];
                if (op == PF_R_MEAN) total /= (double)R;
                if (x->dtype == PF_FLOAT32) ((float *)y->data)[o] = (float)total;
                else ((double *)y->data)[o] = total;
            }
            return PF_OK;
        }
        int64_t grain = REDUCE_PARALLEL_MIN / (R > 0 ? R : 1);
        pf_parallel_for(O, grain > 0 ? grain : 1, rows_task, &j);
        return PF_OK;
    }
    int64_t chunks = (I + COL_CHUNK - 1) / COL_CHUNK;
    int64_t per_item = R * (I < COL_CHUNK ? I : COL_CHUNK);
    int64_t grain = REDUCE_PARALLEL_MIN / (per_item > 0 ? per_item : 1);
    pf_parallel_for(O * chunks, grain > 0 ? grain : 1, cols_task, &j);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_reduce[] = {
    {"reduce", k_reduce, NULL},
    {NULL, NULL, NULL},
};
