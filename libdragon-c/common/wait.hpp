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
//
// A waiter that is SIGKILLed never takes itself off the counts. So that someone can, a
// waiter takes one of a few slots that name it (its owner tag, common/proc.hpp), and what it
// counts is tied to its slot: it is blocked while it holds the slot, and asleep while bit
// <slot> of `sleepers` is set. repair_waiters() clears the slots (and bits) of dead
// processes. A waiter that finds every slot taken counts anonymously (`blocked`, and
// kAnonSleeper steps of `sleepers`): that is never repaired.
#pragma once

#include <sched.h>

#include "clock.hpp"
#include "futex.hpp"
#include "proc.hpp"

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

// The wait words of one side of an object, in shared memory: 56 bytes, so that a side fits a
// cache line next to one 64-bit word (a queue's unfinished-task count).
constexpr unsigned kWaiterSlots = 10;
constexpr uint32_t kAnonSleeper = 1U << kWaiterSlots;
struct Waiters {
    std::atomic<uint32_t> sleepers; // bit i: slot i's holder is asleep on `word`; plus
                                    // kAnonSleeper per anonymous sleeper (gates wakes)
    std::atomic<uint32_t> word;     // bumped by every waker
    std::atomic<uint32_t> blocked;  // callers inside a blocking call without a slot
    uint32_t reserved;
    std::atomic<uint32_t> slot[kWaiterSlots]; // owner tag of a caller inside a blocking call
};
static_assert(sizeof(Waiters) == 56);

// Callers inside a blocking call (queries, and destroy waiting for them to leave).
inline uint32_t blocked_count(const Waiters &w) {
    uint32_t n = w.blocked.load(std::memory_order_relaxed);
    for (const auto &s : w.slot) {
        n += s.load(std::memory_order_relaxed) != 0 ? 1 : 0;
    }
    return n;
}

// Take the slots (and sleeping bits) of dead callers back: those whose tag `dead` accepts
// (it is given only tags of processes found dead). Returns how many.
template <typename Dead>
unsigned repair_waiters(Waiters &w, Dead &&dead) {
    unsigned repaired = 0;
    for (unsigned i = 0; i < kWaiterSlots; ++i) {
        uint32_t v = w.slot[i].load(std::memory_order_acquire);
        if (v == 0 || !dead(v)) {
            continue;
        }
        // Bit i belongs to the slot's holder; nobody else takes the slot until it is free.
        w.sleepers.fetch_and(~(1U << i), std::memory_order_seq_cst);
        if (w.slot[i].compare_exchange_strong(v, 0, std::memory_order_acq_rel)) {
            ++repaired;
        }
    }
    return repaired;
}
inline unsigned repair_waiters(Waiters &w) {
    return repair_waiters(w, [](uint32_t tag) { return tag_dead(tag); });
}

// One caller's presence in a Waiters: blocked (a slot, or anonymous) and asleep.
class WaitRegistration {
  public:
    WaitRegistration() = default;
    explicit WaitRegistration(Waiters *w) : w_(w) {}
    WaitRegistration(const WaitRegistration &) = delete;
    WaitRegistration &operator=(const WaitRegistration &) = delete;
    WaitRegistration(WaitRegistration &&o) noexcept
        : w_(o.w_), slot_(o.slot_), blocked_(o.blocked_), asleep_(o.asleep_) {
        o.blocked_ = false;
        o.asleep_ = false;
    }
    WaitRegistration &operator=(WaitRegistration &&) = delete;
    ~WaitRegistration() { leave(); }

    // Count as blocked (once).
    void block() {
        if (blocked_) {
            return;
        }
        blocked_ = true;
        uint32_t tag = self_tag();
        // Every slot taken: some may be dead callers' (the slow path can afford the look).
        for (int round = 0; round < 2; ++round) {
            for (unsigned i = 0; i < kWaiterSlots; ++i) {
                uint32_t expect = 0;
                if (w_->slot[i].load(std::memory_order_relaxed) == 0 &&
                    w_->slot[i].compare_exchange_strong(expect, tag, std::memory_order_acq_rel)) {
                    slot_ = static_cast<int>(i);
                    return;
                }
            }
            if (round == 0 && repair_waiters(*w_) == 0) {
                break;
            }
        }
        slot_ = -1;
        w_->blocked.fetch_add(1, std::memory_order_relaxed);
    }
    // Count as asleep on `word` (blocked first); a sequentially consistent RMW, as the
    // protocol above needs.
    void sleep() {
        block();
        asleep_ = true;
        if (slot_ >= 0) {
            w_->sleepers.fetch_or(1U << slot_, std::memory_order_seq_cst);
        } else {
            w_->sleepers.fetch_add(kAnonSleeper, std::memory_order_seq_cst);
        }
    }
    void wake() {
        if (!asleep_) {
            return;
        }
        asleep_ = false;
        if (slot_ >= 0) {
            w_->sleepers.fetch_and(~(1U << slot_), std::memory_order_seq_cst);
        } else {
            w_->sleepers.fetch_sub(kAnonSleeper, std::memory_order_seq_cst);
        }
    }
    void leave() {
        wake();
        if (!blocked_) {
            return;
        }
        blocked_ = false;
        if (slot_ >= 0) {
            w_->slot[slot_].store(0, std::memory_order_release);
        } else {
            w_->blocked.fetch_sub(1, std::memory_order_relaxed);
        }
    }

  private:
    Waiters *w_ = nullptr;
    int slot_ = -1;
    bool blocked_ = false;
    bool asleep_ = false;
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
dragon_status_t blocking_wait(WaitMode mode, dragon_timeout_t timeout, Waiters &w, F &&attempt) {
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
    // hundred nanoseconds, as in a ping-pong, does not write the shared line at all.
    WaitRegistration reg(&w);

    if (mode != WaitMode::kIdle) {
        int64_t spin_end = mode == WaitMode::kSpin ? INT64_MAX : monotonic_ns() + kAdaptiveSpinNs;
        // Adaptive mode yields the CPU between rounds of 16 spins (about 1 us), from round
        // yield_from on: a thread whose last wait ended only after it yielded probably shares
        // its CPU with the peer (the scheduler likes to put a waker and its wakee on one CPU)
        // and yields from the first round; one whose wait ended unyielded waits 8 rounds, so
        // that a peer on another CPU is not slowed by system calls.
        static thread_local unsigned yield_from = 1;
        unsigned round = 0;
        bool yielded = false;
        for (unsigned i = 1;; ++i) {
            cpu_relax();
            // Adaptive looks every 16 spins, spin mode every 64.
            bool check_time = (i & (mode == WaitMode::kSpin ? 63U : 15U)) == 0;
            a = attempt(check_time && mode == WaitMode::kSpin && (i & 0xFFFFU) == 0, &status);
            if (a == Attempt::kDone) {
                if (mode == WaitMode::kAdaptive) {
                    yield_from = yielded ? 1 : 8;
                }
                return status;
            }
            if (check_time) {
                reg.block();
                int64_t now = monotonic_ns();
                if (!deadline.forever() && deadline.expired()) {
                    return DRAGON_TIMEOUT;
                }
                if (now >= spin_end) {
                    break;
                }
                if (mode == WaitMode::kAdaptive && ++round >= yield_from) {
                    sched_yield();
                    yielded = true;
                }
            }
        }
    }

    reg.sleep();
    std::atomic_thread_fence(std::memory_order_seq_cst); // before every later retry's loads
    int64_t stuck_slice = kStuckSliceNs;
    for (;;) {
        uint32_t seen = w.word.load(std::memory_order_seq_cst);
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
        futex_wait(&w.word, seen, rel);
    }
}

} // namespace dragon::detail
