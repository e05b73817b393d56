// libFuzzer harness for the node daemon's control-message decoder: arbitrary bytes from a
// client must give a status, never a crash, an exception or unbounded work; what decode()
// accepts re-encodes and decodes again to the same message, and the field parsers (spawn,
// puids, registry names and hex values) either refuse it or yield something within bounds.
#include "runtime/protocol.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    namespace rt = dragon::runtime;
    std::string_view bytes(reinterpret_cast<const char *>(data), size);
    rt::Message m;
    if (rt::decode(bytes, &m) != DRAGON_SUCCESS) {
        return 0;
    }
    rt::Message again;
    if (rt::decode(rt::encode(m.body), &again) != DRAGON_SUCCESS || again.op != m.op ||
        again.id != m.id) {
        std::abort(); // accepted something that does not survive its own encoding
    }
    rt::SpawnSpec spec;
    if (rt::parse_spawn(m.body, &spec) == DRAGON_SUCCESS &&
        (spec.req.program.empty() || spec.count == 0 || spec.count > rt::kMaxSpawnCount ||
         spec.fds_expected() > 3)) {
        std::abort();
    }
    std::vector<uint64_t> puids;
    if (rt::parse_puids(m.body, &puids) == DRAGON_SUCCESS &&
        (puids.empty() || puids.size() > rt::kMaxPuids)) {
        std::abort();
    }
    std::string name;
    if (rt::parse_name(m.body, &name) == DRAGON_SUCCESS &&
        (name.empty() || name.size() > rt::kMaxNameLength)) {
        std::abort();
    }
    if (auto v = m.body.find("value"); v != m.body.end() && v->is_string()) {
        std::string bytes;
        if (rt::hex_decode(v->get_ref<const std::string &>(), &bytes) == DRAGON_SUCCESS &&
            rt::hex_encode(bytes.data(), bytes.size()) != v->get_ref<const std::string &>()) {
            std::abort(); // decoding is exact: it re-encodes to the same text
        }
    }
    return 0;
}
