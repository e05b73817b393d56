// Thread caches of a pool (docs/pool.md, "Thread caches") under threads: many threads with
// random sizes never get overlapping blocks; other live threads' caches are counted as free
// and come back when their threads exit or the handle they used is detached; a thread using
// more pools than its table holds, and more threads than the pool has cache slots, work and
// leave nothing behind; a forked child with the parent's caches warm allocates its own.
#include <dragon/dragon.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

std::string runtime_id() {
    static const std::string id = [] {
        std::string r = "tcache" + std::to_string(getpid());
        setenv("DRAGON_RUNTIME_ID", r.c_str(), 1);
        return r;
    }();
    return id;
}

dragon_pool_stats_t stats_of(dragon_pool_t *pool) {
    dragon_pool_stats_t s{};
    s.struct_size = sizeof s;
    EXPECT_EQ(dragon_pool_stats(pool, &s), DRAGON_SUCCESS) << dragon_last_error();
    return s;
}

void expect_empty(dragon_pool_t *pool) {
    dragon_pool_stats_t s = stats_of(pool);
    EXPECT_EQ(s.allocation_count, 0u);
    EXPECT_EQ(s.free_bytes, s.total_bytes);
}

dragon_pool_t *make_pool(const char *name, size_t size) {
    runtime_id();
    dragon_pool_t *pool = nullptr;
    EXPECT_EQ(dragon_pool_create(name, size, nullptr, &pool), DRAGON_SUCCESS)
        << dragon_last_error();
    return pool;
}

// Stamp a block with a value that is unique to (thread, block).
uint32_t stamp(int thread, const void *p) {
    return static_cast<uint32_t>(thread * 1000003U) ^
           static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
}

TEST(PoolCache, ThreadsNeverShareBlocks) {
    dragon_pool_t *pool = make_pool("threads", 8 << 20);
    std::atomic<int> overwritten{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
            std::vector<std::pair<uint32_t *, size_t>> live;
            uint64_t r = 88172645463325252ULL + static_cast<uint64_t>(t);
            for (int i = 0; i < 50000; ++i) {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                if (!live.empty() && (r & 1) != 0) {
                    size_t k = (r >> 8) % live.size();
                    auto [p, n] = live[k];
                    for (size_t w = 0; w < n / 4; ++w) {
                        overwritten += p[w] != stamp(t, p) ? 1 : 0;
                    }
                    failed += dragon_pool_free(pool, p) != DRAGON_SUCCESS ? 1 : 0;
                    live[k] = live.back();
                    live.pop_back();
                } else if (live.size() < 200) {
                    size_t n = 4 + ((r >> 16) % 4000) / 4 * 4;
                    void *q = nullptr;
                    if (dragon_pool_alloc(pool, n, &q) != DRAGON_SUCCESS) {
                        continue;
                    }
                    auto *p = static_cast<uint32_t *>(q);
                    for (size_t w = 0; w < n / 4; ++w) {
                        p[w] = stamp(t, p);
                    }
                    live.emplace_back(p, n);
                }
            }
            for (auto [p, n] : live) {
                failed += dragon_pool_free(pool, p) != DRAGON_SUCCESS ? 1 : 0;
            }
        });
    }
    for (auto &t : threads) {
        t.join();
    }
    EXPECT_EQ(overwritten.load(), 0);
    EXPECT_EQ(failed.load(), 0);
    expect_empty(pool); // every thread's cache went back when it exited
    EXPECT_EQ(stats_of(pool).cached_bytes, 0u);
    EXPECT_EQ(stats_of(pool).largest_free_block, 8u << 20);
    EXPECT_EQ(dragon_pool_destroy(pool), DRAGON_SUCCESS);
}

TEST(PoolCache, LiveThreadsCountedDetachReturns) {
    dragon_pool_t *pool = make_pool("detach", 8 << 20);
    dragon_pool_t *other = nullptr;
    ASSERT_EQ(dragon_pool_attach("detach", nullptr, &other), DRAGON_SUCCESS);
    std::atomic<int> warm{0};
    std::atomic<bool> go{false};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            void *a[50];
            for (auto &x : a) {
                failed += dragon_pool_alloc(other, 64, &x) != DRAGON_SUCCESS ? 1 : 0;
            }
            for (auto &x : a) {
                failed += dragon_pool_free(other, x) != DRAGON_SUCCESS ? 1 : 0;
            }
            warm++;
            while (!go.load()) {
                std::this_thread::yield();
            }
            void *q = nullptr; // the other handle still works
            failed += dragon_pool_alloc(pool, 100, &q) != DRAGON_SUCCESS ? 1 : 0;
            failed += dragon_pool_free(pool, q) != DRAGON_SUCCESS ? 1 : 0;
        });
    }
    while (warm.load() < 4) {
        std::this_thread::yield();
    }
    expect_empty(pool);
    EXPECT_GE(stats_of(pool).cached_bytes, 4u * 50 * 64);
    ASSERT_EQ(dragon_pool_detach(other), DRAGON_SUCCESS);
    EXPECT_EQ(stats_of(pool).cached_bytes, 0u);
    EXPECT_EQ(stats_of(pool).largest_free_block, 8u << 20);
    go = true;
    for (auto &t : threads) {
        t.join();
    }
    EXPECT_EQ(failed.load(), 0);
    expect_empty(pool);
    EXPECT_EQ(dragon_pool_destroy(pool), DRAGON_SUCCESS);
}

TEST(PoolCache, MorePoolsThanTheTableHolds) {
    std::vector<dragon_pool_t *> pools;
    for (int i = 0; i < 10; ++i) {
        pools.push_back(make_pool(("evict" + std::to_string(i)).c_str(), 1 << 20));
    }
    for (int round = 0; round < 500; ++round) {
        for (dragon_pool_t *p : pools) {
            void *q = nullptr;
            ASSERT_EQ(dragon_pool_alloc(p, 64, &q), DRAGON_SUCCESS);
            ASSERT_EQ(dragon_pool_free(p, q), DRAGON_SUCCESS);
        }
    }
    for (dragon_pool_t *p : pools) {
        expect_empty(p);
        EXPECT_EQ(stats_of(p).largest_free_block, 1u << 20);
        EXPECT_EQ(dragon_pool_destroy(p), DRAGON_SUCCESS);
    }
}

TEST(PoolCache, MoreThreadsThanSlots) {
    dragon_pool_t *pool = make_pool("slots", 8 << 20);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 150; ++t) { // the header has 128 slots
        threads.emplace_back([&] {
            void *q = nullptr;
            failed += dragon_pool_alloc(pool, 64, &q) != DRAGON_SUCCESS ? 1 : 0;
            failed += dragon_pool_free(pool, q) != DRAGON_SUCCESS ? 1 : 0;
            ready++;
            while (!go.load()) {
                std::this_thread::yield();
            }
        });
    }
    while (ready.load() < 150) {
        std::this_thread::yield();
    }
    expect_empty(pool);
    go = true;
    for (auto &t : threads) {
        t.join();
    }
    EXPECT_EQ(failed.load(), 0);
    expect_empty(pool);
    EXPECT_EQ(stats_of(pool).cached_bytes, 0u);
    EXPECT_EQ(dragon_pool_destroy(pool), DRAGON_SUCCESS);
}

TEST(PoolCache, ForkedChildAllocatesItsOwn) {
    dragon_pool_t *pool = make_pool("fork", 8 << 20);
    void *warm[100];
    for (auto &x : warm) {
        ASSERT_EQ(dragon_pool_alloc(pool, 64, &x), DRAGON_SUCCESS);
    }
    for (auto &x : warm) {
        ASSERT_EQ(dragon_pool_free(pool, x), DRAGON_SUCCESS);
    }
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        bool ok = true;
        for (int i = 0; i < 2000 && ok; ++i) {
            void *q = nullptr;
            ok = dragon_pool_alloc(pool, 64, &q) == DRAGON_SUCCESS;
            if (ok) {
                std::memset(q, 0x11, 64);
                ok = dragon_pool_free(pool, q) == DRAGON_SUCCESS;
            }
        }
        ok = ok && dragon_pool_detach(pool) == DRAGON_SUCCESS;
        _exit(ok ? 0 : 1);
    }
    int clobbered = 0;
    for (int i = 0; i < 2000; ++i) {
        void *q = nullptr;
        ASSERT_EQ(dragon_pool_alloc(pool, 64, &q), DRAGON_SUCCESS);
        std::memset(q, 0x22, 64);
        for (int k = 0; k < 1000; ++k) { // give the child time to write into it if it could
            __asm__ volatile("" ::: "memory");
        }
        for (int b = 0; b < 64; ++b) {
            clobbered += static_cast<unsigned char *>(q)[b] != 0x22 ? 1 : 0;
        }
        ASSERT_EQ(dragon_pool_free(pool, q), DRAGON_SUCCESS);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(clobbered, 0);
    expect_empty(pool);
    EXPECT_EQ(dragon_pool_destroy(pool), DRAGON_SUCCESS);
}

TEST(PoolCache, NothingLeftInDevShm) {
    for (const auto &e : std::filesystem::directory_iterator("/dev/shm")) {
        EXPECT_NE(e.path().filename().string().rfind("dragon." + runtime_id() + ".", 0), 0u)
            << "left behind: " << e.path();
    }
}

} // namespace
