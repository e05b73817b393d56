// What dragon_pool_reclaim needs to know of the objects in a pool: which zero-copy messages
// a channel (or queue) holds, so that they stay allocated whoever sent them, and where
// objects keep their waiter slots, so that those of dead callers are taken back.
//
// Everything read here is shared memory that live processes keep changing, and the block may
// even be an allocation that merely looks like an object: every size is checked against the
// block before it is used, and a doubt only ever keeps a block allocated.
#include "layout.hpp"
#include "object.hpp"

#include "../common/proc.hpp"
#include "../sync/layout.hpp"

#include <cstring>

namespace dragon::obj {
namespace {

constexpr int kStableReads = 16; // a slot that keeps changing is taken at its last reading

void scan_channel(chan::ChannelHeader *h, uint64_t heap_size, uint64_t size,
                  std::vector<uint64_t> *held) {
    // Read once: the block may be anything that merely looks like a channel.
    uint64_t capacity = h->capacity;
    uint64_t slot_size = h->slot_size;
    uint64_t stride = h->stride;
    uint64_t slots_offset = h->slots_offset;
    bool ok = size >= sizeof(chan::ChannelHeader) && capacity >= 1 && slot_size >= 16 &&
              stride >= chan::kSlotHeader + slot_size && stride % 64 == 0 &&
              slots_offset == sizeof(chan::ChannelHeader) &&
              capacity <= (size - slots_offset) / stride;
    if (!ok) {
        return;
    }
    auto *slots = reinterpret_cast<uint8_t *>(h) + slots_offset;
    for (uint64_t i = 0; i < capacity; ++i) {
        auto *s = reinterpret_cast<chan::Slot *>(slots + i * stride);
        for (int tries = 0; tries < kStableReads; ++tries) {
            uint64_t state = s->state.load(std::memory_order_acquire);
            chan::Phase ph = chan::phase_of(state);
            // A message being written by a dead sender is lost (the slot is recovered by the
            // next caller that reaches it), so its memory is not held.
            bool holds = ph == chan::kReady ||
                         (ph == chan::kWriting && !detail::pid_dead(chan::pid_of(state)));
            if (!holds) {
                break;
            }
            uint64_t meta = s->meta.load(std::memory_order_acquire);
            uint64_t off = 0;
            std::memcpy(&off, reinterpret_cast<uint8_t *>(s) + chan::kSlotHeader, sizeof off);
            bool stable = s->state.load(std::memory_order_acquire) == state;
            if (stable || tries + 1 == kStableReads) {
                if ((meta & chan::kZeroCopy) != 0 && off < heap_size) {
                    held->push_back(off);
                }
                break;
            }
        }
    }
}

} // namespace

uint64_t scan_for_reclaim(uint8_t *heap, uint64_t heap_size, uint64_t offset, uint64_t size,
                          const std::function<bool(uint32_t)> &dead, std::vector<uint64_t> *held) {
    if (size < sizeof(ObjectHeader)) {
        return 0;
    }
    auto *h = reinterpret_cast<ObjectHeader *>(heap + offset);
    if (h->magic.load(std::memory_order_acquire) != kObjectMagic ||
        h->layout_version != kLayoutVersion || h->bytes > size) {
        return 0;
    }
    uint64_t repaired = 0;
    auto kind = static_cast<Kind>(h->kind);
    if (kind == Kind::kChannel || kind == Kind::kQueue) {
        if (h->bytes < sizeof(chan::ChannelHeader)) {
            return 0;
        }
        auto *ch = reinterpret_cast<chan::ChannelHeader *>(h);
        scan_channel(ch, heap_size, h->bytes, held);
        repaired += detail::repair_waiters(ch->recv, dead);
        repaired += detail::repair_waiters(ch->send, dead);
        repaired += detail::repair_waiters(ch->join, dead);
    } else if (h->kind >= static_cast<uint8_t>(Kind::kLock) && h->kind <= kMaxKind) {
        if (h->bytes < sizeof(sync::SyncHeader)) {
            return 0;
        }
        repaired += detail::repair_waiters(reinterpret_cast<sync::SyncHeader *>(h)->waiters, dead);
    }
    return repaired;
}

} // namespace dragon::obj
