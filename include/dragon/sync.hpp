// libdragon C++ — synchronisation objects between processes: dragon::Queue<T>,
// dragon::Lock, dragon::Semaphore, dragon::Event, dragon::Barrier. Move-only RAII handles
// over dragon/sync.h; each is created in a Pool and attached elsewhere by its descriptor().
#ifndef DRAGON_SYNC_HPP
#define DRAGON_SYNC_HPP

#include <dragon/channel.hpp>
#include <dragon/error.hpp>
#include <dragon/pool.hpp>
#include <dragon/sync.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace dragon {

namespace detail {

// The handle plumbing every sync object shares: ownership, detach, destroy, descriptor.
template <typename H, dragon_status_t (*Detach)(H *), dragon_status_t (*Destroy)(H *),
          dragon_status_t (*Serialize)(const H *, void *, std::size_t, std::size_t *)>
class SyncHandle {
  public:
    SyncHandle() noexcept = default;
    explicit SyncHandle(H *h) noexcept : h_(h) {}
    ~SyncHandle() {
        if (h_ != nullptr) {
            Detach(h_);
        }
    }
    SyncHandle(SyncHandle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    SyncHandle &operator=(SyncHandle &&o) noexcept {
        if (this != &o) {
            if (h_ != nullptr) {
                Detach(h_);
            }
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    SyncHandle(const SyncHandle &) = delete;
    SyncHandle &operator=(const SyncHandle &) = delete;

    H *handle() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }

    void destroy() {
        if (h_ != nullptr) {
            check(Destroy(std::exchange(h_, nullptr)));
        }
    }
    std::vector<std::uint8_t> descriptor() const {
        auto buf = descriptor_buffer();
        std::size_t len = 0;
        check(Serialize(h_, buf.data(), buf.size(), &len));
        buf.resize(len);
        return buf;
    }

  protected:
    H *h_ = nullptr;
};

// true on success, false on DRAGON_TIMEOUT, throws otherwise.
inline bool timed(dragon_status_t st) {
    if (st == DRAGON_TIMEOUT) {
        return false;
    }
    check(st);
    return true;
}

template <typename T>
struct is_byte_buffer : std::false_type {};
template <>
struct is_byte_buffer<std::vector<std::uint8_t>> : std::true_type {};
template <>
struct is_byte_buffer<std::string> : std::true_type {};

// Queue<T>'s type tag in the queue's header: FNV-1a over T's mangled name and size, so two
// programs built with the same C++ ABI agree on it (never 0, which means untyped).
template <typename T>
std::uint64_t queue_type_tag() {
    std::uint64_t h = 14695981039346656037ULL;
    for (const char *c = typeid(T).name(); *c != '\0'; ++c) {
        h = (h ^ static_cast<unsigned char>(*c)) * 1099511628211ULL;
    }
    h = (h ^ sizeof(T)) * 1099511628211ULL;
    return h == 0 ? 1 : h;
}

} // namespace detail

// A multiprocessing-style queue of T: a trivially copyable type, or a byte buffer
// (std::vector<std::uint8_t> or std::string) of any length.
template <typename T>
class Queue : public detail::SyncHandle<dragon_queue_t, dragon_queue_detach, dragon_queue_destroy,
                                        dragon_queue_serialize> {
    static_assert(std::is_trivially_copyable_v<T> || detail::is_byte_buffer<T>::value,
                  "Queue<T> needs a trivially copyable T or a byte buffer");
    using Base = detail::SyncHandle<dragon_queue_t, dragon_queue_detach, dragon_queue_destroy,
                                    dragon_queue_serialize>;

  public:
    using Base::Base;

    // maxsize 0: DRAGON_QUEUE_DEFAULT_MAXSIZE. A queue of values holds items of exactly
    // sizeof(T) bytes tagged with T's type (item_size is ignored); a queue of byte buffers
    // holds any length, item_size bytes in a slot (0: 256), longer ones as pool allocations.
    static Queue create(Pool &pool, std::size_t maxsize = 0, std::size_t item_size = 0,
                        WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_queue_t *q = nullptr;
        if constexpr (detail::is_byte_buffer<T>::value) {
            detail::check(dragon_queue_create(pool.handle(), maxsize, item_size, &attr, &q));
        } else {
            (void)item_size;
            detail::check(dragon_queue_create_typed(pool.handle(), maxsize, sizeof(T),
                                                    detail::queue_type_tag<T>(), &attr, &q));
        }
        return Queue(q);
    }
    // Refuses (Error DRAGON_INVALID_ARGUMENT) a queue of another item type: values need a
    // queue of sizeof(T)-byte items of T (or untyped), byte buffers one of any length.
    static Queue attach(const std::vector<std::uint8_t> &d,
                        WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_queue_t *q = nullptr;
        if constexpr (detail::is_byte_buffer<T>::value) {
            detail::check(dragon_queue_attach(d.data(), d.size(), &attr, &q));
            Queue queue(q);
            std::size_t fixed = 0;
            detail::check(dragon_queue_item_type(q, &fixed, nullptr));
            if (fixed != 0) {
                throw Error(DRAGON_INVALID_ARGUMENT,
                            "Queue::attach: a queue of " + std::to_string(fixed) +
                                "-byte values, not of byte buffers (nothing was taken from it)");
            }
            return queue;
        } else {
            detail::check(dragon_queue_attach_typed(d.data(), d.size(), sizeof(T),
                                                    detail::queue_type_tag<T>(), &attr, &q));
            return Queue(q);
        }
    }

    // Error(DRAGON_TIMEOUT) if the queue stayed full.
    template <typename Timeout = Forever>
    void put(const T &item, Timeout timeout = forever) {
        if (!try_put(item, timeout)) {
            detail::check(DRAGON_TIMEOUT);
        }
    }
    template <typename Timeout>
    bool try_put(const T &item, Timeout timeout) {
        dragon_timeout_t t = detail::timeout_of(timeout);
        if constexpr (detail::is_byte_buffer<T>::value) {
            return detail::timed(dragon_queue_put(this->h_, item.data(), item.size(), t));
        } else {
            return detail::timed(dragon_queue_put(this->h_, &item, sizeof item, t));
        }
    }

    // Error(DRAGON_TIMEOUT) if the queue stayed empty.
    template <typename Timeout = Forever>
    T get(Timeout timeout = forever) {
        std::optional<T> item = try_get(timeout);
        if (!item) {
            detail::check(DRAGON_TIMEOUT);
        }
        return std::move(*item);
    }
    template <typename Timeout>
    std::optional<T> try_get(Timeout timeout) {
        dragon_timeout_t t = detail::timeout_of(timeout);
        std::size_t len = 0;
        if constexpr (detail::is_byte_buffer<T>::value) {
            T buf(256, typename T::value_type{});
            for (;;) {
                dragon_status_t st = dragon_queue_get(this->h_, buf.data(), buf.size(), &len, t);
                if (st == DRAGON_BUFFER_TOO_SMALL) {
                    buf.resize(len);
                    t = 0; // the item stays queued for us; take it now
                    continue;
                }
                if (!detail::timed(st)) {
                    return std::nullopt;
                }
                buf.resize(len);
                return buf;
            }
        } else {
            T item{};
            if (!detail::timed(dragon_queue_get(this->h_, &item, sizeof item, &len, t))) {
                return std::nullopt;
            }
            // attach_typed and put's size check keep other sizes out of this queue
            return item;
        }
    }

    void task_done() { detail::check(dragon_queue_task_done(this->h_)); }
    template <typename Timeout = Forever>
    bool join(Timeout timeout = forever) {
        return detail::timed(dragon_queue_join(this->h_, detail::timeout_of(timeout)));
    }
    std::size_t size() const {
        std::size_t n = 0;
        detail::check(dragon_queue_size(this->h_, &n, nullptr));
        return n;
    }
    std::size_t maxsize() const {
        std::size_t n = 0;
        detail::check(dragon_queue_size(this->h_, nullptr, &n));
        return n;
    }
    bool empty() const { return size() == 0; }
    bool full() const { return size() >= maxsize(); }
};

// A lock between processes; also a BasicLockable (std::lock_guard, std::unique_lock).
class Lock : public detail::SyncHandle<dragon_lock_t, dragon_lock_detach, dragon_lock_destroy,
                                       dragon_lock_serialize> {
  public:
    using SyncHandle::SyncHandle;

    static Lock create(Pool &pool, bool recursive = false,
                       WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_lock_t *l = nullptr;
        detail::check(dragon_lock_create(pool.handle(), recursive ? 1 : 0, &attr, &l));
        return Lock(l);
    }
    static Lock attach(const std::vector<std::uint8_t> &d,
                       WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_lock_t *l = nullptr;
        detail::check(dragon_lock_attach(d.data(), d.size(), &attr, &l));
        return Lock(l);
    }

    // DRAGON_SUCCESS, DRAGON_OWNER_DIED (acquired; the previous holder died holding it) or
    // DRAGON_TIMEOUT (not acquired); throws on anything else.
    template <typename Timeout = Forever>
    dragon_status_t acquire(Timeout timeout = forever) {
        dragon_status_t st = dragon_lock_acquire(h_, detail::timeout_of(timeout));
        if (st != DRAGON_SUCCESS && st != DRAGON_OWNER_DIED && st != DRAGON_TIMEOUT) {
            detail::check(st);
        }
        owner_died_ = st == DRAGON_OWNER_DIED;
        return st;
    }
    void release() { detail::check(dragon_lock_release(h_)); }

    void lock() { acquire(forever); }
    bool try_lock() { return acquire(std::chrono::nanoseconds(0)) != DRAGON_TIMEOUT; }
    void unlock() { release(); }
    // Whether the last acquire through this handle inherited the lock from a dead holder.
    bool owner_died() const noexcept { return owner_died_; }
    bool locked() const {
        int l = 0;
        detail::check(dragon_lock_locked(h_, &l));
        return l != 0;
    }

  private:
    bool owner_died_ = false;
};

class Semaphore : public detail::SyncHandle<dragon_semaphore_t, dragon_semaphore_detach,
                                            dragon_semaphore_destroy, dragon_semaphore_serialize> {
  public:
    using SyncHandle::SyncHandle;

    static Semaphore create(Pool &pool, std::uint32_t value = 1, bool bounded = false,
                            WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_semaphore_t *s = nullptr;
        detail::check(dragon_semaphore_create(pool.handle(), value, bounded ? 1 : 0, &attr, &s));
        return Semaphore(s);
    }
    static Semaphore attach(const std::vector<std::uint8_t> &d,
                            WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_semaphore_t *s = nullptr;
        detail::check(dragon_semaphore_attach(d.data(), d.size(), &attr, &s));
        return Semaphore(s);
    }
    // false on timeout.
    template <typename Timeout = Forever>
    bool acquire(Timeout timeout = forever) {
        return detail::timed(dragon_semaphore_acquire(h_, detail::timeout_of(timeout)));
    }
    void release() { detail::check(dragon_semaphore_release(h_)); }
    std::uint32_t value() const {
        std::uint32_t v = 0;
        detail::check(dragon_semaphore_value(h_, &v));
        return v;
    }
};

class Event : public detail::SyncHandle<dragon_event_t, dragon_event_detach, dragon_event_destroy,
                                        dragon_event_serialize> {
  public:
    using SyncHandle::SyncHandle;

    static Event create(Pool &pool, WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_event_t *e = nullptr;
        detail::check(dragon_event_create(pool.handle(), &attr, &e));
        return Event(e);
    }
    static Event attach(const std::vector<std::uint8_t> &d,
                        WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_event_t *e = nullptr;
        detail::check(dragon_event_attach(d.data(), d.size(), &attr, &e));
        return Event(e);
    }
    void set() { detail::check(dragon_event_set(h_)); }
    void clear() { detail::check(dragon_event_clear(h_)); }
    bool is_set() const {
        int s = 0;
        detail::check(dragon_event_is_set(h_, &s));
        return s != 0;
    }
    // false on timeout.
    template <typename Timeout = Forever>
    bool wait(Timeout timeout = forever) {
        return detail::timed(dragon_event_wait(h_, detail::timeout_of(timeout)));
    }
};

class Barrier : public detail::SyncHandle<dragon_barrier_t, dragon_barrier_detach,
                                          dragon_barrier_destroy, dragon_barrier_serialize> {
  public:
    using SyncHandle::SyncHandle;

    static Barrier create(Pool &pool, std::uint32_t parties,
                          WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_barrier_t *b = nullptr;
        detail::check(dragon_barrier_create(pool.handle(), parties, &attr, &b));
        return Barrier(b);
    }
    static Barrier attach(const std::vector<std::uint8_t> &d,
                          WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_barrier_t *b = nullptr;
        detail::check(dragon_barrier_attach(d.data(), d.size(), &attr, &b));
        return Barrier(b);
    }
    // This caller's arrival index (0 .. parties-1). Throws Error(DRAGON_BROKEN) if the
    // barrier is or becomes broken, Error(DRAGON_TIMEOUT) if this wait timed out (which
    // breaks it for the others).
    template <typename Timeout = Forever>
    std::uint32_t wait(Timeout timeout = forever) {
        std::uint32_t index = 0;
        detail::check(dragon_barrier_wait(h_, detail::timeout_of(timeout), &index));
        return index;
    }
    void abort() { detail::check(dragon_barrier_abort(h_)); }
    void reset() { detail::check(dragon_barrier_reset(h_)); }
    std::uint32_t parties() const {
        std::uint32_t p = 0;
        detail::check(dragon_barrier_info(h_, &p, nullptr, nullptr));
        return p;
    }
    std::uint32_t n_waiting() const {
        std::uint32_t w = 0;
        detail::check(dragon_barrier_info(h_, nullptr, &w, nullptr));
        return w;
    }
    bool broken() const {
        int b = 0;
        detail::check(dragon_barrier_info(h_, nullptr, nullptr, &b));
        return b != 0;
    }
};

} // namespace dragon

#endif // DRAGON_SYNC_HPP
