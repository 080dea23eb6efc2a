#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int c, char **v) { MPI_Init(&c, &v); int r, n; MPI_Comm_rank(MPI_COMM_WORLD, &r); MPI_Comm_size(MPI_COMM_WORLD, &n);
 double x = r + 1, s; MPI_Allreduce(&x, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
 char h[64]; FILE *f = popen("ip -br addr | grep kcv", "r"); fgets(h, 64, f); pclose(f);
 printf("rank %d of %d sum %g iface %s", r, n, s, h); MPI_Finalize(); }
