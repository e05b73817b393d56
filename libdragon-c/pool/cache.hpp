// Which thread cache (heap.hpp, Magazine) serves the calling thread for a pool handle: a
// small per-thread table, looked up by the handle's serial number (unique in the process,
// never reused), kept in initial-exec TLS so the look-up is a few loads. Caches are made on
// first use, give their blocks back when the thread exits, when the handle is detached, and
// when they are evicted from the table; a forked child forgets the parent's (their blocks
// are the parent's). See docs/pool.md, "Thread caches".
#pragma once

#include "heap.hpp"

#include <atomic>
#include <cstdint>

namespace dragon::pool {

constexpr unsigned kThreadCacheRefs = 8;

struct ThreadCaches {
    std::atomic<uint64_t> serial[kThreadCacheRefs] = {}; // 0: entry unused
    Magazine *mag[kThreadCacheRefs] = {};
    unsigned next = 0; // the entry to evict next
};

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
extern __thread ThreadCaches *tl_caches __attribute__((tls_model("initial-exec")));

// A serial number for a new pool handle (never 0).
uint64_t next_pool_serial();

// Make (or find) the calling thread's cache for the handle; a cache that caches nothing
// (orders == 0) when caching is off (DRAGON_POOL_CACHE=0), the pool is too small, or the
// pool has no cache slot free.
Magazine *thread_cache_slow(Heap *heap, uint64_t serial);

// The calling thread's cache for the handle if it has one yet, else nullptr.
inline Magazine *find_thread_cache(uint64_t serial) {
    ThreadCaches *t = tl_caches;
    if (__builtin_expect(t != nullptr, 1)) {
        for (unsigned i = 0; i < kThreadCacheRefs; ++i) {
            if (t->serial[i].load(std::memory_order_relaxed) == serial) {
                return t->mag[i];
            }
        }
    }
    return nullptr;
}

inline Magazine *thread_cache(Heap *heap, uint64_t serial) {
    Magazine *m = find_thread_cache(serial);
    return m != nullptr ? m : thread_cache_slow(heap, serial);
}

// The handle is going away: every thread's cache of it gives its blocks back and its slot.
void drop_thread_caches(uint64_t serial);

} // namespace dragon::pool
