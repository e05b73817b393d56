// Process identity and liveness, for shared objects that record who holds them.
//
// getpid() is a system call in glibc >= 2.25, too slow for a fast path: self_pid() caches it
// and a fork handler refreshes the cache in the child. pid_dead() is the slow-path check
// that recovery code runs on the pid found in a stuck slot or lock word.
#pragma once

#include <atomic>
#include <cstdint>

namespace dragon::detail {

// This process's pid (cached; correct in a forked child).
uint32_t self_pid();

// This thread's kernel thread id (cached per thread; correct in a forked child).
uint32_t self_tid();

// True when no live process or thread has this id: it does not exist, or it is a zombie
// (killed but not yet reaped). A pid reused by an unrelated process reads as alive.
bool pid_dead(uint32_t pid);

// A random, non-zero 64-bit id for a new shared object (getrandom; a clock/pid mix if that
// fails).
uint64_t random_uid();

// Largest id that fits the 22 bits that shared objects keep for a pid (PID_MAX_LIMIT).
constexpr uint32_t kPidBits = 22;
constexpr uint32_t kPidMask = (1U << kPidBits) - 1;

// An owner tag names a process in 32 bits for what it holds in shared memory (pool blocks,
// waiter slots): bits 21..0 its pid, bits 23..22 free for the holder's use (a kind), bits
// 31..24 the low 8 bits of its start time (/proc/<pid>/stat field 22, in clock ticks), so
// that a pid reused by a later process reads as another owner (but for 1 start in 256).
constexpr unsigned kTagStartShift = 24;
constexpr uint32_t kTagKindMask = 3U << kPidBits;
inline uint32_t tag_pid(uint32_t tag) {
    return tag & kPidMask;
}

// This process's owner tag (kind 0; cached; correct in a forked child). Inline: pools tag
// every allocation with it.
extern std::atomic<uint32_t> cached_self_tag;
uint32_t self_tag_slow();
inline uint32_t self_tag() {
    uint32_t tag = cached_self_tag.load(std::memory_order_relaxed);
    return tag != 0 ? tag : self_tag_slow();
}

// True when the process a tag names is gone: no such pid, a zombie, or a pid now held by a
// process with another start time. The kind bits are ignored; a tag of pid 0 is never dead.
bool tag_dead(uint32_t tag);

} // namespace dragon::detail
