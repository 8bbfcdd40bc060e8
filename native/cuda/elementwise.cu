/* elementwise.cu -- the CUDA twin of elementwise.c: unary maps, activation gradients,
 * broadcasting binary ops and comparisons, where, cast, fill and the fused elementwise program
 * interpreter (one thread per output element, registers in registers). Formulas follow
 * elementwise_t.h, so CPU and GPU agree to float rounding. */
#include "internal.cuh"

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946
#define GELU_C 0.7978845608028654
#define GELU_K 0.044715

template <typename T> __device__ __forceinline__ T unary_op(int op, T x, T p0, T p1) {
    switch (op) {
    case PF_U_IDENTITY: return x;
    case PF_U_NEG: return -x;
    case PF_U_EXP: return exp(x);
    case PF_U_LOG: return log(x);
    case PF_U_SQRT: return sqrt(x);
    case PF_U_RSQRT: return (T)1 / sqrt(x);
    case PF_U_ABS: return fabs(x);
    case PF_U_SIGN: return (T)((x > 0) - (x < 0));    /* NaN gives 0, as PyTorch's */
    case PF_U_SQUARE: return x * x;
    case PF_U_RECIPROCAL: return (T)1 / x;
    case PF_U_SIN: return sin(x);
    case PF_U_COS: return cos(x);
    case PF_U_TANH: return tanh(x);
    case PF_U_SIGMOID: return pf_sigmoid(x);
    case PF_U_RELU: return x > 0 || x != x ? x : (T)0;
    case PF_U_LEAKY_RELU: return x > 0 ? x : p0 * x;
    case PF_U_GELU: return pf_gelu(x);
    case PF_U_SOFTPLUS: return pf_softplus(x);
    case PF_U_ERF: return erf(x);
    case PF_U_FLOOR: return floor(x);
    case PF_U_CEIL: return ceil(x);
    case PF_U_ROUND: return rint(x);
    case PF_U_AFFINE: return p0 * x + p1;
    case PF_U_POW_SCALAR:
        return p0 == (T)2 ? x * x : p0 == (T)1 ? x : p0 == (T)0.5 ? sqrt(x) : pow(x, p0);
    case PF_U_CLIP: { T v = x < p0 ? p0 : x; return v > p1 ? p1 : v; }
    case PF_U_LOG1P: return log1p(x);
    case PF_U_EXPM1: return expm1(x);
    case PF_U_TRUNC: return trunc(x);
    case PF_U_TAN: return (T)tan((double)x);
    case PF_U_ASIN: return (T)asin((double)x);
    case PF_U_ACOS: return (T)acos((double)x);
    case PF_U_ATAN: return (T)atan((double)x);
    case PF_U_SINH: return (T)sinh((double)x);
    case PF_U_COSH: return (T)cosh((double)x);
    case PF_U_ASINH: return (T)asinh((double)x);
    case PF_U_ACOSH: return (T)acosh((double)x);
    case PF_U_ATANH: return (T)atanh((double)x);
    case PF_U_LOG2: return (T)log2((double)x);
    case PF_U_LOG10: return (T)log10((double)x);
    case PF_U_EXP2: return (T)exp2((double)x);
    case PF_U_ELU: return x > 0 ? x : p0 * expm1(x);
    case PF_U_SELU: return (T)SELU_SCALE * (x > 0 ? x : (T)SELU_ALPHA * expm1(x));
    case PF_U_CELU: return x > 0 ? x : p0 * expm1(x / p0);
    case PF_U_SILU: return x * pf_sigmoid(x);
    case PF_U_MISH: return x * tanh(pf_softplus(x));
    case PF_U_SOFTSIGN: return x / ((T)1 + fabs(x));
    case PF_U_LOGSIGMOID: return -pf_softplus(-x);
    case PF_U_HARDSIGMOID: {
        T v = x / (T)6 + (T)0.5;
        return v != v ? v : v < 0 ? (T)0 : v > 1 ? (T)1 : v;
    }
    case PF_U_HARDSWISH: {
        T v = x + (T)3;
        v = v < 0 ? (T)0 : v > 6 ? (T)6 : v;
        return x * v / (T)6;
    }
    case PF_U_GELU_TANH: {
        T u = (T)GELU_C * (x + (T)GELU_K * x * x * x);
        return (T)0.5 * x * ((T)1 + tanh(u));
    }
    default: return x;
    }
}

template <typename T> __device__ __forceinline__ T unary_grad_op(int op, T v, T g, T p0) {
    switch (op) {
    case PF_G_RELU: return v > 0 ? g : (T)0;
    case PF_G_LEAKY_RELU: return v > 0 ? g : p0 * g;
    case PF_G_SIGMOID: return g * v * ((T)1 - v);
    case PF_G_TANH: return g * ((T)1 - v * v);
    case PF_G_GELU: return g * pf_gelu_grad(v);
    case PF_G_SOFTPLUS: return g * pf_sigmoid(v);
    case PF_G_ELU: return v > 0 ? g : g * p0 * exp(v);
    case PF_G_SELU: return g * (T)SELU_SCALE * (v > 0 ? (T)1 : (T)SELU_ALPHA * exp(v));
    case PF_G_CELU: return v > 0 ? g : g * exp(v / p0);
    case PF_G_SILU: { T s = pf_sigmoid(v); return g * s * ((T)1 + v * ((T)1 - s)); }
    case PF_G_MISH: {
        T t = tanh(pf_softplus(v));
        return g * (t + v * pf_sigmoid(v) * ((T)1 - t * t));
    }
    case PF_G_SOFTSIGN: { T d = (T)1 + fabs(v); return g / (d * d); }
    case PF_G_LOGSIGMOID: return g * pf_sigmoid(-v);
    case PF_G_HARDSIGMOID: return v > (T)-3 && v < (T)3 ? g / (T)6 : (T)0;
    case PF_G_HARDSWISH: return v <= (T)-3 ? (T)0 : v < (T)3 ? g * (v / (T)3 + (T)0.5) : g;
    case PF_G_GELU_TANH: {
        T x2 = v * v;
        T t = tanh((T)GELU_C * (v + (T)GELU_K * x2 * v));
        T du = (T)GELU_C * ((T)1 + (T)(3 * GELU_K) * x2);
        return g * ((T)0.5 * ((T)1 + t) + (T)0.5 * v * ((T)1 - t * t) * du);
    }
    default: return g;
    }
}

/* float floor division and remainder as PyTorch (elementwise_t.h) */
template <typename T> __device__ __forceinline__ T float_floor_div(T a, T b) {
    if (b == 0) return a / b;
    T mod = fmod(a, b);
    T div = (a - mod) / b;
    if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
    if (div == 0) return copysign((T)0, a / b);
    T fl = floor(div);
    return div - fl > (T)0.5 ? fl + 1 : fl;
}
template <typename T> __device__ __forceinline__ T float_remainder(T a, T b) {
    T mod = fmod(a, b);
    return mod != 0 && (b < 0) != (mod < 0) ? mod + b : mod;
}

template <typename T> struct binary_impl {   /* float32 / float64: every op */
    static __device__ __forceinline__ T run(int op, T x, T y) {
        switch (op) {
        case PF_B_ADD: return x + y;
        case PF_B_SUB: return x - y;
        case PF_B_MUL: return x * y;
        case PF_B_DIV: return x / y;
        case PF_B_POW: return pow(x, y);
        case PF_B_MAX: return x > y || x != x ? x : y;
        case PF_B_MIN: return x < y || x != x ? x : y;
        case PF_B_EQ: return (T)(x == y);
        case PF_B_NE: return (T)(x != y);
        case PF_B_LT: return (T)(x < y);
        case PF_B_LE: return (T)(x <= y);
        case PF_B_GT: return (T)(x > y);
        case PF_B_GE: return (T)(x >= y);
        case PF_B_FMOD: return fmod(x, y);
        case PF_B_REMAINDER: return float_remainder(x, y);
        case PF_B_FLOOR_DIVIDE: return float_floor_div(x, y);
        case PF_B_ATAN2: return (T)atan2((double)x, (double)y);
        case PF_B_HYPOT: return (T)hypot((double)x, (double)y);
        default: return x;
        }
    }
};

template <typename T, typename UT> struct int_binary {
    static __device__ __forceinline__ T run(int op, T x, T y) {
        switch (op) {
        case PF_B_ADD: return (T)((UT)x + (UT)y);
        case PF_B_SUB: return (T)((UT)x - (UT)y);
        case PF_B_MUL: return (T)((UT)x * (UT)y);
        case PF_B_POW: {
            if (y < 0) return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
            UT r = 1, base = (UT)x;
            while (y) {
                if (y & 1) r *= base;
                base *= base;
                y >>= 1;
            }
            return (T)r;
        }
        case PF_B_MAX: return x > y ? x : y;
        case PF_B_MIN: return x < y ? x : y;
        case PF_B_EQ: return (T)(x == y);
        case PF_B_NE: return (T)(x != y);
        case PF_B_LT: return (T)(x < y);
        case PF_B_LE: return (T)(x <= y);
        case PF_B_GT: return (T)(x > y);
        case PF_B_GE: return (T)(x >= y);
        /* zero divisors were reported (the result is left 0); -1 by negation: MIN / -1 traps */
        case PF_B_FMOD: return y == 0 || y == -1 ? 0 : x % y;
        case PF_B_REMAINDER: {
            if (y == 0 || y == -1) return 0;
            T r = x % y;
            return r != 0 && (r < 0) != (y < 0) ? r + y : r;
        }
        case PF_B_FLOOR_DIVIDE: {
            if (y == 0) return 0;
            if (y == -1) return (T)((UT)0 - (UT)x);
            T q = x / y;
            return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
        }
        case PF_B_BITWISE_AND: return x & y;
        case PF_B_BITWISE_OR: return x | y;
        case PF_B_BITWISE_XOR: return x ^ y;
        default: return x;
        }
    }
};
template <> struct binary_impl<int32_t> : int_binary<int32_t, uint32_t> {};
template <> struct binary_impl<int64_t> : int_binary<int64_t, uint64_t> {};
template <> struct binary_impl<uint8_t> {
    static __device__ __forceinline__ uint8_t run(int op, uint8_t x, uint8_t y) {
        switch (op) {
        case PF_B_MAX: return x > y ? x : y;
        case PF_B_MIN: case PF_B_MUL: return x < y ? x : y;
        case PF_B_EQ: return x == y;
        case PF_B_NE: return x != y;
        case PF_B_LT: return x < y;
        case PF_B_LE: return x <= y;
        case PF_B_GT: return x > y;
        case PF_B_GE: return x >= y;
        default: return x;
        }
    }
};

template <typename T> __device__ __forceinline__ uint8_t compare_op(int op, T x, T y) {
    switch (op) {
    case PF_B_EQ: return x == y;
    case PF_B_NE: return x != y;
    case PF_B_LT: return x < y;
    case PF_B_LE: return x <= y;
    case PF_B_GT: return x > y;
    default: return x >= y;
    }
}

/* ---- unary / unary_grad ---- */
template <typename T>
__global__ void unary_kernel(int op, int64_t n, const T *x, T *y, T p0, T p1) {
    PF_GRID_LOOP(i, n) y[i] = unary_op<T>(op, x[i], p0, p1);
}

template <typename T>
__global__ void unary_grad_kernel(int op, int64_t n, const T *v, const T *g, T *dx, T p0) {
    PF_GRID_LOOP(i, n) dx[i] = unary_grad_op<T>(op, v[i], g[i], p0);
}

static int k_unary(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_float(x, "x"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= 0 && op < PF_U_COUNT, PF_ERR_ARGUMENT, "unknown unary op %d", op);
    int64_t n = pf_numel(x);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, unary_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        op, n, (const T *)x->data, (T *)y->data, (T)pf_fattr_or(a, 0, 0), (T)pf_fattr_or(a, 1, 0)));
    return PF_LAUNCHED();
}

static int k_unary_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *v = a->inputs[0], *g = a->inputs[1], *dx = a->outputs[0];
    PF_TRY(pf_check_contiguous(v, "x"));
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_contiguous(dx, "dx"));
    PF_TRY(pf_check_float(v, "x"));
    PF_TRY(pf_check_dtype(g, v->dtype, "grad"));
    PF_TRY(pf_check_dtype(dx, v->dtype, "dx"));
    PF_TRY(pf_check_same_shape(v, g, "x", "grad"));
    PF_TRY(pf_check_same_shape(v, dx, "x", "dx"));
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= 0 && op < PF_G_COUNT, PF_ERR_ARGUMENT, "unknown activation gradient op %d", op);
    int64_t n = pf_numel(v);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(v->dtype, T, unary_grad_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(op, n, (const T *)v->data, (const T *)g->data,
                                     (T *)dx->data, (T)pf_fattr_or(a, 0, 0)));
    return PF_LAUNCHED();
}

/* ---- broadcasting binary, compare, where ---- */
template <typename T>
__global__ void binary_kernel(int op, pf_dwalk w, int64_t n, const T *a, const T *b, T *c,
                              int check_zero, int kernel) {
    PF_GRID_LOOP(i, n) {
        int64_t off[3];
        pf_dwalk_offsets(w, i, off);
        T y = b[off[1]];
        if (check_zero && y == 0) pf_dev_fail(PF_DEV_ZERO_DIVISOR, kernel, 0, i, 0);
        c[off[2]] = binary_impl<T>::run(op, a[off[0]], y);
    }
}

template <typename T>
__global__ void compare_kernel(int op, pf_dwalk w, int64_t n, const T *a, const T *b,
                               uint8_t *c) {
    PF_GRID_LOOP(i, n) {
        int64_t off[3];
        pf_dwalk_offsets(w, i, off);
        c[off[2]] = compare_op<T>(op, a[off[0]], b[off[1]]);
    }
}

static int op_allowed(int op, int dtype) {
    if (dtype == PF_FLOAT32 || dtype == PF_FLOAT64) return op < PF_B_BITWISE_AND;
    if (dtype == PF_BOOL)
        return op == PF_B_MAX || op == PF_B_MIN || op == PF_B_MUL ||
               (op >= PF_B_EQ && op <= PF_B_GE);
    return op != PF_B_DIV && op != PF_B_ATAN2 && op != PF_B_HYPOT;
}

static int k_binary(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *y = a->inputs[1], *c = a->outputs[0];
    PF_TRY(pf_check_contiguous(c, "out"));
    PF_TRY(pf_check_broadcast_input(x, c, "a"));
    PF_TRY(pf_check_broadcast_input(y, c, "b"));
    PF_TRY(pf_check_dtype(y, x->dtype, "b"));
    PF_TRY(pf_check_dtype(c, x->dtype, "out"));
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= 0 && op < PF_B_COUNT, PF_ERR_ARGUMENT, "unknown binary op %d", op);
    PF_CHECK(op_allowed(op, x->dtype), PF_ERR_DTYPE, "binary op %d does not take %s inputs", op,
             pf_dtype_name(x->dtype));
    int check_zero = (x->dtype == PF_INT32 || x->dtype == PF_INT64) &&
                     (op == PF_B_FMOD || op == PF_B_REMAINDER || op == PF_B_FLOOR_DIVIDE);
    const int64_t *strides[3] = {x->strides, y->strides, c->strides};
    pf_dwalk w;
    pf_dwalk_init(&w, c->ndim, c->shape, 3, strides);
    int64_t n = pf_numel(c);
    if (n == 0) return PF_OK;
    PF_ANY_DISPATCH(x->dtype, T, binary_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        op, w, n, (const T *)x->data, (const T *)y->data, (T *)c->data, check_zero,
        pf_current_kernel()));
    return PF_LAUNCHED();
}

static int k_compare(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *y = a->inputs[1], *c = a->outputs[0];
    PF_TRY(pf_check_contiguous(c, "out"));
    PF_TRY(pf_check_broadcast_input(x, c, "a"));
    PF_TRY(pf_check_broadcast_input(y, c, "b"));
    PF_TRY(pf_check_dtype(y, x->dtype, "b"));
    PF_TRY(pf_check_dtype(c, PF_BOOL, "out"));
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= PF_B_EQ && op <= PF_B_GE, PF_ERR_ARGUMENT, "unknown comparison %d", op);
    const int64_t *strides[3] = {x->strides, y->strides, c->strides};
    pf_dwalk w;
    pf_dwalk_init(&w, c->ndim, c->shape, 3, strides);
    int64_t n = pf_numel(c);
    if (n == 0) return PF_OK;
    PF_ANY_DISPATCH(x->dtype, T, compare_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        op, w, n, (const T *)x->data, (const T *)y->data, (uint8_t *)c->data));
    return PF_LAUNCHED();
}

template <typename C, typename T>
__global__ void where_kernel(pf_dwalk w, int64_t n, const C *cond, const T *a, const T *b,
                             T *out) {
    PF_GRID_LOOP(i, n) {
        int64_t off[4];
        pf_dwalk_offsets(w, i, off);
        out[off[3]] = cond[off[0]] != 0 ? a[off[1]] : b[off[2]];
    }
}

/* moved as bits: one instantiation per element size serves every value dtype */
template <typename C>
static void launch_where(const pf_dwalk &w, int64_t n, const void *c, const pf_tensor *x,
                         const pf_tensor *y, void *o) {
    switch (pf_dtype_size(x->dtype)) {
    case 1:
        where_kernel<C, uint8_t><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            w, n, (const C *)c, (const uint8_t *)x->data, (const uint8_t *)y->data, (uint8_t *)o);
        break;
    case 4:
        where_kernel<C, uint32_t><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            w, n, (const C *)c, (const uint32_t *)x->data, (const uint32_t *)y->data,
            (uint32_t *)o);
        break;
    default:
        where_kernel<C, uint64_t><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
            w, n, (const C *)c, (const uint64_t *)x->data, (const uint64_t *)y->data,
            (uint64_t *)o);
        break;
    }
}

static int k_where(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 3, 3, 1));
    const pf_tensor *c = a->inputs[0], *x = a->inputs[1], *y = a->inputs[2], *o = a->outputs[0];
    PF_TRY(pf_check_contiguous(o, "out"));
    PF_TRY(pf_check_broadcast_input(c, o, "cond"));
    PF_TRY(pf_check_broadcast_input(x, o, "a"));
    PF_TRY(pf_check_broadcast_input(y, o, "b"));
    PF_TRY(pf_check_dtype(y, x->dtype, "b"));
    PF_TRY(pf_check_dtype(o, x->dtype, "out"));
    const int64_t *strides[4] = {c->strides, x->strides, y->strides, o->strides};
    pf_dwalk w;
    pf_dwalk_init(&w, o->ndim, o->shape, 4, strides);
    int64_t n = pf_numel(o);
    if (n == 0) return PF_OK;
    PF_ANY_DISPATCH(c->dtype, C, launch_where<C>(w, n, c->data, x, y, o->data));
    return PF_LAUNCHED();
}

/* ---- cast, fill ---- */
template <typename TI, typename TO>
__global__ void cast_kernel(int64_t n, const TI *x, TO *y, int to_bool, double lim, int kernel) {
    PF_GRID_LOOP(i, n) {
        TI v = x[i];
        if (to_bool) {
            y[i] = (TO)(v != 0);   /* nonzero (NaN too) is true, as in PyTorch */
            continue;
        }
        if (lim > 0) {   /* float to int: what C cannot convert is an error, not garbage */
            double d = (double)v;
            if (!(d == d && d < lim && d >= -lim)) {
                pf_dev_fail(PF_DEV_CAST, kernel, 0, i, 0);
                y[i] = 0;
                continue;
            }
        }
        y[i] = (TO)v;
    }
}

template <typename TI>
static void launch_cast(int64_t n, const void *x, const pf_tensor *y, int from_float) {
    double lim = 0;
    if (from_float && y->dtype == PF_INT32) lim = 2147483648.0;
    if (from_float && y->dtype == PF_INT64) lim = 9223372036854775808.0;
    int to_bool = y->dtype == PF_BOOL, k = pf_current_kernel();
    PF_ANY_DISPATCH(y->dtype, TO, cast_kernel<TI, TO><<<pf_blocks(n), PF_THREADS, 0,
                    pf_stream()>>>(n, (const TI *)x, (TO *)y->data, to_bool, lim, k));
}

static int k_cast(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    int64_t n = pf_numel(x);
    if (n == 0) return PF_OK;
    int from_float = x->dtype == PF_FLOAT32 || x->dtype == PF_FLOAT64;
    PF_ANY_DISPATCH(x->dtype, TI, launch_cast<TI>(n, x->data, y, from_float));
    return PF_LAUNCHED();
}

template <typename T> __global__ void fill_kernel(int64_t n, T *y, T v) {
    PF_GRID_LOOP(i, n) y[i] = v;
}

static int k_fill(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 0, 0, 1));
    PF_TRY(pf_check_attrs(a, 0, 1));
    const pf_tensor *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(y, "y"));
    int64_t n = pf_numel(y);
    double v = a->fattr[0];
    PF_CHECK(y->dtype == PF_FLOAT32 || y->dtype == PF_FLOAT64 ||
             (v == v && v >= -9223372036854775808.0 && v < 9223372036854775808.0 &&
              (y->dtype == PF_INT64 || (v >= -2147483648.0 && v < 2147483648.0))),
             PF_ERR_NUMERIC, "cannot fill %s with %g", pf_dtype_name(y->dtype), v);
    if (n == 0) return PF_OK;
    if (y->dtype == PF_BOOL) {
        PF_CHECK(cudaMemsetAsync(y->data, v != 0, (size_t)n, pf_stream()) == cudaSuccess,
                 PF_ERR_INTERNAL, "cudaMemsetAsync failed");
        return PF_LAUNCHED();
    }
    PF_ANY_DISPATCH(y->dtype, T, fill_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        n, (T *)y->data, (T)v));
    return PF_LAUNCHED();
}

/* ---- fused elementwise programs ----
 * The program and its constants travel by value in the launch (kernel parameters, so a CUDA
 * graph keeps its own copy): at most FUSED_MAX_INSTR instructions and FUSED_MAX_CONST
 * constants, which the front end's fusion pass stays far below. */
#define FUSED_MAX_INSTR 96
#define FUSED_MAX_CONST 64

struct fused_prog {
    int n_instr, n_in, n_out, n_const;
    int16_t code[FUSED_MAX_INSTR][PF_FUSED_WORDS];
    double consts[FUSED_MAX_CONST];
    const void *ptr[PF_WALK_MAX_OPS];
};

template <typename T>
__global__ void fused_kernel(fused_prog p, pf_dwalk w, int64_t n) {
    PF_GRID_LOOP(i, n) {
        int64_t off[PF_WALK_MAX_OPS];
        pf_dwalk_offsets(w, i, off);
        T regs[PF_FUSED_REGS];
        for (int k = 0; k < p.n_instr; k++) {
            const int16_t *ins = p.code[k];
            int dst = ins[1], ra = ins[2], rb = ins[3], op = ins[4], fs = ins[5];
            T p0 = fs >= 0 && fs < p.n_const ? (T)p.consts[fs] : (T)0;
            T p1 = fs >= 0 && fs + 1 < p.n_const ? (T)p.consts[fs + 1] : (T)0;
            switch (ins[0]) {
            case PF_F_LOAD: regs[dst] = ((const T *)p.ptr[ra])[off[ra]]; break;
            case PF_F_CONST: regs[dst] = p0; break;
            case PF_F_UNARY: regs[dst] = unary_op<T>(op, regs[ra], p0, p1); break;
            case PF_F_BINARY: regs[dst] = binary_impl<T>::run(op, regs[ra], regs[rb]); break;
            case PF_F_UNARY_GRAD: regs[dst] = unary_grad_op<T>(op, regs[ra], regs[rb], p0); break;
            default: ((T *)p.ptr[p.n_in + rb])[off[p.n_in + rb]] = regs[ra]; break;
            }
        }
    }
}

static int k_fused(const pf_args *a) {
    PF_CHECK(a != NULL, PF_ERR_ARGUMENT, "null argument block");
    PF_CHECK(a->n_in >= 0 && a->n_in <= PF_MAX_IN && a->n_out >= 1 && a->n_out <= PF_MAX_OUT &&
             a->n_in + a->n_out <= PF_WALK_MAX_OPS, PF_ERR_ARGUMENT,
             "bad operand counts %d in / %d out", a->n_in, a->n_out);
    PF_CHECK(a->n_iattr > 0 && a->n_iattr % PF_FUSED_WORDS == 0 && a->iattr, PF_ERR_ARGUMENT,
             "program length %d is not a multiple of %d", a->n_iattr, PF_FUSED_WORDS);
    const pf_tensor *out0 = a->outputs[0];
    PF_CHECK(out0 != NULL, PF_ERR_ARGUMENT, "output 0 is null");
    PF_TRY(pf_check_float(out0, "output 0"));
    for (int o = 0; o < a->n_out; o++) {
        PF_CHECK(a->outputs[o] != NULL, PF_ERR_ARGUMENT, "output %d is null", o);
        PF_TRY(pf_check_contiguous(a->outputs[o], "output"));
        PF_TRY(pf_check_same_shape(a->outputs[o], out0, "output", "output 0"));
        PF_TRY(pf_check_dtype(a->outputs[o], out0->dtype, "output"));
    }
    for (int i = 0; i < a->n_in; i++) {
        PF_CHECK(a->inputs[i] != NULL, PF_ERR_ARGUMENT, "input %d is null", i);
        PF_TRY(pf_check_broadcast_input(a->inputs[i], out0, "input"));
        PF_TRY(pf_check_dtype(a->inputs[i], out0->dtype, "input"));
    }
    int64_t n_instr = a->n_iattr / PF_FUSED_WORDS;
    PF_CHECK(n_instr <= FUSED_MAX_INSTR && a->n_fattr <= FUSED_MAX_CONST, PF_ERR_ARGUMENT,
             "a program of %lld instructions and %d constants is beyond the CUDA interpreter's "
             "%d and %d", (long long)n_instr, a->n_fattr, FUSED_MAX_INSTR, FUSED_MAX_CONST);
    fused_prog p;
    memset(&p, 0, sizeof p);
    p.n_instr = (int)n_instr;
    p.n_in = a->n_in;
    p.n_out = a->n_out;
    p.n_const = a->n_fattr;
    for (int64_t k = 0; k < n_instr; k++) {
        const int64_t *ins = a->iattr + k * PF_FUSED_WORDS;
        int64_t opc = ins[0], dst = ins[1], ra = ins[2], rb = ins[3], op = ins[4], fs = ins[5];
        PF_CHECK(dst >= 0 && dst < PF_FUSED_REGS, PF_ERR_ARGUMENT, "instruction %lld: bad register",
                 (long long)k);
        switch (opc) {
        case PF_F_LOAD:
            PF_CHECK(ra >= 0 && ra < a->n_in, PF_ERR_ARGUMENT, "instruction %lld: bad input",
                     (long long)k);
            break;
        case PF_F_CONST:
            PF_CHECK(fs >= 0 && fs < a->n_fattr, PF_ERR_ARGUMENT, "instruction %lld: bad constant",
                     (long long)k);
            break;
        case PF_F_UNARY:
            PF_CHECK(ra >= 0 && ra < PF_FUSED_REGS && op >= 0 && op < PF_U_COUNT, PF_ERR_ARGUMENT,
                     "instruction %lld: bad unary", (long long)k);
            break;
        case PF_F_BINARY:
            PF_CHECK(ra >= 0 && ra < PF_FUSED_REGS && rb >= 0 && rb < PF_FUSED_REGS && op >= 0 &&
                     op < PF_B_BITWISE_AND,     /* (fused programs are float: no bitwise ops) */
                     PF_ERR_ARGUMENT, "instruction %lld: bad binary", (long long)k);
            break;
        case PF_F_UNARY_GRAD:
            PF_CHECK(ra >= 0 && ra < PF_FUSED_REGS && rb >= 0 && rb < PF_FUSED_REGS && op >= 0 &&
                     op < PF_G_COUNT, PF_ERR_ARGUMENT, "instruction %lld: bad gradient op",
                     (long long)k);
            break;
        case PF_F_STORE:
            PF_CHECK(ra >= 0 && ra < PF_FUSED_REGS && rb >= 0 && rb < a->n_out, PF_ERR_ARGUMENT,
                     "instruction %lld: bad store", (long long)k);
            break;
        default:
            return pf_fail(PF_ERR_ARGUMENT, "instruction %lld: unknown opcode %lld", (long long)k,
                           (long long)opc);
        }
        /* fslot may be -1 or beyond n_fattr ("no parameter"): clamp to -1 for the int16 word */
        int64_t fs_word = fs >= 0 && fs < FUSED_MAX_CONST ? fs : -1;
        int64_t words[PF_FUSED_WORDS] = {opc, dst, ra, rb, op, fs_word};
        for (int w = 0; w < PF_FUSED_WORDS; w++) p.code[k][w] = (int16_t)words[w];
    }
    for (int c = 0; c < a->n_fattr; c++) p.consts[c] = a->fattr[c];
    const int64_t *strides[PF_WALK_MAX_OPS];
    for (int i = 0; i < a->n_in; i++) {
        strides[i] = a->inputs[i]->strides;
        p.ptr[i] = a->inputs[i]->data;
    }
    for (int o = 0; o < a->n_out; o++) {
        strides[a->n_in + o] = a->outputs[o]->strides;
        p.ptr[a->n_in + o] = a->outputs[o]->data;
    }
    pf_dwalk w;
    pf_dwalk_init(&w, out0->ndim, out0->shape, a->n_in + a->n_out, strides);
    int64_t n = pf_numel(out0);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(out0->dtype, T, fused_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(p, w, n));
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_elementwise[] = {
    {"unary", k_unary, NULL},
    {"unary_grad", k_unary_grad, NULL},
    {"binary", k_binary, NULL},
    {"compare", k_compare, NULL},
    {"where", k_where, NULL},
    {"cast", k_cast, NULL},
    {"fill", k_fill, NULL},
    {"fused", k_fused, NULL},
    {NULL, NULL, NULL},
};
