// The DDict wire protocol's encoders and decoders (wire.hpp, docs/ddict-protocol.md).
#include "wire.hpp"

#include "../common/error.hpp"

#include <cstring>

using dragon::detail::fail;

namespace dragon::ddict::wire {

const char *op_name(uint8_t op) {
    static const char *const names[] = {"?",         "hello",    "bye",       "put",     "get",
                                        "pop",       "contains", "length",    "keys",    "clear",
                                        "fetch_add", "wait_key", "batch_end", "freeze",  "unfreeze",
                                        "stats",     "destroy",  "newest",    "persist", "restore"};
    return op <= kMaxOp ? names[op] : "?";
}

size_t request_bytes(const Request &r) {
    return kHeaderBytes + r.key_len + r.value_len;
}

void encode_request(const Request &r, unsigned char *out) {
    put_u32(out, kRequestMagic);
    out[4] = r.version;
    out[5] = static_cast<uint8_t>(r.op);
    put_u16(out + 6, r.flags);
    put_u32(out + 8, r.client);
    put_u32(out + 12, r.key_len);
    put_u64(out + 16, r.request_id);
    put_u64(out + 24, r.checkpoint);
    put_u64(out + 32, r.value_len);
    put_u64(out + 40, r.arg);
    if (r.key_len != 0) {
        std::memcpy(out + kHeaderBytes, r.key, r.key_len);
    }
    if (r.value_len != 0) {
        std::memcpy(out + kHeaderBytes + r.key_len, r.value, r.value_len);
    }
}

namespace {

// Which opcodes carry a key, and whether one may carry a value.
bool takes_key(Op op) {
    switch (op) {
    case Op::Put:
    case Op::Get:
    case Op::Pop:
    case Op::Contains:
    case Op::FetchAdd:
    case Op::WaitKey:
        return true;
    default:
        return false;
    }
}

bool takes_value(Op op) {
    return op == Op::Put || op == Op::Hello || op == Op::Persist || op == Op::Restore;
}

} // namespace

dragon_status_t decode_request(const unsigned char *msg, size_t len, Request *r) {
    *r = Request{};
    // Another version is named as such even when its header is shorter than ours.
    if (len >= 5 && len < kHeaderBytes && get_u32(msg) == kRequestMagic && msg[4] != kVersion) {
        r->version = msg[4];
        return fail(DRAGON_VERSION_MISMATCH,
                    "ddict request of protocol version %u; this manager speaks version %u", msg[4],
                    kVersion);
    }
    if (len < kHeaderBytes) {
        return fail(DRAGON_MALFORMED, "ddict request: %zu bytes, shorter than its 48-byte header",
                    len);
    }
    if (get_u32(msg) != kRequestMagic) {
        return fail(DRAGON_MALFORMED, "ddict request: bad magic 0x%08x", get_u32(msg));
    }
    r->version = msg[4];
    uint8_t op = msg[5];
    r->op = static_cast<Op>(op);
    r->flags = get_u16(msg + 6);
    r->client = get_u32(msg + 8);
    r->key_len = get_u32(msg + 12);
    r->request_id = get_u64(msg + 16);
    r->checkpoint = get_u64(msg + 24);
    r->value_len = get_u64(msg + 32);
    r->arg = get_u64(msg + 40);
    if (r->version != kVersion) {
        return fail(DRAGON_VERSION_MISMATCH,
                    "ddict request of protocol version %u; this manager speaks version %u",
                    r->version, kVersion);
    }
    if (op == 0 || op > kMaxOp) {
        return fail(DRAGON_MALFORMED, "ddict request: unknown opcode %u", op);
    }
    if ((r->flags & ~kKnownRequestFlags) != 0) {
        return fail(DRAGON_MALFORMED, "ddict request: unknown flags 0x%x", r->flags);
    }
    if (r->key_len > kMaxKey) {
        return fail(DRAGON_MALFORMED, "ddict request: a key of %u bytes (at most %zu)", r->key_len,
                    kMaxKey);
    }
    size_t body = len - kHeaderBytes;
    if (r->key_len > body || r->value_len != body - r->key_len) {
        return fail(DRAGON_MALFORMED,
                    "ddict request: key %u and value %llu bytes do not add up to the %zu bytes "
                    "after the header",
                    r->key_len, static_cast<unsigned long long>(r->value_len), body);
    }
    Op o = r->op;
    if (!takes_key(o) && r->key_len != 0) {
        return fail(DRAGON_MALFORMED, "ddict request: %s takes no key", op_name(op));
    }
    if (!takes_value(o) && r->value_len != 0) {
        return fail(DRAGON_MALFORMED, "ddict request: %s takes no value", op_name(op));
    }
    r->key = r->key_len != 0 ? msg + kHeaderBytes : nullptr;
    r->value = r->value_len != 0 ? msg + kHeaderBytes + r->key_len : nullptr;
    return DRAGON_SUCCESS;
}

size_t response_bytes(const Response &r) {
    return kHeaderBytes + r.message_len + r.value_len;
}

void encode_response(const Response &r, unsigned char *out) {
    put_u32(out, kResponseMagic);
    out[4] = r.version;
    out[5] = r.op;
    put_u16(out + 6, r.status);
    put_u32(out + 8, r.flags);
    put_u32(out + 12, r.message_len);
    put_u64(out + 16, r.request_id);
    put_u64(out + 24, r.value_len);
    put_u64(out + 32, r.arg);
    put_u64(out + 40, r.arg2);
    if (r.message_len != 0) {
        std::memcpy(out + kHeaderBytes, r.message, r.message_len);
    }
    if (r.value_len != 0 && r.value != nullptr) {
        std::memcpy(out + kHeaderBytes + r.message_len, r.value, r.value_len);
    }
}

dragon_status_t decode_response(const unsigned char *msg, size_t len, Response *r) {
    *r = Response{};
    if (len < kHeaderBytes) {
        return fail(DRAGON_MALFORMED, "ddict response: %zu bytes, shorter than its header", len);
    }
    if (get_u32(msg) != kResponseMagic) {
        return fail(DRAGON_MALFORMED, "ddict response: bad magic 0x%08x", get_u32(msg));
    }
    r->version = msg[4];
    r->op = msg[5];
    r->status = get_u16(msg + 6);
    r->flags = get_u32(msg + 8);
    r->message_len = get_u32(msg + 12);
    r->request_id = get_u64(msg + 16);
    r->value_len = get_u64(msg + 24);
    r->arg = get_u64(msg + 32);
    r->arg2 = get_u64(msg + 40);
    if (r->version != kVersion) {
        return fail(DRAGON_VERSION_MISMATCH,
                    "ddict response of protocol version %u; this client speaks version %u",
                    r->version, kVersion);
    }
    size_t body = len - kHeaderBytes;
    // A leased value is not in the message: only its length is.
    uint64_t inline_value = (r->flags & kLeased) != 0 ? 0 : r->value_len;
    if (r->message_len > body || inline_value != body - r->message_len) {
        return fail(DRAGON_MALFORMED,
                    "ddict response: message %u and value %llu bytes do not add up to the %zu "
                    "bytes after the header",
                    r->message_len, static_cast<unsigned long long>(inline_value), body);
    }
    r->message = r->message_len != 0 ? reinterpret_cast<const char *>(msg + kHeaderBytes) : nullptr;
    r->value = inline_value != 0 ? msg + kHeaderBytes + r->message_len : nullptr;
    return DRAGON_SUCCESS;
}

dragon_status_t decode_keys(const unsigned char *p, size_t len, std::vector<std::string> *out) {
    size_t at = 0;
    while (at < len) {
        if (len - at < 4) {
            return fail(DRAGON_MALFORMED, "ddict keys: a truncated length at byte %zu", at);
        }
        uint32_t k = get_u32(p + at);
        at += 4;
        if (k == 0 || k > kMaxKey || k > len - at) {
            return fail(DRAGON_MALFORMED, "ddict keys: a key of %u bytes at byte %zu of %zu", k, at,
                        len);
        }
        out->emplace_back(reinterpret_cast<const char *>(p + at), k);
        at += k;
    }
    return DRAGON_SUCCESS;
}

void encode_stats(const Stats &s, unsigned char *out) {
    const uint64_t w[kStatsWords] = {s.manager, s.keys,   s.bytes,    s.free,  s.total,
                                     s.puts,    s.gets,   s.pops,     s.other, s.clients,
                                     s.frozen,  s.newest, s.malformed};
    for (size_t i = 0; i < kStatsWords; ++i) {
        put_u64(out + 8 * i, w[i]);
    }
}

dragon_status_t decode_stats(const unsigned char *p, size_t len, Stats *s) {
    if (len != kStatsWords * 8) {
        return fail(DRAGON_MALFORMED, "ddict stats: %zu bytes, not %zu", len, kStatsWords * 8);
    }
    uint64_t *w[kStatsWords] = {&s->manager, &s->keys,   &s->bytes,    &s->free,  &s->total,
                                &s->puts,    &s->gets,   &s->pops,     &s->other, &s->clients,
                                &s->frozen,  &s->newest, &s->malformed};
    for (size_t i = 0; i < kStatsWords; ++i) {
        *w[i] = get_u64(p + 8 * i);
    }
    return DRAGON_SUCCESS;
}

} // namespace dragon::ddict::wire
