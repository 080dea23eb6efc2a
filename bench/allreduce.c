/* allreduce.c: the time of one gradient reduction on this machine (docs/SCALING.md). For each
 * size given (bytes of float32 gradients; default the MLP's and the convnet's), times REPS
 * MPI_Allreduce(SUM) calls after a warm-up and prints, on rank 0, one line per size: the median
 * and best seconds, the bus bandwidth (2 (N-1)/N bytes over time, what a ring moves per rank).
 * Run under mpirun; Open MPI's ring is selected with
 *   --mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 4
 * Usage: mpirun -np N build/bench_allreduce [--reps R] [BYTES ...] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, reps = 50;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long sizes[16];
    int n_sizes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (n_sizes < 16) sizes[n_sizes++] = atol(argv[i]);
    }
    if (!n_sizes) { /* the MLP 784-512-512-10 and keras.io's MNIST convnet, float32 */
        sizes[n_sizes++] = 669706L * 4;
        sizes[n_sizes++] = 34826L * 4;
    }
    if (reps < 1) reps = 1;
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int s = 0; s < n_sizes; s++) {
        long count = sizes[s] / 4;
        float *in = malloc(sizeof *in * (size_t)count), *out = malloc(sizeof *out * (size_t)count);
        if (!in || !out || !t) MPI_Abort(MPI_COMM_WORLD, 1);
        for (long i = 0; i < count; i++) in[i] = (float)(i % 97) * 0.01f + (float)rank;
        for (int w = 0; w < 3; w++)
            MPI_Allreduce(in, out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int r = 0; r < reps; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(in, out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double dt = MPI_Wtime() - t0, worst;
            MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            t[r] = worst;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
        if (rank == 0)
            printf("{\"ranks\": %d, \"bytes\": %ld, \"reps\": %d, \"median_s\": %.6g, "
                   "\"best_s\": %.6g, \"bus_gbit_s\": %.4g}\n",
                   size, count * 4, reps, med, t[0],
                   2.0 * (size - 1) / size * (double)(count * 4) * 8 / med / 1e9);
        free(in);
        free(out);
    }
    free(t);
    MPI_Finalize();
    return 0;
}
