// The DDict client (dragon/ddict.h, docs/ddict.md, docs/ddict-protocol.md): a handle holds the
// dictionary's descriptor and, per manager it has talked to, a connection: the manager's
// request channel and a reply channel of its own in the manager's pool.
#include "hash.hpp"
#include "store.hpp"
#include "wire.hpp"

#include "../common/error.hpp"
#include "../pool/internal.hpp"

#include <dragon/channel.h>
#include <dragon/ddict.h>
#include <dragon/pool.h>
#include <dragon/process.h>
#include <dragon/registry.h>
#include <dragon/system.h>

#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <csignal>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::guarded;
using dragon::detail::wrap;
namespace wire = dragon::ddict::wire;
using wire::Op;

namespace {

constexpr uint32_t kDescMagic = 0x53444444; // "DDDS"
constexpr uint8_t kDescVersion = 1;
constexpr size_t kReplyCapacity = 64;
constexpr size_t kDefaultTotal = size_t{64} << 20;
constexpr dragon_timeout_t kDefaultTimeout = 30'000'000'000LL;
// How long a wait for a reply runs before it looks whether the manager is still alive.
constexpr dragon_timeout_t kLivenessSlice = 50'000'000;

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

uint64_t my_node() {
    const char *n = std::getenv("DRAGON_NODE_ID");
    return n != nullptr ? std::strtoull(n, nullptr, 10) : 0;
}

struct ManagerRef {
    uint32_t node = 0;
    uint64_t puid = 0;
    std::vector<unsigned char> channel; // its request channel's descriptor
};

struct Conn {
    dragon_channel_t *req = nullptr;
    dragon_channel_t *rep = nullptr;
    dragon_pool_t *pool = nullptr; // the manager's (borrowed from req)
    uint8_t *base = nullptr;
    uint64_t heap = 0;
    uint32_t client = 0;
    pid_t pid = 0;
    uint64_t root = 0;
    bool in_batch = false;
    uint32_t stale = 0; // calls that gave up waiting: their replies may still come
};

// A reply as received: the bytes (a slot's copy, or a pool block) and its decoded view. The
// slot's bytes live on the caller's stack, left uninitialised: a call allocates nothing.
struct Reply {
    unsigned char bytes[wire::kSlotBytes];
    void *block = nullptr;
    dragon_pool_t *pool = nullptr;
    wire::Response r;
    Reply() = default;
    Reply(const Reply &) = delete;
    Reply &operator=(const Reply &) = delete;
    ~Reply() {
        if (block != nullptr) {
            dragon_pool_free(pool, block);
        }
    }
};

} // namespace

struct dragon_ddict {
    std::string id;
    uint64_t window = 0;
    std::vector<ManagerRef> managers;
    std::vector<Conn> conns;
    bool creator = false;
    std::string name; // registered under (creator only)
    dragon_timeout_t timeout = kDefaultTimeout;
    uint64_t checkpoint = 0;
    uint64_t next_request = 1;
    uint64_t node = my_node();
    int64_t selected = -1; // select_manager: every call goes there
    bool batch = false;
    bool retrying_ = false;
    std::vector<unsigned char> scratch;

    std::string mname(uint32_t m) const {
        return "m" + std::to_string(m) + (id.empty() ? "" : " of ddict " + id);
    }
    uint32_t manager_for(const void *key, size_t len) const {
        if (selected >= 0) {
            return static_cast<uint32_t>(selected);
        }
        return dragon::ddict::manager_of(key, len, static_cast<uint32_t>(managers.size()));
    }
    int64_t deadline() const { return timeout < 0 ? -1 : now_ns() + timeout; }

    dragon_status_t connect(uint32_t m);
    dragon_status_t send(uint32_t m, const wire::Request &rq, int64_t deadline);
    dragon_status_t await(uint32_t m, uint64_t request_id, int64_t deadline, Reply *out);
    dragon_status_t call(uint32_t m, wire::Request &rq, Reply *out);
    dragon_status_t manager_dead(uint32_t m);
    dragon_status_t copy_value(uint32_t m, const wire::Response &r, void *dst);
    void drop_lease(uint32_t m, const wire::Response &r);
    dragon_status_t status_of(uint32_t m, const wire::Response &r, const char *what);
    void disconnect(uint32_t m);
    // Take late replies out of manager m's reply channel, giving back their leases; a late
    // answer to Hello gives the client id (returned), 0 if none came.
    uint32_t drain(uint32_t m);
};

struct dragon_ddict_keys {
    dragon_ddict_t *dict = nullptr;
    uint32_t manager = 0;
    uint64_t cursor = 0;
    bool manager_done = false;
    std::vector<std::string> batch;
    size_t at = 0;
};

namespace {

dragon_timeout_t remaining(int64_t deadline) {
    if (deadline < 0) {
        return DRAGON_TIMEOUT_FOREVER;
    }
    return std::max<int64_t>(deadline - now_ns(), 0);
}

std::string random_id() {
    unsigned char b[8];
    static const bool ready = sodium_init() >= 0;
    (void)ready;
    randombytes_buf(b, sizeof b);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, b, sizeof b);
    return hex;
}

dragon_status_t check_key(const void *key, size_t len) {
    if (key == nullptr || len == 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict: an empty key");
    }
    if (len > wire::kMaxKey) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict: a key of %zu bytes (at most %zu)", len,
                    wire::kMaxKey);
    }
    return DRAGON_SUCCESS;
}

} // namespace

dragon_status_t dragon_ddict::manager_dead(uint32_t m) {
    const Conn &c = conns[m];
    bool dead = false;
    if (c.pid > 0) {
        dead = kill(c.pid, 0) != 0 && errno == ESRCH;
    } else if (managers[m].puid != 0) {
        dragon_process_status_t s{};
        s.struct_size = sizeof s;
        dead = dragon_process_query(managers[m].puid, &s) == DRAGON_SUCCESS &&
               s.state == DRAGON_PROCESS_EXITED;
    }
    if (!dead) {
        return DRAGON_SUCCESS;
    }
    return fail(DRAGON_OWNER_DIED, "ddict manager '%s' (pid %d) has died", mname(m).c_str(),
                static_cast<int>(c.pid));
}

dragon_status_t dragon_ddict::connect(uint32_t m) {
    Conn &c = conns[m];
    if (c.client != 0) {
        return DRAGON_SUCCESS;
    }
    const ManagerRef &ref = managers[m];
    dragon_status_t st = DRAGON_SUCCESS;
    if (c.req == nullptr) {
        st = dragon_channel_attach(ref.channel.data(), ref.channel.size(), nullptr, &c.req);
        if (st == DRAGON_NOT_FOUND || st == DRAGON_CLOSED) {
            return fail(DRAGON_CLOSED,
                        "ddict manager '%s' is gone (its pool is): the dictionary was destroyed",
                        mname(m).c_str());
        }
        if (st != DRAGON_SUCCESS) {
            return wrap(st, "ddict manager '%s': its request channel", mname(m).c_str());
        }
        dragon_channel_pool(c.req, &c.pool);
        c.base = dragon::pool::heap_base_of(c.pool);
        c.heap = dragon::pool::heap_size_of(c.pool);
    }
    if (c.rep == nullptr) {
        st = dragon_channel_create(c.pool, kReplyCapacity, wire::kSlotBytes, nullptr, &c.rep);
        if (st != DRAGON_SUCCESS) {
            return wrap(st, "ddict manager '%s': a reply channel in its pool", mname(m).c_str());
        }
    }
    unsigned char hello[16 + DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t dlen = 0;
    dragon_channel_serialize(c.rep, hello + 16, DRAGON_OBJECT_DESCRIPTOR_MAX, &dlen);
    wire::put_u64(hello, node);
    wire::put_u64(hello + 8, static_cast<uint64_t>(getpid()));
    wire::Request rq;
    rq.op = Op::Hello;
    rq.value = hello;
    rq.value_len = 16 + dlen;
    rq.request_id = next_request++;
    // The handshake waits at least a second whatever the handle's timeout: a Hello given up
    // on would leave the manager a client this handle never knew (a dead manager is still
    // seen within 50 ms).
    int64_t dl = timeout < 0 ? -1 : now_ns() + std::max<int64_t>(timeout, 1'000'000'000);
    if (st = send(m, rq, dl); st != DRAGON_SUCCESS) {
        return st;
    }
    Reply rep;
    if (st = await(m, rq.request_id, dl, &rep); st != DRAGON_SUCCESS) {
        return st;
    }
    if (rep.r.status != DRAGON_SUCCESS || rep.r.value_len < 16 || rep.r.value == nullptr) {
        return fail(DRAGON_MALFORMED, "ddict manager '%s': a bad answer to hello",
                    mname(m).c_str());
    }
    c.client = static_cast<uint32_t>(rep.r.arg);
    c.root = rep.r.arg2;
    c.pid = static_cast<pid_t>(wire::get_u64(rep.r.value));
    return DRAGON_SUCCESS;
}

uint32_t dragon_ddict::drain(uint32_t m) {
    Conn &c = conns[m];
    uint32_t hello_id = 0;
    Reply rep;
    for (;;) {
        size_t len = 0;
        const unsigned char *msg = rep.bytes;
        dragon_status_t st =
            dragon_channel_recv(c.rep, rep.bytes, sizeof rep.bytes, &len, DRAGON_TIMEOUT_TRY);
        if (st == DRAGON_BUFFER_TOO_SMALL) {
            void *block = nullptr;
            st = dragon_channel_recv_mem(c.rep, &block, &len, DRAGON_TIMEOUT_TRY);
            if (st == DRAGON_SUCCESS) {
                if (rep.block != nullptr) {
                    dragon_pool_free(c.pool, rep.block);
                }
                rep.block = block;
                rep.pool = c.pool;
                msg = static_cast<const unsigned char *>(block);
            }
        }
        if (st != DRAGON_SUCCESS) {
            break;
        }
        if (wire::decode_response(msg, len, &rep.r) != DRAGON_SUCCESS) {
            continue;
        }
        drop_lease(m, rep.r);
        if (rep.r.op == static_cast<uint8_t>(Op::Hello) && rep.r.status == DRAGON_SUCCESS) {
            hello_id = static_cast<uint32_t>(rep.r.arg);
        }
    }
    c.stale = 0;
    return hello_id;
}

void dragon_ddict::disconnect(uint32_t m) {
    Conn &c = conns[m];
    if (c.rep != nullptr) {
        // Late replies hold leases; a late answer to Hello means the manager knows us.
        uint32_t late = drain(m);
        if (c.client == 0) {
            c.client = late;
        }
    }
    if (c.client != 0) {
        wire::Request rq;
        rq.op = Op::Bye;
        rq.client = c.client;
        unsigned char b[wire::kHeaderBytes];
        wire::encode_request(rq, b);
        dragon_channel_send(c.req, b, sizeof b, DRAGON_TIMEOUT_TRY); // never waits
    }
    if (c.rep != nullptr) {
        dragon_channel_destroy(c.rep);
    }
    if (c.req != nullptr) {
        dragon_channel_detach(c.req);
    }
    c = Conn{};
}

dragon_status_t dragon_ddict::send(uint32_t m, const wire::Request &rq0, int64_t dl) {
    Conn &c = conns[m];
    wire::Request rq = rq0;
    if (rq.op != Op::Hello) {
        rq.client = c.client;
    }
    size_t n = wire::request_bytes(rq);
    dragon_status_t st = DRAGON_SUCCESS;
    if (n <= wire::kSlotBytes) {
        unsigned char b[wire::kSlotBytes];
        wire::encode_request(rq, b);
        // Try first: a request channel with room (the usual case) needs no clock reading.
        st = dragon_channel_send(c.req, b, n, DRAGON_TIMEOUT_TRY);
        if (st == DRAGON_TIMEOUT) {
            st = dragon_channel_send(c.req, b, n, remaining(dl));
        }
    } else {
        // Straight into the manager's pool; the block travels as is, and becomes the entry.
        void *block = nullptr;
        // No waiting for room: a full manager refuses now (the store's own message, if the
        // request fits, says the same).
        st = dragon_pool_alloc(c.pool, n, &block);
        if (st != DRAGON_SUCCESS && rq.op == Op::Put && !retrying_) {
            // Memory given back a moment ago (a lease on a popped or replaced value) is freed
            // on the manager's next turn: give it one, then try once more.
            retrying_ = true;
            wire::Request nb;
            nb.op = Op::Newest;
            Reply r;
            dragon_status_t rt = call(m, nb, &r);
            retrying_ = false;
            if (rt == DRAGON_SUCCESS) {
                st = dragon_pool_alloc(c.pool, n, &block);
            }
        }
        if (st != DRAGON_SUCCESS) {
            return fail(DRAGON_NO_SPACE,
                        "ddict manager '%s' is full: no room for a request of %zu bytes in its "
                        "pool; nothing stored was changed",
                        mname(m).c_str(), n);
        }
        wire::encode_request(rq, static_cast<unsigned char *>(block));
        st = dragon_channel_send_mem(c.req, block, n, remaining(dl));
        if (st != DRAGON_SUCCESS) {
            dragon_pool_free(c.pool, block);
        }
    }
    if (st == DRAGON_TIMEOUT) {
        if (dragon_status_t d = manager_dead(m); d != DRAGON_SUCCESS) {
            return d;
        }
        return fail(DRAGON_TIMEOUT, "ddict manager '%s': its request channel stayed full",
                    mname(m).c_str());
    }
    if (st == DRAGON_CLOSED) {
        return fail(DRAGON_CLOSED, "ddict manager '%s' is gone: the dictionary was destroyed",
                    mname(m).c_str());
    }
    if (st != DRAGON_SUCCESS) {
        return wrap(st, "ddict manager '%s': sending %s", mname(m).c_str(),
                    wire::op_name(static_cast<uint8_t>(rq.op)));
    }
    return DRAGON_SUCCESS;
}

void dragon_ddict::drop_lease(uint32_t m, const wire::Response &r) {
    const Conn &c = conns[m];
    if ((r.flags & wire::kLeased) == 0 || r.arg2 > c.heap ||
        c.heap - r.arg2 < sizeof(dragon::ddict::Entry)) {
        return;
    }
    auto *e = reinterpret_cast<dragon::ddict::Entry *>(c.base + r.arg2);
    __atomic_fetch_sub(&e->readers, 1, __ATOMIC_ACQ_REL);
}

dragon_status_t dragon_ddict::await(uint32_t m, uint64_t request_id, int64_t dl, Reply *out) {
    Conn &c = conns[m];
    for (bool first = true;; first = false) {
        // The first wait needs no clock reading: the deadline is at least a slice away unless
        // the handle's timeout is shorter than a slice.
        dragon_timeout_t left =
            first && (timeout < 0 || timeout >= kLivenessSlice) ? kLivenessSlice : remaining(dl);
        dragon_timeout_t slice = left < 0 ? kLivenessSlice : std::min(left, kLivenessSlice);
        size_t len = 0;
        dragon_status_t st = dragon_channel_recv(c.rep, out->bytes, sizeof out->bytes, &len, slice);
        const unsigned char *msg = out->bytes;
        if (st == DRAGON_BUFFER_TOO_SMALL) {
            void *block = nullptr;
            st = dragon_channel_recv_mem(c.rep, &block, &len, DRAGON_TIMEOUT_TRY);
            if (st == DRAGON_SUCCESS) {
                out->block = block;
                out->pool = c.pool;
                msg = static_cast<const unsigned char *>(block);
            }
        }
        if (st == DRAGON_TIMEOUT) {
            if (dragon_status_t d = manager_dead(m); d != DRAGON_SUCCESS) {
                return d;
            }
            if (remaining(dl) == 0) {
                ++c.stale;
                return fail(DRAGON_TIMEOUT, "ddict manager '%s' did not answer in time",
                            mname(m).c_str());
            }
            continue;
        }
        if (st != DRAGON_SUCCESS) {
            return wrap(st, "ddict manager '%s': its reply", mname(m).c_str());
        }
        if (dragon_status_t d = wire::decode_response(msg, len, &out->r); d != DRAGON_SUCCESS) {
            return wrap(d, "ddict manager '%s'", mname(m).c_str());
        }
        if (out->r.request_id == request_id) {
            return DRAGON_SUCCESS;
        }
        // A late answer to a call that timed out: give back what it holds, and go on.
        drop_lease(m, out->r);
        if (out->block != nullptr) {
            dragon_pool_free(c.pool, out->block);
            out->block = nullptr;
        }
    }
}

dragon_status_t dragon_ddict::call(uint32_t m, wire::Request &rq, Reply *out) {
    if (dragon_status_t st = connect(m); st != DRAGON_SUCCESS) {
        return st;
    }
    if (conns[m].stale != 0) {
        drain(m); // so late replies never fill the channel (the manager drops what won't fit)
    }
    rq.request_id = next_request++;
    if (rq.op != Op::Hello) {
        rq.checkpoint = rq.op == Op::Put || rq.op == Op::Get || rq.op == Op::Pop ||
                                rq.op == Op::Contains || rq.op == Op::Length || rq.op == Op::Keys ||
                                rq.op == Op::FetchAdd || rq.op == Op::WaitKey
                            ? checkpoint
                            : 0;
    }
    int64_t dl = deadline();
    if (rq.op == Op::WaitKey && rq.arg < (1ULL << 62) && dl >= 0) {
        dl = std::max<int64_t>(dl, now_ns() + static_cast<int64_t>(rq.arg) + kLivenessSlice);
    } else if (rq.op == Op::WaitKey) {
        dl = -1;
    }
    if (dragon_status_t st = send(m, rq, dl); st != DRAGON_SUCCESS) {
        return st;
    }
    return await(m, rq.request_id, dl, out);
}

dragon_status_t dragon_ddict::status_of(uint32_t m, const wire::Response &r, const char *what) {
    auto st = static_cast<dragon_status_t>(r.status);
    if (st == DRAGON_SUCCESS) {
        return st;
    }
    if (r.message_len != 0) {
        return fail(st, "%.*s", static_cast<int>(r.message_len), r.message);
    }
    if (st == DRAGON_NOT_FOUND) {
        return fail(st, "ddict: %s: no such key (manager '%s')", what, mname(m).c_str());
    }
    return fail(st, "ddict manager '%s': %s failed (%s)", mname(m).c_str(), what,
                dragon_strerror(st));
}

// Copy a reply's value (inline, or leased from the manager's pool) to dst.
dragon_status_t dragon_ddict::copy_value(uint32_t m, const wire::Response &r, void *dst) {
    if ((r.flags & wire::kLeased) == 0) {
        if (r.value_len != 0) {
            std::memcpy(dst, r.value, r.value_len);
        }
        return DRAGON_SUCCESS;
    }
    const Conn &c = conns[m];
    if (r.arg2 > c.heap || c.heap - r.arg2 < sizeof(dragon::ddict::Entry)) {
        return fail(DRAGON_MALFORMED, "ddict manager '%s': a lease outside its pool",
                    mname(m).c_str());
    }
    auto *e = reinterpret_cast<dragon::ddict::Entry *>(c.base + r.arg2);
    uint64_t room = c.heap - r.arg2 - sizeof *e;
    if (e->key_len > room || e->value_len != r.value_len || r.value_len > room - e->key_len) {
        drop_lease(m, r);
        return fail(DRAGON_MALFORMED, "ddict manager '%s': a lease that does not add up",
                    mname(m).c_str());
    }
    std::memcpy(dst, e->value(), r.value_len);
    drop_lease(m, r);
    return DRAGON_SUCCESS;
}

// ---- the C ABI ----

DRAGON_API dragon_status_t dragon_ddict_attr_init(dragon_ddict_attr_t *attr) {
    if (attr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_attr_init: attr is NULL");
    }
    std::memset(attr, 0, sizeof *attr);
    attr->struct_size = sizeof *attr;
    attr->managers_per_node = 1;
    attr->total_mem = kDefaultTotal;
    attr->timeout = kDefaultTimeout;
    attr->policy_size = sizeof(dragon_policy_t);
    return DRAGON_SUCCESS;
}

namespace {

std::string manager_exe(const dragon_ddict_attr_t &a) {
    if (a.manager_exe != nullptr && a.manager_exe[0] != '\0') {
        return a.manager_exe;
    }
    const char *env = std::getenv("DRAGON_DDICT_MANAGER_EXE");
    if (env != nullptr && env[0] != '\0') {
        return env;
    }
    return DRAGON_BINDIR "/dragon-ddict-manager";
}

std::vector<unsigned char> serialize(const dragon_ddict_t &d) {
    std::vector<unsigned char> out(24 + d.id.size());
    wire::put_u32(out.data(), kDescMagic);
    out[4] = kDescVersion;
    wire::put_u32(out.data() + 8, static_cast<uint32_t>(d.managers.size()));
    wire::put_u64(out.data() + 12, d.window);
    wire::put_u32(out.data() + 20, static_cast<uint32_t>(d.id.size()));
    std::memcpy(out.data() + 24, d.id.data(), d.id.size());
    for (const ManagerRef &m : d.managers) {
        size_t at = out.size();
        out.resize(at + 14 + m.channel.size());
        wire::put_u32(out.data() + at, m.node);
        wire::put_u64(out.data() + at + 4, m.puid);
        wire::put_u16(out.data() + at + 12, static_cast<uint16_t>(m.channel.size()));
        std::memcpy(out.data() + at + 14, m.channel.data(), m.channel.size());
    }
    return out;
}

dragon_status_t deserialize(const unsigned char *p, size_t len, dragon_ddict_t *d) {
    if (len < 24 || wire::get_u32(p) != kDescMagic) {
        return fail(DRAGON_BAD_DESCRIPTOR, "ddict descriptor: not a dictionary's descriptor");
    }
    if (p[4] != kDescVersion) {
        return fail(DRAGON_BAD_DESCRIPTOR, "ddict descriptor: version %u (this build reads %u)",
                    p[4], kDescVersion);
    }
    uint32_t n = wire::get_u32(p + 8);
    d->window = wire::get_u64(p + 12);
    uint32_t idlen = wire::get_u32(p + 20);
    if (n == 0 || n > (1u << 20) || idlen > 64 || idlen > len - 24) {
        return fail(DRAGON_BAD_DESCRIPTOR, "ddict descriptor: %u managers, id of %u bytes", n,
                    idlen);
    }
    d->id.assign(reinterpret_cast<const char *>(p + 24), idlen);
    size_t at = 24 + idlen;
    for (uint32_t i = 0; i < n; ++i) {
        if (len - at < 14) {
            return fail(DRAGON_BAD_DESCRIPTOR, "ddict descriptor: truncated at manager %u", i);
        }
        ManagerRef m;
        m.node = wire::get_u32(p + at);
        m.puid = wire::get_u64(p + at + 4);
        size_t cl = wire::get_u16(p + at + 12);
        at += 14;
        if (cl == 0 || cl > len - at) {
            return fail(DRAGON_BAD_DESCRIPTOR, "ddict descriptor: truncated at manager %u", i);
        }
        m.channel.assign(p + at, p + at + cl);
        at += cl;
        d->managers.push_back(std::move(m));
    }
    if (at != len) {
        return fail(DRAGON_BAD_DESCRIPTOR, "ddict descriptor: %zu bytes too many", len - at);
    }
    d->conns.resize(n);
    return DRAGON_SUCCESS;
}

// End managers the creator started (a create that failed half-way, or destroy).
void collect(const std::vector<ManagerRef> &ms, dragon_timeout_t grace) {
    int64_t dl = now_ns() + grace;
    for (const ManagerRef &m : ms) {
        if (m.puid == 0) {
            continue;
        }
        int code = 0;
        if (dragon_process_join(m.puid, std::max<int64_t>(dl - now_ns(), 0), &code) !=
            DRAGON_SUCCESS) {
            dragon_process_stop(m.puid, SIGKILL);
            dragon_process_join(m.puid, 1'000'000'000, &code);
        }
    }
}

} // namespace

DRAGON_API dragon_status_t dragon_ddict_create(const dragon_ddict_attr_t *attr,
                                               dragon_ddict_t **dict) {
    return guarded("dragon_ddict_create", [&]() -> dragon_status_t {
        if (dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_create: dict is NULL");
        }
        dragon_ddict_attr_t a;
        dragon_ddict_attr_init(&a);
        if (attr != nullptr) {
            std::memcpy(&a, attr, std::min(attr->struct_size, sizeof a));
        }
        // Where the managers go: one per policy, or managers_per_node on each node.
        std::vector<dragon_policy_t> places;
        if (a.n_policies > 0) {
            if (a.policies == nullptr || a.policy_size < sizeof(size_t)) {
                return fail(DRAGON_INVALID_ARGUMENT,
                            "dragon_ddict_create: policies need an array and policy_size");
            }
            for (size_t i = 0; i < a.n_policies; ++i) {
                dragon_policy_t p;
                dragon_policy_init(&p);
                std::memcpy(&p, reinterpret_cast<const char *>(a.policies) + i * a.policy_size,
                            std::min(a.policy_size, sizeof p));
                p.struct_size = sizeof p;
                places.push_back(p);
            }
        } else {
            uint32_t nodes = 0;
            if (dragon_status_t st = dragon_system_node_count(&nodes); st != DRAGON_SUCCESS) {
                return wrap(st, "dragon_ddict_create");
            }
            if (a.n_nodes != 0) {
                nodes = std::min(nodes, a.n_nodes);
            }
            uint32_t per = a.managers_per_node == 0 ? 1 : a.managers_per_node;
            for (uint32_t n = 0; n < nodes; ++n) {
                dragon_system_node_t sn{};
                sn.struct_size = sizeof sn;
                dragon_system_node(n, &sn);
                for (uint32_t k = 0; k < per; ++k) {
                    dragon_policy_t p;
                    dragon_policy_init(&p);
                    p.placement = DRAGON_PLACEMENT_HOST_ID;
                    p.host_id = sn.node_id;
                    places.push_back(p);
                }
            }
        }
        if (places.empty() || places.size() > 65536) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_create: %zu managers (1 to 65536)",
                        places.size());
        }
        size_t total = a.total_mem != 0 ? a.total_mem : kDefaultTotal;
        size_t per_bytes = std::max<size_t>(total / places.size(), size_t{1} << 16);
        auto d = std::make_unique<dragon_ddict>();
        d->id = random_id();
        d->window = a.checkpoint_window;
        d->creator = true;
        d->timeout = a.timeout == 0 ? kDefaultTimeout : a.timeout;
        std::string exe = manager_exe(a);
        if (access(exe.c_str(), X_OK) != 0) {
            return fail(DRAGON_NOT_FOUND,
                        "dragon_ddict_create: the manager program %s is not there (set "
                        "DRAGON_DDICT_MANAGER_EXE or attr.manager_exe)",
                        exe.c_str());
        }
        std::string n_s = std::to_string(places.size());
        std::string bytes_s = std::to_string(per_bytes);
        std::string window_s = std::to_string(a.checkpoint_window);
        std::vector<std::string> names;
        for (size_t i = 0; i < places.size(); ++i) {
            std::string idx = std::to_string(i);
            std::string reg = "ddict." + d->id + ".m" + idx;
            names.push_back(reg);
            const char *argv[] = {exe.c_str(),     "--dict",     d->id.c_str(),    "--index",
                                  idx.c_str(),     "--managers", n_s.c_str(),      "--bytes",
                                  bytes_s.c_str(), "--window",   window_s.c_str(), "--register",
                                  reg.c_str(),     nullptr};
            dragon_process_attr_t pa;
            dragon_process_attr_init(&pa);
            pa.policy = &places[i];
            ManagerRef m;
            dragon_status_t st = dragon_process_create(argv, &pa, &m.puid);
            if (st != DRAGON_SUCCESS) {
                st = wrap(st, "dragon_ddict_create: starting manager %zu", i);
                collect(d->managers, 0);
                return st;
            }
            d->managers.push_back(std::move(m));
        }
        // Each manager registers its request channel once it is ready.
        int64_t dl = d->deadline();
        for (size_t i = 0; i < d->managers.size(); ++i) {
            ManagerRef &m = d->managers[i];
            unsigned char buf[DRAGON_OBJECT_DESCRIPTOR_MAX];
            size_t len = 0;
            dragon_status_t st = DRAGON_TIMEOUT;
            while (st == DRAGON_TIMEOUT) {
                dragon_timeout_t slice = std::min<dragon_timeout_t>(
                    remaining(dl) < 0 ? kLivenessSlice : remaining(dl), kLivenessSlice);
                st =
                    dragon_registry_lookup(names[i].c_str(), slice, nullptr, buf, sizeof buf, &len);
                if (st == DRAGON_TIMEOUT || st == DRAGON_NOT_FOUND) {
                    dragon_process_status_t ps{};
                    ps.struct_size = sizeof ps;
                    if (dragon_process_query(m.puid, &ps) == DRAGON_SUCCESS &&
                        ps.state == DRAGON_PROCESS_EXITED) {
                        st = fail(DRAGON_OWNER_DIED,
                                  "dragon_ddict_create: manager %zu ended (exit code %d) "
                                  "before it was ready: see its stderr",
                                  i, ps.exit_code);
                        break;
                    }
                    st = remaining(dl) == 0 ? fail(DRAGON_TIMEOUT,
                                                   "dragon_ddict_create: manager %zu was not "
                                                   "ready in time",
                                                   i)
                                            : DRAGON_TIMEOUT;
                    if (remaining(dl) == 0) {
                        break;
                    }
                }
            }
            if (st != DRAGON_SUCCESS) {
                std::string why = dragon_last_error();
                for (const std::string &n : names) {
                    dragon_registry_unregister(n.c_str());
                }
                for (const ManagerRef &r : d->managers) {
                    dragon_process_stop(r.puid, SIGKILL);
                }
                collect(d->managers, 0);
                return fail(st, "%s", why.c_str());
            }
            dragon_registry_unregister(names[i].c_str());
            m.channel.assign(buf, buf + len);
            dragon_process_status_t ps{};
            ps.struct_size = sizeof ps;
            if (dragon_process_query(m.puid, &ps) == DRAGON_SUCCESS) {
                m.node = ps.node_id;
            }
        }
        d->conns.resize(d->managers.size());
        if (a.name != nullptr) {
            std::vector<unsigned char> desc = serialize(*d);
            if (dragon_status_t st = dragon_registry_register(a.name, DRAGON_REGISTRY_DICT,
                                                              desc.data(), desc.size(), 0);
                st != DRAGON_SUCCESS) {
                std::string why = dragon_last_error();
                dragon_ddict_destroy(d.release());
                return fail(st, "dragon_ddict_create: registering '%s': %s", a.name, why.c_str());
            }
            d->name = a.name;
        }
        *dict = d.release();
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_serialize(const dragon_ddict_t *dict, void *buf, size_t cap,
                                                  size_t *len) {
    return guarded("dragon_ddict_serialize", [&]() -> dragon_status_t {
        if (dict == nullptr || len == nullptr || (buf == nullptr && cap != 0)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_serialize: NULL argument");
        }
        std::vector<unsigned char> d = serialize(*dict);
        *len = d.size();
        if (d.size() > cap) {
            return fail(DRAGON_BUFFER_TOO_SMALL,
                        "dragon_ddict_serialize: the descriptor is %zu bytes, the buffer %zu",
                        d.size(), cap);
        }
        std::memcpy(buf, d.data(), d.size());
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_attach(const void *bytes, size_t len,
                                               dragon_ddict_t **dict) {
    return guarded("dragon_ddict_attach", [&]() -> dragon_status_t {
        if (bytes == nullptr || dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_attach: NULL argument");
        }
        auto d = std::make_unique<dragon_ddict>();
        if (dragon_status_t st =
                deserialize(static_cast<const unsigned char *>(bytes), len, d.get());
            st != DRAGON_SUCCESS) {
            return st;
        }
        *dict = d.release();
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_attach_name(const char *name, dragon_timeout_t timeout,
                                                    dragon_ddict_t **dict) {
    return guarded("dragon_ddict_attach_name", [&]() -> dragon_status_t {
        if (name == nullptr || dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_attach_name: NULL argument");
        }
        std::vector<unsigned char> buf(DRAGON_REGISTRY_VALUE_MAX);
        size_t len = 0;
        dragon_registry_kind_t kind = DRAGON_REGISTRY_BYTES;
        if (dragon_status_t st =
                dragon_registry_lookup(name, timeout, &kind, buf.data(), buf.size(), &len);
            st != DRAGON_SUCCESS) {
            return wrap(st, "dragon_ddict_attach_name '%s'", name);
        }
        if (kind != DRAGON_REGISTRY_DICT) {
            return fail(DRAGON_INVALID_ARGUMENT, "'%s' does not name a dictionary", name);
        }
        return dragon_ddict_attach(buf.data(), len, dict);
    });
}

DRAGON_API dragon_status_t dragon_ddict_detach(dragon_ddict_t *dict) {
    return guarded("dragon_ddict_detach", [&]() -> dragon_status_t {
        if (dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_detach: dict is NULL");
        }
        for (uint32_t m = 0; m < dict->conns.size(); ++m) {
            dict->disconnect(m);
        }
        delete dict;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_destroy(dragon_ddict_t *dict) {
    return guarded("dragon_ddict_destroy", [&]() -> dragon_status_t {
        if (dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_destroy: dict is NULL");
        }
        std::unique_ptr<dragon_ddict> d(dict);
        if (!d->name.empty()) {
            dragon_registry_unregister(d->name.c_str());
        }
        // Ask every manager to end, without waiting for one before asking the next.
        int64_t dl = now_ns() + std::min<dragon_timeout_t>(
                                    d->timeout < 0 ? kDefaultTimeout : d->timeout, 5'000'000'000);
        dragon_status_t first = DRAGON_SUCCESS;
        for (uint32_t m = 0; m < d->managers.size(); ++m) {
            if (d->connect(m) != DRAGON_SUCCESS) {
                first = first == DRAGON_SUCCESS ? dragon_status_t(DRAGON_OWNER_DIED) : first;
                continue;
            }
            wire::Request rq;
            rq.op = Op::Destroy;
            rq.request_id = d->next_request++;
            d->send(m, rq, dl);
        }
        // The manager destroys the pool our reply channels live in: detach, never destroy.
        for (Conn &c : d->conns) {
            if (c.rep != nullptr) {
                dragon_channel_detach(c.rep);
            }
            if (c.req != nullptr) {
                dragon_channel_detach(c.req);
            }
            c = Conn{};
        }
        if (d->creator) {
            collect(d->managers, std::max<int64_t>(dl - now_ns(), 0));
        }
        return first;
    });
}

DRAGON_API dragon_status_t dragon_ddict_set_timeout(dragon_ddict_t *dict,
                                                    dragon_timeout_t timeout) {
    if (dict == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_set_timeout: dict is NULL");
    }
    dict->timeout = timeout;
    return DRAGON_SUCCESS;
}

namespace {

dragon_status_t key_call(dragon_ddict_t *d, Op op, const void *key, size_t key_len, Reply *rep,
                         uint32_t *m, uint64_t arg = 0) {
    if (d == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict: dict is NULL");
    }
    if (dragon_status_t st = check_key(key, key_len); st != DRAGON_SUCCESS) {
        return st;
    }
    *m = d->manager_for(key, key_len);
    wire::Request rq;
    rq.op = op;
    rq.key = static_cast<const unsigned char *>(key);
    rq.key_len = static_cast<uint32_t>(key_len);
    rq.arg = arg;
    if (dragon_status_t st = d->call(*m, rq, rep); st != DRAGON_SUCCESS) {
        return st;
    }
    return d->status_of(*m, rep->r, wire::op_name(static_cast<uint8_t>(op)));
}

dragon_status_t do_put(dragon_ddict_t *d, uint32_t m, const void *key, size_t key_len,
                       const void *value, size_t value_len, uint16_t flags) {
    if (value == nullptr || value_len == 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict: a zero-length value (store at least a byte)");
    }
    wire::Request rq;
    rq.op = Op::Put;
    rq.flags = flags;
    rq.key = static_cast<const unsigned char *>(key);
    rq.key_len = static_cast<uint32_t>(key_len);
    rq.value = static_cast<const unsigned char *>(value);
    rq.value_len = value_len;
    if (d->batch) {
        if (dragon_status_t st = d->connect(m); st != DRAGON_SUCCESS) {
            return st;
        }
        rq.flags |= wire::kNoReply;
        rq.checkpoint = d->checkpoint;
        rq.request_id = d->next_request++;
        d->conns[m].in_batch = true;
        return d->send(m, rq, d->deadline());
    }
    Reply rep;
    if (dragon_status_t st = d->call(m, rq, &rep); st != DRAGON_SUCCESS) {
        return st;
    }
    return d->status_of(m, rep.r, "put");
}

dragon_status_t put_common(dragon_ddict_t *d, const void *key, size_t key_len, const void *value,
                           size_t value_len, uint16_t flags) {
    if (d == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict: dict is NULL");
    }
    if (dragon_status_t st = check_key(key, key_len); st != DRAGON_SUCCESS) {
        return st;
    }
    return do_put(d, d->manager_for(key, key_len), key, key_len, value, value_len, flags);
}

// The frozen fast path: read the value where it lies (the key's manager on this node).
// DRAGON_SUCCESS with *e set, DRAGON_NOT_FOUND, or DRAGON_TIMEOUT: not frozen, go ask.
dragon_status_t in_place(dragon_ddict_t *d, uint32_t m, const void *key, size_t key_len,
                         const dragon::ddict::Entry **e, uint64_t *state) {
    if (d->managers[m].node != d->node) {
        return DRAGON_TIMEOUT;
    }
    if (dragon_status_t st = d->connect(m); st != DRAGON_SUCCESS) {
        return st;
    }
    const Conn &c = d->conns[m];
    if (c.root > c.heap || c.heap - c.root < sizeof(dragon::ddict::Root)) {
        return DRAGON_TIMEOUT;
    }
    const auto *root = reinterpret_cast<const dragon::ddict::Root *>(c.base + c.root);
    *state = __atomic_load_n(&root->state, __ATOMIC_ACQUIRE);
    if ((*state & 1) == 0 || d->checkpoint < __atomic_load_n(&root->floor, __ATOMIC_ACQUIRE)) {
        return DRAGON_TIMEOUT; // not frozen, or a retired checkpoint: the manager says which
    }
    *e = dragon::ddict::find_in_place(c.base, c.heap, c.root, key, key_len, d->checkpoint);
    return *e != nullptr ? DRAGON_SUCCESS : DRAGON_NOT_FOUND;
}

bool still(const dragon_ddict_t *d, uint32_t m, uint64_t state) {
    const Conn &c = d->conns[m];
    const auto *root = reinterpret_cast<const dragon::ddict::Root *>(c.base + c.root);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&root->state, __ATOMIC_ACQUIRE) == state;
}

// get into (buf, cap) or, with alloc, into a new malloc()ed buffer.
dragon_status_t get_common(dragon_ddict_t *d, const void *key, size_t key_len, void *buf,
                           size_t cap, size_t *len, void **alloc, int64_t force_manager = -1) {
    if (d == nullptr || len == nullptr || (alloc == nullptr && buf == nullptr && cap != 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_get: NULL argument");
    }
    if (dragon_status_t st = check_key(key, key_len); st != DRAGON_SUCCESS) {
        return st;
    }
    uint32_t m =
        force_manager >= 0 ? static_cast<uint32_t>(force_manager) : d->manager_for(key, key_len);
    const dragon::ddict::Entry *e = nullptr;
    uint64_t state = 0;
    dragon_status_t fz = in_place(d, m, key, key_len, &e, &state);
    if (fz == DRAGON_NOT_FOUND && still(d, m, state)) {
        return fail(DRAGON_NOT_FOUND, "ddict: get: no such key (manager '%s')",
                    d->mname(m).c_str());
    }
    if (fz == DRAGON_SUCCESS) {
        size_t n = e->value_len;
        void *dst = buf;
        if (alloc != nullptr) {
            dst = std::malloc(n);
            if (dst == nullptr) {
                return fail(DRAGON_NO_MEMORY, "ddict: get: %zu bytes", n);
            }
        } else if (n > cap) {
            *len = n;
            return fail(DRAGON_BUFFER_TOO_SMALL,
                        "ddict: get: the value is %zu bytes, the "
                        "buffer %zu",
                        n, cap);
        }
        std::memcpy(dst, e->value(), n);
        if (still(d, m, state)) {
            *len = n;
            if (alloc != nullptr) {
                *alloc = dst;
            }
            return DRAGON_SUCCESS;
        }
        if (alloc != nullptr) {
            std::free(dst); // unfrozen while we read: ask the manager instead
        }
    } else if (fz != DRAGON_TIMEOUT && fz != DRAGON_NOT_FOUND) {
        return fz;
    }
    wire::Request rq;
    rq.op = Op::Get;
    rq.key = static_cast<const unsigned char *>(key);
    rq.key_len = static_cast<uint32_t>(key_len);
    Reply rep;
    if (dragon_status_t st = d->call(m, rq, &rep); st != DRAGON_SUCCESS) {
        return st;
    }
    if (dragon_status_t st = d->status_of(m, rep.r, "get"); st != DRAGON_SUCCESS) {
        return st;
    }
    size_t n = rep.r.value_len;
    *len = n;
    void *dst = buf;
    if (alloc != nullptr) {
        dst = std::malloc(n == 0 ? 1 : n);
        if (dst == nullptr) {
            d->drop_lease(m, rep.r);
            return fail(DRAGON_NO_MEMORY, "ddict: get: %zu bytes", n);
        }
    } else if (n > cap) {
        d->drop_lease(m, rep.r);
        return fail(DRAGON_BUFFER_TOO_SMALL, "ddict: get: the value is %zu bytes, the buffer %zu",
                    n, cap);
    }
    if (dragon_status_t st = d->copy_value(m, rep.r, dst); st != DRAGON_SUCCESS) {
        if (alloc != nullptr) {
            std::free(dst);
        }
        return st;
    }
    if (alloc != nullptr) {
        *alloc = dst;
    }
    return DRAGON_SUCCESS;
}

uint32_t nearest_manager(const dragon_ddict_t *d) {
    std::vector<uint32_t> local;
    for (uint32_t m = 0; m < d->managers.size(); ++m) {
        if (d->managers[m].node == d->node) {
            local.push_back(m);
        }
    }
    if (local.empty()) {
        return static_cast<uint32_t>(static_cast<uint64_t>(getpid()) % d->managers.size());
    }
    return local[static_cast<uint64_t>(getpid()) % local.size()];
}

// One request without a key to every manager (or the selected one); f sees each reply.
template <typename F>
dragon_status_t each_manager(dragon_ddict_t *d, Op op, F &&f, const void *value = nullptr,
                             size_t value_len = 0) {
    if (d == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict: dict is NULL");
    }
    uint32_t lo = 0;
    auto hi = static_cast<uint32_t>(d->managers.size());
    if (d->selected >= 0) {
        lo = static_cast<uint32_t>(d->selected);
        hi = lo + 1;
    }
    // Send to all first, then collect: one round trip's time in all, not one per manager.
    std::vector<uint64_t> ids(hi);
    int64_t dl = d->deadline();
    for (uint32_t m = lo; m < hi; ++m) {
        if (dragon_status_t st = d->connect(m); st != DRAGON_SUCCESS) {
            return st;
        }
        wire::Request rq;
        rq.op = op;
        rq.request_id = ids[m] = d->next_request++;
        rq.checkpoint = op == Op::Length || op == Op::Keys ? d->checkpoint : 0;
        rq.value = static_cast<const unsigned char *>(value);
        rq.value_len = value_len;
        if (dragon_status_t st = d->send(m, rq, dl); st != DRAGON_SUCCESS) {
            return st;
        }
    }
    dragon_status_t first = DRAGON_SUCCESS;
    std::string why;
    for (uint32_t m = lo; m < hi; ++m) {
        Reply rep;
        dragon_status_t st = d->await(m, ids[m], dl, &rep);
        if (st == DRAGON_SUCCESS) {
            st = d->status_of(m, rep.r, wire::op_name(static_cast<uint8_t>(op)));
        }
        if (st == DRAGON_SUCCESS) {
            st = f(m, rep.r);
        }
        if (st != DRAGON_SUCCESS && first == DRAGON_SUCCESS) {
            first = st;
            why = dragon_last_error();
        }
    }
    return first == DRAGON_SUCCESS ? first : fail(first, "%s", why.c_str());
}

} // namespace

DRAGON_API dragon_status_t dragon_ddict_put(dragon_ddict_t *dict, const void *key, size_t key_len,
                                            const void *value, size_t value_len) {
    return guarded("dragon_ddict_put",
                   [&] { return put_common(dict, key, key_len, value, value_len, 0); });
}

DRAGON_API dragon_status_t dragon_ddict_pput(dragon_ddict_t *dict, const void *key, size_t key_len,
                                             const void *value, size_t value_len) {
    return guarded("dragon_ddict_pput", [&] {
        return put_common(dict, key, key_len, value, value_len, wire::kPersistentPut);
    });
}

DRAGON_API dragon_status_t dragon_ddict_get(dragon_ddict_t *dict, const void *key, size_t key_len,
                                            void *buf, size_t cap, size_t *len) {
    return guarded("dragon_ddict_get",
                   [&] { return get_common(dict, key, key_len, buf, cap, len, nullptr); });
}

DRAGON_API dragon_status_t dragon_ddict_get_alloc(dragon_ddict_t *dict, const void *key,
                                                  size_t key_len, void **value, size_t *len) {
    return guarded("dragon_ddict_get_alloc", [&]() -> dragon_status_t {
        if (value == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_get_alloc: value is NULL");
        }
        return get_common(dict, key, key_len, nullptr, 0, len, value);
    });
}

DRAGON_API dragon_status_t dragon_ddict_pop(dragon_ddict_t *dict, const void *key, size_t key_len,
                                            void **value, size_t *len) {
    return guarded("dragon_ddict_pop", [&]() -> dragon_status_t {
        Reply rep;
        uint32_t m = 0;
        if (dragon_status_t st = key_call(dict, Op::Pop, key, key_len, &rep, &m);
            st != DRAGON_SUCCESS) {
            return st;
        }
        if (len != nullptr) {
            *len = rep.r.value_len;
        }
        if (value == nullptr) {
            dict->drop_lease(m, rep.r);
            return DRAGON_SUCCESS;
        }
        void *dst = std::malloc(rep.r.value_len == 0 ? 1 : rep.r.value_len);
        if (dst == nullptr) {
            dict->drop_lease(m, rep.r);
            return fail(DRAGON_NO_MEMORY, "dragon_ddict_pop: %llu bytes",
                        static_cast<unsigned long long>(rep.r.value_len));
        }
        if (dragon_status_t st = dict->copy_value(m, rep.r, dst); st != DRAGON_SUCCESS) {
            std::free(dst);
            return st;
        }
        *value = dst;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_contains(dragon_ddict_t *dict, const void *key,
                                                 size_t key_len) {
    return guarded("dragon_ddict_contains", [&]() -> dragon_status_t {
        if (dict != nullptr && check_key(key, key_len) == DRAGON_SUCCESS) {
            uint32_t m = dict->manager_for(key, key_len);
            const dragon::ddict::Entry *e = nullptr;
            uint64_t state = 0;
            dragon_status_t fz = in_place(dict, m, key, key_len, &e, &state);
            if ((fz == DRAGON_SUCCESS || fz == DRAGON_NOT_FOUND) && still(dict, m, state)) {
                return fz == DRAGON_SUCCESS
                           ? DRAGON_SUCCESS
                           : fail(DRAGON_NOT_FOUND, "ddict: contains: no such key");
            }
        }
        Reply rep;
        uint32_t m = 0;
        return key_call(dict, Op::Contains, key, key_len, &rep, &m);
    });
}

DRAGON_API dragon_status_t dragon_ddict_length(dragon_ddict_t *dict, uint64_t *length) {
    return guarded("dragon_ddict_length", [&]() -> dragon_status_t {
        if (length == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_length: length is NULL");
        }
        uint64_t n = 0;
        dragon_status_t st = each_manager(dict, Op::Length, [&](uint32_t, const wire::Response &r) {
            n += r.arg;
            return DRAGON_SUCCESS;
        });
        if (st == DRAGON_SUCCESS) {
            *length = n;
        }
        return st;
    });
}

DRAGON_API dragon_status_t dragon_ddict_clear(dragon_ddict_t *dict) {
    return guarded("dragon_ddict_clear", [&] {
        return each_manager(dict, Op::Clear,
                            [](uint32_t, const wire::Response &) { return DRAGON_SUCCESS; });
    });
}

DRAGON_API dragon_status_t dragon_ddict_fetch_add(dragon_ddict_t *dict, const void *key,
                                                  size_t key_len, int64_t delta, int64_t *old) {
    return guarded("dragon_ddict_fetch_add", [&]() -> dragon_status_t {
        Reply rep;
        uint32_t m = 0;
        if (dragon_status_t st =
                key_call(dict, Op::FetchAdd, key, key_len, &rep, &m, static_cast<uint64_t>(delta));
            st != DRAGON_SUCCESS) {
            return st;
        }
        if (old != nullptr) {
            *old = static_cast<int64_t>(rep.r.arg);
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_wait_for_key(dragon_ddict_t *dict, const void *key,
                                                     size_t key_len, dragon_timeout_t timeout) {
    return guarded("dragon_ddict_wait_for_key", [&]() -> dragon_status_t {
        Reply rep;
        uint32_t m = 0;
        return key_call(dict, Op::WaitKey, key, key_len, &rep, &m,
                        timeout < 0 ? ~0ULL : static_cast<uint64_t>(timeout));
    });
}

DRAGON_API dragon_status_t dragon_ddict_keys_begin(dragon_ddict_t *dict, dragon_ddict_keys_t **it) {
    return guarded("dragon_ddict_keys_begin", [&]() -> dragon_status_t {
        if (dict == nullptr || it == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_keys_begin: NULL argument");
        }
        auto *k = new dragon_ddict_keys();
        k->dict = dict;
        k->manager = dict->selected >= 0 ? static_cast<uint32_t>(dict->selected) : 0;
        *it = k;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_keys_next(dragon_ddict_keys_t *it, const void **key,
                                                  size_t *key_len) {
    return guarded("dragon_ddict_keys_next", [&]() -> dragon_status_t {
        if (it == nullptr || key == nullptr || key_len == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_keys_next: NULL argument");
        }
        dragon_ddict_t *d = it->dict;
        auto end = static_cast<uint32_t>(d->selected >= 0 ? d->selected + 1 : d->managers.size());
        while (it->at >= it->batch.size()) {
            if (it->manager_done) {
                ++it->manager;
                it->cursor = 0;
                it->manager_done = false;
            }
            if (it->manager >= end) {
                return DRAGON_NOT_FOUND; // the end: no message needed
            }
            wire::Request rq;
            rq.op = Op::Keys;
            rq.arg = it->cursor;
            Reply rep;
            if (dragon_status_t st = d->call(it->manager, rq, &rep); st != DRAGON_SUCCESS) {
                return st;
            }
            if (dragon_status_t st = d->status_of(it->manager, rep.r, "keys");
                st != DRAGON_SUCCESS) {
                return st;
            }
            it->batch.clear();
            it->at = 0;
            if (dragon_status_t st = wire::decode_keys(rep.r.value, rep.r.value_len, &it->batch);
                st != DRAGON_SUCCESS) {
                return st;
            }
            it->cursor = rep.r.arg;
            it->manager_done = rep.r.arg == 0;
        }
        const std::string &k = it->batch[it->at++];
        *key = k.data();
        *key_len = k.size();
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_keys_end(dragon_ddict_keys_t *it) {
    delete it;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_batch_start(dragon_ddict_t *dict) {
    if (dict == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_batch_start: dict is NULL");
    }
    dict->batch = true;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_batch_end(dragon_ddict_t *dict) {
    return guarded("dragon_ddict_batch_end", [&]() -> dragon_status_t {
        if (dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_batch_end: dict is NULL");
        }
        dict->batch = false;
        int64_t dl = dict->deadline();
        std::vector<uint64_t> ids(dict->conns.size(), 0);
        dragon_status_t first = DRAGON_SUCCESS;
        std::string why;
        auto note = [&](dragon_status_t st) {
            if (st != DRAGON_SUCCESS && first == DRAGON_SUCCESS) {
                first = st;
                why = dragon_last_error();
            }
        };
        for (uint32_t m = 0; m < dict->conns.size(); ++m) {
            if (!dict->conns[m].in_batch) {
                continue;
            }
            wire::Request rq;
            rq.op = Op::BatchEnd;
            rq.request_id = ids[m] = dict->next_request++;
            dragon_status_t st = dict->send(m, rq, dl);
            note(st);
            if (st != DRAGON_SUCCESS) {
                ids[m] = 0;
            }
        }
        for (uint32_t m = 0; m < dict->conns.size(); ++m) {
            if (ids[m] == 0) {
                continue;
            }
            dict->conns[m].in_batch = false;
            Reply rep;
            dragon_status_t st = dict->await(m, ids[m], dl, &rep);
            if (st == DRAGON_SUCCESS) {
                st = dict->status_of(m, rep.r, "batch put");
            }
            note(st);
        }
        return first == DRAGON_SUCCESS ? first : fail(first, "%s", why.c_str());
    });
}

DRAGON_API dragon_status_t dragon_ddict_bput(dragon_ddict_t *dict, const void *key, size_t key_len,
                                             const void *value, size_t value_len) {
    return guarded("dragon_ddict_bput", [&]() -> dragon_status_t {
        if (dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "ddict: dict is NULL");
        }
        if (dragon_status_t st = check_key(key, key_len); st != DRAGON_SUCCESS) {
            return st;
        }
        // As a batch: every manager's put in flight at once, one answer each.
        bool was = dict->batch;
        dict->batch = true;
        dragon_status_t first = DRAGON_SUCCESS;
        uint32_t home = dict->manager_for(key, key_len);
        for (uint32_t m = 0; m < dict->managers.size() && first == DRAGON_SUCCESS; ++m) {
            first = do_put(dict, m, key, key_len, value, value_len,
                           m == home ? 0 : wire::kBroadcastCopy);
        }
        dict->batch = was;
        if (!was) {
            dragon_status_t end = dragon_ddict_batch_end(dict);
            return first != DRAGON_SUCCESS ? first : end;
        }
        return first;
    });
}

DRAGON_API dragon_status_t dragon_ddict_bget(dragon_ddict_t *dict, const void *key, size_t key_len,
                                             void *buf, size_t cap, size_t *len) {
    return guarded("dragon_ddict_bget", [&]() -> dragon_status_t {
        if (dict == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "ddict: dict is NULL");
        }
        return get_common(dict, key, key_len, buf, cap, len, nullptr, nearest_manager(dict));
    });
}

DRAGON_API dragon_status_t dragon_ddict_freeze(dragon_ddict_t *dict) {
    return guarded("dragon_ddict_freeze", [&] {
        return each_manager(dict, Op::Freeze,
                            [](uint32_t, const wire::Response &) { return DRAGON_SUCCESS; });
    });
}

DRAGON_API dragon_status_t dragon_ddict_unfreeze(dragon_ddict_t *dict) {
    return guarded("dragon_ddict_unfreeze", [&] {
        return each_manager(dict, Op::Unfreeze,
                            [](uint32_t, const wire::Response &) { return DRAGON_SUCCESS; });
    });
}

DRAGON_API dragon_status_t dragon_ddict_is_frozen(dragon_ddict_t *dict, int *frozen) {
    return guarded("dragon_ddict_is_frozen", [&]() -> dragon_status_t {
        if (dict == nullptr || frozen == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_is_frozen: NULL argument");
        }
        uint32_t m = dict->selected >= 0 ? static_cast<uint32_t>(dict->selected) : 0;
        wire::Request rq;
        rq.op = Op::Stats;
        Reply rep;
        if (dragon_status_t st = dict->call(m, rq, &rep); st != DRAGON_SUCCESS) {
            return st;
        }
        *frozen = (rep.r.flags & wire::kFrozen) != 0 ? 1 : 0;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_get_view(dragon_ddict_t *dict, const void *key,
                                                 size_t key_len, const void **value, size_t *len) {
    return guarded("dragon_ddict_get_view", [&]() -> dragon_status_t {
        if (dict == nullptr || value == nullptr || len == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_get_view: NULL argument");
        }
        if (dragon_status_t st = check_key(key, key_len); st != DRAGON_SUCCESS) {
            return st;
        }
        uint32_t m = dict->manager_for(key, key_len);
        if (dict->managers[m].node != dict->node) {
            return fail(DRAGON_NOT_SUPPORTED,
                        "dragon_ddict_get_view: the key's manager '%s' is on node %u, not this "
                        "one",
                        dict->mname(m).c_str(), dict->managers[m].node);
        }
        const dragon::ddict::Entry *e = nullptr;
        uint64_t state = 0;
        dragon_status_t st = in_place(dict, m, key, key_len, &e, &state);
        if (st == DRAGON_TIMEOUT) {
            return fail(DRAGON_PERMISSION_DENIED,
                        "dragon_ddict_get_view: the dictionary is not frozen");
        }
        if (st == DRAGON_NOT_FOUND) {
            return fail(st, "dragon_ddict_get_view: no such key (manager '%s')",
                        dict->mname(m).c_str());
        }
        if (st != DRAGON_SUCCESS) {
            return st;
        }
        *value = e->value();
        *len = e->value_len;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_checkpoint(dragon_ddict_t *dict) {
    if (dict == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_checkpoint: dict is NULL");
    }
    ++dict->checkpoint;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_rollback(dragon_ddict_t *dict) {
    if (dict == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_rollback: dict is NULL");
    }
    if (dict->checkpoint > 0) {
        --dict->checkpoint;
    }
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_sync_to_newest(dragon_ddict_t *dict) {
    return guarded("dragon_ddict_sync_to_newest", [&]() -> dragon_status_t {
        uint64_t newest = 0;
        dragon_status_t st = each_manager(dict, Op::Newest, [&](uint32_t, const wire::Response &r) {
            newest = std::max(newest, r.arg);
            return DRAGON_SUCCESS;
        });
        if (st == DRAGON_SUCCESS) {
            dict->checkpoint = newest;
        }
        return st;
    });
}

DRAGON_API dragon_status_t dragon_ddict_checkpoint_id(const dragon_ddict_t *dict, uint64_t *id) {
    if (dict == nullptr || id == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_checkpoint_id: NULL argument");
    }
    *id = dict->checkpoint;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_set_checkpoint_id(dragon_ddict_t *dict, uint64_t id) {
    if (dict == nullptr || id == wire::kPersistent) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_set_checkpoint_id: bad argument");
    }
    dict->checkpoint = id;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_managers(const dragon_ddict_t *dict, uint32_t *count) {
    if (dict == nullptr || count == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_managers: NULL argument");
    }
    *count = static_cast<uint32_t>(dict->managers.size());
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_local_managers(const dragon_ddict_t *dict, uint32_t *ids,
                                                       size_t cap, size_t *n) {
    if (dict == nullptr || n == nullptr || (ids == nullptr && cap != 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_local_managers: NULL argument");
    }
    size_t k = 0;
    for (uint32_t m = 0; m < dict->managers.size(); ++m) {
        if (dict->managers[m].node == dict->node) {
            if (k < cap) {
                ids[k] = m;
            }
            ++k;
        }
    }
    *n = k;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_ddict_select_manager(const dragon_ddict_t *dict, uint32_t index,
                                                       dragon_ddict_t **selected) {
    return guarded("dragon_ddict_select_manager", [&]() -> dragon_status_t {
        if (dict == nullptr || selected == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_select_manager: NULL argument");
        }
        if (index >= dict->managers.size()) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_select_manager: manager %u of %zu",
                        index, dict->managers.size());
        }
        auto d = std::make_unique<dragon_ddict>();
        d->id = dict->id;
        d->window = dict->window;
        d->managers = dict->managers;
        d->conns.resize(d->managers.size());
        d->timeout = dict->timeout;
        d->checkpoint = dict->checkpoint;
        d->selected = index;
        *selected = d.release();
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_ddict_stats(dragon_ddict_t *dict, uint32_t manager,
                                              dragon_ddict_stats_t *stats) {
    return guarded("dragon_ddict_stats", [&]() -> dragon_status_t {
        if (dict == nullptr || stats == nullptr || stats->struct_size < sizeof(size_t)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_ddict_stats: NULL argument or struct_size unset");
        }
        if (manager >= dict->managers.size()) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_ddict_stats: manager %u of %zu", manager,
                        dict->managers.size());
        }
        wire::Request rq;
        rq.op = Op::Stats;
        Reply rep;
        if (dragon_status_t st = dict->call(manager, rq, &rep); st != DRAGON_SUCCESS) {
            return st;
        }
        if (dragon_status_t st = dict->status_of(manager, rep.r, "stats"); st != DRAGON_SUCCESS) {
            return st;
        }
        wire::Stats s{};
        if (dragon_status_t st = wire::decode_stats(rep.r.value, rep.r.value_len, &s);
            st != DRAGON_SUCCESS) {
            return st;
        }
        dragon_ddict_stats_t out{};
        out.struct_size = sizeof out;
        out.manager = static_cast<uint32_t>(s.manager);
        out.keys = s.keys;
        out.bytes = s.bytes;
        out.free_bytes = s.free;
        out.total_bytes = s.total;
        out.puts = s.puts;
        out.gets = s.gets;
        out.pops = s.pops;
        out.other_ops = s.other;
        out.clients = s.clients;
        out.newest_checkpoint = s.newest;
        out.malformed = s.malformed;
        out.frozen = s.frozen != 0 ? 1 : 0;
        out.pid = dict->conns[manager].pid;
        size_t n = std::min(stats->struct_size, sizeof out);
        std::memcpy(stats, &out, n);
        stats->struct_size = n;
        return DRAGON_SUCCESS;
    });
}

namespace {

dragon_status_t disk_op(dragon_ddict_t *dict, Op op, const char *dir) {
    if (dir == nullptr || dir[0] == '\0') {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict: %s: no directory",
                    wire::op_name(static_cast<uint8_t>(op)));
    }
    std::string path = dir;
    if (path[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd) != nullptr) {
            path = std::string(cwd) + "/" + path; // the managers' working directory may differ
        }
    }
    return each_manager(
        dict, op, [](uint32_t, const wire::Response &) { return DRAGON_SUCCESS; }, path.data(),
        path.size());
}

} // namespace

DRAGON_API dragon_status_t dragon_ddict_persist(dragon_ddict_t *dict, const char *dir) {
    return guarded("dragon_ddict_persist", [&] { return disk_op(dict, Op::Persist, dir); });
}

DRAGON_API dragon_status_t dragon_ddict_restore(dragon_ddict_t *dict, const char *dir) {
    return guarded("dragon_ddict_restore", [&] { return disk_op(dict, Op::Restore, dir); });
}
