// The DDict's key hash and manager choice (docs/ddict.md, "Which manager holds a key"): a
// stable function another language computes from the document alone.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dragon::ddict {

// FNV-1a, 64 bits, over the key's bytes.
inline uint64_t fnv1a64(const void *key, size_t len) {
    const auto *p = static_cast<const unsigned char *>(key);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

// splitmix64's finaliser.
constexpr uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

inline uint64_t key_hash(const void *key, size_t len) {
    return mix64(fnv1a64(key, len));
}

// The manager (0..n_managers-1) that holds the key; n_managers >= 1.
inline uint32_t manager_of(const void *key, size_t len, uint32_t n_managers) {
    return static_cast<uint32_t>(key_hash(key, len) % n_managers);
}

} // namespace dragon::ddict
