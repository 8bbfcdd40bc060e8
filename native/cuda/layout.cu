/* layout.cu -- the CUDA twin of layout.c: strided copies (transpose, slicing, concatenation and
 * their gradients), gathers along an axis (integer indexing, embeddings) with their
 * scatters, and padding with its gradient. Scatters that may add into one element twice give each (outer, inner) column to
 * one thread, which walks the indices in order: no atomics, so results are deterministic (and
 * equal to the CPU's order of additions). */
#include "internal.cuh"

template <typename T>
__global__ void copy_kernel(pf_dwalk w, int64_t n, const T *x, T *y, int accumulate) {
    PF_GRID_LOOP(i, n) {
        int64_t off[2];
        pf_dwalk_offsets(w, i, off);
        if (accumulate) y[off[1]] += x[off[0]];
        else y[off[1]] = x[off[0]];
    }
}

/* layout.c's check: writes through t must not land twice on one element */
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
    int64_t span = 0;
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
    int accumulate = a->n_iattr > 0 && a->iattr && a->iattr[0] != 0;
    const int64_t *strides[2] = {x->strides, y->strides};
    pf_dwalk w;
    pf_dwalk_init(&w, y->ndim, y->shape, 2, strides);
    int64_t n = pf_numel(y);
    if (n == 0) return PF_OK;
    PF_ANY_DISPATCH(x->dtype, T, copy_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        w, n, (const T *)x->data, (T *)y->data, accumulate));
    return PF_LAUNCHED();
}

template <typename I>
__device__ __forceinline__ int64_t checked_index(const I *idx, int64_t pos, int64_t n,
                                                 int negative_ok, int kernel) {
    int64_t v = (int64_t)idx[pos];
    if (v < (negative_ok ? -n : 0) || v >= n) {
        pf_dev_fail(PF_DEV_INDEX, kernel, v, pos, n);
        return -1;
    }
    return v < 0 ? v + n : v;
}

static int check_index_dtype(const pf_tensor *idx) {
    PF_TRY(pf_check_contiguous(idx, "indices"));
    PF_CHECK(idx->dtype == PF_INT32 || idx->dtype == PF_INT64, PF_ERR_DTYPE,
             "indices must be int32 or int64, got %s", pf_dtype_name(idx->dtype));
    return PF_OK;
}

#define INDEX_DISPATCH(dtype, I, ...)                                                          \
    do {                                                                                       \
        if ((dtype) == PF_INT32) { typedef int32_t I; __VA_ARGS__; }                          \
        else { typedef int64_t I; __VA_ARGS__; }                                              \
    } while (0)

/* elements are moved as bits: one instantiation per element size */
#define SIZE_DISPATCH(size, T, ...)                                                            \
    do {                                                                                       \
        if ((size) == 1) { typedef uint8_t T; __VA_ARGS__; }                                  \
        else if ((size) == 4) { typedef uint32_t T; __VA_ARGS__; }                            \
        else { typedef uint64_t T; __VA_ARGS__; }                                             \
    } while (0)

/* "take": y[o, k, i] = x[o, idx[k], i] */
template <typename T, typename I>
__global__ void take_kernel(int64_t O, int64_t N, int64_t K, int64_t In, const T *x,
                            const I *idx, T *y, int kernel) {
    PF_GRID_LOOP(e, O * K * In) {
        int64_t i = e % In, k = (e / In) % K, o = e / (In * K);
        int64_t t = checked_index(idx, k, N, 0, kernel);
        y[e] = t < 0 ? (T)0 : x[(o * N + t) * In + i];
    }
}

static int k_take(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *x = a->inputs[0], *idx = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, axis, inner)");
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_TRY(check_index_dtype(idx));
    int64_t O = x->shape[0], N = x->shape[1], In = x->shape[2], K = pf_numel(idx);
    PF_CHECK(pf_numel(y) == O * K * In, PF_ERR_SHAPE, "y has %lld elements, expected %lld",
             (long long)pf_numel(y), (long long)(O * K * In));
    int64_t n = O * K * In;
    if (n == 0) return PF_OK;
    int kid = pf_current_kernel();
    SIZE_DISPATCH(pf_dtype_size(x->dtype), T, INDEX_DISPATCH(idx->dtype, I,
        take_kernel<T, I><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            O, N, K, In, (const T *)x->data, (const I *)idx->data, (T *)y->data, kid)));
    return PF_LAUNCHED();
}

/* "take_grad": dx[o, idx[k], i] += g[o, k, i]; one thread per (o, i) column */
template <typename T, typename I>
__global__ void take_grad_kernel(int64_t O, int64_t N, int64_t K, int64_t In, const I *idx,
                                 const T *g, T *dx, int kernel) {
    PF_GRID_LOOP(col, O * In) {
        int64_t o = col / In, i = col % In;
        for (int64_t k = 0; k < K; k++) {
            int64_t t = checked_index(idx, k, N, 0, kernel);
            if (t >= 0) dx[(o * N + t) * In + i] += g[(o * K + k) * In + i];
        }
    }
}

static int k_take_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *idx = a->inputs[0], *g = a->inputs[1], *dx = a->outputs[0];
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_contiguous(dx, "dx"));
    PF_TRY(pf_check_float(dx, "dx"));
    PF_TRY(pf_check_dtype(g, dx->dtype, "grad"));
    PF_CHECK(dx->ndim == 3, PF_ERR_SHAPE, "dx must be viewed as (outer, axis, inner)");
    PF_TRY(check_index_dtype(idx));
    int64_t O = dx->shape[0], N = dx->shape[1], In = dx->shape[2], K = pf_numel(idx);
    PF_CHECK(pf_numel(g) == O * K * In, PF_ERR_SHAPE, "grad has %lld elements, expected %lld",
             (long long)pf_numel(g), (long long)(O * K * In));
    int accumulate = a->n_iattr > 0 && a->iattr && a->iattr[0] != 0;
    if (!accumulate && pf_numel(dx) > 0)
        PF_CHECK(cudaMemsetAsync(dx->data, 0, (size_t)pf_numel(dx) * pf_dtype_size(dx->dtype),
                                 pf_stream()) == cudaSuccess, PF_ERR_INTERNAL,
                 "cudaMemsetAsync failed");
    if (O * In == 0) return PF_LAUNCHED();
    int kid = pf_current_kernel();
    PF_FLOAT_DISPATCH(dx->dtype, T, INDEX_DISPATCH(idx->dtype, I,
        take_grad_kernel<T, I><<<pf_blocks(O * In), PF_THREADS, 0, pf_stream()>>>(
            O, N, K, In, (const I *)idx->data, (const T *)g->data, (T *)dx->data, kid)));
    return PF_LAUNCHED();
}

static int check_oki(const pf_tensor *t, int64_t O, int64_t K, int64_t I, const char *what) {
    PF_CHECK(t->ndim == 3 && t->shape[0] == O && t->shape[1] == K && t->shape[2] == I,
             PF_ERR_SHAPE, "%s must be viewed as (%lld, %lld, %lld)", what, (long long)O,
             (long long)K, (long long)I);
    return PF_OK;
}

/* "gather_axis": y[o, k, i] = x[o, idx[o, k, i], i] (negative indices count from the end) */
template <typename T, typename I>
__global__ void gather_axis_kernel(int64_t O, int64_t N, int64_t K, int64_t In, const T *x,
                                   const I *idx, T *y, int kernel) {
    PF_GRID_LOOP(e, O * K * In) {
        int64_t i = e % In, o = e / (In * K);
        int64_t t = checked_index(idx, e, N, 1, kernel);
        y[e] = t < 0 ? (T)0 : x[(o * N + t) * In + i];
    }
}

static int k_gather_axis(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *x = a->inputs[0], *idx = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, axis, inner)");
    int64_t O = x->shape[0], N = x->shape[1], In = x->shape[2];
    int64_t K = y->ndim == 3 ? y->shape[1] : -1;
    PF_TRY(check_oki(y, O, K, In, "y"));
    PF_TRY(check_oki(idx, O, K, In, "indices"));
    PF_TRY(check_index_dtype(idx));
    int64_t n = O * K * In;
    if (n == 0) return PF_OK;
    int kid = pf_current_kernel();
    SIZE_DISPATCH(pf_dtype_size(x->dtype), T, INDEX_DISPATCH(idx->dtype, I,
        gather_axis_kernel<T, I><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            O, N, K, In, (const T *)x->data, (const I *)idx->data, (T *)y->data, kid)));
    return PF_LAUNCHED();
}

/* "scatter_axis": y[o, idx[o, k, i], i] = src (or += src); one thread per (o, i) column, k in
 * order, so the last write wins as on the CPU */
template <typename T, typename I>
__global__ void scatter_axis_kernel(int64_t O, int64_t N, int64_t K, int64_t In, const I *idx,
                                    const T *src, T *y, int add, int kernel) {
    PF_GRID_LOOP(col, O * In) {
        int64_t o = col / In, i = col % In;
        for (int64_t k = 0; k < K; k++) {
            int64_t r = (o * K + k) * In + i;
            int64_t t = checked_index(idx, r, N, 1, kernel);
            if (t < 0) continue;
            T *d = y + (o * N + t) * In + i;
            *d = add ? (T)(*d + src[r]) : src[r];
        }
    }
}

/* y[o, idx, i] = src, or += src where add, over y zeroed first where zero */
static int scatter_into(const pf_args *a, int add, int zero) {
    const pf_tensor *idx = a->inputs[0], *src = a->inputs[1], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(src, "src"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(src, y->dtype, "src"));
    PF_CHECK(y->ndim == 3, PF_ERR_SHAPE, "y must be viewed as (outer, axis, inner)");
    int64_t O = y->shape[0], N = y->shape[1], In = y->shape[2];
    int64_t K = src->ndim == 3 ? src->shape[1] : -1;
    PF_TRY(check_oki(src, O, K, In, "src"));
    PF_TRY(check_oki(idx, O, K, In, "indices"));
    PF_TRY(check_index_dtype(idx));
    PF_CHECK(!add || y->dtype != PF_BOOL, PF_ERR_DTYPE, "scatter_add does not take bool");
    if (zero && pf_numel(y) > 0)
        PF_CHECK(cudaMemsetAsync(y->data, 0, (size_t)pf_numel(y) * pf_dtype_size(y->dtype),
                                 pf_stream()) == cudaSuccess, PF_ERR_INTERNAL,
                 "cudaMemsetAsync failed");
    if (O * In == 0 || K == 0) return zero ? PF_LAUNCHED() : PF_OK;
    int kid = pf_current_kernel();
    PF_ANY_DISPATCH(y->dtype, T, INDEX_DISPATCH(idx->dtype, I,
        scatter_axis_kernel<T, I><<<pf_blocks(O * In), PF_THREADS, 0, pf_stream()>>>(
            O, N, K, In, (const I *)idx->data, (const T *)src->data, (T *)y->data, add, kid)));
    return PF_LAUNCHED();
}

static int k_scatter_axis(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    return scatter_into(a, a->iattr[0] != 0, 0);
}

/* "gather_axis_grad": dx = zeros with g added at the indices (repeats add up) */
static int k_gather_axis_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_float(a->outputs[0], "dx"));
    return scatter_into(a, 1, 1);
}

/* "pad": y[idx] = x[maps[0][idx0], ..., maps[nd-1][idx_last]], or the constant where a map
 * says -1; the last dim's interior [begin, begin + count) is the source row itself (layout.c).
 * The maps are checked on the device. The front end builds them in host memory (cached per
 * shape), so host maps are copied over first, in stream order. */
struct pad_geom {
    int nd;
    int64_t yshape[PF_MAX_DIMS], xshape[PF_MAX_DIMS], xstride[PF_MAX_DIMS], mapstart[PF_MAX_DIMS];
    int64_t begin, count;
};

/* The pad's maps on the device: the front end builds them in host memory (cached per shape),
 * so host maps are copied over first, in stream order; *copy is that copy (or NULL), to be
 * freed after the launch. */
static int device_maps(const pf_tensor *maps, int64_t total, const int64_t **dev, void **copy) {
    *dev = (const int64_t *)maps->data;
    *copy = NULL;
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, maps->data) != cudaSuccess) {
        cudaGetLastError();   /* not a CUDA pointer at all: treated as host memory */
        attr.type = cudaMemoryTypeUnregistered;
    }
    if (attr.type == cudaMemoryTypeUnregistered || attr.type == cudaMemoryTypeHost) {
        size_t bytes = (size_t)total * sizeof(int64_t);
        PF_CHECK(cudaMallocAsync(copy, bytes, pf_stream()) == cudaSuccess &&
                 cudaMemcpyAsync(*copy, maps->data, bytes, cudaMemcpyHostToDevice,
                                 pf_stream()) == cudaSuccess,
                 PF_ERR_MEMORY, "cannot copy the %lld pad maps to the device", (long long)total);
        *dev = (const int64_t *)*copy;
    }
    return PF_OK;
}

template <typename T>
__global__ void pad_kernel(pad_geom g, const T *x, const int64_t *maps, T *y, T value,
                           int64_t n, int kernel) {
    PF_GRID_LOOP(e, n) {
        int64_t rest = e, offset = 0;
        int hole = 0;
        for (int d = g.nd - 1; d >= 0; d--) {
            int64_t i = rest % g.yshape[d];
            rest /= g.yshape[d];
            int64_t s = d == g.nd - 1 && i >= g.begin && i < g.begin + g.count
                            ? i - g.begin : maps[g.mapstart[d] + i];
            if (s < -1 || s >= g.xshape[d]) {
                pf_dev_fail(PF_DEV_INDEX, kernel, s, g.mapstart[d] + i, g.xshape[d]);
                s = -1;
            }
            hole |= s < 0;
            offset += s * g.xstride[d];
        }
        y[e] = hole ? value : x[offset];
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
    pad_geom g;
    memset(&g, 0, sizeof g);
    g.nd = y->ndim;
    int64_t total = 0, acc = 1;
    for (int d = 0; d < g.nd; d++) {
        g.yshape[d] = y->shape[d];
        g.xshape[d] = x->shape[d];
        g.mapstart[d] = total;
        total += y->shape[d];
    }
    for (int d = g.nd - 1; d >= 0; d--) {
        g.xstride[d] = acc;
        acc *= x->shape[d];
    }
    PF_CHECK(pf_numel(maps) == total, PF_ERR_SHAPE, "maps has %lld entries, expected %lld",
             (long long)pf_numel(maps), (long long)total);
    g.begin = a->iattr[0];
    g.count = a->iattr[1];
    int64_t W = y->shape[g.nd - 1];
    PF_CHECK(g.begin >= 0 && g.count >= 0 && g.begin + g.count <= W &&
             g.count <= x->shape[g.nd - 1], PF_ERR_ARGUMENT,
             "the interior [%lld, %lld) does not fit the last dims %lld, %lld",
             (long long)g.begin, (long long)(g.begin + g.count), (long long)W,
             (long long)x->shape[g.nd - 1]);
    int64_t n = pf_numel(y);
    if (n == 0) return PF_OK;
    const int64_t *dev_maps;
    void *copy;
    PF_TRY(device_maps(maps, total, &dev_maps, &copy));
    int kid = pf_current_kernel();
    PF_ANY_DISPATCH(y->dtype, T, pad_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        g, (const T *)x->data, dev_maps, (T *)y->data, (T)a->fattr[0], n, kid));
    int status = PF_LAUNCHED();
    if (copy) cudaFreeAsync(copy, pf_stream());
    return status;
}

/* "pad_grad": dx[a] = the sum of g over every padded position that reads a (layout.c); one
 * thread per element of dx. iattr: each dim's interior begin. Whatever the maps hold, the
 * positions read stay inside g; maps in host memory are checked there (layout.c's check). */
struct pad_grad_geom {
    int nd;
    int64_t gshape[PF_MAX_DIMS], xshape[PF_MAX_DIMS], gstride[PF_MAX_DIMS];
    int64_t mapstart[PF_MAX_DIMS], begin[PF_MAX_DIMS];
};

/* along one dim of g: the first position after `after` that reads source index a, or -1 */
__device__ __forceinline__ int64_t next_reader(const int64_t *map, int64_t m, int64_t b,
                                               int64_t n, int64_t a, int64_t after) {
    int64_t j = after + 1;
    for (; j < b; j++)
        if (map[j] == a) return j;
    if (j <= b + a) return b + a;
    for (j = j > b + n ? j : b + n; j < m; j++)
        if (map[j] == a) return j;
    return -1;
}

template <typename T>
__global__ void pad_grad_kernel(pad_grad_geom g, const T *grad, const int64_t *maps, T *dx,
                                int64_t n) {
    PF_GRID_LOOP(e, n) {
        int64_t at[PF_MAX_DIMS], pos[PF_MAX_DIMS], rest = e;
        for (int d = g.nd - 1; d >= 0; d--) {
            at[d] = rest % g.xshape[d];
            rest /= g.xshape[d];
        }
        for (int d = 0; d < g.nd; d++)
            pos[d] = next_reader(maps + g.mapstart[d], g.gshape[d], g.begin[d], g.xshape[d],
                                 at[d], -1);
        T sum = 0;
        for (;;) {
            int64_t off = 0;
            for (int d = 0; d < g.nd; d++) off += pos[d] * g.gstride[d];
            sum += grad[off];
            int d = g.nd - 1;
            for (; d >= 0; d--) {
                const int64_t *map = maps + g.mapstart[d];
                pos[d] = next_reader(map, g.gshape[d], g.begin[d], g.xshape[d], at[d], pos[d]);
                if (pos[d] >= 0) break;
                pos[d] = next_reader(map, g.gshape[d], g.begin[d], g.xshape[d], at[d], -1);
            }
            if (d < 0) break;
        }
        dx[e] = sum;
    }
}

static int check_pad_grad_maps(const int64_t *m, const pad_grad_geom &g) {
    for (int d = 0; d < g.nd; d++) {
        for (int64_t i = 0; i < g.gshape[d]; i++)
            PF_CHECK(m[i] >= -1 && m[i] < g.xshape[d] &&
                     (i < g.begin[d] || i >= g.begin[d] + g.xshape[d] || m[i] == i - g.begin[d]),
                     PF_ERR_INDEX, "maps: source index %lld for output %lld of dim %d is out "
                     "of range for size %lld or not the interior's own", (long long)m[i],
                     (long long)i, d, (long long)g.xshape[d]);
        m += g.gshape[d];
    }
    return PF_OK;
}

static int k_pad_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *gt = a->inputs[0], *maps = a->inputs[1], *dx = a->outputs[0];
    PF_TRY(pf_check_contiguous(gt, "grad"));
    PF_TRY(pf_check_contiguous(maps, "maps"));
    PF_TRY(pf_check_contiguous(dx, "dx"));
    PF_TRY(pf_check_float(dx, "dx"));
    PF_TRY(pf_check_dtype(gt, dx->dtype, "grad"));
    PF_TRY(pf_check_dtype(maps, PF_INT64, "maps"));
    PF_CHECK(gt->ndim == dx->ndim && gt->ndim >= 1, PF_ERR_SHAPE,
             "grad and dx must have one rank of at least 1 (got %d and %d)", gt->ndim, dx->ndim);
    PF_TRY(pf_check_attrs(a, dx->ndim, 0));
    pad_grad_geom g;
    memset(&g, 0, sizeof g);
    g.nd = dx->ndim;
    int64_t total = 0, acc = 1;
    for (int d = g.nd - 1; d >= 0; d--) {
        g.gstride[d] = acc;
        acc *= gt->shape[d];
    }
    for (int d = 0; d < g.nd; d++) {
        g.gshape[d] = gt->shape[d];
        g.xshape[d] = dx->shape[d];
        g.begin[d] = a->iattr[d];
        g.mapstart[d] = total;
        total += gt->shape[d];
        PF_CHECK(g.begin[d] >= 0 && g.begin[d] <= g.gshape[d] &&
                 g.xshape[d] <= g.gshape[d] - g.begin[d], PF_ERR_ARGUMENT,
                 "dim %d: the interior [%lld, %lld + %lld) does not fit grad's size %lld", d,
                 (long long)g.begin[d], (long long)g.begin[d], (long long)g.xshape[d],
                 (long long)g.gshape[d]);
    }
    PF_CHECK(pf_numel(maps) == total, PF_ERR_SHAPE, "maps has %lld entries, expected %lld",
             (long long)pf_numel(maps), (long long)total);
    int64_t n = pf_numel(dx);
    if (n == 0) return PF_OK;
    const int64_t *dev_maps;
    void *copy;
    PF_TRY(device_maps(maps, total, &dev_maps, &copy));
    if (copy) {
        int status = check_pad_grad_maps((const int64_t *)maps->data, g);
        if (status != PF_OK) {
            cudaFreeAsync(copy, pf_stream());
            return status;
        }
    }
    PF_FLOAT_DISPATCH(dx->dtype, T,
        pad_grad_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            g, (const T *)gt->data, dev_maps, (T *)dx->data, n));
    int status = PF_LAUNCHED();
    if (copy) cudaFreeAsync(copy, pf_stream());
    return status;
}

const pf_kernel_entry pf_cuda_kernels_layout[] = {
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
