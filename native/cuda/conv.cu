/* conv.cu -- the CUDA twin of conv.c: convolutions over 1 to 3 spatial dims, channels first
 * (stride, begin/end padding, dilation, groups), forward with fused bias and activation, and
 * the gradients with respect to input, weight and bias (a fused ReLU's gradient applied from
 * y, as in conv.c).
 *
 * Direct convolution: one thread per output element of each kernel (y, grad_x, grad_kernel,
 * grad_bias), summing in double in a fixed order -- exact to the CPU's float32 rounding and
 * deterministic, no scratch memory, but far from cuDNN's speed on large layers; cuDNN (bound
 * at run time like cuBLAS) is the planned fast path. */
#include "internal.cuh"

#define CONV_DIMS 3

struct conv_geom {
    int act, masked;
    int64_t N, C, O, G, Cg, Og;
    int64_t in[CONV_DIMS], k[CONV_DIMS], out[CONV_DIMS], st[CONV_DIMS], dil[CONV_DIMS],
        pb[CONV_DIMS];
    int64_t in_size, out_size, k_size;
};

static void format_dims(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
}

/* conv.c's conv_geometry, message for message */
static int conv_geometry(const pf_args *a, const pf_tensor *x, const pf_tensor *w,
                         const pf_tensor *y, const char *xn, const char *wn, const char *yn,
                         conv_geom *g) {
    PF_CHECK(a->n_iattr >= 1 && a->iattr != NULL, PF_ERR_ARGUMENT,
             "missing the geometry attributes");
    int nd = (int)a->iattr[0];
    PF_CHECK(nd >= 1 && nd <= CONV_DIMS, PF_ERR_ARGUMENT, "%d spatial dims (1..3 supported)", nd);
    PF_TRY(pf_check_attrs(a, 2 + 4 * nd, 0));
    PF_TRY(pf_check_contiguous(x, xn));
    PF_TRY(pf_check_contiguous(w, wn));
    PF_TRY(pf_check_contiguous(y, yn));
    PF_TRY(pf_check_float(x, xn));
    PF_TRY(pf_check_dtype(w, x->dtype, wn));
    PF_TRY(pf_check_dtype(y, x->dtype, yn));
    char sx[160], sw[160], sy[160];
    format_dims(x, sx, sizeof sx);
    format_dims(w, sw, sizeof sw);
    format_dims(y, sy, sizeof sy);
    PF_CHECK(x->ndim == nd + 2 && w->ndim == nd + 2 && y->ndim == nd + 2, PF_ERR_SHAPE,
             "%d-D convolution needs %d-dim tensors: %s %s, %s %s, %s %s", nd, nd + 2, xn, sx,
             wn, sw, yn, sy);
    memset(g, 0, sizeof *g);
    g->N = x->shape[0];
    g->C = x->shape[1];
    g->O = w->shape[0];
    g->Cg = w->shape[1];
    g->G = a->iattr[1 + 4 * nd];
    g->act = a->n_iattr > 2 + 4 * nd ? (int)a->iattr[2 + 4 * nd] : PF_ACT_NONE;
    PF_CHECK(a->n_iattr <= 3 + 4 * nd || a->iattr[3 + 4 * nd] == 0, PF_ERR_ARGUMENT,
             "the CUDA convolution does not fuse a max pool (the compiled plans that fuse it "
             "run on the CPU)");
    PF_CHECK(g->G >= 1, PF_ERR_ARGUMENT, "groups must be positive, got %lld", (long long)g->G);
    PF_CHECK(g->Cg >= 1 && g->C == g->Cg * g->G, PF_ERR_SHAPE,
             "%s %s has %lld channels but %s %s with %lld groups expects %lld", xn, sx,
             (long long)g->C, wn, sw, (long long)g->G, (long long)(g->Cg * g->G));
    PF_CHECK(g->O % g->G == 0, PF_ERR_SHAPE,
             "%lld output channels of %s %s do not split into %lld groups", (long long)g->O, wn,
             sw, (long long)g->G);
    g->Og = g->O / g->G;
    PF_CHECK(y->shape[0] == g->N && y->shape[1] == g->O, PF_ERR_SHAPE,
             "%s %s does not match %s %s and %s %s", yn, sy, xn, sx, wn, sw);
    int off = CONV_DIMS - nd;
    for (int d = 0; d < CONV_DIMS; d++) {
        g->in[d] = g->k[d] = g->out[d] = g->st[d] = g->dil[d] = 1;
        g->pb[d] = 0;
    }
    for (int d = 0; d < nd; d++) {
        int64_t in = x->shape[2 + d], k = w->shape[2 + d];
        int64_t st = a->iattr[1 + d], dil = a->iattr[1 + nd + d];
        int64_t pb = a->iattr[1 + 2 * nd + d], pe = a->iattr[1 + 3 * nd + d];
        PF_CHECK(st >= 1 && dil >= 1, PF_ERR_ARGUMENT,
                 "stride and dilation must be positive (dim %d: stride %lld, dilation %lld)", d,
                 (long long)st, (long long)dil);
        PF_CHECK(pb >= 0 && pe >= 0, PF_ERR_ARGUMENT, "negative padding in dim %d", d);
        PF_CHECK(k >= 1, PF_ERR_SHAPE, "%s %s has an empty kernel", wn, sw);
        int64_t span = dil * (k - 1) + 1, padded = in + pb + pe;
        PF_CHECK(padded >= span, PF_ERR_SHAPE,
                 "the kernel spans %lld in spatial dim %d (dilation %lld) but the padded input "
                 "%s has only %lld there", (long long)span, d, (long long)dil, sx,
                 (long long)padded);
        int64_t out = (padded - span) / st + 1;
        PF_CHECK(y->shape[2 + d] == out, PF_ERR_SHAPE,
                 "%s %s should have size %lld in spatial dim %d for %s %s and %s %s", yn, sy,
                 (long long)out, d, xn, sx, wn, sw);
        g->in[off + d] = in;
        g->k[off + d] = k;
        g->out[off + d] = out;
        g->st[off + d] = st;
        g->dil[off + d] = dil;
        g->pb[off + d] = pb;
    }
    g->in_size = g->in[0] * g->in[1] * g->in[2];
    g->out_size = g->out[0] * g->out[1] * g->out[2];
    g->k_size = g->k[0] * g->k[1] * g->k[2];
    PF_CHECK(g->act >= PF_ACT_NONE && g->act <= PF_ACT_TANH, PF_ERR_ARGUMENT,
             "activation %d cannot be fused into a convolution", g->act);
    return PF_OK;
}

/* position p (of out) and kernel offset k (of k) read input i in dim d, or -1 (padding) */
__device__ __forceinline__ int64_t in_at(const conv_geom &g, int d, int64_t p, int64_t k) {
    int64_t i = p * g.st[d] - g.pb[d] + k * g.dil[d];
    return i >= 0 && i < g.in[d] ? i : -1;
}

/* the output position in dim d that reads input i through kernel offset k, or -1 */
__device__ __forceinline__ int64_t out_at(const conv_geom &g, int d, int64_t i, int64_t k) {
    int64_t t = i + g.pb[d] - k * g.dil[d];
    if (t < 0 || t % g.st[d] != 0) return -1;
    t /= g.st[d];
    return t < g.out[d] ? t : -1;
}

__device__ __forceinline__ void split3(int64_t flat, const int64_t *size, int64_t *c) {
    c[2] = flat % size[2];
    c[1] = (flat / size[2]) % size[1];
    c[0] = flat / (size[2] * size[1]);
}

template <typename T>
__global__ void conv_kernel(conv_geom g, const T *x, const T *w, const T *b, T *y) {
    PF_GRID_LOOP(e, g.N * g.O * g.out_size) {
        int64_t n = e / (g.O * g.out_size), o = (e / g.out_size) % g.O, p[3], kk[3], i[3];
        split3(e % g.out_size, g.out, p);
        int64_t c0 = (o / g.Og) * g.Cg;
        double sum = b ? (double)b[o] : 0.0;
        for (int64_t c = 0; c < g.Cg; c++) {
            const T *xc = x + (n * g.C + c0 + c) * g.in_size;
            const T *wc = w + (o * g.Cg + c) * g.k_size;
            for (int64_t k = 0; k < g.k_size; k++) {
                split3(k, g.k, kk);
                i[0] = in_at(g, 0, p[0], kk[0]);
                i[1] = in_at(g, 1, p[1], kk[1]);
                i[2] = in_at(g, 2, p[2], kk[2]);
                if (i[0] < 0 || i[1] < 0 || i[2] < 0) continue;
                sum += (double)xc[(i[0] * g.in[1] + i[1]) * g.in[2] + i[2]] * (double)wc[k];
            }
        }
        T v = (T)sum;
        switch (g.act) {
        case PF_ACT_RELU: v = v > 0 || v != v ? v : (T)0; break;
        case PF_ACT_SIGMOID: v = pf_sigmoid(v); break;
        case PF_ACT_TANH: v = tanh(v); break;
        default: break;
        }
        y[e] = v;
    }
}

/* grad_y at (n, o, flat output position), zero where a fused ReLU's y was not positive */
template <typename T>
__device__ __forceinline__ double grad_at(const conv_geom &g, const T *gy, const T *mask,
                                          int64_t at) {
    return mask && !(mask[at] > 0) ? 0.0 : (double)gy[at];
}

template <typename T>
__global__ void conv_grad_input_kernel(conv_geom g, const T *gy, const T *w, const T *mask,
                                       T *gx) {
    PF_GRID_LOOP(e, g.N * g.C * g.in_size) {
        int64_t n = e / (g.C * g.in_size), c = (e / g.in_size) % g.C, i[3], kk[3], p[3];
        split3(e % g.in_size, g.in, i);
        int64_t grp = c / g.Cg, cl = c % g.Cg;
        double sum = 0;
        for (int64_t o = grp * g.Og; o < (grp + 1) * g.Og; o++) {
            const T *wo = w + (o * g.Cg + cl) * g.k_size;
            int64_t base = (n * g.O + o) * g.out_size;
            for (int64_t k = 0; k < g.k_size; k++) {
                split3(k, g.k, kk);
                p[0] = out_at(g, 0, i[0], kk[0]);
                p[1] = out_at(g, 1, i[1], kk[1]);
                p[2] = out_at(g, 2, i[2], kk[2]);
                if (p[0] < 0 || p[1] < 0 || p[2] < 0) continue;
                sum += grad_at(g, gy, mask, base + (p[0] * g.out[1] + p[1]) * g.out[2] + p[2]) *
                       (double)wo[k];
            }
        }
        gx[e] = (T)sum;
    }
}

template <typename T>
__global__ void conv_grad_weight_kernel(conv_geom g, const T *x, const T *gy, const T *mask,
                                        T *gw) {
    PF_GRID_LOOP(e, g.O * g.Cg * g.k_size) {
        int64_t o = e / (g.Cg * g.k_size), cl = (e / g.k_size) % g.Cg, kk[3], p[3], i[3];
        split3(e % g.k_size, g.k, kk);
        int64_t c = (o / g.Og) * g.Cg + cl;
        double sum = 0;
        for (int64_t n = 0; n < g.N; n++) {
            const T *xc = x + (n * g.C + c) * g.in_size;
            int64_t base = (n * g.O + o) * g.out_size;
            for (int64_t q = 0; q < g.out_size; q++) {
                split3(q, g.out, p);
                i[0] = in_at(g, 0, p[0], kk[0]);
                i[1] = in_at(g, 1, p[1], kk[1]);
                i[2] = in_at(g, 2, p[2], kk[2]);
                if (i[0] < 0 || i[1] < 0 || i[2] < 0) continue;
                sum += grad_at(g, gy, mask, base + q) *
                       (double)xc[(i[0] * g.in[1] + i[1]) * g.in[2] + i[2]];
            }
        }
        gw[e] = (T)sum;
    }
}

/* grad_bias[o]: the sum of grad_y (masked) over batch and positions */
template <typename T>
__global__ void bias_grad_kernel(int64_t N, int64_t O, int64_t P, const T *gy, const T *mask,
                                 T *gb) {
    PF_GRID_LOOP(o, O) {
        double sum = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t q = 0; q < P; q++) {
                int64_t at = (n * O + o) * P + q;
                sum += mask && !(mask[at] > 0) ? 0.0 : (double)gy[at];
            }
        gb[o] = (T)sum;
    }
}

/* y of a fused ReLU (third input of the gradient kernels) masks grad_y */
static int check_mask(const pf_args *a, const pf_tensor *gy, int dtype, const void **mask) {
    *mask = NULL;
    if (a->n_in > 2) {
        const pf_tensor *y = a->inputs[2];
        PF_TRY(pf_check_contiguous(y, "y"));
        PF_TRY(pf_check_dtype(y, dtype, "y"));
        PF_TRY(pf_check_same_shape(y, gy, "y", "grad_y"));
        *mask = y->data;
    }
    return PF_OK;
}

static int k_conv(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 3, 1));
    conv_geom g;
    const pf_tensor *x = a->inputs[0], *w = a->inputs[1], *y = a->outputs[0];
    PF_TRY(conv_geometry(a, x, w, y, "x", "kernel", "y", &g));
    const void *b = NULL;
    if (a->n_in > 2) {
        const pf_tensor *bt = a->inputs[2];
        PF_TRY(pf_check_contiguous(bt, "bias"));
        PF_TRY(pf_check_dtype(bt, x->dtype, "bias"));
        PF_CHECK(bt->ndim == 1 && bt->shape[0] == g.O, PF_ERR_SHAPE,
                 "bias has %lld elements for %lld output channels", (long long)pf_numel(bt),
                 (long long)g.O);
        b = bt->data;
    }
    int64_t n = g.N * g.O * g.out_size;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, conv_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        g, (const T *)x->data, (const T *)w->data, (const T *)b, (T *)y->data));
    return PF_LAUNCHED();
}

static int k_conv_grad_input(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 3, 1));
    conv_geom g;
    const pf_tensor *gy = a->inputs[0], *w = a->inputs[1], *gx = a->outputs[0];
    PF_TRY(conv_geometry(a, gx, w, gy, "grad_x", "kernel", "grad_y", &g));
    const void *mask;
    PF_TRY(check_mask(a, gy, gx->dtype, &mask));
    int64_t n = g.N * g.C * g.in_size;
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(gx->dtype, T, conv_grad_input_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(g, (const T *)gy->data, (const T *)w->data,
                                     (const T *)mask, (T *)gx->data));
    return PF_LAUNCHED();
}

static int k_conv_grad_weight(const pf_args *a) {
    PF_CHECK(a != NULL && (a->n_out == 1 || a->n_out == 2), PF_ERR_ARGUMENT,
             "expected 1 or 2 outputs (grad_kernel[, grad_bias])");
    PF_TRY(pf_check_arity(a, 2, 3, a->n_out));
    conv_geom g;
    const pf_tensor *x = a->inputs[0], *gy = a->inputs[1], *gw = a->outputs[0];
    PF_TRY(conv_geometry(a, x, gw, gy, "x", "grad_kernel", "grad_y", &g));
    const pf_tensor *gb = a->n_out == 2 ? a->outputs[1] : NULL;
    if (gb) {
        PF_TRY(pf_check_contiguous(gb, "grad_bias"));
        PF_TRY(pf_check_dtype(gb, x->dtype, "grad_bias"));
        PF_CHECK(gb->ndim == 1 && gb->shape[0] == g.O, PF_ERR_SHAPE,
                 "grad_bias has %lld elements for %lld output channels",
                 (long long)pf_numel(gb), (long long)g.O);
    }
    const void *mask;
    PF_TRY(check_mask(a, gy, x->dtype, &mask));
    int64_t n = g.O * g.Cg * g.k_size;
    PF_FLOAT_DISPATCH(x->dtype, T,
        if (n > 0)
            conv_grad_weight_kernel<T><<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
                g, (const T *)x->data, (const T *)gy->data, (const T *)mask, (T *)gw->data);
        if (gb && g.O > 0)
            bias_grad_kernel<T><<<pf_blocks(g.O), PF_THREADS, 0, pf_stream()>>>(
                g.N, g.O, g.out_size, (const T *)gy->data, (const T *)mask, (T *)gb->data));
    return PF_LAUNCHED();
}

static int k_conv_grad_bias(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 2, 1));
    const pf_tensor *gy = a->inputs[0], *gb = a->outputs[0];
    PF_TRY(pf_check_contiguous(gy, "grad_y"));
    PF_TRY(pf_check_contiguous(gb, "grad_bias"));
    PF_TRY(pf_check_float(gy, "grad_y"));
    PF_TRY(pf_check_dtype(gb, gy->dtype, "grad_bias"));
    PF_CHECK(gy->ndim == 3, PF_ERR_SHAPE, "grad_y must be viewed as (batch, channels, positions)");
    PF_CHECK(gb->ndim == 1 && gb->shape[0] == gy->shape[1], PF_ERR_SHAPE,
             "grad_bias has %lld elements for %lld channels", (long long)pf_numel(gb),
             (long long)gy->shape[1]);
    const void *mask = NULL;
    if (a->n_in > 1) {
        PF_TRY(pf_check_contiguous(a->inputs[1], "y"));
        PF_TRY(pf_check_dtype(a->inputs[1], gy->dtype, "y"));
        PF_CHECK(pf_numel(a->inputs[1]) == pf_numel(gy), PF_ERR_SHAPE,
                 "y has %lld elements, grad_y %lld", (long long)pf_numel(a->inputs[1]),
                 (long long)pf_numel(gy));
        mask = a->inputs[1]->data;
    }
    int64_t O = gy->shape[1];
    if (O == 0) return PF_OK;
    PF_FLOAT_DISPATCH(gy->dtype, T, bias_grad_kernel<T><<<pf_blocks(O), PF_THREADS, 0,
                      pf_stream()>>>(gy->shape[0], O, gy->shape[2], (const T *)gy->data,
                                     (const T *)mask, (T *)gb->data));
    return PF_LAUNCHED();
}

const pf_kernel_entry pf_cuda_kernels_conv[] = {
    {"conv", k_conv, NULL},
    {"conv_grad_input", k_conv_grad_input, NULL},
    {"conv_grad_weight", k_conv_grad_weight, NULL},
    {"conv_grad_bias", k_conv_grad_bias, NULL},
    {NULL, NULL, NULL},
};
