/* scan.cu -- the CUDA twin of scan.c's "cumulate": running sums and products along the middle
 * axis of an (O, R, I) view, one thread per (o, i) line in axis order (float32 accumulates in
 * double, integers in int64, as on the CPU). iattr[0]: 0 sum, 1 product; iattr[1]: 1 runs from
 * the end of the axis.
 *
 * "sort" (values and int64 indices along the axis; iattr[0]: 1 descending): each element's
 * place is its rank, the number of elements of its line that sort before it -- NaN above every
 * number, ties by position, as scan.c's comparators, so it is stable and needs no scratch.
 * One thread per element, R comparisons each: fine for the rows topk/argsort see (thousands),
 * quadratic for very long ones. */
#include "internal.cuh"

template <typename T> struct scan_acc { typedef double type; };
template <> struct scan_acc<int32_t> { typedef int64_t type; };
template <> struct scan_acc<int64_t> { typedef int64_t type; };

template <typename T>
__global__ void cumulate_kernel(int64_t O, int64_t R, int64_t I, int prod, int reverse,
                                const T *x, T *y) {
    typedef typename scan_acc<T>::type ACC;
    PF_GRID_LOOP(line, O * I) {
        int64_t o = line / I, i = line % I;
        const T *xs = x + o * R * I + i;
        T *ys = y + o * R * I + i;
        ACC acc = prod ? (ACC)1 : (ACC)0;
        for (int64_t k = 0; k < R; k++) {
            int64_t r = reverse ? R - 1 - k : k;
            acc = prod ? (ACC)(acc * (ACC)xs[r * I]) : (ACC)(acc + (ACC)xs[r * I]);
            ys[r * I] = (T)acc;
        }
    }
}

static int k_cumulate(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    PF_TRY(pf_check_attrs(a, 2, 0));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "%s must be viewed as (outer, axis, inner), got %d dims",
             "x", x->ndim);
    PF_CHECK(x->dtype != PF_BOOL, PF_ERR_DTYPE, "%s: bool is not taken (cast it first)", "x");
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_CHECK(pf_numel(y) == pf_numel(x), PF_ERR_SHAPE, "y has %lld elements, x %lld",
             (long long)pf_numel(y), (long long)pf_numel(x));
    PF_CHECK(a->iattr[0] == 0 || a->iattr[0] == 1, PF_ERR_ARGUMENT, "unknown scan %lld",
             (long long)a->iattr[0]);
    int64_t O = x->shape[0], R = x->shape[1], I = x->shape[2];
    if (pf_numel(x) == 0) return PF_OK;
    int prod = a->iattr[0] == 1, reverse = a->iattr[1] != 0;
    switch (x->dtype) {
    case PF_FLOAT32:
        cumulate_kernel<float><<<pf_blocks(O * I), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, prod, reverse, (const float *)x->data, (float *)y->data);
        break;
    case PF_FLOAT64:
        cumulate_kernel<double><<<pf_blocks(O * I), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, prod, reverse, (const double *)x->data, (double *)y->data);
        break;
    case PF_INT32:
        cumulate_kernel<int32_t><<<pf_blocks(O * I), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, prod, reverse, (const int32_t *)x->data, (int32_t *)y->data);
        break;
    default:
        cumulate_kernel<int64_t><<<pf_blocks(O * I), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, prod, reverse, (const int64_t *)x->data, (int64_t *)y->data);
        break;
    }
    return PF_LAUNCHED();
}

/* a (value, position) sorts before b: scan.c's cmp_float_* / cmp_int_* */
template <typename T>
__device__ __forceinline__ bool precedes(T a, int64_t ia, T b, int64_t ib, int descending) {
    bool an = a != a, bn = b != b;   /* never true for integers */
    if (an != bn) return descending ? an : bn;
    if (!an && a != b) return descending ? a > b : a < b;
    return ia < ib;
}

template <typename T>
__global__ void sort_kernel(int64_t O, int64_t R, int64_t I, int descending, const T *x,
                            T *values, int64_t *indices) {
    PF_GRID_LOOP(e, O * R * I) {
        int64_t i = e % I, r = (e / I) % R, o = e / (R * I);
        const T *line = x + o * R * I + i;
        T v = line[r * I];
        int64_t rank = 0;
        for (int64_t s = 0; s < R; s++)
            rank += s != r && precedes(line[s * I], s, v, r, descending);
        values[o * R * I + rank * I + i] = v;
        indices[o * R * I + rank * I + i] = r;
    }
}

static int k_sort(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 2));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *v = a->outputs[0], *ix = a->outputs[1];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "%s must be viewed as (outer, axis, inner), got %d dims",
             "x", x->ndim);
    PF_CHECK(x->dtype != PF_BOOL, PF_ERR_DTYPE, "%s: bool is not taken (cast it first)", "x");
    PF_TRY(pf_check_contiguous(v, "values"));
    PF_TRY(pf_check_contiguous(ix, "indices"));
    PF_TRY(pf_check_dtype(v, x->dtype, "values"));
    PF_TRY(pf_check_dtype(ix, PF_INT64, "indices"));
    PF_CHECK(pf_numel(v) == pf_numel(x) && pf_numel(ix) == pf_numel(x), PF_ERR_SHAPE,
             "values and indices must have x's %lld elements", (long long)pf_numel(x));
    int64_t n = pf_numel(x), O = x->shape[0], R = x->shape[1], I = x->shape[2];
    if (n == 0) return PF_OK;
    int desc = a->iattr[0] != 0;
    int64_t *idx = (int64_t *)ix->data;
    switch (x->dtype) {
    case PF_FLOAT32:
        sort_kernel<float><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, desc, (const float *)x->data, (float *)v->data, idx);
        break;
    case PF_FLOAT64:
        sort_kernel<double><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, desc, (const double *)x->data, (double *)v->data, idx);
        break;
    case PF_INT32:
        sort_kernel<int32_t><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, desc, (const int32_t *)x->data, (int32_t *)v->data, idx);
        break;
    default:
        sort_kernel<int64_t><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            O, R, I, desc, (const int64_t *)x->data, (int64_t *)v->data, idx);
        break;
    }
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_scan[] = {
    {"cumulate", k_cumulate, NULL},
    {"sort", k_sort, NULL},
    {NULL, NULL, NULL},
};
