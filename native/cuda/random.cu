/* random.cu -- the CUDA twin of random.c: Philox-4x32-10 words and dropout. Word i of a stream
 * is a pure function of (seed, counter, i) -- key = seed, Philox counter = (i / 4 as 64 bits,
 * counter as 64 bits), lane i % 4 -- exactly as on the CPU, so CPU and GPU draw the same masks
 * for the same generator state. The state (int64 (seed, counter)) lives on the device and is
 * read and advanced there, so a captured CUDA graph draws new numbers on every replay. */
#include "internal.cuh"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ uint32_t philox_word(uint64_t seed, uint64_t counter, uint64_t i) {
    uint64_t b = i / 4;
    uint32_t c0 = (uint32_t)b, c1 = (uint32_t)(b >> 32), c2 = (uint32_t)counter,
             c3 = (uint32_t)(counter >> 32);
    uint32_t r0 = (uint32_t)seed, r1 = (uint32_t)(seed >> 32);
#pragma unroll
    for (int round = 0; round < 10; round++) {
        uint32_t hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        uint32_t hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ r0;
        c2 = hi0 ^ c3 ^ r1;
        c1 = lo1;
        c3 = lo0;
        r0 += PHILOX_W0;
        r1 += PHILOX_W1;
    }
    switch (i % 4) {
    case 0: return c0;
    case 1: return c1;
    case 2: return c2;
    default: return c3;
    }
}

static int check_key(const pf_tensor *t, const char *what) {
    PF_TRY(pf_check_contiguous(t, what));
    PF_TRY(pf_check_dtype(t, PF_INT64, what));
    PF_CHECK(pf_numel(t) == 2, PF_ERR_SHAPE, "%s must hold (seed, counter): 2 elements, got %lld",
             what, (long long)pf_numel(t));
    return PF_OK;
}

__global__ void random_bits_kernel(int64_t n, uint64_t seed, uint64_t counter, uint64_t first,
                                   int64_t *y) {
    PF_GRID_LOOP(i, n) y[i] = philox_word(seed, counter, first * 4 + (uint64_t)i);
}

static int k_random_bits(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 0, 0, 1));
    PF_TRY(pf_check_attrs(a, 2, 0));
    const pf_tensor *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(y, PF_INT64, "y"));
    int64_t n = pf_numel(y);
    if (n == 0) return PF_OK;
    uint64_t first = a->n_iattr > 2 ? (uint64_t)a->iattr[2] : 0;
    random_bits_kernel<<<pf_blocks(n), PF_THREADS, 0, pf_stream()>>>(
        n, (uint64_t)a->iattr[0], (uint64_t)a->iattr[1], first, (int64_t *)y->data);
    return PF_LAUNCHED();
}

/* one thread: key = state, then the state's counter advances (before the mask kernel reads
 * the key, by stream order) */
__global__ void advance_kernel(int64_t *state, int64_t *key) {
    key[0] = state[0];
    key[1] = state[1];
    state[1] = (int64_t)((uint64_t)state[1] + 1);
}

template <typename T>
__global__ void dropout_kernel(int64_t n, const int64_t *key, uint64_t threshold, double scale,
                               const T *x, T *y) {
    uint64_t seed = (uint64_t)key[0], counter = (uint64_t)key[1];
    T s = (T)scale;
    PF_GRID_LOOP(i, n)
        y[i] = (uint64_t)philox_word(seed, counter, (uint64_t)i) >= threshold ? x[i] * s : (T)0;
}

static int check_dropout(const pf_args *a, const pf_tensor *x, const pf_tensor *y) {
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_float(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    double p = a->fattr[0];
    PF_CHECK(p >= 0 && p <= 1, PF_ERR_ARGUMENT, "the dropout rate must be in [0, 1], got %g", p);
    return PF_OK;
}

static int launch_dropout(const pf_args *a, const pf_tensor *x, const pf_tensor *y,
                          const pf_tensor *key) {
    double p = a->fattr[0];
    uint64_t threshold = (uint64_t)(p * 4294967296.0);   /* p = 1: 2^32, every word is below */
    double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
    int64_t n = pf_numel(x);
    if (n == 0) return PF_OK;
    PF_FLOAT_DISPATCH(x->dtype, T, dropout_kernel<T><<<pf_blocks(n), PF_THREADS, 0,
                      pf_stream()>>>(n, (const int64_t *)key->data, threshold, scale,
                                     (const T *)x->data, (T *)y->data));
    return PF_LAUNCHED();
}

/* "dropout": inputs x; outputs y, key (what this call drew with), state (advanced in place).
 * fattr: p. */
static int k_dropout(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 3));
    PF_TRY(pf_check_attrs(a, 0, 1));
    const pf_tensor *key = a->outputs[1], *state = a->outputs[2];
    PF_TRY(check_key(key, "key"));
    PF_TRY(check_key(state, "state"));
    PF_TRY(check_dropout(a, a->inputs[0], a->outputs[0]));
    advance_kernel<<<1, 1, 0, pf_stream()>>>((int64_t *)state->data, (int64_t *)key->data);
    PF_TRY(PF_LAUNCHED());
    return launch_dropout(a, a->inputs[0], a->outputs[0], key);
}

/* "dropout_replay": inputs g, key (of the forward); outputs dx masked as the forward. */
static int k_dropout_replay(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 0, 1));
    PF_TRY(check_key(a->inputs[1], "key"));
    PF_TRY(check_dropout(a, a->inputs[0], a->outputs[0]));
    return launch_dropout(a, a->inputs[0], a->outputs[0], a->inputs[1]);
}

const pf_kernel_entry pf_cuda_kernels_random[] = {
    {"random_bits", k_random_bits, NULL},
    {"dropout", k_dropout, NULL},
    {"dropout_replay", k_dropout_replay, NULL},
    {NULL, NULL, NULL},
};
