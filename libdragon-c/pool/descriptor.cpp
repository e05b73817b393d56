#include "descriptor.hpp"

#include "../common/bytes.hpp"
#include "../common/error.hpp"

#include <cstring>

namespace dragon::pool {
namespace {

constexpr size_t kFixedSize = 32;   // magic .. heap_size
constexpr size_t kMemoryExtra = 16; // offset, size

void put_u32(uint8_t *p, uint32_t v) {
    detail::put_le(p, v, 4);
}
void put_u64(uint8_t *p, uint64_t v) {
    detail::put_le(p, v, 8);
}
uint32_t get_u32(const uint8_t *p) {
    return static_cast<uint32_t>(detail::get_le(p, 4));
}
uint64_t get_u64(const uint8_t *p) {
    return detail::get_le(p, 8);
}

bool name_char(char c, bool allow_dot) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || (allow_dot && c == '.');
}

bool valid_chars(const char *s, size_t len, size_t max, bool allow_dot) {
    if (len == 0 || len > max) {
        return false;
    }
    for (size_t i = 0; i < len; ++i) {
        if (!name_char(s[i], allow_dot)) {
            return false;
        }
    }
    return true;
}

} // namespace

bool valid_pool_name(const char *s, size_t len) {
    return valid_chars(s, len, DRAGON_POOL_NAME_MAX, true);
}

bool valid_runtime_id(const char *s, size_t len) {
    return valid_chars(s, len, DRAGON_RUNTIME_ID_MAX, false);
}

size_t encoded_size(const Descriptor &d) {
    return kFixedSize + std::strlen(d.runtime_id) + std::strlen(d.name) +
           (d.kind == DescriptorKind::kMemory ? kMemoryExtra : 0);
}

size_t encode(const Descriptor &d, uint8_t *out) {
    size_t rt_len = std::strlen(d.runtime_id);
    size_t name_len = std::strlen(d.name);
    put_u32(out, kDescriptorMagic);
    out[4] = kDescriptorVersion;
    out[5] = static_cast<uint8_t>(d.kind);
    out[6] = static_cast<uint8_t>(rt_len);
    out[7] = static_cast<uint8_t>(name_len);
    put_u64(out + 8, d.uid);
    put_u64(out + 16, d.node_id);
    put_u64(out + 24, d.heap_size);
    size_t at = kFixedSize;
    std::memcpy(out + at, d.runtime_id, rt_len);
    at += rt_len;
    std::memcpy(out + at, d.name, name_len);
    at += name_len;
    if (d.kind == DescriptorKind::kMemory) {
        put_u64(out + at, d.offset);
        put_u64(out + at + 8, d.size);
        at += kMemoryExtra;
    }
    return at;
}

dragon_status_t decode(const void *bytes, size_t len, Descriptor *out) {
    using detail::fail;
    if (bytes == nullptr) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: NULL bytes");
    }
    const auto *p = static_cast<const uint8_t *>(bytes);
    if (len < kFixedSize) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "descriptor: %zu bytes, shorter than the %zu-byte header", len, kFixedSize);
    }
    if (get_u32(p) != kDescriptorMagic) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: bad magic 0x%08x (not a dragon descriptor)",
                    get_u32(p));
    }
    if (p[4] != kDescriptorVersion) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "descriptor: format version %u, this library reads version %u", p[4],
                    kDescriptorVersion);
    }
    auto kind = static_cast<DescriptorKind>(p[5]);
    if (kind != DescriptorKind::kPool && kind != DescriptorKind::kMemory) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: unknown kind %u", p[5]);
    }
    size_t rt_len = p[6];
    size_t name_len = p[7];
    size_t want =
        kFixedSize + rt_len + name_len + (kind == DescriptorKind::kMemory ? kMemoryExtra : 0);
    if (len != want) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: %zu bytes, its header says %zu", len, want);
    }
    const char *rt = reinterpret_cast<const char *>(p + kFixedSize);
    const char *name = rt + rt_len;
    if (!valid_runtime_id(rt, rt_len)) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: invalid runtime id");
    }
    if (!valid_pool_name(name, name_len)) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: invalid pool name");
    }
    Descriptor d{};
    d.kind = kind;
    d.uid = get_u64(p + 8);
    d.node_id = get_u64(p + 16);
    d.heap_size = get_u64(p + 24);
    if (d.node_id > kMaxNodeId) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: node id %llu out of range",
                    static_cast<unsigned long long>(d.node_id));
    }
    if (d.heap_size == 0) {
        return fail(DRAGON_BAD_DESCRIPTOR, "descriptor: pool size 0");
    }
    std::memcpy(d.runtime_id, rt, rt_len);
    d.runtime_id[rt_len] = '\0';
    std::memcpy(d.name, name, name_len);
    d.name[name_len] = '\0';
    if (kind == DescriptorKind::kMemory) {
        const uint8_t *m = p + kFixedSize + rt_len + name_len;
        d.offset = get_u64(m);
        d.size = get_u64(m + 8);
        if (d.offset >= d.heap_size || d.size > d.heap_size - d.offset) {
            return fail(DRAGON_BAD_DESCRIPTOR,
                        "descriptor: memory [%llu, +%llu) lies outside its %llu-byte pool",
                        static_cast<unsigned long long>(d.offset),
                        static_cast<unsigned long long>(d.size),
                        static_cast<unsigned long long>(d.heap_size));
        }
    }
    *out = d;
    return DRAGON_SUCCESS;
}

} // namespace dragon::pool
