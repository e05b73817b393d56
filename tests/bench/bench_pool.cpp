// bench-pool: alloc+free pairs per second of a dragon pool at 64 B, 4 KiB and 1 MiB, in one
// process and in two processes contending on one pool, next to glibc malloc and jemalloc
// (run as the peer executables bench-malloc-glibc and bench-malloc-jemalloc, so each has
// its own allocator). Ends with ratio rows: time per pair relative to each peer.
#include "bench_common.hpp"

#include <dragon/dragon.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>

namespace {

dragon_pool_t *pool = nullptr;

void destroy_pool() {
    if (pool != nullptr) {
        dragon_pool_destroy(pool);
        pool = nullptr;
    }
}

std::string self_dir() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        return ".";
    }
    buf[n] = '\0';
    std::string s(buf);
    return s.substr(0, s.rfind('/'));
}

using Key = std::tuple<std::string, std::string, long>; // bench, impl, size
std::map<Key, double> results;

void record(const char *bench, const char *impl, long size, double value) {
    bench::row(bench, impl, size, "pairs_per_s", value);
    results[{bench, impl, size}] = value;
}

// Run a peer executable and relay (and remember) its rows.
void run_peer(const std::string &exe, const char *impl, bool quick) {
    std::string cmd = exe + (quick ? " --quick" : "");
    FILE *f = access(exe.c_str(), X_OK) == 0 ? popen(cmd.c_str(), "r") : nullptr;
    bool any = false;
    char line[512];
    while (f != nullptr && fgets(line, sizeof line, f) != nullptr) {
        char bench_name[64] = "";
        long size = 0;
        const char *b = std::strstr(line, "\"bench\":\"");
        const char *s = std::strstr(line, "\"size\":");
        const char *v = std::strstr(line, "\"value\":");
        if (b == nullptr || s == nullptr || v == nullptr ||
            std::sscanf(b + 9, "%63[^\"]", bench_name) != 1) {
            continue;
        }
        size = std::strtol(s + 7, nullptr, 10);
        record(bench_name, impl, size, std::strtod(v + 8, nullptr));
        any = true;
    }
    if (f != nullptr) {
        pclose(f);
    }
    if (!any) {
        for (long size : {64L, 4096L, 1L << 20}) {
            for (const char *bench : {"pool.alloc_free", "pool.alloc_free_2proc"}) {
                bench::row(bench, impl, size, "pairs_per_s", NAN,
                           "peer executable missing or failed");
            }
        }
    }
}

} // namespace

int main(int argc, char **argv) {
    bool quick = bench::has_flag(argc, argv, "--quick");
    const int reps = quick ? 3 : 7;
    std::string rt = "bench" + std::to_string(getpid());
    setenv("DRAGON_RUNTIME_ID", rt.c_str(), 1);
    if (dragon_pool_create("bench-pool", 64UL << 20, nullptr, &pool) != DRAGON_SUCCESS) {
        std::fprintf(stderr, "bench-pool: %s\n", dragon_last_error());
        return 1;
    }
    std::atexit(destroy_pool);

    for (long size : {64L, 4096L, 1L << 20}) {
        long n = (size >= (1L << 20) ? 20000L : 1000000L) * (quick ? 1 : 5);
        auto op = [size](long count) {
            for (long i = 0; i < count; ++i) {
                void *p = nullptr;
                if (dragon_pool_alloc(pool, static_cast<size_t>(size), &p) != DRAGON_SUCCESS) {
                    std::fprintf(stderr, "bench-pool: %s\n", dragon_last_error());
                    std::abort();
                }
                bench::escape(p);
                dragon_pool_free(pool, p);
            }
        };
        record("pool.alloc_free", "dragon", size, bench::rate(op, n, reps));
        record("pool.alloc_free_2proc", "dragon", size, bench::rate_procs(2, op, n, reps));
    }

    std::string dir = self_dir();
    run_peer(dir + "/bench-malloc-glibc", "glibc-malloc", quick);
    run_peer(dir + "/bench-malloc-jemalloc", "jemalloc", quick);

    // How many times longer a dragon pair takes than the peer's (1.0 = as fast).
    for (const char *peer : {"jemalloc", "glibc-malloc"}) {
        std::string metric = std::string("time_vs_") + peer + "_ratio";
        for (const char *bench : {"pool.alloc_free", "pool.alloc_free_2proc"}) {
            for (long size : {64L, 4096L, 1L << 20}) {
                auto d = results.find({bench, "dragon", size});
                auto p = results.find({bench, peer, size});
                if (d != results.end() && p != results.end() && d->second > 0) {
                    bench::row(bench, "dragon", size, metric.c_str(), p->second / d->second);
                }
            }
        }
    }
    destroy_pool();
    return 0;
}
