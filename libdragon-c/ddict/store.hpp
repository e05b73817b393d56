// A DDict manager's store (docs/ddict.md, "Where values live"): keys and values in the
// manager's own pool of shared memory, found through an open-addressing table that lies in the
// same pool. Only the manager changes it (no locks); positions are heap offsets, so a process
// that maps the pool can read a frozen store in place (the layout: docs/ddict-protocol.md,
// "Leases" and "Frozen reads in place"). A put that finds no room fails with DRAGON_NO_SPACE naming
// the manager and changes nothing.
//
// Every entry belongs to a checkpoint (wire::kPersistent: to none). A lookup at checkpoint c
// finds the key's entry of checkpoint c, else its persistent entry. An entry a reader holds
// (readers > 0: a lease, docs/ddict-protocol.md) is freed only once the count is back at 0.
#pragma once

#include <dragon/pool.h>
#include <dragon/status.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dragon::ddict {

// An entry: this 48-byte header, the key, the value (one pool block).
struct Entry {
    uint64_t hash;
    uint64_t key_len;
    uint64_t value_len;
    uint64_t checkpoint;
    uint32_t readers; // leases held by clients (atomic)
    uint32_t flags;   // kEntryCopy
    uint64_t reserved;
    unsigned char *key() { return reinterpret_cast<unsigned char *>(this + 1); }
    const unsigned char *key() const { return reinterpret_cast<const unsigned char *>(this + 1); }
    unsigned char *value() { return key() + key_len; }
    const unsigned char *value() const { return key() + key_len; }
};
static_assert(sizeof(Entry) == 48, "an entry's header is the request header's size");

// The store's root block, at a fixed heap offset a client learns in Hello's reply.
struct Root {
    uint64_t magic;
    uint64_t layout; // kLayout
    uint64_t state;  // even: open; odd: frozen. Changed by 1 on each freeze or unfreeze (atomic)
    uint64_t table;  // heap offset of the table
    uint64_t floor;  // the oldest checkpoint kept (older ones were retired)
};

struct Table {
    uint64_t magic;
    uint64_t n_slots; // a power of two
    uint64_t count;   // entries
    uint64_t removed; // slots marked kRemoved
    struct Slot {
        uint64_t hash;
        uint64_t stored; // 0 empty, 1 removed, else heap offset of the entry + 2
    } slots[1];
    static size_t bytes(uint64_t n) { return offsetof(Table, slots) + n * sizeof(Slot); }
};

constexpr uint64_t kRootMagic = 0x544f4f5254434444ULL; // "DDCTROOT"
constexpr uint64_t kTableMagic = 0x5444434944444441ULL;
constexpr uint64_t kLayout = 1;
constexpr uint64_t kSlotEmpty = 0;
constexpr uint64_t kSlotRemoved = 1;
// An entry's flags: a broadcast's copy (found, but not counted by length nor listed by keys).
constexpr uint32_t kEntryCopy = 0x1;

class Store {
  public:
    // A store of at least `slots` table slots (a power of two is taken) in `pool`, which the
    // caller keeps attached; `manager` names it in messages.
    static dragon_status_t create(dragon_pool_t *pool, std::string manager, size_t slots,
                                  Store **out);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    // Insert or replace (a copy of the value). An empty key is DRAGON_INVALID_ARGUMENT.
    dragon_status_t put(const void *key, size_t key_len, const void *value, size_t value_len,
                        uint64_t checkpoint = 0, uint32_t flags = 0);
    // Insert or replace with a block of the pool the caller filled: an Entry header's room,
    // then key_len key bytes, then value_len value bytes. On success the store owns it; on
    // failure the caller still does.
    dragon_status_t put_block(void *block, size_t key_len, size_t value_len, uint64_t checkpoint,
                              uint32_t flags = 0);
    // The entry visible at `checkpoint` (its own, else the persistent one), or nullptr.
    const Entry *find(const void *key, size_t key_len, uint64_t checkpoint) const;
    // A view of the value, valid until the next change: DRAGON_NOT_FOUND at once if absent.
    dragon_status_t get(const void *key, size_t key_len, const void **value, size_t *value_len,
                        uint64_t checkpoint = 0) const;
    // Unlink the entry visible at `checkpoint` and hand it to the caller, who must release()
    // it (nullptr if absent).
    Entry *take(const void *key, size_t key_len, uint64_t checkpoint, bool exact = false);
    dragon_status_t erase(const void *key, size_t key_len, uint64_t checkpoint = 0);
    // Remove the key's entry of exactly this checkpoint (not the persistent one), if any.
    void erase_exact(const void *key, size_t key_len, uint64_t checkpoint);
    bool contains(const void *key, size_t key_len, uint64_t checkpoint = 0) const;
    // A reader takes a lease on an entry; release() frees it once no reader holds it.
    static void lease(const Entry *e);
    void release(Entry *e);
    // Free released entries whose readers are done. Returns how many are still held.
    size_t sweep();

    // Keys visible at `checkpoint`.
    size_t length(uint64_t checkpoint) const;
    // Entries of every checkpoint.
    size_t size() const;
    uint64_t bytes() const { return bytes_; }
    void clear();
    // Keys visible at `checkpoint` from table position `cursor` on (0 to start), at most
    // `max` of them and about `budget` bytes (at least one key); returns the cursor to pass
    // next, or 0 when the table was walked to its end.
    size_t keys(size_t cursor, size_t max, std::vector<std::string> *out, uint64_t checkpoint = 0,
                size_t budget = ~size_t{0}) const;
    // Every entry (persist): f(entry) in table order.
    template <typename F>
    void for_each(F &&f) const {
        const Table *t = table();
        for (uint64_t i = 0; i < t->n_slots; ++i) {
            if (t->slots[i].stored > kSlotRemoved) {
                f(*entry_at(t->slots[i].stored));
            }
        }
    }
    // Drop every entry of a checkpoint below `floor` (persistent ones stay).
    void retire_below(uint64_t floor);
    size_t table_slots() const;
    uint64_t root_offset() const { return root_off_; }
    void set_frozen(bool frozen);
    // Publish the oldest checkpoint kept, for in-place readers.
    void set_floor(uint64_t floor);
    bool has_released() const { return !released_.empty(); }
    bool frozen() const;

  private:
    Store() = default;
    Table *table() const;
    Entry *entry_at(uint64_t stored) const;
    uint64_t offset_of(const void *p) const;
    // The slot that holds (key, checkpoint), or where it would go (-1: table full).
    long find_slot(const Table *t, uint64_t hash, const void *key, size_t key_len,
                   uint64_t checkpoint, bool *found) const;
    dragon_status_t grow(bool same_size = false);
    dragon_status_t room_for_one();
    void link(Entry *e);
    void count(const Entry *e);
    void uncount(const Entry *e);
    void unlink_slot(Table *t, long at);
    dragon_status_t no_room(const char *what, size_t bytes) const;

    dragon_pool_t *pool_ = nullptr;
    std::string manager_;
    uint8_t *base_ = nullptr;
    uint64_t root_off_ = 0;
    uint64_t bytes_ = 0;
    size_t persistent_ = 0;
    std::map<uint64_t, size_t> per_checkpoint_; // entries of each checkpoint (not persistent)
    std::vector<Entry *> released_;             // taken or replaced while a reader held them
};

} // namespace dragon::ddict

namespace dragon::ddict {

// A reader outside the manager (a frozen store, read in place): the entry visible at
// `checkpoint` in the store whose root lies at heap offset `root_off` of the mapping at `base`
// (`heap_bytes` long), or nullptr. Every offset is checked against the mapping, so a store
// that changes under the reader yields garbage or nullptr, never a fault; the caller checks
// the root's state before and after.
const Entry *find_in_place(const uint8_t *base, uint64_t heap_bytes, uint64_t root_off,
                           const void *key, size_t key_len, uint64_t checkpoint);

} // namespace dragon::ddict
