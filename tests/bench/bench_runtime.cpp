// bench-runtime: what booting the runtime costs. Wall time of `dragon /bin/true` next to
// `mpirun -np 1 /bin/true` and a bare posix_spawn of /bin/true (../shared/BENCHMARKS.md).
// The ProcessGroup-of-64 comparison arrives with process groups (issue 4, still open).
#include "bench_common.hpp"

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

} // namespace

int main(int argc, char **argv) {
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
    return 0;
}
