// The task pool's message decoders and encoders (wire.hpp, docs/taskpool.md).
#include "wire.hpp"

namespace dragon::taskpool {
namespace {

// Items of a kind the header does not bound: never more than the bytes could hold.
constexpr size_t kMinTaskItem = 4;   // uint32 length
constexpr size_t kMinResultItem = 8; // int32 status, uint32 length

bool take(const unsigned char *&p, const unsigned char *end, size_t n, std::string_view *out) {
    if (static_cast<size_t>(end - p) < n) {
        return false;
    }
    *out = std::string_view(reinterpret_cast<const char *>(p), n);
    p += n;
    return true;
}

} // namespace

bool decode_task(const unsigned char *msg, size_t len, TaskView *out) {
    if (msg == nullptr || len < sizeof(TaskHeader)) {
        return false;
    }
    std::memcpy(&out->header, msg, sizeof out->header);
    out->items.clear();
    out->name = {};
    const unsigned char *p = msg + sizeof(TaskHeader);
    const unsigned char *end = msg + len;
    const TaskHeader &h = out->header;
    if (h.kind == kStop) {
        return true;
    }
    if (h.kind != kTask || h.name_len == 0 || h.name_len > kMaxName ||
        !take(p, end, h.name_len, &out->name) ||
        h.n_items > static_cast<size_t>(end - p) / kMinTaskItem) {
        return false;
    }
    out->items.reserve(h.n_items);
    for (uint32_t i = 0; i < h.n_items; ++i) {
        uint32_t n = 0;
        std::string_view item;
        if (!get_u32(p, end, &n) || !take(p, end, n, &item)) {
            return false;
        }
        out->items.push_back(item);
    }
    return p == end;
}

bool decode_result(const unsigned char *msg, size_t len, ResultView *out) {
    if (msg == nullptr || len < sizeof(ResultHeader)) {
        return false;
    }
    std::memcpy(&out->header, msg, sizeof out->header);
    out->items.clear();
    const unsigned char *p = msg + sizeof(ResultHeader);
    const unsigned char *end = msg + len;
    const ResultHeader &h = out->header;
    switch (h.kind) {
    case kResult:
    case kInitFailed:
        break;
    case kDropped:
    case kReady:
    case kRetired:
    case kEnded:
    case kNudge:
        return p == end;
    default:
        return false;
    }
    if (h.n_items > static_cast<size_t>(end - p) / kMinResultItem) {
        return false;
    }
    out->items.reserve(h.n_items);
    for (uint32_t i = 0; i < h.n_items; ++i) {
        ResultItem item;
        uint32_t n = 0;
        if (static_cast<size_t>(end - p) < 4) {
            return false;
        }
        std::memcpy(&item.status, p, 4);
        p += 4;
        if (!get_u32(p, end, &n) || !take(p, end, n, &item.bytes)) {
            return false;
        }
        out->items.push_back(item);
    }
    return p == end;
}

void encode_item(std::vector<unsigned char> *body, std::string_view bytes) {
    size_t at = body->size();
    body->resize(at + 4 + bytes.size());
    unsigned char *p = body->data() + at;
    put_u32(p, static_cast<uint32_t>(bytes.size()));
    if (!bytes.empty()) {
        std::memcpy(p, bytes.data(), bytes.size());
    }
}

unsigned char *write_result_item(unsigned char *p, int32_t status, std::string_view bytes) {
    std::memcpy(p, &status, 4);
    p += 4;
    put_u32(p, static_cast<uint32_t>(bytes.size()));
    if (!bytes.empty()) {
        std::memcpy(p, bytes.data(), bytes.size());
    }
    return p + bytes.size();
}

void encode_result_item(std::vector<unsigned char> *body, int32_t status, std::string_view bytes) {
    size_t at = body->size();
    body->resize(at + 8 + bytes.size());
    write_result_item(body->data() + at, status, bytes);
}

} // namespace dragon::taskpool
