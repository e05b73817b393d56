// bench-taskpool: the task pool (docs/taskpool.md) next to Python's multiprocessing.Pool(2),
// started by this bench on the same machine, in the same run (../shared/BENCHMARKS.md):
//   1. no-op tasks over 200,000 integers, chunksize 1 and 1000 (tasks per second);
//   2. the synchronous round trip of one apply of a no-op (median µs);
//   3. starting and stopping a pool of 2 workers (construct, close, join: ms);
//   4. an imbalanced workload (durations of 1 to 8 units of busy-spinning, fixed seed), run
//      with dynamic scheduling (chunksize 1) and with a static even split (two tasks, each
//      running its contiguous half of the list), as drawn and sorted ascending.
// Rows (JSON lines) go to stdout, a table with the goals of issue 13 to stderr. The bench
// runs itself under the `dragon` launcher (build/tools/dragon) when started outside it; its
// workers are this program (TaskPool::serve_if_worker). The peer is bench_taskpool_mp.py.
#include "bench_common.hpp"

#include <dragon/dragon.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#ifndef BENCH_TASKPOOL_MP
#define BENCH_TASKPOOL_MP "bench_taskpool_mp.py"
#endif

namespace {

constexpr int kUnitUs = 200; // one unit of the imbalanced workload

void spin_us(long us) {
    auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
    while (std::chrono::steady_clock::now() < end) {
    }
}

auto noop = dragon::task("bench-noop", [](int x) { return x; });
auto spin = dragon::task("bench-spin", [](int units) {
    spin_us(static_cast<long>(units) * kUnitUs);
    return units;
});
auto spin_all = dragon::task("bench-spin-all", [](const std::vector<std::int32_t> &units) {
    for (std::int32_t u : units) {
        spin_us(static_cast<long>(u) * kUnitUs);
    }
    return static_cast<int>(units.size());
});

std::string self_exe() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        return "bench-taskpool";
    }
    buf[n] = '\0';
    return buf;
}

std::string self_dir() {
    std::string s = self_exe();
    return s.substr(0, s.rfind('/'));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Durations of 1 to 8 units from a fixed seed (a 64-bit LCG of our own, so that the list is
// the same with any standard library).
std::vector<std::int32_t> durations(int n) {
    std::uint64_t s = 0x5eed13u;
    std::vector<std::int32_t> d;
    for (int i = 0; i < n; ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        d.push_back(static_cast<std::int32_t>((s >> 33) % 8) + 1);
    }
    return d;
}

struct Params {
    long n_chunk1;
    long n_chunk1000;
    int reps;
    int apply_calls;
    int start_reps;
    int imb_tasks;
};

// Run the Python peer; its "name value" lines, empty if it could not run.
std::map<std::string, std::string> run_peer(const Params &p, const std::vector<std::int32_t> &d,
                                            std::string *why) {
    const char *env = std::getenv("BENCH_TASKPOOL_MP");
    std::string script = env != nullptr ? env : BENCH_TASKPOOL_MP;
    if (access(script.c_str(), R_OK) != 0) {
        *why = "bench_taskpool_mp.py not found";
        return {};
    }
    std::string list;
    for (std::int32_t x : d) {
        list += std::to_string(x) + " ";
    }
    std::string cmd = "echo '" + list + "' | python3 '" + script + "' " +
                      std::to_string(p.n_chunk1) + " " + std::to_string(p.n_chunk1000) + " " +
                      std::to_string(p.reps) + " " + std::to_string(p.apply_calls) + " " +
                      std::to_string(p.start_reps) + " " + std::to_string(p.imb_tasks) + " " +
                      std::to_string(kUnitUs);
    FILE *f = popen(cmd.c_str(), "r");
    std::map<std::string, std::string> out;
    if (f == nullptr) {
        *why = "python3 could not be started";
        return out;
    }
    char key[128];
    char value[128];
    while (std::fscanf(f, "%127s %127s", key, value) == 2) {
        out[key] = value;
    }
    if (pclose(f) != 0) {
        *why = "python3 or multiprocessing failed";
        out.clear();
    }
    return out;
}

double peer_value(const std::map<std::string, std::string> &m, const std::string &k) {
    auto it = m.find(k);
    return it == m.end() ? NAN : std::strtod(it->second.c_str(), nullptr);
}

dragon::TaskPoolOptions two() {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    return o;
}

double map_rate(dragon::TaskPool &pool, long n, std::size_t chunksize, int reps) {
    std::vector<int> items(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) {
        items[static_cast<std::size_t>(i)] = static_cast<int>(i);
    }
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        std::vector<int> out = pool.map(noop, items, chunksize);
        double dt = seconds_since(t0);
        if (out.size() != items.size() || out.back() != items.back()) {
            throw dragon::Error(DRAGON_MALFORMED, "bench-taskpool: map gave wrong results");
        }
        rates.push_back(static_cast<double>(n) / dt);
    }
    return bench::median(rates);
}

double apply_us(dragon::TaskPool &pool, int calls) {
    for (int i = 0; i < std::max(10, calls / 20); ++i) {
        pool.apply(noop, 1);
    }
    std::vector<double> lat;
    lat.reserve(static_cast<std::size_t>(calls));
    for (int i = 0; i < calls; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        int v = pool.apply(noop, i);
        lat.push_back(seconds_since(t0) * 1e6);
        if (v != i) {
            throw dragon::Error(DRAGON_MALFORMED, "bench-taskpool: apply gave a wrong result");
        }
    }
    return bench::median(lat);
}

double start_stop_ms(int reps) {
    std::vector<double> times;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        dragon::TaskPool pool(two());
        pool.close();
        pool.join();
        if (r > 0) { // the first warms caches
            times.push_back(seconds_since(t0) * 1e3);
        }
    }
    return bench::median(times);
}

// Median ms of the list run dynamically (chunksize 1) and statically (two halves).
void imbalanced_ms(dragon::TaskPool &pool, const std::vector<std::int32_t> &d, int reps,
                   double *dynamic, double *stat) {
    std::vector<int> items(d.begin(), d.end());
    std::size_t half = d.size() / 2;
    std::vector<std::vector<std::int32_t>> halves = {
        std::vector<std::int32_t>(d.begin(), d.begin() + static_cast<long>(half)),
        std::vector<std::int32_t>(d.begin() + static_cast<long>(half), d.end())};
    std::vector<double> a;
    std::vector<double> b;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        pool.map(spin, items, 1);
        a.push_back(seconds_since(t0) * 1e3);
        t0 = std::chrono::steady_clock::now();
        pool.map(spin_all, halves, 1);
        b.push_back(seconds_since(t0) * 1e3);
    }
    *dynamic = bench::median(a);
    *stat = bench::median(b);
}

// The best a static split can lose to a perfect dynamic one: the larger half's units over
// half of all units.
double static_bound(const std::vector<std::int32_t> &d) {
    std::size_t half = d.size() / 2;
    long first = 0;
    long all = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
        all += d[i];
        first += i < half ? d[i] : 0;
    }
    return static_cast<double>(std::max(first, all - first)) / (static_cast<double>(all) / 2.0);
}

const char *met(bool ok) {
    return ok ? "met" : "NOT met";
}

int run(bool quick) {
    Params p{};
    p.n_chunk1 = quick ? 20000 : 200000;
    p.n_chunk1000 = 200000;
    p.reps = quick ? 3 : 5;
    p.apply_calls = quick ? 1000 : 10000;
    p.start_reps = quick ? 5 : 21;
    p.imb_tasks = quick ? 100 : 400;
    std::vector<std::int32_t> drawn = durations(p.imb_tasks);
    std::vector<std::int32_t> sorted = drawn;
    std::sort(sorted.begin(), sorted.end());

    std::string why;
    std::map<std::string, std::string> peer = run_peer(p, drawn, &why);
    const char *note = peer.empty() ? why.c_str() : nullptr;

    double c1 = NAN;
    double c1000 = NAN;
    double rtt = NAN;
    double imb_dyn = NAN;
    double imb_stat = NAN;
    double srt_dyn = NAN;
    double srt_stat = NAN;
    {
        dragon::TaskPool pool(two());
        pool.map(noop, std::vector<int>(1000, 1), 1); // warm up
        c1 = map_rate(pool, p.n_chunk1, 1, p.reps);
        c1000 = map_rate(pool, p.n_chunk1000, 1000, p.reps);
        rtt = apply_us(pool, p.apply_calls);
        imbalanced_ms(pool, drawn, p.reps, &imb_dyn, &imb_stat);
        imbalanced_ms(pool, sorted, p.reps, &srt_dyn, &srt_stat);
        pool.close();
        pool.join();
    }
    double start = start_stop_ms(p.start_reps);

    double mp_c1 = peer_value(peer, "map_chunk1_per_s");
    double mp_c1000 = peer_value(peer, "map_chunk1000_per_s");
    double mp_rtt = peer_value(peer, "apply_median_us");
    double mp_start = peer_value(peer, "start_stop_ms");
    double mp_spawn = peer_value(peer, "start_stop_spawn_ms");
    double mp_imb_dyn = peer_value(peer, "imbalanced_dynamic_ms");
    double mp_imb_stat = peer_value(peer, "imbalanced_static_ms");
    double mp_srt_dyn = peer_value(peer, "imbalanced_sorted_dynamic_ms");
    double mp_srt_stat = peer_value(peer, "imbalanced_sorted_static_ms");

    bench::row("taskpool.map", "dragon", 1, "tasks_per_s", c1);
    bench::row("taskpool.map", "multiprocessing", 1, "tasks_per_s", mp_c1, note);
    bench::row("taskpool.map.ratio", "dragon/multiprocessing", 1, "ratio_x", c1 / mp_c1, note);
    bench::row("taskpool.map", "dragon", 1000, "tasks_per_s", c1000);
    bench::row("taskpool.map", "multiprocessing", 1000, "tasks_per_s", mp_c1000, note);
    bench::row("taskpool.map.ratio", "dragon/multiprocessing", 1000, "ratio_x", c1000 / mp_c1000,
               note);
    bench::row("taskpool.apply", "dragon", 0, "rtt_median_us", rtt);
    bench::row("taskpool.apply", "multiprocessing", 0, "rtt_median_us", mp_rtt, note);
    bench::row("taskpool.apply.ratio", "multiprocessing/dragon", 0, "ratio_x", mp_rtt / rtt, note);
    bench::row("taskpool.start-stop", "dragon", 2, "wall_ms", start);
    bench::row("taskpool.start-stop", "multiprocessing", 2, "wall_ms", mp_start, note);
    bench::row("taskpool.start-stop.ratio", "multiprocessing/dragon", 2, "ratio_x",
               mp_start / start, note);
    bench::row("taskpool.start-stop", "multiprocessing-spawn", 2, "wall_ms", mp_spawn, note);
    struct Imb {
        const char *name;
        const std::vector<std::int32_t> &list;
        double dyn, stat, mp_dyn, mp_stat;
    };
    for (const Imb &m :
         {Imb{"taskpool.imbalanced", drawn, imb_dyn, imb_stat, mp_imb_dyn, mp_imb_stat},
          Imb{"taskpool.imbalanced-sorted", sorted, srt_dyn, srt_stat, mp_srt_dyn, mp_srt_stat}}) {
        std::string n = m.name;
        long size = static_cast<long>(m.list.size());
        bench::row(m.name, "dragon-dynamic", size, "wall_ms", m.dyn);
        bench::row(m.name, "dragon-static", size, "wall_ms", m.stat);
        bench::row(m.name, "multiprocessing-dynamic", size, "wall_ms", m.mp_dyn, note);
        bench::row(m.name, "multiprocessing-static", size, "wall_ms", m.mp_stat, note);
        bench::row((n + ".ratio").c_str(), "dragon-static/dragon-dynamic", size, "ratio_x",
                   m.stat / m.dyn);
        bench::row((n + ".bound").c_str(), "larger-half/half-of-all", size, "ratio_x",
                   static_bound(m.list));
    }

    const char *method = peer.count("start_method") != 0 ? peer["start_method"].c_str() : "?";
    std::fprintf(stderr,
                 "\nbench-taskpool%s: medians of %d repetitions; 2 workers each side; "
                 "multiprocessing start method: %s\n",
                 quick ? " --quick" : "", p.reps, method);
    if (note != nullptr) {
        std::fprintf(stderr, "multiprocessing: %s\n", note);
    }
    std::fprintf(stderr, "%-44s %14s %16s %9s  %s\n", "what", "dragon", "multiprocessing", "ratio",
                 "goal (issue 13)");
    std::fprintf(stderr, "%-44s %14.0f %16.0f %8.1fx  >= 20x: %s\n",
                 ("map no-op, chunksize 1, " + std::to_string(p.n_chunk1) + " (tasks/s)").c_str(),
                 c1, mp_c1, c1 / mp_c1, met(c1 >= 20 * mp_c1));
    std::fprintf(stderr, "%-44s %14.0f %16.0f %8.2fx  >= 1x: %s\n",
                 "map no-op, chunksize 1000, 200000 (tasks/s)", c1000, mp_c1000, c1000 / mp_c1000,
                 met(c1000 >= mp_c1000));
    std::fprintf(stderr, "%-44s %14.2f %16.2f %8.1fx  < 10 us: %s\n", "apply round trip (us)", rtt,
                 mp_rtt, mp_rtt / rtt, met(rtt < 10));
    std::fprintf(stderr, "%-44s %14.2f %16.2f %8.1fx  < 20 ms: %s\n", "start+stop, 2 workers (ms)",
                 start, mp_start, mp_start / start, met(start < 20));
    std::fprintf(stderr, "%-44s %14s %16.2f %8.1fx\n", "  multiprocessing with start method spawn",
                 "", mp_spawn, mp_spawn / start);
    for (const Imb &m :
         {Imb{"imbalanced", drawn, imb_dyn, imb_stat, mp_imb_dyn, mp_imb_stat},
          Imb{"imbalanced, sorted", sorted, srt_dyn, srt_stat, mp_srt_dyn, mp_srt_stat}}) {
        std::string label = std::string(m.name) + ", " + std::to_string(m.list.size()) +
                            " tasks x 1-8 units of " + std::to_string(kUnitUs) + " us";
        std::fprintf(stderr, "%s (bound for a static split: %.2fx)\n", label.c_str(),
                     static_bound(m.list));
        std::fprintf(stderr, "%-44s %14.1f %16.1f\n", "  dynamic, chunksize 1 (ms)", m.dyn,
                     m.mp_dyn);
        std::fprintf(stderr, "%-44s %14.1f %16.1f\n", "  static, two halves (ms)", m.stat,
                     m.mp_stat);
        std::fprintf(stderr, "%-44s %13.2fx %15.2fx %9s  >= 1.3x: %s\n", "  static / dynamic",
                     m.stat / m.dyn, m.mp_stat / m.mp_dyn, "", met(m.stat >= 1.3 * m.dyn));
    }
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    try {
        dragon::TaskPool::serve_if_worker(); // a worker serves the tasks above and exits here
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
            std::perror("bench-taskpool: exec of the dragon launcher");
            return 1;
        }
        return run(bench::has_flag(argc, argv, "--quick"));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "bench-taskpool: %s\n", e.what());
        return 1;
    }
}
