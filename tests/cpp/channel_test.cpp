// dragon::Channel, ChannelSet, Queue<T>, Lock, Semaphore, Event, Barrier: RAII, moves,
// std::chrono timeouts, errors as dragon::Error, and use across fork()ed processes.
#include <dragon/dragon.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

class SyncTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        setenv("DRAGON_RUNTIME_ID", ("tcppch" + std::to_string(getpid())).c_str(), 1);
    }
    void SetUp() override {
        pool_ = dragon::Pool::create(
            ::testing::UnitTest::GetInstance()->current_test_info()->name(), 16 << 20);
    }
    void TearDown() override {
        EXPECT_EQ(pool_.stats().allocation_count, 0U) << "an object or message leaked";
        pool_.destroy();
    }
    dragon::Pool pool_;
};

// Run body in a child process; returns its exit code (body's return value).
template <typename F>
pid_t fork_child(F &&body) {
    pid_t pid = fork();
    if (pid == 0) {
        int rc = 1;
        try {
            rc = body();
        } catch (const std::exception &e) {
            std::fprintf(stderr, "child: %s\n", e.what());
        }
        _exit(rc);
    }
    return pid;
}

int join_child(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

dragon_status_t status_of(const std::function<void()> &f) {
    try {
        f();
    } catch (const dragon::Error &e) {
        return e.status();
    }
    return DRAGON_SUCCESS;
}

TEST_F(SyncTest, ChannelValuesBytesAndTimeouts) {
    auto ch = dragon::Channel::create(pool_, 4, 32);
    EXPECT_EQ(ch.info().capacity, 4U);
    ch.send_value(42);
    EXPECT_EQ(ch.recv_value<int>(0ns), 42);
    EXPECT_EQ(status_of([&] { ch.recv_value<int>(5ms); }), DRAGON_TIMEOUT);
    EXPECT_FALSE(ch.try_recv_bytes(0ns).has_value());

    std::string big(10000, 'x');
    ch.send(big.data(), big.size());
    std::string small = "hi";
    ch.send(small.data(), small.size());
    auto got = ch.recv_bytes(1s);
    EXPECT_EQ(std::string(got.begin(), got.end()), big);
    got = ch.recv_bytes(1s);
    EXPECT_EQ(std::string(got.begin(), got.end()), small);

    for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(ch.try_send(&i, sizeof i, 0ns));
    }
    int x = 5;
    EXPECT_FALSE(ch.try_send(&x, sizeof x, 1ms));
    EXPECT_EQ(status_of([&] { ch.send_value(x, 1ms); }), DRAGON_TIMEOUT);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(ch.recv_value<int>(), i);
    }

    // Moves leave an empty handle behind; the moved-to handle works.
    dragon::Channel other = std::move(ch);
    EXPECT_FALSE(static_cast<bool>(ch)); // NOLINT(bugprone-use-after-move)
    auto again = dragon::Channel::attach(other.descriptor(), dragon::WaitMode::idle);
    again.send_value(7);
    EXPECT_EQ(other.recv_value<int>(), 7);
    other.destroy();
    EXPECT_EQ(status_of([&] { again.send_value(1, 0ns); }), DRAGON_CLOSED);
}

TEST_F(SyncTest, ZeroCopyAcrossProcesses) {
    auto ch = dragon::Channel::create(pool_, 2, 64);
    auto desc = ch.descriptor();
    pid_t child = fork_child([&] {
        auto c = dragon::Channel::attach(desc);
        dragon::Allocation a = c.recv_mem(10s);
        if (a.size() != (1 << 20)) {
            return 2;
        }
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (a.as<unsigned char>()[i] != static_cast<unsigned char>(i * 3)) {
                return 3;
            }
        }
        return 0; // `a` frees the allocation here, in the receiving process
    });
    dragon::Allocation a = pool_.allocate(1 << 20);
    for (std::size_t i = 0; i < a.size(); ++i) {
        a.as<unsigned char>()[i] = static_cast<unsigned char>(i * 3);
    }
    ch.send(std::move(a), 1 << 20);
    // Ownership moved with the message.
    EXPECT_FALSE(static_cast<bool>(a)); // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(join_child(child), 0);
    ch.destroy();
}

TEST_F(SyncTest, ChannelSetWaitsOnMany) {
    auto a = dragon::Channel::create(pool_, 1, 16);
    auto b = dragon::Channel::create(pool_, 1, 16);
    dragon::ChannelSet set({&a, &b});
    EXPECT_FALSE(set.wait_readable(2ms).has_value());
    auto desc = b.descriptor();
    pid_t child = fork_child([&] {
        auto c = dragon::Channel::attach(desc);
        c.send_value(99);
        return 0;
    });
    auto ready = set.wait_readable(10s);
    ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(*ready, 1U);
    EXPECT_EQ(b.recv_value<int>(0ns), 99);
    EXPECT_EQ(join_child(child), 0);
    auto rev = set.wait(DRAGON_CHANNEL_WRITABLE, 0ns);
    ASSERT_TRUE(rev.has_value());
    EXPECT_EQ((*rev)[0], DRAGON_CHANNEL_WRITABLE);
    a.destroy();
    b.destroy();
}

TEST_F(SyncTest, QueueOfValuesAndOfBytes) {
    auto q = dragon::Queue<double>::create(pool_, 8);
    EXPECT_EQ(q.maxsize(), 8U);
    auto desc = q.descriptor();
    pid_t child = fork_child([&] {
        auto cq = dragon::Queue<double>::attach(desc);
        for (;;) {
            double v = cq.get(10s);
            cq.task_done();
            if (v < 0) {
                return 0;
            }
        }
    });
    for (int i = 0; i < 1000; ++i) {
        q.put(i * 0.5);
    }
    q.put(-1.0);
    EXPECT_TRUE(q.join(10s));
    EXPECT_EQ(join_child(child), 0);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.try_get(1ms).has_value());
    q.destroy();

    auto bq = dragon::Queue<std::string>::create(pool_, 4);
    bq.put("short");
    bq.put(std::string(3000, 'z')); // larger than a slot
    EXPECT_EQ(bq.get(0ns), "short");
    EXPECT_EQ(bq.get(0ns), std::string(3000, 'z'));
    EXPECT_EQ(status_of([&] {
                  bq.task_done();
                  bq.task_done();
                  bq.task_done();
              }),
              DRAGON_INVALID_ARGUMENT);
    bq.destroy();
}

// Issue 12, bug 2: a Queue<double> attached to a Queue<int>'s descriptor used to take the
// int and then throw "an item of the wrong size": the item was lost. The attach is refused
// now, and the int is still there for a Queue<int>.
TEST_F(SyncTest, QueueOfAnotherItemTypeIsRefusedAndLosesNothing) {
    auto iq = dragon::Queue<int>::create(pool_, 4);
    iq.put(7);
    auto desc = iq.descriptor();
    std::string msg;
    try {
        (void)dragon::Queue<double>::attach(desc);
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_INVALID_ARGUMENT);
        msg = e.what();
    }
    EXPECT_NE(msg.find("items of 4 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nothing was taken"), std::string::npos) << msg;
    // Same size, another type: refused too.
    EXPECT_EQ(status_of([&] { (void)dragon::Queue<float>::attach(desc); }),
              DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { (void)dragon::Queue<std::string>::attach(desc); }),
              DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(iq.size(), 1U);
    auto same = dragon::Queue<int>::attach(desc);
    EXPECT_EQ(same.get(0ns), 7);

    // A queue of byte buffers is not a queue of values either.
    auto sq = dragon::Queue<std::string>::create(pool_, 4);
    sq.put("abcd");
    EXPECT_EQ(status_of([&] { (void)dragon::Queue<int>::attach(sq.descriptor()); }),
              DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(sq.get(0ns), "abcd");

    // From C, a put of the wrong size into a typed queue is refused before it is queued.
    long wide = 1;
    EXPECT_EQ(dragon_queue_put(iq.handle(), &wide, sizeof wide, 0), DRAGON_INVALID_ARGUMENT);
    EXPECT_TRUE(iq.empty());
    sq.destroy();
    iq.destroy();
}

TEST_F(SyncTest, LockIsBasicLockableAndReportsDeadOwner) {
    auto lock = dragon::Lock::create(pool_);
    {
        std::lock_guard<dragon::Lock> g(lock);
        EXPECT_TRUE(lock.locked());
        EXPECT_FALSE(lock.try_lock());
    }
    EXPECT_FALSE(lock.locked());
    auto desc = lock.descriptor();
    pid_t child = fork_child([&] {
        auto l = dragon::Lock::attach(desc);
        l.lock();
        return 0; // exits holding the lock
    });
    EXPECT_EQ(join_child(child), 0);
    EXPECT_EQ(lock.acquire(10s), DRAGON_OWNER_DIED);
    EXPECT_TRUE(lock.owner_died());
    lock.release();
    EXPECT_EQ(lock.acquire(0ns), DRAGON_SUCCESS);
    EXPECT_FALSE(lock.owner_died());
    lock.release();
    lock.destroy();

    auto rlock = dragon::Lock::create(pool_, true);
    rlock.lock();
    rlock.lock();
    rlock.unlock();
    EXPECT_TRUE(rlock.locked());
    rlock.unlock();
    EXPECT_FALSE(rlock.locked());
    rlock.destroy();
}

TEST_F(SyncTest, SemaphoreEventBarrier) {
    auto sem = dragon::Semaphore::create(pool_, 1, true);
    EXPECT_TRUE(sem.acquire(0ns));
    EXPECT_FALSE(sem.acquire(1ms));
    sem.release();
    EXPECT_EQ(status_of([&] { sem.release(); }), DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(sem.value(), 1U);

    auto ev = dragon::Event::create(pool_);
    auto barrier = dragon::Barrier::create(pool_, 3);
    EXPECT_EQ(barrier.parties(), 3U);
    auto ed = ev.descriptor();
    auto bd = barrier.descriptor();
    pid_t kids[2];
    for (pid_t &k : kids) {
        k = fork_child([&] {
            auto e = dragon::Event::attach(ed);
            auto b = dragon::Barrier::attach(bd);
            if (!e.wait(10s)) {
                return 2;
            }
            return b.wait(10s) < 3 ? 0 : 3;
        });
    }
    EXPECT_FALSE(ev.wait(1ms));
    ev.set();
    EXPECT_TRUE(ev.is_set());
    EXPECT_LT(barrier.wait(10s), 3U);
    for (pid_t k : kids) {
        EXPECT_EQ(join_child(k), 0);
    }
    EXPECT_EQ(status_of([&] { barrier.wait(1ms); }), DRAGON_TIMEOUT);
    EXPECT_TRUE(barrier.broken());
    EXPECT_EQ(status_of([&] { barrier.wait(1ms); }), DRAGON_BROKEN);
    barrier.reset();
    EXPECT_FALSE(barrier.broken());
    barrier.abort();
    EXPECT_EQ(status_of([&] { barrier.wait(); }), DRAGON_BROKEN);
    sem.destroy();
    ev.destroy();
    barrier.destroy();
}

} // namespace
