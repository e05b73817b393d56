// The node daemon's control protocol (docs/runtime.md): JSON objects over a Unix
// SOCK_SEQPACKET socket, one message per packet. decode() is the only code that reads these
// bytes from other processes; it is fuzzed (tests/fuzz/fuzz_protocol.cpp).
#pragma once

#include "../process/spawn.hpp"

#include <dragon/status.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dragon::runtime {

constexpr int kProtocolVersion = 1;
constexpr std::size_t kMaxMessage = 1 << 20; // bytes
constexpr int kMaxDepth = 16;                // nesting of arrays and objects
constexpr std::size_t kMaxOpName = 32;

struct Message {    // NOLINT(bugprone-exception-escape): json moves do not throw
    std::string op; // "hello", "spawn", "join", "signal", "register", "lookup", "shutdown", ...
    uint64_t id = 0;
    nlohmann::json body; // the whole object (op and id included)
};

// Parse and validate the envelope: size, nesting, a JSON object with a non-empty string
// "op" (at most kMaxOpName bytes of [a-z_]) and an unsigned integer "id". Never throws;
// DRAGON_BAD_DESCRIPTOR with a detailed message when malformed.
dragon_status_t decode(std::string_view bytes, Message *out);

std::string encode(const nlohmann::json &message);

// How a stream of a spawned process is connected (docs/runtime.md, "Control protocol"):
// "inherit": the daemon's own; "relay": a pipe the daemon relays line by line to its own
// (stdout/stderr only); "pipe": a pipe whose other end goes back to the requester with the
// reply (SCM_RIGHTS); "devnull"; "fd": a descriptor the requester sent with the request.
enum class Stream { kInherit, kRelay, kPipe, kDevNull, kFd };

constexpr uint32_t kMaxSpawnCount = 4096;      // processes per spawn request
constexpr std::size_t kMaxPuids = 4096;        // puids per join / signal / status request
constexpr std::size_t kMaxNameLength = 255;    // registry names
constexpr std::size_t kMaxValueLength = 65536; // registry values, bytes

// A validated "spawn" request.
struct SpawnSpec {
    proc::SpawnRequest req; // streams left to the daemon (set from `streams`)
    std::array<Stream, 3> streams{Stream::kDevNull, Stream::kRelay, Stream::kRelay};
    std::vector<uint32_t> gpus; // GPU indices of the node
    uint32_t count = 1;         // identical processes to start
    uint32_t max_restarts = 0;  // restarts after a failure (exit code != 0), per process
    std::string host_name;      // placement: "" = any node
    int64_t host_id = -1;       // placement: -1 = any node
    std::string wait_mode;      // "adaptive", "spin", "idle" (DRAGON_WAIT_MODE), "" = unset
    // How many descriptors the request must carry (streams marked "fd"), in stream order.
    int fds_expected() const;
};

// The fields of a "spawn" request: program (non-empty string), args, env (arrays of
// strings), cwd (string), cpus (array of CPU ids), gpus (array of the node's GPU indices),
// stdin/stdout/stderr (Stream names; "relay" not for stdin), count (1..kMaxSpawnCount),
// restart (max restarts, 0..2^31), host_name / host_id (placement), wait_mode. "pipe" only with
// count 1, and not with restart (the requester's end would outlive the first process).
dragon_status_t parse_spawn(const nlohmann::json &body, SpawnSpec *out);

// "puid" (one) or "puids" (1..kMaxPuids), runtime process ids.
dragon_status_t parse_puids(const nlohmann::json &body, std::vector<uint64_t> *out);

// A registry name: 1..kMaxNameLength bytes of printable ASCII other than space.
dragon_status_t parse_name(const nlohmann::json &body, std::string *out);

// Registry values travel as lowercase hex.
std::string hex_encode(const void *data, std::size_t len);
dragon_status_t hex_decode(std::string_view hex, std::string *out);

} // namespace dragon::runtime
