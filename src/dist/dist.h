/* dist.h: the data-parallel layer between the engine and MPI (dist.c is the only file that
 * includes mpi.h). Without MPI in the build (no KERAC_MPI) every call works for one process:
 * size 1, rank 0, the folds run locally; kc_distributed_init refuses with how to build it. */
#ifndef KERAC_DIST_H
#define KERAC_DIST_H
#include "../internal.h"

/* the rows of a reduction group when the grouped order is on (kc_distributed_init, or
 * kc_distributed_set_group_rows), 0 otherwise: kc_fit then runs the plain order */
int kc_dist_group_rows(void);
int kc_dist_rank(void);
int kc_dist_size(void);
/* MPI is running (kc_distributed_init succeeded): collectives are real */
int kc_dist_mpi(void);

/* The groups of a step of n_groups groups that rank r owns: [first, first + count) */
void kc_dist_groups_of(int n_groups, int r, int *first, int *count);

/* Reserves the exchange buffers for folds of up to max_mine partials of n floats on this rank
 * and max_groups on all ranks together (fit's start, so that the steps allocate nothing). */
kc_status kc_dist_reserve(int max_mine, int max_groups, int64_t n);
/* The ordered fold of a step's group partials: out (n) = ((P_0 + P_1) + P_2) + ... over the
 * step's groups in group order, every rank getting all of it. items: this rank's partials in
 * group order (item 0 may already be a fold of this rank's first groups when the rank holds
 * the prefix: rank 0); n_items per rank given by items_of[r]. An ordered reduce-scatter (rank
 * s folds slice s of every partial) then an allgather of the folded slices. */
kc_status kc_dist_fold(float *const *items, const int *items_of, int64_t n, float *out);
/* The fold in buckets, overlapped with backward (kc_fit's row groups on MPI). Bucket k covers
 * [lo[k], hi[k]) of the n gradients; buckets are started and waited on in order k = 0, 1, ...
 * kc_dist_buckets_plan: at fit's start (allocates; nothing in the steps). Per step:
 * kc_dist_bucket_start(k, ...) once bucket k's gradients are final in items (as kc_dist_fold's;
 * read only during the call) -- k == 0 begins the step, out is where the folded gradients go;
 * kc_dist_progress between layers; kc_dist_bucket_wait(k): out[lo[k], hi[k]) is folded;
 * kc_dist_buckets_finish: waits for every started bucket (also on an error path). */
kc_status kc_dist_buckets_plan(const int64_t *lo, const int64_t *hi, int nb, int max_mine,
                               int max_groups, int64_t n);
int kc_dist_buckets(void);
kc_status kc_dist_bucket_start(int k, float *const *items, const int *items_of, float *out);
kc_status kc_dist_progress(void);
kc_status kc_dist_bucket_wait(int k);
kc_status kc_dist_buckets_finish(void);
/* seconds blocked on the gradients' reduction since kc_dist_stats_reset; MPI's clock */
double kc_dist_wait_seconds(void);
void kc_dist_stats_reset(void);
double kc_dist_now(void);
/* all ranks' values of count_of[r] doubles each, concatenated in rank order into all */
kc_status kc_dist_allgather_doubles(const double *mine, const int *count_of, double *all);
/* v[0..n) := the sum over ranks in rank order (v0 + v1) + v2 ..., on every rank */
kc_status kc_dist_sum_doubles(double *v, int n);
/* rank 0's v[0..n) on every rank */
kc_status kc_dist_bcast_doubles(double *v, int n);
/* rank r's rows of a sharded predict: [count * r / size, count * (r + 1) / size) */
void kc_dist_rows_of(int64_t count, int r, int64_t *first, int64_t *end);
/* buf (count rows of row_floats): every rank's rows (kc_dist_rows_of) to every rank, in place */
kc_status kc_dist_allgather_rows(float *buf, int64_t count, int64_t row_floats);
/* *flag := 1 on every rank when it is nonzero on any */
kc_status kc_dist_any(int *flag);
/* every rank's status: the worst (nonzero) one, so that a rank's failure stops all */
kc_status kc_dist_agree(kc_status mine);
/* a hash of the build (KERAC_VERSION, from git, and the reduction format): ranks compare it */
uint64_t kc_dist_build_hash(void);
/* callbacks.c: the callback writes files (ModelCheckpoint, CSVLogger): rank 0 runs it alone */
struct kc_callback;
int kc_callback_writes_files(const struct kc_callback *cb);
/* Before training: every rank's fingerprint (n values, each with a name) must equal rank 0's;
 * otherwise every rank returns KC_EINVAL naming the first rank and value that differ */
kc_status kc_dist_check_same(const uint64_t *fp, const char *const *names, int n,
                             const char *what);
#endif
