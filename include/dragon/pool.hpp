// libdragon C++ — managed-memory pools (dragon::Pool, dragon::Allocation).
// Move-only RAII handles over dragon/pool.h; failures throw dragon::Error.
#ifndef DRAGON_POOL_HPP
#define DRAGON_POOL_HPP

#include <dragon/error.hpp>
#include <dragon/pool.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dragon {

class Pool;

// One allocation of a pool; frees it on destruction unless release()d.
class Allocation {
  public:
    Allocation() noexcept = default;
    Allocation(dragon_pool_t *pool, void *data, std::size_t size) noexcept
        : pool_(pool), data_(data), size_(size) {}
    ~Allocation() { reset(); }

    Allocation(Allocation &&o) noexcept
        : pool_(std::exchange(o.pool_, nullptr)), data_(std::exchange(o.data_, nullptr)),
          size_(std::exchange(o.size_, 0)) {}
    Allocation &operator=(Allocation &&o) noexcept {
        if (this != &o) {
            reset();
            pool_ = std::exchange(o.pool_, nullptr);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    Allocation(const Allocation &) = delete;
    Allocation &operator=(const Allocation &) = delete;

    void *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    explicit operator bool() const noexcept { return data_ != nullptr; }

    template <typename T>
    T *as() const noexcept {
        return static_cast<T *>(data_);
    }

    // Serialized memory descriptor: another process turns it back into this memory with
    // Pool::attach_memory (and may free it with Pool::adopt).
    std::vector<std::uint8_t> descriptor() const {
        std::vector<std::uint8_t> buf(DRAGON_POOL_DESCRIPTOR_MAX);
        std::size_t len = 0;
        detail::check(dragon_pool_mem_serialize(pool_, data_, size_, buf.data(), buf.size(), &len));
        buf.resize(len);
        return buf;
    }

    // Give up ownership: the memory stays allocated and is no longer freed here.
    void *release() noexcept {
        pool_ = nullptr;
        size_ = 0;
        return std::exchange(data_, nullptr);
    }

    // Free now (throws if the pool refuses, e.g. someone else freed it already).
    void free() {
        if (data_ != nullptr) {
            void *p = std::exchange(data_, nullptr);
            size_ = 0;
            detail::check(dragon_pool_free(std::exchange(pool_, nullptr), p));
        }
    }

  private:
    void reset() noexcept {
        if (data_ != nullptr) {
            dragon_pool_free(pool_, data_); // destructors do not throw
            data_ = nullptr;
        }
    }

    dragon_pool_t *pool_ = nullptr;
    void *data_ = nullptr;
    std::size_t size_ = 0;
};

struct PoolOptions {
    std::string runtime_id;    // empty: from the environment
    std::int64_t node_id = -1; // -1: from the environment
    std::size_t min_block = 0; // 0: 64 bytes
    bool reserve = true;       // reserve the memory at creation (fail now, not SIGBUS later)
};

// An attached pool. Detaches on destruction; destroy() removes it for everybody.
class Pool {
  public:
    static Pool create(const std::string &name, std::size_t size, const PoolOptions &o = {}) {
        dragon_pool_attr_t attr = make_attr(o);
        dragon_pool_t *p = nullptr;
        detail::check(dragon_pool_create(name.c_str(), size, &attr, &p));
        return Pool(p);
    }
    static Pool attach(const std::string &name, const PoolOptions &o = {}) {
        dragon_pool_attr_t attr = make_attr(o);
        dragon_pool_t *p = nullptr;
        detail::check(dragon_pool_attach(name.c_str(), &attr, &p));
        return Pool(p);
    }
    // Attach by a serialized pool or memory descriptor.
    static Pool attach(const void *descriptor, std::size_t len) {
        dragon_pool_t *p = nullptr;
        detail::check(dragon_pool_attach_serialized(descriptor, len, &p));
        return Pool(p);
    }
    static Pool attach(const std::vector<std::uint8_t> &descriptor) {
        return attach(descriptor.data(), descriptor.size());
    }

    Pool() noexcept = default;
    explicit Pool(dragon_pool_t *handle) noexcept : pool_(handle) {}
    ~Pool() {
        if (pool_ != nullptr) {
            dragon_pool_detach(pool_);
        }
    }
    Pool(Pool &&o) noexcept : pool_(std::exchange(o.pool_, nullptr)) {}
    Pool &operator=(Pool &&o) noexcept {
        if (this != &o) {
            if (pool_ != nullptr) {
                dragon_pool_detach(pool_);
            }
            pool_ = std::exchange(o.pool_, nullptr);
        }
        return *this;
    }
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    dragon_pool_t *handle() const noexcept { return pool_; }
    explicit operator bool() const noexcept { return pool_ != nullptr; }

    // Remove the pool's segment and detach (the handle becomes empty).
    void destroy() {
        if (pool_ != nullptr) {
            detail::check(dragon_pool_destroy(std::exchange(pool_, nullptr)));
        }
    }

    std::string name() const {
        const char *n = nullptr;
        detail::check(dragon_pool_name(pool_, &n));
        return n;
    }
    std::string segment_name() const {
        const char *n = nullptr;
        detail::check(dragon_pool_segment_name(pool_, &n));
        return n;
    }

    std::vector<std::uint8_t> descriptor() const {
        std::vector<std::uint8_t> buf(DRAGON_POOL_DESCRIPTOR_MAX);
        std::size_t len = 0;
        detail::check(dragon_pool_serialize(pool_, buf.data(), buf.size(), &len));
        buf.resize(len);
        return buf;
    }

    dragon_pool_stats_t stats() const {
        dragon_pool_stats_t s{};
        s.struct_size = sizeof s;
        detail::check(dragon_pool_stats(pool_, &s));
        return s;
    }

    Allocation allocate(std::size_t size) {
        void *p = nullptr;
        detail::check(dragon_pool_alloc(pool_, size, &p));
        return Allocation(pool_, p, size);
    }
    template <typename Rep, typename Period>
    Allocation allocate(std::size_t size, std::chrono::duration<Rep, Period> timeout) {
        void *p = nullptr;
        detail::check(dragon_pool_alloc_timeout(pool_, size, detail::to_timeout(timeout), &p));
        return Allocation(pool_, p, size);
    }
    Allocation allocate(std::size_t size, Forever) {
        void *p = nullptr;
        detail::check(dragon_pool_alloc_timeout(pool_, size, DRAGON_TIMEOUT_FOREVER, &p));
        return Allocation(pool_, p, size);
    }

    // The memory a descriptor names, without taking ownership: {address, size}.
    std::pair<void *, std::size_t> attach_memory(const std::vector<std::uint8_t> &d) const {
        void *p = nullptr;
        std::size_t n = 0;
        detail::check(dragon_pool_mem_attach(pool_, d.data(), d.size(), &p, &n));
        return {p, n};
    }
    // Take ownership of the memory a descriptor names (it is freed here, by this process,
    // and belongs to it for dragon_pool_reclaim).
    Allocation adopt(const std::vector<std::uint8_t> &d) {
        auto [p, n] = attach_memory(d);
        detail::check(dragon_pool_adopt(pool_, p));
        return Allocation(pool_, p, n);
    }
    // Make a live allocation nobody's: reclaim never frees it (see dragon/pool.h).
    void disown(void *p) { detail::check(dragon_pool_disown(pool_, p)); }

    // Free what dead processes held: pid 0 means every dead owner (dragon_pool_reclaim).
    dragon_pool_reclaimed_t reclaim(pid_t pid = 0) {
        dragon_pool_reclaimed_t r{};
        r.struct_size = sizeof r;
        detail::check(dragon_pool_reclaim(pool_, pid, &r));
        return r;
    }

  private:
    static dragon_pool_attr_t make_attr(const PoolOptions &o) {
        dragon_pool_attr_t attr;
        dragon_pool_attr_init(&attr);
        attr.runtime_id = o.runtime_id.empty() ? nullptr : o.runtime_id.c_str();
        attr.node_id = o.node_id;
        attr.min_block = o.min_block;
        attr.flags = o.reserve ? 0U : DRAGON_POOL_NO_RESERVE;
        return attr;
    }

    dragon_pool_t *pool_ = nullptr;
};

} // namespace dragon

#endif // DRAGON_POOL_HPP
