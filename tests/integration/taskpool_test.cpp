// The task pool under the real runtime (run by taskpool.sh as `dragon taskpool-test`): its
// workers are this program, started by the daemon. Every wait is bounded.
#include <dragon/dragon.hpp>

#include <gtest/gtest.h>

#include "taskpool_segments.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace std::chrono_literals;

// A user type through the serializer hook (not trivially copyable).
struct Labelled {
    std::string label;
    double value;
};
template <>
struct dragon::Serializer<Labelled> {
    static void put(const Labelled &v, std::string &out) {
        out.append(reinterpret_cast<const char *>(&v.value), sizeof v.value);
        out.append(v.label);
    }
    static Labelled get(const void *p, std::size_t len) {
        if (len < sizeof(double)) {
            throw std::runtime_error("a Labelled of " + std::to_string(len) + " bytes");
        }
        Labelled v;
        std::memcpy(&v.value, p, sizeof v.value);
        v.label.assign(static_cast<const char *>(p) + sizeof v.value, len - sizeof v.value);
        return v;
    }
};

namespace {

std::string g_init; // set by the initializer, in each worker

auto square = dragon::task("square", [](long x) { return x * x; });
auto fails_on_7 = dragon::task("fails-on-7", [](int x) {
    if (x == 7) {
        throw std::runtime_error("seven is not allowed");
    }
    return x;
});
auto sleep_ms = dragon::task("sleep-ms", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
});
auto die = dragon::task("die", [](int) -> int {
    raise(SIGKILL);
    return 0;
});
// Dies on its first attempt for a given marker file, succeeds on the next.
auto die_once = dragon::task("die-once", [](std::string marker) {
    if (access(marker.c_str(), F_OK) != 0) {
        std::ofstream(marker) << "x";
        raise(SIGKILL);
    }
    unlink(marker.c_str());
    return std::string("second time");
});
auto doubled = dragon::task("doubled", [](Labelled l) {
    return Labelled{l.label + " x2", l.value * 2};
});
auto my_pid = dragon::task("pid", [](int) { return static_cast<int>(getpid()); });
auto slow_pid = dragon::task("slow-pid", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return static_cast<int>(getpid());
});
auto init = dragon::task("init", [](std::string s) { g_init = s; });
auto bad_init = dragon::task("bad-init", [](int) -> void { throw std::runtime_error("no GPU"); });
auto get_init = dragon::task("get-init", [](int) { return g_init; });
auto big = dragon::task("big", [](std::size_t n) {
    std::vector<std::uint32_t> v(n / 4);
    for (std::size_t i = 0; i < v.size(); ++i) {
        v[i] = static_cast<std::uint32_t>(i * 2654435761u);
    }
    return v;
});
auto checksum = dragon::task("checksum", [](std::vector<std::uint32_t> v) {
    std::uint64_t sum = 0;
    for (auto x : v) {
        sum += x;
    }
    return sum;
});
// Where the worker runs: its CPUs and its GPU variable.
auto where = dragon::task("where", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms)); // so that every worker takes one
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    std::string cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) {
            cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
        }
    }
    const char *g = std::getenv("CUDA_VISIBLE_DEVICES");
    return cpus + "|" + (g != nullptr ? g : "-");
});

dragon::TaskPoolOptions two() {
    dragon::TaskPoolOptions o;
    o.workers = 2;
    return o;
}

bool process_gone(int pid, int ms) { // waits on a pidfd, never signals
    int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
        return errno == ESRCH;
    }
    struct pollfd p {
        fd, POLLIN, 0
    };
    int r = poll(&p, 1, ms);
    close(fd);
    return r == 1;
}

long rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::atol(line.c_str() + 6);
        }
    }
    return -1;
}

// A counting input: no item exists before the pool draws it.
struct Counter {
    using iterator_category = std::input_iterator_tag;
    using value_type = long;
    using difference_type = std::ptrdiff_t;
    using pointer = const long *;
    using reference = const long &;
    long i;
    std::atomic<long> *drawn;
    const long &operator*() const { return i; }
    Counter &operator++() {
        ++i;
        drawn->store(i);
        return *this;
    }
    bool operator==(const Counter &o) const { return i == o.i; }
    bool operator!=(const Counter &o) const { return i != o.i; }
};

} // namespace

TEST(TaskPool, MapResultsInOrder) {
    dragon::TaskPool pool(two());
    EXPECT_EQ(pool.workers(), 2u);
    std::vector<long> in(1000);
    for (long i = 0; i < 1000; ++i) {
        in[static_cast<std::size_t>(i)] = i;
    }
    for (std::size_t chunk : {1u, 7u, 1000u}) {
        auto out = pool.map(square, in, chunk);
        ASSERT_EQ(out.size(), in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            ASSERT_EQ(out[i], in[i] * in[i]) << "chunksize " << chunk;
        }
    }
    EXPECT_EQ(pool.map(square, std::vector<long>{}).size(), 0u); // map over zero items
}

TEST(TaskPool, AUserTypeTravelsThroughItsSerializer) {
    dragon::TaskPool pool(two());
    std::vector<Labelled> in;
    for (int i = 0; i < 30; ++i) {
        in.push_back(Labelled{"item " + std::to_string(i), i + 0.5});
    }
    auto out = pool.map(doubled, in, 4);
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(out[i].label, in[i].label + " x2");
        EXPECT_EQ(out[i].value, in[i].value * 2);
    }
}

TEST(TaskPool, ProgressCanBeReadAtAnyTime) {
    dragon::TaskPool pool(two());
    auto job = pool.map_async(sleep_ms, std::vector<int>(20, 20));
    std::uint64_t last_done = 0;
    bool saw_partial = false;
    for (int i = 0; i < 3000; ++i) {
        auto p = job.progress();
        ASSERT_EQ(p.done + p.failed + p.running + p.queued, 20u);
        ASSERT_GE(p.done, last_done);
        last_done = p.done;
        saw_partial |= p.done > 0 && p.done < 20;
        if (p.done == 20) {
            break;
        }
        std::this_thread::sleep_for(2ms);
    }
    EXPECT_EQ(last_done, 20u);
    EXPECT_TRUE(saw_partial); // 10 rounds of 20 ms: seen between
    EXPECT_EQ(job.get(1s).size(), 20u);
}

TEST(TaskPool, DefaultWorkersAreTheGrantedCpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    dragon::TaskPool pool;
    EXPECT_EQ(pool.workers(), static_cast<std::uint32_t>(CPU_COUNT(&set)));
}

TEST(TaskPool, ImapUnorderedDeliversEveryItemOnce) {
    dragon::TaskPool pool(two());
    std::vector<int> in(200);
    for (int i = 0; i < 200; ++i) {
        in[static_cast<std::size_t>(i)] = i % 3; // ms: uneven, so order changes
    }
    auto it = pool.imap_unordered(sleep_ms, in.begin(), in.end());
    std::set<std::size_t> seen;
    while (auto r = it.next(30s)) {
        EXPECT_EQ(r->second, in[r->first]);
        EXPECT_TRUE(seen.insert(r->first).second) << "index " << r->first << " twice";
    }
    EXPECT_EQ(seen.size(), in.size());
}

TEST(TaskPool, ImapKeepsAtMostMaxInFlightItemsOfAMillion) {
    dragon::TaskPool pool(two());
    constexpr std::size_t kItems = 1000000, kBound = 512;
    std::atomic<long> drawn{0};
    auto it = pool.imap(square, Counter{0, &drawn}, Counter{static_cast<long>(kItems), &drawn}, 64,
                        kBound);
    long taken = 0, worst = 0;
    long rss_start = 0;
    while (auto r = it.next(60s)) {
        ASSERT_EQ(r->first, static_cast<std::size_t>(taken));
        ASSERT_EQ(r->second, taken * taken);
        ++taken;
        worst = std::max(worst, drawn.load() - taken);
        if (taken == 100000) {
            rss_start = rss_kib();
        }
    }
    EXPECT_EQ(taken, static_cast<long>(kItems));
    EXPECT_LE(worst, static_cast<long>(kBound)) << "items drawn and not yet taken";
    long growth = rss_kib() - rss_start;
    EXPECT_LT(growth, 8 * 1024) << "RSS grew by " << growth << " KiB over 900000 items";
}

TEST(TaskPool, AFailingTaskReturnsItsErrorAndTheRestSucceed) {
    dragon::TaskPool pool(two());
    std::vector<int> in(20);
    for (int i = 0; i < 20; ++i) {
        in[static_cast<std::size_t>(i)] = i;
    }
    try {
        pool.map(fails_on_7, in);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_TASK_FAILED);
        EXPECT_EQ(e.index(), 7u);
        EXPECT_NE(std::string(e.what()).find("seven is not allowed"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("fails-on-7"), std::string::npos) << e.what();
    }
    // One by one: all but item 7 succeed.
    auto it = pool.imap(fails_on_7, in.begin(), in.end());
    int ok = 0, failed = 0;
    for (;;) {
        try {
            auto r = it.next(30s);
            if (!r) {
                break;
            }
            ++ok;
        } catch (const dragon::TaskError &e) {
            EXPECT_EQ(e.index(), 7u);
            ++failed;
        }
    }
    EXPECT_EQ(ok, 19);
    EXPECT_EQ(failed, 1);
    // A task nobody registered.
    dragon::Task<int(int)> nobody("nobody");
    try {
        pool.apply(nobody, 1);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_NE(std::string(e.what()).find("no task named 'nobody'"), std::string::npos)
            << e.what();
    }
}

TEST(TaskPool, ATaskPastItsTimeoutEndsItsWorkerAndThePoolGoesOn) {
    auto o = two();
    o.task_timeout = 300ms;
    dragon::TaskPool pool(o);
    auto t0 = std::chrono::steady_clock::now();
    auto slow = pool.apply_async(sleep_ms, 20000);
    try {
        slow.get(10s);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_TIMEOUT) << e.what();
        EXPECT_NE(std::string(e.what()).find("timeout of 300 ms"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(pool.apply(sleep_ms, 10), 10); // a replaced worker serves
    std::vector<int> in(8, 1);
    EXPECT_EQ(pool.map(sleep_ms, in).size(), 8u);
}

TEST(TaskPool, CancelEndsPendingAndRunningTasks) {
    dragon::TaskPool pool(two());
    std::vector<int> in(20, 20000); // 20 s each: only cancel ends them
    auto job = pool.map_async(sleep_ms, in);
    // Wait until two run.
    for (int i = 0; i < 500 && job.progress().running < 20; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    std::this_thread::sleep_for(100ms);
    auto t0 = std::chrono::steady_clock::now();
    job.cancel();
    EXPECT_TRUE(job.wait(10s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    auto p = job.progress();
    EXPECT_EQ(p.failed, 20u);
    try {
        job.get(1s);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_CANCELLED) << e.what();
    }
    EXPECT_EQ(pool.apply(square, 3L), 9L); // the pool goes on
}

TEST(TaskPool, CancelledItemsNotStartedEndAtOnceWhileEveryWorkerIsBusy) {
    dragon::TaskPool pool(two());
    auto busy = pool.map_async(sleep_ms, std::vector<int>{20000, 20000});
    for (int i = 0; i < 1000 && pool.progress().running < 2; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    std::this_thread::sleep_for(50ms); // both started
    auto queued = pool.map_async(square, std::vector<long>(100, 1));
    auto t0 = std::chrono::steady_clock::now();
    queued.cancel();
    EXPECT_TRUE(queued.wait(2s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_EQ(queued.progress().failed, 100u);
    EXPECT_EQ(busy.progress().running, 2u); // untouched
    busy.cancel();
    EXPECT_TRUE(busy.wait(10s));
    EXPECT_EQ(pool.apply(square, 4L), 16L);
}

TEST(TaskPool, AKilledWorkerIsReplacedAndItsTaskFails) {
    dragon::TaskPool pool(two());
    try {
        pool.apply(die, 0);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_WORKER_DIED) << e.what();
        EXPECT_NE(std::string(e.what()).find("ended with code 137"), std::string::npos) << e.what();
    }
    std::vector<long> in(100, 2);
    EXPECT_EQ(pool.map(square, in).size(), 100u);
}

TEST(TaskPool, AKilledWorkersTaskIsRetriedWhenAsked) {
    auto o = two();
    o.max_retries = 2;
    dragon::TaskPool pool(o);
    char marker[] = "/tmp/dragon-taskpool-die-once-XXXXXX";
    int fd = mkstemp(marker);
    ASSERT_GE(fd, 0);
    close(fd);
    unlink(marker);
    EXPECT_EQ(pool.apply(die_once, std::string(marker)), "second time");
    // Out of retries: it always dies.
    try {
        pool.apply(die, 0);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_WORKER_DIED);
        EXPECT_NE(std::string(e.what()).find("out of retries"), std::string::npos) << e.what();
    }
}

TEST(TaskPool, MaxTasksPerChildReplacesWorkers) {
    dragon::TaskPoolOptions o;
    o.workers = 1;
    o.max_tasks_per_child = 5;
    dragon::TaskPool pool(o);
    std::vector<int> in(20, 0);
    auto pids = pool.map(my_pid, in);
    std::set<int> distinct(pids.begin(), pids.end());
    EXPECT_EQ(distinct.size(), 4u); // 20 tasks, 5 per worker
    for (std::size_t i = 0; i < pids.size(); i += 5) {
        EXPECT_EQ(std::set<int>(pids.begin() + i, pids.begin() + i + 5).size(), 1u);
    }
}

TEST(TaskPool, TheInitializerRunsInEachWorker) {
    auto o = two();
    o.initialize_with(init, std::string("dictionary descriptor"));
    dragon::TaskPool pool(o);
    std::vector<int> in(10, 0);
    for (const auto &s : pool.map(get_init, in)) {
        EXPECT_EQ(s, "dictionary descriptor");
    }
    auto bad = two();
    bad.initialize_with(bad_init, 0);
    try {
        dragon::TaskPool p(bad);
        FAIL() << "created";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_TASK_FAILED);
        EXPECT_NE(std::string(e.what()).find("no GPU"), std::string::npos) << e.what();
    }
}

TEST(TaskPool, TerminateWithTasksInFlightReturns) {
    dragon::TaskPool pool(two());
    std::vector<int> in(50, 20000);
    auto job = pool.map_async(sleep_ms, in);
    std::this_thread::sleep_for(200ms);
    auto t0 = std::chrono::steady_clock::now();
    pool.terminate();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_TRUE(job.wait(1s));
    EXPECT_EQ(job.progress().failed, 50u);
    EXPECT_THROW(pool.apply(square, 1L), dragon::Error); // closed
}

TEST(TaskPool, CloseAndJoin) {
    dragon::TaskPool pool(two());
    std::vector<int> in(10, 20);
    auto job = pool.map_async(sleep_ms, in);
    pool.close();
    EXPECT_THROW(pool.apply(square, 1L), dragon::Error);
    EXPECT_TRUE(pool.join(30s));
    EXPECT_EQ(job.get(1s).size(), 10u); // the job ran to its end
}

TEST(TaskPool, JoinRunsAnImapJobToItsEnd) {
    dragon::TaskPool pool(two());
    std::vector<long> in(100, 3);
    auto it = pool.imap(square, in.begin(), in.end(), 1, 200);
    pool.close();
    EXPECT_TRUE(pool.join(30s));
    int n = 0;
    while (auto r = it.next(1s)) {
        EXPECT_EQ(r->second, 9L);
        ++n;
    }
    EXPECT_EQ(n, 100);
}

TEST(TaskPool, ATaskTakesAndReturns16MiB) {
    auto o = two();
    o.pool_bytes = 40u << 20; // the default 8 MiB cannot hold it: see below
    dragon::TaskPool pool(o);
    std::size_t n = 16u << 20;
    auto v = pool.apply(big, n);
    ASSERT_EQ(v.size(), n / 4);
    for (std::size_t i = 0; i < v.size(); i += 4099) {
        ASSERT_EQ(v[i], static_cast<std::uint32_t>(i * 2654435761u));
    }
    // A 16 MiB argument, and chunks of large arguments (both written once into the pool).
    std::vector<std::uint32_t> arg(n / 4);
    std::uint64_t expect = 0;
    for (std::size_t i = 0; i < arg.size(); ++i) {
        arg[i] = static_cast<std::uint32_t>(i % 1000);
        expect += arg[i];
    }
    EXPECT_EQ(pool.apply(checksum, arg), expect);
    std::vector<std::vector<std::uint32_t>> chunks;
    for (std::uint32_t i = 0; i < 100; ++i) {
        chunks.emplace_back(250 + i, i);
    }
    auto sums = pool.map(checksum, chunks, 10);
    for (std::uint32_t i = 0; i < 100; ++i) {
        EXPECT_EQ(sums[i], static_cast<std::uint64_t>(250 + i) * i);
    }
    // A result larger than the pool's memory ends its item with a clear error, and the pool
    // goes on.
    dragon::TaskPool small(two());
    try {
        small.apply(big, n);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_EQ(e.status(), DRAGON_NO_SPACE) << e.what();
        EXPECT_NE(std::string(e.what()).find("raise pool_bytes"), std::string::npos) << e.what();
    }
    EXPECT_EQ(small.apply(square, 5L), 25L);
}

TEST(TaskPool, PoliciesAreHonoured) {
    auto policies = dragon::System::gpu_policies();
    if (policies.empty()) {
        GTEST_SKIP() << "no GPUs in this topology";
    }
    dragon::TaskPoolOptions o;
    o.policies = policies;
    o.processes_per_policy = 1;
    dragon::TaskPool pool(o);
    ASSERT_EQ(pool.workers(), policies.size());
    // Slow tasks, one per worker and more, so every worker runs some; each answer names its
    // CPUs and its GPU.
    std::vector<int> in(2 * policies.size(), 200);
    std::set<std::string> answers;
    for (const auto &s : pool.map(where, in)) {
        answers.insert(s);
    }
    std::set<std::string> expected;
    for (const auto &p : policies) {
        std::string cpus;
        for (std::uint32_t i = 0; i < p.raw().cpu_count; ++i) {
            cpus += (cpus.empty() ? "" : ",") + std::to_string(p.raw().cpus[i]);
        }
        expected.insert(cpus + "|" + std::to_string(p.raw().gpus[0]));
    }
    EXPECT_EQ(answers, expected);
}

TEST(TaskPool, OwnerKilledLeavesNoWorker) {
    // An owner of its own (this program in the role "owner"), killed with SIGKILL.
    dragon::ProcessOptions o;
    o.role = "owner";
    o.out = dragon::Stdio::pipe;
    auto p = dragon::Process::start_piped(dragon::this_process::command(), o);
    std::string line;
    char buf[256];
    while (line.find('\n') == std::string::npos) {
        struct pollfd pf {
            p.out.get(), POLLIN, 0
        };
        ASSERT_EQ(poll(&pf, 1, 30000), 1) << "the owner said nothing";
        ssize_t n = read(p.out.get(), buf, sizeof buf);
        ASSERT_GT(n, 0);
        line.append(buf, static_cast<std::size_t>(n));
    }
    int w1 = 0, w2 = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%d %d", &w1, &w2), 2) << line;
    ASSERT_FALSE(process_gone(w1, 0));
    p.process.signal(SIGKILL);
    EXPECT_TRUE(process_gone(w1, 10000)) << "worker " << w1 << " outlived its owner";
    EXPECT_TRUE(process_gone(w2, 10000)) << "worker " << w2 << " outlived its owner";
    p.process.join(10s);
    for (int i = 0; i < 200 && !taskpool_segments().empty(); ++i) {
        std::this_thread::sleep_for(10ms); // the workers unlink it as they end
    }
    EXPECT_TRUE(taskpool_segments().empty());
}

TEST(TaskPool, WorkersOfAnotherExecutableNamedByPath) {
    std::string exe = dragon::this_process::command().front();
    dragon::TaskPoolOptions o;
    o.workers = 2;
    o.worker_command = {exe.substr(0, exe.rfind('/')) + "/taskpool-worker"};
    dragon::TaskPool pool(o);
    dragon::Task<std::int64_t(std::vector<std::int32_t>)> c_sum("c-sum"); // registered there
    std::vector<std::vector<std::int32_t>> in;
    for (int i = 0; i < 50; ++i) {
        in.push_back(std::vector<std::int32_t>(static_cast<std::size_t>(i), i));
    }
    auto sums = pool.map(c_sum, in, 3);
    for (int i = 0; i < 50; ++i) {
        EXPECT_EQ(sums[static_cast<std::size_t>(i)], static_cast<std::int64_t>(i) * i);
    }
    // What only this program registered is not there.
    try {
        pool.apply(square, 2L);
        FAIL() << "no TaskError";
    } catch (const dragon::TaskError &e) {
        EXPECT_NE(std::string(e.what()).find("no task named 'square'"), std::string::npos)
            << e.what();
    }
}

TEST(TaskPool, ZzNothingIsLeft) {
    EXPECT_TRUE(taskpool_segments().empty());
}

int owner_main() {
    dragon::TaskPool pool(two());
    // Each worker takes one (the other is busy): their pids.
    auto pids = pool.map(slow_pid, std::vector<int>{300, 300});
    auto job = pool.map_async(sleep_ms, std::vector<int>(4, 30000)); // mid-task when killed
    std::printf("%d %d\n", pids[0], pids[1]);
    std::fflush(stdout);
    pause(); // killed here
    return 0;
}

int main(int argc, char **argv) {
    dragon::TaskPool::serve_if_worker();
    if (dragon::this_process::role() == "owner") {
        return owner_main();
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
