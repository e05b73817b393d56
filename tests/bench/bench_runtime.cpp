// bench-runtime: what booting the runtime costs, and how fast it starts processes
// (../shared/BENCHMARKS.md). Wall time of `dragon /bin/true` next to `mpirun -np 1
// /bin/true` and a bare posix_spawn of /bin/true; and a ProcessGroup of 64 /bin/true, from
// start to join, next to a plain posix_spawn loop of 64 (spawn all, then wait for all); the
// round trip of one control request to the node daemon (a process's state) next to a bare
// 64-byte SOCK_SEQPACKET echo (as the scheduler places them, on one CPU, and across two); and
// one create+join of /bin/true next to posix_spawn+waitpid (as placed, and on one CPU).
// The parts after the boot run inside a runtime: the bench starts itself under `dragon`
// (`bench-runtime --group`, `--sequential`, `--control`, `--spawn-one`).
#include "bench_common.hpp"

#include <dragon/dragon.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <sched.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

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

// Median wall time (ms) of running argv to completion; NaN if it fails.
double run_ms(const std::vector<std::string> &args, int reps) {
    std::vector<double> times;
    for (int r = 0; r < reps + 1; ++r) {
        std::vector<char *> argv;
        argv.reserve(args.size() + 1);
        for (const auto &a : args) {
            argv.push_back(const_cast<char *>(a.c_str()));
        }
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        auto t0 = std::chrono::steady_clock::now();
        pid_t pid = -1;
        int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        int status = 0;
        if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            return NAN;
        }
        std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
        if (r > 0) { // the first run warms caches
            times.push_back(dt.count());
        }
    }
    return bench::median(times);
}

constexpr int kGroup = 64;

// Median ms of posix_spawn-ing 64 /bin/true, then waiting for all.
double spawn_loop_ms(int reps) {
    std::vector<double> times;
    char arg0[] = "/bin/true";
    char *argv[] = {arg0, nullptr};
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        std::vector<pid_t> pids;
        for (int i = 0; i < kGroup; ++i) {
            pid_t pid = -1;
            if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ) != 0) {
                return NAN;
            }
            pids.push_back(pid);
        }
        for (pid_t pid : pids) {
            waitpid(pid, nullptr, 0);
        }
        std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
        if (r > 0) {
            times.push_back(dt.count());
        }
    }
    return bench::median(times);
}

// Inside the runtime: median ms of a ProcessGroup of 64 /bin/true from start to join, and
// of the spawn loop measured from here too; prints "group <ms> loop <ms>".
int group_inner(int reps) {
    std::vector<double> times;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        dragon::ProcessGroup g;
        g.add(kGroup, {"/bin/true"});
        g.start();
        g.join();
        std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
        for (std::uint32_t i = 0; i < g.size(); ++i) {
            if (g.member(i).exit_code != 0) {
                return 1;
            }
        }
        if (r > 0) {
            times.push_back(dt.count());
        }
    }
    std::printf("group %.3f loop %.3f\n", bench::median(times), spawn_loop_ms(reps));
    return 0;
}

// Inside the runtime: n processes one after another (create, join), in five blocks; prints
// "first <ms> last <ms>", the first and the last block's wall time. The daemon's cost per
// process must not grow with the processes it has started before (issue 10: it did, from
// 2.0 s to 4.5 s per 2,000 over 10,000).
int sequential_inner(int n) {
    int block = n / 5;
    std::vector<double> blocks;
    const char *argv[] = {"/bin/true", nullptr};
    for (int b = 0; b < 5; ++b) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < block; ++i) {
            uint64_t puid = 0;
            int code = -1;
            if (dragon_process_create(argv, nullptr, &puid) != DRAGON_SUCCESS ||
                dragon_process_join(puid, DRAGON_TIMEOUT_FOREVER, &code) != DRAGON_SUCCESS ||
                code != 0) {
                return 1;
            }
        }
        std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
        blocks.push_back(dt.count());
    }
    std::printf("first %.3f last %.3f\n", blocks.front(), blocks.back());
    return 0;
}

// Median and p99 of calls timed one at a time, in microseconds.
struct Latency {
    double median_us = NAN;
    double p99_us = NAN;
};

// Time ours() and peer() one call at a time, n calls each, after warm-up calls of both. The
// two alternate in ten blocks, so that a shared machine's drift falls on both alike. False
// as soon as a call fails.
bool compare_latency(int n, const std::function<bool()> &ours, const std::function<bool()> &peer,
                     Latency *ours_lat, Latency *peer_lat) {
    constexpr int kBlocks = 10;
    int warm = std::max(10, n / 20);
    for (int i = 0; i < warm; ++i) {
        if (!ours() || !peer()) {
            return false;
        }
    }
    auto timed = [](const std::function<bool()> &op, int count, std::vector<double> *out) {
        for (int i = 0; i < count; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            bool ok = op();
            std::chrono::duration<double, std::micro> dt = std::chrono::steady_clock::now() - t0;
            if (!ok) {
                return false;
            }
            out->push_back(dt.count());
        }
        return true;
    };
    std::vector<double> a;
    std::vector<double> b;
    a.reserve(n);
    b.reserve(n);
    for (int k = 0; k < kBlocks; ++k) {
        int count = n / kBlocks + (k < n % kBlocks ? 1 : 0);
        if (!timed(ours, count, &a) || !timed(peer, count, &b)) {
            return false;
        }
    }
    *ours_lat = {bench::median(a), bench::quantile(a, 0.99)};
    *peer_lat = {bench::median(b), bench::quantile(b, 0.99)};
    return true;
}

void print_latency(const Latency &ours, const Latency &peer) {
    std::printf("ours %.3f %.3f peer %.3f %.3f\n", ours.median_us, ours.p99_us, peer.median_us,
                peer.p99_us);
}

constexpr std::size_t kEcho = 64;

// Inside the runtime: n round trips of one control request to the node daemon, the state of
// a process this bench started (a `sleep`, ended afterwards), next to their limit: n round
// trips of a 64-byte message over a SOCK_SEQPACKET socketpair to a forked child that echoes
// it. Prints "ours <median> <p99> peer <median> <p99>" (µs). With cpus (a, b): this process
// moves to CPU b and the echo to CPU a, where the launcher's taskset put the daemon: both
// pairs talk across two CPUs.
bool pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

int control_inner(int n, int cpu_a, int cpu_b) {
    if (cpu_b >= 0 && !pin_to(cpu_b)) {
        std::perror("bench-runtime: sched_setaffinity");
        return 1;
    }
    dragon_process_attr_t attr;
    dragon_process_attr_init(&attr);
    attr.out_mode = DRAGON_STDIO_DEVNULL;
    attr.err_mode = DRAGON_STDIO_DEVNULL;
    const char *argv[] = {"sleep", "3600", nullptr};
    uint64_t puid = 0;
    if (dragon_process_create(argv, &attr, &puid) != DRAGON_SUCCESS) {
        std::fprintf(stderr, "bench-runtime: %s\n", dragon_last_error());
        return 1;
    }
    int sv[2] = {-1, -1};
    pid_t echo = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
        echo = fork();
        if (echo == 0) {
            close(sv[0]);
            if (cpu_a >= 0 && !pin_to(cpu_a)) {
                _exit(1);
            }
            std::array<char, kEcho> buf{};
            ssize_t len = 0;
            while ((len = recv(sv[1], buf.data(), buf.size(), 0)) > 0 &&
                   send(sv[1], buf.data(), static_cast<std::size_t>(len), 0) == len) {
            }
            _exit(0);
        }
        close(sv[1]);
        if (echo < 0) {
            close(sv[0]);
        }
    }
    bool ok = echo > 0;
    Latency ours;
    Latency peer;
    if (ok) {
        auto query = [puid] {
            dragon_process_status_t st{};
            st.struct_size = sizeof st;
            return dragon_process_query(puid, &st) == DRAGON_SUCCESS &&
                   st.state == DRAGON_PROCESS_RUNNING;
        };
        std::array<char, kEcho> msg{};
        int fd = sv[0];
        auto round_trip = [fd, &msg] {
            auto len = static_cast<ssize_t>(msg.size());
            return send(fd, msg.data(), msg.size(), 0) == len &&
                   recv(fd, msg.data(), msg.size(), 0) == len;
        };
        ok = compare_latency(n, query, round_trip, &ours, &peer);
        close(sv[0]); // the echo sees the end of the stream and exits
        waitpid(echo, nullptr, 0);
    }
    int code = -1;
    bool ended = dragon_process_stop(puid, SIGTERM) == DRAGON_SUCCESS &&
                 dragon_process_join(puid, DRAGON_TIMEOUT_FOREVER, &code) == DRAGON_SUCCESS;
    if (!ok || !ended) {
        std::fprintf(stderr, "bench-runtime: control round trip failed (%s; last error: %s)\n",
                     dragon_last_error(), std::strerror(errno));
        return 1;
    }
    print_latency(ours, peer);
    return 0;
}

// Inside the runtime: n times one /bin/true created and joined (default attributes, the way
// a user starts one), next to n posix_spawn+waitpid of /bin/true from this same process.
// Prints "ours <median> <p99> peer <median> <p99>" (µs).
int spawn_one_inner(int n) {
    const char *argv[] = {"/bin/true", nullptr};
    auto ours = [&argv] {
        uint64_t puid = 0;
        int code = -1;
        return dragon_process_create(argv, nullptr, &puid) == DRAGON_SUCCESS &&
               dragon_process_join(puid, DRAGON_TIMEOUT_FOREVER, &code) == DRAGON_SUCCESS &&
               code == 0;
    };
    char arg0[] = "/bin/true";
    char *spawn_argv[] = {arg0, nullptr};
    auto peer = [&spawn_argv] {
        pid_t pid = -1;
        int status = 0;
        return posix_spawn(&pid, spawn_argv[0], nullptr, nullptr, spawn_argv, environ) == 0 &&
               waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    };
    Latency a;
    Latency b;
    if (!compare_latency(n, ours, peer, &a, &b)) {
        std::fprintf(stderr, "bench-runtime: create+join failed: %s\n", dragon_last_error());
        return 1;
    }
    print_latency(a, b);
    return 0;
}

// Run `dragon self MODE arg` and read two figures.
bool inner_figures(const std::string &dragon, const char *mode, int arg, const char *format,
                   double *a, double *b) {
    std::string cmd =
        dragon + " " + self_dir() + "/bench-runtime " + mode + " " + std::to_string(arg);
    FILE *f = popen(cmd.c_str(), "r");
    if (f == nullptr) {
        return false;
    }
    int n = std::fscanf(f, format, a, b);
    return pclose(f) == 0 && n == 2;
}

// Run `dragon self --group reps` and read its figures.
bool group_figures(const std::string &dragon, int reps, double *group, double *loop) {
    std::string cmd = dragon + " " + self_dir() + "/bench-runtime --group " + std::to_string(reps);
    FILE *f = popen(cmd.c_str(), "r");
    if (f == nullptr) {
        return false;
    }
    int n = std::fscanf(f, "group %lf loop %lf", group, loop);
    return pclose(f) == 0 && n == 2;
}

// Run `dragon self MODE n` and read its "ours <median> <p99> peer <median> <p99>".
bool latency_figures(const std::string &dragon, const char *mode, int n, Latency *ours,
                     Latency *peer, const std::string &prefix = "", const std::string &extra = "") {
    std::string cmd = prefix + dragon + " " + self_dir() + "/bench-runtime " + mode + " " +
                      std::to_string(n) + extra;
    FILE *f = popen(cmd.c_str(), "r");
    if (f == nullptr) {
        return false;
    }
    Latency a;
    Latency b;
    int got = std::fscanf(f, "ours %lf %lf peer %lf %lf", &a.median_us, &a.p99_us, &b.median_us,
                          &b.p99_us);
    if (pclose(f) != 0 || got != 4) {
        return false; // no figure from a run that failed half-way
    }
    *ours = a;
    *peer = b;
    return true;
}

// The first two CPUs this process may run on (-1 where there are fewer).
void two_cpus(int *a, int *b) {
    *a = -1;
    *b = -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        return;
    }
    for (int c = 0; c < CPU_SETSIZE && *b < 0; ++c) {
        if (CPU_ISSET(c, &set)) {
            (*a < 0 ? *a : *b) = c;
        }
    }
}

// One side of a latency comparison, as its rows name it.
struct Side {
    const char *impl;
    long size;
    Latency lat;
};

// The rows of one comparison: median and p99 of each side, and ours / peer of both (the
// goals are on ratio_x, the medians'); the ratio rows carry the peer's size.
void latency_rows(const char *bench, const char *metric, const Side &ours, const Side &peer,
                  const char *why) {
    std::string ratio_name = std::string(bench) + ".ratio";
    std::string ratio_impl = std::string(ours.impl) + "/" + peer.impl;
    std::string median = std::string(metric) + "_median_us";
    std::string p99 = std::string(metric) + "_p99_us";
    for (const Side *side : {&peer, &ours}) {
        bench::row(bench, side->impl, side->size, median.c_str(), side->lat.median_us, why);
        bench::row(bench, side->impl, side->size, p99.c_str(), side->lat.p99_us, why);
    }
    bench::row(ratio_name.c_str(), ratio_impl.c_str(), peer.size, "ratio_x",
               ours.lat.median_us / peer.lat.median_us, why);
    bench::row(ratio_name.c_str(), ratio_impl.c_str(), peer.size, "p99_ratio_x",
               ours.lat.p99_us / peer.lat.p99_us, why);
}

} // namespace

int main(int argc, char **argv) {
    if (argc == 3 && std::string(argv[1]) == "--sequential") {
        return sequential_inner(std::atoi(argv[2]));
    }
    if ((argc == 3 || argc == 5) && std::string(argv[1]) == "--control") {
        return control_inner(std::atoi(argv[2]), argc == 5 ? std::atoi(argv[3]) : -1,
                             argc == 5 ? std::atoi(argv[4]) : -1);
    }
    if (argc == 3 && std::string(argv[1]) == "--spawn-one") {
        return spawn_one_inner(std::atoi(argv[2]));
    }
    if (argc == 3 && std::string(argv[1]) == "--group") {
        try {
            return group_inner(std::atoi(argv[2]));
        } catch (const dragon::Error &e) {
            std::fprintf(stderr, "bench-runtime: %s\n", e.what());
            return 1;
        }
    }
    bool quick = bench::has_flag(argc, argv, "--quick");
    int reps = quick ? 5 : 21;
    std::string dragon = self_dir() + "/../../tools/dragon";
    double bare = run_ms({"/bin/true"}, reps);
    double dr = run_ms({dragon, "/bin/true"}, reps);
    std::vector<std::string> mpirun = {"mpirun", "-np", "1"};
    if (geteuid() == 0) {
        mpirun.push_back("--allow-run-as-root");
    }
    mpirun.push_back("/bin/true");
    double mpi = run_ms(mpirun, quick ? 3 : 9);
    bench::row("runtime.boot", "bare-spawn", 0, "wall_ms", bare);
    bench::row("runtime.boot", "dragon", 0, "wall_ms", dr);
    bench::row("runtime.boot", "mpirun", 0, "wall_ms", mpi,
               std::isnan(mpi) ? "mpirun missing or failed" : nullptr);
    bench::row("runtime.boot.overhead", "dragon-minus-bare", 0, "wall_ms", dr - bare);
    bench::row("runtime.boot.ratio", "mpirun/dragon", 0, "ratio_x", mpi / dr);

    double group = NAN;
    double loop_inside = NAN;
    bool ok = group_figures(dragon, quick ? 5 : 21, &group, &loop_inside);
    double loop = spawn_loop_ms(quick ? 5 : 21);
    const char *why = ok ? nullptr : "the group run failed";
    bench::row("runtime.spawn64", "posix_spawn-loop", kGroup, "wall_ms", loop);
    bench::row("runtime.spawn64", "posix_spawn-loop-in-runtime", kGroup, "wall_ms", loop_inside,
               why);
    bench::row("runtime.spawn64", "dragon-process-group", kGroup, "wall_ms", group, why);
    bench::row("runtime.spawn64.ratio", "group-rate/raw-rate", kGroup, "ratio_x", loop / group,
               why);

    int n = quick ? 2500 : 10000;
    double first = NAN;
    double last = NAN;
    ok = inner_figures(dragon, "--sequential", n, "first %lf last %lf", &first, &last);
    why = ok ? nullptr : "the sequential run failed";
    bench::row("runtime.sequential.first-fifth", "dragon", n, "wall_ms", first, why);
    bench::row("runtime.sequential.last-fifth", "dragon", n, "wall_ms", last, why);
    bench::row("runtime.sequential.ratio", "last/first", n, "ratio_x", last / first, why);

    // Goal: a control round trip within 2x of the bare echo. Where the scheduler puts the
    // daemon and the echo decides most of a round trip on a small VM (a wake-up across CPUs
    // costs tens of microseconds there), so both are also measured placed alike: all four on
    // one CPU, and each pair across the same two CPUs (taskset, util-linux).
    n = quick ? 1000 : 20000;
    int cpu_a = -1;
    int cpu_b = -1;
    two_cpus(&cpu_a, &cpu_b);
    struct Placement {
        const char *bench;
        std::string prefix;
        std::string extra;
        const char *skip; // why it cannot run here
    };
    std::string on_a = "taskset -c " + std::to_string(cpu_a) + " ";
    std::vector<Placement> placements = {
        {"runtime.control", "", "", nullptr},
        {"runtime.control.same-cpu", on_a, "", cpu_a < 0 ? "no CPU in the affinity mask" : nullptr},
        {"runtime.control.cross-cpu", on_a,
         " " + std::to_string(cpu_a) + " " + std::to_string(cpu_b),
         cpu_b < 0 ? "fewer than two CPUs in the affinity mask" : nullptr},
    };
    for (const Placement &pl : placements) {
        Side query{"dragon-process-query", 0, {}};
        Side echo{"seqpacket-echo", static_cast<long>(kEcho), {}};
        ok = pl.skip == nullptr &&
             latency_figures(dragon, "--control", n, &query.lat, &echo.lat, pl.prefix, pl.extra);
        latency_rows(pl.bench, "rtt", query, echo,
                     pl.skip != nullptr ? pl.skip
                     : ok               ? nullptr
                                        : "the control run failed");
    }

    // Goal: one create+join within 1.3x of posix_spawn+waitpid; as the scheduler places
    // them, and with the daemon, the bench and their children on one CPU.
    n = quick ? 200 : 2000;
    for (const Placement &pl : {placements[0], placements[1]}) {
        Side create_join{"dragon-create-join", 1, {}};
        Side spawn_wait{"posix_spawn-waitpid", 1, {}};
        ok = pl.skip == nullptr && latency_figures(dragon, "--spawn-one", n, &create_join.lat,
                                                   &spawn_wait.lat, pl.prefix);
        std::string name = pl.prefix.empty() ? "runtime.spawn1" : "runtime.spawn1.same-cpu";
        latency_rows(name.c_str(), "wall", create_join, spawn_wait,
                     pl.skip != nullptr ? pl.skip
                     : ok               ? nullptr
                                        : "the create+join run failed");
    }
    return 0;
}
