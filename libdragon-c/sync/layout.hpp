// The memory layout of a sync object (docs/sync.md): Lock, recursive Lock, Semaphore, Event
// and Barrier are one header of three cache lines in a pool.
#pragma once

#include "../channel/object.hpp"
#include "../common/wait.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dragon::sync {

struct alignas(64) SyncHeader { // NOLINT(clang-analyzer-optin.performance.Padding)
    obj::ObjectHeader obj;
    uint32_t param; // recursive flag / semaphore bound (0: unbounded) / barrier parties
    uint32_t reserved;
    // Line 1: the state.
    alignas(64) std::atomic<uint32_t> value; // lock holder tid / semaphore count / event flag
    std::atomic<uint32_t> count;             // recursive lock: depth
    std::atomic<uint64_t> barrier;           // bit 63 broken, 62..32 generation, 31..0 arrived
    std::atomic<uint32_t> last_reset;        // barrier: generation + 1 that reset ended
    // Line 2: waiters.
    alignas(64) detail::Waiters waiters;
};
static_assert(sizeof(SyncHeader) == size_t{3} * 64);

} // namespace dragon::sync
