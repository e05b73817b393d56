#include "proc.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
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
    cached_self_tag.store(0, std::memory_order_relaxed);
    fork_generation.fetch_add(1, std::memory_order_relaxed);
}

pthread_once_t once = PTHREAD_ONCE_INIT;
void install_fork_handler() {
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
}

// What /proc/<pid>/stat says of a process.
enum class ProcState { kAlive, kDead, kUnknown };
struct ProcInfo {
    ProcState state;
    uint64_t start; // field 22, starttime; valid when alive
};

ProcInfo read_proc(uint32_t pid) {
    // /proc/<id> answers for processes and for threads alike (kill() does not find threads
    // that are not group leaders), and tells a zombie (killed, not yet reaped) from a live
    // process.
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {errno == ENOENT ? ProcState::kDead : ProcState::kUnknown, 0};
    }
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    int err = errno;
    ::close(fd);
    if (n <= 0) {
        return {n == 0 || err == ESRCH ? ProcState::kDead : ProcState::kUnknown, 0};
    }
    buf[n] = '\0';
    // Format: "pid (comm) S ppid ...": comm may hold spaces and parentheses; the state (field
    // 3) follows the last ')', the start time is field 22.
    const char *p = std::strrchr(buf, ')');
    if (p == nullptr || p[1] != ' ') {
        return {ProcState::kUnknown, 0};
    }
    char state = p[2];
    if (state == 'Z' || state == 'X' || state == 'x') {
        return {ProcState::kDead, 0};
    }
    p += 2;
    for (int field = 3; field < 22 && p != nullptr; ++field) {
        p = std::strchr(p, ' ');
        p = p != nullptr ? p + 1 : nullptr;
    }
    uint64_t start = p != nullptr ? std::strtoull(p, nullptr, 10) : 0;
    return {ProcState::kAlive, start};
}

uint32_t make_tag(uint32_t pid, uint64_t start) {
    return (pid & kPidMask) | static_cast<uint32_t>((start & 0xFF) << kTagStartShift);
}

} // namespace

std::atomic<uint32_t> cached_self_tag{0};

uint32_t self_tag_slow() {
    uint32_t pid = self_pid();
    ProcInfo info = read_proc(pid);
    uint32_t tag = make_tag(pid, info.state == ProcState::kAlive ? info.start : 0);
    cached_self_tag.store(tag, std::memory_order_relaxed);
    return tag;
}

bool tag_dead(uint32_t tag) {
    uint32_t pid = tag_pid(tag);
    if (pid == 0) {
        return false;
    }
    ProcInfo info = read_proc(pid);
    if (info.state == ProcState::kUnknown) {
        // No /proc: kill() takes zombies for live processes, and knows no start times.
        return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    }
    return info.state == ProcState::kDead || make_tag(pid, info.start) != (tag & ~kTagKindMask);
}

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
    ProcInfo info = read_proc(pid);
    if (info.state == ProcState::kUnknown) {
        // Without /proc, fall back to kill(), which takes zombies for live processes.
        return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    }
    return info.state == ProcState::kDead;
}

} // namespace dragon::detail
