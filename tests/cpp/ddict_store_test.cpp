// A DDict manager's store over a real pool: put/get/replace/erase/contains/size/clear, keys in
// batches, growth, and a full pool that refuses a put naming the manager, losing nothing.
#include "ddict/store.hpp"

#include <dragon/pool.h>

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

namespace dd = dragon::ddict;

namespace {

struct PoolFixture : ::testing::Test {
    dragon_pool_t *pool = nullptr;
    dd::Store *store = nullptr;
    void make(size_t bytes, size_t slots = 16) {
        static int seq = 0;
        std::string name = "ddict-store-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
        ASSERT_EQ(dragon_pool_create(name.c_str(), bytes, nullptr, &pool), DRAGON_SUCCESS)
            << dragon_last_error();
        ASSERT_EQ(dd::Store::create(pool, "m0", slots, &store), DRAGON_SUCCESS)
            << dragon_last_error();
    }
    void TearDown() override {
        delete store;
        if (pool != nullptr) {
            dragon_pool_destroy(pool);
        }
    }
    std::string get(const std::string &k) {
        const void *v = nullptr;
        size_t n = 0;
        if (store->get(k.data(), k.size(), &v, &n) != DRAGON_SUCCESS) {
            return "<none>";
        }
        return std::string(static_cast<const char *>(v), n);
    }
    dragon_status_t put(const std::string &k, const std::string &v) {
        return store->put(k.data(), k.size(), v.data(), v.size());
    }
};

} // namespace

TEST_F(PoolFixture, PutGetReplaceErase) {
    make(1 << 20);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(put("a", "1"), DRAGON_SUCCESS);
    EXPECT_EQ(put("b", ""), DRAGON_SUCCESS); // a zero-length value is a value
    EXPECT_EQ(get("a"), "1");
    EXPECT_EQ(get("b"), "");
    EXPECT_EQ(put("a", "one, replaced"), DRAGON_SUCCESS);
    EXPECT_EQ(get("a"), "one, replaced");
    EXPECT_EQ(store->size(), 2u);
    EXPECT_TRUE(store->contains("b", 1));
    EXPECT_EQ(store->erase("b", 1), DRAGON_SUCCESS);
    EXPECT_FALSE(store->contains("b", 1));
    EXPECT_EQ(store->erase("b", 1), DRAGON_NOT_FOUND);
    const void *v = nullptr;
    size_t n = 0;
    EXPECT_EQ(store->get("zz", 2, &v, &n), DRAGON_NOT_FOUND);
    EXPECT_EQ(store->put("", 0, "x", 1), DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(store->size(), 1u);
}

TEST_F(PoolFixture, GrowsAndKeepsEveryKeyAcrossRemovals) {
    make(8 << 20, 16);
    ASSERT_FALSE(HasFatalFailure());
    for (int i = 0; i < 5000; ++i) {
        ASSERT_EQ(put("key" + std::to_string(i), "value" + std::to_string(i)), DRAGON_SUCCESS)
            << dragon_last_error();
        if (i % 3 == 0) {
            ASSERT_EQ(store->erase(("key" + std::to_string(i)).data(),
                                   ("key" + std::to_string(i)).size()),
                      DRAGON_SUCCESS);
        }
    }
    EXPECT_GE(store->table_slots(), 4096u);
    size_t expect = 0;
    for (int i = 0; i < 5000; ++i) {
        if (i % 3 == 0) {
            EXPECT_EQ(get("key" + std::to_string(i)), "<none>");
        } else {
            EXPECT_EQ(get("key" + std::to_string(i)), "value" + std::to_string(i));
            ++expect;
        }
    }
    EXPECT_EQ(store->size(), expect);
    // Every key once, in batches of 100.
    std::set<std::string> seen;
    size_t cursor = 0;
    do {
        std::vector<std::string> batch;
        cursor = store->keys(cursor, 100, &batch);
        EXPECT_LE(batch.size(), 100u);
        for (auto &k : batch) {
            EXPECT_TRUE(seen.insert(k).second) << k;
        }
    } while (cursor != 0);
    EXPECT_EQ(seen.size(), expect);
    store->clear();
    EXPECT_EQ(store->size(), 0u);
    EXPECT_EQ(get("key1"), "<none>");
}

TEST_F(PoolFixture, AFullManagerRefusesAPutNamingItselfAndLosesNothing) {
    make(1 << 20);
    ASSERT_FALSE(HasFatalFailure());
    std::string big(size_t{64} * 1024, 'v');
    int stored = 0;
    dragon_status_t st = DRAGON_SUCCESS;
    for (; stored < 1000; ++stored) {
        st = put("k" + std::to_string(stored), big);
        if (st != DRAGON_SUCCESS) {
            break;
        }
    }
    ASSERT_EQ(st, DRAGON_NO_SPACE);
    EXPECT_NE(std::string(dragon_last_error()).find("ddict manager 'm0' is full"),
              std::string::npos)
        << dragon_last_error();
    // A replacement that does not fit leaves the old value.
    ASSERT_GT(stored, 1);
    EXPECT_EQ(put("k0", std::string(size_t{512} * 1024, 'x')), DRAGON_NO_SPACE);
    for (int i = 0; i < stored; ++i) {
        EXPECT_EQ(get("k" + std::to_string(i)), big) << i;
    }
    EXPECT_EQ(store->size(), static_cast<size_t>(stored));
    // Room again after an erase.
    EXPECT_EQ(store->erase("k1", 2), DRAGON_SUCCESS);
    EXPECT_EQ(put("k1", big), DRAGON_SUCCESS);
}
