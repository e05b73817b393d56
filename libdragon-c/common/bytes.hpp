// Little-endian integers in wire formats (descriptors), independent of the host's order.
#pragma once

#include <cstdint>

namespace dragon::detail {

inline void put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        p[i] = static_cast<uint8_t>(v >> (8 * i));
    }
}

inline uint64_t get_le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

} // namespace dragon::detail
