// Peer for bench-pool: malloc+free pairs per second of the process's malloc — glibc's, or
// jemalloc's when this file is built linked against jemalloc (bench-malloc-jemalloc).
// Prints the same JSON rows as bench-pool, with impl = BENCH_MALLOC_IMPL.
#include "bench_common.hpp"

#include <cstdlib>

#ifdef BENCH_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

int main(int argc, char **argv) {
    bool quick = bench::has_flag(argc, argv, "--quick");
#ifdef BENCH_WITH_JEMALLOC
    // Prove the binary really runs jemalloc, not glibc's malloc.
    const char *version = nullptr;
    size_t len = sizeof version;
    if (mallctl("version", &version, &len, nullptr, 0) != 0) {
        std::fprintf(stderr, "bench-malloc: jemalloc is not the allocator\n");
        return 1;
    }
#endif
    const int reps = quick ? 3 : 7;
    for (long size : {64L, 4096L, 1L << 20}) {
        long n = (size >= (1L << 20) ? 20000L : 1000000L) * (quick ? 1 : 5);
        auto op = [size](long count) {
            for (long i = 0; i < count; ++i) {
                void *p = std::malloc(static_cast<size_t>(size));
                bench::escape(p);
                std::free(p);
            }
        };
        bench::row("pool.alloc_free", BENCH_MALLOC_IMPL, size, "pairs_per_s",
                   bench::rate(op, n, reps));
        bench::row("pool.alloc_free_2proc", BENCH_MALLOC_IMPL, size, "pairs_per_s",
                   bench::rate_procs(2, op, n, reps));
    }
    return 0;
}
