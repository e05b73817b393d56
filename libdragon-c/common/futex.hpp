// Futex wait/wake on 32-bit words in shared memory (not FUTEX_PRIVATE: waiters and wakers
// are different processes mapping the same segment).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace dragon::detail {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// Sleep while *word == expected, at most `relative` (nullptr: no limit). Returns 0 when woken
// or when the value had already changed, else errno (ETIMEDOUT, EINTR).
inline int futex_wait(std::atomic<uint32_t> *word, uint32_t expected,
                      const struct timespec *relative) {
    long rc = ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT, expected,
                        relative, nullptr, 0);
    if (rc == 0 || errno == EAGAIN) {
        return 0;
    }
    return errno;
}

inline void futex_wake_all(std::atomic<uint32_t> *word) {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE, INT32_MAX, nullptr,
              nullptr, 0);
}

} // namespace dragon::detail
