// The node daemon's reactor (docs/runtime.md, "Services"): one thread waits on descriptors,
// timers and child exits, and runs work that other threads post to it. Every handler runs
// on the reactor's thread, one at a time, so the services built on it need no locks of
// their own; post() is the one entry that other threads (libpmix's, libfabric's) may call.
//
// Handlers may watch, unwatch, arm and cancel anything, themselves included, while they run.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace dragon::node {

class Reactor {
  public:
    using IoHandler = std::function<void(uint32_t events)>; // EPOLLIN, EPOLLOUT, ...
    using Task = std::function<void()>;
    using ExitHandler = std::function<void(int wait_status)>;

    Reactor();
    ~Reactor();
    Reactor(const Reactor &) = delete;
    Reactor &operator=(const Reactor &) = delete;

    // False when the kernel refused the epoll or eventfd descriptors.
    bool ok() const { return ep_ >= 0 && wake_ >= 0; }

    // Watch fd (not owned) for `events` (level-triggered; 0: registered, nothing wanted);
    // the id for modify/unwatch, 0 if epoll refused it.
    uint64_t watch(int fd, uint32_t events, IoHandler handler);
    void modify(uint64_t id, uint32_t events);
    void unwatch(uint64_t id);

    // Run `task` once at `when_ns` (CLOCK_MONOTONIC), or after `delay_ns`; the id to cancel.
    uint64_t at(int64_t when_ns, Task task);
    uint64_t after(int64_t delay_ns, Task task) { return at(now_ns() + delay_ns, std::move(task)); }
    void cancel(uint64_t timer_id);

    // Reap a child through its pidfd (not owned) when it exits, then call `on_exit` with
    // its wait status. The pid is never used: a pidfd cannot name a reused pid.
    uint64_t watch_child(int pidfd, ExitHandler on_exit);

    // From any thread: run `task` on the reactor's thread soon (in posting order).
    void post(Task task);

    // Run `task` at the end of every round, after the handlers (in the order added): for
    // work that is cheaper once per round than once per event (closing what a round marked
    // dead, re-arming watches).
    void each_round(Task task) { rounds_.push_back(std::move(task)); }

    // Run rounds until stop(); one round waits at most timeout_ms (-1: until something
    // happens) and runs what is due. stop() may be called from a handler or posted.
    void run();
    void run_once(int timeout_ms);
    void stop() { stopping_ = true; }
    bool stopping() const { return stopping_; }

    static int64_t now_ns();

  private:
    struct Watch {
        int fd;
        std::shared_ptr<IoHandler> handler;
    };
    void run_posted();
    void run_timers();

    int ep_ = -1;
    int wake_ = -1; // eventfd: post() wakes the loop
    uint64_t next_id_ = 1;
    std::map<uint64_t, Watch> watches_;
    std::map<uint64_t, std::pair<int64_t, std::shared_ptr<Task>>> timers_; // id -> when, task
    std::set<std::pair<int64_t, uint64_t>> due_;                           // (when, id)
    std::mutex posted_mutex_;
    std::deque<Task> posted_;
    std::vector<Task> rounds_;
    bool stopping_ = false;
};

} // namespace dragon::node
