/* random.c -- random bits from a counter-based generator (Philox-4x32-10, Salmon et al., SC'11)
 * and the dropout kernels built on it.
 *
 * The 32-bit word i of a stream is a pure function of (seed, counter, i): the key is the seed,
 * the Philox counter is (i / 4 as 64 bits, counter as 64 bits) and the word is lane i % 4. So
 * any split of the elements over threads draws the same numbers, and a backward pass can
 * regenerate a mask from the (seed, counter) pair its forward used instead of storing it.
 * A generator state is an int64 tensor (seed, counter): a kernel that draws reads it, uses it,
 * and advances the counter in place, so a compiled plan run again draws new numbers.
 */
#include "internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define PHILOX_LANES 16                     /* Philox blocks computed side by side */
#define WORDS_PER_BATCH (4 * PHILOX_LANES)   /* 64 words */
#define RANDOM_PARALLEL_MIN 32768

/* Words [4*b0, 4*b0 + 64) of the stream: 16 consecutive Philox blocks, vectorised across
 * blocks. out[4*l + w] is word w of block b0 + l. The rounds run inside the loop over blocks
 * (fully unrolled): that form GCC vectorises, 32x32->64-bit products becoming vpmuludq;
 * with the rounds outside, the loop stays scalar. */
static PF_HOT void philox_batch(uint64_t seed, uint64_t counter, uint64_t b0,
                                uint32_t *restrict out) {
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    uint32_t s0 = (uint32_t)counter, s1 = (uint32_t)(counter >> 32);
    for (int l = 0; l < PHILOX_LANES; l++) {
        uint64_t b = b0 + (uint64_t)l;
        uint32_t c0 = (uint32_t)b, c1 = (uint32_t)(b >> 32), c2 = s0, c3 = s1;
        uint32_t r0 = k0, r1 = k1;
#pragma GCC unroll 10
        for (int round = 0; round < 10; round++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
            uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
            c0 = (uint32_t)(p1 >> 32) ^ c1 ^ r0;
            c2 = (uint32_t)(p0 >> 32) ^ c3 ^ r1;
            c1 = (uint32_t)p1;
            c3 = (uint32_t)p0;
            r0 += PHILOX_W0;
            r1 += PHILOX_W1;
        }
        out[4 * l] = c0;
        out[4 * l + 1] = c1;
        out[4 * l + 2] = c2;
        out[4 * l + 3] = c3;
    }
}

static int check_key(const pf_tensor *t, const char *what) {
    PF_TRY(pf_check_contiguous(t, what));
    PF_TRY(pf_check_dtype(t, PF_INT64, what));
    PF_CHECK(pf_numel(t) == 2, PF_ERR_SHAPE, "%s must hold (seed, counter): 2 elements, got %lld",
             what, (long long)pf_numel(t));
    return PF_OK;
}

/* "random_bits": no inputs; outputs y (int64, any contiguous shape): word i of the stream
 * (seed, counter) in y[i], as a value in [0, 2^32). iattr: seed, counter and optionally the
 * first Philox block (default 0: the words dropout compares against its threshold). For
 * tests (known-answer vectors) and diagnostics. */
static int k_random_bits(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 0, 0, 1));
    PF_TRY(pf_check_attrs(a, 2, 0));
    const pf_tensor *y = a->outputs[0];
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_dtype(y, PF_INT64, "y"));
    int64_t n = pf_numel(y);
    int64_t *dst = (int64_t *)y->data;
    uint64_t first = a->n_iattr > 2 ? (uint64_t)a->iattr[2] : 0;
    uint32_t words[WORDS_PER_BATCH];
    for (int64_t i = 0; i < n; i += WORDS_PER_BATCH) {
        philox_batch((uint64_t)a->iattr[0], (uint64_t)a->iattr[1], first + (uint64_t)i / 4,
                     words);
        for (int64_t k = 0; k < WORDS_PER_BATCH && i + k < n; k++) dst[i + k] = words[k];
    }
    return PF_OK;
}

/* ---- dropout ---- */
typedef struct {
    int dtype;
    int64_t n;
    uint64_t seed, counter, threshold;   /* an element is dropped when its word < threshold */
    double scale;                        /* kept elements are multiplied by 1 / (1 - p) */
    const void *x;
    void *y;
} dropout_job;

#define DEFINE_DROPOUT(T, SUF)                                                                 \
    static PF_HOT void dropout_batches_##SUF(const dropout_job *j, int64_t b, int64_t e) {     \
        const T *x = (const T *)j->x;                                                          \
        T *y = (T *)j->y;                                                                      \
        T scale = (T)j->scale;                                                                 \
        uint32_t words[WORDS_PER_BATCH];                                                       \
        for (int64_t batch = b; batch < e; batch++) {                                          \
            int64_t i0 = batch * WORDS_PER_BATCH;                                              \
            int64_t len = j->n - i0 < WORDS_PER_BATCH ? j->n - i0 : WORDS_PER_BATCH;           \
            philox_batch(j->seed, j->counter, (uint64_t)i0 / 4, words);                        \
            for (int64_t k = 0; k < len; k++)                                                  \
                y[i0 + k] = (uint64_t)words[k] >= j->threshold ? x[i0 + k] * scale : (T)0;    \
        }                                                                                      \
    }

DEFINE_DROPOUT(float, f32)
DEFINE_DROPOUT(double, f64)

static void dropout_task(void *p, int64_t b, int64_t e) {
    const dropout_job *j = (const dropout_job *)p;
    if (j->dtype == PF_FLOAT32) dropout_batches_f32(j, b, e);
    else dropout_batches_f64(j, b, e);
}

static int dropout_common(const pf_args *a, const pf_tensor *x, const pf_tensor *y,
                          uint64_t seed, uint64_t counter) {
    PF_TRY(pf_check_contiguous(x, "x"));
    PF_TRY(pf_check_float(x, "x"));
    PF_TRY(pf_check_contiguous(y, "y"));
    PF_TRY(pf_check_same_shape(x, y, "x", "y"));
    PF_TRY(pf_check_dtype(y, x->dtype, "y"));
    double p = a->fattr[0];
    PF_CHECK(p >= 0 && p <= 1, PF_ERR_ARGUMENT, "the dropout rate must be in [0, 1], got %g", p);
    dropout_job j;
    j.dtype = x->dtype;
    j.n = pf_numel(x);
    j.seed = seed;
    j.counter = counter;
    j.threshold = (uint64_t)(p * 4294967296.0);   /* p = 1 gives 2^32: every word is below */
    j.scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
    j.x = x->data;
    j.y = y->data;
    int64_t batches = (j.n + WORDS_PER_BATCH - 1) / WORDS_PER_BATCH;
    pf_parallel_for(batches, RANDOM_PARALLEL_MIN / WORDS_PER_BATCH, dropout_task, &j);
    return PF_OK;
}

/* "dropout": inputs x (contiguous); outputs y (x's shape), key (int64 (seed, counter): what
 * this call drew with, for the backward) and state (int64 (seed, counter), read and advanced
 * in place). fattr: p, the probability of dropping an element. y = x / (1 - p) where kept. */
static int k_dropout(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 1, 1, 3));
    PF_TRY(pf_check_attrs(a, 0, 1));
    const pf_tensor *key = a->outputs[1], *state = a->outputs[2];
    PF_TRY(check_key(key, "key"));
    PF_TRY(check_key(state, "state"));
    int64_t *st = (int64_t *)state->data;
    uint64_t seed = (uint64_t)st[0], counter = (uint64_t)st[1];
    PF_TRY(dropout_common(a, a->inputs[0], a->outputs[0], seed, counter));
    ((int64_t *)key->data)[0] = (int64_t)seed;
    ((int64_t *)key->data)[1] = (int64_t)counter;
    st[1] = (int64_t)(counter + 1);
    return PF_OK;
}

/* "dropout_replay": inputs g (contiguous), key (int64 (seed, counter) of the forward); outputs
 * dx = g masked and scaled exactly as the forward masked x. fattr: p. */
static int k_dropout_replay(const pf_args *a) {
    PF_TRY(pf_check_arity(a, 2, 2, 1));
    PF_TRY(pf_check_attrs(a, 0, 1));
    const pf_tensor *key = a->inputs[1];
    PF_TRY(check_key(key, "key"));
    const int64_t *k = (const int64_t *)key->data;
    return dropout_common(a, a->inputs[0], a->outputs[0], (uint64_t)k[0], (uint64_t)k[1]);
}

const pf_kernel_entry pf_kernels_random[] = {
    {"random_bits", k_random_bits, NULL},
    {"dropout", k_dropout, NULL},
    {"dropout_replay", k_dropout_replay, NULL},
    {NULL, NULL, NULL},
};
