#include "codec.hpp"

#include "../common/error.hpp"
#include "../common/wait_mode.hpp"

#include <cbor.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstring>
#include <optional>
#include <utility>

namespace dragon::protocol {
namespace {

using detail::fail;

// ---- reading: libcbor's streaming decoder, once over the bytes, into a flat tree ------

// One CBOR item (24 bytes). Strings are an offset and a length into the message; a
// container's items follow it, and `end` is the index just past its last one (a scalar's is
// its own index + 1).
enum class Type : uint8_t { kUint, kNeg, kBytes, kText, kArray, kMap, kBool, kNull };
struct Node {
    uint64_t u = 0;   // kUint's value; kNeg's n, for the value -1 - n; a container's items
    uint32_t end = 0; // see above
    uint32_t off = 0; // kBytes, kText: where the string starts in the message
    uint32_t len = 0; // ... and its bytes
    Type type = Type::kNull;
    bool flag = false; // kBool's value
};
static_assert(sizeof(Node) == 24);

// At most this many items in one message (a legitimate one has a few hundred; a spawn with
// the largest argument list and environment fits): a hostile 1 MiB of one-byte items costs
// the decoder 6 MiB, not 24.
constexpr size_t kMaxItems = size_t{1} << 18;

// What the callbacks build. Only the subset we send is accepted: definite lengths, no tags,
// no floats, no `undefined` or other simple values, text keys, nesting at most kMaxDepth,
// at most kMaxItems items.
struct Builder {
    Builder(std::vector<Node> *out, const uint8_t *message) : nodes(out), base(message) {}
    std::vector<Node> *nodes;
    const uint8_t *base;
    size_t remaining = 0; // bytes after the item being decoded
    bool bad = false;
    struct Open {
        uint32_t index;
        uint64_t left; // items still to come (a map's keys and values both count)
        bool map;
    };
    Open stack[kMaxDepth + 1] = {};
    int depth = 0;

    void add(Node n) {
        if (bad) {
            return;
        }
        bool container = n.type == Type::kArray || n.type == Type::kMap;
        if (depth > 0) {
            const Open &top = stack[depth - 1];
            if (top.map && top.left % 2 == 0 && n.type != Type::kText) {
                bad = true; // a key that is not a text string
                return;
            }
        } else if (!nodes->empty()) {
            bad = true; // a second top-level item: trailing bytes
            return;
        }
        auto index = static_cast<uint32_t>(nodes->size());
        uint64_t items = container ? (n.type == Type::kMap ? 2 * n.u : n.u) : 0;
        // Every item takes at least one byte: a count beyond the bytes left is a lie, and
        // would otherwise reserve memory for nothing.
        if ((container && (n.u > remaining || items > remaining || depth >= kMaxDepth)) ||
            nodes->size() >= kMaxItems) {
            bad = true;
            return;
        }
        nodes->push_back(n);
        if (items > 0) {
            stack[depth++] = Open{index, items, n.type == Type::kMap};
            return;
        }
        complete(index);
    }
    void complete(uint32_t index) {
        (*nodes)[index].end = static_cast<uint32_t>(nodes->size());
        while (depth > 0) {
            Open &top = stack[depth - 1];
            if (--top.left != 0) {
                return;
            }
            (*nodes)[top.index].end = static_cast<uint32_t>(nodes->size());
            --depth;
        }
    }
    static Builder &of(void *ctx) { return *static_cast<Builder *>(ctx); }
    static Node item(Type t, uint64_t u = 0, bool flag = false) {
        Node n;
        n.type = t;
        n.u = u;
        n.flag = flag;
        return n;
    }
    void add_string(Type t, cbor_data p, size_t len) {
        Node n = item(t);
        n.off = static_cast<uint32_t>(p - base); // within the message: at most kMaxMessage
        n.len = static_cast<uint32_t>(len);
        add(n);
    }
    static void uint_item(void *ctx, uint64_t v) { of(ctx).add(item(Type::kUint, v)); }
    static void neg_item(void *ctx, uint64_t v) { of(ctx).add(item(Type::kNeg, v)); }
    static void u8(void *ctx, uint8_t v) { uint_item(ctx, v); }
    static void u16(void *ctx, uint16_t v) { uint_item(ctx, v); }
    static void u32(void *ctx, uint32_t v) { uint_item(ctx, v); }
    static void n8(void *ctx, uint8_t v) { neg_item(ctx, v); }
    static void n16(void *ctx, uint16_t v) { neg_item(ctx, v); }
    static void n32(void *ctx, uint32_t v) { neg_item(ctx, v); }
    static void text(void *ctx, cbor_data p, size_t n) { of(ctx).add_string(Type::kText, p, n); }
    static void bytes(void *ctx, cbor_data p, size_t n) { of(ctx).add_string(Type::kBytes, p, n); }
    static void array(void *ctx, size_t n) { of(ctx).add(item(Type::kArray, n)); }
    static void map(void *ctx, size_t n) { of(ctx).add(item(Type::kMap, n)); }
    static void boolean(void *ctx, bool v) { of(ctx).add(item(Type::kBool, 0, v)); }
    static void null(void *ctx) { of(ctx).add(item(Type::kNull)); }
    static void refuse(void *ctx) { of(ctx).bad = true; }
    static void refuse_float(void *ctx, float) { of(ctx).bad = true; }
    static void refuse_double(void *ctx, double) { of(ctx).bad = true; }
    static void refuse_tag(void *ctx, uint64_t) { of(ctx).bad = true; }
};

const cbor_callbacks &callbacks() {
    static const cbor_callbacks cb = [] {
        cbor_callbacks c = cbor_empty_callbacks;
        c.uint8 = Builder::u8;
        c.uint16 = Builder::u16;
        c.uint32 = Builder::u32;
        c.uint64 = Builder::uint_item;
        c.negint8 = Builder::n8;
        c.negint16 = Builder::n16;
        c.negint32 = Builder::n32;
        c.negint64 = Builder::neg_item;
        c.byte_string = Builder::bytes;
        c.string = Builder::text;
        c.array_start = Builder::array;
        c.map_start = Builder::map;
        c.boolean = Builder::boolean;
        c.null = Builder::null;
        c.float2 = Builder::refuse_float; // we never send floats
        c.float4 = Builder::refuse_float;
        c.float8 = Builder::refuse_double;
        c.byte_string_start = Builder::refuse; // indefinite lengths
        c.string_start = Builder::refuse;
        c.indef_array_start = Builder::refuse;
        c.indef_map_start = Builder::refuse;
        c.indef_break = Builder::refuse;
        c.undefined = Builder::refuse;
        c.tag = Builder::refuse_tag;
        return c;
    }();
    return cb;
}

// A parsed message: its items, in order.
class Doc {
  public:
    // False when the bytes are not one well-formed item of the subset above.
    bool parse(std::string_view bytes) {
        nodes_.clear();
        nodes_.reserve(32);
        const auto *p = reinterpret_cast<const uint8_t *>(bytes.data());
        base_ = bytes.data();
        Builder b(&nodes_, p);
        size_t pos = 0;
        while (pos < bytes.size() && !b.bad) {
            b.remaining = bytes.size() - pos;
            cbor_decoder_result r =
                cbor_stream_decode(p + pos, bytes.size() - pos, &callbacks(), &b);
            if (r.status != CBOR_DECODER_FINISHED || r.read == 0) {
                return false; // truncated, or not CBOR
            }
            pos += r.read;
            b.remaining = bytes.size() - pos;
        }
        return !b.bad && b.depth == 0 && !nodes_.empty() && unique_keys();
    }
    const Node &at(uint32_t i) const { return nodes_[i]; }
    std::string_view str(uint32_t i) const { return {base_ + nodes_[i].off, nodes_[i].len}; }

  private:
    // No map has a key twice (RFC 8949, section 5.6: peers would disagree on which counts).
    bool unique_keys() const {
        std::vector<std::string_view> keys;
        for (uint32_t i = 0; i < nodes_.size(); ++i) {
            if (nodes_[i].type != Type::kMap || nodes_[i].u < 2) {
                continue;
            }
            if (nodes_[i].u <= 16) { // the usual map: compare pairwise, nothing allocated
                for (uint32_t k = i + 1; k < nodes_[i].end; k = nodes_[nodes_[k].end].end) {
                    for (uint32_t l = nodes_[nodes_[k].end].end; l < nodes_[i].end;
                         l = nodes_[nodes_[l].end].end) {
                        if (str(k) == str(l)) {
                            return false;
                        }
                    }
                }
                continue;
            }
            keys.clear();
            for (uint32_t k = i + 1; k < nodes_[i].end; k = nodes_[nodes_[k].end].end) {
                keys.push_back(str(k));
            }
            std::sort(keys.begin(), keys.end());
            if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
                return false;
            }
        }
        return true;
    }
    std::vector<Node> nodes_;
    const char *base_ = nullptr;
};

// A view of one item of a Doc.
class Val {
  public:
    Val(const Doc &doc, uint32_t index) : doc_(&doc), i_(index) {}
    const Node &node() const { return doc_->at(i_); }
    Type type() const { return node().type; }
    bool is_uint() const { return type() == Type::kUint; }
    bool is_int() const { return is_uint() || (type() == Type::kNeg && node().u <= INT64_MAX); }
    bool is_text() const { return type() == Type::kText; }
    bool is_bytes() const { return type() == Type::kBytes; }
    bool is_bool() const { return type() == Type::kBool; }
    bool is_array() const { return type() == Type::kArray; }
    bool is_map() const { return type() == Type::kMap; }
    uint64_t as_uint() const { return node().u; }
    // is_int() only; a uint beyond INT64_MAX saturates (callers check ranges first).
    int64_t as_int() const {
        const Node &n = node();
        if (n.type == Type::kUint) {
            return n.u > INT64_MAX ? INT64_MAX : static_cast<int64_t>(n.u);
        }
        return -1 - static_cast<int64_t>(n.u);
    }
    bool as_bool() const { return node().flag; }
    std::string_view str() const { return doc_->str(i_); }
    uint64_t size() const { return node().u; } // items of an array, pairs of a map

    // An array's items.
    template <typename F>
    bool each(F f) const {
        for (uint32_t k = i_ + 1; k < node().end; k = doc_->at(k).end) {
            if (!f(Val(*doc_, k))) {
                return false;
            }
        }
        return true;
    }
    // A map's value for `key` (the first, if a peer sent it twice).
    std::optional<Val> find(std::string_view key) const {
        if (!is_map()) {
            return std::nullopt;
        }
        for (uint32_t k = i_ + 1; k < node().end;) {
            uint32_t v = doc_->at(k).end;
            if (doc_->str(k) == key) {
                return Val(*doc_, v);
            }
            k = doc_->at(v).end;
        }
        return std::nullopt;
    }

  private:
    const Doc *doc_;
    uint32_t i_;
};

// Parse a whole message; DRAGON_MALFORMED with a reason otherwise.
dragon_status_t parse(std::string_view bytes, Doc *doc, const char *what,
                      size_t max = kMaxMessage) {
    if (bytes.size() > max) {
        return fail(DRAGON_MALFORMED, "%s of %zu bytes (at most %zu)", what, bytes.size(), max);
    }
    if (!bytes.empty() && bytes[0] == '{') {
        return fail(DRAGON_VERSION_MISMATCH,
                    "%s in JSON, protocol version 1; this side speaks version %u (CBOR): "
                    "the runtime's programs and libraries are of different releases",
                    what, kVersion);
    }
    if (bytes.empty() || (static_cast<uint8_t>(bytes[0]) >> 5) != 5) {
        return fail(DRAGON_MALFORMED, "%s is not a CBOR map", what);
    }
    if (!doc->parse(bytes)) {
        return fail(DRAGON_MALFORMED,
                    "%s is not well-formed CBOR of this protocol (truncated, trailing bytes, a "
                    "tag, a float, an indefinite length, a key that is not text or appears "
                    "twice, nested deeper than %d, or more than %zu items)",
                    what, kMaxDepth, kMaxItems);
    }
    return DRAGON_SUCCESS;
}

// ---- fields ----------------------------------------------------------------------------

// Each reader leaves *out alone when the field is absent and not required.
class Fields {
  public:
    Fields(Val map, const char *what) : m_(map), what_(what) {}

    dragon_status_t uint(const char *key, uint64_t max, uint64_t *out, bool required = false) {
        auto v = m_.find(key);
        if (!v) {
            return missing(key, required);
        }
        if (!v->is_uint() || v->as_uint() > max) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an integer from 0 to %llu", what_,
                        key, static_cast<unsigned long long>(max));
        }
        *out = v->as_uint();
        return DRAGON_SUCCESS;
    }
    template <typename T>
    dragon_status_t uint_as(const char *key, uint64_t max, T *out, bool required = false) {
        uint64_t v = 0;
        dragon_status_t st = uint(key, max, &v, required);
        if (st == DRAGON_SUCCESS && has(key)) {
            *out = static_cast<T>(v);
        }
        return st;
    }
    dragon_status_t integer(const char *key, int64_t min, int64_t max, int64_t *out) {
        auto v = m_.find(key);
        if (!v) {
            return DRAGON_SUCCESS;
        }
        if (!in_range(*v, min, max)) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an integer from %lld to %lld", what_,
                        key, static_cast<long long>(min), static_cast<long long>(max));
        }
        *out = v->as_int();
        return DRAGON_SUCCESS;
    }
    dragon_status_t boolean(const char *key, bool *out) {
        auto v = m_.find(key);
        if (!v) {
            return DRAGON_SUCCESS;
        }
        if (!v->is_bool()) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be true or false", what_, key);
        }
        *out = v->as_bool();
        return DRAGON_SUCCESS;
    }
    // A text string of at most max bytes, without NUL.
    dragon_status_t text(const char *key, size_t max, std::string *out, bool required = false) {
        auto v = m_.find(key);
        if (!v) {
            return missing(key, required);
        }
        if (!v->is_text() || v->str().size() > max ||
            v->str().find('\0') != std::string_view::npos) {
            return fail(DRAGON_MALFORMED,
                        "%s: \"%s\" must be a text string of at most %zu bytes without NUL", what_,
                        key, max);
        }
        out->assign(v->str());
        return DRAGON_SUCCESS;
    }
    dragon_status_t bytes(const char *key, size_t max, std::string *out, bool required = false) {
        auto v = m_.find(key);
        if (!v) {
            return missing(key, required);
        }
        if (!v->is_bytes() || v->str().size() > max) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be a byte string of at most %zu bytes",
                        what_, key, max);
        }
        out->assign(v->str());
        return DRAGON_SUCCESS;
    }
    dragon_status_t texts(const char *key, size_t max_items, std::vector<std::string> *out) {
        auto v = m_.find(key);
        if (!v) {
            return DRAGON_SUCCESS;
        }
        if (!v->is_array() || v->size() > max_items) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an array of at most %zu strings",
                        what_, key, max_items);
        }
        out->clear();
        out->reserve(v->size());
        bool ok = v->each([out](Val s) {
            if (!s.is_text() || s.str().find('\0') != std::string_view::npos) {
                return false;
            }
            out->emplace_back(s.str());
            return true;
        });
        return ok ? DRAGON_SUCCESS
                  : fail(DRAGON_MALFORMED, "%s: \"%s\" must hold strings without NUL", what_, key);
    }
    template <typename T>
    dragon_status_t uints(const char *key, size_t min_items, size_t max_items, uint64_t max,
                          std::vector<T> *out, bool required = false) {
        auto v = m_.find(key);
        if (!v) {
            return missing(key, required);
        }
        if (!v->is_array() || v->size() < min_items || v->size() > max_items) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an array of %zu to %zu integers",
                        what_, key, min_items, max_items);
        }
        out->clear();
        out->reserve(v->size());
        bool ok = v->each([out, max](Val x) {
            if (!x.is_uint() || x.as_uint() > max) {
                return false;
            }
            out->push_back(static_cast<T>(x.as_uint()));
            return true;
        });
        return ok ? DRAGON_SUCCESS
                  : fail(DRAGON_MALFORMED, "%s: \"%s\" must hold integers from 0 to %llu", what_,
                         key, static_cast<unsigned long long>(max));
    }
    template <typename T>
    dragon_status_t ints(const char *key, size_t max_items, int64_t min, int64_t max,
                         std::vector<T> *out, bool required = false) {
        auto v = m_.find(key);
        if (!v) {
            return missing(key, required);
        }
        if (!v->is_array() || v->size() > max_items) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an array of integers", what_, key);
        }
        out->clear();
        out->reserve(v->size());
        bool ok = v->each([out, min, max](Val x) {
            if (!in_range(x, min, max)) {
                return false;
            }
            out->push_back(static_cast<T>(x.as_int()));
            return true;
        });
        return ok ? DRAGON_SUCCESS
                  : fail(DRAGON_MALFORMED, "%s: \"%s\" must hold integers", what_, key);
    }
    // An array of at most max_items maps, each read by f(Fields &).
    template <typename F>
    dragon_status_t maps(const char *key, size_t max_items, const char *what, F f) {
        auto v = m_.find(key);
        if (!v || !v->is_array() || v->size() > max_items) {
            return fail(DRAGON_MALFORMED, "%s: \"%s\" must be an array of at most %zu maps", what_,
                        key, max_items);
        }
        dragon_status_t st = DRAGON_SUCCESS;
        v->each([&](Val item) {
            if (!item.is_map()) {
                st = fail(DRAGON_MALFORMED, "%s: \"%s\" must hold maps", what_, key);
                return false;
            }
            Fields inner(item, what);
            st = f(inner);
            return st == DRAGON_SUCCESS;
        });
        return st;
    }
    const char *what() const { return what_; }
    bool has(const char *key) const { return m_.find(key).has_value(); }

  private:
    static bool in_range(Val v, int64_t min, int64_t max) {
        if (v.is_uint()) {
            return max >= 0 && v.as_uint() <= static_cast<uint64_t>(max) &&
                   static_cast<int64_t>(v.as_uint()) >= min;
        }
        return v.is_int() && v.as_int() >= min && v.as_int() <= max;
    }
    dragon_status_t missing(const char *key, bool required) {
        return required ? fail(DRAGON_MALFORMED, "%s: \"%s\" is missing", what_, key)
                        : DRAGON_SUCCESS;
    }
    Val m_;
    const char *what_;
};

// ---- writing: CBOR heads from libcbor's encoders ----------------------------------------

class Writer {
  public:
    Writer &uint(uint64_t v) { return head(cbor_encode_uint(v, buf_, sizeof buf_)); }
    Writer &sint(int64_t v) {
        if (v >= 0) {
            return uint(static_cast<uint64_t>(v));
        }
        return head(cbor_encode_negint(static_cast<uint64_t>(-1 - v), buf_, sizeof buf_));
    }
    Writer &boolean(bool v) { return head(cbor_encode_bool(v, buf_, sizeof buf_)); }
    Writer &text(std::string_view s) {
        head(cbor_encode_string_start(s.size(), buf_, sizeof buf_));
        out_.append(s);
        return *this;
    }
    Writer &bytes(std::string_view s) {
        head(cbor_encode_bytestring_start(s.size(), buf_, sizeof buf_));
        out_.append(s);
        return *this;
    }
    Writer &array(size_t n) { return head(cbor_encode_array_start(n, buf_, sizeof buf_)); }
    Writer &map(size_t n) { return head(cbor_encode_map_start(n, buf_, sizeof buf_)); }
    template <typename T>
    Writer &uints(const std::vector<T> &v) {
        array(v.size());
        for (T x : v) {
            uint(x);
        }
        return *this;
    }
    template <typename T>
    Writer &sints(const std::vector<T> &v) {
        array(v.size());
        for (T x : v) {
            sint(x);
        }
        return *this;
    }
    Writer &texts(const std::vector<std::string> &v) {
        array(v.size());
        for (const std::string &s : v) {
            text(s);
        }
        return *this;
    }
    std::string &out() { return out_; }

  private:
    Writer &head(size_t n) {
        out_.append(reinterpret_cast<const char *>(buf_), n);
        return *this;
    }
    unsigned char buf_[9] = {};
    std::string out_;
};

// A map whose entries are counted as they are written; finish() puts the head in front.
class MapWriter {
  public:
    MapWriter() { body_.out().reserve(128); }
    Writer &key(const char *k) {
        ++n_;
        return body_.text(k);
    }
    std::string finish() {
        Writer w;
        w.map(n_);
        w.out().reserve(w.out().size() + body_.out().size());
        w.out() += body_.out();
        return std::move(w.out());
    }

  private:
    Writer body_;
    size_t n_ = 0;
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
    DRAGON_TRY(f.boolean("check", &b->check));
    DRAGON_TRY(f.integer("group_first", -1, INT32_MAX, &b->group_first));
    DRAGON_TRY(f.uint_as("group_size", INT32_MAX, &b->group_size));
    DRAGON_TRY(f.uint_as("group_stride", kMaxNodes, &b->group_stride));
    if (b->group_stride == 0) {
        return fail(DRAGON_MALFORMED, "spawn: \"group_stride\" must be at least 1");
    }
    if (b->group_first >= 0 && static_cast<uint64_t>(b->group_first) +
                                       static_cast<uint64_t>(b->count - 1) * b->group_stride >=
                                   b->group_size) {
        return fail(DRAGON_MALFORMED, "spawn: \"group_first\" + (\"count\" - 1) * "
                                      "\"group_stride\" must be below \"group_size\"");
    }
    DRAGON_TRY(f.text("pmi", 200, &b->pmi));
    if (!b->pmi.empty()) {
        if (b->group_first < 0) {
            return fail(DRAGON_MALFORMED, "spawn: \"pmi\" is for the members of a group");
        }
        for (char ch : b->pmi) {
            if (ch <= ' ' || ch > '~') {
                return fail(DRAGON_MALFORMED, "spawn: \"pmi\" must be printable, no spaces");
            }
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
dragon_status_t read(Fields &, NodesQuery *) {
    return DRAGON_SUCCESS;
}

void write(MapWriter &, const std::monostate &) {}
void write(MapWriter &m, const Hello &b) {
    m.key("role").text(b.role);
}

void write(MapWriter &m, const Spawn &b) {
    m.key("program").text(b.program);
    if (!b.args.empty()) {
        m.key("args").texts(b.args);
    }
    if (!b.env.empty()) {
        m.key("env").texts(b.env);
    }
    if (!b.cwd.empty()) {
        m.key("cwd").text(b.cwd);
    }
    if (!b.cpus.empty()) {
        m.key("cpus").uints(b.cpus);
    }
    if (!b.gpus.empty()) {
        m.key("gpus").uints(b.gpus);
    }
    m.key("stdin").text(kStreamNames[static_cast<size_t>(b.streams[0])]);
    m.key("stdout").text(kStreamNames[static_cast<size_t>(b.streams[1])]);
    m.key("stderr").text(kStreamNames[static_cast<size_t>(b.streams[2])]);
    m.key("count").uint(b.count);
    if (b.restart != 0) {
        m.key("restart").uint(b.restart);
    }
    if (!b.host_name.empty()) {
        m.key("host_name").text(b.host_name);
    }
    if (b.host_id >= 0) {
        m.key("host_id").sint(b.host_id);
    }
    if (const char *w = detail::wait_mode_name(b.wait_mode)) {
        m.key("wait_mode").text(w);
    }
    if (b.check) {
        m.key("check").boolean(true);
    }
    if (b.group_first >= 0) {
        m.key("group_first").sint(b.group_first);
        m.key("group_size").uint(b.group_size);
        if (b.group_stride != 1) {
            m.key("group_stride").uint(b.group_stride);
        }
    }
    if (!b.pmi.empty()) {
        m.key("pmi").text(b.pmi);
    }
}

void write(MapWriter &m, const Join &b) {
    m.key("puids").uints(b.puids);
    m.key("timeout_ns").sint(b.timeout_ns);
}
void write(MapWriter &m, const Signal &b) {
    m.key("puids").uints(b.puids);
    m.key("signal").sint(b.signal);
    m.key("final").boolean(b.final);
}
void write(MapWriter &m, const Status &b) {
    m.key("puids").uints(b.puids);
}
void write(MapWriter &m, const Register &b) {
    m.key("name").text(b.name);
    m.key("kind").uint(b.kind);
    m.key("value").bytes(b.value);
    m.key("replace").boolean(b.replace);
}
void write(MapWriter &m, const Lookup &b) {
    m.key("name").text(b.name);
    m.key("timeout_ns").sint(b.timeout_ns);
}
void write(MapWriter &m, const Unregister &b) {
    m.key("name").text(b.name);
}
void write(MapWriter &, const NodeQuery &) {}
void write(MapWriter &m, const Shutdown &b) {
    m.key("now").boolean(b.now);
}
void write(MapWriter &m, const Subscribe &b) {
    m.key("proc_ended").boolean(b.proc_ended);
}
void write(MapWriter &, const NodesQuery &) {}

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
    {"nodes", read_into<NodesQuery>},
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
dragon_status_t check_version(Val m, const char *what) {
    auto v = m.find("v");
    if (!v || !v->is_uint()) {
        return fail(DRAGON_MALFORMED, "%s has no protocol version \"v\"", what);
    }
    if (v->as_uint() != kVersion) {
        return fail(DRAGON_VERSION_MISMATCH,
                    "%s of protocol version %llu; this side speaks version %u: the runtime's "
                    "programs and libraries are of different releases",
                    what, static_cast<unsigned long long>(v->as_uint()), kVersion);
    }
    return DRAGON_SUCCESS;
}

// ---- reply bodies ----------------------------------------------------------------------

void write(MapWriter &, const std::monostate &, int) {}
void write(MapWriter &m, const HelloReply &b, int) {
    m.key("protocol").uint(b.protocol);
    m.key("node_id").uint(b.node_id);
}
void write(MapWriter &m, const SpawnReply &b, int) {
    m.key("puids").uints(b.puids);
    m.key("pids").sints(b.pids);
}
void write(MapWriter &m, const JoinReply &b, int) {
    m.key("exit_codes").sints(b.exit_codes);
}
void write(MapWriter &m, const StatusReply &b, int) {
    Writer &w = m.key("processes").array(b.processes.size());
    for (const ProcessState &p : b.processes) {
        w.map(5);
        w.text("puid").uint(p.puid);
        w.text("exited").boolean(p.exited);
        w.text("pid").sint(p.pid);
        w.text("exit_code").sint(p.exit_code);
        w.text("restarts").uint(p.restarts);
    }
}
void write(MapWriter &m, const LookupReply &b, int) {
    m.key("kind").uint(b.kind);
    m.key("value").bytes(b.value);
}
void write(MapWriter &m, const NodeReply &b, int) {
    m.key("node_id").uint(b.node_id);
    m.key("host_name").text(b.host_name);
    m.key("cpu_count").uint(b.cpu_count);
    m.key("numa_count").uint(b.numa_count);
    Writer &w = m.key("gpus").array(b.gpus.size());
    for (const GpuInfo &g : b.gpus) {
        w.map(4);
        w.text("vendor").sint(g.vendor);
        w.text("vendor_index").uint(g.vendor_index);
        w.text("numa").sint(g.numa);
        w.text("pci_bus_id").text(g.pci_bus_id);
    }
    Writer &p = m.key("gpu_policies").array(b.gpu_policies.size());
    for (const CpuSet &c : b.gpu_policies) {
        p.map(2);
        p.text("cpus").uints(c.cpus);
        p.text("gpus").uints(c.gpus);
    }
    if (!b.fabric_addr.empty()) {
        m.key("fabric_addr").bytes(b.fabric_addr);
    }
}

// A node as a map of its own (in the nodes reply and the links' node lists).
std::string node_map(const NodeReply &b) {
    MapWriter m;
    write(m, b, 0);
    return m.finish();
}
void write_nodes(Writer &w, const std::vector<NodeReply> &nodes) {
    w.array(nodes.size());
    for (const NodeReply &n : nodes) {
        w.out() += node_map(n);
    }
}
void write(MapWriter &m, const NodesReply &b, int) {
    write_nodes(m.key("nodes"), b.nodes);
}

dragon_status_t read(Fields &f, HelloReply *b) {
    DRAGON_TRY(f.uint_as("protocol", UINT32_MAX, &b->protocol, true));
    return f.uint_as("node_id", UINT32_MAX, &b->node_id, true);
}
dragon_status_t read(Fields &f, SpawnReply *b) {
    DRAGON_TRY(f.uints("puids", 0, kMaxSpawnCount, UINT64_MAX, &b->puids, true));
    DRAGON_TRY(f.ints("pids", kMaxSpawnCount, -1, INT32_MAX, &b->pids, true));
    if (b->pids.size() != b->puids.size()) {
        return fail(DRAGON_MALFORMED, "spawn reply: \"pids\" must match \"puids\"");
    }
    return DRAGON_SUCCESS;
}
dragon_status_t read(Fields &f, JoinReply *b) {
    return f.ints("exit_codes", kMaxPuids, INT_MIN, INT_MAX, &b->exit_codes);
}
dragon_status_t read(Fields &f, StatusReply *b) {
    return f.maps("processes", kMaxPuids, "status reply", [b](Fields &pf) {
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
        return DRAGON_SUCCESS;
    });
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
    DRAGON_TRY(f.bytes("fabric_addr", 1024, &b->fabric_addr));
    DRAGON_TRY(f.maps("gpus", 1024, "node reply", [b](Fields &gf) {
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
        return DRAGON_SUCCESS;
    }));
    return f.maps("gpu_policies", 1024, "node reply", [b](Fields &pf) {
        CpuSet c;
        DRAGON_TRY(pf.uints("cpus", 0, 1 << 16, UINT32_MAX, &c.cpus));
        DRAGON_TRY(pf.uints("gpus", 0, 1024, UINT32_MAX, &c.gpus));
        b->gpu_policies.push_back(std::move(c));
        return DRAGON_SUCCESS;
    });
}

dragon_status_t read_nodes(Fields &f, const char *what, std::vector<NodeReply> *out) {
    return f.maps("nodes", kMaxNodes, what, [out](Fields &nf) {
        NodeReply n;
        DRAGON_TRY(read(nf, &n));
        out->push_back(std::move(n));
        return DRAGON_SUCCESS;
    });
}
dragon_status_t read(Fields &f, NodesReply *b) {
    return read_nodes(f, "nodes reply", &b->nodes);
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
    {"nodes", read_reply<NodesReply>},
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
    MapWriter m;
    m.key("v").uint(kVersion);
    m.key("op").text(op_name(request.body));
    m.key("id").uint(request.id);
    std::visit([&m](const auto &b) { write(m, b); }, request.body);
    return m.finish();
}

namespace {

// Text for people (an error message, which may quote a program's bytes) as valid UTF-8:
// each byte that does not start a well-formed sequence becomes '?', so that strict peers
// (Python's cbor2) can read it.
std::string readable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n != 0 && i + n <= s.size() && (n != 2 || c >= 0xc2) && (n != 4 || c <= 0xf4);
        for (size_t k = 1; ok && k < n; ++k) {
            ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        }
        if (ok && n == 3) { // no overlong forms, no surrogates
            auto c1 = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        } else if (ok && n == 4) { // no overlong forms, nothing beyond U+10FFFF
            auto c1 = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out.push_back('?');
            ++i;
        }
    }
    return out;
}

} // namespace

std::string encode(const Reply &reply, std::string_view op) {
    MapWriter m;
    m.key("v").uint(kVersion);
    m.key("id").uint(reply.id);
    m.key("status").uint(static_cast<uint64_t>(reply.status));
    if (reply.status != DRAGON_SUCCESS) {
        m.key("error").text(readable(reply.error));
    }
    if (reply.body.index() != 0) {
        m.key("op").text(op);
        std::visit([&m](const auto &b) { write(m, b, 0); }, reply.body);
    }
    return m.finish();
}

std::string encode(const Event &event) {
    MapWriter m;
    m.key("v").uint(kVersion);
    if (const auto *e = std::get_if<ProcEnded>(&event.body)) {
        m.key("event").text("proc_ended");
        m.key("puid").uint(e->puid);
        m.key("exit_code").sint(e->exit_code);
    } else {
        const auto &l = std::get<NodeLost>(event.body);
        m.key("event").text("node_lost");
        m.key("node_id").uint(l.node_id);
        m.key("host_name").text(l.host_name);
        m.key("why").text(readable(l.why));
    }
    return m.finish();
}

dragon_status_t decode(std::string_view bytes, Request *out) {
    *out = Request{};
    Doc doc;
    DRAGON_TRY(parse(bytes, &doc, "control message"));
    Val top(doc, 0);
    // The id first: every later refusal can answer it.
    auto id = top.find("id");
    if (id && id->is_uint()) {
        out->id = id->as_uint();
    }
    DRAGON_TRY(check_version(top, "control message"));
    if (!id || !id->is_uint()) {
        return fail(DRAGON_MALFORMED, "control message has no unsigned integer \"id\"");
    }
    auto op = top.find("op");
    if (!op || !op->is_text() || !op_name_ok(std::string(op->str()))) {
        return fail(DRAGON_MALFORMED, "control message has no valid \"op\" (1 to %zu of [a-z_])",
                    kMaxOpName);
    }
    out->op.assign(op->str());
    for (const OpEntry &e : kOps) {
        if (e.read != nullptr && out->op == e.name) {
            Fields f(top, e.name);
            return e.read(f, &out->body);
        }
    }
    return DRAGON_SUCCESS; // an op this build does not know: the router says so
}

dragon_status_t decode(std::string_view bytes, Incoming *out) {
    Doc doc;
    DRAGON_TRY(parse(bytes, &doc, "message from the node daemon"));
    Val top(doc, 0);
    DRAGON_TRY(check_version(top, "message from the node daemon"));
    if (auto ev = top.find("event")) {
        if (ev->is_text() && ev->str() == "node_lost") {
            Fields f(top, "node_lost event");
            NodeLost l;
            DRAGON_TRY(f.uint_as("node_id", kMaxNodes - 1, &l.node_id, true));
            DRAGON_TRY(f.text("host_name", 255, &l.host_name, true));
            DRAGON_TRY(f.text("why", 4096, &l.why));
            *out = Event{std::move(l)};
            return DRAGON_SUCCESS;
        }
        if (!ev->is_text() || ev->str() != "proc_ended") {
            return fail(DRAGON_MALFORMED, "node daemon: unknown event");
        }
        Fields f(top, "proc_ended event");
        ProcEnded e;
        int64_t code = -1;
        DRAGON_TRY(f.uint("puid", UINT64_MAX, &e.puid, true));
        DRAGON_TRY(f.integer("exit_code", -1, INT32_MAX, &code));
        e.exit_code = static_cast<int>(code);
        *out = Event{e};
        return DRAGON_SUCCESS;
    }
    Reply r;
    Fields f(top, "reply");
    DRAGON_TRY(f.uint("id", UINT64_MAX, &r.id, true));
    // From here on a refusal still names the reply's id (out: a Reply with the refusal), so
    // the caller waiting for it gets the error instead of waiting out its timeout.
    dragon_status_t st = [&]() -> dragon_status_t {
        uint64_t status = 0;
        DRAGON_TRY(f.uint("status", DRAGON_STATUS_COUNT_ - 1, &status, true));
        r.status = static_cast<dragon_status_t>(status);
        DRAGON_TRY(f.text("error", 65536, &r.error));
        std::string op;
        DRAGON_TRY(f.text("op", kMaxOpName, &op));
        if (!op.empty()) {
            for (const ReplyEntry &e : kReplies) {
                if (op == e.op) {
                    Fields bf(top, e.op);
                    DRAGON_TRY(e.read(bf, &r.body));
                    break;
                }
            }
        }
        return DRAGON_SUCCESS;
    }();
    if (st != DRAGON_SUCCESS) {
        Reply refused;
        refused.id = r.id;
        refused.status = st;
        refused.error = dragon_last_error();
        *out = std::move(refused);
        return st;
    }
    *out = std::move(r);
    return DRAGON_SUCCESS;
}

// ---- links between node daemons --------------------------------------------------------

namespace {

constexpr const char *kLinkNames[] = {"boot",   "joined", "book",    "forward",
                                      "output", "lost",   "teardown"};
static_assert(std::size(kLinkNames) == std::variant_size_v<LinkMessage>);

void write(MapWriter &m, const LinkBoot &b) {
    m.key("runtime_id").text(b.runtime_id);
    m.key("node_id").uint(b.node_id);
    m.key("hosts").texts(b.hosts);
    m.key("names").texts(b.names);
    m.key("launch").texts(b.launch);
    m.key("wlm").text(b.wlm);
    m.key("node_exe").text(b.node_exe);
    m.key("fanout").uint(b.fanout);
    m.key("label").boolean(b.label);
    m.key("boot_timeout_ms").uint(b.boot_timeout_ms);
    m.key("env").texts(b.env);
}
void write(MapWriter &m, const LinkJoined &b) {
    write_nodes(m.key("nodes"), b.nodes);
}
void write(MapWriter &m, const LinkBook &b) {
    write_nodes(m.key("nodes"), b.nodes);
}
void write(MapWriter &m, const LinkForward &b) {
    m.key("to").uint(b.to);
    m.key("from").uint(b.from);
    m.key("tag").uint(b.tag);
    m.key("is_reply").boolean(b.is_reply);
    m.key("bytes").bytes(b.bytes);
}
void write(MapWriter &m, const LinkOutput &b) {
    m.key("stream").uint(b.stream);
    m.key("bytes").bytes(b.bytes);
}
void write(MapWriter &m, const LinkLost &b) {
    m.key("node_id").uint(b.node_id);
    m.key("host").text(b.host);
    m.key("why").text(b.why);
    m.key("booting").boolean(b.booting);
}
void write(MapWriter &m, const LinkTeardown &b) {
    m.key("now").boolean(b.now);
}

dragon_status_t read(Fields &f, LinkBoot *b) {
    DRAGON_TRY(f.text("runtime_id", 64, &b->runtime_id, true));
    DRAGON_TRY(f.uint_as("node_id", kMaxNodes - 1, &b->node_id, true));
    DRAGON_TRY(f.texts("hosts", kMaxNodes, &b->hosts));
    DRAGON_TRY(f.texts("names", kMaxNodes, &b->names));
    DRAGON_TRY(f.texts("launch", 64, &b->launch));
    DRAGON_TRY(f.text("wlm", 16, &b->wlm));
    DRAGON_TRY(f.text("node_exe", 4096, &b->node_exe, true));
    DRAGON_TRY(f.uint_as("fanout", 1024, &b->fanout));
    DRAGON_TRY(f.boolean("label", &b->label));
    DRAGON_TRY(f.uint_as("boot_timeout_ms", 86400000, &b->boot_timeout_ms));
    DRAGON_TRY(f.texts("env", 256, &b->env));
    if (b->hosts.empty() || b->node_id >= b->hosts.size()) {
        return fail(DRAGON_MALFORMED, "boot: \"node_id\" must name one of \"hosts\"");
    }
    if (!b->names.empty() && b->names.size() != b->hosts.size()) {
        return fail(DRAGON_MALFORMED, "boot: \"names\" must match \"hosts\"");
    }
    if (b->fanout == 0) {
        return fail(DRAGON_MALFORMED, "boot: \"fanout\" must be at least 1");
    }
    for (const std::string &e : b->env) {
        if (e.find('=') == std::string::npos || e.front() == '=') {
            return fail(DRAGON_MALFORMED, "boot: \"env\" entries must be NAME=value");
        }
    }
    return DRAGON_SUCCESS;
}
dragon_status_t read(Fields &f, LinkJoined *b) {
    return read_nodes(f, "joined", &b->nodes);
}
dragon_status_t read(Fields &f, LinkBook *b) {
    return read_nodes(f, "book", &b->nodes);
}
dragon_status_t read(Fields &f, LinkForward *b) {
    DRAGON_TRY(f.uint_as("to", kMaxNodes - 1, &b->to, true));
    DRAGON_TRY(f.uint_as("from", kMaxNodes - 1, &b->from, true));
    DRAGON_TRY(f.uint("tag", UINT64_MAX, &b->tag, true));
    DRAGON_TRY(f.boolean("is_reply", &b->is_reply));
    return f.bytes("bytes", kMaxMessage, &b->bytes, true);
}
dragon_status_t read(Fields &f, LinkOutput *b) {
    DRAGON_TRY(f.uint_as("stream", 1, &b->stream, true));
    return f.bytes("bytes", kMaxMessage, &b->bytes, true);
}
dragon_status_t read(Fields &f, LinkLost *b) {
    DRAGON_TRY(f.uint_as("node_id", kMaxNodes - 1, &b->node_id, true));
    DRAGON_TRY(f.text("host", 255, &b->host));
    DRAGON_TRY(f.text("why", 4096, &b->why));
    return f.boolean("booting", &b->booting);
}
dragon_status_t read(Fields &f, LinkTeardown *b) {
    return f.boolean("now", &b->now);
}

template <typename T>
dragon_status_t read_link(Fields &f, LinkMessage *out) {
    T b;
    DRAGON_TRY(read(f, &b));
    *out = std::move(b);
    return DRAGON_SUCCESS;
}
// In LinkMessage's order.
constexpr dragon_status_t (*kLinkReaders[])(Fields &, LinkMessage *) = {
    read_link<LinkBoot>,   read_link<LinkJoined>, read_link<LinkBook>,    read_link<LinkForward>,
    read_link<LinkOutput>, read_link<LinkLost>,   read_link<LinkTeardown>};
static_assert(std::size(kLinkReaders) == std::variant_size_v<LinkMessage>);

} // namespace

std::string encode(const LinkMessage &message) {
    MapWriter m;
    m.key("v").uint(kVersion);
    m.key("link").text(kLinkNames[message.index()]);
    std::visit([&m](const auto &b) { write(m, b); }, message);
    return m.finish();
}

dragon_status_t decode(std::string_view bytes, LinkMessage *out) {
    Doc doc;
    DRAGON_TRY(parse(bytes, &doc, "link message", kMaxLinkMessage));
    Val top(doc, 0);
    DRAGON_TRY(check_version(top, "link message"));
    Fields f(top, "link message");
    std::string kind;
    DRAGON_TRY(f.text("link", 16, &kind, true));
    for (size_t i = 0; i < std::size(kLinkNames); ++i) {
        if (kind == kLinkNames[i]) {
            Fields body(top, kLinkNames[i]);
            return kLinkReaders[i](body, out);
        }
    }
    return fail(DRAGON_MALFORMED, "link message of unknown kind \"%s\"", kind.c_str());
}

} // namespace dragon::protocol
