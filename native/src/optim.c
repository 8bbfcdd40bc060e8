/* optim.c -- fused, in-place optimizer updates: one pass over a parameter and its state, and
 * the gradient clipping that runs before them. The learning rate and the step number come from
 * a small float64 "hyper" tensor, so compiled training plans follow learning-rate schedules
 * without being rebuilt. The formulas follow PyTorch's SGD, Adam/AdamW, RMSprop and Adagrad
 * exactly, so both give the same trajectories. */
#include <stdio.h>

#include "internal.h"

#define OPTIM_PARALLEL_MIN 32768

typedef struct {
    int dtype, nesterov, decoupled, first;
    double lr, momentum, dampening, wd, b1, b2, eps, bc1, bc2;
    const void *g;
    void *p, *s1, *s2, *s3;
} optim_job;

#define DEFINE_SGD(T, SUF)                                                                     \
    static PF_HOT void sgd_run_##SUF(const optim_job *j, int64_t b, int64_t e) {               \
        const T *g = (const T *)j->g;                                                          \
        T *p = (T *)j->p, *buf = (T *)j->s1;                                                   \
        T lr = (T)j->lr, mom = (T)j->momentum, damp = (T)j->dampening, wd = (T)j->wd;          \
        for (int64_t i = b; i < e; i++) {                                                      \
            T d = g[i] + wd * p[i];                                                            \
            if (buf) {                                                                         \
                T v = j->first ? d : mom * buf[i] + ((T)1 - damp) * d;                         \
                buf[i] = v;                                                                    \
                d = j->nesterov ? d + mom * v : v;                                             \
            }                                                                                  \
            p[i] -= lr * d;                                                                    \
        }                                                                                      \
    }
DEFINE_SGD(float, f32)
DEFINE_SGD(double, f64)

#define DEFINE_ADAM(T, SUF, SQRT)                                                              \
    static PF_HOT void adam_run_##SUF(const optim_job *j, int64_t b, int64_t e) {              \
        const T *g = (const T *)j->g;                                                          \
        T *p = (T *)j->p, *m = (T *)j->s1, *v = (T *)j->s2;                                    \
        T b1 = (T)j->b1, b2 = (T)j->b2, eps = (T)j->eps, wd = (T)j->wd;                        \
        T step = (T)(j->lr / j->bc1), rbc2 = (T)(1.0 / sqrt(j->bc2));                          \
        T decay = (T)(1.0 - j->lr * j->wd);                                                    \
        for (int64_t i = b; i < e; i++) {                                                      \
            T gi = g[i];                                                                       \
            if (j->decoupled) p[i] *= decay;                                                   \
            else gi += wd * p[i];                                                              \
            T mi = b1 * m[i] + ((T)1 - b1) * gi;                                               \
            T vi = b2 * v[i] + ((T)1 - b2) * gi * gi;                                          \
            m[i] = mi;                                                                         \
            v[i] = vi;                                                                         \
            p[i] -= step * mi / (SQRT(vi) * rbc2 + eps);                                       \
        }                                                                                      \
    }
DEFINE_ADAM(float, f32, sqrtf)
DEFINE_ADAM(double, f64, sqrt)

/* RMSprop: s1 = square average, s2 = gradient average (centered, else NULL), s3 = momentum
 * buffer (momentum > 0, else NULL); b1 holds alpha. */
#define DEFINE_RMSPROP(T, SUF, SQRT)                                                           \
    static PF_HOT void rmsprop_run_##SUF(const optim_job *j, int64_t b, int64_t e) {           \
        const T *g = (const T *)j->g;                                                          \
        T *p = (T *)j->p, *sq = (T *)j->s1, *ga = (T *)j->s2, *buf = (T *)j->s3;               \
        T alpha = (T)j->b1, eps = (T)j->eps, wd = (T)j->wd, lr = (T)j->lr;                     \
        T mom = (T)j->momentum;                                                                \
        for (int64_t i = b; i < e; i++) {                                                      \
            T gi = g[i] + wd * p[i];                                                           \
            T si = alpha * sq[i] + ((T)1 - alpha) * gi * gi;                                   \
            sq[i] = si;                                                                        \
            if (ga) {                                                                          \
                T ai = alpha * ga[i] + ((T)1 - alpha) * gi;                                    \
                ga[i] = ai;                                                                    \
                si -= ai * ai;                                                                 \
            }                                                                                  \
            T step = gi / (SQRT(si) + eps);                                                    \
            if (buf) {                                                                         \
                step += mom * buf[i];                                                          \
                buf[i] = step;                                                                 \
            }                                                                                  \
            p[i] -= lr * step;                                                                 \
        }                                                                                      \
    }
DEFINE_RMSPROP(float, f32, sqrtf)
DEFINE_RMSPROP(double, f64, sqrt)

/* Adagrad: s1 = sum of squared gradients; lr is already divided by the lr-decay term. */
#define DEFINE_ADAGRAD(T, SUF, SQRT)                                                           \
    static PF_HOT void adagrad_run_##SUF(const optim_job *j, int64_t b, int64_t e) {           \
        const T *g = (const T *)j->g;                                                          \
        T *p = (T *)j->p, *sum = (T *)j->s1;                                                   \
        T eps = (T)j->eps, wd = (T)j->wd, lr = (T)j->lr;                                       \
        for (int64_t i = b; i < e; i++) {                                                      \
            T gi = g[i] + wd * p[i];                                                           \
            T si = sum[i] + gi * gi;                                                           \
            sum[i] = si;                                                                       \
            p[i] -= lr * gi / (SQRT(si) + eps);                                                \
        }                                                                                      \
    }
DEFINE_ADAGRAD(float, f32, sqrtf)
DEFINE_ADAGRAD(double, f64, sqrt)

static void sgd_task(void *p, int64_t b, int64_t e) {
    const optim_job *j = (const optim_job *)p;
    if (j->dtype == PF_FLOAT32) sgd_run_f32(j, b, e);
    else sgd_run_f64(j, b, e);
}
static void adam_task(void *p, int64_t b, int64_t e) {
    const optim_job *j = (const optim_job *)p;
    if (j->dtype == PF_FLOAT32) adam_run_f32(j, b, e);
    else adam_run_f64(j, b, e);
}

static void rmsprop_task(void *p, int64_t b, int64_t e) {
    const optim_job *j = (const optim_job *)p;
    if (j->dtype == PF_FLOAT32) rmsprop_run_f32(j, b, e);
    else rmsprop_run_f64(j, b, e);
}
static void adagrad_task(void *p, int64_t b, int64_t e) {
    const optim_job *j = (const optim_job *)p;
    if (j->dtype == PF_FLOAT32) adagrad_run_f32(j, b, e);
    else adagrad_run_f64(j, b, e);
}

static int check_state(const pf_tensor *t, const pf_tensor *param, const char *what) {
    PF_TRY(pf_check_contiguous(t, what));
    PF_TRY(pf_check_dtype(t, param->dtype, what));
    PF_TRY(pf_check_same_shape(t, param, what, "param"));
    return PF_OK;
}

static int read_hyper(const pf_tensor *h, double *lr, double *step) {
    PF_TRY(pf_check_contiguous(h, "hyper"));
    PF_TRY(pf_check_dtype(h, PF_FLOAT64, "hyper"));
    PF_CHECK(pf_numel(h) >= 2, PF_ERR_SHAPE, "hyper must hold (learning rate, step)");
    *lr = ((const double *)h->data)[0];
    *step = ((const double *)h->data)[1];
    PF_CHECK(isfinite(*lr), PF_ERR_NUMERIC, "the learning rate is not finite");
    PF_CHECK(*step >= 1, PF_ERR_ARGUMENT, "step must count from 1, got %g", *step);
    return PF_OK;
}

/* "sgd_update": inputs grad, hyper (float64: lr, step); outputs param[, momentum buffer].
 * fattr: momentum, dampening, weight_decay; iattr[0]: nesterov. */
static int k_sgd_update(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, a->n_out == 2 ? 2 : 1));
    PF_TRY(pf_check_attrs(a, 1, 3));
    const pf_tensor *g = a->inputs[0], *p = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "param"));
    PF_TRY(pf_check_float(p, "param"));
    PF_TRY(check_state(g, p, "grad"));
    double lr, step;
    PF_TRY(read_hyper(a->inputs[1], &lr, &step));
    void *buf = NULL;
    if (a->n_out == 2) {
        PF_TRY(check_state(a->outputs[1], p, "momentum buffer"));
        buf = a->outputs[1]->data;
    }
    optim_job j = {p->dtype, a->iattr[0] != 0, 0, step == 1, lr, a->fattr[0], a->fattr[1],
                   a->fattr[2], 0, 0, 0, 1, 1, g->data, p->data, buf, NULL, NULL};
    if (j.momentum == 0) j.s1 = NULL;
    pf_parallel_for(pf_numel(p), OPTIM_PARALLEL_MIN, sgd_task, &j);
    return PF_OK;
}

/* "adam_update": inputs grad, hyper (float64: lr, step); outputs param, m, v.
 * fattr: beta1, beta2, eps, weight_decay; iattr[0]: decoupled weight decay (AdamW). */
static int k_adam_update(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 3));
    PF_TRY(pf_check_attrs(a, 1, 4));
    const pf_tensor *g = a->inputs[0], *p = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "param"));
    PF_TRY(pf_check_float(p, "param"));
    PF_TRY(check_state(g, p, "grad"));
    PF_TRY(check_state(a->outputs[1], p, "m"));
    PF_TRY(check_state(a->outputs[2], p, "v"));
    double lr, step;
    PF_TRY(read_hyper(a->inputs[1], &lr, &step));
    double b1 = a->fattr[0], b2 = a->fattr[1];
    PF_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, PF_ERR_ARGUMENT,
             "betas must lie in [0, 1), got (%g, %g)", b1, b2);
    optim_job j = {p->dtype, 0, a->iattr[0] != 0, 0, lr, 0, 0, a->fattr[3], b1, b2, a->fattr[2],
                   1.0 - pow(b1, step), 1.0 - pow(b2, step), g->data, p->data,
                   a->outputs[1]->data, a->outputs[2]->data, NULL};
    pf_parallel_for(pf_numel(p), OPTIM_PARALLEL_MIN, adam_task, &j);
    return PF_OK;
}

/* "rmsprop_update": inputs grad, hyper (float64: lr, step); outputs param, square_avg
 * [, grad_avg if centered][, momentum buffer if momentum > 0].
 * fattr: alpha, eps, weight_decay, momentum; iattr[0]: centered. */
static int k_rmsprop_update(const pf_args *a) {
    PF_CHECK(a != NULL, PF_ERR_ARGUMENT, "null argument block");
    PF_TRY(pf_check_attrs(a, 1, 4));
    int centered = a->iattr[0] != 0;
    double alpha = a->fattr[0], eps = a->fattr[1], wd = a->fattr[2], mom = a->fattr[3];
    PF_TRY(pf_check_arity(a, 2, 2, 2 + centered + (mom > 0)));
    const pf_tensor *g = a->inputs[0], *p = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "param"));
    PF_TRY(pf_check_float(p, "param"));
    PF_TRY(check_state(g, p, "grad"));
    PF_CHECK(alpha >= 0 && alpha < 1, PF_ERR_ARGUMENT, "alpha must lie in [0, 1), got %g", alpha);
    PF_CHECK(eps >= 0 && wd >= 0 && mom >= 0, PF_ERR_ARGUMENT,
             "eps, weight_decay and momentum must be >= 0, got %g, %g, %g", eps, wd, mom);
    PF_TRY(check_state(a->outputs[1], p, "square_avg"));
    void *grad_avg = NULL, *buf = NULL;
    int next = 2;
    if (centered) {
        PF_TRY(check_state(a->outputs[next], p, "grad_avg"));
        grad_avg = a->outputs[next++]->data;
    }
    if (mom > 0) {
        PF_TRY(check_state(a->outputs[next], p, "momentum buffer"));
        buf = a->outputs[next]->data;
    }
    double lr, step;
    PF_TRY(read_hyper(a->inputs[1], &lr, &step));
    optim_job j = {p->dtype, 0, 0, 0, lr, mom, 0, wd, alpha, 0, eps, 1, 1, g->data, p->data,
                   a->outputs[1]->data, grad_avg, buf};
    pf_parallel_for(pf_numel(p), OPTIM_PARALLEL_MIN, rmsprop_task, &j);
    return PF_OK;
}

/* "adagrad_update": inputs grad, hyper (float64: lr, step); outputs param, sum.
 * fattr: lr_decay, eps, weight_decay. */
static int k_adagrad_update(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 2));
    PF_TRY(pf_check_attrs(a, 0, 3));
    const pf_tensor *g = a->inputs[0], *p = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "param"));
    PF_TRY(pf_check_float(p, "param"));
    PF_TRY(check_state(g, p, "grad"));
    PF_TRY(check_state(a->outputs[1], p, "sum"));
    double lr_decay = a->fattr[0], eps = a->fattr[1], wd = a->fattr[2];
    PF_CHECK(lr_decay >= 0 && eps >= 0 && wd >= 0, PF_ERR_ARGUMENT,
             "lr_decay, eps and weight_decay must be >= 0, got %g, %g, %g", lr_decay, eps, wd);
    double lr, step;
    PF_TRY(read_hyper(a->inputs[1], &lr, &step));
    optim_job j = {p->dtype, 0, 0, 0, lr / (1.0 + (step - 1.0) * lr_decay), 0, 0, wd, 0, 0, eps,
                   1, 1, g->data, p->data, a->outputs[1]->data, NULL, NULL};
    pf_parallel_for(pf_numel(p), OPTIM_PARALLEL_MIN, adagrad_task, &j);
    return PF_OK;
}

/* ---- gradient clipping by norm (before the updates; clipping by value is the clip op) ---- */

#define SUMSQ_CHUNK 65536
#define SUMSQ_MAX_CHUNKS 256

typedef struct {
    const void *x;
    int dtype;
    int64_t n, chunk;
    double *partial;
} sumsq_job;

static PF_HOT void sumsq_task(void *ctx, int64_t b, int64_t e) {
    const sumsq_job *j = (const sumsq_job *)ctx;
    for (int64_t c = b; c < e; c++) {
        int64_t lo = c * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
        double s = 0;
        if (j->dtype == PF_FLOAT32) {
            const float *x = (const float *)j->x;
            for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
        } else {
            const double *x = (const double *)j->x;
            for (int64_t i = lo; i < hi; i++) s += x[i] * x[i];
        }
        j->partial[c] = s;
    }
}

/* Sum of squares in fixed chunks added in order: the same result whatever the thread count. */
static double sum_of_squares(const pf_tensor *t) {
    int64_t n = pf_numel(t);
    int64_t chunk = SUMSQ_CHUNK;
    if ((n + chunk - 1) / chunk > SUMSQ_MAX_CHUNKS) chunk = (n + SUMSQ_MAX_CHUNKS - 1) / SUMSQ_MAX_CHUNKS;
    int64_t chunks = (n + chunk - 1) / chunk;
    double partial[SUMSQ_MAX_CHUNKS];
    sumsq_job j = {t->data, t->dtype, n, chunk, partial};
    pf_parallel_for(chunks, 1, sumsq_task, &j);
    double s = 0;
    for (int64_t c = 0; c < chunks; c++) s += partial[c];
    return s;
}

/* "grad_sumsq": inputs 1..16 float gradients; output a float64 accumulator (1 element) that
 * receives the sum of their squares (in float64). iattr[0]: 1 adds to the accumulator, 0
 * overwrites it (so a global norm over many parameters takes several calls). */
static int k_grad_sumsq(const pf_args *a) {
    PF_CHECK(a != NULL, PF_ERR_ARGUMENT, "null argument block");
    PF_TRY(pf_check_arity(a, 1, PF_MAX_IN, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *acc = a->outputs[0];
    PF_TRY(pf_check_contiguous(acc, "accumulator"));
    PF_TRY(pf_check_dtype(acc, PF_FLOAT64, "accumulator"));
    PF_CHECK(pf_numel(acc) >= 1, PF_ERR_SHAPE, "the accumulator needs one element");
    double s = a->iattr[0] ? ((const double *)acc->data)[0] : 0.0;
    for (int i = 0; i < a->n_in; i++) {
        char what[32];
        snprintf(what, sizeof what, "gradient %d", i);
        PF_TRY(pf_check_contiguous(a->inputs[i], what));
        PF_TRY(pf_check_float(a->inputs[i], what));
        s += sum_of_squares(a->inputs[i]);
    }
    ((double *)acc->data)[0] = s;
    return PF_OK;
}

typedef struct {
    const void *x;
    void *y;
    int dtype;
    double scale;
} scale_job;

static PF_HOT void scale_task(void *ctx, int64_t b, int64_t e) {
    const scale_job *j = (const scale_job *)ctx;
    if (j->dtype == PF_FLOAT32) {
        const float *x = (const float *)j->x;
        float *y = (float *)j->y, s = (float)j->scale;
        for (int64_t i = b; i < e; i++) y[i] = x[i] * s;
    } else {
        const double *x = (const double *)j->x;
        double *y = (double *)j->y, s = j->scale;
        for (int64_t i = b; i < e; i++) y[i] = x[i] * s;
    }
}

/* "clip_by_norm": inputs the float64 sum of squares from grad_sumsq and a gradient; output the
 * gradient scaled by max_norm / norm when norm = sqrt(sum) exceeds max_norm, else copied
 * (Keras' clip_by_norm / clip_by_global_norm; the output may alias the gradient).
 * fattr: max_norm. A NaN norm makes the gradient NaN, so a diverged step shows instead of
 * being silently skipped. */
static int k_clip_by_norm(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 0, 1));
    const pf_tensor *acc = a->inputs[0], *g = a->inputs[1], *out = a->outputs[0];
    PF_TRY(pf_check_contiguous(acc, "sum of squares"));
    PF_TRY(pf_check_dtype(acc, PF_FLOAT64, "sum of squares"));
    PF_CHECK(pf_numel(acc) >= 1, PF_ERR_SHAPE, "the sum of squares needs one element");
    PF_TRY(pf_check_contiguous(g, "gradient"));
    PF_TRY(pf_check_float(g, "gradient"));
    PF_TRY(check_state(out, g, "output"));
    double max_norm = a->fattr[0];
    PF_CHECK(max_norm > 0, PF_ERR_ARGUMENT, "max_norm must be > 0, got %g", max_norm);
    double norm = sqrt(((const double *)acc->data)[0]);
    scale_job j = {g->data, out->data, g->dtype, norm <= max_norm ? 1.0 : max_norm / norm};
    pf_parallel_for(pf_numel(g), OPTIM_PARALLEL_MIN, scale_task, &j);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_optim[] = {
    {"sgd_update", k_sgd_update, NULL},
    {"adam_update", k_adam_update, NULL},
    {"rmsprop_update", k_rmsprop_update, NULL},
    {"adagrad_update", k_adagrad_update, NULL},
    {"grad_sumsq", k_grad_sumsq, NULL},
    {"clip_by_norm", k_clip_by_norm, NULL},
    {NULL, NULL, NULL},
};
