/* nn.c -- softmax and log-softmax over an axis, their gradients, and the fused losses
 * (cross-entropy from logits with integer labels, mean squared error) with their gradients.
 * Losses refuse to return a non-finite value: a NaN loss names the row that produced it. */
#include "internal.h"

#define NN_PARALLEL_MIN 16384

enum { RED_NONE = 0, RED_MEAN = 1, RED_SUM = 2 };

/* ---- softmax family: x viewed as (O, R, I), normalised over R ---- */
typedef struct {
    int dtype, log, grad;
    int64_t O, R, I;
    const void *x, *g;   /* forward: x; gradient: y (the forward's output) and g */
    void *y;
} softmax_job;

#define DEFINE_SOFTMAX(T, SUF, EXPF, LOGF)                                                     \
    static PF_HOT void softmax_lines_##SUF(const softmax_job *j, int64_t l0, int64_t l1) {     \
        int64_t R = j->R, I = j->I;                                                            \
        for (int64_t l = l0; l < l1; l++) {                                                    \
            int64_t o = l / I, i = l % I;                                                      \
            const T *x = (const T *)j->x + o * R * I + i;                                      \
            T *y = (T *)j->y + o * R * I + i;                                                  \
            if (!j->grad) {                                                                    \
                T m = x[0];                                                                    \
                for (int64_t r = 1; r < R; r++) m = x[r * I] > m ? x[r * I] : m;               \
                T s = 0;                                                                       \
                if (j->log) {                                                                  \
                    for (int64_t r = 0; r < R; r++) s += EXPF(x[r * I] - m);                   \
                    /* (x - m) - log(s): m + log(s) first would round away log(s)'s bits */    \
                    T ls = LOGF(s);                                                            \
                    for (int64_t r = 0; r < R; r++) y[r * I] = (x[r * I] - m) - ls;           \
                } else {                                                                       \
                    for (int64_t r = 0; r < R; r++) { T e = EXPF(x[r * I] - m); y[r * I] = e; s += e; } \
                    T inv = (T)1 / s;                                                          \
                    for (int64_t r = 0; r < R; r++) y[r * I] *= inv;                           \
                }                                                                              \
            } else {                                                                           \
                /* x holds the forward output, g the incoming gradient */                      \
                const T *g = (const T *)j->g + o * R * I + i;                                  \
                T s = 0;                                                                       \
                if (j->log) {                                                                  \
                    for (int64_t r = 0; r < R; r++) s += g[r * I];                             \
                    for (int64_t r = 0; r < R; r++) y[r * I] = g[r * I] - EXPF(x[r * I]) * s;  \
                } else {                                                                       \
                    for (int64_t r = 0; r < R; r++) s += g[r * I] * x[r * I];                  \
                    for (int64_t r = 0; r < R; r++) y[r * I] = x[r * I] * (g[r * I] - s);      \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

DEFINE_SOFTMAX(float, f32, pf_expf, logf)
DEFINE_SOFTMAX(double, f64, exp, log)

static void softmax_task(void *p, int64_t b, int64_t e) {
    const softmax_job *j = (const softmax_job *)p;
    if (j->dtype == PF_FLOAT32) softmax_lines_f32(j, b, e);
    else softmax_lines_f64(j, b, e);
}

/* "softmax" / "log_softmax": inputs x (O, R, I) contiguous; outputs y, same shape.
 * "softmax_grad" / "log_softmax_grad": inputs y (the forward's output), g; outputs dx. */
static int softmax_common(const pf_args *a, int log, int grad) {
    PF_TRY(pf_check_arity(a, grad ? 2 : 1, grad ? 2 : 1, 1));
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(x, grad ? "y" : "x"));
    PF_TRY(pf_check_contiguous(y, grad ? "dx" : "y"));
    PF_TRY(pf_check_float(x, "x"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    PF_CHECK(x->ndim == 3, PF_ERR_SHAPE, "x must be viewed as (outer, axis, inner)");
    PF_CHECK(pf_numel(y) == pf_numel(x), PF_ERR_SHAPE, "output size differs from input size");
    const void *g = NULL;
    if (grad) {
        PF_TRY(pf_check_contiguous(a->inputs[1], "grad"));
        PF_TRY(pf_check_dtype(a->inputs[1], x->dtype, "grad"));
        PF_CHECK(pf_numel(a->inputs[1]) == pf_numel(x), PF_ERR_SHAPE, "grad size differs");
        g = a->inputs[1]->data;
    }
    int64_t O = x->shape[0], R = x->shape[1], I = x->shape[2];
    if (O * I == 0 || R == 0) return PF_OK;
    softmax_job j = {x->dtype, log, grad, O, R, I, x->data, g, y->data};
    int64_t grain = NN_PARALLEL_MIN / R;
    pf_parallel_for(O * I, grain > 0 ? grain : 1, softmax_task, &j);
    return PF_OK;
}
static int k_softmax(const pf_args *a) { return softmax_common(a, 0, 0); }
static int k_log_softmax(const pf_args *a) { return softmax_common(a, 1, 0); }
static int k_softmax_grad(const pf_args *a) { return softmax_common(a, 0, 1); }
static int k_log_softmax_grad(const pf_args *a) { return softmax_common(a, 1, 1); }

/* ---- cross-entropy from logits ---- */
static int64_t label_at(const pf_tensor *t, int64_t i) {
    return t->dtype == PF_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

static int check_ce_args(const pf_args *a, int64_t *N, int64_t *C, int *reduction, int64_t *ignore,
                         int64_t *count) {
    const pf_tensor *z = a->inputs[0], *lab = a->inputs[1];
    PF_TRY(pf_check_contiguous(z, "logits"));
    PF_TRY(pf_check_float(z, "logits"));
    PF_CHECK(z->ndim == 2, PF_ERR_SHAPE, "logits must be (batch, classes), got %d dims", z->ndim);
    PF_TRY(pf_check_contiguous(lab, "labels"));
    PF_CHECK(lab->dtype == PF_INT32 || lab->dtype == PF_INT64, PF_ERR_DTYPE,
             "labels must be int32 or int64, got %s", pf_dtype_name(lab->dtype));
    *N = z->shape[0];
    *C = z->shape[1];
    PF_CHECK(pf_numel(lab) == *N, PF_ERR_SHAPE, "%lld labels for %lld rows of logits",
             (long long)pf_numel(lab), (long long)*N);
    *reduction = a->n_iattr > 0 && a->iattr ? pf_code(a->iattr[0]) : RED_MEAN;
    *ignore = a->n_iattr > 1 && a->iattr ? a->iattr[1] : -100;
    PF_CHECK(*reduction >= RED_NONE && *reduction <= RED_SUM, PF_ERR_ARGUMENT,
             "unknown reduction %d", *reduction);
    *count = 0;
    for (int64_t n = 0; n < *N; n++) {
        int64_t t = label_at(lab, n);
        if (t == *ignore) continue;
        PF_CHECK(t >= 0 && t < *C, PF_ERR_INDEX,
                 "label %lld in row %lld is out of range for %lld classes", (long long)t,
                 (long long)n, (long long)*C);
        (*count)++;
    }
    return PF_OK;
}

/* "cross_entropy": inputs logits (N, C), labels (N); outputs loss (one element for mean/sum,
 * N for none). iattr: reduction (0 none, 1 mean, 2 sum), ignore_index (default -100). */
static int k_cross_entropy(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    int64_t N = 0, C = 0, ignore = -100, count = 0;
    int red = RED_MEAN;
    PF_TRY(check_ce_args(a, &N, &C, &red, &ignore, &count));
    const pf_tensor *z = a->inputs[0], *lab = a->inputs[1], *out = a->outputs[0];
    PF_TRY(pf_check_contiguous(out, "loss"));
    PF_TRY(pf_check_dtype(out, z->dtype, "loss"));
    PF_CHECK(pf_numel(out) == (red == RED_NONE ? N : 1), PF_ERR_SHAPE,
             "loss has %lld elements, expected %lld", (long long)pf_numel(out),
             (long long)(red == RED_NONE ? N : 1));
    PF_CHECK(C > 0 || count == 0, PF_ERR_SHAPE, "logits have no classes");
    double total = 0;
    for (int64_t n = 0; n < N; n++) {
        int64_t t = label_at(lab, n);
        double loss = 0;
        if (t != ignore) {
            double m, s = 0, zt;
            if (z->dtype == PF_FLOAT32) {
                const float *row = (const float *)z->data + n * C;
                float mf = row[0];
                for (int64_t c = 1; c < C; c++) mf = row[c] > mf ? row[c] : mf;
                float sf = 0;
                for (int64_t c = 0; c < C; c++) sf += pf_expf(row[c] - mf);
                m = mf; s = sf; zt = row[t];
            } else {
                const double *row = (const double *)z->data + n * C;
                m = row[0];
                for (int64_t c = 1; c < C; c++) m = row[c] > m ? row[c] : m;
                for (int64_t c = 0; c < C; c++) s += exp(row[c] - m);
                zt = row[t];
            }
            loss = m + log(s) - zt;
            PF_CHECK(isfinite(loss), PF_ERR_NUMERIC,
                     "the loss is %s: row %lld of the logits holds NaN or Inf", isnan(loss) ? "NaN" : "Inf",
                     (long long)n);
        }
        if (red == RED_NONE) {
            if (z->dtype == PF_FLOAT32) ((float *)out->data)[n] = (float)loss;
            else ((double *)out->data)[n] = loss;
        }
        total += loss;
    }
    if (red != RED_NONE) {
        /* a mean over no labels (an empty batch, or every label ignored) is NaN, as torch's;
         * its gradient is zero (scale 0 in cross_entropy_grad) */
        double v = red == RED_MEAN ? (count > 0 ? total / (double)count : NAN) : total;
        if (z->dtype == PF_FLOAT32) ((float *)out->data)[0] = (float)v;
        else ((double *)out->data)[0] = v;
    }
    return PF_OK;
}

/* "cross_entropy_grad": inputs logits (N, C), labels (N), gout (1 or N elements); outputs
 * dlogits (N, C) = (softmax(z) - onehot) * gout (/ count for mean). iattr as cross_entropy. */
typedef struct {
    int dtype, red;
    int64_t N, C, ignore;
    double scale;
    const pf_tensor *z, *lab, *g;
    void *dz;
} ce_grad_job;

#define DEFINE_CE_GRAD(T, SUF, EXPF)                                                           \
    static PF_HOT void ce_grad_rows_##SUF(const ce_grad_job *j, int64_t n0, int64_t n1) {      \
        int64_t C = j->C;                                                                      \
        for (int64_t n = n0; n < n1; n++) {                                                    \
            const T *row = (const T *)j->z->data + n * C;                                      \
            T *d = (T *)j->dz + n * C;                                                         \
            int64_t t = label_at(j->lab, n);                                                   \
            if (t == j->ignore) { memset(d, 0, (size_t)C * sizeof(T)); continue; }             \
            T gs = (T)(j->red == RED_NONE ? ((const T *)j->g->data)[n] * j->scale              \
                                          : ((const T *)j->g->data)[0] * j->scale);            \
            T m = row[0];                                                                      \
            for (int64_t c = 1; c < C; c++) m = row[c] > m ? row[c] : m;                       \
            T s = 0;                                                                           \
            for (int64_t c = 0; c < C; c++) { T e = EXPF(row[c] - m); d[c] = e; s += e; }      \
            T k = gs / s;                                                                      \
            for (int64_t c = 0; c < C; c++) d[c] *= k;                                         \
            d[t] -= gs;                                                                        \
        }                                                                                      \
    }
DEFINE_CE_GRAD(float, f32, pf_expf)
DEFINE_CE_GRAD(double, f64, exp)

static void ce_grad_task(void *p, int64_t b, int64_t e) {
    const ce_grad_job *j = (const ce_grad_job *)p;
    if (j->dtype == PF_FLOAT32) ce_grad_rows_f32(j, b, e);
    else ce_grad_rows_f64(j, b, e);
}

static int k_cross_entropy_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 3, 3, 1));
    int64_t N = 0, C = 0, ignore = -100, count = 0;
    int red = RED_MEAN;
    PF_TRY(check_ce_args(a, &N, &C, &red, &ignore, &count));
    const pf_tensor *z = a->inputs[0], *g = a->inputs[2], *dz = a->outputs[0];
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_dtype(g, z->dtype, "grad"));
    PF_CHECK(pf_numel(g) == (red == RED_NONE ? N : 1), PF_ERR_SHAPE,
             "grad has %lld elements, expected %lld", (long long)pf_numel(g),
             (long long)(red == RED_NONE ? N : 1));
    PF_TRY(pf_check_contiguous(dz, "dlogits"));
    PF_TRY(pf_check_same_shape(z, dz, "logits", "dlogits"));
    PF_TRY(pf_check_dtype(dz, z->dtype, "dlogits"));
    double scale = red == RED_MEAN ? (count > 0 ? 1.0 / (double)count : 0.0) : 1.0;
    ce_grad_job j = {z->dtype, red, N, C, ignore, scale, z, a->inputs[1], g, dz->data};
    int64_t grain = NN_PARALLEL_MIN / (C > 0 ? C : 1);
    pf_parallel_for(N, grain > 0 ? grain : 1, ce_grad_task, &j);
    return PF_OK;
}

/* ---- mean squared error ---- */
/* "mse": inputs pred, target (same shape, contiguous); outputs loss (one element for mean/sum,
 * the input's size for none). iattr[0]: reduction (default mean). */
static int k_mse(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    const pf_tensor *p = a->inputs[0], *t = a->inputs[1], *out = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "prediction"));
    PF_TRY(pf_check_contiguous(t, "target"));
    PF_TRY(pf_check_contiguous(out, "loss"));
    PF_TRY(pf_check_float(p, "prediction"));
    PF_TRY(pf_check_dtype(t, p->dtype, "target"));
    PF_TRY(pf_check_dtype(out, p->dtype, "loss"));
    PF_TRY(pf_check_same_shape(p, t, "prediction", "target"));
    int red = a->n_iattr > 0 && a->iattr ? pf_code(a->iattr[0]) : RED_MEAN;
    PF_CHECK(red >= RED_NONE && red <= RED_SUM, PF_ERR_ARGUMENT, "unknown reduction %d", red);
    int64_t n = pf_numel(p);
    PF_CHECK(pf_numel(out) == (red == RED_NONE ? n : 1), PF_ERR_SHAPE, "loss has the wrong size");
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = p->dtype == PF_FLOAT32
                       ? (double)((const float *)p->data)[i] - ((const float *)t->data)[i]
                       : ((const double *)p->data)[i] - ((const double *)t->data)[i];
        PF_CHECK(isfinite(d), PF_ERR_NUMERIC,
                 "the loss is NaN or Inf: element %lld of the prediction or target is not finite",
                 (long long)i);
        if (red == RED_NONE) {
            double sq = p->dtype == PF_FLOAT32 ? (double)(float)(d * d) : d * d;
            PF_CHECK(isfinite(sq), PF_ERR_NUMERIC,
                     "the loss is Inf: the squared difference at element %lld overflows %s",
                     (long long)i, pf_dtype_name(p->dtype));
            if (p->dtype == PF_FLOAT32) ((float *)out->data)[i] = (float)sq;
            else ((double *)out->data)[i] = sq;
        }
        total += d * d;
    }
    if (red != RED_NONE) {
        /* the mean of no elements is NaN, as torch's (and its gradient has no elements) */
        double v = red == RED_MEAN ? (n > 0 ? total / (double)n : NAN) : total;
        if (p->dtype == PF_FLOAT32) v = (float)v;
        PF_CHECK(isfinite(v) || n == 0, PF_ERR_NUMERIC,
                 "the loss is Inf: the squared differences overflow %s", pf_dtype_name(p->dtype));
        if (p->dtype == PF_FLOAT32) ((float *)out->data)[0] = (float)v;
        else ((double *)out->data)[0] = v;
    }
    return PF_OK;
}

/* "mse_grad": inputs pred, target, gout; outputs dpred = 2 (pred - target) * gout (/ n for
 * mean). iattr[0]: reduction. */
static int k_mse_grad(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 3, 3, 1));
    const pf_tensor *p = a->inputs[0], *t = a->inputs[1], *g = a->inputs[2], *d = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "prediction"));
    PF_TRY(pf_check_contiguous(t, "target"));
    PF_TRY(pf_check_contiguous(g, "grad"));
    PF_TRY(pf_check_contiguous(d, "dprediction"));
    PF_TRY(pf_check_float(p, "prediction"));
    PF_TRY(pf_check_dtype(t, p->dtype, "target"));
    PF_TRY(pf_check_dtype(g, p->dtype, "grad"));
    PF_TRY(pf_check_dtype(d, p->dtype, "dprediction"));
    PF_TRY(pf_check_same_shape(p, t, "prediction", "target"));
    PF_TRY(pf_check_same_shape(p, d, "prediction", "dprediction"));
    int red = a->n_iattr > 0 && a->iattr ? pf_code(a->iattr[0]) : RED_MEAN;
    PF_CHECK(red >= RED_NONE && red <= RED_SUM, PF_ERR_ARGUMENT, "unknown reduction %d", red);
    int64_t n = pf_numel(p);
    PF_CHECK(pf_numel(g) == (red == RED_NONE ? n : 1), PF_ERR_SHAPE, "grad has the wrong size");
    double scale = red == RED_MEAN ? 2.0 / (double)(n > 0 ? n : 1) : 2.0;
    if (p->dtype == PF_FLOAT32) {
        const float *pp = (const float *)p->data, *tt = (const float *)t->data,
                    *gg = (const float *)g->data;
        float *dd = (float *)d->data;
        if (red == RED_NONE) for (int64_t i = 0; i < n; i++) dd[i] = 2.0f * (pp[i] - tt[i]) * gg[i];
        else { float k = (float)(scale * gg[0]); for (int64_t i = 0; i < n; i++) dd[i] = k * (pp[i] - tt[i]); }
    } else {
        const double *pp = (const double *)p->data, *tt = (const double *)t->data,
                     *gg = (const double *)g->data;
        double *dd = (double *)d->data;
        if (red == RED_NONE) for (int64_t i = 0; i < n; i++) dd[i] = 2.0 * (pp[i] - tt[i]) * gg[i];
        else { double k = scale * gg[0]; for (int64_t i = 0; i < n; i++) dd[i] = k * (pp[i] - tt[i]); }
    }
    return PF_OK;
}

const pf_kernel_entry pf_kernels_nn[] = {
    {"softmax", k_softmax, NULL},
    {"log_softmax", k_log_softmax, NULL},
    {"softmax_grad", k_softmax_grad, NULL},
    {"log_softmax_grad", k_log_softmax_grad, NULL},
    {"cross_entropy", k_cross_entropy, NULL},
    {"cross_entropy_grad", k_cross_entropy_grad, NULL},
    {"mse", k_mse, NULL},
    {"mse_grad", k_mse_grad, NULL},
    {NULL, NULL, NULL},
};
