// The DDict wire protocol's encoders and decoders against the test vectors of
// tests/data/ddict/wire/ (computed from docs/ddict-protocol.md by make_vectors.py, not by
// this encoder), and the decoders against malformed input.
#include "ddict/persist.hpp"
#include "ddict/wire.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace wire = dragon::ddict::wire;
using wire::Op;

namespace {

using Bytes = std::vector<unsigned char>;

Bytes b(const std::string &s) {
    return Bytes(s.begin(), s.end());
}

// A vector file: '#' lines are comments, the rest is hex that may wrap.
Bytes load(const std::string &name) {
    const char *dir = std::getenv("DRAGON_DDICT_DATA");
    EXPECT_NE(dir, nullptr) << "DRAGON_DDICT_DATA is not set";
    if (dir == nullptr) {
        return {};
    }
    std::ifstream f(std::string(dir) + "/wire/" + name + ".hex");
    EXPECT_TRUE(f.good()) << name;
    std::string hex;
    for (std::string line; std::getline(f, line);) {
        if (!line.empty() && line[0] == '#') {
            continue;
        }
        for (char c : line) {
            if (std::isxdigit(static_cast<unsigned char>(c))) {
                hex.push_back(c);
            }
        }
    }
    EXPECT_EQ(hex.size() % 2, 0u) << name;
    Bytes out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<unsigned char>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

struct ReqCase {
    const char *name;
    Op op;
    uint16_t flags;
    uint32_t client;
    uint64_t request_id, checkpoint, arg;
    Bytes key, value;
};

struct RespCase {
    const char *name;
    uint8_t op;
    uint16_t status;
    uint32_t flags;
    uint64_t request_id, arg, arg2;
    std::string message;
    Bytes value;
    uint64_t value_len; // differs from value.size() only when leased
};

Bytes le64(std::initializer_list<uint64_t> ws) {
    Bytes out;
    for (uint64_t w : ws) {
        for (int i = 0; i < 8; ++i) {
            out.push_back(static_cast<unsigned char>(w >> (8 * i)));
        }
    }
    return out;
}

Bytes hello_value() {
    Bytes v = le64({3, 4242});
    for (unsigned char c = 0x10; c < 0x28; ++c) {
        v.push_back(c);
    }
    return v;
}

const uint64_t kStatsWords[13] = {2, 5, 1234, 4000000, 8388608, 10, 20, 3, 7, 2, 0, 4, 1};

std::vector<ReqCase> request_cases() {
    return {
        {"req-hello", Op::Hello, 0, 0, 1, 0, 0, {}, hello_value()},
        {"req-put", Op::Put, 0, 1, 2, 0, 0, b("k1"), b("hello")},
        {"req-put-persistent", Op::Put, wire::kPersistentPut, 2, 3, 5, 0, b("cfg"), b("on")},
        {"req-put-batch", Op::Put, wire::kNoReply, 1, 4, 0, 0, b("b"), Bytes{0, 1, 2}},
        {"req-get", Op::Get, 0, 1, 5, 7, 0, b("k1"), {}},
        {"req-keys-cursor", Op::Keys, 0, 3, 6, 2, 37, {}, {}},
        {"req-fetch-add-negative",
         Op::FetchAdd,
         0,
         1,
         7,
         0,
         static_cast<uint64_t>(-5LL),
         b("n"),
         {}},
        {"req-wait-key-forever", Op::WaitKey, 0, 4, 8, 0, ~0ULL, b("ready"), {}},
        {"req-batch-end", Op::BatchEnd, 0, 1, 9, 0, 0, {}, {}},
        {"req-stats", Op::Stats, 0, 1, 10, 0, 0, {}, {}},
        {"req-persist", Op::Persist, 0, 1, 11, 0, 0, {}, b("/tmp/dd")},
    };
}

std::vector<RespCase> response_cases() {
    Bytes keys = {1, 0, 0, 0, 'a', 2, 0, 0, 0, 'b', 'c', 3, 0, 0, 0, 'd', 'e', 'f'};
    Bytes stats;
    for (uint64_t w : kStatsWords) {
        Bytes one = le64({w});
        stats.insert(stats.end(), one.begin(), one.end());
    }
    return {
        {"resp-hello", 1, 0, 0, 1, 1, 0x100, "", le64({777, 2}), 16},
        {"resp-get-inline", 4, 0, 0, 5, 7, 0, "", b("hello"), 5},
        {"resp-not-found", 4, DRAGON_NOT_FOUND, 0, 5, 0, 0, "", {}, 0},
        {"resp-get-leased", 4, 0, wire::kLeased | wire::kFrozen, 12, 0, 0x12340, "", {}, 4096},
        {"resp-keys-3", 8, 0, 0, 6, 0, 3, "", keys, keys.size()},
        {"resp-stats", 15, 0, 0, 10, 0, 0, "", stats, stats.size()},
        {"resp-batch-end", 12, DRAGON_NO_SPACE, 0, 9, 2, 0, "m0 is full", {}, 0},
        {"resp-version-mismatch",
         4,
         DRAGON_VERSION_MISMATCH,
         0,
         13,
         0,
         0,
         "version 2; this manager speaks 1",
         {},
         0},
    };
}

wire::Request to_request(const ReqCase &c) {
    wire::Request r;
    r.op = c.op;
    r.flags = c.flags;
    r.client = c.client;
    r.request_id = c.request_id;
    r.checkpoint = c.checkpoint;
    r.arg = c.arg;
    r.key = c.key.empty() ? nullptr : c.key.data();
    r.key_len = static_cast<uint32_t>(c.key.size());
    r.value = c.value.empty() ? nullptr : c.value.data();
    r.value_len = c.value.size();
    return r;
}

Bytes encode(const wire::Request &r) {
    Bytes out(wire::request_bytes(r));
    wire::encode_request(r, out.data());
    return out;
}

dragon_status_t decode(const Bytes &m) {
    wire::Request r;
    return wire::decode_request(m.data(), m.size(), &r);
}

dragon_status_t decode_resp(const Bytes &m) {
    wire::Response r;
    return wire::decode_response(m.data(), m.size(), &r);
}

} // namespace

TEST(DDictWire, EncodesEveryRequestVector) {
    for (const ReqCase &c : request_cases()) {
        SCOPED_TRACE(c.name);
        Bytes want = load(c.name);
        ASSERT_FALSE(want.empty());
        EXPECT_EQ(encode(to_request(c)), want);
    }
}

TEST(DDictWire, DecodesEveryRequestVector) {
    for (const ReqCase &c : request_cases()) {
        SCOPED_TRACE(c.name);
        Bytes m = load(c.name);
        wire::Request r;
        ASSERT_EQ(wire::decode_request(m.data(), m.size(), &r), DRAGON_SUCCESS)
            << dragon_last_error();
        EXPECT_EQ(r.version, wire::kVersion);
        EXPECT_EQ(r.op, c.op);
        EXPECT_EQ(r.flags, c.flags);
        EXPECT_EQ(r.client, c.client);
        EXPECT_EQ(r.request_id, c.request_id);
        EXPECT_EQ(r.checkpoint, c.checkpoint);
        EXPECT_EQ(r.arg, c.arg);
        EXPECT_EQ(Bytes(r.key, r.key + r.key_len), c.key);
        EXPECT_EQ(Bytes(r.value, r.value + r.value_len), c.value);
    }
}

TEST(DDictWire, EncodesAndDecodesEveryResponseVector) {
    for (const RespCase &c : response_cases()) {
        SCOPED_TRACE(c.name);
        Bytes want = load(c.name);
        ASSERT_FALSE(want.empty());
        wire::Response r;
        r.op = c.op;
        r.status = c.status;
        r.flags = c.flags;
        r.request_id = c.request_id;
        r.arg = c.arg;
        r.arg2 = c.arg2;
        r.message = c.message.empty() ? nullptr : c.message.data();
        r.message_len = static_cast<uint32_t>(c.message.size());
        r.value = c.value.empty() ? nullptr : c.value.data();
        r.value_len = c.value_len;
        // A leased value's bytes are not in the message (as the manager sends it).
        size_t n = wire::response_bytes(r) - ((c.flags & wire::kLeased) != 0 ? c.value_len : 0);
        Bytes got(n);
        wire::encode_response(r, got.data());
        EXPECT_EQ(got, want);

        wire::Response d;
        ASSERT_EQ(wire::decode_response(want.data(), want.size(), &d), DRAGON_SUCCESS)
            << dragon_last_error();
        EXPECT_EQ(d.version, wire::kVersion);
        EXPECT_EQ(d.op, c.op);
        EXPECT_EQ(d.status, c.status);
        EXPECT_EQ(d.flags, c.flags);
        EXPECT_EQ(d.request_id, c.request_id);
        EXPECT_EQ(d.arg, c.arg);
        EXPECT_EQ(d.arg2, c.arg2);
        EXPECT_EQ(d.value_len, c.value_len);
        EXPECT_EQ(std::string(d.message == nullptr ? "" : d.message, d.message_len), c.message);
        if ((c.flags & wire::kLeased) != 0) {
            EXPECT_EQ(d.value, nullptr);
        } else {
            EXPECT_EQ(Bytes(d.value, d.value + (d.value == nullptr ? 0 : d.value_len)), c.value);
        }
    }
}

TEST(DDictWire, KeysAndStatsValuesDecode) {
    Bytes m = load("resp-keys-3");
    wire::Response r;
    ASSERT_EQ(wire::decode_response(m.data(), m.size(), &r), DRAGON_SUCCESS);
    std::vector<std::string> keys;
    ASSERT_EQ(wire::decode_keys(r.value, r.value_len, &keys), DRAGON_SUCCESS);
    EXPECT_EQ(keys, (std::vector<std::string>{"a", "bc", "def"}));

    m = load("resp-stats");
    ASSERT_EQ(wire::decode_response(m.data(), m.size(), &r), DRAGON_SUCCESS);
    wire::Stats s{};
    ASSERT_EQ(wire::decode_stats(r.value, r.value_len, &s), DRAGON_SUCCESS);
    const uint64_t got[13] = {s.manager, s.keys,  s.bytes,   s.free,   s.total,  s.puts,     s.gets,
                              s.pops,    s.other, s.clients, s.frozen, s.newest, s.malformed};
    for (int i = 0; i < 13; ++i) {
        EXPECT_EQ(got[i], kStatsWords[i]) << "word " << i;
    }
    unsigned char again[wire::kStatsWords * 8];
    wire::encode_stats(s, again);
    EXPECT_EQ(Bytes(again, again + sizeof again), Bytes(r.value, r.value + r.value_len));
}

TEST(DDictWire, EveryTruncationIsMalformed) {
    for (const ReqCase &c : request_cases()) {
        SCOPED_TRACE(c.name);
        Bytes m = load(c.name);
        for (size_t n = 0; n < m.size(); ++n) {
            Bytes cut(m.begin(), m.begin() + static_cast<long>(n));
            EXPECT_EQ(decode(cut), DRAGON_MALFORMED) << n << " bytes";
        }
        // One byte too many is as bad.
        Bytes longer = m;
        longer.push_back(0);
        EXPECT_EQ(decode(longer), DRAGON_MALFORMED);
    }
}

TEST(DDictWire, RefusesBadRequestHeaders) {
    Bytes put = load("req-put");
    Bytes m = put;
    m[0] ^= 0xff;
    EXPECT_EQ(decode(m), DRAGON_MALFORMED) << "bad magic";
    Bytes get = load("req-batch-end");
    for (unsigned op : {0u, 20u, 255u}) {
        m = get;
        m[5] = static_cast<unsigned char>(op);
        EXPECT_EQ(decode(m), DRAGON_MALFORMED) << "opcode " << op;
    }
    for (uint16_t f : {uint16_t{0x8}, uint16_t{0x8000}}) {
        m = put;
        wire::put_u16(m.data() + 6, f);
        EXPECT_EQ(decode(m), DRAGON_MALFORMED) << "flags " << f;
    }
    // key_len and value_len that do not add up to the body (7 bytes: "k1hello").
    m = put;
    wire::put_u32(m.data() + 12, 8);
    EXPECT_EQ(decode(m), DRAGON_MALFORMED);
    m = put;
    wire::put_u64(m.data() + 32, 6);
    EXPECT_EQ(decode(m), DRAGON_MALFORMED);
    m = put;
    wire::put_u64(m.data() + 32, ~0ULL - 1);
    EXPECT_EQ(decode(m), DRAGON_MALFORMED) << "value_len near 2^64";
    m = put;
    wire::put_u32(m.data() + 12, 0xffffffffu);
    EXPECT_EQ(decode(m), DRAGON_MALFORMED) << "key_len above the limit";
}

TEST(DDictWire, RefusesAKeyOrValueAnOpDoesNotTake) {
    for (Op op : {Op::Hello, Op::Bye, Op::Length, Op::Keys, Op::Clear, Op::BatchEnd, Op::Freeze,
                  Op::Stats, Op::Destroy, Op::Newest, Op::Persist, Op::Restore}) {
        wire::Request r;
        r.op = op;
        Bytes key = b("k");
        r.key = key.data();
        r.key_len = 1;
        EXPECT_EQ(decode(encode(r)), DRAGON_MALFORMED) << wire::op_name(static_cast<uint8_t>(op));
    }
    for (Op op : {Op::Get, Op::Pop, Op::Contains, Op::Keys, Op::FetchAdd, Op::WaitKey, Op::Stats}) {
        wire::Request r;
        r.op = op;
        Bytes v = b("v");
        r.value = v.data();
        r.value_len = 1;
        EXPECT_EQ(decode(encode(r)), DRAGON_MALFORMED) << wire::op_name(static_cast<uint8_t>(op));
    }
}

TEST(DDictWire, AnotherVersionIsAMismatchWithItsHeaderKept) {
    Bytes m = load("req-get");
    m[4] = 2;
    wire::Request r;
    EXPECT_EQ(wire::decode_request(m.data(), m.size(), &r), DRAGON_VERSION_MISMATCH);
    // The manager answers from these.
    EXPECT_EQ(r.version, 2);
    EXPECT_EQ(r.op, Op::Get);
    EXPECT_EQ(r.client, 1u);
    EXPECT_EQ(r.request_id, 5u);

    Bytes resp = load("resp-get-inline");
    resp[4] = 2;
    EXPECT_EQ(decode_resp(resp), DRAGON_VERSION_MISMATCH);
}

TEST(DDictWire, RefusesResponsesWhoseLengthsDoNotAddUp) {
    Bytes ok = load("resp-get-inline"); // 5 value bytes
    for (size_t n = 0; n < ok.size(); ++n) {
        EXPECT_EQ(decode_resp(Bytes(ok.begin(), ok.begin() + static_cast<long>(n))),
                  DRAGON_MALFORMED)
            << n << " bytes";
    }
    Bytes m = ok;
    m[0] ^= 1;
    EXPECT_EQ(decode_resp(m), DRAGON_MALFORMED) << "bad magic";
    m = ok;
    wire::put_u32(m.data() + 12, 6);
    EXPECT_EQ(decode_resp(m), DRAGON_MALFORMED) << "message longer than the body";
    m = ok;
    wire::put_u64(m.data() + 24, 4);
    EXPECT_EQ(decode_resp(m), DRAGON_MALFORMED) << "value shorter than the body";
    m = ok;
    wire::put_u32(m.data() + 12, 1);
    EXPECT_EQ(decode_resp(m), DRAGON_MALFORMED) << "message and value overlap";
    // A leased reply carries no value bytes: any trailing byte is too many.
    m = load("resp-get-leased");
    m.push_back(0);
    EXPECT_EQ(decode_resp(m), DRAGON_MALFORMED);
}

TEST(DDictWire, RefusesBadKeysValues) {
    std::vector<std::string> keys;
    const unsigned char zero[] = {0, 0, 0, 0};
    EXPECT_EQ(wire::decode_keys(zero, sizeof zero, &keys), DRAGON_MALFORMED) << "empty key";
    const unsigned char part[] = {1, 0, 0, 0, 'a', 1, 0};
    EXPECT_EQ(wire::decode_keys(part, sizeof part, &keys), DRAGON_MALFORMED) << "cut length";
    const unsigned char longer[] = {3, 0, 0, 0, 'a', 'b'};
    EXPECT_EQ(wire::decode_keys(longer, sizeof longer, &keys), DRAGON_MALFORMED);
    keys.clear();
    EXPECT_EQ(wire::decode_keys(nullptr, 0, &keys), DRAGON_SUCCESS);
    EXPECT_TRUE(keys.empty());
}

TEST(DDictWire, RefusesStatsOfTheWrongSize) {
    unsigned char v[wire::kStatsWords * 8 + 8] = {};
    wire::Stats s{};
    EXPECT_EQ(wire::decode_stats(v, wire::kStatsWords * 8, &s), DRAGON_SUCCESS);
    EXPECT_EQ(wire::decode_stats(v, wire::kStatsWords * 8 - 1, &s), DRAGON_MALFORMED);
    EXPECT_EQ(wire::decode_stats(v, wire::kStatsWords * 8 + 8, &s), DRAGON_MALFORMED);
    EXPECT_EQ(wire::decode_stats(v, 0, &s), DRAGON_MALFORMED);
}

TEST(DDictWire, CheckPersistedAcceptsTheVectorAndRefusesAnyFlippedByte) {
    Bytes f = load("persisted");
    ASSERT_EQ(dragon::ddict::check_persisted(f.data(), f.size(), 0, 1), DRAGON_SUCCESS)
        << dragon_last_error();
    EXPECT_EQ(dragon::ddict::check_persisted(f.data(), f.size(), 1, 2), DRAGON_INVALID_ARGUMENT);
    for (size_t i = 0; i < f.size(); ++i) {
        Bytes m = f;
        m[i] ^= 0x01;
        EXPECT_EQ(dragon::ddict::check_persisted(m.data(), m.size(), 0, 1), DRAGON_CORRUPTED)
            << "byte " << i;
    }
    EXPECT_EQ(dragon::ddict::check_persisted(f.data(), f.size() - 1, 0, 1), DRAGON_CORRUPTED);
}
