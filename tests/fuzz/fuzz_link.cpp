// libFuzzer harness for the decoder of the messages node daemons send each other on their
// links (libdragon-c/protocol, docs/multinode.md): a daemon decodes its parent's and its
// children's bytes, and a child's may come from another host. Arbitrary bytes must give a
// status, never a crash, an exception or unbounded work; what is accepted keeps the limits
// and survives its own encoding.
#include "protocol/codec.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

namespace {

namespace pr = dragon::protocol;

void check(const pr::LinkMessage &m) {
    if (const auto *b = std::get_if<pr::LinkBoot>(&m)) {
        if (b->hosts.empty() || b->node_id >= b->hosts.size() || b->fanout == 0 ||
            (!b->names.empty() && b->names.size() != b->hosts.size())) {
            std::abort();
        }
        for (const std::string &e : b->env) {
            if (e.find('=') == std::string::npos || e.front() == '=') {
                std::abort();
            }
        }
    } else if (const auto *f = std::get_if<pr::LinkForward>(&m)) {
        if (f->to >= pr::kMaxNodes || f->from >= pr::kMaxNodes ||
            f->bytes.size() > pr::kMaxMessage) {
            std::abort();
        }
    } else if (const auto *o = std::get_if<pr::LinkOutput>(&m)) {
        if (o->stream > 1) {
            std::abort();
        }
    }
    pr::LinkMessage again;
    if (pr::decode(pr::encode(m), &again) != DRAGON_SUCCESS || again.index() != m.index()) {
        std::abort(); // accepted something that does not survive its own encoding
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view bytes(reinterpret_cast<const char *>(data), size);
    pr::LinkMessage m;
    if (pr::decode(bytes, &m) == DRAGON_SUCCESS) {
        check(m);
    }
    return 0;
}
