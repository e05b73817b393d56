// libFuzzer harness for the pool/memory descriptor decoder: the bytes that cross process
// boundaries. Checks that decode never crashes or reads out of bounds, that whatever it
// accepts re-encodes to the same bytes, and that the ABI paths that consume descriptors
// (dragon_pool_mem_attach, dragon_pool_attach_serialized) hand back only live memory of the
// pool, whatever they are fed.
#include "pool/descriptor.hpp"

#include <dragon/dragon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

namespace {

dragon_pool_t *pool = nullptr;
uint64_t pool_uid = 0;

void destroy_pool() {
    if (pool != nullptr) {
        dragon_pool_destroy(pool);
        pool = nullptr;
    }
}

void check_attach(const uint8_t *data, size_t size) {
    void *p = nullptr;
    size_t n = 0;
    if (dragon_pool_mem_attach(pool, data, size, &p, &n) == DRAGON_SUCCESS) {
        size_t block = 0;
        if (dragon_pool_block_size(pool, p, &block) != DRAGON_SUCCESS || n > block) {
            std::abort(); // accepted a descriptor of memory that is not a live allocation
        }
    }
    dragon_pool_t *other = nullptr;
    if (dragon_pool_attach_serialized(data, size, &other) == DRAGON_SUCCESS) {
        dragon_pool_detach(other);
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    if (std::getenv("DRAGON_RUNTIME_ID") == nullptr) {
        std::string rt = "tfuzz" + std::to_string(getpid());
        setenv("DRAGON_RUNTIME_ID", rt.c_str(), 1);
    }
    if (dragon_pool_create("fuzz", 1 << 20, nullptr, &pool) != DRAGON_SUCCESS) {
        std::abort();
    }
    std::atexit(destroy_pool);
    // A few live allocations for descriptors to point at.
    for (size_t size : {64, 100, 4096, 70000}) {
        void *p = nullptr;
        dragon_pool_alloc(pool, size, &p);
    }
    uint8_t buf[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    dragon_pool_serialize(pool, buf, sizeof buf, &len);
    dragon::pool::Descriptor d{};
    if (dragon::pool::decode(buf, len, &d) != DRAGON_SUCCESS) {
        std::abort();
    }
    pool_uid = d.uid;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dragon::pool::Descriptor d{};
    if (dragon::pool::decode(data, size, &d) == DRAGON_SUCCESS) {
        uint8_t again[DRAGON_POOL_DESCRIPTOR_MAX];
        if (dragon::pool::encoded_size(d) != size || dragon::pool::encode(d, again) != size ||
            std::memcmp(again, data, size) != 0) {
            std::abort(); // decode accepted bytes that do not round-trip
        }
    }
    check_attach(data, size);
    // The same bytes carrying this pool's (random) uid, so the checks past the uid are reached.
    if (size >= 16 && size <= DRAGON_POOL_DESCRIPTOR_MAX) {
        uint8_t patched[DRAGON_POOL_DESCRIPTOR_MAX];
        std::memcpy(patched, data, size);
        for (int i = 0; i < 8; ++i) {
            patched[8 + i] = static_cast<uint8_t>(pool_uid >> (8 * i));
        }
        check_attach(patched, size);
    }
    return 0;
}
