#include "protocol.hpp"

#include "../common/error.hpp"

#include <climits>
#include <cstdint>
#include <utility>

namespace dragon::runtime {
namespace {

using detail::fail;

// Deepest nesting of arrays/objects outside string literals; stops counting past a limit.
int nesting(std::string_view s, int limit) {
    int depth = 0;
    int deepest = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : s) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) {
                return deepest;
            }
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

// A non-negative integer, whether the JSON value holds it as signed or unsigned.
bool non_negative_int(const nlohmann::json &v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

bool op_name_ok(const std::string &op) {
    if (op.empty() || op.size() > kMaxOpName) {
        return false;
    }
    for (char c : op) {
        if (!((c >= 'a' && c <= 'z') || c == '_')) {
            return false;
        }
    }
    return true;
}

dragon_status_t string_array(const nlohmann::json &body, const char *key,
                             std::vector<std::string> *out) {
    auto it = body.find(key);
    if (it == body.end()) {
        return DRAGON_SUCCESS;
    }
    if (!it->is_array()) {
        return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"%s\" must be an array of strings", key);
    }
    for (const auto &v : *it) {
        if (!v.is_string()) {
            return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"%s\" must be an array of strings", key);
        }
        out->push_back(v.get<std::string>());
    }
    return DRAGON_SUCCESS;
}

dragon_status_t stream_mode(const nlohmann::json &body, const char *key, Stream *out) {
    auto it = body.find(key);
    if (it == body.end()) {
        return DRAGON_SUCCESS;
    }
    static const std::pair<const char *, Stream> names[] = {{"inherit", Stream::kInherit},
                                                            {"relay", Stream::kRelay},
                                                            {"pipe", Stream::kPipe},
                                                            {"devnull", Stream::kDevNull},
                                                            {"fd", Stream::kFd}};
    if (it->is_string()) {
        const auto &s = it->get_ref<const std::string &>();
        for (const auto &[name, mode] : names) {
            if (s == name) {
                *out = mode;
                return DRAGON_SUCCESS;
            }
        }
    }
    return fail(DRAGON_BAD_DESCRIPTOR,
                "spawn: \"%s\" must be \"inherit\", \"relay\", \"pipe\", \"devnull\" or \"fd\"",
                key);
}

// An unsigned integer field at most `max`; absent leaves *out alone.
dragon_status_t bounded_uint(const nlohmann::json &body, const char *key, uint64_t max,
                             uint64_t *out) {
    auto it = body.find(key);
    if (it == body.end()) {
        return DRAGON_SUCCESS;
    }
    if (!non_negative_int(*it) || it->get<uint64_t>() > max) {
        return fail(DRAGON_BAD_DESCRIPTOR, "\"%s\" must be an integer from 0 to %llu", key,
                    static_cast<unsigned long long>(max));
    }
    *out = it->get<uint64_t>();
    return DRAGON_SUCCESS;
}

} // namespace

dragon_status_t decode(std::string_view bytes, Message *out) {
    if (bytes.size() > kMaxMessage) {
        return fail(DRAGON_BAD_DESCRIPTOR, "control message of %zu bytes (at most %zu)",
                    bytes.size(), kMaxMessage);
    }
    if (nesting(bytes, kMaxDepth) > kMaxDepth) {
        return fail(DRAGON_BAD_DESCRIPTOR, "control message nested deeper than %d", kMaxDepth);
    }
    nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        return fail(DRAGON_BAD_DESCRIPTOR, "control message is not valid JSON");
    }
    if (!j.is_object()) {
        return fail(DRAGON_BAD_DESCRIPTOR, "control message is not a JSON object");
    }
    auto op = j.find("op");
    if (op == j.end() || !op->is_string() || !op_name_ok(op->get_ref<const std::string &>())) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "control message has no valid \"op\" (1 to %zu of [a-z_])", kMaxOpName);
    }
    auto id = j.find("id");
    if (id == j.end() || !non_negative_int(*id)) {
        return fail(DRAGON_BAD_DESCRIPTOR, "control message has no unsigned integer \"id\"");
    }
    out->op = op->get<std::string>();
    out->id = id->get<uint64_t>();
    out->body = std::move(j);
    return DRAGON_SUCCESS;
}

std::string encode(const nlohmann::json &message) {
    // Invalid UTF-8 in strings (a program's arguments may hold any bytes) is replaced, not
    // thrown about.
    return message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int SpawnSpec::fds_expected() const {
    int n = 0;
    for (Stream s : streams) {
        n += s == Stream::kFd ? 1 : 0;
    }
    return n;
}

dragon_status_t parse_spawn(const nlohmann::json &body, SpawnSpec *out) {
    SpawnSpec spec;
    proc::SpawnRequest &r = spec.req;
    auto program = body.find("program");
    if (program == body.end() || !program->is_string() ||
        program->get_ref<const std::string &>().empty()) {
        return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"program\" must be a non-empty string");
    }
    r.program = program->get<std::string>();
    if (r.program.find('\0') != std::string::npos) {
        return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"program\" holds a NUL byte");
    }
    for (auto [key, vec] : {std::pair{"args", &r.args}, std::pair{"env", &r.env}}) {
        if (dragon_status_t st = string_array(body, key, vec); st != DRAGON_SUCCESS) {
            return st;
        }
        for (const auto &s : *vec) {
            if (s.find('\0') != std::string::npos) {
                return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"%s\" holds a NUL byte", key);
            }
        }
    }
    if (auto cwd = body.find("cwd"); cwd != body.end()) {
        if (!cwd->is_string() ||
            cwd->get_ref<const std::string &>().find('\0') != std::string::npos) {
            return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"cwd\" must be a string");
        }
        r.cwd = cwd->get<std::string>();
    }
    if (auto cpus = body.find("cpus"); cpus != body.end()) {
        if (!cpus->is_array() || cpus->size() > 1024) {
            return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"cpus\" must be an array of CPU ids");
        }
        for (const auto &c : *cpus) {
            if (!non_negative_int(c) || c.get<uint64_t>() >= 1U << 20) {
                return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"cpus\" must be an array of CPU ids");
            }
            r.cpus.push_back(c.get<uint32_t>());
        }
    }
    if (auto g = body.find("gpus"); g != body.end()) {
        if (!g->is_array() || g->size() > 64) {
            return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"gpus\" must be an array of GPU indices");
        }
        for (const auto &v : *g) {
            if (!non_negative_int(v) || v.get<uint64_t>() >= 1U << 16) {
                return fail(DRAGON_BAD_DESCRIPTOR,
                            "spawn: \"gpus\" must be an array of GPU indices");
            }
            spec.gpus.push_back(v.get<uint32_t>());
        }
    }
    static const char *const keys[3] = {"stdin", "stdout", "stderr"};
    for (int i = 0; i < 3; ++i) {
        if (dragon_status_t st = stream_mode(body, keys[i], &spec.streams[i]);
            st != DRAGON_SUCCESS) {
            return st;
        }
    }
    if (spec.streams[0] == Stream::kRelay) {
        return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"stdin\" cannot be \"relay\"");
    }
    uint64_t count = 1;
    uint64_t restarts = 0;
    if (dragon_status_t st = bounded_uint(body, "count", kMaxSpawnCount, &count);
        st != DRAGON_SUCCESS) {
        return st;
    }
    if (count == 0) {
        return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"count\" must be at least 1");
    }
    if (dragon_status_t st = bounded_uint(body, "restart", INT32_MAX, &restarts);
        st != DRAGON_SUCCESS) {
        return st;
    }
    spec.count = static_cast<uint32_t>(count);
    spec.max_restarts = static_cast<uint32_t>(restarts);
    bool piped = false;
    for (Stream s : spec.streams) {
        piped = piped || s == Stream::kPipe;
    }
    if (piped && (spec.count > 1 || spec.max_restarts > 0)) {
        return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"pipe\" streams need count 1 and no restart");
    }
    if (auto h = body.find("host_name"); h != body.end()) {
        if (!h->is_string() || h->get_ref<const std::string &>().size() > 255) {
            return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"host_name\" must be a host name");
        }
        spec.host_name = h->get<std::string>();
    }
    uint64_t host_id = UINT64_MAX;
    if (dragon_status_t st = bounded_uint(body, "host_id", INT32_MAX, &host_id);
        st != DRAGON_SUCCESS) {
        return st;
    }
    spec.host_id = host_id == UINT64_MAX ? -1 : static_cast<int64_t>(host_id);
    if (auto w = body.find("wait_mode"); w != body.end()) {
        if (!w->is_string() || (*w != "adaptive" && *w != "spin" && *w != "idle")) {
            return fail(DRAGON_BAD_DESCRIPTOR,
                        "spawn: \"wait_mode\" must be \"adaptive\", \"spin\" or \"idle\"");
        }
        spec.wait_mode = w->get<std::string>();
    }
    static const proc::Stdio to_proc[] = {proc::Stdio::kInherit, proc::Stdio::kPipe,
                                          proc::Stdio::kPipe, proc::Stdio::kDevNull,
                                          proc::Stdio::kFd};
    r.in = to_proc[static_cast<int>(spec.streams[0])];
    r.out = to_proc[static_cast<int>(spec.streams[1])];
    r.err = to_proc[static_cast<int>(spec.streams[2])];
    *out = std::move(spec);
    return DRAGON_SUCCESS;
}

dragon_status_t parse_puids(const nlohmann::json &body, std::vector<uint64_t> *out) {
    out->clear();
    if (auto one = body.find("puid"); one != body.end()) {
        if (!one->is_number_unsigned() && !non_negative_int(*one)) {
            return fail(DRAGON_BAD_DESCRIPTOR, "\"puid\" must be a process id");
        }
        out->push_back(one->get<uint64_t>());
        return DRAGON_SUCCESS;
    }
    auto many = body.find("puids");
    if (many == body.end() || !many->is_array() || many->empty() || many->size() > kMaxPuids) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "a \"puid\" or a \"puids\" array of 1 to %zu process ids is needed", kMaxPuids);
    }
    out->reserve(many->size());
    for (const auto &v : *many) {
        if (!non_negative_int(v)) {
            return fail(DRAGON_BAD_DESCRIPTOR, "\"puids\" must hold process ids");
        }
        out->push_back(v.get<uint64_t>());
    }
    return DRAGON_SUCCESS;
}

dragon_status_t parse_name(const nlohmann::json &body, std::string *out) {
    auto it = body.find("name");
    if (it == body.end() || !it->is_string()) {
        return fail(DRAGON_BAD_DESCRIPTOR, "a \"name\" string is needed");
    }
    const auto &s = it->get_ref<const std::string &>();
    if (s.empty() || s.size() > kMaxNameLength) {
        return fail(DRAGON_INVALID_ARGUMENT, "registry names have 1 to %zu bytes", kMaxNameLength);
    }
    for (char c : s) {
        if (c <= ' ' || c > '~') {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "registry names are printable ASCII without spaces");
        }
    }
    *out = s;
    return DRAGON_SUCCESS;
}

std::string hex_encode(const void *data, std::size_t len) {
    static const char digits[] = "0123456789abcdef";
    const auto *p = static_cast<const unsigned char *>(data);
    std::string s(2 * len, '0');
    for (std::size_t i = 0; i < len; ++i) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    return s;
}

dragon_status_t hex_decode(std::string_view hex, std::string *out) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        return -1;
    };
    if (hex.size() % 2 != 0) {
        return fail(DRAGON_BAD_DESCRIPTOR, "hex value of odd length");
    }
    std::string s(hex.size() / 2, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) {
        int hi = nibble(hex[2 * i]);
        int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return fail(DRAGON_BAD_DESCRIPTOR, "hex value holds a non-hex character");
        }
        s[i] = static_cast<char>(hi << 4 | lo);
    }
    *out = std::move(s);
    return DRAGON_SUCCESS;
}

} // namespace dragon::runtime
