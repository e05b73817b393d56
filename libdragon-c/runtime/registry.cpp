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
