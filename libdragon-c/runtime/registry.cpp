// The registry's C ABI (docs/registry.md): requests to the node daemon, which keeps the
// names (on one node it is the head node's global service).
#include "endpoint.hpp"

#include "../common/error.hpp"

#include <dragon/registry.h>

#include <cstring>
#include <string>

using dragon::detail::fail;
using dragon::detail::guarded;
namespace rt = dragon::runtime;
namespace pr = dragon::protocol;

namespace {

dragon_status_t check_name(const char *name) {
    if (name == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "registry: name is NULL");
    }
    if (std::string why; !pr::valid_name(name, &why)) {
        return fail(DRAGON_INVALID_ARGUMENT, "%s", why.c_str());
    }
    return DRAGON_SUCCESS;
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_registry_register(const char *name, dragon_registry_kind_t kind,
                                                    const void *value, size_t len, int replace) {
    return guarded("dragon_registry_register", [&]() -> dragon_status_t {
        if (dragon_status_t st = check_name(name); st != DRAGON_SUCCESS) {
            return st;
        }
        int raw = 0;
        std::memcpy(&raw, &kind, sizeof raw);
        if (raw < 0 || raw > 255) {
            return fail(DRAGON_INVALID_ARGUMENT, "registry: kind %d out of range", raw);
        }
        if ((value == nullptr && len != 0) || len > DRAGON_REGISTRY_VALUE_MAX) {
            return fail(DRAGON_INVALID_ARGUMENT, "registry: values have 0 to %d bytes",
                        DRAGON_REGISTRY_VALUE_MAX);
        }
        pr::Register req;
        req.name = name;
        req.kind = static_cast<uint32_t>(raw);
        req.value.assign(static_cast<const char *>(value), len);
        req.replace = replace != 0;
        pr::Reply reply;
        return rt::request(std::move(req), rt::Endpoint::kCallMs, &reply);
    });
}

DRAGON_API dragon_status_t dragon_registry_lookup(const char *name, dragon_timeout_t timeout,
                                                  dragon_registry_kind_t *kind, void *buf,
                                                  size_t cap, size_t *len) {
    return guarded("dragon_registry_lookup", [&]() -> dragon_status_t {
        if (dragon_status_t st = check_name(name); st != DRAGON_SUCCESS) {
            return st;
        }
        if (len == nullptr || (buf == nullptr && cap != 0)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_registry_lookup: bad buffer");
        }
        pr::Lookup req;
        req.name = name;
        req.timeout_ns = timeout < 0 ? int64_t{-1} : timeout;
        pr::Reply reply;
        if (dragon_status_t st = rt::request(std::move(req), rt::reply_wait_ms(timeout), &reply);
            st != DRAGON_SUCCESS) {
            return st;
        }
        const auto *r = std::get_if<pr::LookupReply>(&reply.body);
        if (r == nullptr) {
            return fail(DRAGON_CORRUPTED, "node daemon: malformed lookup reply");
        }
        const std::string &bytes = r->value;
        *len = bytes.size();
        if (kind != nullptr) {
            *kind = static_cast<dragon_registry_kind_t>(r->kind);
        }
        if (bytes.size() > cap) {
            return fail(DRAGON_BUFFER_TOO_SMALL, "registry: '%s' has %zu bytes, the buffer %zu",
                        name, bytes.size(), cap);
        }
        if (!bytes.empty() && buf != nullptr) {
            std::memcpy(buf, bytes.data(), bytes.size());
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_registry_unregister(const char *name) {
    return guarded("dragon_registry_unregister", [&]() -> dragon_status_t {
        if (dragon_status_t st = check_name(name); st != DRAGON_SUCCESS) {
            return st;
        }
        pr::Reply reply;
        return rt::request(pr::Unregister{name}, rt::Endpoint::kCallMs, &reply);
    });
}

} // extern "C"

// ---- lookup and attach in one call ----

namespace {

const char *kind_name(uint32_t kind) {
    static const char *const names[] = {"bytes", "pool",      "channel", "dictionary", "queue",
                                        "lock",  "semaphore", "event",   "barrier",    "memory"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "unknown kind";
}

// Look name up, check its kind, then attach(bytes, len).
template <typename Attach>
dragon_status_t lookup_attach(const char *where, const char *name, dragon_timeout_t timeout,
                              dragon_registry_kind_t want, void *out, Attach attach) {
    return guarded(where, [&]() -> dragon_status_t {
        if (out == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "%s: output handle is NULL", where);
        }
        std::string buf(DRAGON_OBJECT_DESCRIPTOR_MAX > DRAGON_POOL_DESCRIPTOR_MAX
                            ? DRAGON_OBJECT_DESCRIPTOR_MAX
                            : DRAGON_POOL_DESCRIPTOR_MAX,
                        '\0');
        dragon_registry_kind_t kind = DRAGON_REGISTRY_BYTES;
        size_t len = 0;
        dragon_status_t st =
            dragon_registry_lookup(name, timeout, &kind, buf.data(), buf.size(), &len);
        if (st == DRAGON_BUFFER_TOO_SMALL && kind == want) {
            buf.resize(len);
            st = dragon_registry_lookup(name, 0, &kind, buf.data(), buf.size(), &len);
        }
        if (st != DRAGON_SUCCESS && !(st == DRAGON_BUFFER_TOO_SMALL && kind != want)) {
            return st;
        }
        if (kind != want) {
            return fail(DRAGON_INVALID_ARGUMENT, "registry: '%s' names a %s, not a %s", name,
                        kind_name(static_cast<uint32_t>(kind)),
                        kind_name(static_cast<uint32_t>(want)));
        }
        if (st = attach(buf.data(), len); st != DRAGON_SUCCESS) {
            return dragon::detail::wrap(st, "registry: attach to '%s'", name);
        }
        return DRAGON_SUCCESS;
    });
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_registry_attach_pool(const char *name, dragon_timeout_t timeout,
                                                       dragon_pool_t **pool) {
    return lookup_attach(
        "dragon_registry_attach_pool", name, timeout, DRAGON_REGISTRY_POOL, pool,
        [&](const void *b, size_t n) { return dragon_pool_attach_serialized(b, n, pool); });
}

DRAGON_API dragon_status_t dragon_registry_attach_channel(const char *name,
                                                          dragon_timeout_t timeout,
                                                          const dragon_channel_attr_t *attr,
                                                          dragon_channel_t **channel) {
    return lookup_attach(
        "dragon_registry_attach_channel", name, timeout, DRAGON_REGISTRY_CHANNEL, channel,
        [&](const void *b, size_t n) { return dragon_channel_attach(b, n, attr, channel); });
}

DRAGON_API dragon_status_t dragon_registry_attach_queue(const char *name, dragon_timeout_t timeout,
                                                        const dragon_channel_attr_t *attr,
                                                        dragon_queue_t **queue) {
    return lookup_attach(
        "dragon_registry_attach_queue", name, timeout, DRAGON_REGISTRY_QUEUE, queue,
        [&](const void *b, size_t n) { return dragon_queue_attach(b, n, attr, queue); });
}

DRAGON_API dragon_status_t dragon_registry_attach_lock(const char *name, dragon_timeout_t timeout,
                                                       const dragon_channel_attr_t *attr,
                                                       dragon_lock_t **lock) {
    return lookup_attach(
        "dragon_registry_attach_lock", name, timeout, DRAGON_REGISTRY_LOCK, lock,
        [&](const void *b, size_t n) { return dragon_lock_attach(b, n, attr, lock); });
}

DRAGON_API dragon_status_t dragon_registry_attach_semaphore(const char *name,
                                                            dragon_timeout_t timeout,
                                                            const dragon_channel_attr_t *attr,
                                                            dragon_semaphore_t **sem) {
    return lookup_attach(
        "dragon_registry_attach_semaphore", name, timeout, DRAGON_REGISTRY_SEMAPHORE, sem,
        [&](const void *b, size_t n) { return dragon_semaphore_attach(b, n, attr, sem); });
}

DRAGON_API dragon_status_t dragon_registry_attach_event(const char *name, dragon_timeout_t timeout,
                                                        const dragon_channel_attr_t *attr,
                                                        dragon_event_t **event) {
    return lookup_attach(
        "dragon_registry_attach_event", name, timeout, DRAGON_REGISTRY_EVENT, event,
        [&](const void *b, size_t n) { return dragon_event_attach(b, n, attr, event); });
}

DRAGON_API dragon_status_t dragon_registry_attach_barrier(const char *name,
                                                          dragon_timeout_t timeout,
                                                          const dragon_channel_attr_t *attr,
                                                          dragon_barrier_t **barrier) {
    return lookup_attach(
        "dragon_registry_attach_barrier", name, timeout, DRAGON_REGISTRY_BARRIER, barrier,
        [&](const void *b, size_t n) { return dragon_barrier_attach(b, n, attr, barrier); });
}

} // extern "C"
