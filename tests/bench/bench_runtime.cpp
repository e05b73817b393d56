// bench-runtime: what booting the runtime costs, and how fast it starts processes
// (../shared/BENCHMARKS.md). Wall time of `dragon /bin/true` next to `mpirun -np 1
// /bin/true` and a bare posix_spawn of /bin/true; and a ProcessGroup of 64 /bin/true, from
// start to join, next to a plain posix_spawn loop of 64 (spawn all, then wait for all).
// The group part runs inside a runtime: the bench starts `dragon bench-runtime --group`.
#include "bench_common.hpp"

#include <dragon/dragon.hpp>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fcntl.h>
#include <spawn.h>
#include <string>
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

} // namespace

int main(int argc, char **argv) {
    if (argc == 3 && std::string(argv[1]) == "--sequential") {
        return sequential_inner(std::atoi(argv[2]));
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
    return 0;
}
