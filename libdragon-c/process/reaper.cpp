#include "reaper.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2) // Linux 6.9
#endif

namespace dragon::proc {
namespace {

int pidfd_send(int pidfd, int sig, unsigned flags) {
    return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags));
}

// The fields after the command name in /proc/<pid>/stat ("S ppid pgrp session ..."), or "".
bool stat_fields(pid_t pid, char *state, long *ppid, long *session, unsigned long long *start) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    const char *p = std::strrchr(buf, ')'); // the command name may hold anything but not end
    if (p == nullptr) {
        return false;
    }
    long pgrp = 0;
    // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice num_threads itrealvalue starttime
    return std::sscanf(p + 1,
                       " %c %ld %ld %ld %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                       "%*d %llu",
                       state, ppid, &pgrp, session, start) == 5;
}

} // namespace

int signal_group(int pidfd, pid_t pid, int sig) {
    if (pidfd < 0) {
        errno = ESRCH;
        return -1;
    }
    if (pidfd_send(pidfd, sig, PIDFD_SIGNAL_PROCESS_GROUP) == 0) {
        return 0;
    }
    if (errno != EINVAL) {
        return -1;
    }
    // A kernel before 6.9: the leader is an unreaped child of ours (the pidfd is still
    // open because we have not reaped it), so its pid and group id cannot have been reused.
    return kill(-pid, sig);
}

std::vector<pid_t> children() {
    std::vector<pid_t> out;
    DIR *proc = opendir("/proc");
    if (proc == nullptr) {
        return out;
    }
    pid_t self = getpid();
    while (struct dirent *e = readdir(proc)) {
        char *end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') {
            continue;
        }
        char state = 0;
        long ppid = 0;
        long session = 0;
        unsigned long long start = 0;
        if (stat_fields(static_cast<pid_t>(pid), &state, &ppid, &session, &start) && ppid == self) {
            out.push_back(static_cast<pid_t>(pid));
        }
    }
    closedir(proc);
    return out;
}

int signal_child(pid_t pid, int sig) {
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
        return -1;
    }
    // Still ours? (A child is ours until we reap it; this guards against a caller that
    // passes a pid it did not get from children().)
    char state = 0;
    long ppid = 0;
    long session = 0;
    unsigned long long start = 0;
    int rc = -1;
    if (stat_fields(pid, &state, &ppid, &session, &start) && ppid == getpid()) {
        rc = pidfd_send(pidfd, sig, 0);
    } else {
        errno = ESRCH;
    }
    int e = errno;
    close(pidfd);
    errno = e;
    return rc;
}

void end_all_children(int first, int grace_ms, int give_up_ms, const std::set<pid_t> &spare) {
    auto now_ms = [] {
        struct timespec ts {};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
    };
    // The children to end now (not spared), the ended ones among them reaped.
    auto ours = [&spare] {
        std::vector<pid_t> out;
        for (pid_t c : children()) {
            if (spare.count(c) == 0 && waitpid(c, nullptr, WNOHANG) != c) {
                out.push_back(c);
            }
        }
        return out;
    };
    // Woken by SIGCHLD (blocked here, taken with sigtimedwait), not by polling.
    sigset_t chld;
    sigset_t old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &old);
    int64_t start = now_ms();
    int64_t kill_at = first != 0 ? start + grace_ms : start;
    if (first != 0) {
        for (pid_t c : ours()) {
            signal_child(c, first);
        }
    }
    int64_t last_kill = -1;
    for (;;) {
        std::vector<pid_t> left = ours();
        if (left.empty()) {
            break;
        }
        int64_t now = now_ms();
        if (now >= start + grace_ms + give_up_ms) {
            break;
        }
        if (now >= kill_at && (last_kill < 0 || now - last_kill >= 20)) {
            // Repeated: descendants adopted since the last round are children now.
            for (pid_t c : left) {
                signal_child(c, SIGKILL);
            }
            last_kill = now;
        }
        // Until a child ends, or the next round of kills (20 ms) or the grace period's end.
        int64_t next = now < kill_at ? kill_at : now + 20;
        struct timespec wait = {static_cast<time_t>((next - now) / 1000),
                                static_cast<long>((next - now) % 1000) * 1000000L};
        sigtimedwait(&chld, nullptr, &wait);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

uint64_t start_time(pid_t pid) {
    char state = 0;
    long ppid = 0;
    long session = 0;
    unsigned long long start = 0;
    return stat_fields(pid, &state, &ppid, &session, &start) ? start : 0;
}

pid_t session_of(pid_t pid) {
    char state = 0;
    long ppid = 0;
    long session = 0;
    unsigned long long start = 0;
    return stat_fields(pid, &state, &ppid, &session, &start) ? static_cast<pid_t>(session) : -1;
}

} // namespace dragon::proc
