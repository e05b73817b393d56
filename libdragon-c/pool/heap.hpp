// The pool allocator: a process-local view of a segment's header, block map and heap.
//
// Fast path: free parks the block on its order's lock-free cache stack and alloc takes one
// from there (no lock, no system call). Slow path: the buddy allocator under the segment's
// robust mutex; when it has no block big enough it first returns every cached block to the
// buddy lists (coalescing them) and tries again, so cached memory never makes an allocation
// fail. A process that dies holding the mutex leaves the block map consistent; the next
// locker rebuilds the free lists and counters from it (see docs/pool.md).
#pragma once

#include "layout.hpp"

#include <dragon/status.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace dragon::pool {

struct Stats {
    uint64_t total_bytes;
    uint64_t free_bytes;
    uint64_t live_blocks;
    uint64_t largest_free;
};

struct ReclaimResult {
    uint64_t blocks = 0;
    uint64_t bytes = 0;
    uint64_t waiters = 0; // waiter slots of dead processes taken back
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
    unsigned order_for(size_t size) const;

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
    bool take_cached(uint64_t offset, unsigned order, uint32_t tag);

    // Lock-free cache stacks.
    std::atomic<uint64_t> &stack(unsigned shard, unsigned order) const {
        return hdr_->cache[shard].top[order];
    }
    unsigned my_shard() const;
    uint64_t cache_pop(std::atomic<uint64_t> &top);
    void cache_push(std::atomic<uint64_t> &top, uint64_t offset);

    // Buddy allocator; callers hold the lock.
    dragon_status_t buddy_alloc(unsigned order, uint32_t tag, uint64_t *offset);
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
