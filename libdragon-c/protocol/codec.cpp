#include "codec.hpp"

#include "../common/error.hpp"
#include "../common/wait_mode.hpp"

#include <nlohmann/json.hpp>

#include <climits>
#include <csignal>
#include <cstring>
#include <utility>

namespace dragon::protocol {
namespace {

using detail::fail;
using json = nlohmann::json;

// ---- well-formedness, before the parser sees the bytes ----------------------------------

// Walk one CBOR item: definite lengths only, no tags, nesting at most kMaxDepth. The parser
// recurses per level, so the depth is checked here first; every item takes at least one
// byte, so the walk is linear in the input.
bool walk(const uint8_t *&p, const uint8_t *end, int depth) {
    if (p >= end) {
        return false;
    }
    uint8_t ib = *p++;
    unsigned major = ib >> 5;
    unsigned ai = ib & 31;
    uint64_t arg = ai;
    if (ai >= 24) {
        if (ai > 27) {
            return false; // reserved, or an indefinite length (we never send those)
        }
        size_t n = size_t{1} << (ai - 24);
        if (static_cast<size_t>(end - p) < n) {
            return false;
        }
        arg = 0;
        for (size_t i = 0; i < n; ++i) {
            arg = arg << 8 | *p++;
        }
    }
    switch (major) {
    case 0:
    case 1:
        return true;
    case 2:
    case 3:
        if (arg > static_cast<uint64_t>(end - p)) {
            return false;
        }
        p += arg;
        return true;
    case 4:
    case 5: {
        if (depth >= kMaxDepth) {
            return false;
        }
        uint64_t items = major == 4 ? arg : 2 * arg;
        if (arg > static_cast<uint64_t>(end - p) || items > static_cast<uint64_t>(end - p)) {
            return false;
        }
        for (uint64_t i = 0; i < items; ++i) {
            if (!walk(p, end, depth + 1)) {
                return false;
            }
        }
        return true;
    }
    case 7:
        // false, true, null; half, single and double floats
        return (ai >= 20 && ai <= 22) || (ai >= 25 && ai <= 27);
    default:
        return false; // tags
    }
}

// Parse a whole message into a map; DRAGON_MALFORMED with a reason otherwise.
dragon_status_t parse(std::string_view bytes, json *out, const char *what) {
    if (bytes.size() > kMaxMessage) {
        return fail(DRAGON_MALFORMED, "%s of %zu bytes (at most %zu)", what, bytes.size(),
                    kMaxMessage);
    }
    if (!bytes.empty() && bytes[0] == '{') {
        return fail(DRAGON_VERSION_MISMATCH,
                    "%s in JSON, protocol version 1; this side speaks version %u (CBOR): "
                    "the runtime's programs and libraries are of different releases",
                    what, kVersion);
    }
    const auto *p = reinterpret_cast<const uint8_t *>(bytes.data());
    const uint8_t *end = p + bytes.size();
    if (bytes.empty() || (p[0] >> 5) != 5) {
        return fail(DRAGON_MALFORMED, "%s is not a CBOR map", what);
    }
    if (!walk(p, end, 0) || p != end) {
        return fail(DRAGON_MALFORMED,
                    "%s is not well-formed CBOR (truncated, trailing bytes, a tag, an indefinite "
                    "length, or nested deeper than %d)",
                    what, kMaxDepth);
    }
    *out = json::from_cbor(bytes.begin(), bytes.end(), /*strict=*/true,
                           /*allow_exceptions=*/false, json::cbor_tag_handler_t::error);
    if (out->is_discarded() || !out->is_object()) {
        return fail(DRAGON_MALFORMED, "%s is not a CBOR map with text keys", what);
    }
    return DRAGON_SUCCESS;
}

// ---- fields ----------------------------------------------------------------------------

// Each reader leaves *out alone when the field is absent and not required.
class Fields {
  public:
    Fields(const json &j, const char *what) : j_(j), what_(what) {}

    dragon_status_t uint(const char *key, uint64_t max, uint64_t *out, bool required = false) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return missing(key, required);
        }
        if (!it->is_number_unsigned() || it->get<uint64_t>() > max) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an integer from 0 to %llu", what_,
                        key, static_cast<unsigned long long>(max));
        }
        *out = it->get<uint64_t>();
        return DRAGON_SUCCESS;
    }
    template <typename T>
    dragon_status_t uint_as(const char *key, uint64_t max, T *out, bool required = false) {
        uint64_t v = 0;
        dragon_status_t st = uint(key, max, &v, required);
        if (st == DRAGON_SUCCESS && j_.contains(key)) {
            *out = static_cast<T>(v);
        }
        return st;
    }
    dragon_status_t integer(const char *key, int64_t min, int64_t max, int64_t *out) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return DRAGON_SUCCESS;
        }
        bool ok =
            it->is_number_integer() &&
            (it->is_number_unsigned() ? it->get<uint64_t>() <= static_cast<uint64_t>(max)
                                      : it->get<int64_t>() >= min && it->get<int64_t>() <= max);
        if (!ok) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an integer from %lld to %lld", what_,
                        key, static_cast<long long>(min), static_cast<long long>(max));
        }
        *out = it->get<int64_t>();
        return DRAGON_SUCCESS;
    }
    dragon_status_t boolean(const char *key, bool *out) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return DRAGON_SUCCESS;
        }
        if (!it->is_boolean()) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be true or false", what_, key);
        }
        *out = it->get<bool>();
        return DRAGON_SUCCESS;
    }
    // A text string of at most max bytes, without NUL.
    dragon_status_t text(const char *key, size_t max, std::string *out, bool required = false) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return missing(key, required);
        }
        if (!it->is_string() || it->get_ref<const std::string &>().size() > max ||
            it->get_ref<const std::string &>().find('\0') != std::string::npos) {
            return fail(DRAGON_MALFORMED,
                        "%s: \"%s\" must be a text string of at most %zu bytes without NUL", what_,
                        key, max);
        }
        *out = it->get<std::string>();
        return DRAGON_SUCCESS;
    }
    dragon_status_t bytes(const char *key, size_t max, std::string *out, bool required = false) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return missing(key, required);
        }
        if (!it->is_binary() || it->get_binary().size() > max) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be a byte string of at most %zu bytes",
                        what_, key, max);
        }
        const auto &b = it->get_binary();
        out->assign(b.begin(), b.end());
        return DRAGON_SUCCESS;
    }
    dragon_status_t texts(const char *key, size_t max_items, std::vector<std::string> *out) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return DRAGON_SUCCESS;
        }
        if (!it->is_array() || it->size() > max_items) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an array of at most %zu strings",
                        what_, key, max_items);
        }
        out->clear();
        for (const auto &v : *it) {
            if (!v.is_string() ||
                v.get_ref<const std::string &>().find('\0') != std::string::npos) {
                return fail(DRAGON_MALFORMED, "%s: \"%s\" must hold strings without NUL", what_,
                            key);
            }
            out->push_back(v.get<std::string>());
        }
        return DRAGON_SUCCESS;
    }
    template <typename T>
    dragon_status_t uints(const char *key, size_t min_items, size_t max_items, uint64_t max,
                          std::vector<T> *out, bool required = false) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return missing(key, required);
        }
        if (!it->is_array() || it->size() < min_items || it->size() > max_items) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an array of %zu to %zu integers",
                        what_, key, min_items, max_items);
        }
        out->clear();
        out->reserve(it->size());
        for (const auto &v : *it) {
            if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
                return fail(DRAGON_MALFORMED, "%s: \"%s\" must hold integers from 0 to %llu", what_,
                            key, static_cast<unsigned long long>(max));
            }
            out->push_back(static_cast<T>(v.get<uint64_t>()));
        }
        return DRAGON_SUCCESS;
    }
    dragon_status_t ints(const char *key, size_t max_items, std::vector<int> *out) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            return DRAGON_SUCCESS;
        }
        if (!it->is_array() || it->size() > max_items) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an array of integers", what_, key);
        }
        out->clear();
        for (const auto &v : *it) {
            if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > INT_MAX
                                                                  : v.get<int64_t>() < INT_MIN)) {
                return fail(DRAGON_MALFORMED, "%s: \"%s\" must hold integers", what_, key);
            }
            out->push_back(static_cast<int>(v.get<int64_t>()));
        }
        return DRAGON_SUCCESS;
    }
    const json *array(const char *key, size_t max_items) {
        auto it = j_.find(key);
        return it != j_.end() && it->is_array() && it->size() <= max_items ? &*it : nullptr;
    }
    const char *what() const { return what_; }
    bool has(const char *key) const { return j_.contains(key); }

  private:
    dragon_status_t missing(const char *key, bool required) {
        return required ? fail(DRAGON_MALFORMED, "%s: \"%s\" is missing", what_, key)
                        : DRAGON_SUCCESS;
    }
    const json &j_;
    const char *what_;
};

// Chain field reads: the first failure wins.
#define DRAGON_TRY(expr)                                                                           \
    do {                                                                                           \
        if (dragon_status_t st_ = (expr); st_ != DRAGON_SUCCESS) {                                 \
            return st_;                                                                            \
        }                                                                                          \
    } while (0)

constexpr const char *kStreamNames[] = {"inherit", "relay", "pipe", "devnull", "fd"};

// An enum spelled by name on the wire (names[i] is value i; "" is not a name).
template <typename E, size_t N>
dragon_status_t named(Fields &f, const char *key, const char *const (&names)[N], E *out) {
    std::string s;
    DRAGON_TRY(f.text(key, 16, &s));
    if (s.empty() && !f.has(key)) {
        return DRAGON_SUCCESS;
    }
    for (size_t i = 0; i < N; ++i) {
        if (names[i][0] != '\0' && s == names[i]) {
            *out = static_cast<E>(i);
            return DRAGON_SUCCESS;
        }
    }
    std::string all;
    for (const char *n : names) {
        if (n[0] != '\0') {
            all += all.empty() ? "" : ", ";
            all += n;
        }
    }
    return fail(DRAGON_MALFORMED, "%s: \"%s\" must be one of %s", f.what(), key, all.c_str());
}

// "puids" (1..kMaxPuids), or one "puid".
dragon_status_t puids_of(Fields &f, std::vector<uint64_t> *out) {
    if (f.has("puid") && !f.has("puids")) {
        uint64_t one = 0;
        DRAGON_TRY(f.uint("puid", UINT64_MAX, &one, true));
        *out = {one};
        return DRAGON_SUCCESS;
    }
    return f.uints("puids", 1, kMaxPuids, UINT64_MAX, out, true);
}

dragon_status_t name_of(Fields &f, std::string *out) {
    DRAGON_TRY(f.text("name", SIZE_MAX, out, true));
    if (std::string why; !valid_name(*out, &why)) {
        return fail(DRAGON_INVALID_ARGUMENT, "%s", why.c_str());
    }
    return DRAGON_SUCCESS;
}

// ---- request bodies --------------------------------------------------------------------

dragon_status_t read(Fields &f, Hello *b) {
    return f.text("role", 64, &b->role);
}

dragon_status_t read(Fields &f, Spawn *b) {
    DRAGON_TRY(f.text("program", 4096, &b->program, true));
    if (b->program.empty()) {
        return fail(DRAGON_MALFORMED, "spawn: \"program\" must be a non-empty string");
    }
    DRAGON_TRY(f.texts("args", 65536, &b->args));
    DRAGON_TRY(f.texts("env", 65536, &b->env));
    DRAGON_TRY(f.text("cwd", 4096, &b->cwd));
    DRAGON_TRY(f.uints("cpus", 0, 1024, (1U << 20) - 1, &b->cpus));
    DRAGON_TRY(f.uints("gpus", 0, 64, (1U << 16) - 1, &b->gpus));
    static const char *const keys[3] = {"stdin", "stdout", "stderr"};
    for (int i = 0; i < 3; ++i) {
        DRAGON_TRY(named(f, keys[i], kStreamNames, &b->streams[i]));
    }
    if (b->streams[0] == Stream::kRelay) {
        return fail(DRAGON_MALFORMED, "spawn: \"stdin\" cannot be \"relay\"");
    }
    DRAGON_TRY(f.uint_as("count", kMaxSpawnCount, &b->count));
    if (b->count == 0) {
        return fail(DRAGON_MALFORMED, "spawn: \"count\" must be at least 1");
    }
    DRAGON_TRY(f.uint_as("restart", INT32_MAX, &b->restart));
    bool piped = false;
    for (Stream s : b->streams) {
        piped = piped || s == Stream::kPipe;
    }
    if (piped && (b->count > 1 || b->restart > 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "spawn: \"pipe\" streams need count 1 and no restart");
    }
    DRAGON_TRY(f.text("host_name", 255, &b->host_name));
    DRAGON_TRY(f.integer("host_id", -1, INT32_MAX, &b->host_id));
    if (f.has("wait_mode")) {
        std::string w;
        DRAGON_TRY(f.text("wait_mode", 16, &w));
        b->wait_mode = detail::wait_mode_from_name(w);
        if (b->wait_mode == DRAGON_WAIT_DEFAULT) {
            return fail(DRAGON_MALFORMED,
                        "spawn: \"wait_mode\" must be \"adaptive\", \"spin\" or \"idle\"");
        }
    }
    return DRAGON_SUCCESS;
}

dragon_status_t read(Fields &f, Join *b) {
    DRAGON_TRY(puids_of(f, &b->puids));
    return f.integer("timeout_ns", -1, INT64_MAX, &b->timeout_ns);
}

dragon_status_t read(Fields &f, Signal *b) {
    DRAGON_TRY(puids_of(f, &b->puids));
    int64_t sig = 0;
    DRAGON_TRY(f.integer("signal", INT32_MIN, INT32_MAX, &sig));
    b->signal = static_cast<int>(sig);
    return f.boolean("final", &b->final);
}

dragon_status_t read(Fields &f, Status *b) {
    return puids_of(f, &b->puids);
}

dragon_status_t read(Fields &f, Register *b) {
    DRAGON_TRY(name_of(f, &b->name));
    DRAGON_TRY(f.uint_as("kind", 255, &b->kind, true));
    DRAGON_TRY(f.bytes("value", kMaxValueLength, &b->value, true));
    return f.boolean("replace", &b->replace);
}

dragon_status_t read(Fields &f, Lookup *b) {
    DRAGON_TRY(name_of(f, &b->name));
    return f.integer("timeout_ns", -1, INT64_MAX, &b->timeout_ns);
}

dragon_status_t read(Fields &f, Unregister *b) {
    return name_of(f, &b->name);
}
dragon_status_t read(Fields &, NodeQuery *) {
    return DRAGON_SUCCESS;
}
dragon_status_t read(Fields &f, Shutdown *b) {
    return f.boolean("now", &b->now);
}
dragon_status_t read(Fields &f, Subscribe *b) {
    return f.boolean("proc_ended", &b->proc_ended);
}

void write(json &j, const Hello &b) {
    j["role"] = b.role;
}

void write(json &j, const Spawn &b) {
    j["program"] = b.program;
    if (!b.args.empty()) {
        j["args"] = b.args;
    }
    if (!b.env.empty()) {
        j["env"] = b.env;
    }
    if (!b.cwd.empty()) {
        j["cwd"] = b.cwd;
    }
    if (!b.cpus.empty()) {
        j["cpus"] = b.cpus;
    }
    if (!b.gpus.empty()) {
        j["gpus"] = b.gpus;
    }
    j["stdin"] = kStreamNames[static_cast<size_t>(b.streams[0])];
    j["stdout"] = kStreamNames[static_cast<size_t>(b.streams[1])];
    j["stderr"] = kStreamNames[static_cast<size_t>(b.streams[2])];
    j["count"] = b.count;
    if (b.restart != 0) {
        j["restart"] = b.restart;
    }
    if (!b.host_name.empty()) {
        j["host_name"] = b.host_name;
    }
    if (b.host_id >= 0) {
        j["host_id"] = b.host_id;
    }
    if (const char *w = detail::wait_mode_name(b.wait_mode)) {
        j["wait_mode"] = w;
    }
}

void write(json &j, const Join &b) {
    j["puids"] = b.puids;
    j["timeout_ns"] = b.timeout_ns;
}
void write(json &j, const Signal &b) {
    j["puids"] = b.puids;
    j["signal"] = b.signal;
    j["final"] = b.final;
}
void write(json &j, const Status &b) {
    j["puids"] = b.puids;
}
void write(json &j, const Register &b) {
    j["name"] = b.name;
    j["kind"] = b.kind;
    j["value"] = json::binary(std::vector<uint8_t>(b.value.begin(), b.value.end()));
    j["replace"] = b.replace;
}
void write(json &j, const Lookup &b) {
    j["name"] = b.name;
    j["timeout_ns"] = b.timeout_ns;
}
void write(json &j, const Unregister &b) {
    j["name"] = b.name;
}
void write(json &, const NodeQuery &) {}
void write(json &j, const Shutdown &b) {
    j["now"] = b.now;
}
void write(json &j, const Subscribe &b) {
    j["proc_ended"] = b.proc_ended;
}
void write(json &, const std::monostate &) {}

// op name -> a function decoding that body
template <typename T>
dragon_status_t read_into(Fields &f, RequestBody *out) {
    T b;
    DRAGON_TRY(read(f, &b));
    *out = std::move(b);
    return DRAGON_SUCCESS;
}

struct OpEntry {
    const char *name;
    dragon_status_t (*read)(Fields &, RequestBody *);
};
// In RequestBody's order (index 0 is monostate).
constexpr OpEntry kOps[] = {
    {"", nullptr},
    {"hello", read_into<Hello>},
    {"spawn", read_into<Spawn>},
    {"join", read_into<Join>},
    {"signal", read_into<Signal>},
    {"status", read_into<Status>},
    {"register", read_into<Register>},
    {"lookup", read_into<Lookup>},
    {"unregister", read_into<Unregister>},
    {"node", read_into<NodeQuery>},
    {"shutdown", read_into<Shutdown>},
    {"subscribe", read_into<Subscribe>},
};
static_assert(std::size(kOps) == std::variant_size_v<RequestBody>);

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

// The envelope every message carries: the version first, so that a peer of another version
// is told so rather than that its message is malformed.
dragon_status_t check_version(const json &j, const char *what) {
    auto v = j.find("v");
    if (v == j.end() || !v->is_number_unsigned()) {
        return fail(DRAGON_MALFORMED, "%s has no protocol version \"v\"", what);
    }
    if (v->get<uint64_t>() != kVersion) {
        return fail(DRAGON_VERSION_MISMATCH,
                    "%s of protocol version %llu; this side speaks version %u: the runtime's "
                    "programs and libraries are of different releases",
                    what, static_cast<unsigned long long>(v->get<uint64_t>()), kVersion);
    }
    return DRAGON_SUCCESS;
}

std::vector<uint8_t> to_bytes(const json &j) {
    return json::to_cbor(j);
}

std::string as_string(const std::vector<uint8_t> &v) {
    return {v.begin(), v.end()};
}

// ---- reply bodies ----------------------------------------------------------------------

void write(json &, const std::monostate &, int) {}
void write(json &j, const HelloReply &b, int) {
    j["protocol"] = b.protocol;
    j["node_id"] = b.node_id;
}
void write(json &j, const SpawnReply &b, int) {
    j["puids"] = b.puids;
    j["pids"] = b.pids;
}
void write(json &j, const JoinReply &b, int) {
    j["exit_codes"] = b.exit_codes;
}
void write(json &j, const StatusReply &b, int) {
    json list = json::array();
    for (const ProcessState &p : b.processes) {
        list.push_back({{"puid", p.puid},
                        {"exited", p.exited},
                        {"pid", p.pid},
                        {"exit_code", p.exit_code},
                        {"restarts", p.restarts}});
    }
    j["processes"] = std::move(list);
}
void write(json &j, const LookupReply &b, int) {
    j["kind"] = b.kind;
    j["value"] = json::binary(std::vector<uint8_t>(b.value.begin(), b.value.end()));
}
void write(json &j, const NodeReply &b, int) {
    j["node_id"] = b.node_id;
    j["host_name"] = b.host_name;
    j["cpu_count"] = b.cpu_count;
    j["numa_count"] = b.numa_count;
    json gpus = json::array();
    for (const GpuInfo &g : b.gpus) {
        gpus.push_back({{"vendor", g.vendor},
                        {"vendor_index", g.vendor_index},
                        {"numa", g.numa},
                        {"pci_bus_id", g.pci_bus_id}});
    }
    j["gpus"] = std::move(gpus);
    json pols = json::array();
    for (const CpuSet &c : b.gpu_policies) {
        pols.push_back({{"cpus", c.cpus}, {"gpus", c.gpus}});
    }
    j["gpu_policies"] = std::move(pols);
}

dragon_status_t read(Fields &f, HelloReply *b) {
    DRAGON_TRY(f.uint_as("protocol", UINT32_MAX, &b->protocol, true));
    return f.uint_as("node_id", UINT32_MAX, &b->node_id, true);
}
dragon_status_t read(Fields &f, SpawnReply *b) {
    DRAGON_TRY(f.uints("puids", 1, kMaxSpawnCount, UINT64_MAX, &b->puids, true));
    const json *pids = f.array("pids", kMaxSpawnCount);
    if (pids == nullptr || pids->size() != b->puids.size()) {
        return fail(DRAGON_MALFORMED, "spawn reply: \"pids\" must match \"puids\"");
    }
    for (const auto &p : *pids) {
        if (!p.is_number_integer()) {
            return fail(DRAGON_MALFORMED, "spawn reply: \"pids\" must hold integers");
        }
        b->pids.push_back(p.get<int64_t>());
    }
    return DRAGON_SUCCESS;
}
dragon_status_t read(Fields &f, JoinReply *b) {
    return f.ints("exit_codes", kMaxPuids, &b->exit_codes);
}
dragon_status_t read(Fields &f, StatusReply *b) {
    const json *list = f.array("processes", kMaxPuids);
    if (list == nullptr) {
        return fail(DRAGON_MALFORMED, "status reply: \"processes\" must be an array");
    }
    for (const json &p : *list) {
        if (!p.is_object()) {
            return fail(DRAGON_MALFORMED, "status reply: \"processes\" must hold maps");
        }
        Fields pf(p, "status reply");
        ProcessState s;
        int64_t pid = -1;
        int64_t code = -1;
        DRAGON_TRY(pf.uint("puid", UINT64_MAX, &s.puid, true));
        DRAGON_TRY(pf.boolean("exited", &s.exited));
        DRAGON_TRY(pf.integer("pid", -1, INT32_MAX, &pid));
        DRAGON_TRY(pf.integer("exit_code", -1, INT32_MAX, &code));
        DRAGON_TRY(pf.uint_as("restarts", UINT32_MAX, &s.restarts));
        s.pid = pid;
        s.exit_code = static_cast<int>(code);
        b->processes.push_back(s);
    }
    return DRAGON_SUCCESS;
}
dragon_status_t read(Fields &f, LookupReply *b) {
    DRAGON_TRY(f.uint_as("kind", 255, &b->kind, true));
    return f.bytes("value", kMaxValueLength, &b->value, true);
}
dragon_status_t read(Fields &f, NodeReply *b) {
    DRAGON_TRY(f.uint_as("node_id", UINT32_MAX, &b->node_id, true));
    DRAGON_TRY(f.text("host_name", 255, &b->host_name, true));
    DRAGON_TRY(f.uint_as("cpu_count", UINT32_MAX, &b->cpu_count));
    DRAGON_TRY(f.uint_as("numa_count", UINT32_MAX, &b->numa_count));
    const json *gpus = f.array("gpus", 1024);
    const json *pols = f.array("gpu_policies", 1024);
    if (gpus == nullptr || pols == nullptr) {
        return fail(DRAGON_MALFORMED, "node reply: \"gpus\" and \"gpu_policies\" are needed");
    }
    for (const json &g : *gpus) {
        if (!g.is_object()) {
            return fail(DRAGON_MALFORMED, "node reply: \"gpus\" must hold maps");
        }
        Fields gf(g, "node reply");
        GpuInfo info;
        int64_t vendor = 0;
        int64_t numa = -1;
        DRAGON_TRY(gf.integer("vendor", 0, 255, &vendor));
        DRAGON_TRY(gf.uint_as("vendor_index", UINT32_MAX, &info.vendor_index));
        DRAGON_TRY(gf.integer("numa", -1, INT32_MAX, &numa));
        DRAGON_TRY(gf.text("pci_bus_id", 63, &info.pci_bus_id));
        info.vendor = static_cast<int>(vendor);
        info.numa = static_cast<int32_t>(numa);
        b->gpus.push_back(std::move(info));
    }
    for (const json &p : *pols) {
        if (!p.is_object()) {
            return fail(DRAGON_MALFORMED, "node reply: \"gpu_policies\" must hold maps");
        }
        Fields pf(p, "node reply");
        CpuSet c;
        DRAGON_TRY(pf.uints("cpus", 0, 1 << 16, UINT32_MAX, &c.cpus));
        DRAGON_TRY(pf.uints("gpus", 0, 1024, UINT32_MAX, &c.gpus));
        b->gpu_policies.push_back(std::move(c));
    }
    return DRAGON_SUCCESS;
}

template <typename T>
dragon_status_t read_reply(Fields &f, ReplyBody *out) {
    T b;
    DRAGON_TRY(read(f, &b));
    *out = std::move(b);
    return DRAGON_SUCCESS;
}

// The reply body an op's answer carries.
struct ReplyEntry {
    const char *op;
    dragon_status_t (*read)(Fields &, ReplyBody *);
};
constexpr ReplyEntry kReplies[] = {
    {"hello", read_reply<HelloReply>},   {"spawn", read_reply<SpawnReply>},
    {"join", read_reply<JoinReply>},     {"status", read_reply<StatusReply>},
    {"lookup", read_reply<LookupReply>}, {"node", read_reply<NodeReply>},
};

} // namespace

int Spawn::fds_expected() const {
    int n = 0;
    for (Stream s : streams) {
        n += s == Stream::kFd ? 1 : 0;
    }
    return n;
}

const char *op_name(const RequestBody &body) {
    return kOps[body.index()].name;
}

bool valid_name(std::string_view name, std::string *why) {
    if (name.empty() || name.size() > kMaxNameLength) {
        *why = "registry names have 1 to " + std::to_string(kMaxNameLength) + " bytes";
        return false;
    }
    for (char c : name) {
        if (c <= ' ' || c > '~') {
            *why = "registry names are printable ASCII without spaces";
            return false;
        }
    }
    return true;
}

std::string encode(const Request &request) {
    json j = {{"v", kVersion}, {"op", op_name(request.body)}, {"id", request.id}};
    std::visit([&j](const auto &b) { write(j, b); }, request.body);
    return as_string(to_bytes(j));
}

std::string encode(const Reply &reply, std::string_view op) {
    json j = {{"v", kVersion}, {"id", reply.id}, {"status", static_cast<int>(reply.status)}};
    if (reply.status != DRAGON_SUCCESS) {
        j["error"] = reply.error;
    }
    if (reply.body.index() != 0) {
        j["op"] = std::string(op);
        std::visit([&j](const auto &b) { write(j, b, 0); }, reply.body);
    }
    // Text from elsewhere (an error message quoting a program's bytes) is sent as it is;
    // CBOR does not check UTF-8, and neither do our decoders.
    return as_string(to_bytes(j));
}

std::string encode(const Event &event) {
    const auto &e = std::get<ProcEnded>(event.body);
    json j = {
        {"v", kVersion}, {"event", "proc_ended"}, {"puid", e.puid}, {"exit_code", e.exit_code}};
    return as_string(to_bytes(j));
}

dragon_status_t decode(std::string_view bytes, Request *out) {
    *out = Request{};
    json j;
    DRAGON_TRY(parse(bytes, &j, "control message"));
    // The id first: every later refusal can answer it.
    if (auto id = j.find("id"); id != j.end() && id->is_number_unsigned()) {
        out->id = id->get<uint64_t>();
    }
    DRAGON_TRY(check_version(j, "control message"));
    auto id = j.find("id");
    if (id == j.end() || !id->is_number_unsigned()) {
        return fail(DRAGON_MALFORMED, "control message has no unsigned integer \"id\"");
    }
    auto op = j.find("op");
    if (op == j.end() || !op->is_string() || !op_name_ok(op->get_ref<const std::string &>())) {
        return fail(DRAGON_MALFORMED, "control message has no valid \"op\" (1 to %zu of [a-z_])",
                    kMaxOpName);
    }
    out->op = op->get<std::string>();
    for (const OpEntry &e : kOps) {
        if (e.read != nullptr && out->op == e.name) {
            Fields f(j, e.name);
            return e.read(f, &out->body);
        }
    }
    return DRAGON_SUCCESS; // an op this build does not know: the router says so
}

dragon_status_t decode(std::string_view bytes, Incoming *out) {
    json j;
    DRAGON_TRY(parse(bytes, &j, "message from the node daemon"));
    DRAGON_TRY(check_version(j, "message from the node daemon"));
    if (auto ev = j.find("event"); ev != j.end()) {
        if (*ev != "proc_ended") {
            return fail(DRAGON_MALFORMED, "node daemon: unknown event");
        }
        Fields f(j, "proc_ended event");
        ProcEnded e;
        int64_t code = -1;
        DRAGON_TRY(f.uint("puid", UINT64_MAX, &e.puid, true));
        DRAGON_TRY(f.integer("exit_code", -1, INT32_MAX, &code));
        e.exit_code = static_cast<int>(code);
        *out = Event{e};
        return DRAGON_SUCCESS;
    }
    Reply r;
    Fields f(j, "reply");
    uint64_t status = 0;
    DRAGON_TRY(f.uint("id", UINT64_MAX, &r.id, true));
    DRAGON_TRY(f.uint("status", DRAGON_STATUS_COUNT_ - 1, &status, true));
    r.status = static_cast<dragon_status_t>(status);
    DRAGON_TRY(f.text("error", 65536, &r.error));
    std::string op;
    DRAGON_TRY(f.text("op", kMaxOpName, &op));
    if (!op.empty()) {
        for (const ReplyEntry &e : kReplies) {
            if (op == e.op) {
                Fields bf(j, e.op);
                DRAGON_TRY(e.read(bf, &r.body));
                break;
            }
        }
    }
    *out = std::move(r);
    return DRAGON_SUCCESS;
}

} // namespace dragon::protocol
