// Segment names: the keyed hash is libsodium's crypto_generichash (BLAKE2b, keyed), its hex
// codecs are libsodium's too.
#include "naming.hpp"

#include "../common/error.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sodium.h>
#include <sys/random.h>

namespace dragon::pool {
namespace {

// Bound into every hash, so that the token keys nothing but segment names of this scheme.
constexpr char kDomain[] = "dragon pool segment v1";

bool sodium_ready() {
    static const bool ready = sodium_init() >= 0; // once, thread-safe; 1: already done
    return ready;
}

} // namespace

bool new_token(char *out) {
    unsigned char b[kTokenBytes];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        got += static_cast<size_t>(n);
    }
    sodium_bin2hex(out, kTokenHexLen + 1, b, sizeof b);
    sodium_memzero(b, sizeof b);
    return true;
}

dragon_status_t env_token(Token *out) {
    *out = Token{};
    const char *hex = std::getenv(kTokenEnv);
    if (hex == nullptr || *hex == '\0') {
        return DRAGON_SUCCESS;
    }
    size_t len = std::strlen(hex);
    size_t bin_len = 0;
    const char *end = nullptr;
    if (len != kTokenHexLen ||
        sodium_hex2bin(out->key, sizeof out->key, hex, len, nullptr, &bin_len, &end) != 0 ||
        bin_len != kTokenBytes || end != hex + len) {
        *out = Token{};
        return detail::fail(DRAGON_INVALID_ARGUMENT,
                            "%s is not a runtime token (%zu hex digits expected, as the dragon "
                            "launcher sets it); unset it outside a runtime",
                            kTokenEnv, kTokenHexLen);
    }
    out->present = true;
    return DRAGON_SUCCESS;
}

dragon_status_t segment_name(const Token &token, const char *runtime_id, uint64_t node_id,
                             const char *name, char *out) {
    int n = std::snprintf(out, kSegmentNameCap, "/dragon.%s.%" PRIu64 ".pool.%s", runtime_id,
                          node_id, name);
    if (n < 0 || static_cast<size_t>(n) + 1 + kSuffixHexLen >= kSegmentNameCap) {
        return detail::fail(DRAGON_INTERNAL, "segment name of pool '%.80s' does not fit", name);
    }
    if (!token.present) {
        return DRAGON_SUCCESS;
    }
    // What is hashed: the domain, runtime id, node id and name, each ended by a NUL (none of
    // them holds one), so that no two identities give the same bytes.
    char msg[sizeof kDomain + kSegmentNameCap];
    int len = std::snprintf(msg, sizeof msg, "%s%c%s%c%" PRIu64 "%c%s", kDomain, '\0', runtime_id,
                            '\0', node_id, '\0', name);
    unsigned char hash[crypto_generichash_BYTES_MIN];
    if (!sodium_ready() || len < 0 ||
        crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char *>(msg),
                           static_cast<size_t>(len) + 1, token.key, sizeof token.key) != 0) {
        return detail::fail(DRAGON_INTERNAL, "segment name of pool '%.80s': libsodium failed",
                            name);
    }
    out[n] = '.';
    sodium_bin2hex(out + n + 1, kSuffixHexLen + 1, hash, kSuffixHexLen / 2);
    return DRAGON_SUCCESS;
}

} // namespace dragon::pool
