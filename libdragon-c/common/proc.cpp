#include "proc.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <ctime>

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace dragon::detail {
namespace {

std::atomic<uint32_t> cached_pid{0};
std::atomic<uint32_t> fork_generation{0};
thread_local uint32_t cached_tid = 0;
thread_local uint32_t cached_tid_generation = 0;

void after_fork_in_child() {
    cached_pid.store(static_cast<uint32_t>(::getpid()), std::memory_order_relaxed);
    fork_generation.fetch_add(1, std::memory_order_relaxed);
}

pthread_once_t once = PTHREAD_ONCE_INIT;
void install_fork_handler() {
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
}

} // namespace

uint32_t self_pid() {
    uint32_t pid = cached_pid.load(std::memory_order_relaxed);
    if (pid == 0) {
        pthread_once(&once, install_fork_handler);
        pid = static_cast<uint32_t>(::getpid());
        cached_pid.store(pid, std::memory_order_relaxed);
    }
    return pid;
}

uint32_t self_tid() {
    uint32_t gen = fork_generation.load(std::memory_order_relaxed);
    if (cached_tid == 0 || cached_tid_generation != gen) {
        pthread_once(&once, install_fork_handler);
        cached_tid = static_cast<uint32_t>(::syscall(SYS_gettid));
        cached_tid_generation = fork_generation.load(std::memory_order_relaxed);
    }
    return cached_tid;
}

uint64_t random_uid() {
    uint64_t uid = 0;
    while (uid == 0) {
        if (getrandom(&uid, sizeof uid, 0) != static_cast<ssize_t>(sizeof uid)) {
            struct timespec ts {};
            clock_gettime(CLOCK_REALTIME, &ts);
            static std::atomic<uint64_t> counter{0};
            uid = (static_cast<uint64_t>(ts.tv_nsec) << 20) ^ static_cast<uint64_t>(::getpid()) ^
                  static_cast<uint64_t>(ts.tv_sec) ^ (counter.fetch_add(1) << 40);
        }
    }
    return uid;
}

bool pid_dead(uint32_t pid) {
    if (pid == 0) {
        return false;
    }
    // /proc/<id> answers for processes and for threads alike (kill() does not find threads
    // that are not group leaders), and tells a zombie (killed, not yet reaped) from a live
    // process. Without /proc, fall back to kill(), which takes zombies for live processes.
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return true;
        }
        return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    }
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) {
        return n == 0 || errno == ESRCH;
    }
    buf[n] = '\0';
    // Format: "pid (comm) S ...": comm may hold spaces and parentheses; the state follows
    // the last ')'.
    const char *close_paren = std::strrchr(buf, ')');
    if (close_paren == nullptr || close_paren[1] != ' ') {
        return false;
    }
    char state = close_paren[2];
    return state == 'Z' || state == 'X' || state == 'x';
}

} // namespace dragon::detail
