// The memory layout of a channel (docs/channel.md): one pool allocation holding a header of
// seven cache lines and `capacity` slots.
#pragma once

#include "object.hpp"

#include "../common/wait.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dragon::chan {

// Each slot starts with a 64-bit state word:
//   bits 63..24  sequence: the low 40 bits of the position the slot serves next
//   bits 23..22  phase: free, writing, ready (3 is unused)
//   bits 21..0   pid of the sender that claimed the slot (0 when free)
// A slot serves positions i, i+capacity, i+2*capacity, ...; positions only grow, and
// sequence comparisons are made on 40-bit differences, so wrap-around is harmless.
enum Phase : uint64_t { kFree = 0, kWriting = 1, kReady = 2 };
constexpr unsigned kSeqShift = 24;
constexpr unsigned kPhaseShift = 22;
constexpr uint64_t kPidMaskState = (1ULL << kPhaseShift) - 1;

inline uint64_t make_state(uint64_t pos, Phase phase, uint32_t pid) {
    return (pos << kSeqShift) | (static_cast<uint64_t>(phase) << kPhaseShift) |
           (pid & kPidMaskState);
}
inline Phase phase_of(uint64_t state) {
    return static_cast<Phase>((state >> kPhaseShift) & 3U);
}
inline uint32_t pid_of(uint64_t state) {
    return static_cast<uint32_t>(state & kPidMaskState);
}
// Signed distance, in positions, from pos to the slot's sequence (40-bit arithmetic).
inline int64_t seq_diff(uint64_t state, uint64_t pos) {
    uint64_t a = state & ~((1ULL << kSeqShift) - 1);
    return static_cast<int64_t>(a - (pos << kSeqShift)) >> kSeqShift;
}
inline uint64_t seq_of(uint64_t state) {
    return state >> kSeqShift;
}

// meta: message length, and whether the payload is a zero-copy allocation (whose heap
// offset then fills the first 8 payload bytes). A zero-copy message's block carries the
// owner tag "queued by <sender>" (pool/layout.hpp) from before it is published until a
// receiver puts its own tag on it, which it does before it claims the slot.
constexpr uint64_t kZeroCopy = 1ULL << 63;
constexpr uint64_t kLenMask = kZeroCopy - 1;

struct Slot {
    std::atomic<uint64_t> state;
    std::atomic<uint64_t> meta;
    // payload follows
};
constexpr uint64_t kSlotHeader = sizeof(Slot);

using detail::Waiters;

// The padding is the point: each line has one writer side.
struct alignas(64) ChannelHeader { // NOLINT(clang-analyzer-optin.performance.Padding)
    // Line 0: written at creation only (and magic cleared at destruction).
    obj::ObjectHeader obj;
    uint64_t capacity;
    uint64_t slot_size;
    uint64_t stride;
    uint64_t slots_offset;
    // Line 1: producers' position. Line 2: consumers' position.
    alignas(64) std::atomic<uint64_t> tail;
    alignas(64) std::atomic<uint64_t> head;
    // Line 3: receivers waiting for a message; line 4: senders waiting for room.
    alignas(64) Waiters recv;
    alignas(64) Waiters send;
    // Line 5: queues only (task_done / join).
    alignas(64) std::atomic<uint64_t> unfinished;
    Waiters join;
    // Line 6: queues only, written at creation: the item type (docs/sync.md). item_fixed:
    // every item has exactly this many bytes (0: any length up to the slot, or beyond as
    // a pool allocation); item_tag: the type's tag (0: untyped).
    alignas(64) uint64_t item_fixed;
    uint64_t item_tag;
};
static_assert(sizeof(ChannelHeader) == size_t{7} * 64);

// A queue's item type as its creator declared it (ChannelHeader line 6).
struct ItemType {
    uint64_t fixed = 0;
    uint64_t tag = 0;
};

} // namespace dragon::chan
