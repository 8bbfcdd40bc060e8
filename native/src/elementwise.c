/* elementwise.c -- unary maps, activation gradients, broadcasting binary ops, where, cast, fill
 * and the fused elementwise program interpreter. */
#include "internal.h"

/* Below this many elements a kernel runs on the calling thread: waking the pool costs more. */
#define ELEMENTWISE_PARALLEL_MIN 32768

/* ---- per-type loops ---- */
#define T float
#define T_IS_FLOAT
#define SFX(n) n##_f32
#define M_EXP pf_expf
#define M_LOG logf
#define M_SQRT sqrtf
#define M_FABS fabsf
#define M_SIN sinf
#define M_COS cosf
#define M_TANH pf_tanhf
#define M_SIGMOID pf_sigmoidf
#define M_GELU pf_geluf
#define M_GELU_GRAD pf_gelu_gradf
#define M_SOFTPLUS pf_softplusf
#define M_ERF pf_erff
#define M_FLOOR floorf
#define M_CEIL ceilf
#define M_RINT rintf
#define M_POW powf
#define M_LOG1P log1pf
#define M_EXPM1 expm1f
#define M_FMOD fmodf
#define M_COPYSIGN copysignf
#define BIN_POW(x, y) powf(x, y)
#include "elementwise_t.h"
#undef T
#undef SFX
#undef M_EXP
#undef M_LOG
#undef M_SQRT
#undef M_FABS
#undef M_SIN
#undef M_COS
#undef M_TANH
#undef M_SIGMOID
#undef M_GELU
#undef M_GELU_GRAD
#undef M_SOFTPLUS
#undef M_ERF
#undef M_FLOOR
#undef M_CEIL
#undef M_RINT
#undef M_POW
#undef M_LOG1P
#undef M_EXPM1
#undef M_FMOD
#undef M_COPYSIGN
#undef BIN_POW

#define T double
#define SFX(n) n##_f64
#define M_EXP exp
#define M_LOG log
#define M_SQRT sqrt
#define M_FABS fabs
#define M_SIN sin
#define M_COS cos
#define M_TANH tanh
#define M_SIGMOID pf_sigmoid
#define M_GELU pf_gelu
#define M_GELU_GRAD pf_gelu_grad
#define M_SOFTPLUS pf_softplus
#define M_ERF erf
#define M_FLOOR floor
#define M_CEIL ceil
#define M_RINT rint
#define M_POW pow
#define M_LOG1P log1p
#define M_EXPM1 expm1
#define M_FMOD fmod
#define M_COPYSIGN copysign
#define BIN_POW(x, y) pow(x, y)
#include "elementwise_t.h"
#undef T
#undef T_IS_FLOAT
#undef SFX
#undef BIN_POW

#define T_IS_INT
#define T int32_t
#define UT uint32_t
#define SFX(n) n##_i32
#define BIN_POW(x, y) SFX(int_pow)(x, y)
#include "elementwise_t.h"
#undef T
#undef UT
#undef SFX
#define T int64_t
#define UT uint64_t
#define SFX(n) n##_i64
#include "elementwise_t.h"
#undef T
#undef UT
#undef SFX
#undef BIN_POW
#undef T_IS_INT

/* bool: the binary kernel takes only the ops that keep 0/1 (max = or, min = and, mul = and) */
#define T uint8_t
#define SFX(n) n##_b8
#define BIN_POW(x, y) ((void)(x), (void)(y), (T)0)
#include "elementwise_t.h"
#undef T
#undef SFX
#undef BIN_POW

void pf_unary_apply_f32(int op, int64_t n, const float *x, float *y, float p0, float p1) {
    unary_loop_f32(op, n, x, y, p0, p1);
}
void pf_unary_apply_f64(int op, int64_t n, const double *x, double *y, double p0, double p1) {
    unary_loop_f64(op, n, x, y, p0, p1);
}

/* ---- unary ---- */
/* "unary": inputs x (contiguous float); outputs y (contiguous, same shape and dtype; may be x).
 * iattr[0]: pf_unary_op; fattr: operator parameters. */
typedef struct {
    int op, dtype;
    const void *x;
    void *y;
    double p0, p1;
} unary_job;

static void unary_task(void *p, int64_t b, int64_t e) {
    const unary_job *j = (const unary_job *)p;
    if (j->dtype == PF_FLOAT32)
        unary_loop_f32(j->op, e - b, (const float *)j->x + b, (float *)j->y + b, (float)j->p0,
                       (float)j->p1);
    else
        unary_loop_f64(j->op, e - b, (const double *)j->x + b, (double *)j->y + b, j->p0, j->p1);
}

static double fattr_or(const pf_args *a, int i, double dflt) {
    return a->n_fattr > i && a->fattr ? a->fattr[i] : dflt;
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
    unary_job j = {op, x->dtype, x->data, y->data, fattr_or(a, 0, 0), fattr_or(a, 1, 0)};
    pf_parallel_for(pf_numel(x), ELEMENTWISE_PARALLEL_MIN, unary_task, &j);
    return PF_OK;
}

/* "unary_grad": inputs v (x or y, as the op needs), g; outputs dx. iattr[0]: pf_unary_grad_op. */
typedef struct {
    int op, dtype;
    const void *v, *g;
    void *dx;
    double p0;
} ugrad_job;

static void ugrad_task(void *p, int64_t b, int64_t e) {
    const ugrad_job *j = (const ugrad_job *)p;
    if (j->dtype == PF_FLOAT32)
        unary_grad_loop_f32(j->op, e - b, (const float *)j->v + b, (const float *)j->g + b,
                            (float *)j->dx + b, (float)j->p0);
    else
        unary_grad_loop_f64(j->op, e - b, (const double *)j->v + b, (const double *)j->g + b,
                            (double *)j->dx + b, j->p0);
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
    ugrad_job j = {op, v->dtype, v->data, g->data, dx->data, fattr_or(a, 0, 0)};
    pf_parallel_for(pf_numel(v), ELEMENTWISE_PARALLEL_MIN, ugrad_task, &j);
    return PF_OK;
}

/* ---- broadcasting ---- */
/* Inputs of broadcasting kernels carry the output's shape; a broadcast dim has stride 0. */
static int check_broadcast_input(const pf_tensor *in, const pf_tensor *out, const char *what) {
    PF_TRY(pf_check_tensor(in, what));
    PF_CHECK(in->ndim == out->ndim, PF_ERR_SHAPE,
             "%s has %d dims but the output has %d (broadcast inputs carry the output's shape)",
             what, in->ndim, out->ndim);
    for (int d = 0; d < in->ndim; d++)
        PF_CHECK(in->shape[d] == out->shape[d], PF_ERR_SHAPE,
                 "%s has size %lld in dim %d but the output has %lld", what,
                 (long long)in->shape[d], d, (long long)out->shape[d]);
    return PF_OK;
}

/* "binary": inputs a, b (broadcast views); outputs c (contiguous). iattr[0]: pf_binary_op.
 * float32/float64: every op. int32/int64: all but div, atan2 and hypot (a zero divisor of
 * fmod, remainder or floor_divide is an error). bool: max (or), min and mul (and) and the
 * comparisons. */
typedef struct {
    int op, dtype;
    char *a, *b, *c;
} binary_job;

static void binary_row(void *p, int64_t n, const int64_t *off, const int64_t *st) {
    const binary_job *j = (const binary_job *)p;
    switch (j->dtype) {
    case PF_FLOAT32:
        binary_run_f32(j->op, n, (const float *)j->a + off[0], st[0], (const float *)j->b + off[1],
                       st[1], (float *)j->c + off[2]);
        break;
    case PF_FLOAT64:
        binary_run_f64(j->op, n, (const double *)j->a + off[0], st[0],
                       (const double *)j->b + off[1], st[1], (double *)j->c + off[2]);
        break;
    case PF_INT32:
        binary_run_i32(j->op, n, (const int32_t *)j->a + off[0], st[0],
                       (const int32_t *)j->b + off[1], st[1], (int32_t *)j->c + off[2]);
        break;
    case PF_INT64:
        binary_run_i64(j->op, n, (const int64_t *)j->a + off[0], st[0],
                       (const int64_t *)j->b + off[1], st[1], (int64_t *)j->c + off[2]);
        break;
    default:
        binary_run_b8(j->op, n, (const uint8_t *)j->a + off[0], st[0],
                      (const uint8_t *)j->b + off[1], st[1], (uint8_t *)j->c + off[2]);
        break;
    }
}

static int op_allowed(int op, int dtype) {
    if (dtype == PF_FLOAT32 || dtype == PF_FLOAT64) return op < PF_B_BITWISE_AND;
    if (dtype == PF_BOOL)
        return op == PF_B_MAX || op == PF_B_MIN || op == PF_B_MUL ||
               (op >= PF_B_EQ && op <= PF_B_GE);
    return op != PF_B_DIV && op != PF_B_ATAN2 && op != PF_B_HYPOT;
}

typedef struct {
    int dtype;
    const char *b;
    volatile int zero;      /* set by any thread that meets a zero (all write the same 1) */
} zero_scan_job;

static void zero_scan_row(void *p, int64_t n, const int64_t *off, const int64_t *st) {
    zero_scan_job *j = (zero_scan_job *)p;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = off[0] + i * st[0];
        if (j->dtype == PF_INT32 ? ((const int32_t *)j->b)[k] == 0 : ((const int64_t *)j->b)[k] == 0) {
            j->zero = 1;
            return;
        }
    }
}

static int k_binary(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *y = a->inputs[1], *c = a->outputs[0];
    PF_TRY(pf_check_contiguous(c, "out"));
    PF_TRY(check_broadcast_input(x, c, "a"));
    PF_TRY(check_broadcast_input(y, c, "b"));
    PF_TRY(pf_check_dtype(y, x->dtype, "b"));
    PF_TRY(pf_check_dtype(c, x->dtype, "out"));
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= 0 && op < PF_B_COUNT, PF_ERR_ARGUMENT, "unknown binary op %d", op);
    PF_CHECK(op_allowed(op, x->dtype), PF_ERR_DTYPE, "binary op %d does not take %s inputs", op,
             pf_dtype_name(x->dtype));
    if ((x->dtype == PF_INT32 || x->dtype == PF_INT64) &&
        (op == PF_B_FMOD || op == PF_B_REMAINDER || op == PF_B_FLOOR_DIVIDE)) {
        const int64_t *bs[1] = {y->strides};
        pf_walk zw;
        pf_walk_init(&zw, c->ndim, c->shape, 1, bs);
        zero_scan_job z = {y->dtype, (const char *)y->data, 0};
        pf_walk_run(&zw, ELEMENTWISE_PARALLEL_MIN, zero_scan_row, &z);
        PF_CHECK(!z.zero, PF_ERR_NUMERIC, "integer division by zero");
    }
    const int64_t *strides[3] = {x->strides, y->strides, c->strides};
    pf_walk w;
    pf_walk_init(&w, c->ndim, c->shape, 3, strides);
    binary_job j = {op, x->dtype, (char *)x->data, (char *)y->data, (char *)c->data};
    pf_walk_run(&w, ELEMENTWISE_PARALLEL_MIN, binary_row, &j);
    return PF_OK;
}

/* "compare": inputs a, b (broadcast views, one dtype, any); outputs c (contiguous bool).
 * iattr[0]: PF_B_EQ ... PF_B_GE. */
static void compare_row(void *p, int64_t n, const int64_t *off, const int64_t *st) {
    const binary_job *j = (const binary_job *)p;
    uint8_t *c = (uint8_t *)j->c + off[2];
    switch (j->dtype) {
    case PF_FLOAT32:
        compare_run_f32(j->op, n, (const float *)j->a + off[0], st[0],
                        (const float *)j->b + off[1], st[1], c);
        break;
    case PF_FLOAT64:
        compare_run_f64(j->op, n, (const double *)j->a + off[0], st[0],
                        (const double *)j->b + off[1], st[1], c);
        break;
    case PF_INT32:
        compare_run_i32(j->op, n, (const int32_t *)j->a + off[0], st[0],
                        (const int32_t *)j->b + off[1], st[1], c);
        break;
    case PF_INT64:
        compare_run_i64(j->op, n, (const int64_t *)j->a + off[0], st[0],
                        (const int64_t *)j->b + off[1], st[1], c);
        break;
    default:
        compare_run_b8(j->op, n, (const uint8_t *)j->a + off[0], st[0],
                       (const uint8_t *)j->b + off[1], st[1], c);
        break;
    }
}

static int k_compare(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *x = a->inputs[0], *y = a->inputs[1], *c = a->outputs[0];
    PF_TRY(pf_check_contiguous(c, "out"));
    PF_TRY(check_broadcast_input(x, c, "a"));
    PF_TRY(check_broadcast_input(y, c, "b"));
    PF_TRY(pf_check_dtype(y, x->dtype, "b"));
    PF_TRY(pf_check_dtype(c, PF_BOOL, "out"));
    int op = pf_code(a->iattr[0]);
    PF_CHECK(op >= PF_B_EQ && op <= PF_B_GE, PF_ERR_ARGUMENT, "unknown comparison %d", op);
    const int64_t *strides[3] = {x->strides, y->strides, c->strides};
    pf_walk w;
    pf_walk_init(&w, c->ndim, c->shape, 3, strides);
    binary_job j = {op, x->dtype, (char *)x->data, (char *)y->data, (char *)c->data};
    pf_walk_run(&w, ELEMENTWISE_PARALLEL_MIN, compare_row, &j);
    return PF_OK;
}

/* "where": inputs cond (any dtype; nonzero selects a), a, b (broadcast views); outputs out. */
typedef struct {
    int cdtype, dtype;
    const char *cond, *a, *b;
    char *out;
} where_job;

static int nonzero_at(int dtype, const char *base, int64_t i) {
    switch (dtype) {
    case PF_FLOAT32: return ((const float *)base)[i] != 0;
    case PF_FLOAT64: return ((const double *)base)[i] != 0;
    case PF_INT32: return ((const int32_t *)base)[i] != 0;
    case PF_BOOL: return ((const uint8_t *)base)[i] != 0;
    default: return ((const int64_t *)base)[i] != 0;
    }
}

static void where_row(void *p, int64_t n, const int64_t *off, const int64_t *st) {
    const where_job *j = (const where_job *)p;
    size_t es = pf_dtype_size(j->dtype);
    for (int64_t i = 0; i < n; i++) {
        int take_a = nonzero_at(j->cdtype, j->cond, off[0] + i * st[0]);
        const char *src = take_a ? j->a + (off[1] + i * st[1]) * (int64_t)es
                                 : j->b + (off[2] + i * st[2]) * (int64_t)es;
        memcpy(j->out + (off[3] + i) * (int64_t)es, src, es);
    }
}

static int k_where(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 3, 3, 1));
    const pf_tensor *c = a->inputs[0], *x = a->inputs[1], *y = a->inputs[2], *o = a->outputs[0];
    PF_TRY(pf_check_contiguous(o, "out"));
    PF_TRY(check_broadcast_input(c, o, "cond"));
    PF_TRY(check_broadcast_input(x, o, "a"));
    PF_TRY(check_broadcast_input(y, o, "b"));
    PF_TRY(pf_check_dtype(y, x->dtype, "b"));
    PF_TRY(pf_check_dtype(o, x->dtype, "out"));
    const int64_t *strides[4] = {c->strides, x->strides, y->strides, o->strides};
    pf_walk w;
    pf_walk_init(&w, o->ndim, o->shape, 4, strides);
    where_job j = {c->dtype, x->dtype, (const char *)c->data, (const char *)x->data,
                   (const char *)y->data, (char *)o->data};
    pf_walk_run(&w, ELEMENTWISE_PARALLEL_MIN, where_row, &j);
    return PF_OK;
}

/* "cast": inputs x (contiguous, any dtype); outputs y (contiguous, any dtype, same shape). */
#define CAST_LOOP(TI, TO)                                                                      \
    do {                                                                                       \
        const TI *s = (const TI *)j->x;                                                        \
        TO *d = (TO *)j->y;                                                                    \
        for (int64_t i = b; i < e; i++) d[i] = (TO)s[i];                                       \
    } while (0)
#define CAST_FROM(TI)                                                                          \
    switch (j->to) {                                                                           \
    case PF_FLOAT32: CAST_LOOP(TI, float); break;                                             \
    case PF_FLOAT64: CAST_LOOP(TI, double); break;                                            \
    case PF_INT32: CAST_LOOP(TI, int32_t); break;                                             \
    case PF_INT64: CAST_LOOP(TI, int64_t); break;                                             \
    default: { /* to bool: nonzero (NaN too) is true, as in PyTorch */                        \
        const TI *s = (const TI *)j->x;                                                        \
        uint8_t *d = (uint8_t *)j->y;                                                          \
        for (int64_t i = b; i < e; i++) d[i] = s[i] != 0;                                      \
        break;                                                                                 \
    }                                                                                          \
    }

typedef struct {
    int from, to;
    const void *x;
    void *y;
} cast_job;

static void cast_task(void *p, int64_t b, int64_t e) {
    const cast_job *j = (const cast_job *)p;
    switch (j->from) {
    case PF_FLOAT32: CAST_FROM(float); break;
    case PF_FLOAT64: CAST_FROM(double); break;
    case PF_INT32: CAST_FROM(int32_t); break;
    case PF_INT64: CAST_FROM(int64_t); break;
    default: CAST_FROM(uint8_t); break;
    }
}

static int k_cast(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 1));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    PF_TRY(pf_check_tensor(x, "x"));
    PF_TRY(pf_check_tensor(y, "y"));
    if (x->dtype == PF_FLOAT32 || x->dtype == PF_FLOAT64) {
        /* float to int: refuse what C cannot convert (UB), rather than produce garbage */
        if (y->dtype == PF_INT32 || y->dtype == PF_INT64) {
            int64_t n = pf_numel(x);
            double lim = y->dtype == PF_INT32 ? 2147483648.0 : 9223372036854775808.0;
            for (int64_t i = 0; i < n; i++) {
                double v = x->dtype == PF_FLOAT32 ? ((const float *)x->data)[i]
                                                  : ((const double *)x->data)[i];
                PF_CHECK(v == v && v < lim && v >= -lim, PF_ERR_NUMERIC,
                         "cannot convert %g at flat index %lld to %s", v, (long long)i,
                         pf_dtype_name(y->dtype));
            }
        }
    }
    cast_job j = {x->dtype, y->dtype, x->data, y->data};
    pf_parallel_for(pf_numel(x), ELEMENTWISE_PARALLEL_MIN, cast_task, &j);
    return PF_OK;
}

/* "fill": outputs y (contiguous, any dtype); fattr[0]: the value. */
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
    switch (y->dtype) {
    case PF_FLOAT32:
        if (v == 0) memset(y->data, 0, (size_t)n * 4);
        else for (int64_t i = 0; i < n; i++) ((float *)y->data)[i] = (float)v;
        break;
    case PF_FLOAT64:
        if (v == 0) memset(y->data, 0, (size_t)n * 8);
        else for (int64_t i = 0; i < n; i++) ((double *)y->data)[i] = v;
        break;
    case PF_INT32: for (int64_t i = 0; i < n; i++) ((int32_t *)y->data)[i] = (int32_t)v; break;
    case PF_BOOL: memset(y->data, v != 0, (size_t)n); break;
    default: for (int64_t i = 0; i < n; i++) ((int64_t *)y->data)[i] = (int64_t)v; break;
    }
    return PF_OK;
}

/* ---- fused elementwise programs ---- */
/* "fused": inputs (broadcast views, float, one dtype); outputs (contiguous, the same shape);
 * iattr: the program (PF_FUSED_WORDS per instruction); fattr: constants and op parameters.
 * Registers hold tiles of FUSED_TILE elements, so intermediate values never reach memory. */
#define FUSED_TILE 256

typedef struct {
    const pf_args *a;
    int dtype;
    int64_t n_instr;
} fused_job;

#define DEFINE_FUSED_ROW(T, SUF)                                                               \
    static void fused_row_##SUF(const fused_job *j, int64_t n, const int64_t *off,            \
                                const int64_t *st) {                                           \
        T regs[PF_FUSED_REGS][FUSED_TILE];                                                     \
        const pf_args *a = j->a;                                                               \
        const int64_t *prog = a->iattr;                                                        \
        for (int64_t t0 = 0; t0 < n; t0 += FUSED_TILE) {                                       \
            int64_t len = n - t0 < FUSED_TILE ? n - t0 : FUSED_TILE;                           \
            for (int64_t k = 0; k < j->n_instr; k++) {                                         \
                const int64_t *ins = prog + k * PF_FUSED_WORDS;                                \
                int dst = (int)ins[1], ra = (int)ins[2], rb = (int)ins[3], op = (int)ins[4];   \
                int fs = (int)ins[5];                                                          \
                T *r = regs[dst];                                                              \
                switch (ins[0]) {                                                              \
                case PF_F_LOAD: {                                                              \
                    const T *src = (const T *)a->inputs[ra]->data + off[ra] + t0 * st[ra];     \
                    int64_t s = st[ra];                                                        \
                    if (s == 1) memcpy(r, src, (size_t)len * sizeof(T));                       \
                    else for (int64_t i = 0; i < len; i++) r[i] = src[i * s];                 \
                    break;                                                                     \
                }                                                                              \
                case PF_F_CONST: {                                                             \
                    T v = (T)a->fattr[fs];                                                     \
                    for (int64_t i = 0; i < len; i++) r[i] = v;                                \
                    break;                                                                     \
                }                                                                              \
                case PF_F_UNARY: {                                                             \
                    T p0 = fs >= 0 && fs < a->n_fattr ? (T)a->fattr[fs] : 0;                   \
                    T p1 = fs >= 0 && fs + 1 < a->n_fattr ? (T)a->fattr[fs + 1] : 0;           \
                    unary_loop_##SUF(op, len, regs[ra], r, p0, p1);                            \
                    break;                                                                     \
                }                                                                              \
                case PF_F_BINARY:                                                              \
                    binary_run_##SUF(op, len, regs[ra], 1, regs[rb], 1, r);                    \
                    break;                                                                     \
                case PF_F_UNARY_GRAD: {                                                        \
                    T p0 = fs >= 0 && fs < a->n_fattr ? (T)a->fattr[fs] : 0;                   \
                    unary_grad_loop_##SUF(op, len, regs[ra], regs[rb], r, p0);                 \
                    break;                                                                     \
                }                                                                              \
                case PF_F_STORE: {                                                             \
                    int o = a->n_in + rb;                                                      \
                    memcpy((T *)a->outputs[rb]->data + off[o] + t0, regs[ra],                  \
                           (size_t)len * sizeof(T));                                           \
                    break;                                                                     \
                }                                                                              \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

DEFINE_FUSED_ROW(float, f32)
DEFINE_FUSED_ROW(double, f64)

static void fused_row(void *p, int64_t n, const int64_t *off, const int64_t *st) {
    const fused_job *j = (const fused_job *)p;
    if (j->dtype == PF_FLOAT32) fused_row_f32(j, n, off, st);
    else fused_row_f64(j, n, off, st);
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
        PF_TRY(check_broadcast_input(a->inputs[i], out0, "input"));
        PF_TRY(pf_check_dtype(a->inputs[i], out0->dtype, "input"));
    }
    /* validate the whole program before running any of it */
    int64_t n_instr = a->n_iattr / PF_FUSED_WORDS;
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
    }
    const int64_t *strides[PF_WALK_MAX_OPS];
    for (int i = 0; i < a->n_in; i++) strides[i] = a->inputs[i]->strides;
    for (int o = 0; o < a->n_out; o++) strides[a->n_in + o] = a->outputs[o]->strides;
    pf_walk w;
    pf_walk_init(&w, out0->ndim, out0->shape, a->n_in + a->n_out, strides);
    fused_job j = {a, out0->dtype, n_instr};
    pf_walk_run(&w, ELEMENTWISE_PARALLEL_MIN, fused_row, &j);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_elementwise[] = {
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
