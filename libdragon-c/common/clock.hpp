// Monotonic deadlines for blocking calls with a dragon_timeout_t.
#pragma once

#include <dragon/status.h>

#include <cstdint>
#include <ctime>

namespace dragon::detail {

inline int64_t monotonic_ns() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

class Deadline {
  public:
    explicit Deadline(dragon_timeout_t timeout)
        : forever_(timeout < 0), end_(timeout < 0 ? 0 : monotonic_ns() + timeout) {}

    bool forever() const { return forever_; }
    bool expired() const { return !forever_ && monotonic_ns() >= end_; }

    // Time left as a relative timespec for futex_wait; nullptr when waiting forever.
    const struct timespec *remaining(struct timespec *ts) const {
        if (forever_) {
            return nullptr;
        }
        int64_t left = end_ - monotonic_ns();
        if (left < 0) {
            left = 0;
        }
        ts->tv_sec = static_cast<time_t>(left / 1000000000LL);
        ts->tv_nsec = static_cast<long>(left % 1000000000LL);
        return ts;
    }

    // Time left as a timeout for another blocking call: DRAGON_TIMEOUT_FOREVER, or >= 0 ns.
    dragon_timeout_t left() const {
        if (forever_) {
            return DRAGON_TIMEOUT_FOREVER;
        }
        int64_t left = end_ - monotonic_ns();
        return left < 0 ? 0 : left;
    }

  private:
    bool forever_;
    int64_t end_;
};

} // namespace dragon::detail
