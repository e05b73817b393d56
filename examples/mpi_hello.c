/* An MPI program for the runtime's PMI (docs/pmi.md): hello from every rank, an allreduce
 * of the ranks, and a ring that passes each rank's number to the next. Prints one line per
 * rank; exits non-zero if a result is wrong. Started as a process group with pmi set
 * (examples/mpi_process_group.cpp), or by mpirun. */
#define _DEFAULT_SOURCE /* gethostname under -std=c11 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    long sum = 0, mine = rank;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    int from = -1;
    int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    MPI_Sendrecv(&rank, 1, MPI_INT, next, 7, &from, 1, MPI_INT, prev, 7, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    int ok = sum == (long)size * (size - 1) / 2 && from == prev;
    printf("Hello from rank %d of %d on %s: allreduce %ld, ring got %d from %d: %s\n", rank, size,
           host, sum, from, prev, ok ? "ok" : "WRONG");
    fflush(stdout);
    const char *abort_rank = getenv("MPI_HELLO_ABORT");
    if (abort_rank != NULL && atoi(abort_rank) == rank) {
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    MPI_Finalize();
    return ok ? 0 : 1;
}
