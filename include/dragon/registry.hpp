// libdragon C++ — the runtime's registry (dragon::Registry): name a pool or a channel in one
// process, attach to it by name in another. Header-only over dragon/registry.h.
#ifndef DRAGON_REGISTRY_HPP
#define DRAGON_REGISTRY_HPP

#include <dragon/channel.hpp>
#include <dragon/error.hpp>
#include <dragon/pool.hpp>
#include <dragon/registry.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dragon {

enum class RegistryKind {
    bytes = DRAGON_REGISTRY_BYTES,
    pool = DRAGON_REGISTRY_POOL,
    channel = DRAGON_REGISTRY_CHANNEL,
    dict = DRAGON_REGISTRY_DICT,
};

class Registry {
  public:
    struct Value {
        RegistryKind kind;
        std::vector<std::uint8_t> bytes;
    };

    static void put(const std::string &name, RegistryKind kind,
                    const std::vector<std::uint8_t> &bytes, bool replace = false) {
        detail::check(dragon_registry_register(name.c_str(),
                                               static_cast<dragon_registry_kind_t>(kind),
                                               bytes.data(), bytes.size(), replace ? 1 : 0));
    }
    static void put(const std::string &name, const Pool &pool, bool replace = false) {
        put(name, RegistryKind::pool, pool.descriptor(), replace);
    }
    static void put(const std::string &name, const Channel &channel, bool replace = false) {
        put(name, RegistryKind::channel, channel.descriptor(), replace);
    }

    // Wait up to `timeout` for the name to be registered; throws Error (DRAGON_TIMEOUT,
    // DRAGON_NOT_FOUND for a zero timeout) if it is not.
    template <typename Timeout = Forever>
    static Value get(const std::string &name, Timeout timeout = forever) {
        std::vector<std::uint8_t> buf(256);
        dragon_registry_kind_t kind = DRAGON_REGISTRY_BYTES;
        std::size_t len = 0;
        dragon_timeout_t t = detail::timeout_of(timeout);
        dragon_status_t st =
            dragon_registry_lookup(name.c_str(), t, &kind, buf.data(), buf.size(), &len);
        if (st == DRAGON_BUFFER_TOO_SMALL) {
            buf.resize(len);
            st = dragon_registry_lookup(name.c_str(), 0, &kind, buf.data(), buf.size(), &len);
        }
        detail::check(st);
        buf.resize(len);
        return Value{static_cast<RegistryKind>(kind), std::move(buf)};
    }

    // Attach to the pool / channel registered under `name`.
    template <typename Timeout = Forever>
    static Pool pool(const std::string &name, Timeout timeout = forever) {
        return Pool::attach(expect(get(name, timeout), RegistryKind::pool, name).bytes);
    }
    template <typename Timeout = Forever>
    static Channel channel(const std::string &name, Timeout timeout = forever,
                           WaitMode mode = WaitMode::process_default) {
        return Channel::attach(expect(get(name, timeout), RegistryKind::channel, name).bytes, mode);
    }

    static void remove(const std::string &name) {
        detail::check(dragon_registry_unregister(name.c_str()));
    }

  private:
    static Value expect(Value v, RegistryKind kind, const std::string &name) {
        if (v.kind != kind) {
            throw Error(DRAGON_INVALID_ARGUMENT,
                        "registry: '" + name + "' is registered with another kind");
        }
        return v;
    }
};

} // namespace dragon

#endif // DRAGON_REGISTRY_HPP
