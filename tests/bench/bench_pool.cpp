// bench-pool: alloc+free pairs per second of a dragon pool at 64 B, 4 KiB and 1 MiB, in one
// process and in two processes contending on one pool, next to glibc malloc and jemalloc
// (run as the peer executables bench-malloc-glibc and bench-malloc-jemalloc, so each has
// its own allocator). Ends with ratio rows: time per pair relative to each peer, and how two
// processes on one pool scale against one.
//
// Then blocks that cross processes: a channel in the pool, `writers` processes allocate and
// send them zero-copy, one process receives and frees them (pool.handoff; 1 writer at 64 B,
// 512 B and 4 KiB, next to copying the same messages through slots, pool.slot_copy), and
// 4 writers to one freer at 64 B and 4 KiB, the DDict's pattern (pool.many_writers).
#include "bench_common.hpp"

#include <dragon/dragon.h>

#include <atomic>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

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

namespace {

constexpr dragon_timeout_t kTenSeconds = 10'000'000'000;

struct Start {
    std::atomic<int> ready;
    std::atomic<int> go;
    std::atomic<int> failed;
};

double now_s() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One writer's messages: allocated and handed over zero-copy, or copied through slots.
bool write_messages(dragon_channel_t *ch, size_t size, long count, bool zero_copy) {
    std::vector<char> msg(size, 'x');
    for (long i = 0; i < count; ++i) {
        void *p = nullptr;
        bool ok = zero_copy
                      ? dragon_pool_alloc_timeout(pool, size, kTenSeconds, &p) == DRAGON_SUCCESS &&
                            dragon_channel_send_mem(ch, p, size, kTenSeconds) == DRAGON_SUCCESS
                      : dragon_channel_send(ch, msg.data(), size, kTenSeconds) == DRAGON_SUCCESS;
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool read_messages(dragon_channel_t *ch, size_t size, long count, bool zero_copy) {
    std::vector<char> buf(size);
    for (long i = 0; i < count; ++i) {
        size_t len = 0;
        void *p = nullptr;
        bool ok = zero_copy
                      ? dragon_channel_recv_mem(ch, &p, &len, kTenSeconds) == DRAGON_SUCCESS &&
                            dragon_pool_free(pool, p) == DRAGON_SUCCESS
                      : dragon_channel_recv(ch, buf.data(), buf.size(), &len, kTenSeconds) ==
                            DRAGON_SUCCESS;
        if (!ok) {
            std::fprintf(stderr, "bench-pool: handoff: %s\n", dragon_last_error());
            return false;
        }
    }
    return true;
}

// Messages per second from `writers` forked processes, each sending n / writers messages
// of `size` bytes, to this process, which receives them all (and frees them, zero-copy).
double handoff_rate(int writers, size_t size, long n, bool zero_copy) {
    dragon_channel_t *ch = nullptr;
    if (dragon_channel_create(pool, 64, zero_copy ? 16 : size, nullptr, &ch) != DRAGON_SUCCESS) {
        std::fprintf(stderr, "bench-pool: channel: %s\n", dragon_last_error());
        std::exit(1);
    }
    void *mem =
        mmap(nullptr, sizeof(Start), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    auto *st = new (mem) Start{};
    long each = n / writers;
    std::vector<pid_t> pids;
    for (int w = 0; w < writers; ++w) {
        pid_t pid = fork();
        if (pid == 0) {
            st->ready.fetch_add(1);
            while (st->go.load() == 0) {
            }
            _exit(write_messages(ch, size, each, zero_copy) ? 0 : 1);
        }
        pids.push_back(pid);
    }
    while (st->ready.load() < writers) {
    }
    double t0 = now_s();
    st->go.store(1);
    bool ok = read_messages(ch, size, each * writers, zero_copy);
    double t = now_s() - t0;
    for (pid_t pid : pids) {
        int status = 0;
        waitpid(pid, &status, 0);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    munmap(mem, sizeof(Start));
    dragon_channel_destroy(ch);
    if (!ok) {
        std::fprintf(stderr, "bench-pool: a handoff run failed\n");
        std::exit(1);
    }
    return static_cast<double>(each * writers) / t;
}

double median_of(int reps, const std::function<double()> &f) {
    std::vector<double> v;
    v.reserve(static_cast<size_t>(reps));
    for (int r = 0; r < reps; ++r) {
        v.push_back(f());
    }
    return bench::median(v);
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

    for (long size : {64L, 512L, 4096L}) {
        long n = quick ? 200000 : 1000000;
        auto z = static_cast<size_t>(size);
        bench::row("pool.handoff", "dragon-zero-copy", size, "msgs_per_s",
                   median_of(reps, [&] { return handoff_rate(1, z, n, true); }));
        bench::row("pool.slot_copy", "dragon-channel", size, "msgs_per_s",
                   median_of(reps, [&] { return handoff_rate(1, z, n, false); }));
    }
    for (long size : {64L, 4096L}) {
        long n = quick ? 200000 : 1000000;
        auto z = static_cast<size_t>(size);
        bench::row("pool.many_writers", "dragon-4-writers-1-freer", size, "msgs_per_s",
                   median_of(reps, [&] { return handoff_rate(4, z, n, true); }));
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
    // Two processes on one pool against one alone (the goal: at least 1.6x).
    for (long size : {64L, 4096L, 1L << 20}) {
        auto one = results.find({"pool.alloc_free", "dragon", size});
        auto two = results.find({"pool.alloc_free_2proc", "dragon", size});
        if (one != results.end() && two != results.end() && one->second > 0) {
            bench::row("pool.alloc_free_2proc", "dragon", size, "scaling_vs_1proc_x",
                       two->second / one->second);
        }
    }
    destroy_pool();
    return 0;
}
