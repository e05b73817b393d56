// bench-pmi: MPI ranks started by the runtime's own PMIx server (docs/pmi.md) next to Open
// MPI's mpirun, in one run (../shared/BENCHMARKS.md): 4 ranks of examples/mpi_hello.c
//   1. as a ProcessGroup with pmi set inside a running runtime (start to join);
//   2. the same under `dragon` from a cold start (the whole command: boot, job, teardown);
//   3. `mpirun -np 4` of the same binary (the whole command).
// Medians of several runs; the ranks' output goes to /dev/null. Rows (JSON lines) on stdout,
// a table with issue 15's goal on stderr.
#include "bench_common.hpp"

#include <dragon/dragon.hpp>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#ifndef BENCH_PMI_HELLO
#define BENCH_PMI_HELLO "mpi-hello"
#endif

namespace {

using Clock = std::chrono::steady_clock;

std::string self_exe() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string self_dir() {
    std::string e = self_exe();
    return e.substr(0, e.rfind('/'));
}

// Seconds the command took, stdout and stderr to /dev/null; NaN if it failed.
double run_command(const std::vector<std::string> &args) {
    std::vector<char *> argv;
    for (const auto &a : args) {
        argv.push_back(const_cast<char *>(a.c_str()));
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    auto t0 = Clock::now();
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        return NAN;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? s : NAN;
}

// One job of n ranks as a process group with pmi (inside the runtime): seconds, NaN if a
// rank failed.
double one_job(const std::string &program, uint32_t n) {
    dragon::ProcessOptions o;
    o.out = dragon::Stdio::devnull;
    auto t0 = Clock::now();
    dragon::ProcessGroup g;
    g.add(n, {program}, o);
    g.set_pmi();
    g.start();
    if (!g.join(std::chrono::seconds(60))) {
        return NAN;
    }
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    for (uint32_t i = 0; i < g.size(); ++i) {
        if (g.member(i).exit_code != 0) {
            return NAN;
        }
    }
    return s;
}

double median_of(int reps, const std::function<double()> &f) {
    std::vector<double> v;
    for (int r = 0; r < reps; ++r) {
        v.push_back(f());
    }
    return bench::median(v);
}

} // namespace

int main(int argc, char **argv) {
    const bool quick = bench::has_flag(argc, argv, "--quick");
    const int reps = quick ? 3 : 7;
    const std::string hello = BENCH_PMI_HELLO;
    if (bench::has_flag(argc, argv, "--warm")) {
        // Inside the runtime: the jobs one after another, the first one not counted.
        try {
            one_job(hello, 4);
            double warm = median_of(reps, [&] { return one_job(hello, 4); });
            const char *pml = std::getenv("OMPI_MCA_pml");
            bench::row(pml != nullptr ? "pmi.job4.pml-ob1" : "pmi.job4", "dragon-warm", 4, "job_ms",
                       warm * 1e3);
            // For the parent's table.
            if (const char *f = std::getenv("BENCH_PMI_WARM_FILE")) {
                if (FILE *fp = std::fopen(f, "w")) {
                    std::fprintf(fp, "%.9g\n", warm);
                    std::fclose(fp);
                }
            }
            return 0;
        } catch (const std::exception &e) {
            std::fprintf(stderr, "bench-pmi: %s\n", e.what());
            return 1;
        }
    }
    if (bench::has_flag(argc, argv, "--one-job")) {
        try {
            return std::isnan(one_job(hello, 4)) ? 1 : 0;
        } catch (const std::exception &e) {
            std::fprintf(stderr, "bench-pmi: %s\n", e.what());
            return 1;
        }
    }
    std::string dragon = self_dir() + "/../../tools/dragon";
    std::string self = self_exe();
    struct Figures {
        double warm, cold, mpirun;
    };
    // Each launcher's defaults, then both with Open MPI's ob1 messaging layer forced (its
    // default probes UCX, which costs most of a rank's start here: docs/pmi.md, "Cost").
    std::vector<Figures> figs;
    for (bool ob1 : {false, true}) {
        if (ob1) {
            setenv("OMPI_MCA_pml", "ob1", 1);
        } else {
            unsetenv("OMPI_MCA_pml");
        }
        const char *tag = ob1 ? "pmi.job4.pml-ob1" : "pmi.job4";
        // 1. inside a running runtime: this bench again, under the launcher (its row goes to
        // our stdout).
        std::fflush(stdout);
        std::vector<std::string> warm_cmd = {dragon, self, "--warm"};
        if (quick) {
            warm_cmd.emplace_back("--quick");
        }
        std::vector<char *> wargv;
        for (auto &a : warm_cmd) {
            wargv.push_back(a.data());
        }
        wargv.push_back(nullptr);
        std::string warm_file = "/tmp/bench-pmi-warm." + std::to_string(getpid());
        setenv("BENCH_PMI_WARM_FILE", warm_file.c_str(), 1);
        pid_t pid = -1;
        if (posix_spawn(&pid, dragon.c_str(), nullptr, nullptr, wargv.data(), environ) == 0) {
            int status = 0;
            waitpid(pid, &status, 0);
        }
        double warm = NAN;
        if (FILE *fp = std::fopen(warm_file.c_str(), "r")) {
            if (std::fscanf(fp, "%lf", &warm) != 1) {
                warm = NAN;
            }
            std::fclose(fp);
            std::remove(warm_file.c_str());
        }
        // 2. a cold start: the launcher, one job of 4 ranks, teardown.
        double cold = median_of(reps, [&] { return run_command({dragon, self, "--one-job"}); });
        bench::row((std::string(tag) + ".cold").c_str(), "dragon", 4, "job_ms", cold * 1e3);
        // 3. mpirun.
        std::vector<std::string> mpirun = {"mpirun", "-np", "4", "--oversubscribe"};
        if (geteuid() == 0) {
            mpirun.emplace_back("--allow-run-as-root");
        }
        mpirun.push_back(hello);
        double mr = median_of(reps, [&] { return run_command(mpirun); });
        bench::row((std::string(tag) + ".cold").c_str(), "mpirun", 4, "job_ms", mr * 1e3,
                   mr == mr ? nullptr : "mpirun missing or failed");
        figs.push_back({warm, cold, mr});
    }
    std::fprintf(stderr, "\nbench-pmi: 4 ranks of mpi-hello, medians of %d (whole commands)\n",
                 reps);
    for (size_t i = 0; i < figs.size(); ++i) {
        std::fprintf(stderr,
                     "%-28s dragon warm %.3f s (%.2fx), cold %.3f s (%.2fx); mpirun %.3f s "
                     "(goal 2x)\n",
                     i == 0 ? "defaults:" : "OMPI_MCA_pml=ob1 for both:", figs[i].warm,
                     figs[i].mpirun / figs[i].warm, figs[i].cold, figs[i].mpirun / figs[i].cold,
                     figs[i].mpirun);
    }
    return 0;
}
