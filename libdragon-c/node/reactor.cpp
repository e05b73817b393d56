#include "reactor.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

namespace dragon::node {

int64_t Reactor::now_ns() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

Reactor::Reactor() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ep_ >= 0 && wake_ >= 0) {
        struct epoll_event ev {};
        ev.events = EPOLLIN;
        ev.data.u64 = 0; // id 0: the wake-up
        epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
    }
}

Reactor::~Reactor() {
    if (wake_ >= 0) {
        close(wake_);
    }
    if (ep_ >= 0) {
        close(ep_);
    }
}

uint64_t Reactor::watch(int fd, uint32_t events, IoHandler handler) {
    uint64_t id = next_id_++;
    struct epoll_event ev {};
    ev.events = events;
    ev.data.u64 = id;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        return 0;
    }
    watches_[id] = Watch{fd, std::make_shared<IoHandler>(std::move(handler))};
    return id;
}

void Reactor::modify(uint64_t id, uint32_t events) {
    auto it = watches_.find(id);
    if (it == watches_.end()) {
        return;
    }
    struct epoll_event ev {};
    ev.events = events;
    ev.data.u64 = id;
    epoll_ctl(ep_, EPOLL_CTL_MOD, it->second.fd, &ev);
}

void Reactor::unwatch(uint64_t id) {
    auto it = watches_.find(id);
    if (it == watches_.end()) {
        return;
    }
    epoll_ctl(ep_, EPOLL_CTL_DEL, it->second.fd, nullptr);
    watches_.erase(it);
}

uint64_t Reactor::at(int64_t when_ns, Task task) {
    uint64_t id = next_id_++;
    timers_[id] = {when_ns, std::make_shared<Task>(std::move(task))};
    due_.insert({when_ns, id});
    return id;
}

void Reactor::cancel(uint64_t timer_id) {
    auto it = timers_.find(timer_id);
    if (it == timers_.end()) {
        return;
    }
    due_.erase({it->second.first, timer_id});
    timers_.erase(it);
}

uint64_t Reactor::watch_child(int pidfd, ExitHandler on_exit) {
    auto done = std::make_shared<ExitHandler>(std::move(on_exit));
    auto id = std::make_shared<uint64_t>(0);
    *id = watch(pidfd, EPOLLIN, [this, pidfd, done, id](uint32_t) {
        siginfo_t info{};
        if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
                   WEXITED | WNOHANG) != 0 ||
            info.si_pid == 0) {
            return; // not ended yet (a spurious wake-up), or not our child
        }
        // The status as waitpid gives it.
        int status = info.si_code == CLD_EXITED
                         ? (info.si_status & 0xff) << 8
                         : (info.si_status & 0x7f) | (info.si_code == CLD_DUMPED ? 0x80 : 0);
        unwatch(*id); // this lambda stays alive until it returns (run_once holds it)
        (*done)(status);
    });
    return *id;
}

void Reactor::post(Task task) {
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        posted_.push_back(std::move(task));
    }
    uint64_t one = 1;
    ssize_t ignored = write(wake_, &one, sizeof one);
    (void)ignored;
}

void Reactor::run_posted() {
    std::deque<Task> now;
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        now.swap(posted_);
    }
    for (Task &t : now) {
        t();
    }
}

void Reactor::run_timers() {
    int64_t now = now_ns();
    while (!due_.empty() && due_.begin()->first <= now) {
        uint64_t id = due_.begin()->second;
        due_.erase(due_.begin());
        auto it = timers_.find(id);
        if (it == timers_.end()) {
            continue;
        }
        std::shared_ptr<Task> task = it->second.second;
        timers_.erase(it);
        (*task)();
    }
}

void Reactor::run_once(int timeout_ms) {
    int wait = timeout_ms;
    if (!due_.empty()) {
        int64_t left = due_.begin()->first - now_ns();
        int until = static_cast<int>(
            std::min<int64_t>(INT_MAX, std::max<int64_t>(0, (left + 999999) / 1000000)));
        wait = wait < 0 ? until : std::min(wait, until);
    }
    struct epoll_event evs[64];
    int n = epoll_wait(ep_, evs, 64, wait);
    for (int i = 0; i < n; ++i) {
        uint64_t id = evs[i].data.u64;
        if (id == 0) {
            uint64_t count = 0;
            ssize_t ignored = read(wake_, &count, sizeof count);
            (void)ignored;
            continue;
        }
        auto it = watches_.find(id);
        if (it == watches_.end()) {
            continue; // unwatched by an earlier handler of this round
        }
        std::shared_ptr<IoHandler> h = it->second.handler; // alive while it runs
        (*h)(evs[i].events);
    }
    run_posted();
    run_timers();
    for (Task &t : rounds_) {
        t();
    }
}

void Reactor::run() {
    while (!stopping_) {
        run_once(-1);
    }
}

} // namespace dragon::node
