// Serialized pool and memory descriptors (wire format in docs/pool-descriptor.md).
// decode() is the only code that reads descriptor bytes from other processes; it is fuzzed
// (tests/fuzz/fuzz_pool_descriptor.cpp).
#pragma once

#include <dragon/pool.h>

#include <cstddef>
#include <cstdint>

namespace dragon::pool {

enum class DescriptorKind : uint8_t { kPool = 1, kMemory = 2 };

struct Descriptor {
    DescriptorKind kind;
    uint64_t uid;
    uint64_t node_id;
    uint64_t heap_size;
    char runtime_id[DRAGON_RUNTIME_ID_MAX + 1];
    char name[DRAGON_POOL_NAME_MAX + 1];
    uint64_t offset; // memory descriptors only
    uint64_t size;   // memory descriptors only
};

constexpr uint32_t kDescriptorMagic = 0x44524744; // "DGRD"
constexpr uint8_t kDescriptorVersion = 1;
constexpr uint64_t kMaxNodeId = 0x7FFFFFFF;

// Bytes the encoding of d takes.
size_t encoded_size(const Descriptor &d);
// Write d into out (which holds at least encoded_size(d) bytes); returns the bytes written.
size_t encode(const Descriptor &d, uint8_t *out);
// Parse and validate; on failure records a detailed message and returns
// DRAGON_BAD_DESCRIPTOR.
dragon_status_t decode(const void *bytes, size_t len, Descriptor *out);

// Name rules shared by descriptors and the ABI (segment names must stay portable).
bool valid_pool_name(const char *s, size_t len);
bool valid_runtime_id(const char *s, size_t len);

} // namespace dragon::pool
