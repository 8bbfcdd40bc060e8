/* elementwise_t.h -- elementwise loops for one float type. Included by elementwise.c with
 * T (float or double), SFX(name) and the math names M_EXP, M_LOG, ... defined. */

#ifdef T_IS_FLOAT
/* y[i] = op(x[i]) */
static PF_HOT void SFX(unary_loop)(int op, int64_t n, const T *x, T *y, T p0, T p1) {
    switch (op) {
    case PF_U_IDENTITY: for (int64_t i = 0; i < n; i++) y[i] = x[i]; break;
    case PF_U_NEG: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; break;
    case PF_U_EXP: for (int64_t i = 0; i < n; i++) y[i] = M_EXP(x[i]); break;
    case PF_U_LOG: for (int64_t i = 0; i < n; i++) y[i] = M_LOG(x[i]); break;
    case PF_U_SQRT: for (int64_t i = 0; i < n; i++) y[i] = M_SQRT(x[i]); break;
    case PF_U_RSQRT: for (int64_t i = 0; i < n; i++) y[i] = (T)1 / M_SQRT(x[i]); break;
    case PF_U_ABS: for (int64_t i = 0; i < n; i++) y[i] = M_FABS(x[i]); break;
    case PF_U_SIGN:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] != x[i] ? x[i] : (T)((x[i] > 0) - (x[i] < 0));
        break;
    case PF_U_SQUARE: for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i]; break;
    case PF_U_RECIPROCAL: for (int64_t i = 0; i < n; i++) y[i] = (T)1 / x[i]; break;
    case PF_U_SIN: for (int64_t i = 0; i < n; i++) y[i] = M_SIN(x[i]); break;
    case PF_U_COS: for (int64_t i = 0; i < n; i++) y[i] = M_COS(x[i]); break;
    case PF_U_TANH: for (int64_t i = 0; i < n; i++) y[i] = M_TANH(x[i]); break;
    case PF_U_SIGMOID: for (int64_t i = 0; i < n; i++) y[i] = M_SIGMOID(x[i]); break;
    case PF_U_RELU:   /* NaN passes, as in numpy and PyTorch: a NaN must not vanish here */
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 || x[i] != x[i] ? x[i] : (T)0;
        break;
    case PF_U_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : p0 * x[i];
        break;
    case PF_U_GELU: for (int64_t i = 0; i < n; i++) y[i] = M_GELU(x[i]); break;
    case PF_U_SOFTPLUS: for (int64_t i = 0; i < n; i++) y[i] = M_SOFTPLUS(x[i]); break;
    case PF_U_ERF: for (int64_t i = 0; i < n; i++) y[i] = M_ERF(x[i]); break;
    case PF_U_FLOOR: for (int64_t i = 0; i < n; i++) y[i] = M_FLOOR(x[i]); break;
    case PF_U_CEIL: for (int64_t i = 0; i < n; i++) y[i] = M_CEIL(x[i]); break;
    case PF_U_ROUND: for (int64_t i = 0; i < n; i++) y[i] = M_RINT(x[i]); break;
    case PF_U_AFFINE: for (int64_t i = 0; i < n; i++) y[i] = p0 * x[i] + p1; break;
    case PF_U_POW_SCALAR:
        if (p0 == (T)2) for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];
        else if (p0 == (T)1) for (int64_t i = 0; i < n; i++) y[i] = x[i];
        else if (p0 == (T)0.5) for (int64_t i = 0; i < n; i++) y[i] = M_SQRT(x[i]);
        else for (int64_t i = 0; i < n; i++) y[i] = M_POW(x[i], p0);
        break;
    case PF_U_CLIP:
        for (int64_t i = 0; i < n; i++) {
            T v = x[i] < p0 ? p0 : x[i];
            y[i] = v > p1 ? p1 : v;
        }
        break;
    case PF_U_LOG1P: for (int64_t i = 0; i < n; i++) y[i] = M_LOG1P(x[i]); break;
    case PF_U_EXPM1: for (int64_t i = 0; i < n; i++) y[i] = M_EXPM1(x[i]); break;
    default: break;
    }
}

/* dx[i] = g[i] * f'(from x[i] or y[i]) */
static PF_HOT void SFX(unary_grad_loop)(int op, int64_t n, const T *v, const T *g,
                                        T *dx, T p0) {
    switch (op) {
    case PF_G_RELU: for (int64_t i = 0; i < n; i++) dx[i] = v[i] > 0 ? g[i] : (T)0; break;
    case PF_G_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) dx[i] = v[i] > 0 ? g[i] : p0 * g[i];
        break;
    case PF_G_SIGMOID:
        for (int64_t i = 0; i < n; i++) dx[i] = g[i] * v[i] * ((T)1 - v[i]);
        break;
    case PF_G_TANH: for (int64_t i = 0; i < n; i++) dx[i] = g[i] * ((T)1 - v[i] * v[i]); break;
    case PF_G_GELU: for (int64_t i = 0; i < n; i++) dx[i] = g[i] * M_GELU_GRAD(v[i]); break;
    case PF_G_SOFTPLUS: for (int64_t i = 0; i < n; i++) dx[i] = g[i] * M_SIGMOID(v[i]); break;
    default: break;
    }
}

#endif /* T_IS_FLOAT */

/* c[i] = op(a[i*sa], b[i*sb]) for one run of n elements */
#define BIN_LOOP(EXPR)                                                                        \
    do {                                                                                       \
        if (sa == 1 && sb == 1)                                                                \
            for (int64_t i = 0; i < n; i++) { T x = a[i], y = b[i]; c[i] = (EXPR); }          \
        else if (sa == 1 && sb == 0) {                                                         \
            T y = b[0];                                                                        \
            for (int64_t i = 0; i < n; i++) { T x = a[i]; c[i] = (EXPR); }                    \
        } else if (sa == 0 && sb == 1) {                                                       \
            T x = a[0];                                                                        \
            for (int64_t i = 0; i < n; i++) { T y = b[i]; c[i] = (EXPR); }                    \
        } else                                                                                 \
            for (int64_t i = 0; i < n; i++) { T x = a[i * sa], y = b[i * sb]; c[i] = (EXPR); }\
    } while (0)

static PF_HOT void SFX(binary_run)(int op, int64_t n, const T *a, int64_t sa,
                                   const T *b, int64_t sb, T *c) {
    switch (op) {
    case PF_B_ADD: BIN_LOOP(x + y); break;
    case PF_B_SUB: BIN_LOOP(x - y); break;
    case PF_B_MUL: BIN_LOOP(x * y); break;
    case PF_B_DIV: BIN_LOOP(x / y); break;
    case PF_B_POW: BIN_LOOP(BIN_POW(x, y)); break;
    case PF_B_MAX: BIN_LOOP(x > y || x != x ? x : y); break;
    case PF_B_MIN: BIN_LOOP(x < y || x != x ? x : y); break;
    case PF_B_EQ: BIN_LOOP((T)(x == y)); break;
    case PF_B_NE: BIN_LOOP((T)(x != y)); break;
    case PF_B_LT: BIN_LOOP((T)(x < y)); break;
    case PF_B_LE: BIN_LOOP((T)(x <= y)); break;
    case PF_B_GT: BIN_LOOP((T)(x > y)); break;
    case PF_B_GE: BIN_LOOP((T)(x >= y)); break;
    default: break;
    }
}
