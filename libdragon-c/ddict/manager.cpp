// dragon-ddict-manager's body (docs/ddict.md, docs/ddict-protocol.md): one thread that owns a
// pool, a store in it and a request channel, and answers requests one at a time. It never
// trusts a message: anything that does not decode gets DRAGON_MALFORMED (or
// DRAGON_VERSION_MISMATCH) when its sender can be told, and is counted either way.
#include "manager.hpp"

#include "persist.hpp"
#include "store.hpp"
#include "wire.hpp"

#include "../common/error.hpp"
#include "../pool/internal.hpp"

#include <dragon/channel.h>
#include <dragon/pool.h>
#include <dragon/registry.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

namespace dragon::ddict {

namespace {

using wire::Op;

volatile sig_atomic_t g_stop = 0; // SIGTERM: end as Destroy does (the pool goes)

void on_term(int) {
    g_stop = 1;
}

constexpr size_t kRequestCapacity = 1024;
constexpr size_t kTableSlots = 1024;
// Room for the channels on top of the store's bytes: the request channel, and each client's
// reply channel (64 messages of a slot each).
constexpr size_t kChannelRoom = 4u << 20;
// How often an idle manager looks for clients that died without saying goodbye.
constexpr int64_t kIdleCheckNs = 1'000'000'000;
constexpr size_t kMaxClients = 4096;
// What waits for keys may hold: per client, and key bytes in all.
constexpr size_t kMaxWaitsPerClient = 4096;
constexpr size_t kMaxWaiterBytes = size_t{64} << 20;

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct Client {
    dragon_channel_t *reply = nullptr;
    pid_t pid = 0;
    uint64_t node = 0;
    // The batch now open (kNoReply puts): how many were stored, and the first failure.
    uint64_t batch_ok = 0;
    dragon_status_t batch_status = DRAGON_SUCCESS;
    std::string batch_message;
};

struct Waiter {
    uint32_t client;
    uint64_t request_id;
    std::string key;
    uint64_t checkpoint;
    int64_t deadline; // steady ns; -1: none
};

struct Options {
    std::string dict_id;
    uint32_t index = 0;
    uint32_t managers = 1;
    size_t bytes = 0;
    uint64_t window = 0; // checkpoints kept (0: all)
    std::string register_as;
};

class Manager {
  public:
    explicit Manager(Options o) : opt_(std::move(o)), name_("m" + std::to_string(opt_.index)) {}
    ~Manager();
    int run();

  private:
    dragon_status_t start();
    void handle(const unsigned char *msg, size_t len, void *block);
    bool reply(uint32_t client, const wire::Request &rq, dragon_status_t st,
               const std::string &message = {}, uint64_t arg = 0, uint64_t arg2 = 0,
               const void *value = nullptr, uint64_t value_len = 0, uint32_t flags = 0);
    void reply_value(uint32_t client, const wire::Request &rq, const Entry *e, bool leasable);
    void refuse(const unsigned char *msg, size_t len, dragon_status_t st);
    void hello(const wire::Request &rq);
    void drop_client(uint32_t id, bool destroy_channel);
    bool writable(uint32_t client, const wire::Request &rq);
    bool checkpoint_ok(uint32_t client, const wire::Request &rq);
    void put(const wire::Request &rq, void *block, bool *block_taken);
    void wake_waiters(const unsigned char *key, size_t key_len);
    void expire_waiters(int64_t now);
    void check_clients();
    wire::Stats stats() const;

    Options opt_;
    std::string name_;
    dragon_pool_t *pool_ = nullptr;
    Store *store_ = nullptr;
    dragon_channel_t *requests_ = nullptr;
    std::vector<Client> clients_; // index: client id - 1; reply == nullptr: free
    std::vector<Waiter> waiters_;
    uint64_t newest_ = 0;
    uint64_t floor_ = 0;
    bool done_ = false;
    uint64_t node_ = 0; // the node this manager runs on
    uint64_t puts_ = 0, gets_ = 0, pops_ = 0, other_ = 0, malformed_ = 0;
    size_t waiter_bytes_ = 0;
    std::vector<unsigned char> out_;
};

Manager::~Manager() {
    for (uint32_t i = 0; i < clients_.size(); ++i) {
        if (clients_[i].reply != nullptr) {
            dragon_channel_detach(clients_[i].reply);
        }
    }
    delete store_;
    if (requests_ != nullptr) {
        dragon_channel_destroy(requests_);
    }
    if (pool_ != nullptr) {
        dragon_pool_destroy(pool_);
    }
}

dragon_status_t Manager::start() {
    std::string pool_name = "ddict." + opt_.dict_id + "." + name_;
    if (dragon_status_t st =
            dragon_pool_create(pool_name.c_str(), opt_.bytes + kChannelRoom, nullptr, &pool_);
        st != DRAGON_SUCCESS) {
        return detail::wrap(st, "ddict manager '%s': its pool of %zu bytes", name_.c_str(),
                            opt_.bytes + kChannelRoom);
    }
    if (dragon_status_t st = Store::create(pool_, name_, kTableSlots, &store_);
        st != DRAGON_SUCCESS) {
        return st;
    }
    dragon_channel_attr_t ca;
    dragon_channel_attr_init(&ca);
    if (dragon_status_t st =
            dragon_channel_create(pool_, kRequestCapacity, wire::kSlotBytes, &ca, &requests_);
        st != DRAGON_SUCCESS) {
        return detail::wrap(st, "ddict manager '%s': its request channel", name_.c_str());
    }
    unsigned char desc[DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t len = 0;
    if (dragon_status_t st = dragon_channel_serialize(requests_, desc, sizeof desc, &len);
        st != DRAGON_SUCCESS) {
        return st;
    }
    if (!opt_.register_as.empty()) {
        if (dragon_status_t st = dragon_registry_register(opt_.register_as.c_str(),
                                                          DRAGON_REGISTRY_CHANNEL, desc, len, 1);
            st != DRAGON_SUCCESS) {
            return detail::wrap(st, "ddict manager '%s': registering its channel", name_.c_str());
        }
    }
    out_.resize(wire::kSlotBytes);
    const char *node = std::getenv("DRAGON_NODE_ID");
    node_ = node != nullptr ? std::strtoull(node, nullptr, 10) : 0;
    return DRAGON_SUCCESS;
}

bool Manager::reply(uint32_t client, const wire::Request &rq, dragon_status_t st,
                    const std::string &message, uint64_t arg, uint64_t arg2, const void *value,
                    uint64_t value_len, uint32_t flags) {
    if (client == 0 || client > clients_.size() || clients_[client - 1].reply == nullptr) {
        return false;
    }
    wire::Response r;
    r.op = static_cast<uint8_t>(rq.op);
    r.status = static_cast<uint16_t>(st);
    r.flags = flags | (store_->frozen() ? wire::kFrozen : 0);
    r.request_id = rq.request_id;
    r.arg = arg;
    r.arg2 = arg2;
    r.message = message.data();
    r.message_len = static_cast<uint32_t>(std::min<size_t>(message.size(), 4096));
    r.value = static_cast<const unsigned char *>(value);
    r.value_len = value_len;
    size_t n = wire::response_bytes(r) - ((flags & wire::kLeased) != 0 ? value_len : 0);
    if (out_.size() < n) {
        out_.resize(n);
    }
    wire::encode_response(r, out_.data());
    // A client that does not read its replies must not stall the manager for the others: a
    // reply that does not fit now is dropped (that client's call times out; a client drains
    // late replies before each call, so only one that never reads fills its channel).
    dragon_status_t s =
        dragon_channel_send(clients_[client - 1].reply, out_.data(), n, DRAGON_TIMEOUT_TRY);
    if (s == DRAGON_CLOSED) {
        drop_client(client, false);
    }
    return s == DRAGON_SUCCESS;
}

void Manager::reply_value(uint32_t client, const wire::Request &rq, const Entry *e, bool leasable) {
    if (wire::kHeaderBytes + e->value_len <= wire::kSlotBytes || !leasable) {
        reply(client, rq, DRAGON_SUCCESS, {}, e->checkpoint, 0, e->value(), e->value_len);
        return;
    }
    // A large value stays where it is: the client (on this node) copies it out of this pool
    // and gives the lease back (docs/ddict-protocol.md, "Large values").
    Store::lease(e);
    if (!reply(
            client, rq, DRAGON_SUCCESS, {}, e->checkpoint,
            static_cast<uint64_t>(reinterpret_cast<const uint8_t *>(e) - pool::heap_base_of(pool_)),
            nullptr, e->value_len, wire::kLeased)) {
        // Nobody will read this reply: nobody would give the lease back.
        __atomic_fetch_sub(&const_cast<Entry *>(e)->readers, 1, __ATOMIC_ACQ_REL);
    }
}

// A message that does not decode: answered when its header names a client we know.
void Manager::refuse(const unsigned char *msg, size_t len, dragon_status_t st) {
    ++malformed_;
    std::string why = dragon_last_error();
    if (len >= 24 && wire::get_u32(msg) == wire::kRequestMagic) {
        wire::Request rq;
        rq.op = static_cast<Op>(msg[5]);
        uint32_t client = wire::get_u32(msg + 8);
        rq.request_id = wire::get_u64(msg + 16);
        reply(client, rq, st, "ddict manager '" + name_ + "': " + why);
    }
}

void Manager::hello(const wire::Request &rq) {
    if (rq.value_len < 16) {
        ++malformed_;
        return;
    }
    Client c;
    c.node = wire::get_u64(rq.value);
    uint64_t pid = wire::get_u64(rq.value + 8);
    dragon_channel_attr_t ca;
    dragon_channel_attr_init(&ca);
    if (dragon_channel_attach(rq.value + 16, rq.value_len - 16, &ca, &c.reply) != DRAGON_SUCCESS) {
        ++malformed_;
        return;
    }
    size_t connected = 0;
    for (const Client &k : clients_) {
        connected += k.reply != nullptr ? 1 : 0;
    }
    // A client must name a process that can be watched (it is dropped when that one ends),
    // and a manager serves a bounded number of them.
    dragon_status_t refused = DRAGON_SUCCESS;
    std::string why;
    if (pid == 0 || pid > 0x3fffffff) {
        refused = DRAGON_INVALID_ARGUMENT;
        why = "ddict manager '" + name_ + "': hello from pid " + std::to_string(pid);
    } else if (connected >= kMaxClients) {
        refused = DRAGON_NO_SPACE;
        why = "ddict manager '" + name_ + "' serves " + std::to_string(kMaxClients) +
              " clients already";
    }
    if (refused != DRAGON_SUCCESS) {
        ++malformed_;
        wire::Response r;
        r.op = static_cast<uint8_t>(Op::Hello);
        r.status = static_cast<uint16_t>(refused);
        r.request_id = rq.request_id;
        r.message = why.data();
        r.message_len = static_cast<uint32_t>(why.size());
        std::vector<unsigned char> b(wire::response_bytes(r));
        wire::encode_response(r, b.data());
        dragon_channel_send(c.reply, b.data(), b.size(), DRAGON_TIMEOUT_TRY);
        dragon_channel_detach(c.reply);
        return;
    }
    c.pid = static_cast<pid_t>(pid);
    uint32_t id = 0;
    for (uint32_t i = 0; i < clients_.size(); ++i) {
        if (clients_[i].reply == nullptr) {
            id = i + 1;
            break;
        }
    }
    if (id == 0) {
        clients_.emplace_back();
        id = static_cast<uint32_t>(clients_.size());
    }
    clients_[id - 1] = std::move(c);
    unsigned char info[16];
    wire::put_u64(info, static_cast<uint64_t>(getpid()));
    wire::put_u64(info + 8, opt_.index);
    reply(id, rq, DRAGON_SUCCESS, {}, id, store_->root_offset(), info, sizeof info);
}

void Manager::drop_client(uint32_t id, bool destroy_channel) {
    Client &c = clients_[id - 1];
    if (c.reply != nullptr) {
        if (destroy_channel) {
            dragon_channel_destroy(c.reply);
        } else {
            dragon_channel_detach(c.reply);
        }
    }
    c = Client{};
    waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(),
                                  [this, id](const Waiter &w) {
                                      if (w.client != id) {
                                          return false;
                                      }
                                      waiter_bytes_ -= w.key.size();
                                      return true;
                                  }),
                   waiters_.end());
}

bool Manager::writable(uint32_t client, const wire::Request &rq) {
    if (!store_->frozen()) {
        return true;
    }
    reply(client, rq, DRAGON_PERMISSION_DENIED,
          "ddict manager '" + name_ + "' is frozen (read-only): unfreeze the dictionary first");
    return false;
}

bool Manager::checkpoint_ok(uint32_t client, const wire::Request &rq) {
    if (rq.checkpoint == wire::kPersistent) {
        reply(client, rq, DRAGON_INVALID_ARGUMENT,
              "ddict manager '" + name_ + "': checkpoint 2^64-1 is reserved");
        return false;
    }
    if (rq.checkpoint >= floor_) {
        return true;
    }
    reply(client, rq, DRAGON_NOT_FOUND,
          "ddict manager '" + name_ + "': checkpoint " + std::to_string(rq.checkpoint) +
              " was retired (it keeps checkpoints " + std::to_string(floor_) + " to " +
              std::to_string(newest_) + ")",
          newest_, floor_);
    return false;
}

void Manager::put(const wire::Request &rq, void *block, bool *block_taken) {
    uint32_t client = rq.client;
    bool quiet = (rq.flags & wire::kNoReply) != 0;
    auto answer = [&](dragon_status_t st, const std::string &m) {
        if (!quiet) {
            reply(client, rq, st, m);
            return;
        }
        Client &c = clients_[client - 1];
        if (st == DRAGON_SUCCESS) {
            ++c.batch_ok;
        } else if (c.batch_status == DRAGON_SUCCESS) {
            c.batch_status = st;
            c.batch_message = m;
        }
    };
    if (store_->frozen()) {
        answer(DRAGON_PERMISSION_DENIED,
               "ddict manager '" + name_ +
                   "' is frozen (read-only): unfreeze the dictionary first");
        return;
    }
    if (rq.key_len == 0) {
        answer(DRAGON_INVALID_ARGUMENT, "ddict manager '" + name_ + "': an empty key");
        return;
    }
    if (rq.value_len == 0) {
        answer(DRAGON_INVALID_ARGUMENT,
               "ddict manager '" + name_ + "': a zero-length value (store at least one byte)");
        return;
    }
    if (rq.checkpoint == wire::kPersistent) {
        answer(DRAGON_INVALID_ARGUMENT,
               "ddict manager '" + name_ + "': checkpoint 2^64-1 is reserved");
        return;
    }
    if (rq.checkpoint < floor_) {
        answer(DRAGON_NOT_FOUND,
               "ddict manager '" + name_ + "': checkpoint " + std::to_string(rq.checkpoint) +
                   " was retired (it keeps checkpoints " + std::to_string(floor_) + " to " +
                   std::to_string(newest_) + ")");
        return;
    }
    bool persistent = (rq.flags & wire::kPersistentPut) != 0;
    uint64_t at = persistent ? wire::kPersistent : rq.checkpoint;
    uint32_t copy = (rq.flags & wire::kBroadcastCopy) != 0 ? kEntryCopy : 0;
    dragon_status_t st = DRAGON_SUCCESS;
    if (block != nullptr) {
        // The message is the entry: its header's room becomes the entry header.
        st = store_->put_block(block, rq.key_len, rq.value_len, at, copy);
        *block_taken = st == DRAGON_SUCCESS;
    } else {
        st = store_->put(rq.key, rq.key_len, rq.value, rq.value_len, at, copy);
    }
    if (st != DRAGON_SUCCESS) {
        answer(st, dragon_last_error());
        return;
    }
    ++puts_;
    if (persistent) {
        // A persistent value replaces the key's value of the writer's checkpoint.
        store_->erase_exact(rq.key, rq.key_len, rq.checkpoint);
    } else if (rq.checkpoint > newest_) {
        newest_ = rq.checkpoint;
        uint64_t floor =
            opt_.window != 0 && newest_ + 1 > opt_.window ? newest_ + 1 - opt_.window : 0;
        if (floor > floor_) {
            floor_ = floor;
            store_->retire_below(floor_);
            store_->set_floor(floor_);
        }
    }
    answer(DRAGON_SUCCESS, {});
    if (!waiters_.empty()) {
        wake_waiters(rq.key, rq.key_len); // rq.key lies in the block, which the store now holds
    }
}

void Manager::wake_waiters(const unsigned char *key, size_t key_len) {
    for (size_t i = 0; i < waiters_.size();) {
        Waiter &w = waiters_[i];
        if (w.key.size() == key_len && std::memcmp(w.key.data(), key, key_len) == 0 &&
            store_->contains(key, key_len, w.checkpoint)) {
            wire::Request rq;
            rq.op = Op::WaitKey;
            rq.request_id = w.request_id;
            uint32_t client = w.client;
            waiter_bytes_ -= w.key.size();
            waiters_.erase(waiters_.begin() + static_cast<long>(i));
            reply(client, rq, DRAGON_SUCCESS);
            continue;
        }
        ++i;
    }
}

void Manager::expire_waiters(int64_t now) {
    for (size_t i = 0; i < waiters_.size();) {
        if (waiters_[i].deadline >= 0 && waiters_[i].deadline <= now) {
            wire::Request rq;
            rq.op = Op::WaitKey;
            rq.request_id = waiters_[i].request_id;
            uint32_t client = waiters_[i].client;
            waiter_bytes_ -= waiters_[i].key.size();
            waiters_.erase(waiters_.begin() + static_cast<long>(i));
            reply(client, rq, DRAGON_TIMEOUT,
                  "ddict manager '" + name_ + "': the key did not appear in time");
            continue;
        }
        ++i;
    }
}

void Manager::check_clients() {
    for (uint32_t i = 0; i < clients_.size(); ++i) {
        if (clients_[i].reply != nullptr && clients_[i].pid > 0 && kill(clients_[i].pid, 0) != 0 &&
            errno == ESRCH) {
            drop_client(i + 1, true); // it cannot destroy its reply channel any more
        }
    }
    store_->sweep();
}

wire::Stats Manager::stats() const {
    wire::Stats s{};
    dragon_pool_stats_t ps{};
    ps.struct_size = sizeof ps;
    dragon_pool_stats(pool_, &ps);
    s.manager = opt_.index;
    s.keys = store_->size();
    s.bytes = store_->bytes();
    s.free = ps.free_bytes;
    s.total = ps.total_bytes;
    s.puts = puts_;
    s.gets = gets_;
    s.pops = pops_;
    s.other = other_;
    for (const Client &c : clients_) {
        s.clients += c.reply != nullptr ? 1 : 0;
    }
    s.frozen = store_->frozen() ? 1 : 0;
    s.newest = newest_;
    s.malformed = malformed_;
    return s;
}

void Manager::handle(const unsigned char *msg, size_t len, void *block) {
    wire::Request rq;
    if (dragon_status_t st = wire::decode_request(msg, len, &rq); st != DRAGON_SUCCESS) {
        refuse(msg, len, st);
        return;
    }
    if (rq.op == Op::Hello) {
        hello(rq);
        return;
    }
    uint32_t c = rq.client;
    if (c == 0 || c > clients_.size() || clients_[c - 1].reply == nullptr) {
        ++malformed_; // nobody to answer: it never said hello
        return;
    }
    bool block_taken = false;
    switch (rq.op) {
    case Op::Hello:
        break;
    case Op::Bye:
        drop_client(c, false);
        break;
    case Op::Put:
        put(rq, block, &block_taken);
        break;
    case Op::Get:
    case Op::Contains:
    case Op::Pop: {
        if (!checkpoint_ok(c, rq)) {
            break;
        }
        if (rq.key_len == 0) {
            reply(c, rq, DRAGON_INVALID_ARGUMENT, "ddict manager '" + name_ + "': an empty key");
            break;
        }
        if (rq.op == Op::Contains) {
            ++other_;
            reply(c, rq,
                  store_->contains(rq.key, rq.key_len, rq.checkpoint) ? DRAGON_SUCCESS
                                                                      : DRAGON_NOT_FOUND);
            break;
        }
        if (rq.op == Op::Get) {
            ++gets_;
            const Entry *e = store_->find(rq.key, rq.key_len, rq.checkpoint);
            if (e == nullptr) {
                reply(c, rq, DRAGON_NOT_FOUND);
            } else {
                reply_value(c, rq, e, clients_[c - 1].node == node_);
            }
            break;
        }
        if (!writable(c, rq)) {
            break;
        }
        ++pops_;
        Entry *e = store_->take(rq.key, rq.key_len, rq.checkpoint);
        if (e == nullptr) {
            reply(c, rq, DRAGON_NOT_FOUND);
            break;
        }
        reply_value(c, rq, e, clients_[c - 1].node == node_);
        store_->release(e); // freed now, or once the client has copied it
        break;
    }
    case Op::Length:
        ++other_;
        if (checkpoint_ok(c, rq)) {
            reply(c, rq, DRAGON_SUCCESS, {}, store_->length(rq.checkpoint));
        }
        break;
    case Op::Keys: {
        ++other_;
        if (!checkpoint_ok(c, rq)) {
            break;
        }
        std::vector<std::string> keys;
        size_t next = store_->keys(rq.arg, ~size_t{0}, &keys, rq.checkpoint, wire::kKeysBudget);
        std::vector<unsigned char> v;
        for (const std::string &k : keys) {
            size_t at = v.size();
            v.resize(at + 4 + k.size());
            wire::put_u32(v.data() + at, static_cast<uint32_t>(k.size()));
            std::memcpy(v.data() + at + 4, k.data(), k.size());
        }
        reply(c, rq, DRAGON_SUCCESS, {}, next, keys.size(), v.data(), v.size());
        break;
    }
    case Op::Clear:
        ++other_;
        if (writable(c, rq)) {
            store_->clear();
            reply(c, rq, DRAGON_SUCCESS);
        }
        break;
    case Op::FetchAdd: {
        ++other_;
        if (!writable(c, rq) || !checkpoint_ok(c, rq)) {
            break;
        }
        if (rq.key_len == 0) {
            reply(c, rq, DRAGON_INVALID_ARGUMENT, "ddict manager '" + name_ + "': an empty key");
            break;
        }
        const Entry *e = store_->find(rq.key, rq.key_len, rq.checkpoint);
        uint64_t old = 0;
        uint64_t at = rq.checkpoint;
        if (e != nullptr) {
            if (e->value_len != 8) {
                reply(c, rq, DRAGON_INVALID_ARGUMENT,
                      "ddict manager '" + name_ + "': fetch_add on a value of " +
                          std::to_string(e->value_len) + " bytes (it needs an 8-byte integer)");
                break;
            }
            old = wire::get_u64(e->value());
            at = e->checkpoint;
        }
        unsigned char v[8];
        wire::put_u64(v, old + rq.arg);
        if (e != nullptr && e->readers == 0) {
            std::memcpy(const_cast<Entry *>(e)->value(), v, 8); // in place: nobody holds it
        } else if (dragon_status_t st = store_->put(rq.key, rq.key_len, v, 8, at);
                   st != DRAGON_SUCCESS) {
            reply(c, rq, st, dragon_last_error());
            break;
        }
        reply(c, rq, DRAGON_SUCCESS, {}, old, old + rq.arg);
        if (e == nullptr && !waiters_.empty()) {
            wake_waiters(rq.key, rq.key_len);
        }
        break;
    }
    case Op::WaitKey: {
        ++other_;
        if (!checkpoint_ok(c, rq)) {
            break;
        }
        if (rq.key_len == 0) {
            reply(c, rq, DRAGON_INVALID_ARGUMENT, "ddict manager '" + name_ + "': an empty key");
            break;
        }
        if (store_->contains(rq.key, rq.key_len, rq.checkpoint)) {
            reply(c, rq, DRAGON_SUCCESS);
            break;
        }
        if (rq.arg == 0) {
            reply(c, rq, DRAGON_TIMEOUT,
                  "ddict manager '" + name_ + "': the key did not appear in time");
            break;
        }
        auto mine = static_cast<size_t>(std::count_if(
            waiters_.begin(), waiters_.end(), [c](const Waiter &w) { return w.client == c; }));
        if (mine >= kMaxWaitsPerClient || waiter_bytes_ + rq.key_len > kMaxWaiterBytes) {
            reply(c, rq, DRAGON_NO_SPACE,
                  "ddict manager '" + name_ + "': too many waits for keys (" +
                      std::to_string(mine) + " of this client, " + std::to_string(waiters_.size()) +
                      " in all)");
            break;
        }
        int64_t deadline = rq.arg >= (1ULL << 62) ? -1 : now_ns() + static_cast<int64_t>(rq.arg);
        waiter_bytes_ += rq.key_len;
        waiters_.push_back(Waiter{c, rq.request_id,
                                  std::string(reinterpret_cast<const char *>(rq.key), rq.key_len),
                                  rq.checkpoint, deadline});
        break;
    }
    case Op::BatchEnd: {
        Client &cl = clients_[c - 1];
        std::string m = std::move(cl.batch_message);
        dragon_status_t st = cl.batch_status;
        uint64_t ok = cl.batch_ok;
        cl.batch_ok = 0;
        cl.batch_status = DRAGON_SUCCESS;
        cl.batch_message.clear();
        reply(c, rq, st, m, ok);
        break;
    }
    case Op::Freeze:
    case Op::Unfreeze:
        ++other_;
        store_->set_frozen(rq.op == Op::Freeze);
        reply(c, rq, DRAGON_SUCCESS);
        break;
    case Op::Stats: {
        ++other_;
        unsigned char v[wire::kStatsWords * 8];
        wire::encode_stats(stats(), v);
        reply(c, rq, DRAGON_SUCCESS, {}, 0, 0, v, sizeof v);
        break;
    }
    case Op::Destroy:
        reply(c, rq, DRAGON_SUCCESS);
        done_ = true;
        break;
    case Op::Newest:
        ++other_;
        reply(c, rq, DRAGON_SUCCESS, {}, newest_, floor_);
        break;
    case Op::Persist:
    case Op::Restore: {
        ++other_;
        std::string dir(reinterpret_cast<const char *>(rq.value), rq.value_len);
        if (dir.empty() || dir.find('\0') != std::string::npos) {
            reply(c, rq, DRAGON_INVALID_ARGUMENT,
                  "ddict manager '" + name_ + "': a directory path, empty or with a NUL byte");
            break;
        }
        dragon_status_t st = DRAGON_SUCCESS;
        if (rq.op == Op::Persist) {
            st = persist_store(*store_, dir, opt_.index, opt_.managers, newest_);
        } else if (writable(c, rq)) {
            uint64_t newest = 0;
            st = restore_store(store_, dir, opt_.index, opt_.managers, &newest);
            if (st == DRAGON_SUCCESS) {
                newest_ = std::max(newest_, newest);
            }
        } else {
            break;
        }
        reply(c, rq, st, st == DRAGON_SUCCESS ? std::string{} : std::string(dragon_last_error()),
              store_->size());
        break;
    }
    }
    if (block != nullptr && !block_taken) {
        dragon_pool_free(pool_, block);
    }
}

int Manager::run() {
    if (dragon_status_t st = start(); st != DRAGON_SUCCESS) {
        std::fprintf(stderr, "dragon-ddict-manager: %s\n", dragon_last_error());
        return 1;
    }
    std::vector<unsigned char> buf(wire::kSlotBytes);
    int64_t now = now_ns();
    int64_t next_check = now + kIdleCheckNs;
    while (!done_ && g_stop == 0) {
        // `now` is from the end of the last turn: one clock reading per request.
        int64_t until = next_check;
        for (const Waiter &w : waiters_) {
            if (w.deadline >= 0) {
                until = std::min(until, w.deadline);
            }
        }
        dragon_timeout_t timeout = std::max<int64_t>(until - now, 0);
        size_t len = 0;
        dragon_status_t st = dragon_channel_recv(requests_, buf.data(), buf.size(), &len, timeout);
        // What readers gave back is free before the request is served: a client that could
        // not allocate a large put sends a request first and then finds the room.
        if (st != DRAGON_TIMEOUT && store_->has_released()) {
            store_->sweep();
        }
        if (st == DRAGON_SUCCESS) {
            handle(buf.data(), len, nullptr);
        } else if (st == DRAGON_BUFFER_TOO_SMALL) {
            void *block = nullptr;
            if (dragon_channel_recv_mem(requests_, &block, &len, DRAGON_TIMEOUT_TRY) ==
                DRAGON_SUCCESS) {
                handle(static_cast<unsigned char *>(block), len, block);
            }
        } else if (st == DRAGON_CLOSED) {
            break;
        } else if (st != DRAGON_TIMEOUT) {
            std::fprintf(stderr, "dragon-ddict-manager %s: %s\n", name_.c_str(),
                         dragon_last_error());
            return 1;
        }
        now = now_ns();
        if (!waiters_.empty()) {
            expire_waiters(now);
        }
        // Entries given back by their readers go at once: a put right after a pop of a large
        // value needs that memory.
        if (store_->has_released()) {
            store_->sweep();
        }
        if (now >= next_check) {
            check_clients();
            next_check = now + kIdleCheckNs;
        }
    }
    return 0;
}

} // namespace

int manager_main(int argc, char **argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        const char *v = argv[i + 1];
        if (k == "--dict") {
            o.dict_id = v;
        } else if (k == "--index") {
            o.index = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
        } else if (k == "--managers") {
            o.managers = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
        } else if (k == "--bytes") {
            o.bytes = std::strtoull(v, nullptr, 10);
        } else if (k == "--window") {
            o.window = std::strtoull(v, nullptr, 10);
        } else if (k == "--register") {
            o.register_as = v;
        } else {
            std::fprintf(stderr, "dragon-ddict-manager: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (o.dict_id.empty() || o.managers == 0 || o.index >= o.managers || o.bytes == 0) {
        std::fprintf(stderr,
                     "usage: dragon-ddict-manager --dict ID --index I --managers N --bytes B "
                     "[--window W] [--register NAME]\n"
                     "(started by dragon_ddict_create inside a runtime; not by hand)\n");
        return 2;
    }
    struct sigaction sa {};
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    Manager m(std::move(o));
    return m.run();
}

} // namespace dragon::ddict
