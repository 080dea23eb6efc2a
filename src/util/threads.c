/* threads.c: kerac's one thread pool. Matrix products and the elementwise kernels both run
 * on it, so no second pool fights it for the cores (where OpenBLAS does the products, its
 * pool is the only one and kerac's kernels run on the caller). Workers spin briefly for the next task
 * (a training step issues one every few microseconds), then sleep on a futex, so an idle or
 * loaded machine does not lose a core to spinning. */
#include "../internal.h"
#include "threads.h"
#include "../ops/ops.h"
#include "platform.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPIN_ROUNDS 2000 /* tens of microseconds of pause instructions, */
#define YIELD_ROUNDS 64  /* then a few sched_yield()s (other work on the core runs), then sleep */
/* Elementwise jobs smaller than this (items x cost) run on the caller: a batch's activations
 * (128 x 512) take a few microseconds on one core, about what waking the pool and waiting at
 * its barrier costs, and with another process on the cores a barrier can cost far more */
#define PARALLEL_MIN_WORK (1 << 18)
/* When the caller waits longer than this at a barrier, a worker was held back by the system
 * (another process on the cores): the next SERIAL_TASKS tasks run on the caller alone, then
 * the pool is tried again. Results are the same either way. */
#define LATE_WORKER_SECONDS 1e-3
#define SERIAL_TASKS 500
#define PARTS_PER_THREAD 4 /* a task is cut into parts; each thread takes its own run of them,
                              then any left: a thread that the system holds back (another
                              process on the cores) delays only the part it holds, the others
                              take the rest */

/* read without the lock (kc_get_num_threads, kc_pool_size), so atomic */
static _Atomic int num_threads = 0;
static _Atomic int pool_size = 1; /* pool.workers + 1, for readers without the lock */
/* one task at a time: two user threads training two models take turns on the pool */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
    int workers; /* threads besides the caller */
    pthread_t *ids;
    _Atomic uint32_t generation; /* bumped for each task; workers wait for a change */
    uint32_t start_generation;   /* the value when the workers were created */
    _Atomic int pending;         /* workers still running the current task */
    _Atomic uint32_t done_seq;   /* bumped when pending reaches 0: the caller waits on it */
    _Atomic int quit;
    _Atomic int sleeping_workers, sleeping_caller; /* futex wakes only when someone sleeps */
    kc_task_fn fn;
    void *arg;
    int parts;
    _Atomic int next_part;
    _Atomic uint64_t claimed; /* parts taken, when there are at most 64 */
    int serial_tasks_left;
} pool;

static _Thread_local int thread_index; /* 0: the caller; workers 1 .. workers */

/* takes part (of at most 64): 1 if no thread had */
static int claim(int part) {
    uint64_t bit = 1ull << part;
    return !(atomic_fetch_or_explicit(&pool.claimed, bit, memory_order_relaxed) & bit);
}

/* Runs parts of the current task until none is left. Each part is one fixed share of the work
 * (kc_split of part of parts), so which thread runs it changes no result. */
static void run_parts(void) {
    if (pool.parts <= 64) {
        /* this thread's own parts first (thread t owns the t-th contiguous run of parts, so
         * consecutive tasks split alike give a thread the same data: the rows of weights an
         * input-gradient product reads are those its weight-gradient product steps next),
         * then any left. Measured: 0.5% of a training step, idle or loaded */
        int per = pool.parts / (pool.workers + 1);
        for (int p = thread_index * per; p < (thread_index + 1) * per && p < pool.parts; p++)
            if (claim(p)) pool.fn(pool.arg, p, pool.parts);
        uint64_t all = pool.parts == 64 ? ~0ull : (1ull << pool.parts) - 1;
        for (;;) {
            uint64_t left = ~atomic_load_explicit(&pool.claimed, memory_order_relaxed) & all;
            if (!left) return;
            int p = __builtin_ctzll(left);
            if (claim(p)) pool.fn(pool.arg, p, pool.parts);
        }
    }
    for (;;) {
        int part = atomic_fetch_add_explicit(&pool.next_part, 1, memory_order_relaxed);
        if (part >= pool.parts) return;
        pool.fn(pool.arg, part, pool.parts);
    }
}

/* Spins, then sleeps, until *addr differs from seen. The sleeper count is raised before the
 * last look at *addr (all seq_cst), so a waker that bumps *addr and then finds no sleeper
 * cannot miss one: that sleeper will see the new value and not sleep. */
static void wait_change(_Atomic uint32_t *addr, uint32_t seen, _Atomic int *sleepers) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != seen) return;
        kc_cpu_relax();
    }
    for (int i = 0; i < YIELD_ROUNDS; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != seen) return;
        sched_yield();
    }
    atomic_fetch_add(sleepers, 1);
    while (atomic_load(addr) == seen) kc_futex_wait(addr, seen);
    atomic_fetch_sub(sleepers, 1);
}

static void bump_and_wake(_Atomic uint32_t *addr, _Atomic int *sleepers) {
    atomic_fetch_add(addr, 1);
    if (atomic_load(sleepers)) kc_futex_wake_all(addr);
}

int kc_thread_index(void) { return thread_index; }

static void *worker_main(void *p) {
    thread_index = (int)(intptr_t)p;
    /* not 0: after a restart the counter has moved on, and a new worker must not take the
     * last task of the old pool for a new one */
    uint32_t seen = pool.start_generation;
    for (;;) {
        wait_change(&pool.generation, seen, &pool.sleeping_workers);
        seen = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (atomic_load(&pool.quit)) return NULL;
        run_parts();
        if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1)
            bump_and_wake(&pool.done_seq, &pool.sleeping_caller);
    }
}

static void pool_stop(void) {
    if (!pool.ids) return;
    atomic_store(&pool.quit, 1);
    atomic_fetch_add(&pool.generation, 1);
    kc_futex_wake_all(&pool.generation); /* every worker, sleeping or about to */
    for (int i = 0; i < pool.workers; i++) pthread_join(pool.ids[i], NULL);
    free(pool.ids);
    pool.ids = NULL;
    pool.workers = 0;
    atomic_store(&pool_size, 1);
    atomic_store(&pool.quit, 0);
}

/* In a forked child (kc_load probes files in one) only the forking thread exists: the pool
 * has no workers there, and its lock may have been held by a thread that is gone. */
static void pool_after_fork_in_child(void) {
    pthread_mutex_init(&pool_lock, NULL);
    free(pool.ids);
    pool.ids = NULL;
    pool.workers = 0;
    atomic_store(&pool_size, 1);
}
static void register_atfork(void) { pthread_atfork(NULL, NULL, pool_after_fork_in_child); }

static void pool_start(int threads) {
    static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
    pthread_once(&atfork_once, register_atfork);
    pool_stop();
    if (threads <= 1) return;
    pool.ids = calloc((size_t)threads - 1, sizeof *pool.ids);
    if (!pool.ids) return; /* no pool: tasks run on the caller alone */
    pool.start_generation = atomic_load(&pool.generation);
    for (int i = 0; i < threads - 1; i++) {
        if (pthread_create(&pool.ids[i], NULL, worker_main, (void *)(intptr_t)(i + 1)) != 0) break;
        pool.workers++;
    }
    atomic_store(&pool_size, pool.workers + 1);
}

static int default_threads(void) {
    const char *env = getenv("KERAC_NUM_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

void kc_set_num_threads(int threads) {
    pthread_mutex_lock(&pool_lock);
    int n = threads > 0 ? threads : default_threads();
    atomic_store(&num_threads, n);
    kc_blas_set_threads(n);
    /* with OpenBLAS doing the products its pool has the cores: ours would spin against it */
    pool_start(strcmp(kc_gemm_backend(), "openblas") ? n : 1);
    pthread_mutex_unlock(&pool_lock);
}

int kc_get_num_threads(void) {
    if (atomic_load_explicit(&num_threads, memory_order_relaxed) == 0) {
        pthread_mutex_lock(&pool_lock); /* the first call sets the default, once */
        int unset = atomic_load(&num_threads) == 0;
        pthread_mutex_unlock(&pool_lock);
        if (unset) kc_set_num_threads(0);
    }
    return atomic_load_explicit(&num_threads, memory_order_relaxed);
}

void kc_parallel(kc_task_fn fn, void *arg) { kc_parallel_parts(fn, arg, PARTS_PER_THREAD); }

void kc_parallel_parts(kc_task_fn fn, void *arg, int parts_per_thread) {
    kc_parallel_parts_max(fn, arg, parts_per_thread, 1 << 30);
}

void kc_parallel_parts_max(kc_task_fn fn, void *arg, int parts_per_thread, int max_threads) {
    kc_get_num_threads();
    pthread_mutex_lock(&pool_lock);
    /* the pool's size is decided here, under the lock: another thread may have changed the
     * thread count since the caller sized its per-thread buffers */
    if (pool.workers == 0 || pool.serial_tasks_left > 0 || pool.workers + 1 > max_threads) {
        if (pool.serial_tasks_left > 0) pool.serial_tasks_left--;
        pthread_mutex_unlock(&pool_lock);
        fn(arg, 0, 1);
        return;
    }
    uint32_t done = atomic_load_explicit(&pool.done_seq, memory_order_acquire);
    pool.fn = fn;
    pool.arg = arg;
    pool.parts = (pool.workers + 1) * (parts_per_thread > 0 ? parts_per_thread : 1);
    atomic_store_explicit(&pool.next_part, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.claimed, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.pending, pool.workers, memory_order_release);
    double started = kc_now();
    bump_and_wake(&pool.generation, &pool.sleeping_workers);
    run_parts();
    double waiting_since = kc_now();
    wait_change(&pool.done_seq, done, &pool.sleeping_caller);
    /* late: the caller waited over 1 ms, and longer than it worked itself (a long task, such
     * as a convolution's, ends with some waiting for the last part: that is not lateness) */
    double waited = kc_now() - waiting_since;
    if (waited > LATE_WORKER_SECONDS && waited > waiting_since - started)
        pool.serial_tasks_left = SERIAL_TASKS;
    pthread_mutex_unlock(&pool_lock);
}

int kc_pool_size(void) {
    kc_get_num_threads();
    return atomic_load_explicit(&pool_size, memory_order_relaxed);
}

typedef struct {
    int64_t n, align;
    kc_range_fn fn;
    void *arg;
} range_job;

static void range_task(void *arg, int part, int parts) {
    const range_job *job = arg;
    int64_t begin, end;
    kc_split(job->n, part, parts, job->align, &begin, &end);
    if (begin < end) job->fn(job->arg, begin, end);
}

void kc_parallel_range(int64_t n, int64_t align, int64_t cost, kc_range_fn fn, void *arg) {
    if (n <= 0) return;
    if (n * cost < PARALLEL_MIN_WORK || kc_pool_size() == 1) {
        fn(arg, 0, n);
        return;
    }
    kc_parallel(range_task, &(range_job){n, align, fn, arg});
}
