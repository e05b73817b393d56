// dragon::Pool and dragon::Allocation: RAII, move semantics, errors as dragon::Error.
#include <dragon/dragon.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

class PoolTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        runtime_ = "tcpp" + std::to_string(getpid());
        setenv("DRAGON_RUNTIME_ID", runtime_.c_str(), 1);
    }
    static std::string runtime_;
};
std::string PoolTest::runtime_;

dragon_status_t status_of(const std::function<void()> &f) {
    try {
        f();
    } catch (const dragon::Error &e) {
        return e.status();
    }
    return DRAGON_SUCCESS;
}

TEST_F(PoolTest, CreateAllocateDestroy) {
    auto pool = dragon::Pool::create("cpp-basic", 1 << 20);
    EXPECT_EQ(pool.name(), "cpp-basic");
    std::string seg = pool.segment_name();
    EXPECT_TRUE(std::filesystem::exists("/dev/shm" + seg));
    {
        auto a = pool.allocate(1000);
        ASSERT_TRUE(a);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, 0u);
        std::memset(a.data(), 1, a.size());
        EXPECT_EQ(pool.stats().allocation_count, 1u);
    } // freed here
    EXPECT_EQ(pool.stats().allocation_count, 0u);
    pool.destroy();
    EXPECT_FALSE(pool);
    EXPECT_FALSE(std::filesystem::exists("/dev/shm" + seg));
}

TEST_F(PoolTest, AllocationMovesAndReleases) {
    auto pool = dragon::Pool::create("cpp-move", 1 << 16);
    dragon::Allocation a = pool.allocate(64);
    void *p = a.data();
    dragon::Allocation b = std::move(a);
    EXPECT_FALSE(a); // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(b.data(), p);
    dragon::Allocation c;
    c = std::move(b);
    EXPECT_EQ(c.data(), p);
    EXPECT_EQ(pool.stats().allocation_count, 1u);

    // Released memory outlives the handle; adopt() takes it back by descriptor.
    auto d = c.descriptor();
    void *raw = c.release();
    EXPECT_EQ(raw, p);
    EXPECT_EQ(pool.stats().allocation_count, 1u);
    {
        dragon::Allocation back = pool.adopt(d);
        EXPECT_EQ(back.data(), p);
        EXPECT_EQ(back.size(), 64u);
    }
    EXPECT_EQ(pool.stats().allocation_count, 0u);

    // Freeing twice is an error the wrapper reports, not a crash.
    auto e = pool.allocate(64);
    void *again = e.data();
    e.free();
    EXPECT_EQ(dragon_pool_free(pool.handle(), again), DRAGON_NOT_ALLOCATED);
    pool.destroy();
}

TEST_F(PoolTest, ErrorsCarryStatusAndDetail) {
    auto pool = dragon::Pool::create("cpp-errors", 4096);
    try {
        (void)pool.allocate(0);
        FAIL() << "allocate(0) did not throw";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("cpp-errors"), std::string::npos);
    }
    EXPECT_EQ(status_of([&] { (void)dragon::Pool::create("cpp-errors", 4096); }),
              DRAGON_ALREADY_EXISTS);
    EXPECT_EQ(status_of([&] { (void)dragon::Pool::attach("cpp-missing"); }), DRAGON_NOT_FOUND);
    EXPECT_EQ(status_of([&] {
                  (void)dragon::Pool::attach(std::vector<std::uint8_t>{1, 2, 3});
              }),
              DRAGON_BAD_DESCRIPTOR);

    auto all = pool.allocate(4096);
    EXPECT_EQ(status_of([&] { (void)pool.allocate(64); }), DRAGON_NO_SPACE);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(status_of([&] { (void)pool.allocate(64, std::chrono::milliseconds(20)); }),
              DRAGON_TIMEOUT);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(19));
    all.free();
    auto ok = pool.allocate(64, dragon::forever);
    EXPECT_TRUE(ok);
    ok.free();
    pool.destroy();
}

TEST_F(PoolTest, ShortOfDevShmSaysDevShm) {
    // A pool larger than /dev/shm: the error names /dev/shm, not the pool's room (issue 12,
    // item 9: "no space in pool" was printed). Larger than its whole size, not only than what
    // is free, so that the kernel refuses it at once instead of filling /dev/shm first.
    struct statvfs vfs {};
    ASSERT_EQ(statvfs("/dev/shm", &vfs), 0);
    std::size_t total = static_cast<std::size_t>(vfs.f_blocks) * vfs.f_frsize;
    try {
        (void)dragon::Pool::create("cpp-too-big", total + (std::size_t{1} << 30));
        FAIL() << "a pool larger than /dev/shm was created";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_NO_SPACE) << e.what();
        EXPECT_NE(std::string(e.what()).find("/dev/shm"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("no space in pool"), std::string::npos) << e.what();
    }
}

TEST_F(PoolTest, AttachByDescriptorAndOptions) {
    dragon::PoolOptions opts;
    opts.node_id = 3;
    opts.min_block = 256;
    auto pool = dragon::Pool::create("cpp-attach", 1 << 16, opts);
    EXPECT_NE(pool.segment_name().find(".3.pool."), std::string::npos);
    EXPECT_EQ(pool.stats().min_block, 256u);
    auto other = dragon::Pool::attach(pool.descriptor());
    auto by_name = dragon::Pool::attach("cpp-attach", opts);
    auto a = pool.allocate(10);
    std::strcpy(a.as<char>(), "hello");
    auto [p, n] = other.attach_memory(a.descriptor());
    EXPECT_STREQ(static_cast<char *>(p), "hello");
    EXPECT_EQ(n, 10u);
    // A memory descriptor attaches its pool too.
    auto via_memory = dragon::Pool::attach(a.descriptor());
    EXPECT_EQ(via_memory.name(), "cpp-attach");
    a.free();
    dragon::Pool moved = std::move(by_name);
    EXPECT_TRUE(moved);
    pool.destroy();
}

// A forked child allocates twice and exits without freeing; its parent adopts one.
TEST_F(PoolTest, ReclaimWhatADeadChildHeld) {
    auto pool = dragon::Pool::create("cpp-reclaim", 1 << 16);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        void *a = nullptr;
        void *b = nullptr;
        bool ok = dragon_pool_alloc(pool.handle(), 100, &a) == DRAGON_SUCCESS &&
                  dragon_pool_alloc(pool.handle(), 1000, &b) == DRAGON_SUCCESS;
        ssize_t n = ok ? write(fds[1], &b, sizeof b) : 0;
        _exit(n == static_cast<ssize_t>(sizeof b) ? 0 : 1);
    }
    close(fds[1]);
    void *kept = nullptr;
    ASSERT_EQ(read(fds[0], &kept, sizeof kept), static_cast<ssize_t>(sizeof kept));
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    EXPECT_EQ(status_of([&] { (void)pool.reclaim(getpid()); }), DRAGON_INVALID_ARGUMENT);
    dragon::Allocation own = pool.allocate(1); // this process's: unaffected
    std::vector<std::uint8_t> d;
    {
        dragon::Allocation view(pool.handle(), kept, 1000);
        d = view.descriptor();
        (void)view.release();
    }
    dragon::Allocation mine = pool.adopt(d);
    EXPECT_EQ(mine.data(), kept);
    dragon_pool_reclaimed_t r = pool.reclaim(child);
    EXPECT_EQ(r.blocks, 1u);
    EXPECT_EQ(r.bytes, 128u);
    EXPECT_EQ(pool.reclaim().blocks, 0u);
    EXPECT_EQ(pool.stats().allocation_count, 2u);
    mine.free();
    own.free();
    EXPECT_EQ(pool.stats().allocation_count, 0u);
    pool.destroy();
}

TEST_F(PoolTest, NothingLeftInDevShm) {
    for (const auto &e : std::filesystem::directory_iterator("/dev/shm")) {
        EXPECT_NE(e.path().filename().string().rfind("dragon." + runtime_ + ".", 0), 0u)
            << "left behind: " << e.path();
    }
}

} // namespace
