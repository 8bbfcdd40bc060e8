/* optim.cu -- the CUDA twin of optim.c: fused, in-place SGD (momentum, Nesterov),
 * Adam/AdamW, RMSprop and AdaGrad updates, and global-norm gradient clipping. The learning rate and the step number
 * are read on the device from the float64 "hyper" tensor, so a captured CUDA graph follows
 * learning-rate schedules without being captured again. Formulas as optim.c (PyTorch's). */
#include "internal.cuh"

static int check_state(const pf_tensor *t, const pf_tensor *param, const char *what) {
    PF_TRY(pf_check_contiguous(t, what));
    PF_TRY(pf_check_dtype(t, param->dtype, what));
    PF_TRY(pf_check_same_shape(t, param, what, "param"));
    return PF_OK;
}

static int check_hyper(const pf_tensor *h) {
    PF_TRY(pf_check_contiguous(h, "hyper"));
    PF_TRY(pf_check_dtype(h, PF_FLOAT64, "hyper"));
    PF_CHECK(pf_numel(h) >= 2, PF_ERR_SHAPE, "hyper must hold (learning rate, step)");
    return PF_OK;
}

template <typename T>
__global__ void sgd_kernel(int64_t n, const double *hyper, const T *g, T *p, T *buf, T mom,
                           T damp, T wd, int nesterov) {
    T lr = (T)hyper[0];
    int first = hyper[1] == 1;
    PF_GRID_LOOP(i, n) {
        T d = g[i] + wd * p[i];
        if (buf) {
            T v = first ? d : mom * buf[i] + ((T)1 - damp) * d;
            buf[i] = v;
            d = nesterov ? d + mom * v : v;
        }
        p[i] -= lr * d;
    }
}

static int k_sgd_update(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, a->n_out == 2 ? 2 : 1));
    PF_TRY(pf_check_attrs(a, 1, 3));
    const pf_tensor *g = a->inputs[0], *p = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "param"));
    PF_TRY(pf_check_float(p, "param"));
    PF_TRY(check_state(g, p, "grad"));
    PF_TRY(check_hyper(a->inputs[1]));
    void *buf = NULL;
    if (a->n_out == 2) {
        PF_TRY(check_state(a->outputs[1], p, "momentum buffer"));
        buf = a->outputs[1]->data;
    }
    if (a->fattr[0] == 0) buf = NULL;
    int64_t n = pf_numel(p);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(p->dtype, T, sgd_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        n, (const double *)a->inputs[1]->data, (const T *)g->data, (T *)p->data, (T *)buf,
        (T)a->fattr[0], (T)a->fattr[1], (T)a->fattr[2], a->iattr[0] != 0));
    return PF_LAUNCHED();
}

template <typename T>
__global__ void adam_kernel(int64_t n, const double *hyper, const T *g, T *p, T *m, T *v, double b1d,
                            double b2d, T eps, double wdd, int decoupled) {
    double lr = hyper[0], step_no = hyper[1];
    double bc1 = 1.0 - pow(b1d, step_no), bc2 = 1.0 - pow(b2d, step_no);
    T b1 = (T)b1d, b2 = (T)b2d, wd = (T)wdd;
    T step = (T)(lr / bc1), rbc2 = (T)(1.0 / sqrt(bc2)), decay = (T)(1.0 - lr * wdd);
    PF_GRID_LOOP(i, n) {
        T gi = g[i];
        if (decoupled) p[i] *= decay;
        else gi += wd * p[i];
        T mi = b1 * m[i] + ((T)1 - b1) * gi;
        T vi = b2 * v[i] + ((T)1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step * mi / (sqrt(vi) * rbc2 + eps);
    }
}

static int k_adam_update(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 3));
    PF_TRY(pf_check_attrs(a, 1, 4));
    const pf_tensor *g = a->inputs[0], *p = a->outputs[0];
    PF_TRY(pf_check_contiguous(p, "param"));
    PF_TRY(pf_check_float(p, "param"));
    PF_TRY(check_state(g, p, "grad"));
    PF_TRY(check_state(a->outputs[1], p, "m"));
    PF_TRY(check_state(a->outputs[2], p, "v"));
    PF_TRY(check_hyper(a->inputs[1]));
    double b1 = a->fattr[0], b2 = a->fattr[1];
    PF_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, PF_ERR_ARGUMENT,
             "betas must lie in [0, 1), got (%g, %g)", b1, b2);
    int64_t n = pf_numel(p);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(p->dtype, T, adam_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        n, (const double *)a->inputs[1]->data, (const T *)g->data, (T *)p->data,
        (T *)a->outputs[1]->data, (T *)a->outputs[2]->data, b1, b2, (T)a->fattr[2],
        a->fattr[3], a->iattr[0] != 0));
    return PF_LAUNCHED();
}

/* RMSprop: square average, gradient average (centered, else NULL), momentum buffer (momentum
 * > 0, else NULL) */
template <typename T>
__global__ void rmsprop_kernel(int64_t n, const double *hyper, const T *g, T *p, T *sq, T *ga,
                               T *buf, T alpha, T eps, T wd, T mom) {
    T lr = (T)hyper[0];
    PF_GRID_LOOP(i, n) {
        T gi = g[i] + wd * p[i];
        T si = alpha * sq[i] + ((T)1 - alpha) * gi * gi;
        sq[i] = si;
        if (ga) {
            T ai = alpha * ga[i] + ((T)1 - alpha) * gi;
            ga[i] = ai;
            si -= ai * ai;
        }
        T step = gi / (sqrt(si) + eps);
        if (buf) {
            step += mom * buf[i];
            buf[i] = step;
        }
        p[i] -= lr * step;
    }
}

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
    PF_TRY(check_hyper(a->inputs[1]));
    int64_t n = pf_numel(p);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(p->dtype, T, rmsprop_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(n, (const double *)a->inputs[1]->data, (const T *)g->data,
                                     (T *)p->data, (T *)a->outputs[1]->data, (T *)grad_avg,
                                     (T *)buf, (T)alpha, (T)eps, (T)wd, (T)mom));
    return PF_LAUNCHED();
}

/* AdaGrad: lr / (1 + (step - 1) lr_decay), from the device's hyper tensor */
template <typename T>
__global__ void adagrad_kernel(int64_t n, const double *hyper, const T *g, T *p, T *sum,
                               double lr_decay, T eps, T wd) {
    T lr = (T)(hyper[0] / (1.0 + (hyper[1] - 1.0) * lr_decay));
    PF_GRID_LOOP(i, n) {
        T gi = g[i] + wd * p[i];
        T si = sum[i] + gi * gi;
        sum[i] = si;
        p[i] -= lr * gi / (sqrt(si) + eps);
    }
}

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
    PF_TRY(check_hyper(a->inputs[1]));
    int64_t n = pf_numel(p);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(p->dtype, T, adagrad_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(n, (const double *)a->inputs[1]->data, (const T *)g->data,
                                     (T *)p->data, (T *)a->outputs[1]->data, lr_decay, (T)eps,
                                     (T)wd));
    return PF_LAUNCHED();
}

/* "grad_sumsq": one block adds the squares of up to 16 gradients, in a fixed order */
struct sumsq_inputs {
    int n, dtype[PF_MAX_IN];
    int64_t len[PF_MAX_IN];
    const void *data[PF_MAX_IN];
};

__global__ void sumsq_kernel(sumsq_inputs in, double *acc, int accumulate) {
    double s = 0;
    for (int t = 0; t < in.n; t++)
        for (int64_t i = threadIdx.x; i < in.len[t]; i += blockDim.x) {
            double v = in.dtype[t] == PF_FLOAT32 ? (double)((const float *)in.data[t])[i]
                                                 : ((const double *)in.data[t])[i];
            s += v * v;
        }
    s = pf_block_sum(s);
    if (threadIdx.x == 0) acc[0] = (accumulate ? acc[0] : 0.0) + s;
}

static int k_grad_sumsq(const pf_args *a) {
    PF_CHECK(a != NULL, PF_ERR_ARGUMENT, "null argument block");
    PF_TRY(pf_check_arity(a, 1, PF_MAX_IN, 1));
    PF_TRY(pf_check_attrs(a, 1, 0));
    const pf_tensor *acc = a->outputs[0];
    PF_TRY(pf_check_contiguous(acc, "accumulator"));
    PF_TRY(pf_check_dtype(acc, PF_FLOAT64, "accumulator"));
    PF_CHECK(pf_numel(acc) >= 1, PF_ERR_SHAPE, "the accumulator needs one element");
    sumsq_inputs in;
    memset(&in, 0, sizeof in);
    in.n = a->n_in;
    for (int i = 0; i < a->n_in; i++) {
        char what[32];
        snprintf(what, sizeof what, "gradient %d", i);
        PF_TRY(pf_check_contiguous(a->inputs[i], what));
        PF_TRY(pf_check_float(a->inputs[i], what));
        in.dtype[i] = a->inputs[i]->dtype;
        in.len[i] = pf_numel(a->inputs[i]);
        in.data[i] = a->inputs[i]->data;
    }
    sumsq_kernel<<<1, 1024, 0, pf_stream()>>>(in, (double *)acc->data, a->iattr[0] != 0);
    return PF_LAUNCHED();
}

template <typename T>
__global__ void clip_kernel(int64_t n, const double *sumsq, double max_norm, const T *g, T *out) {
    double norm = sqrt(sumsq[0]);
    T scale = (T)(norm <= max_norm ? 1.0 : max_norm / norm);   /* NaN norm: NaN gradient */
    PF_GRID_LOOP(i, n) out[i] = g[i] * scale;
}

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
    int64_t n = pf_numel(g);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(g->dtype, T, clip_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        n, (const double *)acc->data, max_norm, (const T *)g->data, (T *)out->data));
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_optim[] = {
    {"sgd_update", k_sgd_update, NULL},
    {"adam_update", k_adam_update, NULL},
    {"rmsprop_update", k_rmsprop_update, NULL},
    {"adagrad_update", k_adagrad_update, NULL},
    {"grad_sumsq", k_grad_sumsq, NULL},
    {"clip_by_norm", k_clip_by_norm, NULL},
    {NULL, NULL, NULL},
};
