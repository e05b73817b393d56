// libFuzzer harness for the task pool's message decoders (libdragon-c/taskpool/wire.cpp): the
// task messages a worker decodes and the result messages the owner decodes, both crossing a
// process boundary. Arbitrary bytes must give true or false, never a crash or a read past the
// message; what a decoder accepts encodes back to the same bytes.
#include "taskpool/wire.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace tp = dragon::taskpool;

namespace {

void task_round_trip(const uint8_t *data, size_t size) {
    tp::TaskView v;
    if (!tp::decode_task(data, size, &v)) {
        return;
    }
    if (v.header.kind == tp::kStop) {
        return;
    }
    if (v.items.size() != v.header.n_items || v.name.size() != v.header.name_len) {
        std::abort();
    }
    std::vector<unsigned char> out(sizeof(tp::TaskHeader));
    std::memcpy(out.data(), &v.header, sizeof v.header);
    out.insert(out.end(), v.name.begin(), v.name.end());
    for (auto item : v.items) {
        tp::encode_item(&out, item);
    }
    if (out.size() != size || std::memcmp(out.data(), data, size) != 0) {
        std::abort();
    }
}

void result_round_trip(const uint8_t *data, size_t size) {
    tp::ResultView v;
    if (!tp::decode_result(data, size, &v)) {
        return;
    }
    std::vector<unsigned char> out(sizeof(tp::ResultHeader));
    std::memcpy(out.data(), &v.header, sizeof v.header);
    for (const auto &item : v.items) {
        tp::encode_result_item(&out, item.status, item.bytes);
    }
    if (out.size() != size || std::memcmp(out.data(), data, size) != 0) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    task_round_trip(data, size);
    result_round_trip(data, size);
    return 0;
}
