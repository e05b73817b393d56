// The channel handle and the operations queues build on (channel.cpp; queues: sync/sync.cpp).
#pragma once

#include "layout.hpp"
#include "object.hpp"

#include "../common/wait.hpp"
#include "../common/wait_mode.hpp"

#include <dragon/channel.h>

struct dragon_channel {
    dragon::obj::Attached obj;
    dragon::chan::ChannelHeader *hdr = nullptr;
    uint8_t *slots = nullptr;
    uint64_t capacity = 0;
    uint64_t mask = 0; // capacity - 1 when capacity is a power of two, else 0
    bool pow2 = false;
    uint64_t stride = 0;
    uint64_t slot_size = 0;
    uint8_t *heap = nullptr;
    uint64_t heap_size = 0;
    dragon::detail::WaitMode mode = dragon::detail::WaitMode::kAdaptive;
};

namespace dragon::chan {

// The wait mode an attribute struct asks for, validated (NULL or DRAGON_WAIT_DEFAULT: the
// process's default, resolved).
dragon_status_t resolve_wait_mode(const dragon_channel_attr_t *attr, dragon_wait_mode_t *mode);

// The wait loop's mode for a (validated) ABI wait mode.
inline detail::WaitMode to_wait_mode(dragon_wait_mode_t m) {
    if (m == DRAGON_WAIT_DEFAULT) {
        m = detail::process_wait_mode();
    }
    return m == DRAGON_WAIT_SPIN   ? detail::WaitMode::kSpin
           : m == DRAGON_WAIT_IDLE ? detail::WaitMode::kIdle
                                   : detail::WaitMode::kAdaptive;
}

// Create or attach a channel-shaped object (a channel or a queue; item: a queue's item
// type, in the header before the object is published).
dragon_status_t create(dragon_pool_t *pool, obj::Kind kind, size_t capacity, size_t slot_size,
                       dragon_wait_mode_t mode, dragon_channel_t **out, ItemType item = {});
dragon_status_t attach(const void *bytes, size_t len, uint32_t accept, dragon_wait_mode_t mode,
                       dragon_channel_t **out);
dragon_status_t destroy(dragon_channel_t *ch);
void detach(dragon_channel_t *ch);

// Send `len` bytes (copy, or zero-copy when zc_ptr is set). count_task: a queue's put
// (raises the unfinished-task count as the message is published).
dragon_status_t send(dragon_channel_t *ch, const void *buf, size_t len, void *zc_ptr,
                     bool count_task, dragon_timeout_t timeout);
// Receive into buf (cap bytes), or as a pool allocation when as_mem.
dragon_status_t recv(dragon_channel_t *ch, void *buf, size_t cap, bool as_mem, void **ptr,
                     size_t *len, dragon_timeout_t timeout);

} // namespace dragon::chan
