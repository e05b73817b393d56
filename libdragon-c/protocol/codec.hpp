// The control protocol's one codec (docs/protocol.md): CBOR (RFC 8949) through libcbor,
// which no other file uses. Every decoder here is fed bytes from other processes and is
// fuzzed (tests/fuzz/fuzz_protocol.cpp); none throws.
#pragma once

#include "messages.hpp"

#include <string>
#include <string_view>

namespace dragon::protocol {

// Bytes of a request (its op comes from the body), a reply (answering `op`) and an event.
std::string encode(const Request &request);
std::string encode(const Reply &reply, std::string_view op);
std::string encode(const Event &event);

// A request from a client. DRAGON_MALFORMED (what is wrong in last_error) or
// DRAGON_VERSION_MISMATCH (both versions named); out->id and out->op are set as soon as
// they could be read, so that even a refusal can answer the right request. An op this build
// does not know decodes with a monostate body. Field rules that are about values, not
// shape (a registry name's characters), give DRAGON_INVALID_ARGUMENT.
dragon_status_t decode(std::string_view bytes, Request *out);

// A message from a daemon: a reply or an event. A reply refused after its id was read still
// comes out as a Reply with that id, the refusal as its status and error.
dragon_status_t decode(std::string_view bytes, Incoming *out);

// Messages on the links between node daemons (messages.hpp, docs/multinode.md).
std::string encode(const LinkMessage &message);
dragon_status_t decode(std::string_view bytes, LinkMessage *out);

} // namespace dragon::protocol
