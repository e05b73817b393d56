// A DDict manager's store (store.hpp, docs/ddict.md).
#include "store.hpp"

#include "hash.hpp"

#include "../common/error.hpp"
#include "../pool/internal.hpp"

#include <cstring>

using dragon::detail::fail;
using dragon::detail::wrap;

namespace dragon::ddict {

namespace {
constexpr uint64_t kTableMagic = 0x5444434944444441ULL; // "ADDDICDT"
// A slot's `stored`: 0 empty, 1 a removed key (probing goes on), else heap offset + 2.
constexpr uint64_t kEmpty = 0;
constexpr uint64_t kRemoved = 1;
} // namespace

struct Store::Table {
    uint64_t magic;
    uint64_t n_slots; // a power of two
    uint64_t count;   // keys
    uint64_t removed; // slots marked kRemoved
    struct Slot {
        uint64_t hash;
        uint64_t stored;
    } slots[1];

    static size_t bytes(uint64_t n) { return offsetof(Table, slots) + n * sizeof(Slot); }
};

struct Store::Entry {
    uint64_t hash;
    uint64_t key_len;
    uint64_t value_len;
    unsigned char *key() { return reinterpret_cast<unsigned char *>(this + 1); }
    unsigned char *value() { return key() + key_len; }
};

Store::Table *Store::table() const {
    return reinterpret_cast<Table *>(base_ + table_off_);
}

Store::Entry *Store::entry_at(uint64_t stored) const {
    return reinterpret_cast<Entry *>(base_ + (stored - 2));
}

dragon_status_t Store::no_room(const char *what, size_t bytes) const {
    dragon_pool_stats_t s{};
    s.struct_size = sizeof s;
    dragon_pool_stats(pool_, &s);
    return fail(DRAGON_NO_SPACE,
                "ddict manager '%s' is full: no room for %s of %zu bytes (%llu of %llu bytes "
                "free); nothing stored was changed",
                manager_.c_str(), what, bytes, static_cast<unsigned long long>(s.free_bytes),
                static_cast<unsigned long long>(s.total_bytes));
}

dragon_status_t Store::create(dragon_pool_t *pool, std::string manager, size_t slots, Store **out) {
    if (pool == nullptr || out == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict store: no pool");
    }
    uint64_t n = 16;
    while (n < slots && n < (1ULL << 40)) {
        n <<= 1;
    }
    auto *s = new Store();
    s->pool_ = pool;
    s->manager_ = std::move(manager);
    s->base_ = pool::heap_base_of(pool);
    void *t = nullptr;
    if (dragon_pool_alloc(pool, Table::bytes(n), &t) != DRAGON_SUCCESS) {
        dragon_status_t st = s->no_room("its table", Table::bytes(n));
        delete s;
        return st;
    }
    std::memset(t, 0, Table::bytes(n));
    auto *table = static_cast<Table *>(t);
    table->magic = kTableMagic;
    table->n_slots = n;
    s->table_off_ = static_cast<uint64_t>(static_cast<uint8_t *>(t) - s->base_);
    *out = s;
    return DRAGON_SUCCESS;
}

Store::~Store() {
    clear();
    dragon_pool_free(pool_, table());
}

long Store::find(const Table *t, uint64_t hash, const void *key, size_t key_len,
                 bool *found) const {
    *found = false;
    uint64_t mask = t->n_slots - 1;
    long first_removed = -1;
    for (uint64_t i = 0, at = hash & mask; i < t->n_slots; ++i, at = (at + 1) & mask) {
        const Table::Slot &slot = t->slots[at];
        if (slot.stored == kEmpty) {
            return first_removed >= 0 ? first_removed : static_cast<long>(at);
        }
        if (slot.stored == kRemoved) {
            if (first_removed < 0) {
                first_removed = static_cast<long>(at);
            }
            continue;
        }
        if (slot.hash == hash) {
            Entry *e = entry_at(slot.stored);
            if (e->key_len == key_len && std::memcmp(e->key(), key, key_len) == 0) {
                *found = true;
                return static_cast<long>(at);
            }
        }
    }
    return first_removed;
}

dragon_status_t Store::grow() {
    Table *old = table();
    uint64_t n = old->n_slots * 2;
    void *t = nullptr;
    if (dragon_pool_alloc(pool_, Table::bytes(n), &t) != DRAGON_SUCCESS) {
        return no_room("a larger table", Table::bytes(n));
    }
    std::memset(t, 0, Table::bytes(n));
    auto *table = static_cast<Table *>(t);
    table->magic = kTableMagic;
    table->n_slots = n;
    for (uint64_t i = 0; i < old->n_slots; ++i) {
        const Table::Slot &slot = old->slots[i];
        if (slot.stored <= kRemoved) {
            continue;
        }
        for (uint64_t at = slot.hash & (n - 1);; at = (at + 1) & (n - 1)) {
            if (table->slots[at].stored == kEmpty) {
                table->slots[at] = slot;
                break;
            }
        }
    }
    table->count = old->count;
    table_off_ = static_cast<uint64_t>(static_cast<uint8_t *>(t) - base_);
    dragon_pool_free(pool_, old);
    return DRAGON_SUCCESS;
}

dragon_status_t Store::put(const void *key, size_t key_len, const void *value, size_t value_len) {
    if (key == nullptr || key_len == 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict manager '%s': an empty key", manager_.c_str());
    }
    if (value == nullptr && value_len != 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict manager '%s': no value bytes",
                    manager_.c_str());
    }
    Table *t = table();
    // Room in the table first (at most 70% of slots taken, removed ones counted).
    if ((t->count + t->removed + 1) * 10 > t->n_slots * 7) {
        if (dragon_status_t st = grow(); st != DRAGON_SUCCESS) {
            return st;
        }
        t = table();
    }
    uint64_t hash = key_hash(key, key_len);
    size_t bytes = sizeof(Entry) + key_len + value_len;
    void *block = nullptr;
    if (dragon_pool_alloc(pool_, bytes, &block) != DRAGON_SUCCESS) {
        return no_room("a key and value", bytes);
    }
    auto *e = static_cast<Entry *>(block);
    e->hash = hash;
    e->key_len = key_len;
    e->value_len = value_len;
    std::memcpy(e->key(), key, key_len);
    if (value_len != 0) {
        std::memcpy(e->value(), value, value_len);
    }
    bool found = false;
    long at = find(t, hash, key, key_len, &found);
    if (at < 0) { // cannot happen below 70% load; refuse rather than lose anything
        dragon_pool_free(pool_, block);
        return fail(DRAGON_INTERNAL, "ddict manager '%s': its table has no free slot",
                    manager_.c_str());
    }
    Table::Slot &slot = t->slots[at];
    uint64_t stored = static_cast<uint64_t>(static_cast<uint8_t *>(block) - base_) + 2;
    if (found) {
        Entry *old = entry_at(slot.stored);
        slot.stored = stored;
        dragon_pool_free(pool_, old);
        return DRAGON_SUCCESS;
    }
    if (slot.stored == kRemoved) {
        --t->removed;
    }
    slot.hash = hash;
    slot.stored = stored;
    ++t->count;
    return DRAGON_SUCCESS;
}

dragon_status_t Store::get(const void *key, size_t key_len, const void **value,
                           size_t *value_len) const {
    bool found = false;
    long at = find(table(), key_hash(key, key_len), key, key_len, &found);
    if (!found) {
        return fail(DRAGON_NOT_FOUND, "ddict manager '%s': no such key", manager_.c_str());
    }
    Entry *e = entry_at(table()->slots[at].stored);
    *value = e->value();
    *value_len = e->value_len;
    return DRAGON_SUCCESS;
}

dragon_status_t Store::erase(const void *key, size_t key_len) {
    Table *t = table();
    bool found = false;
    long at = find(t, key_hash(key, key_len), key, key_len, &found);
    if (!found) {
        return fail(DRAGON_NOT_FOUND, "ddict manager '%s': no such key", manager_.c_str());
    }
    Table::Slot &slot = t->slots[at];
    dragon_pool_free(pool_, entry_at(slot.stored));
    slot.stored = kRemoved;
    --t->count;
    ++t->removed;
    return DRAGON_SUCCESS;
}

bool Store::contains(const void *key, size_t key_len) const {
    bool found = false;
    find(table(), key_hash(key, key_len), key, key_len, &found);
    return found;
}

size_t Store::size() const {
    return table()->count;
}

size_t Store::table_slots() const {
    return table()->n_slots;
}

void Store::clear() {
    Table *t = table();
    for (uint64_t i = 0; i < t->n_slots; ++i) {
        if (t->slots[i].stored > kRemoved) {
            dragon_pool_free(pool_, entry_at(t->slots[i].stored));
        }
        t->slots[i] = Table::Slot{0, kEmpty};
    }
    t->count = 0;
    t->removed = 0;
}

size_t Store::keys(size_t cursor, size_t max, std::vector<std::string> *out) const {
    const Table *t = table();
    size_t i = cursor;
    for (; i < t->n_slots && max > 0; ++i) {
        if (t->slots[i].stored > kRemoved) {
            Entry *e = entry_at(t->slots[i].stored);
            out->emplace_back(reinterpret_cast<const char *>(e->key()), e->key_len);
            --max;
        }
    }
    return i >= t->n_slots ? 0 : i;
}

} // namespace dragon::ddict
