// A DDict manager's store (docs/ddict.md, "Where values live"): keys and values in the
// manager's own pool of shared memory, found through an open-addressing table that lies in the
// same pool. Only the manager changes it (no locks); positions are heap offsets, so a process
// that maps the pool can read a frozen store in place. A put that finds no room fails with
// DRAGON_NO_SPACE naming the manager and changes nothing.
#pragma once

#include <dragon/pool.h>
#include <dragon/status.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dragon::ddict {

class Store {
  public:
    // A store of at least `slots` table slots (a power of two is taken) in `pool`, which the
    // caller keeps attached; `manager` names it in messages.
    static dragon_status_t create(dragon_pool_t *pool, std::string manager, size_t slots,
                                  Store **out);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    // Insert or replace. An empty key is DRAGON_INVALID_ARGUMENT.
    dragon_status_t put(const void *key, size_t key_len, const void *value, size_t value_len);
    // A view of the value, valid until the next change: DRAGON_NOT_FOUND at once if absent.
    dragon_status_t get(const void *key, size_t key_len, const void **value,
                        size_t *value_len) const;
    // Remove; DRAGON_NOT_FOUND if absent.
    dragon_status_t erase(const void *key, size_t key_len);
    bool contains(const void *key, size_t key_len) const;
    size_t size() const;
    void clear();
    // Up to `max` keys from table position `cursor` on (0 to start); returns the cursor to
    // pass next, or 0 when the table was walked to its end.
    size_t keys(size_t cursor, size_t max, std::vector<std::string> *out) const;
    size_t table_slots() const;

  private:
    Store() = default;
    struct Table;
    struct Entry;
    Table *table() const;
    Entry *entry_at(uint64_t stored) const;
    // The slot that holds the key, or where it would go (-1: table full).
    long find(const Table *t, uint64_t hash, const void *key, size_t key_len, bool *found) const;
    dragon_status_t grow();
    dragon_status_t no_room(const char *what, size_t bytes) const;

    dragon_pool_t *pool_ = nullptr;
    std::string manager_;
    uint8_t *base_ = nullptr;
    uint64_t table_off_ = 0;
};

} // namespace dragon::ddict
