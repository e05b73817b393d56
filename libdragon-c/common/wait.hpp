// The one blocking loop of channels and sync objects: try, spin (mode permitting), then
// sleep on a futex word in shared memory until a waker bumps it, the deadline passes or the
// object is destroyed.
//
// Protocol with wakers (a Dekker pair, both sides sequentially consistent):
//   waiter: sleepers += 1; fence; v = word; try again; futex_wait(word, v)
//   waker:  publish (a seq_cst RMW, or a store and a fence); if (sleepers != 0) {
//           word += 1; futex_wake(word) }
// Either the waiter's retry sees the publication, or the waker sees the sleeper and wakes
// it. Wakers pay one load of `sleepers` (a line nobody writes on the fast path) and no
// system call while nobody sleeps.
#pragma once

#include "clock.hpp"
#include "futex.hpp"

#include <dragon/status.h>

#include <atomic>
#include <cstdint>

namespace dragon::detail {

enum class WaitMode : uint32_t { kAdaptive = 0, kSpin = 1, kIdle = 2 };

// Outcome of one attempt.
enum class Attempt {
    kDone,  // finished (the status says how)
    kAgain, // not possible yet
    kStuck, // not possible yet, and blocked by a peer mid-operation: retry soon, since
            // nobody may wake us if that peer died
};

// How long adaptive mode spins before it sleeps.
constexpr int64_t kAdaptiveSpinNs = 20000;
// How long a sleeper blocked by a peer mid-operation sleeps before it looks again (the
// first time; the slice doubles up to kStuckSliceMaxNs while the peer stays alive).
constexpr int64_t kStuckSliceNs = 5000000;
constexpr int64_t kStuckSliceMaxNs = 200000000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

struct WaitWords {
    std::atomic<uint32_t> *sleepers; // processes asleep on `word` (gates wakes)
    std::atomic<uint32_t> *word;     // bumped by every waker
    std::atomic<uint32_t> *blocked;  // processes inside a blocking call (queries only)
};

// For a waker whose publication was a sequentially consistent read-modify-write (an
// exchange or CAS): that already orders it before the load of `sleepers`, so no fence. On
// x86 this makes the check one plain load.
inline void wake_sleepers_after_rmw(std::atomic<uint32_t> *sleepers, std::atomic<uint32_t> *word) {
    if (sleepers->load(std::memory_order_seq_cst) != 0) {
        word->fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(word);
    }
}

// For any other waker (a plain store, or a weaker RMW).
inline void wake_sleepers(std::atomic<uint32_t> *sleepers, std::atomic<uint32_t> *word) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_sleepers_after_rmw(sleepers, word);
}

// attempt(bool check_peers) -> Attempt, writing the final status into *status when kDone.
// check_peers allows the attempt to run slow liveness checks on peers it finds stuck.
template <typename F>
dragon_status_t blocking_wait(WaitMode mode, dragon_timeout_t timeout, const WaitWords &w,
                              F &&attempt) {
    dragon_status_t status = DRAGON_SUCCESS;
    Attempt a = attempt(timeout == 0, &status);
    if (a == Attempt::kDone) {
        return status;
    }
    if (timeout == 0) {
        return DRAGON_TIMEOUT;
    }
    Deadline deadline(timeout);
    // Counted as blocked (for queries) only once the wait lasts: a call that waits a few
    // hundred nanoseconds, as in a ping-pong, does not write the shared counter at all.
    struct Leave {
        std::atomic<uint32_t> *blocked;
        bool counted = false;
        void count() {
            if (!counted) {
                counted = true;
                blocked->fetch_add(1, std::memory_order_relaxed);
            }
        }
        ~Leave() {
            if (counted) {
                blocked->fetch_sub(1, std::memory_order_relaxed);
            }
        }
    } leave{w.blocked};

    if (mode != WaitMode::kIdle) {
        int64_t spin_end = mode == WaitMode::kSpin ? INT64_MAX : monotonic_ns() + kAdaptiveSpinNs;
        for (unsigned i = 1;; ++i) {
            cpu_relax();
            bool check_time = (i & 63U) == 0;
            a = attempt(check_time && mode == WaitMode::kSpin && (i & 0xFFFFU) == 0, &status);
            if (a == Attempt::kDone) {
                return status;
            }
            if (check_time) {
                leave.count();
                int64_t now = monotonic_ns();
                if (!deadline.forever() && deadline.expired()) {
                    return DRAGON_TIMEOUT;
                }
                if (now >= spin_end) {
                    break;
                }
            }
        }
    }

    leave.count();
    w.sleepers->fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst); // before every later retry's loads
    struct Wake {
        std::atomic<uint32_t> *sleepers;
        ~Wake() { sleepers->fetch_sub(1, std::memory_order_seq_cst); }
    } wake{w.sleepers};
    int64_t stuck_slice = kStuckSliceNs;
    for (;;) {
        uint32_t seen = w.word->load(std::memory_order_seq_cst);
        a = attempt(true, &status);
        if (a == Attempt::kDone) {
            return status;
        }
        if (deadline.expired()) {
            return DRAGON_TIMEOUT;
        }
        struct timespec ts {};
        const struct timespec *rel = deadline.remaining(&ts);
        struct timespec slice {
            0, stuck_slice
        };
        if (a == Attempt::kStuck && (rel == nullptr || ts.tv_sec > 0 || ts.tv_nsec > stuck_slice)) {
            rel = &slice;
            stuck_slice = stuck_slice * 2 > kStuckSliceMaxNs ? kStuckSliceMaxNs : stuck_slice * 2;
        }
        futex_wait(w.word, seen, rel);
    }
}

} // namespace dragon::detail
