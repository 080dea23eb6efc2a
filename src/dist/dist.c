/* dist.c: data-parallel training on MPI (issue 15): kc_distributed_init / finalize, the
 * ordered fold of the row groups' gradients across ranks, and the small collectives kc_fit
 * and kc_evaluate use. The only file that includes mpi.h; built with it when the Makefile
 * finds MPI (-DKERAC_MPI), and as a one-process stand-in otherwise. */
#include "dist.h"
#include "kerac.h"
#include <stdlib.h>
#include <string.h>
#ifdef KERAC_MPI
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#endif

#define KC_DEFAULT_GROUP_ROWS 32

static int group_rows;   /* 0: the plain order */
static int dist_on;      /* kc_distributed_init succeeded */
#ifdef KERAC_MPI
static int started_mpi;  /* we called MPI_Init (and so MPI_Finalize) */
static int thread_level; /* MPI's thread support: MPI_THREAD_MULTIPLE allows the progress thread */
#endif
static int rank_, size_ = 1;

#ifdef KERAC_MPI
static MPI_Comm comm_rs = MPI_COMM_NULL, comm_ag = MPI_COMM_NULL;
#endif
static struct {
    int nb;
    int64_t *lo, *hi, *rd_at, *sl_at; /* per bucket: range; its recv and folded-slice offsets */
    int *state;                        /* 0 idle, 1 exchanging, 2 gathering, 3 done */
    int *cnt;                          /* per bucket 8 * size ints */
    int total, next_fold;              /* items over all ranks this step; bucket to fold next */
#ifdef KERAC_MPI
    MPI_Request *req;                  /* per bucket: the exchange's, the allgather's */
    /* the progress thread (MPI_THREAD_MULTIPLE; KERAC_DIST_PROGRESS_THREAD=0: none): it alone
     * tests the buckets' requests, folds and starts the allgathers, so that both phases move
     * while backward computes; state, next_fold and err under mu, changes signalled on cv */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int threaded, quit, err;
    char err_msg[256];
#endif
    float *out;
    double wait_s; /* time blocked on the reduction since kc_dist_stats_reset */
} bk;

#ifdef KERAC_MPI
static double now_s(void) { return MPI_Wtime(); }
#endif

static void progress_stop(void);
#ifdef KERAC_MPI
static kc_status progress_start(void);
#endif

static void buckets_free(void) {
    progress_stop();
    free(bk.lo);
    free(bk.state);
    free(bk.cnt);
#ifdef KERAC_MPI
    free(bk.req);
#endif
    memset(&bk, 0, sizeof bk);
}


int kc_dist_group_rows(void) { return group_rows; }
int kc_dist_rank(void) { return dist_on ? rank_ : 0; }
int kc_dist_size(void) { return dist_on ? size_ : 1; }
int kc_dist_mpi(void) { return dist_on && size_ > 1; }

int kc_distributed_rank(void) { return kc_dist_rank(); }
int kc_distributed_size(void) { return kc_dist_size(); }
int kc_distributed_active(void) { return dist_on; }
int kc_distributed_group_rows(void) { return group_rows; }

kc_status kc_distributed_set_group_rows(int rows) {
    if (rows < 0 || rows > 4096)
        return kc_err(KC_EINVAL, "kc_distributed_set_group_rows: rows must be in [0, 4096], got %d",
                      rows);
    if (dist_on && rows == 0)
        return kc_err(KC_EINVAL, "kc_distributed_set_group_rows: distributed training needs row "
                                 "groups (rows > 0)");
    group_rows = rows;
    return KC_OK;
}

#ifdef KERAC_MPI
static int env_group_rows(void) {
    const char *e = getenv("KERAC_GROUP_ROWS");
    if (!e || !*e) return KC_DEFAULT_GROUP_ROWS;
    char *end;
    long v = strtol(e, &end, 10);
    return *end || v <= 0 || v > 4096 ? -1 : (int)v;
}
#endif

kc_status kc_distributed_init(int *argc, char ***argv) {
    if (dist_on) return KC_OK;
#ifndef KERAC_MPI
    (void)argc;
    (void)argv;
    return kc_err(KC_ESTATE,
                  "kc_distributed_init: this kerac was built without MPI; install Open MPI "
                  "(apt-get install openmpi-bin libopenmpi-dev, or scripts/install-deps.sh) and "
                  "rebuild (make clean && make): the Makefile finds mpicc and builds with it");
#else
    int g = env_group_rows();
    if (g < 0)
        return kc_err(KC_EINVAL, "kc_distributed_init: KERAC_GROUP_ROWS must be a whole number "
                                 "in [1, 4096], got '%s'", getenv("KERAC_GROUP_ROWS"));
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
            return kc_err(KC_ESTATE, "kc_distributed_init: MPI_Init failed");
        started_mpi = 1;
    }
    MPI_Query_thread(&thread_level);
    /* errors come back as codes: kc_fit turns them into a status, never an abort here */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (!group_rows) group_rows = g;
    /* the buckets' two phases, each on its own communicator (kc_dist_bucket_start) */
    if (comm_rs == MPI_COMM_NULL && (MPI_Comm_dup(MPI_COMM_WORLD, &comm_rs) != MPI_SUCCESS ||
                                     MPI_Comm_dup(MPI_COMM_WORLD, &comm_ag) != MPI_SUCCESS))
        return kc_err(KC_ESTATE, "kc_distributed_init: MPI_Comm_dup failed");
    dist_on = 1;
    /* every rank the same group size: it decides the bits */
    uint64_t fp = (uint64_t)group_rows;
    kc_status st = kc_dist_check_same(&fp, (const char *const[]){"group rows (KERAC_GROUP_ROWS)"},
                                      1, "kc_distributed_init");
    if (st) {
        dist_on = 0;
        return st;
    }
    return KC_OK;
#endif
}

static struct {
    float *send, *recv, *slice;
    int64_t send_cap, recv_cap, slice_cap;
    int *counts; /* 4 * size ints: send counts, send displs, recv counts, recv displs */
} xb;

kc_status kc_distributed_finalize(void) {
    free(xb.send);
    free(xb.recv);
    free(xb.slice);
    free(xb.counts);
    memset(&xb, 0, sizeof xb);
    buckets_free();
    if (!dist_on) {
        group_rows = 0;
        return KC_OK;
    }
    dist_on = 0;
    group_rows = 0;
#ifdef KERAC_MPI
    if (comm_rs != MPI_COMM_NULL) MPI_Comm_free(&comm_rs);
    if (comm_ag != MPI_COMM_NULL) MPI_Comm_free(&comm_ag);
    if (started_mpi) {
        started_mpi = 0;
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin && MPI_Finalize() != MPI_SUCCESS)
            return kc_err(KC_ESTATE, "kc_distributed_finalize: MPI_Finalize failed");
    }
#endif
    return KC_OK;
}

#ifndef KERAC_VERSION
#define KERAC_VERSION "unknown"
#endif
uint64_t kc_dist_build_hash(void) {
    const char *v = KERAC_VERSION " reduction-format-1";
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *v; v++) h = (h ^ (unsigned char)*v) * 0x100000001b3ull;
    return h;
}

void kc_dist_groups_of(int n_groups, int r, int *first, int *count) {
    int size = kc_dist_size();
    int a = (int)((int64_t)n_groups * r / size), b = (int)((int64_t)n_groups * (r + 1) / size);
    *first = a;
    *count = b - a;
}

static int grow(float **p, int64_t *cap, int64_t need) {
    if (*p && need <= *cap) return 1;
    free(*p);
    *p = malloc(sizeof(float) * (size_t)(need > 0 ? need : 1));
    *cap = *p ? need : 0;
    return *p != NULL;
}

kc_status kc_dist_reserve(int max_mine, int max_groups, int64_t n) {
    int size = kc_dist_size();
    if (size <= 1) return KC_OK;
    int64_t slice = (n + size - 1) / size;
    if (!grow(&xb.send, &xb.send_cap, (int64_t)max_mine * n) ||
        !grow(&xb.recv, &xb.recv_cap, (int64_t)max_groups * slice) ||
        !grow(&xb.slice, &xb.slice_cap, slice))
        return kc_err(KC_ENOMEM, "distributed training: out of memory for the exchange buffers "
                                 "(%d groups of %lld floats)", max_groups, (long long)n);
    if (!xb.counts && !(xb.counts = malloc(sizeof(int) * 4 * (size_t)size)))
        return kc_err(KC_ENOMEM, "distributed training: out of memory");
    return KC_OK;
}

#ifdef KERAC_MPI
static void slice_of(int64_t n, int s, int size, int64_t *a, int64_t *b) {
    *a = n * s / size;
    *b = n * (s + 1) / size;
}

static kc_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return kc_err(KC_ESTATE, "distributed training: %s failed on rank %d: %s (another rank "
                             "may have failed or died)", what, rank_, msg);
}
#endif

kc_status kc_dist_fold(float *const *items, const int *items_of, int64_t n, float *out) {
    int size = kc_dist_size();
    if (size <= 1) { /* one process: the fold in place */
        int k = items_of[0];
        if (k == 0) memset(out, 0, sizeof(float) * (size_t)n);
        else if (out != items[0]) memcpy(out, items[0], sizeof(float) * (size_t)n);
        for (int g = 1; g < k; g++)
            for (int64_t i = 0; i < n; i++) out[i] += items[g][i];
        return KC_OK;
    }
#ifdef KERAC_MPI
    int me = rank_, mine = items_of[me], total = 0;
    for (int r = 0; r < size; r++) total += items_of[r];
    int *sc = xb.counts, *sd = sc + size, *rc = sd + size, *rd = rc + size;
    int64_t a, b, my_a, my_b;
    slice_of(n, me, size, &my_a, &my_b);
    int64_t at = 0;
    for (int s = 0; s < size; s++) { /* to rank s: slice s of each of my partials */
        slice_of(n, s, size, &a, &b);
        sc[s] = (int)((b - a) * mine);
        sd[s] = (int)at;
        for (int g = 0; g < mine; g++, at += b - a)
            memcpy(xb.send + at, items[g] + a, sizeof(float) * (size_t)(b - a));
    }
    at = 0;
    for (int r = 0; r < size; r++) { /* from rank r: its partials' slice `me`, in group order */
        rc[r] = (int)((my_b - my_a) * items_of[r]);
        rd[r] = (int)at;
        at += rc[r];
    }
    double t0 = now_s();
    int rc_ = MPI_Alltoallv(xb.send, sc, sd, MPI_FLOAT, xb.recv, rc, rd, MPI_FLOAT,
                            MPI_COMM_WORLD);
    if (rc_ != MPI_SUCCESS) return mpi_fail(rc_, "the gradients' reduce-scatter");
    int64_t w = my_b - my_a;
    float *f = xb.slice;
    if (total == 0) memset(f, 0, sizeof(float) * (size_t)w);
    else memcpy(f, xb.recv, sizeof(float) * (size_t)w);
    for (int g = 1; g < total; g++) {
        const float *p = xb.recv + (int64_t)g * w;
        for (int64_t i = 0; i < w; i++) f[i] += p[i];
    }
    for (int r = 0; r < size; r++) {
        slice_of(n, r, size, &a, &b);
        rc[r] = (int)(b - a);
        rd[r] = (int)a;
    }
    rc_ = MPI_Allgatherv(f, (int)w, MPI_FLOAT, out, rc, rd, MPI_FLOAT, MPI_COMM_WORLD);
    if (rc_ != MPI_SUCCESS) return mpi_fail(rc_, "the gradients' allgather");
    bk.wait_s += now_s() - t0;
    return KC_OK;
#else
    return kc_err(KC_ESTATE, "distributed training without MPI");
#endif
}

/* ---- the fold in buckets, overlapped with backward ----------------------------------------
 * The same ordered fold as kc_dist_fold, cut into buckets of whole layers: bucket k covers
 * [lo[k], hi[k]) of the flat gradients. Its reduce-scatter (MPI_Ialltoallv, on comm_rs) starts
 * as soon as backward has produced the bucket's gradients; kc_dist_progress, called between
 * layers, folds the slices of the buckets whose exchange has arrived and starts their allgather
 * (MPI_Iallgatherv, on comm_ag). Each phase runs on its own communicator in bucket order, so
 * every rank issues its collectives in the same order whatever the timing. The fold is the
 * same per element, so the bits are kc_dist_fold's. */
kc_status kc_dist_buckets_plan(const int64_t *lo, const int64_t *hi, int nb, int max_mine,
                               int max_groups, int64_t n) {
    buckets_free();
    int size = kc_dist_size();
    if (size <= 1 || nb <= 0) return KC_OK;
    kc_status st = kc_dist_reserve(max_mine, max_groups, n);
    if (st) return st;
    bk.lo = malloc(sizeof(int64_t) * 4 * (size_t)nb);
    bk.state = calloc((size_t)nb, sizeof(int));
    bk.cnt = malloc(sizeof(int) * 8 * (size_t)size * (size_t)nb);
#ifdef KERAC_MPI
    bk.req = malloc(sizeof(MPI_Request) * 2 * (size_t)nb);
    if (!bk.req) st = KC_ENOMEM;
#endif
    if (st || !bk.lo || !bk.state || !bk.cnt) {
        buckets_free();
        return kc_err(KC_ENOMEM, "distributed training: out of memory for the buckets");
    }
    bk.hi = bk.lo + nb;
    bk.rd_at = bk.hi + nb;
    bk.sl_at = bk.rd_at + nb;
    bk.nb = nb;
    int64_t sl = 0, me = kc_dist_rank();
    for (int k = 0; k < nb; k++) {
        bk.lo[k] = lo[k];
        bk.hi[k] = hi[k];
        int64_t w = hi[k] - lo[k];
        bk.sl_at[k] = sl;
        bk.rd_at[k] = sl * max_groups;
        sl += w * (me + 1) / size - w * me / size;
    }
    /* this rank's slices of every bucket side by side: at most n / size + nb floats */
    if (!grow(&xb.recv, &xb.recv_cap, (int64_t)max_groups * sl) ||
        !grow(&xb.slice, &xb.slice_cap, sl)) {
        buckets_free();
        return kc_err(KC_ENOMEM, "distributed training: out of memory for the exchange buffers");
    }
#ifdef KERAC_MPI
    if ((st = progress_start())) buckets_free();
#endif
    return st;
}

int kc_dist_buckets(void) { return bk.nb; }

#ifdef KERAC_MPI
/* bucket k's exchange has arrived: fold this rank's slice in group order, start the allgather */
static kc_status bucket_fold(int k) {
    int size = size_, me = rank_;
    int *gc = bk.cnt + (size_t)8 * size * k + 4 * size, *gd = gc + size;
    int64_t lo = bk.lo[k], span = bk.hi[k] - lo, w = span * (me + 1) / size - span * me / size;
    float *f = xb.slice + bk.sl_at[k];
    const float *recv = xb.recv + bk.rd_at[k];
    if (bk.total == 0) memset(f, 0, sizeof(float) * (size_t)w);
    else memcpy(f, recv, sizeof(float) * (size_t)w);
    for (int g = 1; g < bk.total; g++) {
        const float *p = recv + (int64_t)g * w;
        for (int64_t i = 0; i < w; i++) f[i] += p[i];
    }
    for (int r = 0; r < size; r++) {
        gc[r] = (int)(span * (r + 1) / size - span * r / size);
        gd[r] = (int)(span * r / size);
    }
    int rc_ = MPI_Iallgatherv(f, (int)w, MPI_FLOAT, bk.out + lo, gc, gd, MPI_FLOAT, comm_ag,
                              &bk.req[2 * k + 1]);
    return rc_ == MPI_SUCCESS ? KC_OK : mpi_fail(rc_, "the gradients' allgather");
}

static int bucket_pending(void) {
    for (int k = 0; k < bk.nb; k++)
        if (bk.state[k] == 1 || bk.state[k] == 2) return 1;
    return 0;
}

/* the progress thread: tests, folds and starts allgathers while the caller computes */
static void *progress_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&bk.mu);
    for (;;) {
        while (!bk.quit && (bk.err || !bucket_pending())) pthread_cond_wait(&bk.cv, &bk.mu);
        if (bk.quit) break;
        int moved = 0, rc = MPI_SUCCESS;
        kc_status st = KC_OK;
        int k = bk.next_fold;
        if (k < bk.nb && bk.state[k] == 1) {
            int done = 0;
            rc = MPI_Test(&bk.req[2 * k], &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) st = mpi_fail(rc, "the gradients' reduce-scatter");
            else if (done) {
                pthread_mutex_unlock(&bk.mu); /* the fold without the lock */
                st = bucket_fold(k);
                pthread_mutex_lock(&bk.mu);
                if (!st) bk.state[k] = 2, bk.next_fold++, moved = 1;
            }
        }
        for (int j = 0; !st && j < bk.nb; j++) {
            if (bk.state[j] != 2) continue;
            int done = 0;
            rc = MPI_Test(&bk.req[2 * j + 1], &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) st = mpi_fail(rc, "the gradients' allgather");
            else if (done) bk.state[j] = 3, moved = 1;
        }
        if (st) {
            bk.err = (int)st;
            snprintf(bk.err_msg, sizeof bk.err_msg, "%s", kc_last_error());
            moved = 1;
        }
        if (moved) {
            pthread_cond_broadcast(&bk.cv);
            continue;
        }
        pthread_mutex_unlock(&bk.mu);
        struct timespec ts = {0, 20000}; /* 20 us between polls: the other core computes */
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&bk.mu);
    }
    pthread_mutex_unlock(&bk.mu);
    return NULL;
}

static kc_status progress_start(void) {
    const char *e = getenv("KERAC_DIST_PROGRESS_THREAD");
    if (thread_level < MPI_THREAD_MULTIPLE || (e && !strcmp(e, "0"))) return KC_OK;
    pthread_mutex_init(&bk.mu, NULL);
    pthread_cond_init(&bk.cv, NULL);
    bk.quit = bk.err = 0;
    if (pthread_create(&bk.thread, NULL, progress_main, NULL)) {
        pthread_mutex_destroy(&bk.mu);
        pthread_cond_destroy(&bk.cv);
        return kc_err(KC_ESTATE, "distributed training: cannot start the progress thread");
    }
    bk.threaded = 1;
    return KC_OK;
}

static void progress_stop(void) {
    if (!bk.threaded) return;
    pthread_mutex_lock(&bk.mu);
    bk.quit = 1;
    pthread_cond_broadcast(&bk.cv);
    pthread_mutex_unlock(&bk.mu);
    pthread_join(bk.thread, NULL);
    pthread_mutex_destroy(&bk.mu);
    pthread_cond_destroy(&bk.cv);
    bk.threaded = 0;
}
#else
static void progress_stop(void) {}
#endif

kc_status kc_dist_bucket_start(int k, float *const *items, const int *items_of, float *out) {
#ifdef KERAC_MPI
    int size = size_, me = rank_, mine = items_of[me], total = 0;
    for (int r = 0; r < size; r++) total += items_of[r];
    int *sc = bk.cnt + (size_t)8 * size * k, *sd = sc + size, *rc = sd + size, *rd = rc + size;
    int64_t lo = bk.lo[k], span = bk.hi[k] - lo, at = 0;
    float *send = xb.send + (int64_t)mine * lo;
    for (int s = 0; s < size; s++) { /* to rank s: slice s of the bucket, of each partial */
        int64_t a = lo + span * s / size, b = lo + span * (s + 1) / size;
        sc[s] = (int)((b - a) * mine);
        sd[s] = (int)at;
        for (int g = 0; g < mine; g++, at += b - a)
            memcpy(send + at, items[g] + a, sizeof(float) * (size_t)(b - a));
    }
    int64_t w = span * (me + 1) / size - span * me / size;
    at = 0;
    for (int r = 0; r < size; r++) { /* from rank r: its partials' slice `me`, in group order */
        rc[r] = (int)(w * items_of[r]);
        rd[r] = (int)at;
        at += rc[r];
    }
    int rc_ = MPI_Ialltoallv(send, sc, sd, MPI_FLOAT, xb.recv + bk.rd_at[k], rc, rd, MPI_FLOAT,
                             comm_rs, &bk.req[2 * k]);
    if (rc_ != MPI_SUCCESS) return mpi_fail(rc_, "the gradients' reduce-scatter");
    if (bk.threaded) pthread_mutex_lock(&bk.mu);
    if (k == 0) {
        bk.total = total;
        bk.next_fold = 0;
        bk.out = out;
    }
    bk.state[k] = 1;
    if (bk.threaded) {
        pthread_cond_broadcast(&bk.cv);
        pthread_mutex_unlock(&bk.mu);
    }
    return KC_OK;
#else
    (void)k, (void)items, (void)items_of, (void)out;
    return kc_err(KC_ESTATE, "distributed training without MPI");
#endif
}

kc_status kc_dist_progress(void) {
#ifdef KERAC_MPI
    if (bk.threaded) return KC_OK; /* the thread's work */
    while (bk.next_fold < bk.nb && bk.state[bk.next_fold] == 1) {
        int done = 0, k = bk.next_fold;
        int rc = MPI_Test(&bk.req[2 * k], &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "the gradients' reduce-scatter");
        if (!done) break;
        kc_status st = bucket_fold(k);
        if (st) return st;
        bk.state[k] = 2;
        bk.next_fold++;
    }
#endif
    return KC_OK;
}

kc_status kc_dist_bucket_wait(int k) {
#ifdef KERAC_MPI
    double t0 = now_s();
    kc_status st = KC_OK;
    if (bk.threaded) {
        pthread_mutex_lock(&bk.mu);
        while (bk.state[k] != 3 && bk.state[k] != 0 && !bk.err) pthread_cond_wait(&bk.cv, &bk.mu);
        if (bk.err) st = kc_err((kc_status)bk.err, "%s", bk.err_msg);
        else if (bk.state[k] == 0)
            st = kc_err(KC_ESTATE, "distributed training: bucket %d waited on before it started",
                        k);
        pthread_mutex_unlock(&bk.mu);
        bk.wait_s += now_s() - t0;
        return st;
    }
    while (!st && bk.next_fold <= k) {
        int j = bk.next_fold;
        if (bk.state[j] != 1) {
            st = kc_err(KC_ESTATE, "distributed training: bucket %d waited on before it started",
                        j);
            break;
        }
        int rc = MPI_Wait(&bk.req[2 * j], MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "the gradients' reduce-scatter");
        else if (!(st = bucket_fold(j))) bk.state[j] = 2, bk.next_fold++;
    }
    if (!st && bk.state[k] == 2) {
        int rc = MPI_Wait(&bk.req[2 * k + 1], MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) st = mpi_fail(rc, "the gradients' allgather");
        else bk.state[k] = 3;
    }
    bk.wait_s += now_s() - t0;
    return st;
#else
    (void)k;
    return KC_OK;
#endif
}

kc_status kc_dist_buckets_finish(void) {
    kc_status st = KC_OK;
    for (int k = 0; k < bk.nb; k++) {
#ifdef KERAC_MPI
        if (bk.threaded) pthread_mutex_lock(&bk.mu);
        int state = bk.state[k]; /* the progress thread moves it from 1 to 3 */
        if (bk.threaded) pthread_mutex_unlock(&bk.mu);
#else
        int state = bk.state[k];
#endif
        if (state == 0) continue;
        if (state != 3 && (st = kc_dist_bucket_wait(k)))
            return st; /* the requests are broken: MPI's error ends the run */
#ifdef KERAC_MPI
        if (bk.threaded) pthread_mutex_lock(&bk.mu);
#endif
        bk.state[k] = 0;
#ifdef KERAC_MPI
        if (bk.threaded) pthread_mutex_unlock(&bk.mu);
#endif
    }
    return st;
}

/* time blocked on the gradients' reduction (kc_dist_fold or the buckets), since the last reset */
double kc_dist_wait_seconds(void) { return bk.wait_s; }
void kc_dist_stats_reset(void) { bk.wait_s = 0.0; }
double kc_dist_now(void) {
#ifdef KERAC_MPI
    if (dist_on) return now_s();
#endif
    return 0.0;
}

kc_status kc_dist_allgather_doubles(const double *mine, const int *count_of, double *all) {
    int size = kc_dist_size();
    if (size <= 1) {
        memmove(all, mine, sizeof(double) * (size_t)count_of[0]);
        return KC_OK;
    }
#ifdef KERAC_MPI
    int *d = xb.counts ? xb.counts : NULL, local[64];
    int *displs = d ? d + 3 * size : (size <= 64 ? local : NULL);
    if (!displs) return kc_err(KC_ENOMEM, "distributed training: out of memory");
    int at = 0;
    for (int r = 0; r < size; r++) displs[r] = at, at += count_of[r];
    int rc = MPI_Allgatherv(mine, count_of[rank_], MPI_DOUBLE, all, count_of, displs, MPI_DOUBLE,
                            MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? KC_OK : mpi_fail(rc, "an allgather");
#else
    return KC_OK;
#endif
}

kc_status kc_dist_sum_doubles(double *v, int n) {
    int size = kc_dist_size();
    if (size <= 1 || n <= 0) return KC_OK;
#ifdef KERAC_MPI
    double *all = malloc(sizeof(double) * (size_t)n * (size_t)size);
    if (!all) return kc_err(KC_ENOMEM, "distributed training: out of memory");
    int rc = MPI_Allgather(v, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, "an allgather of sums");
    }
    for (int i = 0; i < n; i++) {
        double s = all[i];
        for (int r = 1; r < size; r++) s += all[(int64_t)r * n + i];
        v[i] = s;
    }
    free(all);
    return KC_OK;
#else
    return KC_OK;
#endif
}

kc_status kc_dist_bcast_doubles(double *v, int n) {
    if (kc_dist_size() <= 1 || n <= 0) return KC_OK;
#ifdef KERAC_MPI
    int rc = MPI_Bcast(v, n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? KC_OK : mpi_fail(rc, "a broadcast");
#else
    return KC_OK;
#endif
}

void kc_dist_rows_of(int64_t count, int r, int64_t *first, int64_t *end) {
    int size = kc_dist_size();
    *first = count * r / size;
    *end = count * (r + 1) / size;
}

kc_status kc_dist_allgather_rows(float *buf, int64_t count, int64_t row_floats) {
    int size = kc_dist_size();
    if (size <= 1) return KC_OK;
#ifdef KERAC_MPI
    if (count * row_floats > 0x7fffffff)
        return kc_err(KC_EINVAL, "distributed predict: %lld outputs of %lld values exceed one "
                                 "MPI message (2^31 values); predict fewer samples per call",
                      (long long)count, (long long)row_floats);
    int *c = malloc(sizeof(int) * 2 * (size_t)size);
    if (!c) return kc_err(KC_ENOMEM, "distributed predict: out of memory");
    for (int r = 0; r < size; r++) {
        int64_t a, b;
        kc_dist_rows_of(count, r, &a, &b);
        c[r] = (int)((b - a) * row_floats);
        c[size + r] = (int)(a * row_floats);
    }
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, c, c + size, MPI_FLOAT,
                            MPI_COMM_WORLD);
    free(c);
    return rc == MPI_SUCCESS ? KC_OK : mpi_fail(rc, "the predictions' allgather");
#else
    (void)buf, (void)count, (void)row_floats;
    return KC_OK;
#endif
}

kc_status kc_dist_any(int *flag) {
    if (kc_dist_size() <= 1) return KC_OK;
#ifdef KERAC_MPI
    int v = *flag != 0, any = 0;
    int rc = MPI_Allreduce(&v, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "a stop flag's exchange");
    *flag = any;
#endif
    return KC_OK;
}

kc_status kc_dist_agree(kc_status mine) {
    if (kc_dist_size() <= 1) return mine;
#ifdef KERAC_MPI
    int v = (int)mine, worst = 0;
    int rc = MPI_Allreduce(&v, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "a status exchange");
    if (mine) return mine;
    if (worst)
        return kc_err((kc_status)worst, "distributed training: another rank failed (status %d); "
                                        "its own message says why", worst);
    return KC_OK;
#else
    return mine;
#endif
}

kc_status kc_dist_check_same(const uint64_t *fp, const char *const *names, int n,
                             const char *what) {
    int size = kc_dist_size();
    if (size <= 1 || n <= 0) return KC_OK;
#ifdef KERAC_MPI
    uint64_t *all = malloc(sizeof(uint64_t) * (size_t)n * (size_t)size);
    if (!all) return kc_err(KC_ENOMEM, "%s: out of memory", what);
    int rc = MPI_Allgather(fp, n, MPI_UINT64_T, all, n, MPI_UINT64_T, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, "the ranks' check");
    }
    for (int r = 1; r < size; r++)
        for (int i = 0; i < n; i++)
            if (all[(int64_t)r * n + i] != all[i]) {
                kc_status st = kc_err(
                    KC_EINVAL,
                    "%s: rank %d differs from rank 0 in %s (%llu against %llu on rank 0); every "
                    "rank must run the same program on the same data and settings",
                    what, r, names[i], (unsigned long long)all[(int64_t)r * n + i],
                    (unsigned long long)all[i]);
                free(all);
                return st;
            }
    free(all);
    return KC_OK;
#else
    return KC_OK;
#endif
}
