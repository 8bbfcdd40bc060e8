/* optim.c -- fused, in-place optimizer updates: one pass over a parameter and its state.
 * The learning rate and the step number come from a small float64 "hyper" tensor, so compiled
 * training plans follow learning-rate schedules without being rebuilt. The formulas follow
 * PyTorch's SGD and Adam/AdamW exactly, so both give the same trajectories. */
#include "internal.h"

#define OPTIM_PARALLEL_MIN 32768

typedef struct {
    int dtype, nesterov, decoupled, first;
    double lr, momentum, dampening, wd, b1, b2, eps, bc1, bc2;
    const void *g;
    void *p, *s1, *s2;
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
                   a->fattr[2], 0, 0, 0, 1, 1, g->data, p->data, buf, NULL};
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
                   a->outputs[1]->data, a->outputs[2]->data};
    pf_parallel_for(pf_numel(p), OPTIM_PARALLEL_MIN, adam_task, &j);
    return PF_OK;
}

const pf_kernel_entry pf_kernels_optim[] = {
    {"sgd_update", k_sgd_update, NULL},
    {"adam_update", k_adam_update, NULL},
    {NULL, NULL, NULL},
};
