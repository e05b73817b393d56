// libFuzzer harness for the node daemon's control-message decoder: arbitrary bytes from a
// client must give a status, never a crash, an exception or unbounded work; what decode()
// accepts re-encodes and decodes again to the same message, and parse_spawn() on it either
// refuses it or yields a request with a non-empty program.
#include "runtime/protocol.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

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
    dragon::proc::SpawnRequest r;
    if (rt::parse_spawn(m.body, &r) == DRAGON_SUCCESS && r.program.empty()) {
        std::abort();
    }
    return 0;
}
