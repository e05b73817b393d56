// The pool allocator: a process-local view of a segment's header, block map and heap.
//
// Fastest path: a thread's own cache of small blocks (Magazine below): alloc and free of a
// block the thread's process owns touch only the thread's memory and the block's map byte
// (no locked instruction). Fast path: free parks the block on its order's lock-free cache
// stack and alloc takes one from there (no lock, no system call). Slow path: the buddy allocator
// under the segment's robust mutex; when it has no block big enough it first returns every cached
// block to the buddy lists (coalescing them) and tries again, so cached memory never makes an
// allocation fail. A process that dies holding the mutex leaves the block map consistent; the next
// locker rebuilds the free lists and counters from it (see docs/pool.md).
#pragma once

#include "layout.hpp"

#include <dragon/status.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace dragon::pool {

struct Stats {
    uint64_t total_bytes;
    uint64_t free_bytes; // cached_bytes included
    uint64_t live_blocks;
    uint64_t largest_free;
    uint64_t cached_bytes; // in live threads' caches (the caller's own was flushed)
};

// A thread's cache of small blocks of one pool, in the thread's own memory. Orders min_order
// .. min_order + orders - 1 are cached, up to cap[i] blocks each (granule indices, the top
// of each array handed out first). Every block here is "cached" in the map, owned by `tag`
// and on no stack; each count is mirrored in `slot` after every change.
constexpr unsigned kMagMaxCap = 128;
struct Magazine {
    uint32_t tag = 0;
    unsigned orders = 0;
    CacheSlot *slot = nullptr;
    uint32_t cap[kMagOrders] = {};
    uint32_t count[kMagOrders] = {};
    uint32_t item[kMagOrders][kMagMaxCap] = {};
};

struct ReclaimResult {
    uint64_t blocks = 0;
    uint64_t bytes = 0;
    uint64_t waiters = 0;       // waiter slots of dead processes taken back
    uint64_t cached_blocks = 0; // free blocks of dead processes' caches (or in flight)
};

// What reclaim() asks of its caller. dead(tag): does the owner this tag names count as dead
// (and is it one to reclaim for)? object(offset, size, held): called once for every live
// block nobody owns (shared objects: channels, queues, sync objects), after the owners were
// read and before anything is freed; it appends the heap offsets of the blocks the object
// holds (queued zero-copy messages) to `held`.
struct ReclaimPlan {
    std::function<bool(uint32_t)> dead;
    std::function<void(uint64_t, uint64_t, std::vector<uint64_t> *)> object;
};

// Deterministic crash points for the kill-during-alloc tests (DRAGON_TEST_CRASH_AT).
enum class CrashPoint : uint8_t { kNone, kSplit, kCoalesce, kDrain, kRebuild };

class Heap {
  public:
    Heap() = default;
    // View an already formatted segment mapped at `base`.
    explicit Heap(void *base);

    // Lay out a fresh segment of segment_size bytes (all zero) at base.
    static void format(void *base, uint64_t segment_size, uint64_t map_offset,
                       uint64_t owner_offset, uint64_t heap_offset, uint64_t heap_size,
                       unsigned min_order);

    SegmentHeader *header() const { return hdr_; }
    uint8_t *heap_base() const { return heap_; }
    uint64_t heap_size() const { return heap_size_; }
    unsigned min_order() const { return min_order_; }
    unsigned max_order() const { return max_order_; }

    // The order of the smallest block holding `size` bytes, or 0 if no block ever can.
    unsigned order_for(size_t size) const {
        if (size == 0 || size > (1ULL << max_order_)) {
            return 0;
        }
        if (size <= (1ULL << min_order_)) {
            return min_order_;
        }
        return 64U - static_cast<unsigned>(std::countl_zero(static_cast<uint64_t>(size) - 1));
    }

    // Allocate a block of `order` owned by `tag`; DRAGON_NO_SPACE when none is free now.
    dragon_status_t alloc(unsigned order, uint32_t tag, uint64_t *offset);
    // Allocate, sleeping up to `timeout` for another process to free space.
    dragon_status_t alloc_wait(unsigned order, uint32_t tag, dragon_timeout_t timeout,
                               uint64_t *offset);
    // Free the live block starting at offset (offset is validated by the caller's range
    // check; liveness is checked here); `tag` (the freer) answers for it until it is cached.
    // DRAGON_NOT_ALLOCATED if it is not a live block.
    dragon_status_t free(uint64_t offset, uint32_t tag);
    // Size of the live block starting at offset, 0 if none starts there.
    uint64_t live_block_size(uint64_t offset) const;

    // The owner entry of the block starting at offset (meaningful for live blocks only).
    std::atomic<uint32_t> &owner_at(uint64_t offset) const {
        return owners_[map_index(offset >> min_order_)];
    }
    // Make `tag` the owner of the live block at offset; DRAGON_NOT_ALLOCATED if it is not
    // live, or is being reclaimed.
    dragon_status_t set_owner(uint64_t offset, uint32_t tag);

    // Return cached blocks to the buddy lists and read the figures.
    dragon_status_t stats(Stats *out);

    // Thread caches. cache_setup sizes *m for this pool and claims a header slot for it;
    // false when the pool is too small to cache any order or no slot is free (then *m caches
    // nothing). cache_release gives every block back and frees the slot.
    bool cache_setup(Magazine *m, uint32_t tag);
    void cache_release(Magazine *m);
    // Push every block of the cache on the stacks (it keeps its slot).
    void cache_flush(Magazine *m);
    // alloc through the cache: a block of the cache's orders comes from it, refilled in
    // a batch from the stacks or a run carved for this thread when empty; other orders, and
    // a pool with no run left, take the usual path.
    dragon_status_t alloc_cached(Magazine *m, unsigned order, uint64_t *offset) {
        return mag_pop(m, order, offset) ? DRAGON_SUCCESS : alloc_refill(m, order, offset);
    }
    // The cache alone: a block of `order` if it holds one.
    bool mag_pop(Magazine *m, unsigned order, uint64_t *offset) const {
        unsigned i = order - min_order_;
        if (__builtin_expect(i < m->orders && m->count[i] != 0, 1)) {
            uint32_t g = m->item[i][--m->count[i]];
            map_[g].store(pack(kLive, order), std::memory_order_release);
            publish(m, i);
            *offset = static_cast<uint64_t>(g) << min_order_;
            return true;
        }
        return false;
    }
    // free through the cache: a live block this process owns, of a cached order, goes into
    // the cache (half of a full one is first pushed on the stacks in one batch); anything
    // else takes free()'s path. A double free that does not race the first is caught by the
    // map byte (DRAGON_NOT_ALLOCATED); see docs/pool.md for the one that races it.
    dragon_status_t free_cached(Magazine *m, uint64_t offset) {
        return mag_push(m, offset) ? DRAGON_SUCCESS : free_slow(m, offset);
    }
    // The cache alone: takes a live block of ours of a cached order while there is room
    // and nobody waits for space.
    bool mag_push(Magazine *m, uint64_t offset) const {
        uint64_t g = offset >> min_order_;
        uint8_t b = map_[g].load(std::memory_order_acquire);
        unsigned i = order_of(b) - min_order_;
        if (__builtin_expect(state_of(b) == kLive && i < m->orders &&
                                 owners_[g].load(std::memory_order_relaxed) == m->tag &&
                                 m->count[i] != m->cap[i] &&
                                 hdr_->space.sleepers.load(std::memory_order_relaxed) == 0,
                             1)) {
            map_[g].store(pack(kCached, order_of(b)), std::memory_order_release);
            m->item[i][m->count[i]++] = static_cast<uint32_t>(g);
            publish(m, i);
            return true;
        }
        return false;
    }
    // Give back the cached blocks of processes found dead (their header slots say which
    // ones hold any); returns how many blocks. Takes the lock.
    uint64_t free_dead_caches();

    // Free what dead owners left: their live blocks (but those a shared object holds) and
    // the cached blocks they had in flight; repair the space waiters. See docs/pool.md.
    dragon_status_t reclaim(const ReclaimPlan &plan, ReclaimResult *out);

    void set_crash_point(CrashPoint p, unsigned countdown) {
        crash_point_ = p;
        crash_countdown_ = countdown;
    }

  private:
    class Locked;

    std::atomic<uint8_t> &map_at(uint64_t offset) const { return map_[offset >> min_order_]; }

    static void publish(Magazine *m, unsigned i) {
        m->slot->count[i].store(m->count[i], std::memory_order_relaxed);
    }
    static bool holds_any(const Magazine *m) {
        for (unsigned i = 0; i < m->orders; ++i) {
            if (m->count[i] != 0) {
                return true;
            }
        }
        return false;
    }
    dragon_status_t alloc_refill(Magazine *m, unsigned order, uint64_t *offset);
    dragon_status_t free_slow(Magazine *m, uint64_t offset);
    unsigned refill(Magazine *m, unsigned i);
    unsigned carve(Magazine *m, unsigned i);
    void flush(Magazine *m, unsigned i, unsigned n);
    void flush_all(Magazine *m);
    uint64_t free_dead_caches_locked();
    bool take_cached(uint64_t offset, unsigned order, uint32_t tag);

    // Lock-free cache stacks.
    std::atomic<uint64_t> &stack(unsigned shard, unsigned order) const {
        return hdr_->cache[shard].top[order];
    }
    unsigned my_shard() const;
    uint64_t cache_pop(std::atomic<uint64_t> &top);
    void cache_push(std::atomic<uint64_t> &top, uint64_t offset);

    // Buddy allocator; callers hold the lock.
    dragon_status_t buddy_alloc(unsigned order, uint32_t tag, uint64_t *offset,
                                BlockState state = kLive);
    void buddy_release(uint64_t offset, unsigned order);
    void coalesce_insert(uint64_t offset, unsigned order, bool rebuilding);
    void list_insert(uint64_t offset, unsigned order);
    void list_remove(uint64_t offset, unsigned order);
    uint64_t drain_caches();
    void rebuild();
    dragon_status_t alloc_slow(unsigned order, uint32_t tag, uint64_t *offset);
    void maybe_crash(CrashPoint here);

    FreeNode *node(uint64_t offset) const { return reinterpret_cast<FreeNode *>(heap_ + offset); }

    SegmentHeader *hdr_ = nullptr;
    std::atomic<uint8_t> *map_ = nullptr;
    std::atomic<uint32_t> *owners_ = nullptr;
    uint8_t *heap_ = nullptr;
    uint64_t heap_size_ = 0;
    unsigned min_order_ = 0;
    unsigned max_order_ = 0;
    unsigned shard_mask_ = 0;
    CrashPoint crash_point_ = CrashPoint::kNone;
    unsigned crash_countdown_ = 0;
};

} // namespace dragon::pool
