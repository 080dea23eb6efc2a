/* threads.h: the library's one thread pool. A task is cut into parts: fn(arg, part, parts)
 * runs once for each part, on whichever thread takes it (the caller takes parts too), and
 * does the part-th share of the work (kc_split). */
#ifndef KERAC_THREADS_H
#define KERAC_THREADS_H
#include <stdint.h>

typedef void (*kc_task_fn)(void *arg, int thread, int threads);
/* Runs fn(arg, p, P) for p = 0 .. P-1 (P a few times the thread count) and returns when all
 * are done. One task at a time; not to be called from inside a task. */
void kc_parallel(kc_task_fn fn, void *arg);
/* The same with parts_per_thread parts per thread: 1 for a task whose parts share set-up work
 * that each part would otherwise repeat. */
void kc_parallel_parts(kc_task_fn fn, void *arg, int parts_per_thread);
/* The same, on the caller alone when the pool has more than max_threads threads: a task whose
 * parts index per-thread buffers (kc_thread_index) sized for max_threads. The size is checked
 * under the pool's lock, as another user thread may change the thread count at any time. */
void kc_parallel_parts_max(kc_task_fn fn, void *arg, int parts_per_thread, int max_threads);
int kc_pool_size(void);
/* Which of the pool's threads runs this: 0 for the caller, 1 .. kc_pool_size() - 1 for the
 * workers. A task's part can keep per-thread buffers warm in that thread's cache with it. */
int kc_thread_index(void);

typedef void (*kc_range_fn)(void *arg, int64_t begin, int64_t end);
/* Runs fn over [0, n), split over the pool in multiples of align. cost: work per item, so a
 * job too small to be worth waking the pool for runs on the caller alone. */
void kc_parallel_range(int64_t n, int64_t align, int64_t cost, kc_range_fn fn, void *arg);

/* The share [*begin, *end) of n items for thread t of T, in multiples of align (the last share
 * takes the remainder). Contiguous and fixed for given (n, T): results do not depend on
 * timing. */
static inline void kc_split(int64_t n, int t, int threads, int64_t align, int64_t *begin,
                            int64_t *end) {
    int64_t units = (n + align - 1) / align;
    int64_t lo = units * t / threads, hi = units * (t + 1) / threads;
    *begin = lo * align < n ? lo * align : n;
    *end = hi * align < n ? hi * align : n;
}
#endif
