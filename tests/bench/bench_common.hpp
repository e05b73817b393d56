// Shared by the benchmarks: JSON-lines output (../shared/BENCHMARKS.md), medians, and a
// two-process harness that starts both workers at once and sums their rates.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bench {

inline void row(const char *bench, const char *impl, long size, const char *metric, double value,
                const char *note = nullptr) {
    std::printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"size\":%ld,\"metric\":\"%s\",\"value\":",
                bench, impl, size, metric);
    if (value != value) { // NaN: the peer could not be measured
        std::printf("null");
    } else {
        std::printf("%.6g", value);
    }
    if (note != nullptr) {
        std::printf(",\"note\":\"%s\"", note);
    }
    std::printf("}\n");
    std::fflush(stdout);
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

// The q-quantile of v by nearest rank (q = 0.99: the p99, a value v holds).
inline double quantile(std::vector<double> v, double q) {
    if (v.empty()) {
        return 0.0;
    }
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

// Operations per second of op(n) doing n operations, as the median of `reps` timings.
inline double rate(const std::function<void(long)> &op, long n, int reps) {
    std::vector<double> rates;
    op(n / 10 + 1); // warm up
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        op(n);
        std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
        rates.push_back(static_cast<double>(n) / dt.count());
    }
    return median(rates);
}

// Run op(n) in `procs` forked processes started together; returns the summed rate (median
// over reps). setup() runs in each child before the start (e.g. to attach a pool).
inline double rate_procs(int procs, const std::function<void(long)> &op, long n, int reps) {
    struct Shared {
        std::atomic<int> ready;
        std::atomic<int> go;
        double rates[16];
    };
    std::vector<double> totals;
    for (int r = 0; r < reps; ++r) {
        void *mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        auto *sh = new (mem) Shared{};
        std::vector<pid_t> pids;
        for (int i = 0; i < procs; ++i) {
            pid_t pid = fork();
            if (pid == 0) {
                op(n / 10 + 1); // warm up
                sh->ready.fetch_add(1);
                while (sh->go.load() == 0) {
                }
                auto t0 = std::chrono::steady_clock::now();
                op(n);
                std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
                sh->rates[i] = static_cast<double>(n) / dt.count();
                _exit(0);
            }
            pids.push_back(pid);
        }
        while (sh->ready.load() < procs) {
        }
        sh->go.store(1);
        double total = 0;
        for (int i = 0; i < procs; ++i) {
            int status = 0;
            waitpid(pids[i], &status, 0);
            total += WIFEXITED(status) && WEXITSTATUS(status) == 0 ? sh->rates[i] : 0.0;
        }
        totals.push_back(total);
        munmap(mem, sizeof(Shared));
    }
    return median(totals);
}

inline bool has_flag(int argc, char **argv, const char *flag) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], flag) == 0) {
            return true;
        }
    }
    return false;
}

// Keep the compiler from eliding an allocation and its free.
inline void escape(void *p) {
    asm volatile("" : : "g"(p) : "memory");
}

} // namespace bench
