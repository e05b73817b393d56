// libdragon C++ — the distributed dictionary (dragon::DDict). Header-only over dragon/ddict.h;
// docs/ddict.md.
//
//   dragon::DDict d;                       // one manager per node of the runtime
//   d["answer"] = 42;                      // put (typed, through dragon::Serializer)
//   int v = d["answer"];                   // get
//   d.put(std::string("k"), std::vector<double>{1, 2});
//   for (const std::string &k : d.keys()) { ... }   // in batches, one round trip each
//   std::string desc = d.serialize();      // hand it to another process: DDict::attach(desc)
//
// Keys and values are bytes: anything a std::string_view can be made of is taken as its
// characters; any other type goes through dragon::Serializer<T> (dragon/serializer.hpp).
// Failures throw dragon::Error with the C status (DRAGON_NOT_FOUND for an absent key).
#ifndef DRAGON_DDICT_HPP
#define DRAGON_DDICT_HPP

#include <dragon/ddict.h>
#include <dragon/error.hpp>
#include <dragon/policy.h>
#include <dragon/serializer.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dragon {

struct DDictOptions {
    uint32_t managers_per_node = 1;
    uint32_t nodes = 0;                    // 0: every node of the runtime
    std::vector<dragon_policy_t> policies; // or one manager per policy
    size_t total_mem = size_t{64} << 20;   // bytes for keys and values, split evenly
    std::chrono::nanoseconds timeout = std::chrono::seconds(30); // per call to a manager
    std::string name;               // register under this name ("": not)
    uint64_t checkpoint_window = 0; // checkpoints each manager keeps (0: all)
    std::string manager_exe;        // "": the default (docs/ddict.md)
};

struct DDictStats {
    uint32_t manager = 0;
    uint64_t keys = 0, bytes = 0, free_bytes = 0, total_bytes = 0;
    uint64_t puts = 0, gets = 0, pops = 0, other_ops = 0, clients = 0;
    uint64_t newest_checkpoint = 0, malformed = 0;
    bool frozen = false;
    int32_t pid = 0; // the manager's, on its node
};

namespace detail {

// A key's or value's bytes: string-like types as they are, others serialised.
template <typename T>
std::string_view bytes_of(const T &v, std::string &scratch) {
    if constexpr (std::is_convertible_v<const T &, std::string_view>) {
        return std::string_view(v);
    } else {
        scratch.clear();
        Serializer<T>::put(v, scratch);
        return scratch;
    }
}

struct MallocFree {
    void operator()(void *p) const noexcept { std::free(p); }
};

} // namespace detail

class DDict {
  public:
    // Start a new dictionary's managers (inside a runtime).
    explicit DDict(const DDictOptions &o = {}) {
        dragon_ddict_attr_t a;
        dragon_ddict_attr_init(&a);
        a.managers_per_node = o.managers_per_node;
        a.n_nodes = o.nodes;
        a.policies = o.policies.empty() ? nullptr : o.policies.data();
        a.n_policies = o.policies.size();
        a.policy_size = sizeof(dragon_policy_t);
        a.total_mem = o.total_mem;
        a.timeout = static_cast<dragon_timeout_t>(o.timeout.count());
        a.name = o.name.empty() ? nullptr : o.name.c_str();
        a.checkpoint_window = o.checkpoint_window;
        a.manager_exe = o.manager_exe.empty() ? nullptr : o.manager_exe.c_str();
        detail::check(dragon_ddict_create(&a, &h_));
        owner_ = true;
    }
    // Attach to a dictionary from its descriptor (serialize()) or its registered name.
    static DDict attach(std::string_view descriptor) {
        dragon_ddict_t *h = nullptr;
        detail::check(dragon_ddict_attach(descriptor.data(), descriptor.size(), &h));
        return DDict(h);
    }
    static DDict attach_name(const std::string &name,
                             std::chrono::nanoseconds timeout = std::chrono::seconds(0)) {
        dragon_ddict_t *h = nullptr;
        detail::check(dragon_ddict_attach_name(name.c_str(), detail::to_timeout(timeout), &h));
        return DDict(h);
    }
    DDict(DDict &&o) noexcept
        : h_(std::exchange(o.h_, nullptr)), owner_(std::exchange(o.owner_, false)) {}
    DDict &operator=(DDict &&o) noexcept {
        if (this != &o) {
            release();
            h_ = std::exchange(o.h_, nullptr);
            owner_ = std::exchange(o.owner_, false);
        }
        return *this;
    }
    DDict(const DDict &) = delete;
    DDict &operator=(const DDict &) = delete;
    // The creator's handle destroys the dictionary; an attached one detaches. Never blocks
    // beyond the timeout.
    ~DDict() { release(); }

    std::string serialize() const {
        std::string s(512, '\0');
        size_t len = 0;
        dragon_status_t st = dragon_ddict_serialize(h_, s.data(), s.size(), &len);
        if (st == DRAGON_BUFFER_TOO_SMALL) {
            s.resize(len);
            st = dragon_ddict_serialize(h_, s.data(), s.size(), &len);
        }
        detail::check(st);
        s.resize(len);
        return s;
    }
    void detach() {
        if (h_ != nullptr) {
            dragon_ddict_t *h = std::exchange(h_, nullptr);
            owner_ = false;
            detail::check(dragon_ddict_detach(h));
        }
    }
    void destroy() {
        if (h_ != nullptr) {
            dragon_ddict_t *h = std::exchange(h_, nullptr);
            owner_ = false;
            detail::check(dragon_ddict_destroy(h));
        }
    }
    // Keep the dictionary when this (creator's) handle goes: detach instead of destroying.
    void keep() noexcept { owner_ = false; }
    void set_timeout(std::chrono::nanoseconds t) {
        detail::check(dragon_ddict_set_timeout(h_, static_cast<dragon_timeout_t>(t.count())));
    }

    template <typename K, typename V>
    void put(const K &key, const V &value) {
        std::string ks, vs;
        auto k = detail::bytes_of(key, ks);
        auto v = detail::bytes_of(value, vs);
        detail::check(dragon_ddict_put(h_, k.data(), k.size(), v.data(), v.size()));
    }
    template <typename K, typename V>
    void pput(const K &key, const V &value) {
        std::string ks, vs;
        auto k = detail::bytes_of(key, ks);
        auto v = detail::bytes_of(value, vs);
        detail::check(dragon_ddict_pput(h_, k.data(), k.size(), v.data(), v.size()));
    }
    template <typename V = std::string, typename K>
    V get(const K &key) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        void *p = nullptr;
        size_t n = 0;
        detail::check(dragon_ddict_get_alloc(h_, k.data(), k.size(), &p, &n));
        std::unique_ptr<void, detail::MallocFree> hold(p);
        return Serializer<V>::get(p, n);
    }
    // std::nullopt for an absent key; throws for anything else.
    template <typename V = std::string, typename K>
    std::optional<V> find(const K &key) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        void *p = nullptr;
        size_t n = 0;
        dragon_status_t st = dragon_ddict_get_alloc(h_, k.data(), k.size(), &p, &n);
        if (st == DRAGON_NOT_FOUND) {
            return std::nullopt;
        }
        detail::check(st);
        std::unique_ptr<void, detail::MallocFree> hold(p);
        return Serializer<V>::get(p, n);
    }
    template <typename V = std::string, typename K>
    V pop(const K &key) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        void *p = nullptr;
        size_t n = 0;
        detail::check(dragon_ddict_pop(h_, k.data(), k.size(), &p, &n));
        std::unique_ptr<void, detail::MallocFree> hold(p);
        return Serializer<V>::get(p, n);
    }
    template <typename K>
    bool contains(const K &key) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        dragon_status_t st = dragon_ddict_contains(h_, k.data(), k.size());
        if (st == DRAGON_NOT_FOUND) {
            return false;
        }
        detail::check(st);
        return true;
    }
    template <typename K>
    void erase(const K &key) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        detail::check(dragon_ddict_pop(h_, k.data(), k.size(), nullptr, nullptr));
    }
    uint64_t size() {
        uint64_t n = 0;
        detail::check(dragon_ddict_length(h_, &n));
        return n;
    }
    void clear() { detail::check(dragon_ddict_clear(h_)); }
    template <typename K>
    int64_t fetch_add(const K &key, int64_t delta) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        int64_t old = 0;
        detail::check(dragon_ddict_fetch_add(h_, k.data(), k.size(), delta, &old));
        return old;
    }
    // True when the key appeared within the timeout.
    template <typename K, typename Rep, typename Period>
    bool wait_for_key(const K &key, std::chrono::duration<Rep, Period> timeout) {
        return wait_key(key, detail::to_timeout(timeout));
    }
    template <typename K>
    bool wait_for_key(const K &key, Forever) {
        return wait_key(key, DRAGON_TIMEOUT_FOREVER);
    }

    // d[key] = value puts; a conversion (or .as<V>()) gets.
    template <typename K>
    class Item {
      public:
        template <typename V>
        Item &operator=(const V &v) {
            d_->put(key_, v);
            return *this;
        }
        template <typename V>
        V as() const {
            return d_->get<V>(key_);
        }
        template <typename V>
        operator V() const {
            return d_->get<V>(key_);
        }

      private:
        friend class DDict;
        Item(DDict *d, const K &k) : d_(d), key_(k) {}
        DDict *d_;
        K key_;
    };
    template <typename K>
    Item<std::decay_t<K>> operator[](const K &key) {
        return Item<std::decay_t<K>>(this, key);
    }
    Item<std::string> operator[](const char *key) { return Item<std::string>(this, key); }

    // Keys, fetched from each manager in turn, a batch (one round trip) at a time.
    template <typename K = std::string>
    class KeyRange {
      public:
        class iterator {
          public:
            using iterator_category = std::input_iterator_tag;
            using value_type = K;
            using difference_type = std::ptrdiff_t;
            using pointer = const K *;
            using reference = const K &;
            iterator() = default;
            const K &operator*() const { return cur_; }
            const K *operator->() const { return &cur_; }
            iterator &operator++() {
                next();
                return *this;
            }
            bool operator==(const iterator &o) const { return it_ == o.it_; }
            bool operator!=(const iterator &o) const { return it_ != o.it_; }

          private:
            friend class KeyRange;
            explicit iterator(dragon_ddict_keys_t *it) : it_(it) { next(); }
            void next() {
                const void *k = nullptr;
                size_t n = 0;
                dragon_status_t st = dragon_ddict_keys_next(it_, &k, &n);
                if (st == DRAGON_NOT_FOUND) {
                    it_ = nullptr;
                    return;
                }
                detail::check(st);
                cur_ = Serializer<K>::get(k, n);
            }
            dragon_ddict_keys_t *it_ = nullptr;
            K cur_{};
        };
        KeyRange(KeyRange &&o) noexcept : it_(std::exchange(o.it_, nullptr)) {}
        KeyRange(const KeyRange &) = delete;
        KeyRange &operator=(const KeyRange &) = delete;
        KeyRange &operator=(KeyRange &&) = delete;
        ~KeyRange() {
            if (it_ != nullptr) {
                dragon_ddict_keys_end(it_);
            }
        }
        iterator begin() { return iterator(it_); }
        iterator end() { return iterator(); }

      private:
        friend class DDict;
        explicit KeyRange(dragon_ddict_t *h) { detail::check(dragon_ddict_keys_begin(h, &it_)); }
        dragon_ddict_keys_t *it_ = nullptr;
    };
    template <typename K = std::string>
    KeyRange<K> keys() {
        return KeyRange<K>(h_);
    }

    // Batch puts: puts between start and end go without waiting; end() waits for one answer
    // per manager and throws the first failure.
    class Batch {
      public:
        explicit Batch(DDict &d) : d_(&d) { detail::check(dragon_ddict_batch_start(d.h_)); }
        Batch(const Batch &) = delete;
        Batch &operator=(const Batch &) = delete;
        ~Batch() {
            if (d_ != nullptr) {
                dragon_ddict_batch_end(d_->h_); // a failure is end()'s to report
            }
        }
        void end() {
            DDict *d = std::exchange(d_, nullptr);
            if (d != nullptr) {
                detail::check(dragon_ddict_batch_end(d->h_));
            }
        }

      private:
        DDict *d_;
    };
    Batch batch() { return Batch(*this); }

    template <typename K, typename V>
    void bput(const K &key, const V &value) {
        std::string ks, vs;
        auto k = detail::bytes_of(key, ks);
        auto v = detail::bytes_of(value, vs);
        detail::check(dragon_ddict_bput(h_, k.data(), k.size(), v.data(), v.size()));
    }
    template <typename V = std::string, typename K>
    V bget(const K &key) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        std::string buf(1024, '\0');
        size_t n = 0;
        dragon_status_t st = dragon_ddict_bget(h_, k.data(), k.size(), buf.data(), buf.size(), &n);
        if (st == DRAGON_BUFFER_TOO_SMALL) {
            buf.resize(n);
            st = dragon_ddict_bget(h_, k.data(), k.size(), buf.data(), buf.size(), &n);
        }
        detail::check(st);
        return Serializer<V>::get(buf.data(), n);
    }

    void freeze() { detail::check(dragon_ddict_freeze(h_)); }
    void unfreeze() { detail::check(dragon_ddict_unfreeze(h_)); }
    bool frozen() {
        int f = 0;
        detail::check(dragon_ddict_is_frozen(h_, &f));
        return f != 0;
    }
    // Frozen, the key's manager on this node: the value where it lies, valid until unfreeze.
    template <typename K>
    std::string_view view(const K &key) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        const void *p = nullptr;
        size_t n = 0;
        detail::check(dragon_ddict_get_view(h_, k.data(), k.size(), &p, &n));
        return std::string_view(static_cast<const char *>(p), n);
    }

    void checkpoint() { detail::check(dragon_ddict_checkpoint(h_)); }
    void rollback() { detail::check(dragon_ddict_rollback(h_)); }
    void sync_to_newest() { detail::check(dragon_ddict_sync_to_newest(h_)); }
    uint64_t checkpoint_id() const {
        uint64_t id = 0;
        detail::check(dragon_ddict_checkpoint_id(h_, &id));
        return id;
    }
    void set_checkpoint_id(uint64_t id) { detail::check(dragon_ddict_set_checkpoint_id(h_, id)); }

    uint32_t managers() const {
        uint32_t n = 0;
        detail::check(dragon_ddict_managers(h_, &n));
        return n;
    }
    std::vector<uint32_t> local_managers() const {
        size_t n = 0;
        detail::check(dragon_ddict_local_managers(h_, nullptr, 0, &n));
        std::vector<uint32_t> ids(n);
        detail::check(dragon_ddict_local_managers(h_, ids.data(), ids.size(), &n));
        ids.resize(n);
        return ids;
    }
    // Keys held by the managers on this node, and how many (each manager's own keys once;
    // broadcast copies are not counted).
    template <typename K = std::string>
    std::vector<K> local_keys() const {
        std::vector<K> out;
        for (uint32_t m : local_managers()) {
            DDict one = select(m);
            for (const K &k : one.keys<K>()) {
                out.push_back(k);
            }
        }
        return out;
    }
    uint64_t local_size() const {
        uint64_t n = 0;
        for (uint32_t m : local_managers()) {
            n += select(m).size();
        }
        return n;
    }
    // A handle whose every call goes to one manager (its keys, its length).
    DDict select(uint32_t manager) const {
        dragon_ddict_t *h = nullptr;
        detail::check(dragon_ddict_select_manager(h_, manager, &h));
        return DDict(h);
    }
    DDictStats stats(uint32_t manager) {
        dragon_ddict_stats_t s{};
        s.struct_size = sizeof s;
        detail::check(dragon_ddict_stats(h_, manager, &s));
        DDictStats o;
        o.manager = s.manager;
        o.keys = s.keys;
        o.bytes = s.bytes;
        o.free_bytes = s.free_bytes;
        o.total_bytes = s.total_bytes;
        o.puts = s.puts;
        o.gets = s.gets;
        o.pops = s.pops;
        o.other_ops = s.other_ops;
        o.clients = s.clients;
        o.newest_checkpoint = s.newest_checkpoint;
        o.malformed = s.malformed;
        o.frozen = s.frozen != 0;
        o.pid = s.pid;
        return o;
    }
    void persist(const std::string &dir) { detail::check(dragon_ddict_persist(h_, dir.c_str())); }
    void restore(const std::string &dir) { detail::check(dragon_ddict_restore(h_, dir.c_str())); }

    dragon_ddict_t *c_handle() const noexcept { return h_; }

  private:
    explicit DDict(dragon_ddict_t *h) : h_(h) {}
    void release() noexcept {
        if (h_ != nullptr) {
            if (owner_) {
                dragon_ddict_destroy(h_);
            } else {
                dragon_ddict_detach(h_);
            }
            h_ = nullptr;
        }
    }
    template <typename K>
    bool wait_key(const K &key, dragon_timeout_t t) {
        std::string ks;
        auto k = detail::bytes_of(key, ks);
        dragon_status_t st = dragon_ddict_wait_for_key(h_, k.data(), k.size(), t);
        if (st == DRAGON_TIMEOUT) {
            return false;
        }
        detail::check(st);
        return true;
    }

    dragon_ddict_t *h_ = nullptr;
    bool owner_ = false;
};

} // namespace dragon

#endif // DRAGON_DDICT_HPP
