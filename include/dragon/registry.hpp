// libdragon C++ — the runtime's registry (dragon::Registry): name a pool, a channel, a queue,
// a sync object or a pool allocation in one process, attach to it by name in another.
// Header-only over dragon/registry.h.
#ifndef DRAGON_REGISTRY_HPP
#define DRAGON_REGISTRY_HPP

#include <dragon/channel.hpp>
#include <dragon/error.hpp>
#include <dragon/pool.hpp>
#include <dragon/registry.h>
#include <dragon/sync.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace dragon {

enum class RegistryKind {
    bytes = DRAGON_REGISTRY_BYTES,
    pool = DRAGON_REGISTRY_POOL,
    channel = DRAGON_REGISTRY_CHANNEL,
    dict = DRAGON_REGISTRY_DICT,
    queue = DRAGON_REGISTRY_QUEUE,
    lock = DRAGON_REGISTRY_LOCK,
    semaphore = DRAGON_REGISTRY_SEMAPHORE,
    event = DRAGON_REGISTRY_EVENT,
    barrier = DRAGON_REGISTRY_BARRIER,
    memory = DRAGON_REGISTRY_MEMORY, // a pool allocation's memory descriptor
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
    template <typename T>
    static void put(const std::string &name, const Queue<T> &queue, bool replace = false) {
        put(name, RegistryKind::queue, queue.descriptor(), replace);
    }
    static void put(const std::string &name, const Lock &lock, bool replace = false) {
        put(name, RegistryKind::lock, lock.descriptor(), replace);
    }
    static void put(const std::string &name, const Semaphore &sem, bool replace = false) {
        put(name, RegistryKind::semaphore, sem.descriptor(), replace);
    }
    static void put(const std::string &name, const Event &event, bool replace = false) {
        put(name, RegistryKind::event, event.descriptor(), replace);
    }
    static void put(const std::string &name, const Barrier &barrier, bool replace = false) {
        put(name, RegistryKind::barrier, barrier.descriptor(), replace);
    }
    // A pool allocation: another process attaches with Registry::memory and
    // Pool::attach_memory (the allocation stays owned by whoever frees it).
    static void put(const std::string &name, const Allocation &block, bool replace = false) {
        put(name, RegistryKind::memory, block.descriptor(), replace);
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

    // Queue<T>::attach checks the item type as well (docs/sync.md).
    template <typename T, typename Timeout = Forever>
    static Queue<T> queue(const std::string &name, Timeout timeout = forever,
                          WaitMode mode = WaitMode::process_default) {
        return Queue<T>::attach(expect(get(name, timeout), RegistryKind::queue, name).bytes, mode);
    }
    template <typename Timeout = Forever>
    static Lock lock(const std::string &name, Timeout timeout = forever,
                     WaitMode mode = WaitMode::process_default) {
        return Lock::attach(expect(get(name, timeout), RegistryKind::lock, name).bytes, mode);
    }
    template <typename Timeout = Forever>
    static Semaphore semaphore(const std::string &name, Timeout timeout = forever,
                               WaitMode mode = WaitMode::process_default) {
        return Semaphore::attach(expect(get(name, timeout), RegistryKind::semaphore, name).bytes,
                                 mode);
    }
    template <typename Timeout = Forever>
    static Event event(const std::string &name, Timeout timeout = forever,
                       WaitMode mode = WaitMode::process_default) {
        return Event::attach(expect(get(name, timeout), RegistryKind::event, name).bytes, mode);
    }
    template <typename Timeout = Forever>
    static Barrier barrier(const std::string &name, Timeout timeout = forever,
                           WaitMode mode = WaitMode::process_default) {
        return Barrier::attach(expect(get(name, timeout), RegistryKind::barrier, name).bytes, mode);
    }
    // The memory descriptor registered under `name` (for Pool::attach_memory / adopt).
    template <typename Timeout = Forever>
    static std::vector<std::uint8_t> memory(const std::string &name, Timeout timeout = forever) {
        return expect(get(name, timeout), RegistryKind::memory, name).bytes;
    }

    static void remove(const std::string &name) {
        detail::check(dragon_registry_unregister(name.c_str()));
    }

  private:
    static Value expect(Value v, RegistryKind kind, const std::string &name) {
        if (v.kind != kind) {
            static const char *const names[] = {"bytes",   "pool",  "channel",   "dictionary",
                                                "queue",   "lock",  "semaphore", "event",
                                                "barrier", "memory"};
            auto name_of = [](RegistryKind k) {
                auto i = static_cast<std::size_t>(k);
                return i < sizeof names / sizeof names[0] ? names[i] : "unknown kind";
            };
            throw Error(DRAGON_INVALID_ARGUMENT, "registry: '" + name + "' names a " +
                                                     name_of(v.kind) + ", not a " + name_of(kind));
        }
        return v;
    }
};

} // namespace dragon

#endif // DRAGON_REGISTRY_HPP
