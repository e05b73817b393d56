// bench-ddict: the distributed dictionary (docs/ddict.md) next to Debian's redis-server on
// 127.0.0.1, started and stopped by this bench, in the same run (../shared/BENCHMARKS.md):
//   1. 64 B and 16 KiB values: put and get per second with 1 and 2 client processes,
//      unbatched, and put in batches of 16 (Redis: pipelined 16 deep);
//   2. one client's 64 B get latency (p50, p99, µs);
//   3. 1 MiB and 64 MiB values: get in GB/s, not frozen and frozen, next to memcpy.
// Our clients are processes of the runtime (this program again, in the role "client"); each
// attaches to the dictionary by its descriptor, waits for the key "go", runs, and leaves its
// rate in the dictionary. Redis's clients are redis-benchmark processes (redis_peer.hpp).
// Rows (JSON lines) go to stdout, a table with the goals of issue 14 to stderr. The bench runs
// itself under the `dragon` launcher (build/tools/dragon) when started outside it.
#include "bench_common.hpp"
#include "redis_peer.hpp"

#include <dragon/dragon.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::string self_exe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string self_dir() {
    std::string e = self_exe();
    return e.substr(0, e.rfind('/'));
}

std::string hex(const std::string &s) {
    std::string out;
    char b[3];
    for (unsigned char c : s) {
        std::snprintf(b, sizeof b, "%02x", c);
        out += b;
    }
    return out;
}

std::string unhex(const char *h) {
    std::string out;
    for (size_t i = 0; h[i] != '\0' && h[i + 1] != '\0'; i += 2) {
        out.push_back(static_cast<char>(std::stoi(std::string(h + i, 2), nullptr, 16)));
    }
    return out;
}

// What one client process does: op "put", "get" or "bput" (batches of 16) on n keys of
// `size` bytes (keys "k<client>.<i mod 1000>"; gets read keys the parent put).
double client_ops(dragon::DDict &d, const std::string &op, size_t size, long n, int me) {
    std::string value(size, 'v');
    std::vector<std::string> keys;
    for (int i = 0; i < 1000; ++i) {
        keys.push_back("k" + std::to_string(me) + "." + std::to_string(i));
    }
    std::vector<char> buf(size + 64);
    dragon_ddict_t *h = d.c_handle();
    auto run = [&](long count) {
        if (op == "put") {
            for (long i = 0; i < count; ++i) {
                const std::string &k = keys[static_cast<size_t>(i % 1000)];
                dragon::detail::check(
                    dragon_ddict_put(h, k.data(), k.size(), value.data(), value.size()));
            }
        } else if (op == "bput") {
            for (long i = 0; i < count;) {
                dragon::detail::check(dragon_ddict_batch_start(h));
                for (int j = 0; j < 16 && i < count; ++j, ++i) {
                    const std::string &k = keys[static_cast<size_t>(i % 1000)];
                    dragon::detail::check(
                        dragon_ddict_put(h, k.data(), k.size(), value.data(), value.size()));
                }
                dragon::detail::check(dragon_ddict_batch_end(h));
            }
        } else {
            for (long i = 0; i < count; ++i) {
                const std::string &k = keys[static_cast<size_t>(i % 1000)];
                size_t len = 0;
                dragon::detail::check(
                    dragon_ddict_get(h, k.data(), k.size(), buf.data(), buf.size(), &len));
            }
        }
    };
    run(std::min<long>(n / 10 + 1, 2000)); // warm up (and, for get, the keys exist)
    auto t0 = Clock::now();
    run(n);
    auto t1 = Clock::now();
    // The span on the machine's monotonic clock: the parent takes the union of the clients'
    // spans, so clients that did not overlap are not counted as if they had.
    d.put("span" + std::to_string(me),
          std::vector<double>{std::chrono::duration<double>(t0.time_since_epoch()).count(),
                              std::chrono::duration<double>(t1.time_since_epoch()).count()});
    return static_cast<double>(n) / std::chrono::duration<double>(t1 - t0).count();
}

int client_main() {
    try {
        dragon::DDict d = dragon::DDict::attach(unhex(std::getenv("BENCH_DDICT_DESC")));
        std::string op = std::getenv("BENCH_DDICT_OP");
        size_t size = std::stoul(std::getenv("BENCH_DDICT_SIZE"));
        long n = std::stol(std::getenv("BENCH_DDICT_N"));
        int me = std::stoi(std::getenv("BENCH_DDICT_ME"));
        d.put("ready" + std::to_string(me), 1);
        if (!d.wait_for_key("go", std::chrono::seconds(60))) {
            return 3;
        }
        double r = client_ops(d, op, size, n, me);
        d.put("rate" + std::to_string(me), r);
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench-ddict client: %s\n", e.what());
        return 2;
    }
}

// Sum of the clients' rates: `clients` processes of the runtime started together.
double clients_rate(dragon::DDict &d, const std::string &op, size_t size, long n, int clients) {
    std::string desc = hex(d.serialize());
    if (op == "get") {
        std::string value(size, 'v');
        for (int c = 0; c < clients; ++c) {
            auto b = d.batch();
            for (int i = 0; i < 1000; ++i) {
                d.put("k" + std::to_string(c) + "." + std::to_string(i), value);
            }
            b.end();
        }
    }
    std::vector<uint64_t> puids;
    for (int c = 0; c < clients; ++c) {
        std::vector<std::string> env_s;
        for (char **e = environ; *e != nullptr; ++e) {
            env_s.emplace_back(*e);
        }
        env_s.push_back("BENCH_DDICT_DESC=" + desc);
        env_s.push_back("BENCH_DDICT_OP=" + op);
        env_s.push_back("BENCH_DDICT_SIZE=" + std::to_string(size));
        env_s.push_back("BENCH_DDICT_N=" + std::to_string(n));
        env_s.push_back("BENCH_DDICT_ME=" + std::to_string(c));
        std::vector<const char *> env;
        for (auto &s : env_s) {
            env.push_back(s.c_str());
        }
        env.push_back(nullptr);
        std::string exe = self_exe();
        const char *argv[] = {exe.c_str(), nullptr};
        dragon_process_attr_t a;
        dragon_process_attr_init(&a);
        a.role = "client";
        a.env = env.data();
        uint64_t puid = 0;
        dragon::detail::check(dragon_process_create(argv, &a, &puid));
        puids.push_back(puid);
    }
    for (int c = 0; c < clients; ++c) {
        if (!d.wait_for_key("ready" + std::to_string(c), std::chrono::seconds(60))) {
            throw dragon::Error(DRAGON_TIMEOUT, "bench-ddict: a client never got ready");
        }
    }
    d.put("go", 1);
    double first = 1e300, last = 0;
    for (int c = 0; c < clients; ++c) {
        int code = -1;
        dragon::detail::check(
            dragon_process_join(puids[static_cast<size_t>(c)], 300'000'000'000LL, &code));
        if (code != 0) {
            throw dragon::Error(DRAGON_TASK_FAILED, "bench-ddict: a client failed");
        }
        auto span = d.get<std::vector<double>>("span" + std::to_string(c));
        first = std::min(first, span.at(0));
        last = std::max(last, span.at(1));
    }
    d.clear();
    // All the clients' operations over the time from the first one's start to the last one's
    // end.
    return static_cast<double>(n) * clients / (last - first);
}

double best_of(int reps, const std::function<double()> &f) {
    std::vector<double> v;
    for (int r = 0; r < reps; ++r) {
        v.push_back(f());
    }
    return bench::median(v);
}

struct Latency {
    double p50, p99;
};

Latency get_latency(dragon::DDict &d, int n) {
    std::string value(64, 'v');
    d.put("lat", value);
    char buf[128];
    size_t len = 0;
    dragon_ddict_t *h = d.c_handle();
    std::vector<double> us;
    us.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n / 10; ++i) {
        dragon::detail::check(dragon_ddict_get(h, "lat", 3, buf, sizeof buf, &len));
    }
    for (int i = 0; i < n; ++i) {
        auto t0 = Clock::now();
        dragon::detail::check(dragon_ddict_get(h, "lat", 3, buf, sizeof buf, &len));
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    return {bench::quantile(us, 0.5), bench::quantile(us, 0.99)};
}

// GB/s of gets of one `size`-byte value into one buffer (the median of reps timings).
double get_gbps(dragon::DDict &d, size_t size, int n, int reps) {
    std::vector<char> buf(size);
    dragon_ddict_t *h = d.c_handle();
    std::vector<double> rates;
    size_t len = 0;
    dragon::detail::check(dragon_ddict_get(h, "big", 3, buf.data(), buf.size(), &len));
    for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        for (int i = 0; i < n; ++i) {
            dragon::detail::check(dragon_ddict_get(h, "big", 3, buf.data(), buf.size(), &len));
        }
        std::chrono::duration<double> dt = Clock::now() - t0;
        rates.push_back(static_cast<double>(size) * n / dt.count() / 1e9);
    }
    return bench::median(rates);
}

double memcpy_gbps(size_t size, int n, int reps) {
    std::vector<char> a(size, 'a'), b(size);
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        for (int i = 0; i < n; ++i) {
            std::memcpy(b.data(), a.data(), size);
            bench::escape(b.data());
        }
        std::chrono::duration<double> dt = Clock::now() - t0;
        rates.push_back(static_cast<double>(size) * n / dt.count() / 1e9);
    }
    return bench::median(rates);
}

double ratio(double a, double b) {
    return b > 0 && a == a && b == b ? a / b : NAN;
}

int run(bool quick) {
    const int reps = quick ? 3 : 5;
    const long n64 = quick ? 40000 : 200000;
    const long n16k = quick ? 10000 : 50000;
    dragon::DDictOptions o;
    o.managers_per_node = 1;
    o.total_mem = size_t{512} << 20;
    dragon::DDict d(o);

    bench::redis::Server redis;
    std::string rwhy;
    bool have_redis = bench::redis::available(&rwhy) && redis.ok();
    if (have_redis) {
        rwhy.clear();
    } else if (rwhy.empty()) {
        rwhy = redis.error();
    }
    const char *rnote = have_redis ? nullptr : rwhy.c_str();
    struct Row {
        std::string what;
        double ours, theirs;
    };
    std::vector<Row> table;
    for (size_t size : {size_t{64}, size_t{16384}}) {
        long n = size == 64 ? n64 : n16k;
        for (int clients : {1, 2}) {
            for (const char *op : {"put", "get", "bput"}) {
                double ours =
                    best_of(reps, [&] { return clients_rate(d, op, size, n / clients, clients); });
                auto rop =
                    std::strcmp(op, "get") == 0 ? bench::redis::Op::Get : bench::redis::Op::Set;
                int depth = std::strcmp(op, "bput") == 0 ? 16 : 1;
                // redis-benchmark's rate is good to a millisecond: unpipelined runs are
                // shorter than ours, pipelined ones as long.
                long rn = depth == 1 ? std::max<long>(n / clients / 10, 3000) : n / clients;
                double theirs = NAN;
                if (have_redis) {
                    auto r = bench::redis::ops_per_s(redis, rop, size, clients, depth, rn, reps);
                    theirs = r.ok ? r.ops_per_s : NAN;
                }
                std::string bench = std::string("ddict.") + op + "." + std::to_string(clients) +
                                    "client" + (clients > 1 ? "s" : "");
                bench::row(bench.c_str(), "dragon", static_cast<long>(size), "ops_per_s", ours);
                bench::row(bench.c_str(), depth == 1 ? "redis" : "redis-pipelined-16",
                           static_cast<long>(size), "ops_per_s", theirs, rnote);
                table.push_back({bench + " " + std::to_string(size) + " B", ours, theirs});
            }
        }
    }
    Latency lat = get_latency(d, quick ? 20000 : 100000);
    bench::row("ddict.get.latency", "dragon", 64, "p50_us", lat.p50);
    bench::row("ddict.get.latency", "dragon", 64, "p99_us", lat.p99);
    bench::redis::Result rl;
    if (have_redis) {
        rl = bench::redis::latency(redis, bench::redis::Op::Get, 64, quick ? 5000 : 20000, reps);
    }
    bench::row("ddict.get.latency", "redis", 64, "p50_us", rl.ok ? rl.p50_us : NAN, rnote);
    bench::row("ddict.get.latency", "redis", 64, "p99_us", rl.ok ? rl.p99_us : NAN, rnote);

    double mc1 = memcpy_gbps(size_t{1} << 20, 200, reps);
    double mc64 = memcpy_gbps(size_t{64} << 20, 4, reps);
    bench::row("memcpy", "memcpy", 1 << 20, "GBps", mc1);
    bench::row("memcpy", "memcpy", 64 << 20, "GBps", mc64);
    struct Big {
        size_t size;
        double open, frozen, redis, memcpy;
    };
    std::vector<Big> bigs;
    for (size_t size : {size_t{1} << 20, size_t{64} << 20}) {
        int n = size == (size_t{1} << 20) ? (quick ? 100 : 400) : (quick ? 3 : 8);
        d.put("big", std::string(size, 'g'));
        double open = get_gbps(d, size, n, reps);
        d.freeze();
        double frozen = get_gbps(d, size, n, reps);
        d.unfreeze();
        d.clear();
        double theirs = NAN;
        if (have_redis) {
            auto r = bench::redis::bandwidth(redis, bench::redis::Op::Get, size, n, reps);
            theirs = r.ok ? r.GBps : NAN;
        }
        bench::row("ddict.get.large", "dragon", static_cast<long>(size), "GBps", open);
        bench::row("ddict.get.large.frozen", "dragon", static_cast<long>(size), "GBps", frozen);
        bench::row("ddict.get.large", "redis", static_cast<long>(size), "GBps", theirs, rnote);
        bigs.push_back({size, open, frozen, theirs, size == (size_t{1} << 20) ? mc1 : mc64});
    }
    redis.stop();

    std::fprintf(stderr, "\nbench-ddict (1 manager; Redis: redis-benchmark processes, -c 1 "
                         "each)\n");
    std::fprintf(stderr, "%-34s %14s %14s %8s\n", "", "dragon", "redis", "ratio");
    for (const Row &r : table) {
        std::fprintf(stderr, "%-34s %14.0f %14.0f %7.1fx\n", r.what.c_str(), r.ours, r.theirs,
                     ratio(r.ours, r.theirs));
    }
    std::fprintf(stderr, "%-34s %11.2f us %11.2f us\n", "get p50, 1 client, 64 B", lat.p50,
                 rl.p50_us);
    std::fprintf(stderr, "%-34s %11.2f us %11.2f us\n", "get p99, 1 client, 64 B", lat.p99,
                 rl.p99_us);
    if (rnote != nullptr) {
        std::fprintf(stderr, "redis: %s\n", rnote);
    }
    for (const Big &b : bigs) {
        std::fprintf(stderr,
                     "get %3zu MiB: %.2f GB/s, frozen %.2f GB/s, redis %.2f GB/s, "
                     "memcpy %.2f GB/s\n",
                     b.size >> 20, b.open, b.frozen, b.redis, b.memcpy);
    }
    auto find = [&](const std::string &w) {
        for (const Row &r : table) {
            if (r.what == w) {
                return r;
            }
        }
        return Row{w, NAN, NAN};
    };
    Row g1 = find("ddict.get.1client 64 B");
    Row b1 = find("ddict.bput.1client 64 B");
    std::fprintf(stderr,
                 "goals: 64 B get >= 10x redis unpipelined: %.1fx; batched put >= 2x "
                 "redis pipelined: %.1fx; get p50 < 5 us: %.2f us; 1 MiB get >= 2x "
                 "redis: %.1fx; frozen 64 MiB >= 0.5 memcpy: %.2f\n",
                 ratio(g1.ours, g1.theirs), ratio(b1.ours, b1.theirs), lat.p50,
                 ratio(bigs[0].open, bigs[0].redis), ratio(bigs[1].frozen, bigs[1].memcpy));
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    const char *role = dragon_process_role();
    if (role != nullptr && std::strcmp(role, "client") == 0) {
        return client_main();
    }
    try {
        if (std::getenv("DRAGON_RUNTIME_ID") == nullptr) {
            // Outside the runtime: run this bench again under the launcher.
            std::string dragon = self_dir() + "/../../tools/dragon";
            std::string self = self_exe();
            std::vector<char *> args = {const_cast<char *>(dragon.c_str()),
                                        const_cast<char *>(self.c_str())};
            for (int i = 1; i < argc; ++i) {
                args.push_back(argv[i]);
            }
            args.push_back(nullptr);
            execv(dragon.c_str(), args.data());
            std::perror("bench-ddict: exec of the dragon launcher");
            return 1;
        }
        return run(bench::has_flag(argc, argv, "--quick"));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench-ddict: %s\n", e.what());
        return 1;
    }
}
