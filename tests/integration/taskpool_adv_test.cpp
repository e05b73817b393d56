// Adversarial probes of the task pool, run by taskpool.sh under the real launcher like
// taskpool-test: races of cancel and timeouts with completion (also with retiring workers),
// results read late, inputs that throw, a pool whose workers cannot start, several threads on
// one job, thousands of handles, misuse after destroy. Each failed before its fix in
// libdragon-c/taskpool (issue 13). Every wait is bounded.
#include <dragon/dragon.hpp>

#include <gtest/gtest.h>

#include "taskpool_segments.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

auto sleep_ms = dragon::task("sleep-ms", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
});
auto ident = dragon::task("ident", [](int x) { return x; });
auto echo = dragon::task("echo", [](std::string s) { return s; });
auto init_kill = dragon::task("init-kill", [](int) -> void { raise(SIGKILL); });
// An initializer that kills its worker once the marker exists; a task that makes the marker
// and dies.
auto init_marker = dragon::task("init-marker", [](std::string m) -> void {
    if (access(m.c_str(), F_OK) == 0) {
        raise(SIGKILL);
    }
});
auto mark_and_die = dragon::task("mark-and-die", [](std::string m) -> int {
    FILE *f = std::fopen(m.c_str(), "w");
    if (f != nullptr) {
        std::fclose(f);
    }
    raise(SIGKILL);
    return 0;
});

int64_t ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t)
        .count();
}

// An input iterator over 0..n that throws when it reaches `bad`.
struct ThrowingIt {
    using iterator_category = std::input_iterator_tag;
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    using pointer = const int *;
    using reference = const int &;
    int i = 0, bad = -1;
    int v = 0;
    const int &operator*() {
        if (i == bad) {
            throw std::runtime_error("iterator broke");
        }
        v = i;
        return v;
    }
    ThrowingIt &operator++() {
        ++i;
        return *this;
    }
    bool operator==(const ThrowingIt &o) const { return i == o.i; }
    bool operator!=(const ThrowingIt &o) const { return i != o.i; }
};

int next_item(dragon_taskpool_job_t *j, int64_t timeout_ms, dragon_status_t *item) {
    size_t index = 0, len = 0;
    const void *b = nullptr;
    dragon_status_t st =
        dragon_taskpool_job_next(j, timeout_ms * 1000000LL, &index, item, &b, &len);
    return st;
}

dragon_taskpool_job_t *apply(dragon_taskpool_t *p, const char *task, int arg) {
    dragon_taskpool_job_t *j = nullptr;
    EXPECT_EQ(dragon_taskpool_apply_async(p, task, &arg, sizeof arg, &j), DRAGON_SUCCESS)
        << dragon_last_error();
    return j;
}

} // namespace

// An imap whose iterator throws while next() draws it.
TEST(TaskPoolAdv, ImapIteratorThrowsInNext) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    dragon::TaskPool pool(o);
    ThrowingIt first{0, 3}, last{10, 3};
    auto it = pool.imap(ident, first, last, 1, 1); // max_in_flight 1: drawn inside next()
    int got = 0;
    bool threw = false;
    for (int k = 0; k < 20; ++k) {
        try {
            auto r = it.next(2s);
            if (!r) {
                break;
            }
            ++got;
        } catch (const std::exception &e) {
            threw = true;
            std::printf("next threw: %s\n", e.what());
            break;
        }
    }
    EXPECT_TRUE(threw);
    // The job must still end in bounded time (NOT_FOUND or an error), not time out forever.
    auto t0 = std::chrono::steady_clock::now();
    try {
        auto r = it.next(2s);
        std::printf("after throw: %s\n", r ? "an item" : "the end");
    } catch (const std::exception &e) {
        std::printf("after throw, next threw: %s (%lld ms)\n", e.what(),
                    static_cast<long long>(ms_since(t0)));
    }
    // Results of other jobs still progress while nobody waits (the background thread).
    auto a = pool.apply_async(ident, 5);
    std::this_thread::sleep_for(1s);
    EXPECT_TRUE(a.ready()) << "an apply_async made no progress while nobody waited";
    EXPECT_EQ(a.get(5s), 5);
    pool.close();
    EXPECT_TRUE(pool.join(5s)) << "join did not end after an iterator threw";
}

TEST(TaskPoolAdv, ImapIteratorThrowsAtSubmit) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    dragon::TaskPool pool(o);
    ThrowingIt first{0, 0}, last{10, 0};
    // Lazy, as Python's imap: the input's exception comes out of next(), after the items
    // drawn before it.
    bool threw = false;
    {
        auto it = pool.imap(ident, first, last);
        try {
            while (it.next(5s)) {
            }
        } catch (const std::exception &e) {
            threw = true;
            std::printf("imap threw: %s\n", e.what());
        }
    }
    EXPECT_TRUE(threw);
    pool.close();
    EXPECT_TRUE(pool.join(5s)) << "join did not end after an iterator threw at submission";
}

// The scaffold: a callback input whose first draw takes `stall_ms`, drawn inside next() by
// thread T, while nobody else waits: nobody reads results meanwhile.
struct Stall {
    int ms;
    int calls = 0;
    int arg = 0;
    static int call(void *user, const void **arg, size_t *len) {
        auto *s = static_cast<Stall *>(user);
        if (s->calls++ > 0) {
            return 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(s->ms));
        *arg = &s->arg;
        *len = sizeof s->arg;
        return 1;
    }
    // Submit a "sleep-ms" job drawing from this input.
    dragon_status_t submit(dragon_taskpool_t *p, dragon_taskpool_job_t **j) {
        dragon_taskpool_input_t in;
        dragon_taskpool_input_init(&in);
        in.next = &Stall::call;
        in.user = this;
        return dragon_taskpool_submit(p, "sleep-ms", &in, j);
    }
};

// Workers 2, 2 slots. S (100 ms) and X (x_ms) fill them; J (callback) waits for a slot, and T
// draws it (stalling 1 s) once S ends. X ends during the stall, its result unread.
static void stall_scenario(uint32_t max_tasks_per_child, int64_t task_timeout_ms, int x_ms,
                           bool cancel_x, dragon_status_t *x_status, int *x_next_rc,
                           int64_t *t_ms) {
    dragon_taskpool_attr_t a;
    dragon_taskpool_attr_init(&a);
    a.workers = 2;
    a.max_in_flight = 2;
    a.max_tasks_per_child = max_tasks_per_child;
    if (task_timeout_ms >= 0) {
        a.task_timeout = task_timeout_ms * 1000000LL;
    }
    dragon_taskpool_t *p = nullptr;
    ASSERT_EQ(dragon_taskpool_create(&a, &p), DRAGON_SUCCESS) << dragon_last_error();
    dragon_taskpool_job_t *s = apply(p, "sleep-ms", 100);
    dragon_taskpool_job_t *x = apply(p, "sleep-ms", x_ms);
    Stall stall{1000};
    dragon_taskpool_job_t *j = nullptr;
    ASSERT_EQ(stall.submit(p, &j), DRAGON_SUCCESS);
    EXPECT_EQ(stall.calls, 0); // no slot yet
    auto t0 = std::chrono::steady_clock::now();
    std::thread t([&]() {
        dragon_status_t item = DRAGON_SUCCESS;
        EXPECT_EQ(next_item(j, 10000, &item), DRAGON_SUCCESS);
        *t_ms = ms_since(t0);
    });
    if (cancel_x) {
        std::this_thread::sleep_for(std::chrono::milliseconds(x_ms + 300));
        dragon_taskpool_job_cancel(x);
    }
    t.join();
    dragon_status_t item = DRAGON_SUCCESS;
    *x_next_rc = next_item(x, 3000, &item);
    *x_status = item;
    EXPECT_EQ(next_item(s, 3000, &item), DRAGON_SUCCESS);
    dragon_taskpool_job_release(s);
    dragon_taskpool_job_release(x);
    dragon_taskpool_job_release(j);
    dragon_taskpool_destroy(p);
}

// X finished in 300 ms under a 600 ms timeout, but its result was read late: TIMEOUT?
TEST(TaskPoolAdv, ResultReadLateIsNotATimeout) {
    dragon_status_t xs = DRAGON_SUCCESS;
    int rc = 0;
    int64_t tms = 0;
    stall_scenario(0, 600, 300, false, &xs, &rc, &tms);
    std::printf("T's next took %lld ms; X: rc %d, item %d\n", static_cast<long long>(tms), rc, xs);
    EXPECT_EQ(rc, DRAGON_SUCCESS);
    EXPECT_EQ(xs, DRAGON_SUCCESS) << "X ran 300 ms under a 600 ms timeout";
}

// The same with max_tasks_per_child 1: X's worker retired on its own; X must still end.
TEST(TaskPoolAdv, LateTimeoutOfARetiredWorkerEnds) {
    dragon_status_t xs = DRAGON_SUCCESS;
    int rc = 0;
    int64_t tms = 0;
    stall_scenario(1, 600, 300, false, &xs, &rc, &tms);
    std::printf("T's next took %lld ms; X: rc %d, item %d\n", static_cast<long long>(tms), rc, xs);
    EXPECT_EQ(rc, DRAGON_SUCCESS) << "X never ended";
}

// Cancel X after it finished (result unread) on a worker that retires after each item.
TEST(TaskPoolAdv, CancelAfterCompletionOfARetiredWorkerEnds) {
    dragon_status_t xs = DRAGON_SUCCESS;
    int rc = 0;
    int64_t tms = 0;
    stall_scenario(1, -1, 300, true, &xs, &rc, &tms);
    std::printf("T's next took %lld ms; X: rc %d, item %d\n", static_cast<long long>(tms), rc, xs);
    EXPECT_EQ(rc, DRAGON_SUCCESS) << "X never ended";
}

// Cancelling X (ended, result unread) must not kill the worker that now runs Y (another job).
TEST(TaskPoolAdv, CancelAfterCompletionSparesAnotherJob) {
    dragon_taskpool_attr_t a;
    dragon_taskpool_attr_init(&a);
    a.workers = 2;
    a.max_in_flight = 4;
    dragon_taskpool_t *p = nullptr;
    ASSERT_EQ(dragon_taskpool_create(&a, &p), DRAGON_SUCCESS) << dragon_last_error();
    dragon_taskpool_job_t *s = apply(p, "sleep-ms", 100);   // w0 (then takes Y1)
    dragon_taskpool_job_t *x = apply(p, "sleep-ms", 400);   // w1
    dragon_taskpool_job_t *y1 = apply(p, "sleep-ms", 1500); // w0 after S
    dragon_taskpool_job_t *y2 = apply(p, "sleep-ms", 1500); // w1 after X
    Stall stall{1000};
    dragon_taskpool_job_t *j = nullptr;
    ASSERT_EQ(stall.submit(p, &j), DRAGON_SUCCESS);
    std::thread t([&]() {
        dragon_status_t item = DRAGON_SUCCESS;
        EXPECT_EQ(next_item(j, 10000, &item), DRAGON_SUCCESS);
    });
    std::this_thread::sleep_for(700ms); // X ended at 400 ms; T stalls 100..1100 ms
    dragon_taskpool_job_cancel(x);
    t.join();
    dragon_status_t item = DRAGON_SUCCESS;
    EXPECT_EQ(next_item(y1, 5000, &item), DRAGON_SUCCESS);
    EXPECT_EQ(item, DRAGON_SUCCESS);
    EXPECT_EQ(next_item(y2, 5000, &item), DRAGON_SUCCESS);
    EXPECT_EQ(item, DRAGON_SUCCESS) << "Y2 (another job) was killed by X's cancel: " << item;
    EXPECT_EQ(next_item(x, 5000, &item), DRAGON_SUCCESS);
    std::printf("X ended %d\n", item);
    for (auto *h : {s, x, y1, y2, j}) {
        dragon_taskpool_job_release(h);
    }
    dragon_taskpool_destroy(p);
}

// Cancel racing completion, in a loop, with workers retiring after each item.
TEST(TaskPoolAdv, CancelRacingCompletionLoop) {
    for (uint32_t mtpc : {0u, 1u}) {
        dragon::TaskPoolOptions o;
        o.workers = 4;
        o.max_tasks_per_child = mtpc;
        dragon::TaskPool pool(o);
        int stuck = 0, ok = 0, cancelled = 0;
        for (int i = 0; i < 150 && stuck < 3; ++i) {
            dragon_taskpool_job_t *j = apply(pool.handle(), "sleep-ms", i % 7);
            std::this_thread::sleep_for(std::chrono::microseconds((i * 397) % 9000));
            dragon_taskpool_job_cancel(j);
            dragon_status_t item = DRAGON_SUCCESS;
            int rc = next_item(j, 3000, &item);
            if (rc != DRAGON_SUCCESS) {
                ++stuck;
            } else if (item == DRAGON_SUCCESS) {
                ++ok;
            } else {
                ++cancelled;
            }
            dragon_taskpool_job_release(j);
        }
        std::printf("max_tasks_per_child %u: ok %d cancelled %d stuck %d\n", mtpc, ok, cancelled,
                    stuck);
        EXPECT_EQ(stuck, 0) << "max_tasks_per_child " << mtpc;
        pool.close();
        EXPECT_TRUE(pool.join(10s));
    }
}

TEST(TaskPoolAdv, DestroyedPoolJobsSayClosed) {
    dragon_taskpool_attr_t a;
    dragon_taskpool_attr_init(&a);
    a.workers = 2;
    dragon_taskpool_t *p = nullptr;
    ASSERT_EQ(dragon_taskpool_create(&a, &p), DRAGON_SUCCESS);
    dragon_taskpool_job_t *j = apply(p, "sleep-ms", 5000);
    dragon_taskpool_job_t *k = apply(p, "sleep-ms", 0);
    std::this_thread::sleep_for(200ms);
    dragon_taskpool_destroy(p);
    dragon_status_t item = DRAGON_SUCCESS;
    int rc = next_item(j, 2000, &item);
    std::printf("next after destroy: rc %d item %d\n", rc, item);
    EXPECT_EQ(dragon_taskpool_job_wait(j, 1000000000LL), DRAGON_CLOSED);
    rc = next_item(k, 2000, &item);
    std::printf("next (finished job) after destroy: rc %d item %d\n", rc, item);
    EXPECT_EQ(dragon_taskpool_job_cancel(j), DRAGON_CLOSED);
    dragon_taskpool_job_release(j);
    dragon_taskpool_job_release(k);
}

TEST(TaskPoolAdv, MaxTasksPerChildWithChunks) {
    for (uint32_t m : {1u, 2u, 5u}) {
        dragon::TaskPoolOptions o;
        o.workers = 3;
        o.max_tasks_per_child = m;
        dragon::TaskPool pool(o);
        std::vector<int> in(60);
        for (int i = 0; i < 60; ++i) {
            in[i] = i;
        }
        auto r = pool.map_async(ident, in, 4);
        auto out = r.get(30s);
        ASSERT_EQ(out.size(), in.size());
        EXPECT_EQ(out, in);
        pool.close();
        EXPECT_TRUE(pool.join(10s));
    }
}

TEST(TaskPoolAdv, ZeroLengthAndBigChunks) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    o.max_in_flight = 1;
    dragon::TaskPool pool(o);
    std::vector<std::string> in = {"", "a", "", std::string(1000, 'z'), ""};
    EXPECT_EQ(pool.map(echo, in, 100), in);
    EXPECT_EQ(pool.map(echo, in, 1), in);
    std::vector<std::string> none;
    EXPECT_TRUE(pool.map(echo, none, 3).empty());
    auto it = pool.imap(echo, in.begin(), in.end(), 100);
    std::vector<std::string> got;
    while (auto r = it.next(10s)) {
        got.push_back(r->second);
    }
    EXPECT_EQ(got, in);
    auto u = pool.imap_unordered(echo, none.begin(), none.end(), 7);
    EXPECT_FALSE(u.next(5s).has_value());
    EXPECT_EQ(pool.apply(echo, std::string()), "");
}

TEST(TaskPoolAdv, ThousandsOfApplyAsync) {
    dragon::TaskPoolOptions o;
    o.workers = 4;
    o.max_in_flight = 512;
    dragon::TaskPool pool(o);
    std::vector<dragon::AsyncResult<int>> rs;
    for (int i = 0; i < 6000; ++i) {
        rs.push_back(pool.apply_async(ident, i));
    }
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 6000; ++i) {
        ASSERT_EQ(rs[i].get(30s), i);
    }
    std::printf("6000 apply_async in %lld ms\n", static_cast<long long>(ms_since(t0)));
    auto pr = pool.progress();
    EXPECT_EQ(pr.done, 6000u);
}

TEST(TaskPoolAdv, TwoThreadsNextSameJob) {
    dragon::TaskPoolOptions o;
    o.workers = 4;
    dragon::TaskPool pool(o);
    const int n = 3000;
    std::vector<int> in(n);
    for (int i = 0; i < n; ++i) {
        in[i] = i;
    }
    std::vector<const void *> args(n);
    std::vector<size_t> lens(n, sizeof(int));
    for (int i = 0; i < n; ++i) {
        args[i] = &in[i];
    }
    dragon_taskpool_input_t inp;
    dragon_taskpool_input_init(&inp);
    inp.args = args.data();
    inp.lens = lens.data();
    inp.n = n;
    inp.ordered = 0;
    dragon_taskpool_job_t *j = nullptr;
    ASSERT_EQ(dragon_taskpool_submit(pool.handle(), "ident", &inp, &j), DRAGON_SUCCESS);
    std::mutex m;
    std::multiset<size_t> seen;
    std::atomic<int> errors{0};
    auto reader = [&]() {
        for (;;) {
            size_t index = 0, len = 0;
            dragon_status_t item;
            const void *b = nullptr;
            dragon_status_t st =
                dragon_taskpool_job_next(j, 10000000000LL, &index, &item, &b, &len);
            if (st == DRAGON_NOT_FOUND) {
                return;
            }
            if (st != DRAGON_SUCCESS || item != DRAGON_SUCCESS) {
                ++errors;
                return;
            }
            std::lock_guard<std::mutex> g(m);
            seen.insert(index);
        }
    };
    std::thread a(reader), b(reader), c(reader);
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(seen.size(), static_cast<size_t>(n));
    std::set<size_t> uniq(seen.begin(), seen.end());
    EXPECT_EQ(uniq.size(), static_cast<size_t>(n));
    dragon_taskpool_job_release(j);
}

TEST(TaskPoolAdv, SubmitWhileTerminate) {
    dragon::TaskPoolOptions o;
    o.workers = 3;
    dragon::TaskPool pool(o);
    std::atomic<bool> stop{false};
    std::vector<dragon_taskpool_job_t *> jobs;
    std::mutex m;
    std::thread sub([&]() {
        while (!stop) {
            int x = 20;
            dragon_taskpool_job_t *j = nullptr;
            if (dragon_taskpool_apply_async(pool.handle(), "sleep-ms", &x, sizeof x, &j) !=
                DRAGON_SUCCESS) {
                break;
            }
            std::lock_guard<std::mutex> g(m);
            jobs.push_back(j);
        }
    });
    std::thread waiter([&]() {
        for (int k = 0; k < 50 && !stop; ++k) {
            dragon_taskpool_job_t *j = nullptr;
            {
                std::lock_guard<std::mutex> g(m);
                if (!jobs.empty()) {
                    j = jobs[jobs.size() / 2];
                }
            }
            if (j != nullptr) {
                dragon_status_t it;
                dragon_taskpool_job_wait(j, 100000000LL);
                (void)it;
            }
        }
    });
    std::this_thread::sleep_for(300ms);
    auto t0 = std::chrono::steady_clock::now();
    pool.terminate();
    std::printf("terminate took %lld ms, %zu jobs\n", static_cast<long long>(ms_since(t0)),
                jobs.size());
    stop = true;
    sub.join();
    waiter.join();
    int bad = 0;
    for (auto *j : jobs) {
        dragon_status_t item;
        int rc = next_item(j, 2000, &item);
        if (rc != DRAGON_SUCCESS || (item != DRAGON_SUCCESS && item != DRAGON_CANCELLED)) {
            ++bad;
        }
        dragon_taskpool_job_release(j);
    }
    EXPECT_EQ(bad, 0);
    EXPECT_TRUE(pool.join(5s));
}

TEST(TaskPoolAdv, InitializerKillsWorker) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    o.initialize_with(init_kill, 0);
    auto t0 = std::chrono::steady_clock::now();
    bool threw = false;
    try {
        dragon::TaskPool pool(o);
    } catch (const std::exception &e) {
        threw = true;
        std::printf("create failed in %lld ms: %s\n", static_cast<long long>(ms_since(t0)),
                    e.what());
    }
    EXPECT_TRUE(threw);
    EXPECT_LT(ms_since(t0), 20000);
}

TEST(TaskPoolAdv, RetriesWithTimeouts) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    o.max_retries = 3;
    o.task_timeout = 200ms;
    dragon::TaskPool pool(o);
    auto r = pool.map_async(sleep_ms, std::vector<int>{1000, 10, 1000, 10}, 1);
    auto t0 = std::chrono::steady_clock::now();
    int timeouts = 0, oks = 0;
    dragon_taskpool_job_t *j = nullptr;
    (void)j;
    for (int i = 0; i < 4; ++i) {
        try {
            auto v = pool.apply_async(sleep_ms, i % 2 ? 10 : 1000).get(5s);
            (void)v;
            ++oks;
        } catch (const dragon::TaskError &e) {
            EXPECT_EQ(e.status(), DRAGON_TIMEOUT) << e.what();
            ++timeouts;
        }
    }
    EXPECT_EQ(oks, 2);
    EXPECT_EQ(timeouts, 2);
    EXPECT_LT(ms_since(t0), 4000);
    try {
        r.get(5s);
        ADD_FAILURE() << "no timeout";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_TIMEOUT) << e.what();
    }
}

// The iterator throws inside next()'s wait (the slot freed while it waited): then the
// background thread must still read results for other jobs.
TEST(TaskPoolAdv, ImapIteratorThrowsInsideWait) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    o.max_in_flight = 1;
    dragon::TaskPool pool(o);
    auto b = pool.apply_async(sleep_ms, 300); // holds the only slot
    ThrowingIt first{0, 0}, last{10, 0};
    auto it = pool.imap(ident, first, last); // nothing drawn yet: no slot
    try {
        it.next(3s);
        ADD_FAILURE() << "no throw";
    } catch (const std::exception &e) {
        std::printf("next threw: %s\n", e.what());
    }
    EXPECT_EQ(b.get(1s), 300);
    auto a = pool.apply_async(ident, 5);
    std::this_thread::sleep_for(1s);
    EXPECT_TRUE(a.ready()) << "nobody reads results any more while nobody waits";
    EXPECT_EQ(a.get(5s), 5);
}

// map_async's get() that times out part way: a later get() must not lose what the first took.
TEST(TaskPoolAdv, MapGetAfterTimeoutLosesNothing) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    dragon::TaskPool pool(o);
    std::vector<int> in = {0, 0, 0, 0, 800, 0};
    auto r = pool.map_async(sleep_ms, in);
    bool timed_out = false;
    try {
        r.get(300ms);
    } catch (const dragon::Error &e) {
        timed_out = e.status() == DRAGON_TIMEOUT;
    }
    EXPECT_TRUE(timed_out);
    auto out = r.get(5s);
    EXPECT_EQ(out.size(), in.size()) << "results taken by the timed-out get() are lost";
    auto again = r.get(5s);
    EXPECT_EQ(again.size(), in.size()) << "a second get() of a finished map gives nothing";
}

TEST(TaskPoolAdv, DestroyWhileAnotherThreadWaits) {
    for (int round = 0; round < 5; ++round) {
        dragon_taskpool_attr_t a;
        dragon_taskpool_attr_init(&a);
        a.workers = 2;
        dragon_taskpool_t *p = nullptr;
        ASSERT_EQ(dragon_taskpool_create(&a, &p), DRAGON_SUCCESS);
        dragon_taskpool_job_t *j = apply(p, "sleep-ms", 5000);
        dragon_taskpool_job_t *k = apply(p, "sleep-ms", 5000);
        std::atomic<int64_t> took{-1};
        auto t0 = std::chrono::steady_clock::now();
        std::thread t([&]() {
            dragon_status_t item;
            next_item(j, 8000, &item);
            dragon_taskpool_job_wait(k, 8000000000LL);
            took = ms_since(t0);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + 37 * round));
        dragon_taskpool_destroy(p);
        t.join();
        EXPECT_LT(took.load(), 3000);
        dragon_taskpool_job_release(j);
        dragon_taskpool_job_release(k);
    }
}

TEST(TaskPoolAdv, ArgumentLargerThanThePool) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    dragon::TaskPool pool(o); // 8 MiB
    std::vector<std::string> in = {"small", std::string(12u << 20, 'x'), "small",
                                   std::string(3u << 20, 'y'), std::string(3u << 20, 'z')};
    auto r = pool.map_async(echo, in, 1);
    size_t index = 0, len = 0;
    const void *bytes = nullptr;
    dragon_status_t st;
    int n = 0;
    auto *jh = reinterpret_cast<dragon::detail::JobHandle *>(&r); // first member
    (void)jh;
    try {
        auto out = r.get(20s);
        ADD_FAILURE() << "a 6 MiB argument in a 4 MiB pool succeeded";
    } catch (const dragon::TaskError &e) {
        std::printf("item %zu: %s: %s\n", e.index(), dragon_strerror(e.status()), e.what());
        n = 1;
    }
    (void)index;
    (void)len;
    (void)bytes;
    (void)st;
    EXPECT_EQ(n, 1);
    // The pool still works.
    EXPECT_EQ(pool.apply(echo, std::string("after")), "after");
}

// The only worker's replacement dies before it is ready (3 times): the pool is broken. The
// items already submitted must end (with the reason), not wait forever.
TEST(TaskPoolAdv, BrokenPoolEndsPendingItems) {
    std::string marker = "/tmp/tpadv-marker-" + std::to_string(getpid());
    unlink(marker.c_str());
    dragon::TaskPoolOptions o;
    o.workers = 1;
    o.initialize_with(init_marker, marker);
    dragon::TaskPool pool(o);
    auto a = pool.apply_async(mark_and_die, marker);
    auto b = pool.apply_async(ident, 7);
    try {
        a.get(5s);
        ADD_FAILURE() << "no error";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_WORKER_DIED);
    }
    try {
        int v = b.get(5s);
        ADD_FAILURE() << "b ran: " << v;
    } catch (const dragon::TaskError &e) {
        std::printf("b: %s\n", e.what());
    } catch (const dragon::Error &e) {
        ADD_FAILURE() << "b did not end: " << e.what();
    }
    unlink(marker.c_str());
}

// Cancel racing completion leaks slots with max_tasks_per_child: once they are all leaked,
// the pool runs nothing.
TEST(TaskPoolAdv, CancelRacesNeverLeakSlots) {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    o.max_tasks_per_child = 1;
    o.max_in_flight = 2;
    dragon::TaskPool pool(o);
    int stuck = 0;
    for (int i = 0; i < 400 && stuck < 2; ++i) {
        dragon_taskpool_job_t *j = apply(pool.handle(), "sleep-ms", i % 5);
        std::this_thread::sleep_for(std::chrono::microseconds((i * 397) % 7000));
        dragon_taskpool_job_cancel(j);
        dragon_status_t item = DRAGON_SUCCESS;
        if (next_item(j, 2000, &item) != DRAGON_SUCCESS) {
            ++stuck;
            dragon_taskpool_progress_t pr{};
            pr.struct_size = sizeof pr;
            dragon_taskpool_progress(nullptr, j, &pr);
            std::printf("stuck job: done %llu failed %llu running %llu; ",
                        (unsigned long long)pr.done, (unsigned long long)pr.failed,
                        (unsigned long long)pr.running);
            int rc = next_item(j, 3000, &item);
            std::printf("3 s later: rc %d\n", rc);
        }
        dragon_taskpool_job_release(j);
    }
    std::printf("stuck %d\n", stuck);
    auto r = pool.apply_async(ident, 1);
    try {
        EXPECT_EQ(r.get(3s), 1);
    } catch (const std::exception &e) {
        ADD_FAILURE() << "a fresh apply_async after the race: " << e.what();
    }
}

// Task timeouts racing natural completion with max_tasks_per_child 1 (no stall scaffold).
TEST(TaskPoolAdv, TimeoutRacingCompletionLoop) {
    dragon::TaskPoolOptions o;
    o.workers = 4;
    o.max_tasks_per_child = 1;
    o.task_timeout = 30ms;
    dragon::TaskPool pool(o);
    std::vector<int> in;
    for (int i = 0; i < 200; ++i) {
        in.push_back(27 + i % 6);
    }
    auto r = pool.imap(sleep_ms, in.begin(), in.end());
    int got = 0;
    for (;;) {
        try {
            if (!r.next(10s)) {
                break;
            }
            ++got;
        } catch (const dragon::TaskError &e) {
            EXPECT_EQ(e.status(), DRAGON_TIMEOUT) << e.what();
            ++got;
        } catch (const dragon::Error &e) {
            ADD_FAILURE() << "after " << got << " items: " << e.what();
            break;
        }
    }
    EXPECT_EQ(got, 200);
}

// While an imap's callback runs (the lock released), other submissions take every free slot:
// the item it drew must still run, not end CANCELLED ("terminated") with nobody cancelling.
struct SlowOnce {
    int calls = 0;
    int arg = 0;
    static int call(void *user, const void **arg, size_t *len) {
        auto *s = static_cast<SlowOnce *>(user);
        if (s->calls++ > 0) {
            return 0;
        }
        std::this_thread::sleep_for(300ms);
        *arg = &s->arg;
        *len = sizeof s->arg;
        return 1;
    }
};
TEST(TaskPoolAdv, ImapItemNotCancelledWhenSlotsFillDuringItsDraw) {
    dragon_taskpool_attr_t a;
    dragon_taskpool_attr_init(&a);
    a.workers = 2;
    a.max_in_flight = 2;
    dragon_taskpool_t *p = nullptr;
    ASSERT_EQ(dragon_taskpool_create(&a, &p), DRAGON_SUCCESS);
    SlowOnce cb;
    dragon_taskpool_input_t in;
    dragon_taskpool_input_init(&in);
    in.next = &SlowOnce::call;
    in.user = &cb;
    dragon_taskpool_job_t *j = nullptr;
    std::thread u([&]() { EXPECT_EQ(dragon_taskpool_submit(p, "sleep-ms", &in, &j), 0); });
    std::this_thread::sleep_for(100ms);
    dragon_taskpool_job_t *x = apply(p, "sleep-ms", 200);
    dragon_taskpool_job_t *y = apply(p, "sleep-ms", 200);
    u.join();
    size_t index = 0, len = 0;
    const void *b = nullptr;
    dragon_status_t item = DRAGON_SUCCESS;
    EXPECT_EQ(dragon_taskpool_job_next(j, 5000000000LL, &index, &item, &b, &len), DRAGON_SUCCESS);
    EXPECT_EQ(item, DRAGON_SUCCESS)
        << "the imap's item ended: " << (item != 0 ? static_cast<const char *>(b) : "");
    for (auto *h : {j, x, y}) {
        dragon_taskpool_job_release(h);
    }
    dragon_taskpool_destroy(p);
}

TEST(TaskPoolAdv, ZzNothingIsLeft) {
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(taskpool_segments().empty());
}

int main(int argc, char **argv) {
    dragon::TaskPool::serve_if_worker();
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
