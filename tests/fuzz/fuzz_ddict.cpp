// libFuzzer harness for the DDict's decoders (libdragon-c/ddict/wire.cpp, persist.cpp): what a
// manager decodes from any process of the runtime, what a client decodes from a manager, and a
// persisted file read back from disk. The first input byte picks the decoder, the rest is its
// input. Arbitrary bytes must be accepted or refused, never crash or read past the input;
// what the wire decoders accept encodes back to the same bytes.
#include "ddict/persist.hpp"
#include "ddict/wire.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace wire = dragon::ddict::wire;

namespace {

void request_round_trip(const uint8_t *data, size_t size) {
    wire::Request r;
    if (wire::decode_request(data, size, &r) != DRAGON_SUCCESS) {
        return;
    }
    if (wire::request_bytes(r) != size) {
        std::abort();
    }
    std::vector<unsigned char> out(size);
    wire::encode_request(r, out.data());
    if (std::memcmp(out.data(), data, size) != 0) {
        std::abort();
    }
}

void response_round_trip(const uint8_t *data, size_t size) {
    wire::Response r;
    if (wire::decode_response(data, size, &r) != DRAGON_SUCCESS) {
        return;
    }
    // A leased value's bytes are not in the message.
    size_t n = wire::kHeaderBytes + r.message_len +
               ((r.flags & wire::kLeased) != 0 ? 0 : static_cast<size_t>(r.value_len));
    if (n != size) {
        std::abort();
    }
    std::vector<unsigned char> out(size);
    wire::encode_response(r, out.data());
    if (std::memcmp(out.data(), data, size) != 0) {
        std::abort();
    }
}

void keys_round_trip(const uint8_t *data, size_t size) {
    std::vector<std::string> keys;
    if (wire::decode_keys(data, size, &keys) != DRAGON_SUCCESS) {
        return;
    }
    std::vector<unsigned char> out;
    for (const std::string &k : keys) {
        size_t at = out.size();
        out.resize(at + 4 + k.size());
        wire::put_u32(out.data() + at, static_cast<uint32_t>(k.size()));
        std::memcpy(out.data() + at + 4, k.data(), k.size());
    }
    if (out.size() != size || (size != 0 && std::memcmp(out.data(), data, size) != 0)) {
        std::abort();
    }
}

void stats_round_trip(const uint8_t *data, size_t size) {
    wire::Stats s{};
    if (wire::decode_stats(data, size, &s) != DRAGON_SUCCESS) {
        return;
    }
    unsigned char out[wire::kStatsWords * 8];
    wire::encode_stats(s, out);
    if (size != sizeof out || std::memcmp(out, data, size) != 0) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    // The input after the selector ends where libFuzzer's buffer ends, so AddressSanitizer
    // catches any read past it.
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0:
        request_round_trip(p, n);
        break;
    case 1:
        response_round_trip(p, n);
        break;
    case 2:
        keys_round_trip(p, n);
        break;
    case 3:
        stats_round_trip(p, n);
        break;
    default:
        dragon::ddict::check_persisted(p, n, 0, 1);
        break;
    }
    return 0;
}
