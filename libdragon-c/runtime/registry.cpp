// The registry's C ABI (docs/registry.md): requests to the node daemon, which keeps the
// names (on one node it is the head node's global service).
#include "connection.hpp"
#include "protocol.hpp"

#include "../common/error.hpp"

#include <dragon/registry.h>

#include <cstring>
#include <string>

using dragon::detail::fail;
using dragon::detail::guarded;
namespace rt = dragon::runtime;
using json = nlohmann::json;

namespace {

dragon_status_t check_name(const char *name) {
    if (name == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "registry: name is NULL");
    }
    std::string n;
    return rt::parse_name({{"name", name}}, &n);
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
        json reply;
        return rt::request({{"op", "register"},
                            {"name", name},
                            {"kind", raw},
                            {"value", rt::hex_encode(value, len)},
                            {"replace", replace != 0}},
                           rt::kCallMs, &reply);
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
        json req = {{"op", "lookup"}, {"name", name}};
        req["timeout_ns"] = timeout < 0 ? int64_t{-1} : timeout;
        json reply;
        if (dragon_status_t st = rt::request(req, rt::reply_wait_ms(timeout), &reply);
            st != DRAGON_SUCCESS) {
            return st;
        }
        auto v = reply.find("value");
        auto k = reply.find("kind");
        std::string bytes;
        if (v == reply.end() || !v->is_string() || k == reply.end() || !k->is_number_integer() ||
            rt::hex_decode(v->get_ref<const std::string &>(), &bytes) != DRAGON_SUCCESS) {
            return fail(DRAGON_CORRUPTED, "node daemon: malformed lookup reply");
        }
        *len = bytes.size();
        if (kind != nullptr) {
            *kind = static_cast<dragon_registry_kind_t>(k->get<int>());
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
        json reply;
        return rt::request({{"op", "unregister"}, {"name", name}}, rt::kCallMs, &reply);
    });
}

} // extern "C"
