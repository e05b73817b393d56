// Segment names of pools (docs/pool.md, "Segment names and owners").
//
// /dev/shm is one directory for every user, writable by all and sticky: whoever creates a
// name first owns it, and nobody else can remove it. A name others can guess is a name they
// can take first, so inside a runtime a pool's segment name ends in a keyed hash of the pool's
// identity under the runtime's secret token, which travels only through the environment of
// the runtime's own processes (readable by their owner alone). The readable part stays in
// front for people and for the cleanup that removes segments by the "dragon.<runtime id>."
// prefix.
#pragma once

#include <dragon/pool.h>

#include <climits>
#include <cstddef>
#include <cstdint>

namespace dragon::pool {

// The environment variable that carries the runtime's token: set by the launcher before it
// starts the node daemon, inherited by the daemon, given by it to every process it starts.
// Never on a command line (those are readable by everyone).
constexpr const char *kTokenEnv = "DRAGON_RUNTIME_TOKEN";
constexpr size_t kTokenBytes = 16; // 128 bits
constexpr size_t kTokenHexLen = 2 * kTokenBytes;
// Hex digits of the keyed hash at the end of a segment name (64 bits: a squatter would have
// to guess them for every future pool, with nothing to test a guess against offline).
constexpr size_t kSuffixHexLen = 16;

// The longest segment name and its NUL: "/dragon." runtime id "." node id (10 digits at most)
// ".pool." name "." suffix.
constexpr size_t kSegmentNameCap =
    8 + DRAGON_RUNTIME_ID_MAX + 1 + 10 + 6 + DRAGON_POOL_NAME_MAX + 1 + kSuffixHexLen + 1;
// Without its '/', a segment name is one file name in /dev/shm.
static_assert(kSegmentNameCap - 2 <= NAME_MAX, "segment names must fit NAME_MAX");

// A token as this process knows it: none outside a runtime.
struct Token {
    bool present = false;
    uint8_t key[kTokenBytes] = {};
};

// A fresh token as kTokenHexLen lowercase hex digits (out holds kTokenHexLen + 1 bytes);
// false, with errno set, when the kernel gave no random bytes.
bool new_token(char *out);

// This process's token: $DRAGON_RUNTIME_TOKEN, none when it is unset or empty. A malformed
// value fails with DRAGON_INVALID_ARGUMENT and a message that names the variable.
dragon_status_t env_token(Token *out);

// The segment name of pool `name` of runtime `runtime_id` on node `node_id` into out
// (kSegmentNameCap bytes): /dragon.<runtime id>.<node id>.pool.<name>, then, with a token,
// "." and kSuffixHexLen hex digits of BLAKE2b keyed with the token over the three. The
// identity must be valid (valid_runtime_id, valid_pool_name, node id <= kMaxNodeId).
dragon_status_t segment_name(const Token &token, const char *runtime_id, uint64_t node_id,
                             const char *name, char *out);

} // namespace dragon::pool
