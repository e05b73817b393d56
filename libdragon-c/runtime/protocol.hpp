// The node daemon's control protocol (docs/runtime.md): JSON objects over a Unix
// SOCK_SEQPACKET socket, one message per packet. decode() is the only code that reads these
// bytes from other processes; it is fuzzed (tests/fuzz/fuzz_protocol.cpp).
#pragma once

#include "../process/spawn.hpp"

#include <dragon/status.h>

#include <nlohmann/json.hpp>

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

// The fields of a "spawn" request, validated: program (non-empty string), args, env
// (arrays of strings), cwd (string), cpus (array of CPU ids), gpus (array of the node's GPU
// indices, into *gpus when given), stdin/stdout/stderr ("inherit", "pipe", "devnull").
dragon_status_t parse_spawn(const nlohmann::json &body, proc::SpawnRequest *out,
                            std::vector<uint32_t> *gpus = nullptr);

} // namespace dragon::runtime
