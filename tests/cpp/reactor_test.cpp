// The node daemon's reactor: descriptors, timers, child exits, and work posted from other
// threads, all run on the reactor's thread.
#include "node/reactor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <vector>

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

using dragon::node::Reactor;

constexpr int64_t kMs = 1000000;

// Run rounds until done() or 5 s have passed; false on the time limit.
template <typename F>
bool run_until(Reactor &r, F done) {
    int64_t give_up = Reactor::now_ns() + 5000 * kMs;
    while (!done()) {
        if (Reactor::now_ns() > give_up) {
            return false;
        }
        r.run_once(100);
    }
    return true;
}

TEST(Reactor, TimersFireInDeadlineOrderAndCancelledOnesNever) {
    Reactor r;
    ASSERT_TRUE(r.ok());
    std::vector<int> order;
    int64_t t0 = Reactor::now_ns(); // before arming: a timer counts from when it was armed
    r.after(30 * kMs, [&] { order.push_back(3); });
    r.after(10 * kMs, [&] { order.push_back(1); });
    uint64_t cancelled = r.after(15 * kMs, [&] { order.push_back(99); });
    r.after(20 * kMs, [&] { order.push_back(2); });
    r.cancel(cancelled);
    ASSERT_TRUE(run_until(r, [&] { return order.size() == 3; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    EXPECT_GE(Reactor::now_ns() - t0, 30 * kMs); // not early
}

TEST(Reactor, ATimerMayArmAndCancelOthers) {
    Reactor r;
    int fired = 0;
    uint64_t victim = r.after(50 * kMs, [&] { fired += 100; });
    r.after(1 * kMs, [&] {
        r.cancel(victim);
        r.after(1 * kMs, [&] { ++fired; });
    });
    ASSERT_TRUE(run_until(r, [&] { return fired > 0; }));
    r.run_once(80); // past the cancelled one's deadline
    EXPECT_EQ(fired, 1);
}

TEST(Reactor, DescriptorsReportReadiness) {
    Reactor r;
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    std::string got;
    uint64_t id = r.watch(p[0], EPOLLIN, [&](uint32_t events) {
        ASSERT_NE(events & EPOLLIN, 0U);
        char buf[16];
        ssize_t n = read(p[0], buf, sizeof buf);
        got.append(buf, static_cast<size_t>(n));
    });
    ASSERT_NE(id, 0U);
    ASSERT_EQ(write(p[1], "abc", 3), 3);
    ASSERT_TRUE(run_until(r, [&] { return got == "abc"; }));
    // Unwatched, it is not reported any more; watched with no events, neither.
    r.modify(id, 0);
    ASSERT_EQ(write(p[1], "d", 1), 1);
    r.run_once(20);
    EXPECT_EQ(got, "abc");
    r.unwatch(id);
    r.run_once(20);
    EXPECT_EQ(got, "abc");
    close(p[0]);
    close(p[1]);
}

TEST(Reactor, AHandlerMayUnwatchItselfAndAnother) {
    Reactor r;
    int a[2];
    int b[2];
    ASSERT_EQ(pipe(a), 0);
    ASSERT_EQ(pipe(b), 0);
    int calls = 0;
    uint64_t ida = 0;
    uint64_t idb = 0;
    ida = r.watch(a[0], EPOLLIN, [&](uint32_t) {
        ++calls;
        r.unwatch(ida);
        r.unwatch(idb);
    });
    idb = r.watch(b[0], EPOLLIN, [&](uint32_t) {
        ++calls;
        r.unwatch(idb);
        r.unwatch(ida);
    });
    ASSERT_EQ(write(a[1], "x", 1), 1);
    ASSERT_EQ(write(b[1], "x", 1), 1);
    r.run_once(100); // both ready in one round: only the first handler runs
    r.run_once(20);
    EXPECT_EQ(calls, 1);
    for (int fd : {a[0], a[1], b[0], b[1]}) {
        close(fd);
    }
}

TEST(Reactor, WorkPostedFromManyThreadsRunsOnTheReactorThreadInOrder) {
    Reactor r;
    constexpr int kThreads = 8;
    constexpr int kEach = 5000;
    std::thread::id loop_thread = std::this_thread::get_id();
    std::atomic<bool> wrong_thread{false};
    std::vector<int> last(kThreads, -1);
    bool out_of_order = false;
    int ran = 0;
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                r.post([&, t, i] {
                    if (std::this_thread::get_id() != loop_thread) {
                        wrong_thread = true;
                    }
                    out_of_order = out_of_order || i != last[static_cast<size_t>(t)] + 1;
                    last[static_cast<size_t>(t)] = i;
                    ++ran;
                });
            }
        });
    }
    bool all = run_until(r, [&] { return ran == kThreads * kEach; });
    for (auto &th : threads) {
        th.join();
    }
    ASSERT_TRUE(all);
    EXPECT_FALSE(wrong_thread.load());
    EXPECT_FALSE(out_of_order);
}

TEST(Reactor, PostWakesABlockedLoopAndStopEndsRun) {
    Reactor r;
    std::thread poster([&] { r.post([&] { r.stop(); }); });
    int64_t t0 = Reactor::now_ns();
    r.run(); // no timer, no descriptor: only the post can end it
    poster.join();
    EXPECT_LT(Reactor::now_ns() - t0, 5000 * kMs);
}

pid_t start_child(int exit_code, bool killed) {
    pid_t pid = fork();
    if (pid == 0) {
        if (killed) {
            raise(SIGKILL);
        }
        _exit(exit_code);
    }
    return pid;
}

TEST(Reactor, ChildExitsArriveWithTheirStatusThroughPidfds) {
    Reactor r;
    std::vector<int> statuses(2, -1);
    pid_t a = start_child(7, false);
    pid_t b = start_child(0, true);
    int fa = static_cast<int>(syscall(SYS_pidfd_open, a, 0));
    int fb = static_cast<int>(syscall(SYS_pidfd_open, b, 0));
    ASSERT_GE(fa, 0);
    ASSERT_GE(fb, 0);
    r.watch_child(fa, [&](int st) { statuses[0] = st; });
    r.watch_child(fb, [&](int st) { statuses[1] = st; });
    ASSERT_TRUE(run_until(r, [&] { return statuses[0] >= 0 && statuses[1] >= 0; }));
    EXPECT_TRUE(WIFEXITED(statuses[0]) && WEXITSTATUS(statuses[0]) == 7);
    EXPECT_TRUE(WIFSIGNALED(statuses[1]) && WTERMSIG(statuses[1]) == SIGKILL);
    // Reaped by the reactor: no zombie is left to wait for.
    EXPECT_EQ(waitpid(a, nullptr, WNOHANG), -1);
    EXPECT_EQ(waitpid(b, nullptr, WNOHANG), -1);
    close(fa);
    close(fb);
}

} // namespace
