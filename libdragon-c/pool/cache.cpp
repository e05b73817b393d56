#include "cache.hpp"

#include "../common/proc.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include <pthread.h>

namespace dragon::pool {

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
__thread ThreadCaches *tl_caches __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

// A cache with what the registry needs to reach it from another thread.
struct Owned {
    Magazine mag;
    Heap *heap = nullptr;
    uint64_t serial = 0;
    ThreadCaches *owner = nullptr;
    unsigned ref = 0;
};

struct Registry {
    std::mutex lock;
    std::vector<Owned *> caches;
    pthread_key_t key{};
    bool enabled = true;
};

static_assert(std::is_standard_layout_v<Owned> && offsetof(Owned, mag) == 0);

Owned *owned_of(Magazine *m) {
    return reinterpret_cast<Owned *>(m); // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

Magazine none_cache; // caches nothing; shared by every thread and handle without a cache

void release_locked(Registry &r, Owned *o) {
    if (o->heap != nullptr) {
        o->heap->cache_release(&o->mag);
    }
    r.caches.erase(std::remove(r.caches.begin(), r.caches.end(), o), r.caches.end());
    delete o;
}

void thread_exit(void *arg);

Registry &registry() {
    static Registry *r = [] {
        auto *reg = new Registry; // never destroyed: threads may exit after static destructors
        pthread_key_create(&reg->key, thread_exit);
        const char *env = std::getenv("DRAGON_POOL_CACHE");
        reg->enabled = env == nullptr || std::strcmp(env, "0") != 0;
        pthread_atfork([] { registry().lock.lock(); }, [] { registry().lock.unlock(); },
                       [] {
                           // The child's caches are copies of the parent's: their blocks are
                           // the parent's. Forget them (the memory is the child's own).
                           Registry &cr = registry();
                           for (Owned *o : cr.caches) {
                               delete o;
                           }
                           cr.caches.clear();
                           delete tl_caches;
                           tl_caches = nullptr;
                           pthread_setspecific(cr.key, nullptr);
                           cr.lock.unlock();
                       });
        return reg;
    }();
    return *r;
}

void thread_exit(void *arg) {
    auto *t = static_cast<ThreadCaches *>(arg);
    Registry &r = registry();
    {
        std::lock_guard<std::mutex> g(r.lock);
        for (unsigned i = 0; i < kThreadCacheRefs; ++i) {
            if (t->serial[i].load(std::memory_order_relaxed) != 0 && t->mag[i] != &none_cache) {
                release_locked(r, owned_of(t->mag[i]));
            }
        }
    }
    if (tl_caches == t) {
        tl_caches = nullptr;
    }
    delete t;
}

} // namespace

uint64_t next_pool_serial() {
    static std::atomic<uint64_t> serial{0};
    return serial.fetch_add(1, std::memory_order_relaxed) + 1;
}

Magazine *thread_cache_slow(Heap *heap, uint64_t serial) {
    Registry &r = registry();
    std::lock_guard<std::mutex> g(r.lock);
    ThreadCaches *t = tl_caches;
    if (t == nullptr) {
        t = new ThreadCaches;
        tl_caches = t;
        pthread_setspecific(r.key, t);
    }
    // An unused entry, else the next in turn (its cache gives its blocks back).
    unsigned ref = kThreadCacheRefs;
    for (unsigned i = 0; i < kThreadCacheRefs && ref == kThreadCacheRefs; ++i) {
        if (t->serial[i].load(std::memory_order_relaxed) == 0) {
            ref = i;
        }
    }
    if (ref == kThreadCacheRefs) {
        ref = t->next;
        t->next = (t->next + 1) % kThreadCacheRefs;
        if (t->mag[ref] != &none_cache) {
            release_locked(r, owned_of(t->mag[ref]));
        }
        t->serial[ref].store(0, std::memory_order_relaxed);
    }
    Magazine *m = &none_cache;
    if (r.enabled) {
        auto *o = new Owned;
        if (heap->cache_setup(&o->mag, detail::self_tag())) {
            o->heap = heap;
            o->serial = serial;
            o->owner = t;
            o->ref = ref;
            r.caches.push_back(o);
            m = &o->mag;
        } else {
            delete o;
        }
    }
    t->mag[ref] = m;
    t->serial[ref].store(serial, std::memory_order_relaxed);
    return m;
}

void drop_thread_caches(uint64_t serial) {
    Registry &r = registry();
    std::lock_guard<std::mutex> g(r.lock);
    std::vector<Owned *> mine;
    for (Owned *o : r.caches) {
        if (o->serial == serial) {
            mine.push_back(o);
        }
    }
    for (Owned *o : mine) {
        // The owning thread never matches this serial again; its entry is free for reuse.
        o->owner->serial[o->ref].store(0, std::memory_order_relaxed);
        o->owner->mag[o->ref] = &none_cache;
        release_locked(r, o);
    }
}

} // namespace dragon::pool
