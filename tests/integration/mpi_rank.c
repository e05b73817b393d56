/* An MPI rank for test pmi: checks what the runtime told it (rank and size against its
 * group index and size, its CPU binding when asked), an allreduce and a ring, and fails on
 * purpose when asked (before MPI_Init, between MPI_Init and the next collective, or with
 * MPI_Abort). Exit 0 only when every check held. */
#define _GNU_SOURCE
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int asked(const char *var, int rank) {
    const char *v = getenv(var);
    return v != NULL && atoi(v) == rank;
}

int main(int argc, char **argv) {
    int index = atoi(getenv("DRAGON_GROUP_INDEX") != NULL ? getenv("DRAGON_GROUP_INDEX") : "-1");
    if (asked("MPI_RANK_DIE_BEFORE", index)) {
        _exit(7);
    }
    MPI_Init(&argc, &argv);
    int rank = -1, size = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *gs = getenv("DRAGON_GROUP_SIZE");
    int bad = 0;
    if (rank != index || gs == NULL || size != atoi(gs)) {
        fprintf(stderr, "rank %d of %d, but group index %d of %s\n", rank, size, index,
                gs != NULL ? gs : "?");
        bad = 1;
    }
    char var[64];
    snprintf(var, sizeof var, "MPI_RANK_CPU_%d", rank);
    if (getenv(var) != NULL) {
        cpu_set_t set;
        CPU_ZERO(&set);
        sched_getaffinity(0, sizeof set, &set);
        int want = atoi(getenv(var));
        if (CPU_COUNT(&set) != 1 || !CPU_ISSET(want, &set)) {
            fprintf(stderr, "rank %d: bound to %d CPUs, not to CPU %d alone\n", rank,
                    CPU_COUNT(&set), want);
            bad = 1;
        }
    }
    if (asked("MPI_RANK_DIE_AFTER_INIT", rank)) {
        _exit(9);
    }
    if (asked("MPI_RANK_ABORT", rank)) {
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    long mine = rank, sum = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    int from = -1, next = (rank + 1) % size, prev = (rank + size - 1) % size;
    MPI_Sendrecv(&rank, 1, MPI_INT, next, 7, &from, 1, MPI_INT, prev, 7, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    if (sum != (long)size * (size - 1) / 2 || from != prev) {
        fprintf(stderr, "rank %d: allreduce %ld, ring %d (from %d)\n", rank, sum, from, prev);
        bad = 1;
    }
    MPI_Finalize();
    return bad;
}
