#include "object.hpp"

#include "../common/bytes.hpp"
#include "../common/error.hpp"
#include "../common/proc.hpp"
#include "../pool/descriptor.hpp"
#include "../pool/internal.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include <sys/random.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::wrap;

namespace dragon::obj {
namespace {

using detail::get_le;
using detail::put_le;

// One attachment per pool per process, shared by every object handle that needs it: a
// process attached to a thousand channels of one pool maps that pool once.
struct PoolCache {
    std::mutex mu;
    struct Entry {
        dragon_pool_t *pool;
        unsigned refs;
    };
    std::map<std::string, Entry> pools;
};
PoolCache &pool_cache() {
    static auto *cache = new PoolCache; // never destroyed: handles may outlive statics
    return *cache;
}

std::string pool_key(const pool::Descriptor &d) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s/%" PRIu64 "/%s/%016" PRIx64, d.runtime_id, d.node_id, d.name,
                  d.uid);
    return buf;
}

std::atomic<uint32_t> &owner_of(dragon_pool_t *pool, const void *mem) {
    auto off = static_cast<uint64_t>(static_cast<const uint8_t *>(mem) - pool::heap_base_of(pool));
    return pool::owner_of(pool, off);
}

} // namespace

const char *kind_name(Kind kind) {
    switch (kind) {
    case Kind::kChannel:
        return "channel";
    case Kind::kQueue:
        return "queue";
    case Kind::kLock:
        return "lock";
    case Kind::kRLock:
        return "recursive lock";
    case Kind::kSemaphore:
        return "semaphore";
    case Kind::kEvent:
        return "event";
    case Kind::kBarrier:
        return "barrier";
    }
    return "object";
}

dragon_status_t decode(const void *bytes, size_t len, Decoded *out) {
    if (bytes == nullptr) {
        return fail(DRAGON_BAD_DESCRIPTOR, "object descriptor: NULL bytes");
    }
    const auto *p = static_cast<const uint8_t *>(bytes);
    if (len < kDescriptorFixed) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "object descriptor: %zu bytes, shorter than the %zu-byte header", len,
                    kDescriptorFixed);
    }
    if (get_le(p, 4) != kDescriptorMagic) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "object descriptor: bad magic 0x%08x (not a channel or sync object)",
                    static_cast<unsigned>(get_le(p, 4)));
    }
    if (p[4] != kDescriptorVersion) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "object descriptor: format version %u, this library reads version %u", p[4],
                    kDescriptorVersion);
    }
    if (p[5] == 0 || p[5] > kMaxKind) {
        return fail(DRAGON_BAD_DESCRIPTOR, "object descriptor: unknown kind %u", p[5]);
    }
    size_t mem_len = get_le(p + 6, 2);
    if (len != kDescriptorFixed + mem_len) {
        return fail(DRAGON_BAD_DESCRIPTOR, "object descriptor: %zu bytes, its header says %zu", len,
                    kDescriptorFixed + mem_len);
    }
    uint64_t uid = get_le(p + 8, 8);
    if (uid == 0) {
        return fail(DRAGON_BAD_DESCRIPTOR, "object descriptor: object id 0");
    }
    pool::Descriptor md{};
    if (pool::decode(p + kDescriptorFixed, mem_len, &md) != DRAGON_SUCCESS) {
        return wrap(DRAGON_BAD_DESCRIPTOR, "object descriptor: its memory descriptor");
    }
    if (md.kind != pool::DescriptorKind::kMemory) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "object descriptor: embeds a pool descriptor, not a memory descriptor");
    }
    if (md.size < sizeof(ObjectHeader)) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "object descriptor: its memory (%" PRIu64 " bytes) cannot hold an object",
                    md.size);
    }
    out->kind = static_cast<Kind>(p[5]);
    out->uid = uid;
    out->mem = p + kDescriptorFixed;
    out->mem_len = mem_len;
    return DRAGON_SUCCESS;
}

dragon_status_t create(dragon_pool_t *pool, Kind kind, size_t bytes, Attached *out) {
    if (pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "create %s: pool is NULL", kind_name(kind));
    }
    void *mem = nullptr;
    if (dragon_status_t st = dragon_pool_alloc(pool, bytes, &mem); st != DRAGON_SUCCESS) {
        const char *name = "?";
        dragon_pool_name(pool, &name);
        return wrap(st, "create %s: %zu bytes from pool '%s'", kind_name(kind), bytes, name);
    }
    // Shared by every process that attaches it: no process owns it (dragon_pool_reclaim
    // leaves it alone). Killed before this store, the creator leaves a block it owns.
    owner_of(pool, mem).store(pool::kOwnerNone, std::memory_order_release);
    std::memset(mem, 0, bytes);
    auto *h = static_cast<ObjectHeader *>(mem);
    h->kind = static_cast<uint8_t>(kind);
    h->layout_version = kLayoutVersion;
    h->uid = detail::random_uid();
    h->bytes = bytes;
    out->pool = pool;
    out->cached_pool = false;
    out->base = mem;
    out->size = bytes;
    out->uid = h->uid;
    out->kind = kind;
    return DRAGON_SUCCESS;
}

void publish(const Attached &a) {
    static_cast<ObjectHeader *>(a.base)->magic.store(kObjectMagic, std::memory_order_release);
}

dragon_status_t attach(const void *bytes, size_t len, uint32_t accept, Attached *out) {
    Decoded d{};
    if (dragon_status_t st = decode(bytes, len, &d); st != DRAGON_SUCCESS) {
        return st;
    }
    if ((accept & kind_bit(d.kind)) == 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "the descriptor names a %s, not what was asked for",
                    kind_name(d.kind));
    }
    pool::Descriptor md{};
    pool::decode(d.mem, d.mem_len, &md); // validated above
    std::string key = pool_key(md);

    PoolCache &cache = pool_cache();
    dragon_pool_t *pool = nullptr;
    {
        std::lock_guard<std::mutex> lock(cache.mu);
        auto it = cache.pools.find(key);
        if (it != cache.pools.end()) {
            pool = it->second.pool;
            ++it->second.refs;
        } else {
            if (dragon_status_t st = dragon_pool_attach_serialized(d.mem, d.mem_len, &pool);
                st != DRAGON_SUCCESS) {
                return wrap(st, "attach %s", kind_name(d.kind));
            }
            cache.pools.emplace(key, PoolCache::Entry{pool, 1});
        }
    }
    Attached a;
    a.pool = pool;
    a.cached_pool = true;
    a.uid = d.uid;
    a.kind = d.kind;
    void *mem = nullptr;
    size_t size = 0;
    dragon_status_t st = dragon_pool_mem_attach(pool, d.mem, d.mem_len, &mem, &size);
    if (st == DRAGON_NOT_ALLOCATED) {
        release(&a);
        return fail(DRAGON_NOT_FOUND, "attach %s: it was destroyed (its memory is free)",
                    kind_name(d.kind));
    }
    if (st != DRAGON_SUCCESS) {
        release(&a);
        return wrap(st, "attach %s", kind_name(d.kind));
    }
    a.base = mem;
    a.size = size;
    const auto *h = static_cast<const ObjectHeader *>(mem);
    if (h->magic.load(std::memory_order_acquire) != kObjectMagic || h->uid != d.uid ||
        h->kind != static_cast<uint8_t>(d.kind)) {
        release(&a);
        return fail(DRAGON_NOT_FOUND,
                    "attach %s: it was destroyed (its memory holds another "
                    "object now)",
                    kind_name(d.kind));
    }
    uint8_t layout = h->layout_version;
    uint64_t object_bytes = h->bytes;
    if (layout != kLayoutVersion || object_bytes > size) {
        release(&a); // unmaps the pool if this was its last user: h is gone from here on
        return fail(DRAGON_CORRUPTED,
                    "attach %s: layout version %u (this library reads %u), %llu bytes in a "
                    "%zu-byte block",
                    kind_name(d.kind), layout, kLayoutVersion,
                    static_cast<unsigned long long>(object_bytes), size);
    }
    a.size = object_bytes;
    *out = a;
    return DRAGON_SUCCESS;
}

dragon_status_t serialize(const Attached &a, void *buf, size_t cap, size_t *len) {
    if (len == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "serialize %s: len is NULL", kind_name(a.kind));
    }
    uint8_t mem[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t mem_len = 0;
    if (dragon_status_t st =
            dragon_pool_mem_serialize(a.pool, a.base, a.size, mem, sizeof mem, &mem_len);
        st != DRAGON_SUCCESS) {
        return wrap(st, "serialize %s", kind_name(a.kind));
    }
    size_t need = kDescriptorFixed + mem_len;
    *len = need;
    if (buf == nullptr || cap < need) {
        return fail(DRAGON_BUFFER_TOO_SMALL,
                    "serialize %s: descriptor needs %zu bytes, buffer has %zu", kind_name(a.kind),
                    need, buf == nullptr ? 0 : cap);
    }
    auto *p = static_cast<uint8_t *>(buf);
    put_le(p, kDescriptorMagic, 4);
    p[4] = kDescriptorVersion;
    p[5] = static_cast<uint8_t>(a.kind);
    put_le(p + 6, mem_len, 2);
    put_le(p + 8, a.uid, 8);
    std::memcpy(p + kDescriptorFixed, mem, mem_len);
    return DRAGON_SUCCESS;
}

void release(Attached *a) {
    if (a->pool != nullptr && a->cached_pool) {
        PoolCache &cache = pool_cache();
        std::lock_guard<std::mutex> lock(cache.mu);
        for (auto it = cache.pools.begin(); it != cache.pools.end(); ++it) {
            if (it->second.pool == a->pool) {
                if (--it->second.refs == 0) {
                    dragon_pool_detach(it->second.pool);
                    cache.pools.erase(it);
                }
                break;
            }
        }
    }
    a->pool = nullptr;
    a->base = nullptr;
}

void retire(const Attached &a) {
    static_cast<ObjectHeader *>(a.base)->magic.store(0, std::memory_order_seq_cst);
    // From here the destroyer answers for the memory: killed before it frees it, it leaves a
    // block that dragon_pool_reclaim gives back.
    owner_of(a.pool, a.base).store(detail::self_tag(), std::memory_order_release);
}

dragon_status_t free_memory(Attached *a) {
    dragon_status_t st = dragon_pool_free(a->pool, a->base);
    release(a);
    return st;
}

} // namespace dragon::obj
