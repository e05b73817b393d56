#include "protocol.hpp"

#include "../common/error.hpp"

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

dragon_status_t stdio_mode(const nlohmann::json &body, const char *key, proc::Stdio *out) {
    auto it = body.find(key);
    if (it == body.end()) {
        return DRAGON_SUCCESS;
    }
    if (it->is_string()) {
        const auto &s = it->get_ref<const std::string &>();
        if (s == "inherit") {
            *out = proc::Stdio::kInherit;
            return DRAGON_SUCCESS;
        }
        if (s == "pipe") {
            *out = proc::Stdio::kPipe;
            return DRAGON_SUCCESS;
        }
        if (s == "devnull") {
            *out = proc::Stdio::kDevNull;
            return DRAGON_SUCCESS;
        }
    }
    return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"%s\" must be \"inherit\", \"pipe\" or \"devnull\"",
                key);
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

dragon_status_t parse_spawn(const nlohmann::json &body, proc::SpawnRequest *out,
                            std::vector<uint32_t> *gpus) {
    proc::SpawnRequest r;
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
        if (!cwd->is_string()) {
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
    std::vector<uint32_t> gpu_list;
    if (auto g = body.find("gpus"); g != body.end()) {
        if (!g->is_array() || g->size() > 64) {
            return fail(DRAGON_BAD_DESCRIPTOR, "spawn: \"gpus\" must be an array of GPU indices");
        }
        for (const auto &v : *g) {
            if (!non_negative_int(v) || v.get<uint64_t>() >= 1U << 16) {
                return fail(DRAGON_BAD_DESCRIPTOR,
                            "spawn: \"gpus\" must be an array of GPU indices");
            }
            gpu_list.push_back(v.get<uint32_t>());
        }
    }
    for (auto [key, mode] :
         {std::pair{"stdin", &r.in}, std::pair{"stdout", &r.out}, std::pair{"stderr", &r.err}}) {
        if (dragon_status_t st = stdio_mode(body, key, mode); st != DRAGON_SUCCESS) {
            return st;
        }
    }
    *out = std::move(r);
    if (gpus != nullptr) {
        *gpus = std::move(gpu_list);
    }
    return DRAGON_SUCCESS;
}

} // namespace dragon::runtime
