// The memory layout of a pool segment. Everything here lives in shared memory and is read
// and written by every attached process; see docs/pool.md for the picture.
//
//   [SegmentHeader][block map: one byte per granule][owner table: four bytes per granule]
//   [padding to 4 KiB][heap]
//
// The block map is the single source of truth about the heap: the byte of a granule where a
// block starts holds the block's state and order (log2 of its size). Free lists, counters and
// the non-empty bitmap are derived from it and are rebuilt from it when a process died while
// holding the pool's lock.
//
// The owner table says who answers for each block, by the entry of the block's first
// granule: an owner tag (common/proc.hpp) written by alloc (the allocator), by free (the
// freer, until the block is on a cache stack), by a channel send (queued) and receive (the
// receiver), or 0 for shared objects nobody owns. dragon_pool_reclaim reads it.
#pragma once

#include "../common/wait.hpp"

#include <atomic>
#include <cstdint>
#include <pthread.h>

namespace dragon::pool {

constexpr uint64_t kSegmentMagic = 0x314c4f4f50524744ULL; // "DGRPOOL1", little-endian
constexpr uint32_t kLayoutVersion = 3; // 2: owner table, waiter slots; 3: cache slots, plain map
constexpr unsigned kMaxOrder = 63;
constexpr unsigned kOrders = 64;
constexpr unsigned kMinOrderFloor = 6; // 64-byte blocks and alignment at least
constexpr uint64_t kHeapAlign = 4096;
constexpr uint64_t kNil = ~0ULL;      // end of a free list
constexpr uint32_t kEmptyIndex = ~0U; // empty cache stack
constexpr uint64_t kMaxGranules = 0xFFFFFFFEULL;

// The block map and the owner table are indexed by granule (entry g for the block starting
// at granule g). Small blocks are handed to each process in runs of its own (see "Thread
// caches" below): the map entries of one run then share lines only with each other.
constexpr uint64_t kMapChunk = 128; // entries: tables are padded to whole line pairs
constexpr uint64_t map_index(uint64_t granule) {
    return granule;
}
constexpr uint64_t map_bytes(uint64_t granules) {
    return (granules + kMapChunk - 1) / kMapChunk * kMapChunk;
}
// The owner table, four bytes an entry.
constexpr uint64_t owner_bytes(uint64_t granules) {
    return map_bytes(granules) * 4;
}

// Owner tags: the low 22 bits a pid, the top 8 bits its start time (common/proc.hpp); the two
// bits between say what the process does with the block.
constexpr uint32_t kOwnerNone = 0;             // a shared object, or disowned: never reclaimed
constexpr uint32_t kOwnerQueued = 1U << 22;    // | sender: a channel holds it (zero-copy message)
constexpr uint32_t kOwnerReclaimed = 2U << 22; // pid 0: dragon_pool_reclaim is freeing it
constexpr uint32_t kOwnerKindMask = 3U << 22;

// Block states, in the top two bits of a block-map byte; the low six bits hold the order.
enum BlockState : uint8_t {
    kNone = 0,   // not the start of a block
    kFree = 1,   // in the buddy allocator's free list of its order
    kLive = 2,   // allocated and owned by the user
    kCached = 3, // freed by the user, parked on its order's lock-free cache stack
};

constexpr uint8_t pack(BlockState s, unsigned order) {
    return static_cast<uint8_t>((static_cast<unsigned>(s) << 6) | (order & 0x3f));
}
constexpr BlockState state_of(uint8_t b) {
    return static_cast<BlockState>(b >> 6);
}
constexpr unsigned order_of(uint8_t b) {
    return b & 0x3f;
}

// Freed blocks wait on lock-free stacks, one per order in each of up to kMaxShards shards; a
// process uses the shard of the CPU it runs on, so processes on different CPUs do not contend
// for one cache line. A stack head holds in its low 32 bits the granule index of the top block
// (kEmptyIndex if none) and in its high 32 bits a tag bumped by every change (ABA guard).
constexpr unsigned kMaxShards = 64;
struct alignas(64) CacheShard {
    std::atomic<uint64_t> top[kOrders];
};

// Thread caches (heap.hpp, Magazine): each thread that allocates small blocks keeps a few of
// every small order in its own memory; a block there is "cached" in the map, owned by the
// thread's process, on no stack. Each such cache publishes what it holds in a slot of the
// header, written only by its thread (a line pair of its own), so that dragon_pool_stats
// can count it and whoever finds the process dead can give its blocks back.
constexpr unsigned kCacheSlots = 128;
constexpr unsigned kMagOrders = 7; // orders min_order .. min_order + 6 at most are cached
struct alignas(128) CacheSlot {
    std::atomic<uint32_t> tag; // the owner tag of the thread's process; 0: slot free
    std::atomic<uint32_t> tid; // the thread, for tools
    std::atomic<uint64_t>
        pidns; // inode of the process's pid namespace: pids mean nothing elsewhere
    std::atomic<uint32_t> count[kMagOrders]; // blocks cached, per order from min_order
};

// A free block's first bytes while it is in a free list (offsets relative to the heap).
struct FreeNode {
    uint64_t next;
    uint64_t prev;
};

struct SegmentHeader {           // NOLINT(clang-analyzer-optin.performance.Padding)
    std::atomic<uint64_t> magic; // kSegmentMagic, written last at creation
    uint32_t layout_version;
    uint32_t header_size;
    uint64_t uid; // random, distinguishes a re-created pool of the same name
    uint64_t node_id;
    uint64_t segment_size;
    uint64_t map_offset;
    uint64_t owner_offset;
    uint64_t heap_offset;
    uint64_t heap_size;
    uint32_t min_order;
    uint32_t max_order; // order of the largest block the heap can hold
    uint32_t creator_uid;
    uint32_t shard_count; // a power of two, at most kMaxShards
    char runtime_id[33];
    char name[65];

    // The buddy allocator; guarded by `lock` (robust, process-shared).
    alignas(64) pthread_mutex_t lock;
    uint64_t free_head[kOrders];
    uint64_t nonempty; // bit k set when free_head[k] != kNil
    uint64_t free_bytes;
    uint64_t live_blocks; // blocks in state kLive or kCached
    uint64_t recoveries;  // times the lock was recovered from a dead owner

    // Waiting for space: blocked allocators sleep on space.word; frees wake them while
    // space.sleepers != 0.
    alignas(64) detail::Waiters space;

    CacheShard cache[kMaxShards];
    CacheSlot slots[kCacheSlots];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint8_t>) == 1);

} // namespace dragon::pool
