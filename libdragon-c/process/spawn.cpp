#include "spawn.hpp"

#include "../common/error.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <csignal>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace dragon::proc {
namespace {

using detail::fail;
using detail::fail_errno;

// PATH lookup in the parent: the child only execs.
bool resolve(const std::string &program, std::string *path, int *err) {
    if (program.find('/') != std::string::npos) {
        *path = program;
        return true;
    }
    const char *env = std::getenv("PATH");
    std::string dirs = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
    *err = ENOENT;
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) {
            end = dirs.size();
        }
        std::string dir = dirs.substr(start, end - start);
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
        if (access(candidate.c_str(), X_OK) == 0) {
            struct stat st {};
            if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
                *path = candidate;
                return true;
            }
        } else if (errno == EACCES) {
            *err = EACCES;
        }
        start = end + 1;
    }
    return false;
}

// What a child that cannot exec reports (ChildPlan::failed_step, failed_errno).
struct ChildError {
    int step; // 1 stdio, 2 cwd, 3 affinity, 4 exec
    int err;
};

const char *step_name(int step) {
    switch (step) {
    case 1:
        return "set up stdin/stdout/stderr";
    case 2:
        return "change to the working directory";
    case 3:
        return "bind to the policy's CPUs";
    default:
        return "execute";
    }
}

// Everything the child needs, prepared before vfork.
struct ChildPlan {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd; // null: stay
    const cpu_set_t *cpuset;
    size_t cpuset_size;
    int fds[3]; // what becomes stdin/stdout/stderr (-1: inherit, unless kDevNull)
    Stdio modes[3];
    bool new_process_group;
    long nofile_soft;
    // Written by a child that could not exec, read by the parent once vfork returns: vfork
    // shares memory and suspends the parent until the child has exec'd or exited, so no
    // pipe is needed to hear why (volatile: written in the borrowed frame).
    volatile int failed_step;
    volatile int failed_errno;
    pid_t parent; // >= 0: die with this parent (PR_SET_PDEATHSIG)
};

// The child side of vfork: system calls only, on the plan; never returns.
[[noreturn]] void child_exec(ChildPlan *plan) {
    auto die = [plan](int step) {
        plan->failed_errno = errno;
        plan->failed_step = step;
        _exit(127);
    };
    // The child starts with every signal at its default disposition and none blocked,
    // whatever the parent caught, ignored (the daemon ignores SIGPIPE) or blocked (the daemon
    // takes SIGCHLD on a signalfd): exec keeps ignored dispositions and the mask. Handlers of
    // the parent must not run here, so the defaults go in before the mask is emptied.
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            signal(sig, SIG_DFL);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Killed with its parent (the node daemon), should that die first; if it died already,
    // the signal was missed: leave now.
    if (plan->parent >= 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != plan->parent)) {
        _exit(127);
    }
    for (int i = 0; i < 3; ++i) {
        int fd = plan->fds[i];
        if (plan->modes[i] == Stdio::kDevNull) {
            fd = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
            if (fd < 0) {
                die(1);
            }
        }
        if (fd == i && fcntl(fd, F_SETFD, 0) != 0) { // dup2 would keep close-on-exec
            die(1);
        }
        if (fd >= 0 && fd != i && dup2(fd, i) < 0) {
            die(1);
        }
    }
    if (plan->new_process_group && setpgid(0, 0) != 0) {
        die(1);
    }
    if (plan->nofile_soft >= 0) {
        struct rlimit rl {};
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = static_cast<rlim_t>(plan->nofile_soft);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (plan->cwd != nullptr && chdir(plan->cwd) != 0) {
        die(2);
    }
    if (plan->cpuset != nullptr && sched_setaffinity(0, plan->cpuset_size, plan->cpuset) != 0) {
        die(3);
    }
    execve(plan->path, plan->argv, plan->envp);
    die(4);
    _exit(127); // not reached: die does not return
}

} // namespace

void close_fds(Spawned *s) {
    for (int *fd : {&s->pidfd, &s->in_fd, &s->out_fd, &s->err_fd}) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
    }
}

dragon_status_t spawn(const SpawnRequest &req, Spawned *out) {
    *out = Spawned{};
    std::string path;
    int err = 0;
    if (!resolve(req.program, &path, &err)) {
        return fail_errno(err == EACCES ? DRAGON_PERMISSION_DENIED : DRAGON_NOT_FOUND, err,
                          "cannot start '%s': not found in PATH", req.program.c_str());
    }

    // Everything the child needs is built here: after fork it only calls async-signal-safe
    // functions.
    std::vector<std::string> env_strings = req.env;
    if (env_strings.empty()) {
        for (char **e = environ; *e != nullptr; ++e) {
            env_strings.emplace_back(*e);
        }
    }
    for (const auto &[name, value] : req.set_env) {
        std::string prefix = name + "=";
        bool replaced = false;
        for (auto &e : env_strings) {
            if (e.compare(0, prefix.size(), prefix) == 0) {
                e = prefix + value;
                replaced = true;
            }
        }
        if (!replaced) {
            env_strings.push_back(prefix + value);
        }
    }
    std::vector<char *> envp;
    envp.reserve(env_strings.size() + 1);
    for (auto &e : env_strings) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    std::string argv0 = req.program;
    std::vector<std::string> arg_strings = req.args;
    std::vector<char *> argv{argv0.data()};
    argv.reserve(arg_strings.size() + 2);
    for (auto &a : arg_strings) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    uint32_t max_cpu = 0;
    for (uint32_t c : req.cpus) {
        max_cpu = c > max_cpu ? c : max_cpu;
    }
    // The CPU set, in memory of its own (a glibc cpu_set_t of max_cpu + 1 bits).
    size_t cpuset_size = req.cpus.empty() ? 0 : CPU_ALLOC_SIZE(max_cpu + 1);
    std::vector<unsigned long> cpuset_words((cpuset_size + sizeof(unsigned long) - 1) /
                                            sizeof(unsigned long));
    auto *cpuset =
        cpuset_words.empty() ? nullptr : reinterpret_cast<cpu_set_t *>(cpuset_words.data());
    if (cpuset != nullptr) {
        for (uint32_t c : req.cpus) {
            CPU_SET_S(c, cpuset_size, cpuset);
        }
    }

    int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    Stdio modes[3] = {req.in, req.out, req.err};
    auto close_pipes = [&]() {
        for (auto &p : pipes) {
            for (int &fd : p) {
                if (fd >= 0) {
                    close(fd);
                    fd = -1;
                }
            }
        }
    };
    for (int i = 0; i < 3; ++i) {
        if (modes[i] == Stdio::kPipe && pipe2(pipes[i], O_CLOEXEC) != 0) {
            int e = errno;
            close_pipes();
            return fail_errno(DRAGON_SYSTEM_ERROR, e, "cannot start '%s': pipe",
                              req.program.c_str());
        }
    }
    ChildPlan plan{path.c_str(),
                   argv.data(),
                   envp.data(),
                   req.cwd.empty() ? nullptr : req.cwd.c_str(),
                   cpuset,
                   cpuset_size,
                   {-1, -1, -1},
                   {modes[0], modes[1], modes[2]},
                   req.new_process_group,
                   req.nofile_soft,
                   0,
                   0,
                   req.die_with_parent ? getpid() : -1};
    for (int i = 0; i < 3; ++i) {
        plan.fds[i] = modes[i] == Stdio::kPipe ? (i == 0 ? pipes[i][0] : pipes[i][1])
                      : modes[i] == Stdio::kFd ? req.fds[i]
                                               : -1;
    }
    // vfork: the child borrows this process's memory until it execs, which makes starting a
    // process several times cheaper than fork (docs/benchmarks.md, runtime.spawn64). The
    // child only makes system calls on data prepared here (child_exec). Signals stay
    // blocked across the borrow so that no handler of ours runs in the child.
    sigset_t all;
    sigset_t old_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_mask);
    pid_t pid = vfork(); // NOLINT(clang-analyzer-security.insecureAPI.vfork)
    if (pid == 0) {
        child_exec(&plan); // NOLINT(clang-analyzer-unix.Vfork): system calls only, then exec
    }
    int vfork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    if (pid < 0) {
        int e = vfork_errno;
        close_pipes();
        return fail_errno(detail::status_from_errno(e), e, "cannot start '%s': fork",
                          req.program.c_str());
    }

    for (int i = 0; i < 3; ++i) {
        if (modes[i] == Stdio::kPipe) {
            close(i == 0 ? pipes[i][0] : pipes[i][1]);
        }
    }
    ChildError ce{plan.failed_step, plan.failed_errno};
    if (ce.step != 0) {
        // exec did not happen: reap the child and report why.
        while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        for (int i = 0; i < 3; ++i) {
            if (modes[i] == Stdio::kPipe) {
                close(i == 0 ? pipes[i][1] : pipes[i][0]);
            }
        }
        dragon_status_t st = ce.err == ENOENT   ? DRAGON_NOT_FOUND
                             : ce.err == EACCES ? DRAGON_PERMISSION_DENIED
                             : ce.step == 3     ? DRAGON_INVALID_ARGUMENT
                                                : DRAGON_SYSTEM_ERROR;
        return fail_errno(st, ce.err, "cannot start '%s': could not %s", req.program.c_str(),
                          step_name(ce.step));
    }
    out->pid = pid;
    out->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); // close-on-exec always
    out->in_fd = modes[0] == Stdio::kPipe ? pipes[0][1] : -1;
    out->out_fd = modes[1] == Stdio::kPipe ? pipes[1][0] : -1;
    out->err_fd = modes[2] == Stdio::kPipe ? pipes[2][0] : -1;
    return DRAGON_SUCCESS;
}

} // namespace dragon::proc
