/* layout.c -- moving elements: strided copies (transpose, slicing, concatenation and their
 * gradients), gathers along an axis (integer indexing, embeddings) with their scatter-add, and
 * padding with its gradient. */
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

/* One branch-free pass finds whether any index is out of range; only then a second pass
 * names the first one. */
#define ANY_OUTSIDE(IT)                                                                            do {                                                                                               const IT *v = (const IT *)idx->data;                                                           for (int64_t i = 0; i < k; i++) bad |= (v[i] < -n) | (v[i] >= n);                          } while (0)

static int check_index_layout(const pf_tensor *idx) {
    PF_TRY(pf_check_contiguous(idx, "indices"));
    PF_CHECK(idx->dtype == PF_INT32 || idx->dtype == PF_INT64, PF_ERR_DTYPE,
             "indices must be int32 or int64, got %s", pf_dtype_name(idx->dtype));
    return PF_OK;
}

static int check_axis_indices(const pf_tensor *idx, int64_t n) {
    PF_TRY(check_index_layout(idx));
    int64_t k = pf_numel(idx);
    int bad = 0;
    if (idx->dtype == PF_INT32) ANY_OUTSIDE(int32_t);
    else ANY_OUTSIDE(int64_t);
    for (int64_t i = 0; bad && i < k; i++) {
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
    int64_t src_bytes;    /* the gather's whole source (its prefetch); 0 for scatters */
    size_t es;
    int dtype, add, zero, bad;
} axis_job;

/* Whether the n indices at v are one value (rows of indices built by repeat or expand:
 * whole rows move, as one copy). */
#define UNIFORM(v, n, diff)                                                                    \
    do {                                                                                       \
        diff = 0;                                                                              \
        for (int64_t q_ = 1; q_ < (n); q_++) diff |= (v)[q_] ^ (v)[0];                          \
    } while (0)

/* Tasks take whole outer slabs o (rows o*K .. o*K+K-1 of the output). Specialised per index
 * type and element size (bits are moved, so one loop per size serves every dtype). Gathering
 * along the last axis (I == 1), the loads land anywhere in the slab and the hardware cannot
 * see a stream: when they will touch most of the next slab anyway and the source is too large
 * to be in the last-level cache, its lines are prefetched while this one is gathered. Measured
 * on a 32 MiB L3 (1 thread, 512 indices a row): a 64 MiB source 5.6 ms a call with the
 * prefetch and 10.1 without, but a 4 MiB one 137 us with and 95 without (PyTorch: 11.5 ms
 * and 102 us), so a source under GATHER_PREFETCH_BYTES is taken to be cached. */
#define GATHER_PREFETCH_BYTES (16LL << 20)
#define GATHER_SLABS(T, IT)                                                                    \
    do {                                                                                       \
        const T *s = (const T *)j->src;                                                        \
        T *d = (T *)j->dst;                                                                    \
        const IT *ix = (const IT *)j->idx->data;                                               \
        int64_t N = j->N, K = j->K, I = j->I;                                                  \
        int64_t lines = N * (int64_t)sizeof(T) / 64;                                           \
        int64_t ahead = I == 1 && 2 * K >= lines && lines <= 4096                            \
                        && j->src_bytes > GATHER_PREFETCH_BYTES ? (lines * 8 + K - 1) / K : 0; \
        for (int64_t o = begin; o < end; o++) {                                                \
            const T *base = s + o * N * I;                                                     \
            T *out = d + o * K * I;                                                            \
            const IT *io = ix + o * K * I;                                                     \
            if (I == 1) {                                                                      \
                /* the slab's index range first (a vector pass over indices in L1): when all  \
                   are in [0, N) the loop below is a plain load and store per element */      \
                IT lo = 0, hi = 0;                                                             \
                for (int64_t k = 0; k < K; k++) {                                              \
                    lo = io[k] < lo ? io[k] : lo;                                              \
                    hi = io[k] > hi ? io[k] : hi;                                              \
                }                                                                              \
                int wrap = lo < 0, checked = lo < -N || hi >= N;                               \
                const char *next = (const char *)(base + N);                                   \
                int64_t p = 0, last = o + 1 < end ? lines : 0;                                 \
                for (int64_t k0 = 0; k0 < K; k0 += 8) {                                        \
                    for (int64_t q = 0; q < ahead && p < last; q++, p++)                       \
                        __builtin_prefetch(next + p * 64);                                     \
                    int64_t k1 = k0 + 8 < K ? k0 + 8 : K;                                      \
                    if (checked)                                                               \
                        for (int64_t k = k0; k < k1; k++) {                                    \
                            int64_t t = io[k], u = t < 0 ? t + N : t;                          \
                            int ok = (uint64_t)u < (uint64_t)N;                                \
                            bad |= !ok;                                                        \
                            out[k] = base[ok ? u : 0];                                         \
                        }                                                                      \
                    else if (wrap)                                                             \
                        for (int64_t k = k0; k < k1; k++)                                      \
                            out[k] = base[io[k] < 0 ? io[k] + N : io[k]];                      \
                    else                                                                       \
                        for (int64_t k = k0; k < k1; k++) out[k] = base[io[k]];                \
                }                                                                              \
                continue;                                                                      \
            }                                                                                  \
            for (int64_t k = 0; k < K; k++) {                                                  \
                const IT *row = io + k * I;                                                    \
                IT diff;                                                                       \
                UNIFORM(row, I, diff);                                                         \
                if (!diff) {                                                                   \
                    int64_t t = row[0], u = t < 0 ? t + N : t;                                 \
                    int ok = (uint64_t)u < (uint64_t)N;                                        \
                    bad |= !ok;                                                                \
                    memcpy(out + k * I, base + (ok ? u : 0) * I, (size_t)I * sizeof(T));       \
                    continue;                                                                  \
                }                                                                              \
                for (int64_t i = 0; i < I; i++) {                                              \
                    int64_t t = row[i], u = t < 0 ? t + N : t;                                 \
                    int ok = (uint64_t)u < (uint64_t)N;                                        \
                    bad |= !ok;                                                                \
                    out[k * I + i] = base[(ok ? u : 0) * I + i];                               \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define GATHER_BY_INDEX(T)                                                                     \
    do {                                                                                       \
        if (j->idx->dtype == PF_INT32) GATHER_SLABS(T, int32_t);                               \
        else GATHER_SLABS(T, int64_t);                                                         \
    } while (0)

/* Indices are checked as they are read (an index out of range reads element 0 instead and
 * marks the job; the kernel then fails naming it): one pass over the indices, not two. */
static PF_HOT void gather_task(void *p, int64_t begin, int64_t end) {
    axis_job *j = (axis_job *)p;
    int bad = 0;
    switch (j->es) {
    case 1: GATHER_BY_INDEX(uint8_t); break;
    case 4: GATHER_BY_INDEX(uint32_t); break;
    default: GATHER_BY_INDEX(uint64_t); break;
    }
    if (bad) __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
}

/* One task: one outer index o and one block of inner columns [i0, i1); collisions happen
 * only along the axis within one (o, i) column, so tasks never write the same element. An
 * index out of range writes nothing and marks the job (as the gather's). A block of one
 * row's indices that are one value (rows scattered whole) is one vector loop. */
#define SCATTER_COLUMNS(T, IT, OP)                                                             \
    do {                                                                                       \
        const T *s = (const T *)j->src;                                                        \
        T *d = (T *)j->dst + o * N * I;                                                        \
        const IT *ix = (const IT *)j->idx->data;                                               \
        if (I == 1) {                  /* along the last axis: one element per index */        \
            for (int64_t k = 0; k < K; k++) {                                                  \
                int64_t t = ix[o * K + k], u = t < 0 ? t + N : t;                              \
                if ((uint64_t)u < (uint64_t)N) d[u] OP s[o * K + k];                           \
                else bad = 1;                                                                  \
            }                                                                                  \
            break;                                                                             \
        }                                                                                      \
        for (int64_t k = 0; k < K; k++) {                                                      \
            int64_t r = (o * K + k) * I;                                                       \
            const IT *row = ix + r;                                                            \
            const T *from = s + r;                                                             \
            IT diff;                                                                           \
            UNIFORM(row + i0, i1 - i0, diff);                                                  \
            if (!diff) {                                                                       \
                int64_t t = row[i0], u = t < 0 ? t + N : t;                                    \
                if ((uint64_t)u >= (uint64_t)N) { bad = 1; continue; }                         \
                T *to = d + u * I;                                                             \
                for (int64_t i = i0; i < i1; i++) to[i] OP from[i];                            \
                continue;                                                                      \
            }                                                                                  \
            for (int64_t i = i0; i < i1; i++) {                                                \
                int64_t t = row[i], u = t < 0 ? t + N : t;                                     \
                if ((uint64_t)u < (uint64_t)N) d[u * I + i] OP from[i];                        \
                else bad = 1;                                                                  \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define SCATTER_LOOP(T)                                                                        \
    do {                                                                                       \
        int i32 = j->idx->dtype == PF_INT32;                                                   \
        if (j->add && i32) SCATTER_COLUMNS(T, int32_t, +=);                                    \
        else if (j->add) SCATTER_COLUMNS(T, int64_t, +=);                                      \
        else if (i32) SCATTER_COLUMNS(T, int32_t, =);                                          \
        else SCATTER_COLUMNS(T, int64_t, =);                                                   \
    } while (0)

static PF_HOT void scatter_task(void *p, int64_t begin, int64_t end) {
    axis_job *j = (axis_job *)p;
    int64_t N = j->N, K = j->K, I = j->I;
    int bad = 0;
    for (int64_t b = begin; b < end; b++) {
        int64_t o = b / j->blocks, blk = b % j->blocks;
        int64_t i0 = blk * 64, i1 = i0 + 64 < I ? i0 + 64 : I;
        if (j->zero) {           /* this task's part of y, zeroed while it stays in cache */
            char *y = j->dst + (size_t)(o * N * I + i0) * j->es;
            if (i1 - i0 == I) memset(y, 0, (size_t)(N * I) * j->es);
            else for (int64_t n = 0; n < N; n++) memset(y + (size_t)(n * I) * j->es, 0, (size_t)(i1 - i0) * j->es);
        }
        switch (j->dtype) {
        case PF_FLOAT32: SCATTER_LOOP(float); break;
        case PF_FLOAT64: SCATTER_LOOP(double); break;
        case PF_INT32: SCATTER_LOOP(int32_t); break;
        case PF_BOOL: SCATTER_LOOP(uint8_t); break;
        default: SCATTER_LOOP(int64_t); break;
        }
    }
    if (bad) __atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
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
    PF_TRY(check_index_layout(idx));
    axis_job j = {idx, (const char *)x->data, (char *)y->data, N, K, I, 0,
                  O * N * I * (int64_t)pf_dtype_size(x->dtype), pf_dtype_size(x->dtype),
                  x->dtype, 0, 0, 0};
    int64_t per = K * I;
    int64_t grain = per > 0 ? (GATHER_GRAIN + per - 1) / per : 1;
    if (per > 0 && N == 0) return check_axis_indices(idx, N);   /* every index is out */
    if (per > 0) pf_parallel_for(O, grain, gather_task, &j);
    return j.bad ? check_axis_indices(idx, N) : PF_OK;
}

/* idx, src and y viewed as (O, K, I), (O, K, I) and (O, N, I): y[o, idx, i] = src, or
 * += src where add, over y zeroed first where zero */
static int scatter_into(const pf_args *a, int add, int zero) {
    const pf_tensor *idx = a->inputs[0], *src = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(src, "src"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(src, y->dtype, "src"));
    PF_CHECK(y->ndim == 3, PF_ERR_SHAPE, "y must be viewed as (outer, axis, inner)");
    int64_t O = y->shape[0], N = y->shape[1], I = y->shape[2];
    int64_t K = src->ndim == 3 ? src->shape[1] : -1;
    PF_TRY(check_oki(src, O, K, I, "src"));
    PF_TRY(check_oki(idx, O, K, I, "indices"));
    PF_TRY(check_index_layout(idx));
    PF_CHECK(!add || y->dtype != PF_BOOL, PF_ERR_DTYPE, "scatter_add does not take bool");
    int64_t blocks = (I + 63) / 64;
    axis_job j = {idx, (const char *)src->data, (char *)y->data, N, K, I, blocks, 0,
                  pf_dtype_size(y->dtype), y->dtype, add, zero, 0};
    int64_t per = (K + (zero ? N : 0)) * (I < 64 ? I : 64);
    int64_t grain = per > 0 ? (GATHER_GRAIN + per - 1) / per : 1;
    if (O * blocks > 0 && (K > 0 || zero)) pf_parallel_for(O * blocks, grain, scatter_task, &j);
    return j.bad ? check_axis_indices(idx, N) : PF_OK;   /* names the first index out */
}

/* "scatter_axis": inputs indices (O, K, I), src (O, K, I) contiguous; outputs y (O, N, I),
 * updated in place: y[o, idx, i] = src (iattr[0] = 0) or += src (iattr[0] = 1). Repeated
 * indices: the last write wins (assign) or all add up. An index out of range fails the call
 * after the others were written. */
static int k_scatter_axis(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    return scatter_into(a, a->iattr[0] != 0, 0);
}

/* "gather_axis_grad": inputs indices (O, K, I), g (O, K, I) contiguous; outputs dx (O, N, I):
 * zeros with g added at the indices (repeats add up), in one pass over dx. */
static int k_gather_axis_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_float(a->outputs[0], "dx"));
    return scatter_into(a, 1, 1);
}

/* ---- pad: every output element read once from its source, or the constant ----
 * "pad": inputs x (contiguous, nd >= 1 dims), maps (int64, contiguous: for each dim in turn,
 * the source index of each output index along it, -1 for the constant); outputs y
 * (contiguous). iattr: begin, count: along the last dim, y[begin : begin + count] is the
 * source row itself (copied whole); fattr[0]: the constant. */
typedef struct {
    const pf_tensor *x, *y;
    const int64_t *maps;
    int64_t begin, count;
    double value;
} pad_job;

/* n bytes from s to d (not overlapping), for rows short enough that calling memcpy costs
 * more than the copy: 64-byte moves, the last one overlapping the one before. */
static inline void copy_small(char *d, const char *s, size_t n) {
    size_t step = n >= 64 ? 64 : n >= 16 ? 16 : n >= 8 ? 8 : n >= 4 ? 4 : 1, k = 0;
    switch (step) {
    case 64:
        for (; k + 64 <= n; k += 64) memcpy(d + k, s + k, 64);
        if (k < n) memcpy(d + n - 64, s + n - 64, 64);
        break;
    case 16:
        for (; k + 16 <= n; k += 16) memcpy(d + k, s + k, 16);
        if (k < n) memcpy(d + n - 16, s + n - 16, 16);
        break;
    case 8: memcpy(d, s, 8); memcpy(d + n - 8, s + n - 8, 8); break;
    case 4: memcpy(d, s, 4); memcpy(d + n - 4, s + n - 4, 4); break;
    default: for (; k < n; k++) d[k] = s[k]; break;
    }
}

static inline void copy_bytes(char *d, const char *s, size_t n) {
    if (n <= 4096) copy_small(d, s, n);
    else memcpy(d, s, n);
}

/* Where a task's rows start and how they map to the source (see pad_task). */
typedef struct {
    int nd;                                 /* at least 2: a 1-D pad is one row of a 2-D one */
    const int64_t *map[PF_MAX_DIMS], *last, *hmap;
    int64_t xstride[PF_MAX_DIMS], at[PF_MAX_DIMS], W, H, hstride;
} pad_cursor;

/* The rows of one run differ only in the second-to-last dim: the outer dims' offset is found
 * once a run, the row's own from that dim's map. ROW(row, out) writes one output row from
 * its source row; VALUE is the constant as a T. */
#define PAD_ROWS(T, VALUE, ROW)                                                                \
    do {                                                                                       \
        const T *src = (const T *)j->x->data;                                                  \
        T *dst = (T *)j->y->data;                                                              \
        T value = (VALUE);                                                                     \
        int nd = q->nd;                                                                        \
        int64_t W = q->W, H = q->H, *at = q->at;                                               \
        for (int64_t r = begin; r < end;) {                                                    \
            int64_t offset = 0, hole = 0;                                                      \
            for (int d = 0; d < nd - 2; d++) {                                                 \
                int64_t s = q->map[d][at[d]];                                                  \
                hole |= s < 0;                                                                 \
                offset += s * q->xstride[d];                                                   \
            }                                                                                  \
            int64_t h = at[nd - 2], stop = r + (H - h) < end ? r + (H - h) : end;              \
            for (; r < stop; r++, h++) {                                                       \
                T *out = dst + r * W;                                                          \
                int64_t s = q->hmap[h];                                                        \
                if (hole || s < 0) {                                                           \
                    for (int64_t k = 0; k < W; k++) out[k] = value;                            \
                    continue;                                                                  \
                }                                                                              \
                const T *row = src + offset + s * q->hstride;                                  \
                ROW;                                                                           \
            }                                                                                  \
            at[nd - 2] = h;                                                                    \
            for (int d = nd - 2; d > 0 && at[d] == j->y->shape[d]; d--) {                      \
                at[d] = 0;                                                                     \
                at[d - 1]++;                                                                   \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* the border from the last dim's map, the interior copied whole */
#define PAD_ROW_SCALAR                                                                         \
    do {                                                                                       \
        const int64_t *last = q->last;                                                         \
        int64_t b = j->begin, c = j->count;                                                    \
        for (int64_t k = 0; k < b; k++) out[k] = last[k] < 0 ? value : row[last[k]];           \
        copy_bytes((char *)(out + b), (const char *)row, (size_t)c * sizeof *out);              \
        for (int64_t k = b + c; k < W; k++) out[k] = last[k] < 0 ? value : row[last[k]];       \
    } while (0)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define PAD_AVX512 __attribute__((target("avx512f")))

/* 4-byte elements, rows at least 32 wide with both borders within 16 elements: a row is its
 * first and last 16 outputs, each one permute of a 16-element source window (the first and
 * last 16 of the source row; masked-off lanes take the constant), and the interior between
 * them moved in 16-element pieces. The scalar border loop paid a load and a branch per
 * element: a third of a reflect pad's time on 56-wide rows. */
typedef struct {
    __m512i left_idx, right_idx, fill;
    __mmask16 left_keep, right_keep;
} pad_edges;

/* 1 where this pad's last dim suits the vector rows, with the two permutes in *e */
static PAD_AVX512 int pad_edges_for(const pad_job *j, const int64_t *last, int64_t W,
                                    pad_edges *e) {
    int64_t n = j->x->shape[j->x->ndim - 1], b = j->begin, c = j->count;
    if (pf_dtype_size(j->y->dtype) != 4 || n < 16 || W < 32 || c != n || b > 16 ||
        W - b - c > 16)
        return 0;
    int32_t left[16], right[16];
    __mmask16 lk = 0, rk = 0;
    for (int k = 0; k < 16; k++) {
        int64_t s = last[k], t = last[W - 16 + k];      /* the interior maps to itself too */
        if (s >= 16 || (t >= 0 && t < n - 16)) return 0;
        left[k] = s < 0 ? 0 : (int32_t)s;
        right[k] = t < 0 ? 0 : (int32_t)(t - (n - 16));
        lk |= (__mmask16)((s >= 0) << k);
        rk |= (__mmask16)((t >= 0) << k);
    }
    e->left_idx = _mm512_loadu_si512(left);
    e->right_idx = _mm512_loadu_si512(right);
    e->left_keep = lk;
    e->right_keep = rk;
    if (j->y->dtype == PF_FLOAT32) e->fill = _mm512_castps_si512(_mm512_set1_ps((float)j->value));
    else e->fill = _mm512_set1_epi32((int32_t)j->value);
    return 1;
}

static inline PAD_AVX512 void pad_row_avx512(const pad_edges *e, const int32_t *row, int32_t *out,
                                      int64_t n, int64_t W, int64_t b) {
    __m512i lo = _mm512_loadu_si512(row), hi = _mm512_loadu_si512(row + n - 16);
    _mm512_storeu_si512(out, _mm512_mask_permutexvar_epi32(e->fill, e->left_keep,
                                                           e->left_idx, lo));
    const int32_t *src = row + 16 - b;
    int64_t k = 16;
    for (; k + 16 <= W - 16; k += 16)
        _mm512_storeu_si512(out + k, _mm512_loadu_si512(src + k - 16));
    if (k < W - 16) {
        __mmask16 m = (__mmask16)((1u << (W - 16 - k)) - 1);
        _mm512_mask_storeu_epi32(out + k, m, _mm512_maskz_loadu_epi32(m, src + k - 16));
    }
    _mm512_storeu_si512(out + W - 16, _mm512_mask_permutexvar_epi32(e->fill, e->right_keep,
                                                                    e->right_idx, hi));
}

static PAD_AVX512 int pad_rows_avx512(const pad_job *j, pad_cursor *q, int64_t begin,
                                      int64_t end) {
    static int has_avx512 = -1;
    if (has_avx512 < 0) has_avx512 = __builtin_cpu_supports("avx512f") != 0;
    pad_edges e;
    if (!has_avx512 || !pad_edges_for(j, q->last, q->W, &e)) return 0;
    int64_t n = j->x->shape[j->x->ndim - 1], b = j->begin;
    PAD_ROWS(int32_t, _mm512_cvtsi512_si32(e.fill), pad_row_avx512(&e, row, out, n, W, b));
    return 1;
}
#else
static int pad_rows_avx512(const pad_job *j, pad_cursor *q, int64_t begin, int64_t end) {
    return 0;
}
#endif

static PF_HOT void pad_task(void *p, int64_t begin, int64_t end) {
    const pad_job *j = (const pad_job *)p;
    pad_cursor cursor = {0}, *q = &cursor;
    int nd = j->y->ndim;
    const int64_t *m = j->maps;
    for (int d = 0; d < nd; d++) {
        q->map[d] = m;
        m += j->y->shape[d];
    }
    for (int64_t d = nd - 1, acc = 1; d >= 0; d--) {
        q->xstride[d] = acc;
        acc *= j->x->shape[d];
    }
    q->last = q->map[nd - 1];
    q->W = j->y->shape[nd - 1];
    /* a 1-D pad is one row under a second-to-last dim of size 1 that maps to itself */
    static const int64_t one_row = 0;
    q->hmap = nd >= 2 ? q->map[nd - 2] : &one_row;
    q->H = nd >= 2 ? j->y->shape[nd - 2] : 1;
    q->hstride = nd >= 2 ? q->xstride[nd - 2] : 0;
    q->nd = nd < 2 ? 2 : nd;
    /* the output row's index over the outer dims, from `begin` once, then counted up */
    int64_t rest = begin;
    for (int d = nd - 2; d >= 0; d--) {
        q->at[d] = rest % j->y->shape[d];
        rest /= j->y->shape[d];
    }
    switch (pf_dtype_size(j->y->dtype)) {
    case 1: PAD_ROWS(uint8_t, (uint8_t)j->value, PAD_ROW_SCALAR); break;
    case 4:
        if (pad_rows_avx512(j, q, begin, end)) break;
        if (j->y->dtype == PF_FLOAT32) PAD_ROWS(float, (float)j->value, PAD_ROW_SCALAR);
        else PAD_ROWS(int32_t, (int32_t)j->value, PAD_ROW_SCALAR);
        break;
    default:
        if (j->y->dtype == PF_FLOAT64) PAD_ROWS(double, (double)j->value, PAD_ROW_SCALAR);
        else PAD_ROWS(int64_t, (int64_t)j->value, PAD_ROW_SCALAR);
        break;
    }
}

static int k_pad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 2, 1));
    const pf_tensor *x = a->inputs[0], *maps = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(maps, "maps"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_TRY(pf_check_dtype(maps, PF_INT64, "maps"));
    PF_CHECK(x->ndim == y->ndim && x->ndim >= 1, PF_ERR_SHAPE,
             "x and y must have one rank of at least 1 (got %d and %d)", x->ndim, y->ndim);
    int nd = y->ndim;
    int64_t total = 0;
    for (int d = 0; d < nd; d++) total += y->shape[d];
    PF_CHECK(pf_numel(maps) == total, PF_ERR_SHAPE, "maps has %lld entries, expected %lld",
             (long long)pf_numel(maps), (long long)total);
    const int64_t *m = (const int64_t *)maps->data;
    for (int d = 0; d < nd; d++) {
        for (int64_t i = 0; i < y->shape[d]; i++)
            PF_CHECK(m[i] >= -1 && m[i] < x->shape[d], PF_ERR_INDEX,
                     "maps: source index %lld for output %lld of dim %d is out of range for "
                     "size %lld", (long long)m[i], (long long)i, d, (long long)x->shape[d]);
        m += y->shape[d];
    }
    int64_t begin = a->iattr[0], count = a->iattr[1], W = y->shape[nd - 1];
    PF_CHECK(begin >= 0 && count >= 0 && begin + count <= W && count <= x->shape[nd - 1],
             PF_ERR_ARGUMENT, "the interior [%lld, %lld) does not fit the last dims %lld, %lld",
             (long long)begin, (long long)(begin + count), (long long)W,
             (long long)x->shape[nd - 1]);
    if (pf_numel(y) == 0) return PF_OK;
    pad_job j = {x, y, (const int64_t *)maps->data, begin, count, a->fattr[0]};
    int64_t rows = pf_numel(y) / W;
    pf_parallel_for(rows, W > 0 ? (16384 + W - 1) / W : 1, pad_task, &j);
    return PF_OK;
}

/* ---- pad_grad: the gradient of a pad, one pass: dx[a] = the sum of g over every output
 * position whose source is a ----
 * "pad_grad": inputs g (contiguous, the padded shape), maps (the pad's: int64, for each dim
 * in turn the source index of each output index along it, -1 for none); outputs dx
 * (contiguous, x's shape). iattr: for each dim, the begin of its interior (along it,
 * g[begin : begin + n] reads x[0 : n] in order). Each task owns whole rows of dx and sums the
 * rows of g whose source they are, so no two tasks write one element. */
typedef struct {
    const pf_tensor *g, *dx;
    const int64_t *maps, *begins;
} pad_grad_job;

/* Along one dim of g (size m, interior [b, b + n)): the first position after `after` that
 * reads source index a, or -1. The interior reads itself, so only the borders are searched. */
static inline int64_t next_reader(const int64_t *map, int64_t m, int64_t b, int64_t n,
                                  int64_t a, int64_t after) {
    int64_t j = after + 1;
    for (; j < b; j++)
        if (map[j] == a) return j;
    if (j <= b + a) return b + a;
    for (j = j > b + n ? j : b + n; j < m; j++)
        if (map[j] == a) return j;
    return -1;
}

#define PAD_GRAD_ROWS(T)                                                                       \
    do {                                                                                       \
        const T *gd = (const T *)j->g->data;                                                   \
        T *dd = (T *)j->dx->data;                                                              \
        for (int64_t r = begin; r < end; r++) {                                                \
            T *out = dd + r * n;                                                               \
            for (int d = 0; d < no; d++) row[d] = next_reader(map[d], G[d], B[d], X[d], at[d], -1); \
            for (int first = 1;; first = 0) {                                                  \
                const T *in = gd;                                                              \
                for (int d = 0; d < no; d++) in += row[d] * gstride[d];                        \
                if (first) copy_bytes((char *)out, (const char *)(in + b), (size_t)n * sizeof(T)); \
                else for (int64_t k = 0; k < n; k++) out[k] += in[b + k];                      \
                for (int64_t k = 0; k < b; k++)                                                \
                    if (last[k] >= 0) out[last[k]] += in[k];                                   \
                for (int64_t k = b + n; k < W; k++)                                            \
                    if (last[k] >= 0) out[last[k]] += in[k];                                   \
                int d = no - 1;                                                                \
                for (; d >= 0; d--) {                                                          \
                    row[d] = next_reader(map[d], G[d], B[d], X[d], at[d], row[d]);             \
                    if (row[d] >= 0) break;                                                    \
                    row[d] = next_reader(map[d], G[d], B[d], X[d], at[d], -1);                 \
                }                                                                              \
                if (d < 0) break;                                                              \
            }                                                                                  \
            for (int d = no - 1; d >= 0 && ++at[d] == X[d]; d--) at[d] = 0;                    \
        }                                                                                      \
    } while (0)

static PF_HOT void pad_grad_task(void *p, int64_t begin, int64_t end) {
    const pad_grad_job *j = (const pad_grad_job *)p;
    int nd = j->dx->ndim, no = nd - 1;
    const int64_t *map[PF_MAX_DIMS] = {NULL}, *G = j->g->shape, *X = j->dx->shape, *B = j->begins;
    int64_t gstride[PF_MAX_DIMS], acc = 1, row[PF_MAX_DIMS], at[PF_MAX_DIMS] = {0};
    const int64_t *m = j->maps;
    for (int d = 0; d < nd; d++) {
        map[d] = m;
        m += G[d];
    }
    for (int d = nd - 1; d >= 0; d--) {
        gstride[d] = acc;
        acc *= G[d];
    }
    const int64_t *last = map[nd - 1];
    int64_t W = G[nd - 1], n = X[nd - 1], b = B[nd - 1], rest = begin;
    for (int d = no - 1; d >= 0; d--) {
        at[d] = rest % X[d];
        rest /= X[d];
    }
    if (j->dx->dtype == PF_FLOAT32) PAD_GRAD_ROWS(float);
    else PAD_GRAD_ROWS(double);
}

static int k_pad_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *g = a->inputs[0], *maps = a->inputs[1], *dx = a->outputs[0];
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_contiguous(maps, "maps"));
    PF_TRY(pf_check_contiguous(dx, "dx"));
    PF_TRY(pf_check_float(dx, "dx"));
    PF_TRY(pf_check_dtype(g, dx->dtype, "grad"));
    PF_TRY(pf_check_dtype(maps, PF_INT64, "maps"));
    PF_CHECK(g->ndim == dx->ndim && g->ndim >= 1, PF_ERR_SHAPE,
             "grad and dx must have one rank of at least 1 (got %d and %d)", g->ndim, dx->ndim);
    int nd = dx->ndim;
    PF_TRY(pf_check_attrs(a, nd, 0));
    int64_t total = 0;
    for (int d = 0; d < nd; d++) total += g->shape[d];
    PF_CHECK(pf_numel(maps) == total, PF_ERR_SHAPE, "maps has %lld entries, expected %lld",
             (long long)pf_numel(maps), (long long)total);
    const int64_t *m = (const int64_t *)maps->data;
    for (int d = 0; d < nd; d++) {
        int64_t G = g->shape[d], X = dx->shape[d], b = a->iattr[d];
        PF_CHECK(b >= 0 && b <= G && X <= G - b, PF_ERR_ARGUMENT,
                 "dim %d: the interior [%lld, %lld + %lld) does not fit grad's size %lld", d,
                 (long long)b, (long long)b, (long long)X, (long long)G);
        for (int64_t i = 0; i < G; i++)
            PF_CHECK(m[i] >= -1 && m[i] < X && (i < b || i >= b + X || m[i] == i - b),
                     PF_ERR_INDEX, "maps: source index %lld for output %lld of dim %d is out "
                     "of range for size %lld or not the interior's own", (long long)m[i],
                     (long long)i, d, (long long)X);
        m += G;
    }
    if (pf_numel(dx) == 0) return PF_OK;
    pad_grad_job j = {g, dx, (const int64_t *)maps->data, a->iattr};
    int64_t n = dx->shape[nd - 1], rows = pf_numel(dx) / n;
    pf_parallel_for(rows, (16384 + n - 1) / n, pad_grad_task, &j);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_layout[] = {
    {"copy", k_copy, NULL},
    {"take", k_take, NULL},
    {"take_grad", k_take_grad, NULL},
    {"gather_axis", k_gather_axis, NULL},
    {"scatter_axis", k_scatter_axis, NULL},
    {"gather_axis_grad", k_gather_axis_grad, NULL},
    {"pad", k_pad, NULL},
    {"pad_grad", k_pad_grad, NULL},
    {NULL, NULL, NULL},
};
