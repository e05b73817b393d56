// Shared objects that live in a pool (channels, queues, locks, semaphores, events,
// barriers): one pool allocation that starts with an ObjectHeader, named across processes by
// an object descriptor (wire format in docs/object-descriptor.md). decode() reads bytes from
// other processes and is fuzzed (tests/fuzz/fuzz_object_descriptor.cpp).
#pragma once

#include <dragon/pool.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace dragon::obj {

enum class Kind : uint8_t {
    kChannel = 1,
    kQueue = 2,
    kLock = 3,
    kRLock = 4,
    kSemaphore = 5,
    kEvent = 6,
    kBarrier = 7,
};
constexpr uint8_t kMaxKind = 7;

const char *kind_name(Kind kind);

constexpr uint32_t kObjectMagic = 0x4A424F44;     // "DOBJ" in memory
constexpr uint32_t kDescriptorMagic = 0x424F4744; // "DGOB" on the wire
constexpr uint8_t kDescriptorVersion = 1;
constexpr uint8_t kLayoutVersion = 3; // 2: waiter slots (common/wait.hpp); 3: queue item type
constexpr size_t kDescriptorFixed = 16;

struct ObjectHeader {
    std::atomic<uint32_t> magic; // written last at creation, cleared first at destruction
    uint8_t kind;
    uint8_t layout_version;
    uint16_t reserved;
    uint64_t uid;
    uint64_t bytes; // size of the object's memory
};
static_assert(sizeof(ObjectHeader) == 24);

struct Decoded {
    Kind kind;
    uint64_t uid;
    const uint8_t *mem; // the embedded pool memory descriptor
    size_t mem_len;
};

// Parse and validate an object descriptor (including its embedded memory descriptor);
// DRAGON_BAD_DESCRIPTOR with a detailed message when malformed.
dragon_status_t decode(const void *bytes, size_t len, Decoded *out);

// An object attached in this process.
struct Attached {
    dragon_pool_t *pool = nullptr; // borrowed (creator) or from the process's pool cache
    bool cached_pool = false;
    void *base = nullptr;
    size_t size = 0;
    uint64_t uid = 0;
    Kind kind = Kind::kChannel;
};

// Allocate `bytes` (zeroed) in pool for a new object; the caller fills its part, then calls
// publish() to make it attachable.
dragon_status_t create(dragon_pool_t *pool, Kind kind, size_t bytes, Attached *out);
void publish(const Attached &a);

// Attach by descriptor. `accept` lists the kinds the caller can handle (a bit per kind).
dragon_status_t attach(const void *bytes, size_t len, uint32_t accept, Attached *out);
constexpr uint32_t kind_bit(Kind k) {
    return 1U << static_cast<unsigned>(k);
}

// Is the object still there (not destroyed and its memory not reused)?
inline bool alive(const Attached &a) {
    const auto *h = static_cast<const ObjectHeader *>(a.base);
    return h->magic.load(std::memory_order_acquire) == kObjectMagic && h->uid == a.uid;
}

dragon_status_t serialize(const Attached &a, void *buf, size_t cap, size_t *len);

// Drop this handle's hold on the pool.
void release(Attached *a);

// Mark destroyed (attach and alive() fail from now on) without freeing.
void retire(const Attached &a);
// Return the memory to the pool and release.
dragon_status_t free_memory(Attached *a);

// For dragon_pool_reclaim (channel/reclaim.cpp): look at one live block of a pool that no
// process owns. If it holds a channel, queue or sync object, take back its waiter slots whose
// callers `dead` accepts, and append to *held the heap offsets of the zero-copy messages it
// holds (queued, or being sent by a live sender). Returns the slots taken back.
uint64_t scan_for_reclaim(uint8_t *heap, uint64_t heap_size, uint64_t offset, uint64_t size,
                          const std::function<bool(uint32_t)> &dead, std::vector<uint64_t> *held);

} // namespace dragon::obj
