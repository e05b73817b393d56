// Process identity and liveness, for shared objects that record who holds them.
//
// getpid() is a system call in glibc >= 2.25, too slow for a fast path: self_pid() caches it
// and a fork handler refreshes the cache in the child. pid_dead() is the slow-path check
// that recovery code runs on the pid found in a stuck slot or lock word.
#pragma once

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

} // namespace dragon::detail
