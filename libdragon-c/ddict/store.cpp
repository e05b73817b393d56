// A DDict manager's store (store.hpp, docs/ddict.md).
#include "store.hpp"

#include "hash.hpp"
#include "wire.hpp"

#include "../common/error.hpp"
#include "../pool/internal.hpp"

#include <algorithm>
#include <cstring>

using dragon::detail::fail;

namespace dragon::ddict {

Table *Store::table() const {
    const auto *root = reinterpret_cast<const Root *>(base_ + root_off_);
    return reinterpret_cast<Table *>(base_ + root->table);
}

Entry *Store::entry_at(uint64_t stored) const {
    return reinterpret_cast<Entry *>(base_ + (stored - 2));
}

uint64_t Store::offset_of(const void *p) const {
    return static_cast<uint64_t>(static_cast<const uint8_t *>(p) - base_);
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
    void *r = nullptr;
    void *t = nullptr;
    if (dragon_pool_alloc(pool, sizeof(Root), &r) != DRAGON_SUCCESS ||
        dragon_pool_alloc(pool, Table::bytes(n), &t) != DRAGON_SUCCESS) {
        dragon_status_t st = s->no_room("its table", Table::bytes(n));
        if (r != nullptr) {
            dragon_pool_free(pool, r);
        }
        delete s;
        return st;
    }
    std::memset(t, 0, Table::bytes(n));
    auto *table = static_cast<Table *>(t);
    table->magic = kTableMagic;
    table->n_slots = n;
    auto *root = static_cast<Root *>(r);
    root->magic = kRootMagic;
    root->layout = kLayout;
    root->state = 0;
    root->table = s->offset_of(t);
    root->floor = 0;
    s->root_off_ = s->offset_of(r);
    *out = s;
    return DRAGON_SUCCESS;
}

Store::~Store() {
    clear();
    while (sweep() != 0 && !released_.empty()) {
        // A reader that never gives its lease back (it died) must not keep the manager from
        // ending: the pool goes with it.
        released_.clear();
    }
    dragon_pool_free(pool_, table());
    dragon_pool_free(pool_, base_ + root_off_);
}

long Store::find_slot(const Table *t, uint64_t hash, const void *key, size_t key_len,
                      uint64_t checkpoint, bool *found) const {
    *found = false;
    uint64_t mask = t->n_slots - 1;
    long first_removed = -1;
    for (uint64_t i = 0, at = hash & mask; i < t->n_slots; ++i, at = (at + 1) & mask) {
        const Table::Slot &slot = t->slots[at];
        if (slot.stored == kSlotEmpty) {
            return first_removed >= 0 ? first_removed : static_cast<long>(at);
        }
        if (slot.stored == kSlotRemoved) {
            if (first_removed < 0) {
                first_removed = static_cast<long>(at);
            }
            continue;
        }
        if (slot.hash == hash) {
            const Entry *e = entry_at(slot.stored);
            if (e->checkpoint == checkpoint && e->key_len == key_len &&
                std::memcmp(e->key(), key, key_len) == 0) {
                *found = true;
                return static_cast<long>(at);
            }
        }
    }
    return first_removed;
}

dragon_status_t Store::grow(bool same_size) {
    Table *old = table();
    uint64_t n = same_size ? old->n_slots : old->n_slots * 2;
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
        if (slot.stored <= kSlotRemoved) {
            continue;
        }
        for (uint64_t at = slot.hash & (n - 1);; at = (at + 1) & (n - 1)) {
            if (table->slots[at].stored == kSlotEmpty) {
                table->slots[at] = slot;
                break;
            }
        }
    }
    table->count = old->count;
    auto *root = reinterpret_cast<Root *>(base_ + root_off_);
    // An in-place reader (frozen only) never sees this: the store is read-only while frozen.
    root->table = offset_of(t);
    dragon_pool_free(pool_, old);
    return DRAGON_SUCCESS;
}

dragon_status_t Store::room_for_one() {
    const Table *t = table();
    // At most 70% of slots taken, removed ones counted. When the markers of removed keys are
    // most of that, the table is rebuilt at its size (they go); else it doubles. Without
    // that, puts and pops of ever new keys would double it forever with no key in it.
    if ((t->count + t->removed + 1) * 10 > t->n_slots * 7) {
        return grow(t->removed > t->count);
    }
    return DRAGON_SUCCESS;
}

void Store::link(Entry *e) {
    Table *t = table();
    bool found = false;
    long at = find_slot(t, e->hash, e->key(), e->key_len, e->checkpoint, &found);
    Table::Slot &slot = t->slots[at];
    uint64_t stored = offset_of(e) + 2;
    bytes_ += e->key_len + e->value_len;
    if (found) {
        Entry *old = entry_at(slot.stored);
        bytes_ -= old->key_len + old->value_len;
        uncount(old);
        count(e);
        slot.stored = stored;
        release(old);
        return;
    }
    if (slot.stored == kSlotRemoved) {
        --t->removed;
    }
    slot.hash = e->hash;
    slot.stored = stored;
    ++t->count;
    count(e);
}

void Store::count(const Entry *e) {
    if ((e->flags & kEntryCopy) != 0) {
        return;
    }
    if (e->checkpoint == wire::kPersistent) {
        ++persistent_;
    } else {
        ++per_checkpoint_[e->checkpoint];
    }
}

void Store::uncount(const Entry *e) {
    if ((e->flags & kEntryCopy) != 0) {
        return;
    }
    if (e->checkpoint == wire::kPersistent) {
        --persistent_;
    } else if (auto it = per_checkpoint_.find(e->checkpoint); it != per_checkpoint_.end()) {
        if (--it->second == 0) {
            per_checkpoint_.erase(it);
        }
    }
}

dragon_status_t Store::put(const void *key, size_t key_len, const void *value, size_t value_len,
                           uint64_t checkpoint, uint32_t flags) {
    if (key == nullptr || key_len == 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict manager '%s': an empty key", manager_.c_str());
    }
    if (value == nullptr && value_len != 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict manager '%s': no value bytes",
                    manager_.c_str());
    }
    if (dragon_status_t st = room_for_one(); st != DRAGON_SUCCESS) {
        return st;
    }
    size_t bytes = sizeof(Entry) + key_len + value_len;
    void *block = nullptr;
    if (dragon_pool_alloc(pool_, bytes, &block) != DRAGON_SUCCESS) {
        return no_room("a key and value", bytes);
    }
    auto *e = static_cast<Entry *>(block);
    std::memcpy(e->key(), key, key_len);
    if (value_len != 0) {
        std::memcpy(e->key() + key_len, value, value_len);
    }
    dragon_status_t st = put_block(block, key_len, value_len, checkpoint, flags);
    if (st != DRAGON_SUCCESS) {
        dragon_pool_free(pool_, block);
    }
    return st;
}

dragon_status_t Store::put_block(void *block, size_t key_len, size_t value_len, uint64_t checkpoint,
                                 uint32_t flags) {
    if (key_len == 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict manager '%s': an empty key", manager_.c_str());
    }
    if (dragon_status_t st = room_for_one(); st != DRAGON_SUCCESS) {
        return st;
    }
    auto *e = static_cast<Entry *>(block);
    e->hash = key_hash(e->key(), key_len);
    e->key_len = key_len;
    e->value_len = value_len;
    e->checkpoint = checkpoint;
    e->readers = 0;
    e->flags = flags;
    e->reserved = 0;
    link(e);
    return DRAGON_SUCCESS;
}

const Entry *Store::find(const void *key, size_t key_len, uint64_t checkpoint) const {
    const Table *t = table();
    uint64_t hash = key_hash(key, key_len);
    bool found = false;
    long at = find_slot(t, hash, key, key_len, checkpoint, &found);
    if (!found && persistent_ != 0 && checkpoint != wire::kPersistent) {
        at = find_slot(t, hash, key, key_len, wire::kPersistent, &found);
    }
    return found ? entry_at(t->slots[at].stored) : nullptr;
}

dragon_status_t Store::get(const void *key, size_t key_len, const void **value, size_t *value_len,
                           uint64_t checkpoint) const {
    const Entry *e = find(key, key_len, checkpoint);
    if (e == nullptr) {
        return fail(DRAGON_NOT_FOUND, "ddict manager '%s': no such key", manager_.c_str());
    }
    *value = e->value();
    *value_len = e->value_len;
    return DRAGON_SUCCESS;
}

void Store::unlink_slot(Table *t, long at) {
    Table::Slot &slot = t->slots[at];
    Entry *e = entry_at(slot.stored);
    uncount(e);
    bytes_ -= e->key_len + e->value_len;
    slot.stored = kSlotRemoved;
    --t->count;
    ++t->removed;
}

Entry *Store::take(const void *key, size_t key_len, uint64_t checkpoint, bool exact) {
    Table *t = table();
    uint64_t hash = key_hash(key, key_len);
    bool found = false;
    long at = find_slot(t, hash, key, key_len, checkpoint, &found);
    if (!found && !exact && persistent_ != 0 && checkpoint != wire::kPersistent) {
        at = find_slot(t, hash, key, key_len, wire::kPersistent, &found);
    }
    if (!found) {
        return nullptr;
    }
    Entry *e = entry_at(t->slots[at].stored);
    unlink_slot(t, at);
    return e;
}

dragon_status_t Store::erase(const void *key, size_t key_len, uint64_t checkpoint) {
    Entry *e = take(key, key_len, checkpoint);
    if (e == nullptr) {
        return fail(DRAGON_NOT_FOUND, "ddict manager '%s': no such key", manager_.c_str());
    }
    release(e);
    return DRAGON_SUCCESS;
}

void Store::erase_exact(const void *key, size_t key_len, uint64_t checkpoint) {
    if (Entry *e = take(key, key_len, checkpoint, true); e != nullptr) {
        release(e);
    }
}

bool Store::contains(const void *key, size_t key_len, uint64_t checkpoint) const {
    return find(key, key_len, checkpoint) != nullptr;
}

void Store::lease(const Entry *e) {
    __atomic_fetch_add(&const_cast<Entry *>(e)->readers, 1, __ATOMIC_ACQ_REL);
}

void Store::release(Entry *e) {
    if (__atomic_load_n(&e->readers, __ATOMIC_ACQUIRE) == 0) {
        dragon_pool_free(pool_, e);
    } else {
        released_.push_back(e);
    }
}

size_t Store::sweep() {
    auto held = std::remove_if(released_.begin(), released_.end(), [this](Entry *e) {
        if (__atomic_load_n(&e->readers, __ATOMIC_ACQUIRE) != 0) {
            return false;
        }
        dragon_pool_free(pool_, e);
        return true;
    });
    released_.erase(held, released_.end());
    return released_.size();
}

size_t Store::length(uint64_t checkpoint) const {
    const Table *t = table();
    if (persistent_ == 0) {
        auto it = per_checkpoint_.find(checkpoint);
        return it == per_checkpoint_.end() ? 0 : it->second;
    }
    size_t n = 0;
    for_each([&](const Entry &e) {
        if ((e.flags & kEntryCopy) != 0) {
            return;
        }
        if (e.checkpoint == checkpoint) {
            ++n;
        } else if (e.checkpoint == wire::kPersistent) {
            // Counted once: only when the key has no entry of this checkpoint.
            bool shadowed = false;
            find_slot(t, e.hash, e.key(), e.key_len, checkpoint, &shadowed);
            n += shadowed ? 0 : 1;
        }
    });
    return n;
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
        if (t->slots[i].stored > kSlotRemoved) {
            release(entry_at(t->slots[i].stored));
        }
        t->slots[i] = Table::Slot{0, kSlotEmpty};
    }
    t->count = 0;
    t->removed = 0;
    bytes_ = 0;
    persistent_ = 0;
    per_checkpoint_.clear();
}

void Store::retire_below(uint64_t floor) {
    Table *t = table();
    for (uint64_t i = 0; i < t->n_slots; ++i) {
        if (t->slots[i].stored <= kSlotRemoved) {
            continue;
        }
        Entry *e = entry_at(t->slots[i].stored);
        if (e->checkpoint != wire::kPersistent && e->checkpoint < floor) {
            unlink_slot(t, static_cast<long>(i));
            release(e);
        }
    }
}

size_t Store::keys(size_t cursor, size_t max, std::vector<std::string> *out, uint64_t checkpoint,
                   size_t budget) const {
    const Table *t = table();
    size_t i = cursor;
    size_t bytes = 0;
    for (; i < t->n_slots && max > 0; ++i) {
        if (t->slots[i].stored <= kSlotRemoved) {
            continue;
        }
        const Entry *e = entry_at(t->slots[i].stored);
        if ((e->flags & kEntryCopy) != 0) {
            continue;
        }
        bool visible = e->checkpoint == checkpoint;
        if (!visible && e->checkpoint == wire::kPersistent) {
            bool shadowed = false;
            find_slot(t, e->hash, e->key(), e->key_len, checkpoint, &shadowed);
            visible = !shadowed;
        }
        if (!visible) {
            continue;
        }
        if (bytes != 0 && bytes + 4 + e->key_len > budget) {
            break;
        }
        out->emplace_back(reinterpret_cast<const char *>(e->key()), e->key_len);
        bytes += 4 + e->key_len;
        --max;
    }
    return i >= t->n_slots ? 0 : i;
}

void Store::set_frozen(bool frozen) {
    auto *root = reinterpret_cast<Root *>(base_ + root_off_);
    uint64_t s = __atomic_load_n(&root->state, __ATOMIC_ACQUIRE);
    if (((s & 1) != 0) != frozen) {
        __atomic_store_n(&root->state, s + 1, __ATOMIC_RELEASE);
    }
}

void Store::set_floor(uint64_t floor) {
    __atomic_store_n(&reinterpret_cast<Root *>(base_ + root_off_)->floor, floor, __ATOMIC_RELEASE);
}

bool Store::frozen() const {
    const auto *root = reinterpret_cast<const Root *>(base_ + root_off_);
    return (__atomic_load_n(&root->state, __ATOMIC_ACQUIRE) & 1) != 0;
}

} // namespace dragon::ddict

namespace dragon::ddict {

const Entry *find_in_place(const uint8_t *base, uint64_t heap_bytes, uint64_t root_off,
                           const void *key, size_t key_len, uint64_t checkpoint) {
    if (root_off > heap_bytes || heap_bytes - root_off < sizeof(Root)) {
        return nullptr;
    }
    const auto *root = reinterpret_cast<const Root *>(base + root_off);
    uint64_t toff = root->table;
    if (root->magic != kRootMagic || toff > heap_bytes ||
        heap_bytes - toff < offsetof(Table, slots)) {
        return nullptr;
    }
    const auto *t = reinterpret_cast<const Table *>(base + toff);
    uint64_t n = t->n_slots;
    if (t->magic != kTableMagic || n == 0 || (n & (n - 1)) != 0 ||
        (heap_bytes - toff - offsetof(Table, slots)) / sizeof(Table::Slot) < n) {
        return nullptr;
    }
    uint64_t hash = key_hash(key, key_len);
    for (int pass = 0; pass < 2; ++pass) {
        uint64_t want = pass == 0 ? checkpoint : wire::kPersistent;
        for (uint64_t i = 0, at = hash & (n - 1); i < n; ++i, at = (at + 1) & (n - 1)) {
            const Table::Slot &slot = t->slots[at];
            if (slot.stored == kSlotEmpty) {
                break;
            }
            if (slot.stored == kSlotRemoved || slot.hash != hash) {
                continue;
            }
            uint64_t off = slot.stored - 2;
            if (off > heap_bytes || heap_bytes - off < sizeof(Entry)) {
                return nullptr;
            }
            const auto *e = reinterpret_cast<const Entry *>(base + off);
            uint64_t room = heap_bytes - off - sizeof(Entry);
            if (e->key_len > room || e->value_len > room - e->key_len) {
                return nullptr;
            }
            if (e->checkpoint == want && e->key_len == key_len &&
                std::memcmp(e->key(), key, key_len) == 0) {
                return e;
            }
        }
        if (checkpoint == wire::kPersistent) {
            break;
        }
    }
    return nullptr;
}

} // namespace dragon::ddict
