/* runtime.c -- errors, argument checks, the thread pool, the BLAS binding, the kernel table and
 * the plan runner. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PF_PAUSE() _mm_pause()
#else
#define PF_PAUSE() ((void)0)
#endif

/* ------------------------------------------------------------------------------------------ */
/* errors                                                                                      */

static __thread char tls_error[1024];
static __thread const char *tls_kernel;   /* name of the kernel running, for messages */

const char *pf_last_error(void) { return tls_error; }
void pf_clear_error(void) { tls_error[0] = 0; }
int pf_abi_version(void) { return PF_ABI_VERSION; }
int pf_set_error(int status, const char *message) {
    return pf_fail(status, "%s", message ? message : "(no message)");
}

int pf_fail(int status, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (tls_kernel)
        snprintf(tls_error, sizeof tls_error, "kernel '%s': %s", tls_kernel, msg);
    else
        snprintf(tls_error, sizeof tls_error, "%s", msg);
    return status;
}

/* ------------------------------------------------------------------------------------------ */
/* argument checks                                                                             */

const char *pf_dtype_name(int dtype) {
    switch (dtype) {
    case PF_FLOAT32: return "float32";
    case PF_FLOAT64: return "float64";
    case PF_INT32: return "int32";
    case PF_INT64: return "int64";
    case PF_BOOL: return "bool";
    default: return "unknown dtype";
    }
}

size_t pf_dtype_size(int dtype) {
    switch (dtype) {
    case PF_FLOAT32: case PF_INT32: return 4;
    case PF_FLOAT64: case PF_INT64: return 8;
    case PF_BOOL: return 1;
    default: return 0;
    }
}

int64_t pf_numel(const pf_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int pf_is_contiguous(const pf_tensor *t) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect) return 0;
        expect *= t->shape[i];
    }
    return 1;
}

int pf_check_arity(const pf_args *a, int n_in_min, int n_in_max, int n_out) {
    PF_CHECK(a != NULL, PF_ERR_ARGUMENT, "null argument block");
    PF_CHECK(a->n_in >= n_in_min && a->n_in <= n_in_max && a->n_in <= PF_MAX_IN, PF_ERR_ARGUMENT,
             "expected %d..%d inputs, got %d", n_in_min, n_in_max, a->n_in);
    PF_CHECK(a->n_out == n_out, PF_ERR_ARGUMENT, "expected %d outputs, got %d", n_out, a->n_out);
    for (int i = 0; i < a->n_in; i++)
        PF_CHECK(a->inputs[i] != NULL, PF_ERR_ARGUMENT, "input %d is null", i);
    for (int i = 0; i < a->n_out; i++)
        PF_CHECK(a->outputs[i] != NULL, PF_ERR_ARGUMENT, "output %d is null", i);
    return PF_OK;
}

int pf_check_attrs(const pf_args *a, int n_iattr, int n_fattr) {
    PF_CHECK(a->n_iattr >= n_iattr && (n_iattr == 0 || a->iattr != NULL), PF_ERR_ARGUMENT,
             "expected %d integer attributes, got %d", n_iattr, a->n_iattr);
    PF_CHECK(a->n_fattr >= n_fattr && (n_fattr == 0 || a->fattr != NULL), PF_ERR_ARGUMENT,
             "expected %d float attributes, got %d", n_fattr, a->n_fattr);
    return PF_OK;
}

/* No tensor may claim more elements (or a wider stride span) than this: 2^56. */
#define PF_MAX_ELEMENTS ((int64_t)1 << 56)

int pf_check_tensor(const pf_tensor *t, const char *what) {
    PF_CHECK(t->ndim >= 0 && t->ndim <= PF_MAX_DIMS, PF_ERR_ARGUMENT, "%s has ndim %d (0..%d)",
             what, t->ndim, PF_MAX_DIMS);
    PF_CHECK(pf_dtype_size(t->dtype) != 0, PF_ERR_DTYPE, "%s has unknown dtype code %d", what,
             t->dtype);
    int empty = 0;
    for (int i = 0; i < t->ndim; i++) {
        PF_CHECK(t->shape[i] >= 0, PF_ERR_SHAPE, "%s has negative size %lld in dim %d", what,
                 (long long)t->shape[i], i);
        PF_CHECK(t->shape[i] <= PF_MAX_ELEMENTS && (t->shape[i] <= 1 ||
                 (t->strides[i] <= PF_MAX_ELEMENTS && t->strides[i] >= -PF_MAX_ELEMENTS)),
                 PF_ERR_SHAPE,
                 "%s is too large: size %lld, stride %lld in dim %d", what,
                 (long long)t->shape[i], (long long)t->strides[i], i);
        empty |= t->shape[i] == 0;
    }
    if (empty) return PF_OK;
    /* element counts and offsets must stay far from int64 overflow, or index arithmetic wraps */
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t extent = t->shape[i] - 1;
        int64_t stride = t->strides[i] < 0 ? -t->strides[i] : t->strides[i];
        PF_CHECK(n <= PF_MAX_ELEMENTS / t->shape[i] &&
                 (extent == 0 || stride <= PF_MAX_ELEMENTS / extent), PF_ERR_SHAPE,
                 "%s is too large: size %lld, stride %lld in dim %d", what,
                 (long long)t->shape[i], (long long)t->strides[i], i);
        n *= t->shape[i];
    }
    PF_CHECK(t->data != NULL, PF_ERR_ARGUMENT, "%s has no data", what);
    return PF_OK;
}

int pf_check_contiguous(const pf_tensor *t, const char *what) {
    PF_TRY(pf_check_tensor(t, what));
    PF_CHECK(pf_is_contiguous(t), PF_ERR_ARGUMENT, "%s must be contiguous", what);
    return PF_OK;
}

static void format_shape(const pf_tensor *t, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, t->ndim == 1 ? ",)" : ")");   /* as Python */
}

int pf_check_same_shape(const pf_tensor *a, const pf_tensor *b, const char *wa, const char *wb) {
    int same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++) same = a->shape[i] == b->shape[i];
    if (!same) {
        char sa[160], sb[160];
        format_shape(a, sa, sizeof sa);
        format_shape(b, sb, sizeof sb);
        return pf_fail(PF_ERR_SHAPE, "%s has shape %s but %s has shape %s", wa, sa, wb, sb);
    }
    return PF_OK;
}

int pf_check_float(const pf_tensor *t, const char *what) {
    PF_CHECK(t->dtype == PF_FLOAT32 || t->dtype == PF_FLOAT64, PF_ERR_DTYPE,
             "%s must be float32 or float64, got %s", what, pf_dtype_name(t->dtype));
    return PF_OK;
}

int pf_check_dtype(const pf_tensor *t, int dtype, const char *what) {
    PF_CHECK(t->dtype == dtype, PF_ERR_DTYPE, "%s must be %s, got %s", what, pf_dtype_name(dtype),
             pf_dtype_name(t->dtype));
    return PF_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* thread pool                                                                                 */
/*
 * One pool per process serves every kernel and the BLAS (which we keep single-threaded and
 * split ourselves), so two pools never fight over two cores.
 *
 * A job is cut into `parts` chunks. Each thread first claims its home chunk (the caller chunk
 * 0, worker i chunk i + 1), so a kernel called again on the same shapes -- a layer of a
 * compiled model, call after call -- has the same rows on the same core and finds its weights
 * in that core's cache; then it claims whatever is left, so a worker the OS has not scheduled
 * (a busy machine) never holds the caller up: the caller takes its chunk. The chunk
 * boundaries depend only on the job, never on who runs them, so results are the same
 * whichever thread computes what. Idle workers spin briefly (the next kernel of a step
 * usually follows within microseconds), then sleep on a futex; the caller waits for chunks
 * still in flight the same way.
 */

#define PF_MAX_THREADS 64
/* How long an idle worker, and a caller waiting for the workers' chunks, spin before sleeping
 * on the futex. On a VM a sleeping thread leaves its vCPU halted, and waking it again costs
 * the hypervisor's wake-up, which after a pause of tens of ms grows long enough that the
 * caller runs the worker's chunks itself: measured here, a 2-thread CNN batch run in blocks
 * after an 80 ms pause took 5-6 ms a call (the 1-thread time) with a 100 us spin and 2.9 ms
 * with 1 ms, as back to back. OpenMP runtimes spin the same way (libgomp's default spin, ONNX
 * Runtime's pool for longer). Past the first PF_SPIN_ALONE_NS the spin yields the CPU between
 * checks (sched_yield returns at once when nothing else wants it), so that where threads
 * outnumber CPUs the spin gives way: two processes of two threads on two cores trained the CNN
 * at 21.2-23.6 ms a step, against 21.7-26.1 ms with the 100 us spin. */
#define PF_SPIN_NS 1000000LL
#define PF_SPIN_ALONE_NS 100000LL

static int64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One round of a spin-then-sleep wait: 1 while the spin lasts (the clock read every 64
 * pauses), 0 once it is over (the caller then sleeps and resets *until to 0). */
static int keep_spinning(int *spins, int64_t *until) {
    PF_PAUSE();
    if (++*spins & 63) return 1;
    int64_t now = monotonic_ns();
    if (*until == 0) *until = now + PF_SPIN_NS;
    if (now >= *until) return 0;
    if (*until - now < PF_SPIN_NS - PF_SPIN_ALONE_NS) sched_yield();
    return 1;
}

int pf_wait_readable(int fd, int64_t spin_ns) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t start = monotonic_ns();
    for (;;) {
        if (poll(&p, 1, 0) != 0) return 1;      /* readable, hung up, or an error */
        int64_t spent = monotonic_ns() - start;
        if (spent >= spin_ns) return 0;
        sched_yield();
    }
}

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
static void futex_wait(atomic_int *addr, int expected) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static void futex_wake(atomic_int *addr, int count) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}
#else
static void futex_wait(atomic_int *addr, int expected) { (void)addr; (void)expected; sched_yield(); }
static void futex_wake(atomic_int *addr, int count) { (void)addr; (void)count; }
#endif

typedef struct {
    pf_task_fn fn;
    void *ctx;
    int64_t n;
    int parts;
    int caller_cpu;                /* where the caller ran when it published the job; -1: unknown */
} pool_job;

static struct {
    pthread_t threads[PF_MAX_THREADS];
    int started;                   /* workers running */
    int wanted;                    /* threads in all, the caller included */
    pool_job job;
    atomic_int generation;         /* bumped for each job; workers sleep on it */
    atomic_uint taken[PF_MAX_THREADS];  /* per chunk: the last generation that claimed it */
    atomic_int done;               /* chunks finished; the caller sleeps on it */
    atomic_int caller_waiting;
    atomic_int sleepers;
    atomic_int stop;
} pool;

static __thread int tls_in_task;
static pthread_mutex_t pool_admin = PTHREAD_MUTEX_INITIALIZER;   /* one job at a time */

static void run_chunk(const pool_job *job, int64_t part) {
    int64_t chunk = job->n / job->parts, rest = job->n % job->parts;
    int64_t begin = part * chunk + (part < rest ? part : rest);
    int64_t end = begin + chunk + (part < rest ? 1 : 0);
    if (begin < end) job->fn(job->ctx, begin, end);
}

/* Claim chunk `part` for job number `gen`: generations only grow, so a chunk is free while the
 * generation that last claimed it is older. A thread holding a stale job claims nothing: every
 * chunk of its job was claimed before a newer job could be published, and the chunks past a
 * job's `parts` are stamped with its generation when it is published, so a copy of the job
 * torn by the next one being written cannot claim them either. */
static int claim(int part, uint32_t gen) {
    unsigned v = atomic_load_explicit(&pool.taken[part], memory_order_acquire);
    while ((int32_t)(gen - v) > 0)
        if (atomic_compare_exchange_weak(&pool.taken[part], &v, gen)) return 1;
    return 0;
}

static void run_claimed(const pool_job *job, int part) {
    run_chunk(job, part);
    if (atomic_fetch_add(&pool.done, 1) + 1 == job->parts && atomic_load(&pool.caller_waiting))
        futex_wake(&pool.done, 1);
}

/* Run the home chunk of job number `gen`, then any chunk left unclaimed. */
static void work_on(const pool_job *job, uint32_t gen, int home) {
    if (home < job->parts && claim(home, gen)) run_claimed(job, home);
    for (int part = 0; part < job->parts; part++)
        if (part != home && claim(part, gen)) run_claimed(job, part);
}

typedef struct { int generation; int home; } worker_arg;
static worker_arg worker_args[PF_MAX_THREADS];

#if defined(__linux__)
/* A worker woken after a long sleep can be placed on the CPU of the thread that woke it (the
 * caller), where the two then take turns while another CPU idles: on a VM whose idle vCPU
 * the hypervisor has descheduled, the kernel counts that vCPU as busy and keeps doing so
 * until load balancing moves a thread, often for the rest of a short job series. Measured
 * here: after an 80 ms pause, a 2-thread CNN batch ran on the caller's CPU in 101 of 180
 * jobs and took 7-9 ms a call against 2.7 ms without the pause (5 ms at 1 thread). A worker
 * that has just woken from its sleep and finds itself on the caller's CPU moves off it: its
 * affinity without that CPU (the kernel migrates it at once), then its affinity as it was (it
 * stays where it landed). Only after a sleep (a worker that was spinning was placed by the
 * load balancer), at most once per KICK_INTERVAL_NS, and only while the machine has no more
 * running threads than this process may use CPUs (/proc/loadavg's count): where threads
 * outnumber CPUs (two 2-thread processes on two cores) the collision is real, and moving
 * made that case's CNN step 23-30 ms against 22. */
#define KICK_INTERVAL_NS 2000000LL

/* Threads running or runnable on the machine now (/proc/loadavg's "R/T"), or -1. */
static int loadavg_fd = -1;
static pthread_once_t loadavg_once = PTHREAD_ONCE_INIT;
static void loadavg_open(void) { loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC); }

static int running_threads(void) {
    pthread_once(&loadavg_once, loadavg_open);
    int fd = loadavg_fd;
    if (fd < 0) return -1;
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    const char *slash = strchr(buf, '/');
    if (slash == NULL) return -1;
    const char *p = slash;
    while (p > buf && p[-1] >= '0' && p[-1] <= '9') p--;
    return p < slash ? atoi(p) : -1;
}

static void move_off_caller_cpu(int caller_cpu, int64_t *last_kick) {
    if (caller_cpu < 0 || sched_getcpu() != caller_cpu) return;
    int64_t now = monotonic_ns();
    if (now - *last_kick < KICK_INTERVAL_NS) return;
    *last_kick = now;
    cpu_set_t allowed, others;
    if (pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) != 0) return;
    others = allowed;
    CPU_CLR(caller_cpu, &others);
    if (CPU_COUNT(&others) == 0) return;
    int running = running_threads();
    if (running < 0 || running > CPU_COUNT(&allowed)) return;
    if (pthread_setaffinity_np(pthread_self(), sizeof others, &others) == 0)
        pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
}

static int current_cpu(void) { return sched_getcpu(); }
#else
static void move_off_caller_cpu(int caller_cpu, int64_t *last_kick) {
    (void)caller_cpu;
    (void)last_kick;
}
static int current_cpu(void) { return -1; }
#endif

static void *worker_main(void *p) {
    /* the generation at creation, not at start: a job published before this thread got
       scheduled must still be seen as new */
    int seen = ((worker_arg *)p)->generation;
    int64_t last_kick = 0;
    tls_in_task = 1;
    for (;;) {
        int g, spins = 0, slept = 0;
        int64_t until = 0;
        while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool.stop)) {
            if (keep_spinning(&spins, &until)) continue;
            atomic_fetch_add(&pool.sleepers, 1);
            futex_wait(&pool.generation, seen);
            atomic_fetch_sub(&pool.sleepers, 1);
            spins = 0;
            until = 0;
            slept = 1;
        }
        if (atomic_load(&pool.stop)) break;
        seen = g;
        pool_job job = pool.job;   /* may be torn if a newer job is being written: work_on
                                      then claims nothing, as the generation differs */
        if (slept) move_off_caller_cpu(job.caller_cpu, &last_kick);
        work_on(&job, (uint32_t)g, ((worker_arg *)p)->home);
    }
    return NULL;
}

static void pool_stop_locked(void) {
    if (!pool.started) return;
    atomic_store(&pool.stop, 1);
    atomic_fetch_add(&pool.generation, 1);
    futex_wake(&pool.generation, PF_MAX_THREADS);
    for (int i = 0; i < pool.started; i++) pthread_join(pool.threads[i], NULL);
    pool.started = 0;
    atomic_store(&pool.stop, 0);
}

static void pool_start_locked(void) {
    int want = pool.wanted - 1;
    for (int i = 0; i < want; i++) {
        worker_args[i].generation = atomic_load(&pool.generation);
        worker_args[i].home = i + 1;
        if (pthread_create(&pool.threads[i], NULL, worker_main, &worker_args[i]) != 0) break;
        pool.started = i + 1;
    }
}

static void pool_after_fork_child(void) {
    /* the workers did not survive the fork: forget them, start afresh on first use */
    pthread_mutex_init(&pool_admin, NULL);
    pool.started = 0;
    atomic_store(&pool.stop, 0);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.caller_waiting, 0);
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_init_once(void) {
    pthread_atfork(NULL, NULL, pool_after_fork_child);
    if (pool.wanted == 0) pool.wanted = 1;
}

int pf_set_num_threads(int n) {
    pthread_once(&pool_once, pool_init_once);
    PF_CHECK(n >= 1 && n <= PF_MAX_THREADS, PF_ERR_ARGUMENT, "number of threads must be 1..%d, got %d",
             PF_MAX_THREADS, n);
    pthread_mutex_lock(&pool_admin);
    if (n != pool.wanted || pool.started != n - 1) {
        pool_stop_locked();
        pool.wanted = n;
    }
    pthread_mutex_unlock(&pool_admin);
    return PF_OK;
}

int pf_get_num_threads(void) {
    pthread_once(&pool_once, pool_init_once);
    return pool.wanted;
}

int pf_threads(void) { return pool.wanted > 0 ? pool.wanted : 1; }

void pf_parallel_for(int64_t n, int64_t grain, pf_task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int parts = pool.wanted;
    if (parts > 1 && n / grain < parts) parts = (int)(n / grain);
    if (parts <= 1 || tls_in_task) {
        fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool_admin);   /* one job at a time, from whichever caller thread */
    if (pool.started != pool.wanted - 1) {
        pool_stop_locked();
        pool_start_locked();
    }
    if (pool.started == 0) {
        pthread_mutex_unlock(&pool_admin);
        fn(ctx, 0, n);
        return;
    }
    pool.job.fn = fn;
    pool.job.ctx = ctx;
    pool.job.n = n;
    pool.job.parts = parts;
    pool.job.caller_cpu = current_cpu();
    uint32_t gen = (uint32_t)atomic_load(&pool.generation) + 1;
    atomic_store(&pool.done, 0);
    for (int part = parts; part < PF_MAX_THREADS; part++)
        atomic_store_explicit(&pool.taken[part], gen, memory_order_relaxed);
    atomic_store_explicit(&pool.generation, (int)gen, memory_order_release);
    if (atomic_load(&pool.sleepers) > 0) futex_wake(&pool.generation, PF_MAX_THREADS);
    tls_in_task = 1;
    work_on(&pool.job, gen, 0);
    tls_in_task = 0;
    /* chunks still in flight on workers: spin a little, then sleep until the last one ends */
    int spins = 0;
    int64_t until = 0;
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < parts) {
        if (keep_spinning(&spins, &until)) continue;
        atomic_store(&pool.caller_waiting, 1);
        int d = atomic_load(&pool.done);
        if (d < parts) futex_wait(&pool.done, d);
        atomic_store(&pool.caller_waiting, 0);
    }
    pthread_mutex_unlock(&pool_admin);
}

/* ------------------------------------------------------------------------------------------ */
/* BLAS                                                                                        */

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                               const float *, int, float, float *, int);
typedef void (*cblas_dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                               const double *, int, double, double *, int);
typedef void (*blas_threads_fn)(int);
typedef void (*cblas_sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int,
                               float, float *, int);
typedef void (*cblas_dgemv_fn)(int, int, int, int, double, const double *, int, const double *,
                               int, double, double *, int);

static cblas_sgemm_fn blas_sgemm;
static cblas_dgemm_fn blas_dgemm;
static cblas_sgemv_fn blas_sgemv;   /* optional: single-row products without packing */
static cblas_dgemv_fn blas_dgemv;

typedef const char *(*blas_config_fn)(void);
static char blas_info[512];

int pf_load_blas(const char *path, const char *prefix) {
    PF_CHECK(path != NULL, PF_ERR_ARGUMENT, "pf_load_blas: no library path");
    if (prefix == NULL) prefix = "";
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    PF_CHECK(handle != NULL, PF_ERR_BLAS, "cannot load the BLAS library %s: %s", path, dlerror());
    char name[128];
    snprintf(name, sizeof name, "%scblas_sgemm", prefix);
    void *sgemm = dlsym(handle, name);
    snprintf(name, sizeof name, "%scblas_dgemm", prefix);
    void *dgemm = dlsym(handle, name);
    PF_CHECK(sgemm != NULL && dgemm != NULL, PF_ERR_BLAS, "%s has no %scblas_sgemm/%scblas_dgemm",
             path, prefix, prefix);
    snprintf(name, sizeof name, "%scblas_sgemv", prefix);
    void *sgemv = dlsym(handle, name);
    snprintf(name, sizeof name, "%scblas_dgemv", prefix);
    void *dgemv = dlsym(handle, name);
    snprintf(name, sizeof name, "%sopenblas_set_num_threads", prefix);
    void *set_threads = dlsym(handle, name);
    snprintf(name, sizeof name, "%sopenblas_get_config", prefix);
    void *config = dlsym(handle, name);
    /* The BLAS runs single-threaded inside our pool's tasks; its own pool would fight ours. */
    if (set_threads) ((blas_threads_fn)set_threads)(1);
    snprintf(blas_info, sizeof blas_info, "%s (%s)", config ? ((blas_config_fn)config)() : "BLAS",
             path);
    blas_sgemv = sgemv && dgemv ? (cblas_sgemv_fn)sgemv : NULL;
    blas_dgemv = sgemv && dgemv ? (cblas_dgemv_fn)dgemv : NULL;
    blas_dgemm = (cblas_dgemm_fn)dgemm;
    blas_sgemm = (cblas_sgemm_fn)sgemm;
    return PF_OK;
}

const char *pf_blas_info(void) { return blas_info; }

int pf_cap_foreign_blas(const char *path, int threads) {
    static const char *const names[] = {
        "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_", "openblas_set_num_threads"};
    PF_CHECK(path != NULL && threads >= 1, PF_ERR_ARGUMENT, "pf_cap_foreign_blas: bad arguments");
    void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);   /* only a library already loaded */
    PF_CHECK(handle != NULL, PF_ERR_BLAS, "%s is not loaded", path);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *fn = dlsym(handle, names[i]);
        if (fn) {
            ((blas_threads_fn)fn)(threads);
            dlclose(handle);
            return PF_OK;
        }
    }
    dlclose(handle);
    return pf_fail(PF_ERR_BLAS, "%s has no openblas_set_num_threads", path);
}

int pf_blas_bound(void) { return blas_sgemm != NULL; }

static int check_blas_dims(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
    PF_CHECK(blas_sgemm != NULL, PF_ERR_BLAS, "no BLAS is loaded (pf_load_blas was not called)");
    PF_CHECK(m >= 0 && n >= 0 && k >= 0, PF_ERR_SHAPE, "negative GEMM size");
    PF_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
             ldc <= INT_MAX, PF_ERR_BLAS, "GEMM dimension beyond the 32-bit BLAS range");
    return PF_OK;
}

/* Products of a few rows, C = alpha * A @ B + beta * C with A (m, k) and B (k, n) untransposed:
 * a blocked GEMV. B (the weights of a dense layer) is read once, straight from where it lies,
 * SMALL_KGROUP whole rows at a time (as many streams as the hardware prefetchers follow well),
 * while the m rows' partial sums wait in a buffer in L1; a BLAS sgemm packs all of B first (a
 * second pass over it plus a write), which is what makes inference on 2-8 samples slow there.
 * Each output sums k = 0, 1, ... in order with one fused multiply-add per term, whatever m is,
 * so a row's result does not depend on the rows it is computed with: a sample gives the same
 * bits alone or in a batch of up to SMALL_M_MAX, and in a batch of any size where the register
 * tiles below take the larger batches (they sum in the same order). */
#define SMALL_M_MAX 8
#define SMALL_KGROUP 8
#define SMALL_PANEL 512   /* columns a pass over B covers: their partial sums fit in L1 */
#define SMALL_PART_LD (SMALL_PANEL + 16)   /* a row of partial sums, with room for the shift */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SMALL_AVX512 __attribute__((target("avx512f")))

/* small_rows_R: R rows of A times columns [0, n) of B, n <= SMALL_PANEL. The partial sums of
 * row r sit in part[r * SMALL_PART_LD ...]. In registers each value is its own variable, spelled
 * out by the repeaters (SMALL_R: the rows r, SMALL_J: the rows j of a group of B): acc<r>, the
 * partial sums, and x<r>_<j>, A's elements broadcast once per group (kept in arrays, gcc
 * stores them on every step; broadcast inside the loop, they cost a load per multiply-add). */
#define SMALL_R1(M, j) M(0, j)
#define SMALL_R2(M, j) SMALL_R1(M, j) M(1, j)
#define SMALL_R3(M, j) SMALL_R2(M, j) M(2, j)
#define SMALL_R4(M, j) SMALL_R3(M, j) M(3, j)
#define SMALL_R5(M, j) SMALL_R4(M, j) M(4, j)
#define SMALL_R6(M, j) SMALL_R5(M, j) M(5, j)
#define SMALL_R7(M, j) SMALL_R6(M, j) M(6, j)
#define SMALL_R8(M, j) SMALL_R7(M, j) M(7, j)
#define SMALL_J(M, R) M(0, R) M(1, R) M(2, R) M(3, R) M(4, R) M(5, R) M(6, R) M(7, R)
#define SMALL_X(r, j) __m512 x##r##_##j = _mm512_set1_ps(a[r * lda + p + j]);
#define SMALL_XS(j, R) SMALL_R##R(SMALL_X, j)
#define SMALL_NO_XS(j, R)
#define SMALL_FMA(r, j) acc##r = _mm512_fmadd_ps(x##r##_##j, w, acc##r);
#define SMALL_FMA_MEM(r, j) acc##r = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + p + j]), w, acc##r);
#define SMALL_STEP(j, R, FMA) {                                                                \
        __m512 w = _mm512_maskz_loadu_ps(mask, b + (p + j) * ldb + 16 * v);                    \
        SMALL_R##R(FMA, j)                                                                     \
    }
#define SMALL_STEPS(j, R) SMALL_STEP(j, R, SMALL_FMA)
#define SMALL_STEPS_MEM(j, R) SMALL_STEP(j, R, SMALL_FMA_MEM)
#define SMALL_FMA1(r, j) acc##r = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + q]), w, acc##r);
#define SMALL_LOAD(r, j) __m512 acc##r = p == 0 ? _mm512_setzero_ps()                          \
                                                : _mm512_load_ps(part + r * SMALL_PART_LD + 16 * v);
#define SMALL_STORE(r, j) _mm512_store_ps(part + r * SMALL_PART_LD + 16 * v, acc##r);
#define SMALL_OUT(r, j) {                                                                      \
        __m512 y = _mm512_load_ps(part + r * SMALL_PART_LD + 16 * v);                            \
        if (alpha != 1) y = _mm512_mul_ps(_mm512_set1_ps(alpha), y);                           \
        if (beta != 0) /* beta == 0 never reads C: it may hold stale NaNs */                   \
            y = _mm512_fmadd_ps(_mm512_set1_ps(beta),                                          \
                                _mm512_maskz_loadu_ps(mask, c + r * ldc + 16 * v), y);         \
        _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask, y);                                  \
    }

/* XS: SMALL_XS broadcasts A's elements once per group of B's rows, for few rows (R <= 3);
 * with more, the 8 * R broadcasts would not fit in registers, and STEPS (SMALL_STEPS_MEM)
 * broadcasts each from memory in its multiply-add instead (the product is compute-bound then) */
#define SMALL_ROWS_FN(R, XS, STEPS)                                                            \
    static SMALL_AVX512 void small_rows_##R(int64_t n, int64_t k, float alpha, const float *a, \
                                            int64_t lda, const float *b, int64_t ldb,         \
                                            float beta, float *c, int64_t ldc, float *part) { \
        /* B's rows are read with 64-byte aligned loads where they all share one alignment:   \
           the vectors start `shift` columns before column 0, lanes outside [0, n) masked */  \
        int shift = ldb % 16 == 0 ? (int)((uintptr_t)b % 64 / sizeof(float)) : 0;             \
        b -= shift;                                                                            \
        c -= shift;                                                                            \
        int64_t nv = (n + shift + 15) / 16;                                                    \
        __mmask16 head = (__mmask16)(0xFFFFu << shift);                                        \
        __mmask16 tail = (__mmask16)(0xFFFFu >> (16 * nv - n - shift));                        \
        int64_t p = 0;                                                                         \
        for (; p + SMALL_KGROUP <= k; p += SMALL_KGROUP) {                                     \
            SMALL_J(XS, R)                                                                     \
            for (int64_t v = 0; v < nv; v++) {                                                 \
                __mmask16 mask = (v == 0 ? head : 0xFFFF) & (v == nv - 1 ? tail : 0xFFFF);     \
                SMALL_R##R(SMALL_LOAD, 0)                                                      \
                SMALL_J(STEPS, R)                                                              \
                SMALL_R##R(SMALL_STORE, 0)                                                     \
            }                                                                                  \
        }                                                                                      \
        if (p < k)  /* the last rows of B, fewer than a group */                               \
            for (int64_t v = 0; v < nv; v++) {                                                 \
                __mmask16 mask = (v == 0 ? head : 0xFFFF) & (v == nv - 1 ? tail : 0xFFFF);     \
                SMALL_R##R(SMALL_LOAD, 0)                                                      \
                for (int64_t q = p; q < k; q++) {                                              \
                    __m512 w = _mm512_maskz_loadu_ps(mask, b + q * ldb + 16 * v);              \
                    SMALL_R##R(SMALL_FMA1, 0)                                                  \
                }                                                                              \
                SMALL_R##R(SMALL_STORE, 0)                                                     \
            }                                                                                  \
        for (int64_t v = 0; v < nv; v++) {                                                     \
            __mmask16 mask = (v == 0 ? head : 0xFFFF) & (v == nv - 1 ? tail : 0xFFFF);         \
            SMALL_R##R(SMALL_OUT, 0)                                                           \
        }                                                                                      \
    }
SMALL_ROWS_FN(1, SMALL_XS, SMALL_STEPS)
SMALL_ROWS_FN(2, SMALL_XS, SMALL_STEPS)
SMALL_ROWS_FN(3, SMALL_XS, SMALL_STEPS)
SMALL_ROWS_FN(4, SMALL_NO_XS, SMALL_STEPS_MEM)
SMALL_ROWS_FN(5, SMALL_NO_XS, SMALL_STEPS_MEM)
SMALL_ROWS_FN(6, SMALL_NO_XS, SMALL_STEPS_MEM)
SMALL_ROWS_FN(7, SMALL_NO_XS, SMALL_STEPS_MEM)
SMALL_ROWS_FN(8, SMALL_NO_XS, SMALL_STEPS_MEM)

typedef void (*small_rows_fn)(int64_t, int64_t, float, const float *, int64_t, const float *,
                              int64_t, float, float *, int64_t, float *);
static const small_rows_fn small_rows[SMALL_M_MAX + 1] = {
    NULL, small_rows_1, small_rows_2, small_rows_3, small_rows_4,
    small_rows_5, small_rows_6, small_rows_7, small_rows_8};

/* Products of more rows, A as stored or transposed (the dense layer's forward, and its weight
 * gradient x^T @ dy), in depth chunks of TILE_KC: register tiles of up to TILE_R rows by
 * TILE_V vectors of 16 columns, A and B read straight from where they lie (no packing: a BLAS
 * packs B and A for every call, which is a fifth of a 128 x 64 x 128 product). Each output
 * sums k = 0, 1, ... in order with one fused multiply-add per term and then applies alpha and
 * beta exactly as small_rows does, so a row's bits do not depend on the batch it is computed
 * in. */
#define TILE_R 6
#define TILE_V 4

/* tile_R_NV: rows [0, R) by vectors [0, NV) of C; the vector NV - 1 masked by `last`. Each
 * value is its own variable (acc<r>_<v>, w<v>) spelled out by the repeaters: kept in arrays,
 * gcc stores every accumulator on every step. */
#define TILE_V1(M, r) M(r, 0)
#define TILE_V2(M, r) TILE_V1(M, r) M(r, 1)
#define TILE_V3(M, r) TILE_V2(M, r) M(r, 2)
#define TILE_V4(M, r) TILE_V3(M, r) M(r, 3)
#define TILE_R1(M, NV) M(0, NV)
#define TILE_R2(M, NV) TILE_R1(M, NV) M(1, NV)
#define TILE_R3(M, NV) TILE_R2(M, NV) M(2, NV)
#define TILE_R4(M, NV) TILE_R3(M, NV) M(3, NV)
#define TILE_R5(M, NV) TILE_R4(M, NV) M(4, NV)
#define TILE_R6(M, NV) TILE_R5(M, NV) M(5, NV)
#define TILE_MASK(v, NV) ((v) == (NV) - 1 ? last : (__mmask16)0xFFFF)
/* a deep product's later depth chunks continue each output's sum from C, where the chunk
 * before stored it unrounded by anything: the same chain of multiply-adds as one pass */
#define TILE_ZERO(r, v) __m512 acc##r##_##v = resume                                           \
        ? _mm512_maskz_loadu_ps(TILE_MASK(v, nv_), c + r * ldc + 16 * (v)) : _mm512_setzero_ps();
#define TILE_ZEROS(r, NV) TILE_V##NV(TILE_ZERO, r)
#define TILE_LOAD_W(v, NV) __m512 w##v = (v) == (NV) - 1                                       \
        ? _mm512_maskz_loadu_ps(last, b + p * ldb + 16 * (v)) : _mm512_loadu_ps(b + p * ldb + 16 * (v));
#define TILE_LOAD_WS(NV) TILE_LOAD_W##NV
#define TILE_LOAD_W1 TILE_LOAD_W(0, 1)
#define TILE_LOAD_W2 TILE_LOAD_W(0, 2) TILE_LOAD_W(1, 2)
#define TILE_LOAD_W3 TILE_LOAD_W(0, 3) TILE_LOAD_W(1, 3) TILE_LOAD_W(2, 3)
#define TILE_LOAD_W4 TILE_LOAD_W(0, 4) TILE_LOAD_W(1, 4) TILE_LOAD_W(2, 4) TILE_LOAD_W(3, 4)
#define TILE_FMA(r, v) acc##r##_##v = _mm512_fmadd_ps(x, w##v, acc##r##_##v);
#define TILE_ROW_FMA(r, NV) {                                                                  \
        __m512 x = _mm512_set1_ps(a[r * ars + p * aps]);                                       \
        TILE_V##NV(TILE_FMA, r)                                                                \
    }
/* the epilogue: alpha and beta as small_rows applies them, then the bias (which the linear
 * layer would otherwise copy into C first and add with beta = 1: the same bits) and ReLU as
 * the linear kernel applies it (NaN kept, -0 made +0) */
#define TILE_OUT(r, v) {                                                                       \
        __mmask16 mask = TILE_MASK(v, nv_);                                                    \
        __m512 y = acc##r##_##v;                                                               \
        if (finish) { /* else the sum so far, for the next depth chunk */                      \
            if (alpha != 1) y = _mm512_mul_ps(_mm512_set1_ps(alpha), y);                       \
            if (beta != 0) /* beta == 0 never reads C */                                       \
                y = _mm512_fmadd_ps(_mm512_set1_ps(beta),                                      \
                                    _mm512_maskz_loadu_ps(mask, c + r * ldc + 16 * (v)), y);   \
            if (bias) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, bias + 16 * (v)));      \
            if (relu) y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(),       \
                                                                 _CMP_NLE_UQ), y);             \
        }                                                                                      \
        _mm512_mask_storeu_ps(c + r * ldc + 16 * (v), mask, y);                                \
    }
#define TILE_OUTS(r, NV) TILE_V##NV(TILE_OUT, r)

/* A's element (r, p) is a[r * ars + p * aps]: (lda, 1) as stored, (1, lda) transposed */
typedef void (*tile_fn)(int64_t, float, const float *, int64_t, int64_t, const float *, int64_t,
                        float, const float *, int, float *, int64_t, __mmask16, int, int);
#define TILE_FN(R, NV)                                                                         \
    static SMALL_AVX512 void tile_##R##_##NV(int64_t k, float alpha, const float *a,           \
                                             int64_t ars, int64_t aps, const float *b,         \
                                             int64_t ldb,                                      \
                                             float beta, const float *bias, int relu,          \
                                             float *c, int64_t ldc, __mmask16 last,            \
                                             int resume, int finish) {                         \
        enum { nv_ = NV };                                                                     \
        TILE_R##R(TILE_ZEROS, NV)                                                              \
        for (int64_t p = 0; p < k; p++) {                                                      \
            TILE_LOAD_WS(NV)                                                                   \
            TILE_R##R(TILE_ROW_FMA, NV)                                                        \
        }                                                                                      \
        TILE_R##R(TILE_OUTS, NV)                                                               \
    }
#define TILE_FNS(R) TILE_FN(R, 1) TILE_FN(R, 2) TILE_FN(R, 3) TILE_FN(R, 4)
TILE_FNS(1) TILE_FNS(2) TILE_FNS(3) TILE_FNS(4) TILE_FNS(5) TILE_FNS(6)
#define TILE_ROW(R) {NULL, tile_##R##_1, tile_##R##_2, tile_##R##_3, tile_##R##_4}
static const tile_fn tile_fns[TILE_R + 1][TILE_V + 1] = {
    {NULL}, TILE_ROW(1), TILE_ROW(2), TILE_ROW(3), TILE_ROW(4), TILE_ROW(5), TILE_ROW(6)};

/* The depth a pass of row tiles covers: a chunk of a panel of B (512 x 64 floats, 128 KiB)
 * stays in L2 while all the panel's row tiles go by; C holds the sums between chunks. In one
 * pass over a deep product (64 x 4096 x 4096) the panel did not stay and the tiles took 33 ms
 * against the BLAS's 27.5. Fewer rows than SMALL_M_MAX go to small_rows, which reads B once
 * for all of them. */
#define TILE_KC 512

static int has_avx512(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") != 0;
    return known;
}

static int tiled_sgemm(int ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, const float *bias,
                       int relu, float *c, int64_t ldc) {
    /* (a product that adds to C, beta != 0, has one chunk: C holds the sums between them) */
    if (!has_avx512() || m <= SMALL_M_MAX || k < 1 || (beta != 0 && k > TILE_KC)) return 0;
    /* narrow products waste the vector lanes: 4096 x 512 by 1 column took 693 us in the tiles,
     * 118 in the BLAS's GEMV; by 4, 686 against 540; by 8 the tiles win (683 against 749).
     * A^T (512 x 128) @ (128 x 10): 23.5 us, the BLAS 17 */
    if (n < 8 || (ta && n < 16)) return 0;
    int64_t ars = ta ? 1 : lda, aps = ta ? lda : 1;
    /* column panels outside, then depth chunks: a chunk of a panel of B stays in L2 while the
     * rows go by */
    for (int64_t j0 = 0; j0 < n; j0 += 16 * TILE_V) {
        int64_t cols = n - j0 < 16 * TILE_V ? n - j0 : 16 * TILE_V;
        int nv = (int)((cols + 15) / 16);
        __mmask16 last = (__mmask16)(0xFFFFu >> (16 * nv - cols));
        for (int64_t p0 = 0; p0 < k; p0 += TILE_KC) {
            int64_t kc = k - p0 < TILE_KC ? k - p0 : TILE_KC;
            for (int64_t i0 = 0; i0 < m; i0 += TILE_R) {
                int rows = (int)(m - i0 < TILE_R ? m - i0 : TILE_R);
                tile_fns[rows][nv](kc, alpha, a + i0 * ars + p0 * aps, ars, aps,
                                   b + p0 * ldb + j0, ldb, beta, bias ? bias + j0 : NULL, relu,
                                   c + i0 * ldc + j0, ldc, last, p0 > 0, p0 + kc == k);
            }
        }
    }
    return 1;
}

int pf_sgemm_tiles(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                   int64_t ldb, const float *bias, int relu, float *c, int64_t ldc) {
    return tiled_sgemm(0, m, n, k, 1, a, lda, b, ldb, 0, bias, relu, c, ldc);
}

/* C = alpha * op(A) @ B + beta * C, B untransposed: 1 when it computed the product, 0 when
 * this CPU lacks AVX-512 or the shape is not one the blocked GEMV or the tiles serve (the BLAS
 * does it then). */
static int small_sgemm(int ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                       int64_t ldc) {
    if (m > SMALL_M_MAX)
        return tiled_sgemm(ta, m, n, k, alpha, a, lda, b, ldb, beta, NULL, 0, c, ldc);
    if (ta || !has_avx512() || m < 1 || k < 1) return 0;
    float part[SMALL_M_MAX * SMALL_PART_LD] __attribute__((aligned(64)));
    for (int64_t p0 = 0; p0 < n; p0 += SMALL_PANEL)
        small_rows[m](n - p0 < SMALL_PANEL ? n - p0 : SMALL_PANEL, k, alpha, a, lda, b + p0, ldb,
                      beta, c + p0, ldc, part);
    return 1;
}
#else
static int small_sgemm(int ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                       int64_t ldc) {
    return 0;
}
int pf_sgemm_tiles(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                   int64_t ldb, const float *bias, int relu, float *c, int64_t ldc) {
    return 0;
}
#endif

/* Large products are split into column (or row) blocks, one per pool thread. Below this many
 * multiply-adds a split costs more than it saves. */
#define GEMM_SPLIT_MIN_FLOPS (1 << 20)

#define DEFINE_GEMM(T, NAME, BLASFN, GEMVFN, SMALLFN)                                         \
    /* one product on this thread; float32 products with B as stored go to the blocked GEMV  \
       or the register tiles (SMALLFN) where those serve the shape, a single row or column    \
       otherwise to the BLAS GEMV: each reads the matrix where it lies instead of packing it  \
       (the case of inference on one sample or a few, and of cache-sized layers) */           \
    static void NAME##_blas(int ta, int tb, int64_t m, int64_t n, int64_t k, T alpha,          \
                            const T *a, int64_t lda, const T *b, int64_t ldb, T beta, T *c,    \
                            int64_t ldc) {                                                     \
        if (!tb && SMALLFN(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))                  \
            return;                                                                            \
        if (GEMVFN && (m == 1 || n == 1)) {                                                    \
            if (beta == 0) { /* the BLAS may scale stale NaNs by 0: clear the output */        \
                for (int64_t i = 0; i < m; i++)                                                \
                    for (int64_t jj = 0; jj < n; jj++) c[i * ldc + jj] = 0;                    \
            }                                                                                  \
            if (m == 1) {                                                                      \
                int inca = ta ? (int)lda : 1;                                                  \
                if (!tb) GEMVFN(CBLAS_ROW_MAJOR, CBLAS_TRANS, (int)k, (int)n, alpha, b,       \
                                (int)ldb, a, inca, beta, c, 1);                                \
                else GEMVFN(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, (int)n, (int)k, alpha, b,        \
                            (int)ldb, a, inca, beta, c, 1);                                    \
            } else {                                                                           \
                int incb = tb ? 1 : (int)ldb;                                                  \
                if (!ta) GEMVFN(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, (int)m, (int)k, alpha, a,    \
                                (int)lda, b, incb, beta, c, (int)ldc);                         \
                else GEMVFN(CBLAS_ROW_MAJOR, CBLAS_TRANS, (int)k, (int)m, alpha, a, (int)lda, \
                            b, incb, beta, c, (int)ldc);                                       \
            }                                                                                  \
            return;                                                                            \
        }                                                                                      \
        BLASFN(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS,                             \
               tb ? CBLAS_TRANS : CBLAS_NO_TRANS, (int)m, (int)n, (int)k, alpha, a, (int)lda,  \
               b, (int)ldb, beta, c, (int)ldc);                                                \
    }                                                                                          \
    typedef struct {                                                                           \
        int ta, tb; int64_t m, n, k; T alpha; const T *a; int64_t lda; const T *b;            \
        int64_t ldb; T beta; T *c; int64_t ldc; int split_rows;                                \
    } NAME##_job;                                                                              \
    static void NAME##_part(void *p, int64_t begin, int64_t end) {                             \
        const NAME##_job *j = (const NAME##_job *)p;                                           \
        if (j->split_rows) {                                                                   \
            const T *a = j->ta ? j->a + begin : j->a + begin * j->lda;                         \
            NAME##_blas(j->ta, j->tb, end - begin, j->n, j->k, j->alpha, a, j->lda, j->b,      \
                        j->ldb, j->beta, j->c + begin * j->ldc, j->ldc);                       \
        } else {                                                                               \
            const T *b = j->tb ? j->b + begin * j->ldb : j->b + begin;                         \
            NAME##_blas(j->ta, j->tb, j->m, end - begin, j->k, j->alpha, j->a, j->lda, b,      \
                        j->ldb, j->beta, j->c + begin, j->ldc);                                \
        }                                                                                      \
    }                                                                                          \
    static int NAME##_impl(int ta, int tb, int64_t m, int64_t n, int64_t k, T alpha,           \
                           const T *a, int64_t lda, const T *b, int64_t ldb, T beta, T *c,     \
                           int64_t ldc, int allow_split) {                                     \
        PF_TRY(check_blas_dims(m, n, k, lda, ldb, ldc));                                       \
        if (m == 0 || n == 0) return PF_OK;                                                    \
        if (k == 0) { /* BLAS may skip beta scaling when k == 0 */                             \
            for (int64_t i = 0; i < m; i++)                                                    \
                for (int64_t jj = 0; jj < n; jj++)                                             \
                    c[i * ldc + jj] = beta == 0 ? 0 : beta * c[i * ldc + jj];                  \
            return PF_OK;                                                                      \
        }                                                                                      \
        NAME##_job job = {ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0};            \
        double flops = (double)m * (double)n * (double)k;                                      \
        int threads = allow_split ? pf_threads() : 1;                                          \
        if (threads > 1 && flops >= GEMM_SPLIT_MIN_FLOPS) {                                    \
            /* split the longer side in blocks of 16 (the BLAS kernels' multiple), the last  \
               taking the remainder: no part is narrower than 16, so none leaves the register \
               tiles and the outputs' bits do not depend on the thread count */               \
            job.split_rows = m > n;                                                            \
            int64_t extent = job.split_rows ? m : n;                                           \
            int64_t blocks = extent / 16;                                                      \
            if (blocks >= 2) {                                                                 \
                pf_parallel_for(blocks, 1, NAME##_blocks, &job);                               \
                return PF_OK;                                                                  \
            }                                                                                  \
            job.split_rows = 0;                                                                \
        }                                                                                      \
        NAME##_part(&job, 0, n);                                                               \
        return PF_OK;                                                                          \
    }

/* the pool hands out block ranges; translate them to row/column ranges */
#define DEFINE_GEMM_BLOCKS(NAME)                                                               \
    static void NAME##_blocks(void *p, int64_t begin, int64_t end) {                           \
        NAME##_job *j = (NAME##_job *)p;                                                       \
        int64_t extent = j->split_rows ? j->m : j->n;                                          \
        int64_t lo = begin * 16, hi = end >= extent / 16 ? extent : end * 16;                  \
        NAME##_part(p, lo, hi);                                                                \
    }

#define DECLARE_GEMM_BLOCKS(NAME) static void NAME##_blocks(void *p, int64_t begin, int64_t end);

DECLARE_GEMM_BLOCKS(sgemm)
DECLARE_GEMM_BLOCKS(dgemm)
/* float64 has no blocked GEMV: its products of a few rows stay with the BLAS */
#define NO_SMALL_DGEMM(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) 0
DEFINE_GEMM(float, sgemm, blas_sgemm, blas_sgemv, small_sgemm)
DEFINE_GEMM(double, dgemm, blas_dgemm, blas_dgemv, NO_SMALL_DGEMM)
DEFINE_GEMM_BLOCKS(sgemm)
DEFINE_GEMM_BLOCKS(dgemm)

int pf_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
             int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    return sgemm_impl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1);
}
int pf_dgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
             int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc) {
    if (blas_dgemm == NULL) return pf_fail(PF_ERR_BLAS, "no BLAS is loaded");
    return dgemm_impl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1);
}
int pf_sgemm_serial(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc) {
    return sgemm_impl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0);
}
int pf_dgemm_serial(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                    const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                    double *c, int64_t ldc) {
    if (blas_dgemm == NULL) return pf_fail(PF_ERR_BLAS, "no BLAS is loaded");
    return dgemm_impl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* kernel table                                                                                */

static const pf_kernel_entry *const tables[] = {
    pf_kernels_elementwise, pf_kernels_reduce, pf_kernels_linalg, pf_kernels_layout,
    pf_kernels_nn, pf_kernels_optim, pf_kernels_conv, pf_kernels_pool, pf_kernels_norm,
    pf_kernels_random, pf_kernels_rnn, pf_kernels_scan,
};

#define MAX_KERNELS 512
static const pf_kernel_entry *kernels[MAX_KERNELS];
static int n_kernels;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const pf_kernel_entry *e = tables[t]; e->name != NULL && n_kernels < MAX_KERNELS; e++)
            kernels[n_kernels++] = e;
}

int pf_kernel_count(void) {
    pthread_once(&table_once, build_table);
    return n_kernels;
}

const char *pf_kernel_name(int32_t kernel) {
    pthread_once(&table_once, build_table);
    return kernel >= 0 && kernel < n_kernels ? kernels[kernel]->name : NULL;
}

int pf_kernel_lookup(const char *name) {
    pthread_once(&table_once, build_table);
    if (name == NULL) return -1;
    for (int i = 0; i < n_kernels; i++)
        if (strcmp(kernels[i]->name, name) == 0) return i;
    return -1;
}

/* Kernels registered at run time: entries and names live here, the table points at them. The
 * count is published after the entry is filled, so a reader never sees a half-made entry. */
#define MAX_USER_KERNELS 64
static pf_kernel_entry user_entries[MAX_USER_KERNELS];
static char user_names[MAX_USER_KERNELS][64];
static int n_user;
static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;

int pf_register_kernel(const char *name, pf_user_kernel run, pf_user_workspace workspace) {
    pthread_once(&table_once, build_table);
    PF_CHECK(name != NULL && run != NULL, PF_ERR_ARGUMENT,
             "pf_register_kernel: a name and a kernel function are required");
    size_t len = strlen(name);
    PF_CHECK(len >= 1 && len < sizeof user_names[0], PF_ERR_ARGUMENT,
             "pf_register_kernel: the name must have 1 to %d bytes, got %zu",
             (int)sizeof user_names[0] - 1, len);
    pthread_mutex_lock(&register_lock);
    int status = PF_OK;
    if (pf_kernel_lookup(name) >= 0)
        status = pf_fail(PF_ERR_ARGUMENT, "pf_register_kernel: a kernel named '%s' exists already",
                         name);
    else if (n_user >= MAX_USER_KERNELS || n_kernels >= MAX_KERNELS)
        status = pf_fail(PF_ERR_ARGUMENT, "pf_register_kernel: the kernel table is full (%d "
                         "registered kernels)", n_user);
    else {
        memcpy(user_names[n_user], name, len + 1);
        user_entries[n_user] = (pf_kernel_entry){user_names[n_user], run, workspace};
        kernels[n_kernels] = &user_entries[n_user];
        n_user++;
        __atomic_store_n(&n_kernels, n_kernels + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&register_lock);
    return status;
}

int pf_kernel_has_workspace(int32_t kernel) {
    pthread_once(&table_once, build_table);
    return kernel >= 0 && kernel < n_kernels && kernels[kernel]->workspace != NULL;
}

int pf_workspace_size(int32_t kernel, const pf_args *args, int64_t *bytes) {
    pthread_once(&table_once, build_table);
    if (bytes == NULL) return pf_fail(PF_ERR_ARGUMENT, "pf_workspace_size: null result pointer");
    *bytes = 0;
    if (kernel < 0 || kernel >= n_kernels)
        return pf_fail(PF_ERR_UNKNOWN_KERNEL, "no kernel with id %d", kernel);
    if (kernels[kernel]->workspace == NULL) return PF_OK;
    tls_kernel = kernels[kernel]->name;
    int status = kernels[kernel]->workspace(args, bytes);
    tls_kernel = NULL;
    return status;
}

static int debug_level;
int pf_set_debug(int level) {
    debug_level = level;
    return PF_OK;
}

static int check_outputs_finite(const pf_args *a) {
    for (int o = 0; o < a->n_out; o++) {
        const pf_tensor *t = a->outputs[o];
        if (t->dtype != PF_FLOAT32 && t->dtype != PF_FLOAT64) continue;
        if (!pf_is_contiguous(t)) continue;
        int64_t n = pf_numel(t);
        for (int64_t i = 0; i < n; i++) {
            double v = t->dtype == PF_FLOAT32 ? ((const float *)t->data)[i]
                                              : ((const double *)t->data)[i];
            if (!isfinite(v))
                return pf_fail(PF_ERR_NUMERIC, "output %d holds %s at flat index %lld (PYFRONT_DEBUG)",
                               o, isnan(v) ? "NaN" : "Inf", (long long)i);
        }
    }
    return PF_OK;
}

static int run_one(int32_t kernel, const pf_args *args) {
    if (kernel < 0 || kernel >= n_kernels)
        return pf_fail(PF_ERR_UNKNOWN_KERNEL, "no kernel with id %d", kernel);
    if (args == NULL) return pf_fail(PF_ERR_ARGUMENT, "null argument block");
    tls_kernel = kernels[kernel]->name;
    int status = kernels[kernel]->run(args);
    if (status == PF_OK && debug_level > 0) status = check_outputs_finite(args);
    tls_kernel = NULL;
    return status;
}

int pf_run(int32_t kernel, const pf_args *args) {
    pthread_once(&table_once, build_table);
    return run_one(kernel, args);
}

int pf_run_steps(const pf_step *steps, int64_t begin, int64_t end, int64_t *failed_step) {
    pthread_once(&table_once, build_table);
    if (failed_step) *failed_step = -1;
    if (steps == NULL && end > begin) return pf_fail(PF_ERR_ARGUMENT, "null plan");
    for (int64_t i = begin; i < end; i++) {
        int status = run_one(steps[i].kernel, &steps[i].args);
        if (status != PF_OK) {
            if (failed_step) *failed_step = i;
            return status;
        }
    }
    return PF_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* strided iteration                                                                           */

void pf_walk_init(pf_walk *w, int ndim, const int64_t *shape, int nops,
                  const int64_t *const *strides) {
    w->nops = nops;
    w->ndim = 0;
    /* drop unit dims, then merge dim d into the next one when every operand allows it */
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        int k = w->ndim;
        if (k > 0) {
            int mergeable = 1;
            for (int o = 0; o < nops && mergeable; o++)
                mergeable = w->strides[o][k - 1] == strides[o][d] * shape[d];
            if (mergeable) {
                w->shape[k - 1] *= shape[d];
                for (int o = 0; o < nops; o++) w->strides[o][k - 1] = strides[o][d];
                continue;
            }
        }
        w->shape[k] = shape[d];
        for (int o = 0; o < nops; o++) w->strides[o][k] = strides[o][d];
        w->ndim++;
    }
    if (w->ndim == 0) {   /* a single element */
        w->ndim = 1;
        w->shape[0] = 1;
        for (int o = 0; o < nops; o++) w->strides[o][0] = 1;
    }
    for (int d = 0; d < w->ndim; d++)
        if (w->shape[d] == 0) { w->ndim = 1; w->shape[0] = 0; break; }
}

typedef struct {
    const pf_walk *w;
    pf_row_fn fn;
    void *ctx;
    int64_t chunk, nchunks;
} walk_job;

static void walk_task(void *p, int64_t begin, int64_t end) {
    const walk_job *j = (const walk_job *)p;
    const pf_walk *w = j->w;
    int outer = w->ndim - 1, nops = w->nops;
    int64_t inner = w->shape[outer];
    int64_t inner_strides[PF_WALK_MAX_OPS], offsets[PF_WALK_MAX_OPS], idx[PF_MAX_DIMS];
    for (int o = 0; o < nops; o++) inner_strides[o] = w->strides[o][outer];
    if (j->nchunks > 1) {   /* one long row, split into chunks */
        for (int64_t c = begin; c < end; c++) {
            int64_t lo = c * j->chunk, hi = lo + j->chunk > inner ? inner : lo + j->chunk;
            for (int o = 0; o < nops; o++) offsets[o] = lo * inner_strides[o];
            j->fn(j->ctx, hi - lo, offsets, inner_strides);
        }
        return;
    }
    /* rows [begin, end): decompose the first, then step the index like an odometer */
    int64_t r = begin;
    for (int o = 0; o < nops; o++) offsets[o] = 0;
    for (int d = outer - 1; d >= 0; d--) {
        idx[d] = r % w->shape[d];
        r /= w->shape[d];
        for (int o = 0; o < nops; o++) offsets[o] += idx[d] * w->strides[o][d];
    }
    for (int64_t row = begin; row < end; row++) {
        j->fn(j->ctx, inner, offsets, inner_strides);
        for (int d = outer - 1; d >= 0; d--) {
            if (++idx[d] < w->shape[d]) {
                for (int o = 0; o < nops; o++) offsets[o] += w->strides[o][d];
                break;
            }
            idx[d] = 0;
            for (int o = 0; o < nops; o++) offsets[o] -= (w->shape[d] - 1) * w->strides[o][d];
        }
    }
}

void pf_walk_run(const pf_walk *w, int64_t min_parallel, pf_row_fn fn, void *ctx) {
    int64_t total = 1;
    for (int d = 0; d < w->ndim; d++) total *= w->shape[d];
    if (total == 0) return;
    int64_t inner = w->shape[w->ndim - 1], rows = total / inner;
    walk_job job = {w, fn, ctx, inner, 1};
    int threads = pf_threads();
    if (total < min_parallel || threads == 1) {
        walk_task(&job, 0, rows);
        return;
    }
    if (rows < 2 * threads) {
        job.chunk = (inner + 2 * threads - 1) / (2 * threads);
        if (job.chunk < 1024) job.chunk = 1024;
        job.chunk = (job.chunk + 63) & ~(int64_t)63;
        job.nchunks = (inner + job.chunk - 1) / job.chunk;
        if (rows == 1 && job.nchunks > 1) {
            pf_parallel_for(job.nchunks, 1, walk_task, &job);
            return;
        }
        job.nchunks = 1;
        job.chunk = inner;
    }
    int64_t grain = min_parallel / inner;
    pf_parallel_for(rows, grain > 0 ? grain : 1, walk_task, &job);
}
