// libdragon C++ — channels and channel sets (dragon::Channel, dragon::ChannelSet).
// Move-only RAII handles over dragon/channel.h; failures throw dragon::Error (a timeout is
// Error with status DRAGON_TIMEOUT, except for the try_* calls, which return empty).
#ifndef DRAGON_CHANNEL_HPP
#define DRAGON_CHANNEL_HPP

#include <dragon/channel.h>
#include <dragon/error.hpp>
#include <dragon/pool.hpp>
#include <dragon/wait.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace dragon {

namespace detail {

inline dragon_channel_attr_t channel_attr(WaitMode mode) {
    dragon_channel_attr_t attr;
    dragon_channel_attr_init(&attr);
    attr.wait_mode = static_cast<dragon_wait_mode_t>(mode);
    return attr;
}

// A timeout argument: a std::chrono duration, or dragon::forever.
template <typename Rep, typename Period>
dragon_timeout_t timeout_of(std::chrono::duration<Rep, Period> d) {
    return to_timeout(d);
}
inline dragon_timeout_t timeout_of(Forever) {
    return DRAGON_TIMEOUT_FOREVER;
}

inline std::vector<std::uint8_t> descriptor_buffer() {
    return std::vector<std::uint8_t>(DRAGON_OBJECT_DESCRIPTOR_MAX);
}

} // namespace detail

class Channel {
  public:
    struct Info {
        std::uint64_t capacity;
        std::uint64_t slot_size;
        std::uint64_t count;
        std::uint32_t blocked_senders;
        std::uint32_t blocked_receivers;
    };

    // A channel of `capacity` messages with `slot_size`-byte slots in `pool` (which must stay
    // attached while this handle lives).
    static Channel create(Pool &pool, std::size_t capacity, std::size_t slot_size,
                          WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_channel_t *ch = nullptr;
        detail::check(dragon_channel_create(pool.handle(), capacity, slot_size, &attr, &ch));
        return Channel(ch);
    }
    static Channel attach(const std::vector<std::uint8_t> &descriptor,
                          WaitMode mode = WaitMode::process_default) {
        dragon_channel_attr_t attr = detail::channel_attr(mode);
        dragon_channel_t *ch = nullptr;
        detail::check(dragon_channel_attach(descriptor.data(), descriptor.size(), &attr, &ch));
        return Channel(ch);
    }

    Channel() noexcept = default;
    explicit Channel(dragon_channel_t *handle) noexcept : ch_(handle) {}
    ~Channel() {
        if (ch_ != nullptr) {
            dragon_channel_detach(ch_);
        }
    }
    Channel(Channel &&o) noexcept : ch_(std::exchange(o.ch_, nullptr)) {}
    Channel &operator=(Channel &&o) noexcept {
        if (this != &o) {
            if (ch_ != nullptr) {
                dragon_channel_detach(ch_);
            }
            ch_ = std::exchange(o.ch_, nullptr);
        }
        return *this;
    }
    Channel(const Channel &) = delete;
    Channel &operator=(const Channel &) = delete;

    dragon_channel_t *handle() const noexcept { return ch_; }
    explicit operator bool() const noexcept { return ch_ != nullptr; }

    // Destroy for everybody (blocked calls elsewhere get DRAGON_CLOSED); the handle empties.
    void destroy() {
        if (ch_ != nullptr) {
            detail::check(dragon_channel_destroy(std::exchange(ch_, nullptr)));
        }
    }

    std::vector<std::uint8_t> descriptor() const {
        auto buf = detail::descriptor_buffer();
        std::size_t len = 0;
        detail::check(dragon_channel_serialize(ch_, buf.data(), buf.size(), &len));
        buf.resize(len);
        return buf;
    }

    void set_wait_mode(WaitMode mode) {
        detail::check(dragon_channel_set_wait_mode(ch_, static_cast<dragon_wait_mode_t>(mode)));
    }

    Info info() const {
        dragon_channel_info_t i{};
        i.struct_size = sizeof i;
        detail::check(dragon_channel_info(ch_, &i));
        return Info{i.capacity, i.slot_size, i.count, i.blocked_senders, i.blocked_receivers};
    }

    // ---- send ----
    template <typename Timeout = Forever>
    void send(const void *data, std::size_t len, Timeout timeout = forever) {
        detail::check(dragon_channel_send(ch_, data, len, detail::timeout_of(timeout)));
    }
    // A trivially copyable value, as its bytes.
    template <typename T, typename Timeout = Forever>
    void send_value(const T &value, Timeout timeout = forever) {
        static_assert(std::is_trivially_copyable_v<T>, "send_value needs a trivially copyable T");
        send(&value, sizeof value, timeout);
    }
    // Zero-copy: the allocation (of this channel's pool) moves to the receiver.
    template <typename Timeout = Forever>
    void send(Allocation &&allocation, std::size_t len, Timeout timeout = forever) {
        detail::check(
            dragon_channel_send_mem(ch_, allocation.data(), len, detail::timeout_of(timeout)));
        allocation.release();
    }
    // false if the channel stayed full for `timeout`.
    template <typename Timeout>
    bool try_send(const void *data, std::size_t len, Timeout timeout) {
        dragon_status_t st = dragon_channel_send(ch_, data, len, detail::timeout_of(timeout));
        if (st == DRAGON_TIMEOUT) {
            return false;
        }
        detail::check(st);
        return true;
    }

    // ---- recv ----
    // Into a buffer; returns the message's length. Error(DRAGON_BUFFER_TOO_SMALL) leaves the
    // message queued.
    template <typename Timeout = Forever>
    std::size_t recv(void *buf, std::size_t cap, Timeout timeout = forever) {
        std::size_t len = 0;
        detail::check(dragon_channel_recv(ch_, buf, cap, &len, detail::timeout_of(timeout)));
        return len;
    }
    // The next message as bytes, whatever its length.
    template <typename Timeout = Forever>
    std::vector<std::uint8_t> recv_bytes(Timeout timeout = forever) {
        auto out = try_recv_bytes(timeout);
        if (!out) {
            detail::check(DRAGON_TIMEOUT);
        }
        return std::move(*out);
    }
    template <typename Timeout>
    std::optional<std::vector<std::uint8_t>> try_recv_bytes(Timeout timeout) {
        dragon_timeout_t t = detail::timeout_of(timeout);
        std::vector<std::uint8_t> buf(static_cast<std::size_t>(info().slot_size));
        for (;;) {
            std::size_t len = 0;
            dragon_status_t st = dragon_channel_recv(ch_, buf.data(), buf.size(), &len, t);
            if (st == DRAGON_SUCCESS) {
                buf.resize(len);
                return buf;
            }
            if (st == DRAGON_TIMEOUT) {
                return std::nullopt;
            }
            if (st != DRAGON_BUFFER_TOO_SMALL) {
                detail::check(st);
            }
            buf.resize(len); // the message is still there: retry with room for it
            t = 0;
        }
    }
    template <typename T, typename Timeout = Forever>
    T recv_value(Timeout timeout = forever) {
        static_assert(std::is_trivially_copyable_v<T>, "recv_value needs a trivially copyable T");
        T value{};
        std::size_t len = recv(&value, sizeof value, timeout);
        if (len != sizeof value) {
            throw Error(DRAGON_INVALID_ARGUMENT, "recv_value: the message has the wrong size");
        }
        return value;
    }
    // Zero-copy receive: the message as an allocation of this channel's pool, now owned by
    // the caller.
    template <typename Timeout = Forever>
    Allocation recv_mem(Timeout timeout = forever) {
        void *p = nullptr;
        std::size_t len = 0;
        detail::check(dragon_channel_recv_mem(ch_, &p, &len, detail::timeout_of(timeout)));
        dragon_pool_t *pool = nullptr;
        dragon_channel_pool(ch_, &pool);
        return Allocation(pool, p, len);
    }

  private:
    dragon_channel_t *ch_ = nullptr;
};

// Wait on many channels at once. Holds non-owning references: keep the channels alive.
class ChannelSet {
  public:
    ChannelSet() = default;
    explicit ChannelSet(const std::vector<Channel *> &channels) {
        for (Channel *c : channels) {
            add(*c);
        }
    }
    void add(Channel &c) { handles_.push_back(c.handle()); }
    std::size_t size() const noexcept { return handles_.size(); }

    // What each channel is ready for (DRAGON_CHANNEL_* bits); std::nullopt on timeout.
    template <typename Timeout = Forever>
    std::optional<std::vector<std::uint32_t>> wait(std::uint32_t events = DRAGON_CHANNEL_READABLE,
                                                   Timeout timeout = forever) const {
        std::vector<std::uint32_t> rev(handles_.size());
        dragon_status_t st = dragon_channel_poll(handles_.data(), handles_.size(), events,
                                                 rev.data(), detail::timeout_of(timeout));
        if (st == DRAGON_TIMEOUT) {
            return std::nullopt;
        }
        detail::check(st);
        return rev;
    }
    // The index of the first channel that is readable, or std::nullopt on timeout.
    template <typename Timeout = Forever>
    std::optional<std::size_t> wait_readable(Timeout timeout = forever) const {
        auto rev = wait(DRAGON_CHANNEL_READABLE, timeout);
        if (!rev) {
            return std::nullopt;
        }
        for (std::size_t i = 0; i < rev->size(); ++i) {
            if ((*rev)[i] != 0) {
                return i;
            }
        }
        return std::nullopt;
    }

  private:
    std::vector<dragon_channel_t *> handles_;
};

} // namespace dragon

#endif // DRAGON_CHANNEL_HPP
