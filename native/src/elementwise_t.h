/* elementwise_t.h -- elementwise loops for one element type. Included by elementwise.c with
 * T, SFX(name), one of T_IS_FLOAT / T_IS_INT / T_IS_BOOL, and for floats the math names
 * M_EXP, M_LOG, ... defined. Rarely hot float32 functions (tan, asinh, ...) are evaluated in
 * double and rounded once: libm's float versions do not vectorise either. Not part of the
 * ABI. */

#ifdef T_IS_FLOAT
/* PyTorch's div_floor_floating: floor(a / b) from fmod, so that 5.0 // 0.1 is 49, not 50 */
static inline T SFX(floor_div)(T a, T b) {
    if (b == 0) return a / b;
    T mod = M_FMOD(a, b);
    T div = (a - mod) / b;
    if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
    if (div == 0) return M_COPYSIGN((T)0, a / b);
    T fl = M_FLOOR(div);
    return div - fl > (T)0.5 ? fl + 1 : fl;
}
static inline T SFX(remainder)(T a, T b) {
    T mod = M_FMOD(a, b);
    return mod != 0 && (b < 0) != (mod < 0) ? mod + b : mod;
}
#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946
#define GELU_C 0.7978845608028654   /* sqrt(2 / pi) */
#define GELU_K 0.044715

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
        /* NaN gives 0, as PyTorch's sign (and so abs' gradient there) */
        for (int64_t i = 0; i < n; i++) y[i] = (T)((x[i] > 0) - (x[i] < 0));
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
    case PF_U_SOFTPLUS:   /* PyTorch's threshold: x itself above 20 */
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > (T)20 ? x[i] : M_SOFTPLUS(x[i]);
        break;
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
    case PF_U_TRUNC: for (int64_t i = 0; i < n; i++) y[i] = (T)trunc(x[i]); break;
    case PF_U_TAN: for (int64_t i = 0; i < n; i++) y[i] = (T)tan(x[i]); break;
    case PF_U_ASIN: for (int64_t i = 0; i < n; i++) y[i] = (T)asin(x[i]); break;
    case PF_U_ACOS: for (int64_t i = 0; i < n; i++) y[i] = (T)acos(x[i]); break;
    case PF_U_ATAN: for (int64_t i = 0; i < n; i++) y[i] = (T)atan(x[i]); break;
    case PF_U_SINH: for (int64_t i = 0; i < n; i++) y[i] = (T)sinh(x[i]); break;
    case PF_U_COSH: for (int64_t i = 0; i < n; i++) y[i] = (T)cosh(x[i]); break;
    case PF_U_ASINH: for (int64_t i = 0; i < n; i++) y[i] = (T)asinh(x[i]); break;
    case PF_U_ACOSH: for (int64_t i = 0; i < n; i++) y[i] = (T)acosh(x[i]); break;
    case PF_U_ATANH: for (int64_t i = 0; i < n; i++) y[i] = (T)atanh(x[i]); break;
    case PF_U_LOG2: for (int64_t i = 0; i < n; i++) y[i] = (T)log2(x[i]); break;
    case PF_U_LOG10: for (int64_t i = 0; i < n; i++) y[i] = (T)log10(x[i]); break;
    case PF_U_EXP2: for (int64_t i = 0; i < n; i++) y[i] = (T)exp2(x[i]); break;
    case PF_U_ELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : p0 * M_EXPM1(x[i]);
        break;
    case PF_U_SELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = (T)SELU_SCALE * (x[i] > 0 ? x[i] : (T)SELU_ALPHA * M_EXPM1(x[i]));
        break;
    case PF_U_CELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : p0 * M_EXPM1(x[i] / p0);
        break;
    case PF_U_SILU: for (int64_t i = 0; i < n; i++) y[i] = x[i] * M_SIGMOID(x[i]); break;
    case PF_U_MISH: for (int64_t i = 0; i < n; i++) y[i] = x[i] * M_TANH(M_SOFTPLUS(x[i])); break;
    case PF_U_SOFTSIGN: for (int64_t i = 0; i < n; i++) y[i] = x[i] / ((T)1 + M_FABS(x[i])); break;
    case PF_U_LOGSIGMOID: for (int64_t i = 0; i < n; i++) y[i] = -M_SOFTPLUS(-x[i]); break;
    case PF_U_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            T v = x[i] / (T)6 + (T)0.5;
            y[i] = v != v ? v : v < 0 ? (T)0 : v > 1 ? (T)1 : v;
        }
        break;
    case PF_U_HARDSWISH:
        for (int64_t i = 0; i < n; i++) {
            T v = x[i] + (T)3;
            v = v < 0 ? (T)0 : v > 6 ? (T)6 : v;
            y[i] = x[i] * v / (T)6;
        }
        break;
    case PF_U_GELU_TANH:
        for (int64_t i = 0; i < n; i++) {
            T u = (T)GELU_C * (x[i] + (T)GELU_K * x[i] * x[i] * x[i]);
            y[i] = (T)0.5 * x[i] * ((T)1 + M_TANH(u));
        }
        break;
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
    case PF_G_SOFTPLUS:
        for (int64_t i = 0; i < n; i++) dx[i] = v[i] > (T)20 ? g[i] : g[i] * M_SIGMOID(v[i]);
        break;
    case PF_G_ELU:
        for (int64_t i = 0; i < n; i++) dx[i] = v[i] > 0 ? g[i] : g[i] * p0 * M_EXP(v[i]);
        break;
    case PF_G_SELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] = g[i] * (T)SELU_SCALE * (v[i] > 0 ? (T)1 : (T)SELU_ALPHA * M_EXP(v[i]));
        break;
    case PF_G_CELU:
        for (int64_t i = 0; i < n; i++) dx[i] = v[i] > 0 ? g[i] : g[i] * M_EXP(v[i] / p0);
        break;
    case PF_G_SILU:
        for (int64_t i = 0; i < n; i++) {
            T s = M_SIGMOID(v[i]);
            dx[i] = g[i] * s * ((T)1 + v[i] * ((T)1 - s));
        }
        break;
    case PF_G_MISH:
        for (int64_t i = 0; i < n; i++) {
            T t = M_TANH(M_SOFTPLUS(v[i]));
            dx[i] = g[i] * (t + v[i] * M_SIGMOID(v[i]) * ((T)1 - t * t));
        }
        break;
    case PF_G_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) {
            T d = (T)1 + M_FABS(v[i]);
            dx[i] = g[i] / (d * d);
        }
        break;
    case PF_G_LOGSIGMOID:
        for (int64_t i = 0; i < n; i++) dx[i] = g[i] * M_SIGMOID(-v[i]);
        break;
    case PF_G_HARDSIGMOID:   /* PyTorch: 1/6 strictly inside (-3, 3) */
        for (int64_t i = 0; i < n; i++)
            dx[i] = v[i] > (T)-3 && v[i] < (T)3 ? g[i] / (T)6 : (T)0;
        break;
    case PF_G_HARDSWISH:     /* PyTorch: 0 up to -3, x/3 + 1/2 inside, 1 from 3 on */
        for (int64_t i = 0; i < n; i++)
            dx[i] = v[i] <= (T)-3 ? (T)0 : v[i] < (T)3 ? g[i] * (v[i] / (T)3 + (T)0.5) : g[i];
        break;
    case PF_G_GELU_TANH:
        for (int64_t i = 0; i < n; i++) {
            T x = v[i], x2 = x * x;
            T t = M_TANH((T)GELU_C * (x + (T)GELU_K * x2 * x));
            T du = (T)GELU_C * ((T)1 + (T)(3 * GELU_K) * x2);
            dx[i] = g[i] * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du);
        }
        break;
    default: break;
    }
}

#undef SELU_ALPHA
#undef SELU_SCALE
#undef GELU_C
#undef GELU_K
#endif /* T_IS_FLOAT */

#ifdef T_IS_INT
/* Integer division ops as PyTorch computes them; the caller refuses a zero divisor first, and
 * b == -1 is done by negation (INT_MIN / -1 traps on x86). */
static inline T SFX(int_floor_div)(T a, T b) {
    if (b == -1) return (T)((UT)0 - (UT)a);
    T q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
static inline T SFX(int_remainder)(T a, T b) {
    if (b == -1) return 0;
    T r = a % b;
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}
static inline T SFX(int_fmod)(T a, T b) { return b == -1 ? 0 : a % b; }
/* a ** b by squaring, wrapping on overflow as PyTorch does; b < 0 as in PyTorch's integer
 * pow: 1 ** b = 1, (-1) ** b = +-1, anything else 0 */
static inline T SFX(int_pow)(T a, T b) {
    if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
    UT r = 1, base = (UT)a;
    while (b) {
        if (b & 1) r *= base;
        base *= base;
        b >>= 1;
    }
    return (T)r;
}
#endif /* T_IS_INT */

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
#ifdef T_IS_FLOAT
    case PF_B_FMOD: BIN_LOOP(M_FMOD(x, y)); break;
    case PF_B_REMAINDER: BIN_LOOP(SFX(remainder)(x, y)); break;
    case PF_B_FLOOR_DIVIDE: BIN_LOOP(SFX(floor_div)(x, y)); break;
    case PF_B_ATAN2: BIN_LOOP((T)atan2(x, y)); break;
    case PF_B_HYPOT: BIN_LOOP((T)hypot(x, y)); break;
#endif
#ifdef T_IS_INT
    case PF_B_FMOD: BIN_LOOP(SFX(int_fmod)(x, y)); break;
    case PF_B_REMAINDER: BIN_LOOP(SFX(int_remainder)(x, y)); break;
    case PF_B_FLOOR_DIVIDE: BIN_LOOP(SFX(int_floor_div)(x, y)); break;
    case PF_B_BITWISE_AND: BIN_LOOP(x & y); break;
    case PF_B_BITWISE_OR: BIN_LOOP(x | y); break;
    case PF_B_BITWISE_XOR: BIN_LOOP(x ^ y); break;
#endif
    default: break;
    }
}

/* c[i] = a[i*sa] <op> b[i*sb] as a bool (0 or 1) */
static PF_HOT void SFX(compare_run)(int op, int64_t n, const T *a, int64_t sa,
                                    const T *b, int64_t sb, uint8_t *c) {
    switch (op) {
    case PF_B_EQ: BIN_LOOP((uint8_t)(x == y)); break;
    case PF_B_NE: BIN_LOOP((uint8_t)(x != y)); break;
    case PF_B_LT: BIN_LOOP((uint8_t)(x < y)); break;
    case PF_B_LE: BIN_LOOP((uint8_t)(x <= y)); break;
    case PF_B_GT: BIN_LOOP((uint8_t)(x > y)); break;
    case PF_B_GE: BIN_LOOP((uint8_t)(x >= y)); break;
    default: break;
    }
}
