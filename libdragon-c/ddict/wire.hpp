// The DDict wire protocol (docs/ddict-protocol.md): the fixed 48-byte request and response
// headers, the opcodes, and the one decoder of each, which never trusts a length. Both sides
// (libdragon-c's client, dragon-ddict-manager) use these and nothing else.
#pragma once

#include <dragon/status.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dragon::ddict::wire {

constexpr uint32_t kRequestMagic = 0x51444444;  // "DDDQ" as little-endian bytes 44 44 44 51
constexpr uint32_t kResponseMagic = 0x52444444; // "DDDR"
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 48;
// A key is at most this long (a request must fit its key and header in a pool block of any
// manager; 64 KiB is also what a keys batch may carry per key).
constexpr size_t kMaxKey = 65535;
// The request channel's and reply channels' slot size: a message up to this long travels in
// a slot, a longer one as a block of the manager's pool (zero-copy).
constexpr size_t kSlotBytes = 1024;
// A checkpoint id that means "persistent" (not of any checkpoint).
constexpr uint64_t kPersistent = ~0ULL;
// The most bytes of keys one Keys reply carries (one key longer than this comes alone).
constexpr size_t kKeysBudget = 60 * 1024;

enum class Op : uint8_t {
    Hello = 1,     // value: u64 node id, u64 pid, the client's reply channel descriptor
    Bye = 2,       // no reply
    Put = 3,       // key, value; flags: kPersistentPut, kNoReply
    Get = 4,       // key
    Pop = 5,       // key
    Contains = 6,  // key
    Length = 7,    // -
    Keys = 8,      // arg: cursor (0 to start)
    Clear = 9,     // -
    FetchAdd = 10, // key; arg: delta (two's complement)
    WaitKey = 11,  // key; arg: timeout in ns (~0: forever)
    BatchEnd = 12, // - (replies with what the batch's kNoReply puts did)
    Freeze = 13,   // -
    Unfreeze = 14, // -
    Stats = 15,    // -
    Destroy = 16,  // - (the manager replies, then ends)
    Newest = 17,   // - (arg: the newest checkpoint the manager saw, arg2: its oldest kept)
    Persist = 18,  // value: a directory path
    Restore = 19,  // value: a directory path
};
constexpr uint8_t kMaxOp = 19;
const char *op_name(uint8_t op);

// Request flags.
constexpr uint16_t kPersistentPut = 0x1; // Put: persistent (of no checkpoint)
constexpr uint16_t kNoReply = 0x2;       // Put in a batch: answered by BatchEnd
constexpr uint16_t kBroadcastCopy = 0x4; // Put: a broadcast's copy on a manager the hash did
                                         // not choose (found by get, not counted or listed)
constexpr uint16_t kKnownRequestFlags = 0x7;

// Response flags.
constexpr uint32_t kLeased = 0x1;     // the value lies in the manager's pool (arg2: its entry)
constexpr uint32_t kValueBlock = 0x2; // the response is a pool block (zero-copy reply)
constexpr uint32_t kFrozen = 0x4;     // the manager is frozen

struct Request {
    uint8_t version = kVersion;
    Op op = Op::Get;
    uint16_t flags = 0;
    uint32_t client = 0;
    uint64_t request_id = 0;
    uint64_t checkpoint = 0;
    uint64_t arg = 0;
    const unsigned char *key = nullptr;
    uint32_t key_len = 0;
    const unsigned char *value = nullptr;
    uint64_t value_len = 0;
};

struct Response {
    uint8_t version = kVersion;
    uint8_t op = 0;
    uint16_t status = 0;
    uint32_t flags = 0;
    uint32_t client = 0;
    uint32_t message_len = 0;
    uint64_t request_id = 0;
    uint64_t arg = 0;
    uint64_t arg2 = 0;
    const char *message = nullptr;
    const unsigned char *value = nullptr;
    uint64_t value_len = 0;
};

// Request layout: header (48 bytes, little-endian), key, value.
//   0 u32 magic   4 u8 version   5 u8 op   6 u16 flags   8 u32 client   12 u32 key_len
//  16 u64 request_id   24 u64 checkpoint   32 u64 value_len   40 u64 arg
size_t request_bytes(const Request &r);
// Write r into out (request_bytes(r) long).
void encode_request(const Request &r, unsigned char *out);
// Decode a whole message. DRAGON_MALFORMED (message in last_error) for anything that does not
// parse; DRAGON_VERSION_MISMATCH for another version (the header's version is still set in
// *r, with op, client and request id, so the manager can answer).
dragon_status_t decode_request(const unsigned char *msg, size_t len, Request *r);

// Response layout: header (48 bytes), message (UTF-8, message_len bytes), value.
//   0 u32 magic   4 u8 version   5 u8 op   6 u16 status   8 u32 flags   12 u32 message_len
//  16 u64 request_id   24 u64 value_len   32 u64 arg   40 u64 arg2
// `client` is not carried (the reply channel is the client's own).
size_t response_bytes(const Response &r);
void encode_response(const Response &r, unsigned char *out);
dragon_status_t decode_response(const unsigned char *msg, size_t len, Response *r);

// A Keys reply's value: keys, each u32 length then bytes.
dragon_status_t decode_keys(const unsigned char *p, size_t len, std::vector<std::string> *out);

// Stats (the Stats reply's value: these u64 words, little-endian, in this order).
struct Stats {
    uint64_t manager;                 // index
    uint64_t keys;                    // keys stored (all checkpoints)
    uint64_t bytes;                   // key and value bytes stored
    uint64_t free;                    // free bytes of its pool
    uint64_t total;                   // bytes of its pool
    uint64_t puts, gets, pops, other; // operations served
    uint64_t clients;                 // connected now
    uint64_t frozen;                  // 1 when frozen
    uint64_t newest;                  // newest checkpoint
    uint64_t malformed;               // requests refused as malformed or of another version
};
constexpr size_t kStatsWords = 13;
void encode_stats(const Stats &s, unsigned char *out); // kStatsWords * 8 bytes
dragon_status_t decode_stats(const unsigned char *p, size_t len, Stats *s);

inline void put_u16(unsigned char *p, uint16_t v) {
    p[0] = static_cast<unsigned char>(v);
    p[1] = static_cast<unsigned char>(v >> 8);
}
inline void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        p[i] = static_cast<unsigned char>(v >> (8 * i));
    }
}
inline void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        p[i] = static_cast<unsigned char>(v >> (8 * i));
    }
}
inline uint16_t get_u16(const unsigned char *p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}
inline uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

} // namespace dragon::ddict::wire
