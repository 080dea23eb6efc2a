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
#endif

#define KC_DEFAULT_GROUP_ROWS 32

static int group_rows;   /* 0: the plain order */
static int dist_on;      /* kc_distributed_init succeeded */
#ifdef KERAC_MPI
static int started_mpi;  /* we called MPI_Init (and so MPI_Finalize) */
#endif
static int rank_, size_ = 1;

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
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return kc_err(KC_ESTATE, "kc_distributed_init: MPI_Init failed");
        started_mpi = 1;
    }
    /* errors come back as codes: kc_fit turns them into a status, never an abort here */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (!group_rows) group_rows = g;
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
    if (!dist_on) {
        group_rows = 0;
        return KC_OK;
    }
    dist_on = 0;
    group_rows = 0;
#ifdef KERAC_MPI
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
    return KC_OK;
#else
    return kc_err(KC_ESTATE, "distributed training without MPI");
#endif
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
