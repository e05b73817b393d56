// What other modules of the library (channels, sync objects) need from a pool handle
// beyond the public ABI: where its heap lies in this process.
#pragma once

#include <dragon/pool.h>

#include <cstdint>

namespace dragon::pool {

uint8_t *heap_base_of(const dragon_pool_t *pool);
uint64_t heap_size_of(const dragon_pool_t *pool);

} // namespace dragon::pool
