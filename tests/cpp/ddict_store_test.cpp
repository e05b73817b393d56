// A DDict manager's store over a real pool: put/get/replace/erase/contains/size/clear, keys in
// batches, growth, and a full pool that refuses a put naming the manager, losing nothing.
#include "ddict/store.hpp"
#include "ddict/wire.hpp"
#include "pool/internal.hpp"

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

TEST_F(PoolFixture, CheckpointsPersistentEntriesAndRetirement) {
    make(4 << 20);
    ASSERT_FALSE(HasFatalFailure());
    const void *v = nullptr;
    size_t n = 0;
    ASSERT_EQ(store->put("k", 1, "zero", 4, 0), DRAGON_SUCCESS);
    ASSERT_EQ(store->put("k", 1, "one", 3, 1), DRAGON_SUCCESS);
    ASSERT_EQ(store->put("p", 1, "pers", 4, dd::wire::kPersistent), DRAGON_SUCCESS);
    ASSERT_EQ(store->get("k", 1, &v, &n, 0), DRAGON_SUCCESS);
    EXPECT_EQ(std::string(static_cast<const char *>(v), n), "zero");
    ASSERT_EQ(store->get("k", 1, &v, &n, 1), DRAGON_SUCCESS);
    EXPECT_EQ(std::string(static_cast<const char *>(v), n), "one");
    EXPECT_EQ(store->get("k", 1, &v, &n, 2), DRAGON_NOT_FOUND); // no carrying forward
    ASSERT_EQ(store->get("p", 1, &v, &n, 7), DRAGON_SUCCESS);   // persistent: every checkpoint
    EXPECT_EQ(store->length(0), 2u);
    EXPECT_EQ(store->length(2), 1u);
    // A key with both a persistent entry and one of checkpoint 1 counts once there.
    ASSERT_EQ(store->put("p", 1, "p at 1", 6, 1), DRAGON_SUCCESS);
    EXPECT_EQ(store->length(1), 2u);
    std::vector<std::string> keys;
    EXPECT_EQ(store->keys(0, 100, &keys, 1), 0u);
    EXPECT_EQ(keys.size(), 2u);
    store->retire_below(1);
    EXPECT_FALSE(store->contains("k", 1, 0));
    EXPECT_TRUE(store->contains("k", 1, 1));
    EXPECT_TRUE(store->contains("p", 1, 0)); // persistent entries are never retired
    store->erase_exact("p", 1, 1);
    ASSERT_EQ(store->get("p", 1, &v, &n, 1), DRAGON_SUCCESS);
    EXPECT_EQ(std::string(static_cast<const char *>(v), n), "pers");
}

TEST_F(PoolFixture, BroadcastCopiesAreFoundButNotCountedOrListed) {
    make(1 << 20);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(store->put("own", 3, "a", 1), DRAGON_SUCCESS);
    ASSERT_EQ(store->put("copy", 4, "b", 1, 0, dd::kEntryCopy), DRAGON_SUCCESS);
    EXPECT_TRUE(store->contains("copy", 4));
    EXPECT_EQ(store->length(0), 1u);
    std::vector<std::string> keys;
    store->keys(0, 100, &keys);
    EXPECT_EQ(keys, std::vector<std::string>{"own"});
    EXPECT_EQ(store->size(), 2u); // entries, copies included (stats)
}

TEST_F(PoolFixture, ALeasedEntryIsFreedOnlyWhenItsReaderIsDone) {
    make(1 << 20);
    ASSERT_FALSE(HasFatalFailure());
    std::string big(200 * 1024, 'x');
    ASSERT_EQ(put("k", big), DRAGON_SUCCESS);
    const dd::Entry *e = store->find("k", 1, 0);
    ASSERT_NE(e, nullptr);
    dd::Store::lease(e);
    ASSERT_EQ(put("k", "small"), DRAGON_SUCCESS); // replaced while leased
    EXPECT_EQ(std::string(reinterpret_cast<const char *>(e->value()), e->value_len), big)
        << "a leased entry must stay readable";
    EXPECT_EQ(store->sweep(), 1u);
    __atomic_fetch_sub(&const_cast<dd::Entry *>(e)->readers, 1, __ATOMIC_ACQ_REL);
    EXPECT_EQ(store->sweep(), 0u);
    EXPECT_EQ(get("k"), "small");
}

TEST_F(PoolFixture, AnInPlaceReaderSurvivesGarbage) {
    make(1 << 20);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(put("k", "v"), DRAGON_SUCCESS);
    const uint8_t *base = dragon::pool::heap_base_of(pool);
    uint64_t heap = dragon::pool::heap_size_of(pool);
    const dd::Entry *e = dd::find_in_place(base, heap, store->root_offset(), "k", 1, 0);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->value_len, 1u);
    EXPECT_EQ(dd::find_in_place(base, heap, store->root_offset(), "z", 1, 0), nullptr);
    // A root offset that points anywhere (a stale or hostile one) yields nothing, never a fault.
    for (uint64_t off : {store->root_offset() + 8, store->root_offset() + 64, heap - 8, heap,
                         heap + 4096, ~uint64_t{0}}) {
        EXPECT_EQ(dd::find_in_place(base, heap, off, "k", 1, 0), nullptr) << off;
    }
}
