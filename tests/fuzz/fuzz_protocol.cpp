// libFuzzer harness for every decoder of the control protocol (libdragon-c/protocol): the
// request decoder the daemon runs on clients' bytes, and the reply/event decoder clients run
// on the daemon's. Arbitrary bytes must give a status, never a crash, an exception or
// unbounded work; what a decoder accepts re-encodes and decodes again to the same message,
// and stays within the protocol's limits.
#include "protocol/codec.hpp"

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <variant>

namespace {

namespace pr = dragon::protocol;

void check_request(const pr::Request &m) {
    if (const auto *s = std::get_if<pr::Spawn>(&m.body)) {
        if (s->program.empty() || s->count == 0 || s->count > pr::kMaxSpawnCount ||
            s->fds_expected() > 3 || s->streams[0] == pr::Stream::kRelay || s->group_stride == 0 ||
            (s->group_first >= 0 &&
             static_cast<uint64_t>(s->group_first) + uint64_t{s->count - 1} * s->group_stride >=
                 s->group_size)) {
            std::abort();
        }
    }
    auto bounded = [](const std::vector<uint64_t> &p) {
        if (p.empty() || p.size() > pr::kMaxPuids) {
            std::abort();
        }
    };
    if (const auto *j = std::get_if<pr::Join>(&m.body)) {
        bounded(j->puids);
    } else if (const auto *s = std::get_if<pr::Status>(&m.body)) {
        bounded(s->puids);
    } else if (const auto *g = std::get_if<pr::Signal>(&m.body)) {
        bounded(g->puids);
    } else if (const auto *r = std::get_if<pr::Register>(&m.body)) {
        std::string why;
        if (!pr::valid_name(r->name, &why) || r->value.size() > pr::kMaxValueLength ||
            r->kind > 255) {
            std::abort();
        }
    }
    if (m.body.index() == 0) {
        return; // an unknown op: nothing to re-encode
    }
    pr::Request again;
    if (pr::decode(pr::encode(m), &again) != DRAGON_SUCCESS || again.op != m.op ||
        again.id != m.id || again.body.index() != m.body.index()) {
        std::abort(); // accepted something that does not survive its own encoding
    }
}

void check_incoming(const pr::Incoming &in) {
    std::string bytes;
    if (const auto *r = std::get_if<pr::Reply>(&in)) {
        static const char *const ops[] = {"",       "hello",  "spawn", "join",
                                          "status", "lookup", "node",  "nodes"};
        static_assert(std::size(ops) == std::variant_size_v<pr::ReplyBody>);
        bytes = pr::encode(*r, ops[r->body.index()]);
    } else {
        bytes = pr::encode(std::get<pr::Event>(in));
    }
    pr::Incoming again;
    if (pr::decode(bytes, &again) != DRAGON_SUCCESS || again.index() != in.index()) {
        std::abort();
    }
    if (const auto *r = std::get_if<pr::Reply>(&in)) {
        const auto &a = std::get<pr::Reply>(again);
        if (a.id != r->id || a.status != r->status || a.body.index() != r->body.index()) {
            std::abort();
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view bytes(reinterpret_cast<const char *>(data), size);
    pr::Request m;
    if (pr::decode(bytes, &m) == DRAGON_SUCCESS) {
        check_request(m);
    }
    pr::Incoming in;
    if (pr::decode(bytes, &in) == DRAGON_SUCCESS) {
        check_incoming(in);
    }
    return 0;
}
