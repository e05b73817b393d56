// What other modules of the library (channels, sync objects) need from a pool handle
// beyond the public ABI: where its heap lies in this process, and the owner entry of a
// block (owner tags: pool/layout.hpp).
#pragma once

#include "layout.hpp"

#include <dragon/pool.h>

#include <atomic>
#include <cstdint>

namespace dragon::pool {

uint8_t *heap_base_of(const dragon_pool_t *pool);
uint64_t heap_size_of(const dragon_pool_t *pool);
// The owner entry of the block that starts at heap offset `offset` (a live block's).
std::atomic<uint32_t> &owner_of(const dragon_pool_t *pool, uint64_t offset);

} // namespace dragon::pool
