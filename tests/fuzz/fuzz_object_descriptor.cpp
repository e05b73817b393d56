// libFuzzer harness for the object descriptor decoder (channels, queues, locks, semaphores,
// events, barriers): the bytes another process hands over to attach a shared object. Checks
// that decode never crashes or reads out of bounds, that what it accepts is self-consistent,
// and that the attach paths (dragon_channel_attach, dragon_queue_attach, dragon_lock_attach)
// either refuse the bytes with a status or give a handle that works.
#include "channel/object.hpp"

#include <dragon/dragon.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

namespace {

dragon_pool_t *pool = nullptr;
dragon_channel_t *channel = nullptr;
dragon_queue_t *queue = nullptr;
dragon_lock_t *lock = nullptr;
uint8_t channel_desc[DRAGON_OBJECT_DESCRIPTOR_MAX];
size_t channel_desc_len = 0;

void teardown() {
    dragon_channel_destroy(channel);
    dragon_queue_destroy(queue);
    dragon_lock_destroy(lock);
    dragon_pool_destroy(pool);
}

void write_seed(const char *dir, const char *name, const uint8_t *d, size_t len) {
    std::string path = std::string(dir) + "/" + name;
    FILE *f = std::fopen(path.c_str(), "wb");
    if (f != nullptr) {
        std::fwrite(d, 1, len, f);
        std::fclose(f);
    }
}

void try_attach(const uint8_t *data, size_t size) {
    dragon_channel_t *ch = nullptr;
    if (dragon_channel_attach(data, size, nullptr, &ch) == DRAGON_SUCCESS) {
        dragon_channel_info_t info{};
        info.struct_size = sizeof info;
        if (dragon_channel_info(ch, &info) != DRAGON_SUCCESS || info.capacity == 0) {
            std::abort(); // attached something that is not a working channel
        }
        dragon_channel_detach(ch);
    }
    dragon_queue_t *q = nullptr;
    if (dragon_queue_attach(data, size, nullptr, &q) == DRAGON_SUCCESS) {
        size_t n = 0, max = 0;
        if (dragon_queue_size(q, &n, &max) != DRAGON_SUCCESS || max == 0) {
            std::abort();
        }
        dragon_queue_detach(q);
    }
    dragon_lock_t *l = nullptr;
    if (dragon_lock_attach(data, size, nullptr, &l) == DRAGON_SUCCESS) {
        int locked = 0;
        if (dragon_lock_locked(l, &locked) != DRAGON_SUCCESS) {
            std::abort();
        }
        dragon_lock_detach(l);
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    if (std::getenv("DRAGON_RUNTIME_ID") == nullptr) {
        std::string rt = "tfuzz" + std::to_string(getpid());
        setenv("DRAGON_RUNTIME_ID", rt.c_str(), 1);
    }
    if (dragon_pool_create("fuzzobj", 1 << 20, nullptr, &pool) != DRAGON_SUCCESS ||
        dragon_channel_create(pool, 8, 64, nullptr, &channel) != DRAGON_SUCCESS ||
        dragon_queue_create(pool, 4, 0, nullptr, &queue) != DRAGON_SUCCESS ||
        dragon_lock_create(pool, 0, nullptr, &lock) != DRAGON_SUCCESS) {
        std::abort();
    }
    std::atexit(teardown);
    dragon_channel_serialize(channel, channel_desc, sizeof channel_desc, &channel_desc_len);
    // DRAGON_FUZZ_WRITE_SEEDS=dir: write one descriptor of each kind there (to refresh the
    // seed corpus) and carry on.
    if (const char *dir = std::getenv("DRAGON_FUZZ_WRITE_SEEDS"); dir != nullptr) {
        uint8_t d[DRAGON_OBJECT_DESCRIPTOR_MAX];
        size_t len = 0;
        write_seed(dir, "channel", channel_desc, channel_desc_len);
        dragon_queue_serialize(queue, d, sizeof d, &len);
        write_seed(dir, "queue", d, len);
        dragon_lock_serialize(lock, d, sizeof d, &len);
        write_seed(dir, "lock", d, len);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dragon::obj::Decoded d{};
    if (dragon::obj::decode(data, size, &d) == DRAGON_SUCCESS) {
        if (d.mem != data + dragon::obj::kDescriptorFixed ||
            d.mem_len + dragon::obj::kDescriptorFixed != size || d.uid == 0 ||
            static_cast<uint8_t>(d.kind) == 0 ||
            static_cast<uint8_t>(d.kind) > dragon::obj::kMaxKind) {
            std::abort(); // accepted an inconsistent descriptor
        }
    }
    try_attach(data, size);
    // The same bytes over this process's real channel descriptor's prefix (runtime, pool name
    // and uids), so that the checks behind the pool lookup are reached too.
    if (size <= sizeof channel_desc && size > 0) {
        uint8_t patched[DRAGON_OBJECT_DESCRIPTOR_MAX];
        std::memcpy(patched, channel_desc, channel_desc_len);
        size_t keep = size < channel_desc_len ? channel_desc_len - size : 0;
        std::memcpy(patched + keep, data, size < channel_desc_len ? size : channel_desc_len);
        try_attach(patched, channel_desc_len);
    }
    return 0;
}
