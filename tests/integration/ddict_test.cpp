// The distributed dictionary under the real launcher, with real dragon-ddict-manager processes
// (run by ddict.sh in a pid namespace of its own: it kills managers). What a user relies on:
// the C++ API, other processes attaching by descriptor and by name, exact concurrent
// fetch_add, wait-for-key, batches, broadcast, freezing with in-place reads, checkpoints,
// persistence, and the faults: a full manager, bad input of every kind, a dead manager.
#include "ddict/hash.hpp"
#include "ddict/wire.hpp"

#include <dragon/channel.h>
#include <dragon/ddict.hpp>
#include <dragon/process.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

namespace wire = dragon::ddict::wire;
using namespace std::chrono_literals;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// A key that lands on manager m of n (the documented hash).
std::string key_on(uint32_t m, uint32_t n, const std::string &stem) {
    for (int i = 0;; ++i) {
        std::string k = stem + std::to_string(i);
        if (dragon::ddict::manager_of(k.data(), k.size(), n) == m) {
            return k;
        }
    }
}

// Run this test program again as `role` with the descriptor in its environment; returns
// the exit codes.
std::vector<int> run_children(const std::string &role, const std::string &desc, int n,
                              const std::string &extra = {}) {
    std::string hex;
    for (unsigned char c : desc) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", c);
        hex += b;
    }
    std::vector<std::string> env_s;
    for (char **e = environ; *e != nullptr; ++e) {
        env_s.emplace_back(*e);
    }
    env_s.push_back("DDICT_TEST_DESC=" + hex);
    env_s.push_back("DDICT_TEST_EXTRA=" + extra);
    std::vector<const char *> env;
    for (auto &s : env_s) {
        env.push_back(s.c_str());
    }
    env.push_back(nullptr);
    std::vector<uint64_t> puids;
    for (int i = 0; i < n; ++i) {
        const char *argv[] = {dragon_process_self_exe(), nullptr};
        dragon_process_attr_t a;
        dragon_process_attr_init(&a);
        a.role = role.c_str();
        a.env = env.data();
        uint64_t puid = 0;
        EXPECT_EQ(dragon_process_create(argv, &a, &puid), DRAGON_SUCCESS) << dragon_last_error();
        puids.push_back(puid);
    }
    std::vector<int> codes;
    for (uint64_t p : puids) {
        int code = -1;
        EXPECT_EQ(dragon_process_join(p, 120'000'000'000LL, &code), DRAGON_SUCCESS);
        codes.push_back(code);
    }
    return codes;
}

std::string env_desc() {
    const char *hex = std::getenv("DDICT_TEST_DESC");
    std::string out;
    for (size_t i = 0; hex != nullptr && hex[i] != '\0' && hex[i + 1] != '\0'; i += 2) {
        out.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
    }
    return out;
}

int kill_by_pidfd(pid_t pid, int sig) {
    int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
        return -1;
    }
    int rc = static_cast<int>(syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
    close(fd);
    return rc;
}

} // namespace

TEST(DDict, TypedPutGetPopContainsLengthKeysClear) {
    dragon::DDictOptions o;
    o.managers_per_node = 3;
    dragon::DDict d(o);
    EXPECT_EQ(d.managers(), 3u);
    d["answer"] = 42;
    int v = d["answer"];
    EXPECT_EQ(v, 42);
    d.put(std::string("vec"), std::vector<double>{1.5, 2.5});
    EXPECT_EQ(d.get<std::vector<double>>("vec"), (std::vector<double>{1.5, 2.5}));
    d.put(7, std::string("seven")); // an integer key, serialised
    EXPECT_EQ(d.get(7), "seven");
    EXPECT_TRUE(d.contains("answer"));
    EXPECT_FALSE(d.contains("nope"));
    EXPECT_FALSE(d.find("nope").has_value());
    EXPECT_EQ(d.size(), 3u);
    for (int i = 0; i < 2000; ++i) {
        d.put("k" + std::to_string(i), "v" + std::to_string(i));
    }
    EXPECT_EQ(d.size(), 2003u);
    std::set<std::string> seen;
    for (const std::string &k : d.keys()) {
        EXPECT_TRUE(seen.insert(k).second) << "twice: " << k;
    }
    EXPECT_EQ(seen.size(), 2003u);
    EXPECT_EQ(d.pop("k5"), "v5");
    EXPECT_FALSE(d.contains("k5"));
    EXPECT_EQ(d.size(), 2002u);
    // A large value (past a slot: it travels through the manager's pool both ways).
    std::string big(3u << 20, 'b');
    big[12345] = 'x';
    d.put("big", big);
    EXPECT_EQ(d.get("big"), big);
    EXPECT_EQ(d.pop("big"), big);
    d.clear();
    EXPECT_EQ(d.size(), 0u);
    auto s = d.stats(0);
    EXPECT_EQ(s.keys, 0u);
    EXPECT_GT(s.puts, 0u);
    EXPECT_GT(s.pid, 0);
}

TEST(DDict, AnUnknownKeyIsNotFoundAtOnce) {
    dragon::DDict d;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) {
        try {
            d.get("missing" + std::to_string(i));
            ADD_FAILURE() << "a value for a key never put";
        } catch (const dragon::Error &e) {
            EXPECT_EQ(e.status(), DRAGON_NOT_FOUND) << e.what();
        }
    }
    EXPECT_LT(ms_since(t0), 2000.0) << "100 misses should take well under the 30 s timeout";
}

TEST(DDict, OtherProcessesAttachByDescriptorAndByName) {
    dragon::DDictOptions o;
    o.managers_per_node = 2;
    o.name = "test/ddict-by-name";
    dragon::DDict d(o);
    d["from-parent"] = std::string("hello");
    auto codes = run_children("reader", d.serialize(), 2);
    for (int c : codes) {
        EXPECT_EQ(c, 0);
    }
    EXPECT_EQ(d.get("from-child"), "written by a child");
    // By name, here too.
    dragon::DDict byname = dragon::DDict::attach_name("test/ddict-by-name");
    EXPECT_EQ(byname.get("from-parent"), "hello");
}

TEST(DDict, ConcurrentFetchAddFromEightProcessesIsExact) {
    dragon::DDictOptions o;
    o.managers_per_node = 2;
    dragon::DDict d(o);
    auto codes = run_children("adder", d.serialize(), 8);
    for (int c : codes) {
        EXPECT_EQ(c, 0);
    }
    EXPECT_EQ(d.get<int64_t>("counter"), 8 * 1000);
    // Every old value was handed out once: the children wrote which ones they saw.
    std::set<int64_t> olds;
    for (int i = 0; i < 8; ++i) {
        auto v = d.get<std::vector<int64_t>>("olds" + std::to_string(i));
        EXPECT_EQ(v.size(), 1000u);
        olds.insert(v.begin(), v.end());
    }
    EXPECT_EQ(olds.size(), 8000u);
    EXPECT_EQ(*olds.begin(), 0);
    EXPECT_EQ(*olds.rbegin(), 7999);
    d.put("text", std::string("not a number"));
    try {
        d.fetch_add("text", 1);
        ADD_FAILURE() << "fetch_add on text";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_INVALID_ARGUMENT) << e.what();
    }
}

TEST(DDict, WaitForKeyTimesOutOrWakesWhenAnotherProcessPuts) {
    dragon::DDict d;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(d.wait_for_key("late", 200ms));
    double waited = ms_since(t0);
    EXPECT_GE(waited, 190.0);
    EXPECT_LT(waited, 5000.0);
    EXPECT_FALSE(d.wait_for_key("late", 0ms));
    // A child waits (forever) for a key this process puts once the child said it waits.
    std::thread child([&] {
        auto codes = run_children("waiter", d.serialize(), 1);
        EXPECT_EQ(codes.at(0), 0);
    });
    EXPECT_TRUE(d.wait_for_key("waiter-ready", 60s));
    d.put("late", std::string("here"));
    child.join();
    EXPECT_EQ(d.get("waiter-saw"), "here");
}

TEST(DDict, BatchPutsAndBroadcast) {
    dragon::DDictOptions o;
    o.managers_per_node = 3;
    dragon::DDict d(o);
    {
        auto b = d.batch();
        for (int i = 0; i < 10000; ++i) {
            d.put("b" + std::to_string(i), i);
        }
        b.end();
    }
    EXPECT_EQ(d.size(), 10000u);
    EXPECT_EQ(d.get<int>("b9999"), 9999);
    // A failing put inside a batch: end() reports it, naming the manager.
    {
        auto b = d.batch();
        d.put("ok1", 1);
        EXPECT_THROW(d.put("", 1), dragon::Error); // refused before it is sent
        b.end();
    }
    d.freeze();
    {
        auto b = d.batch();
        d.put("b1", 5);
        try {
            b.end();
            ADD_FAILURE() << "a batch into a frozen dictionary";
        } catch (const dragon::Error &e) {
            EXPECT_EQ(e.status(), DRAGON_PERMISSION_DENIED) << e.what();
            EXPECT_NE(std::string(e.what()).find("frozen"), std::string::npos) << e.what();
        }
    }
    d.unfreeze();
    EXPECT_EQ(d.get<int>("b1"), 1);
    d.bput("everywhere", std::string("on every manager"));
    for (uint32_t m = 0; m < d.managers(); ++m) {
        dragon::DDict one = d.select(m);
        EXPECT_EQ(one.get("everywhere"), "on every manager") << m;
    }
    EXPECT_EQ(d.bget("everywhere"), "on every manager");
    // Manager selection: each manager's own keys and length add up to the whole.
    uint64_t total = 0;
    size_t keys = 0;
    for (uint32_t m = 0; m < d.managers(); ++m) {
        dragon::DDict one = d.select(m);
        total += one.size();
        for (const std::string &k : one.keys()) {
            (void)k;
            ++keys;
        }
    }
    EXPECT_EQ(total, d.size()); // a broadcast key counts once, on its own manager
    EXPECT_EQ(keys, total);
    EXPECT_EQ(d.local_managers().size(), 3u);
    EXPECT_EQ(d.local_size(), d.size()); // one node: every manager is local
    EXPECT_EQ(d.local_keys().size(), d.size());
}

TEST(DDict, FrozenIsReadOnlyAndReadsInPlace) {
    dragon::DDictOptions o;
    o.managers_per_node = 2;
    dragon::DDict d(o);
    std::string big(1u << 20, 'f');
    d.put("big", big);
    d.put("small", std::string("s"));
    d.freeze();
    EXPECT_TRUE(d.frozen());
    try {
        d.put("small", std::string("t"));
        ADD_FAILURE() << "a put into a frozen dictionary";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_PERMISSION_DENIED);
    }
    EXPECT_THROW(d.pop("small"), dragon::Error);
    std::string_view v = d.view("big");
    EXPECT_EQ(v.size(), big.size());
    EXPECT_EQ(v, big);
    EXPECT_EQ(d.get("big"), big);
    EXPECT_EQ(d.get("small"), "s");
    EXPECT_FALSE(d.contains("absent"));
    auto before = d.stats(dragon::ddict::manager_of("small", 5, 2)).gets;
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(d.get("small"), "s");
    }
    auto after = d.stats(dragon::ddict::manager_of("small", 5, 2)).gets;
    EXPECT_EQ(after, before) << "frozen gets should not reach the manager";
    d.unfreeze();
    EXPECT_FALSE(d.frozen());
    EXPECT_THROW(d.view("big"), dragon::Error);
    d.put("small", std::string("t"));
    EXPECT_EQ(d.get("small"), "t");
}

TEST(DDict, Checkpoints) {
    dragon::DDictOptions o;
    o.managers_per_node = 2;
    o.checkpoint_window = 2;
    dragon::DDict d(o);
    d.put("x", std::string("x at 0"));
    d.pput("p", std::string("persistent"));
    d.checkpoint(); // 1
    EXPECT_EQ(d.checkpoint_id(), 1u);
    EXPECT_FALSE(d.contains("x")) << "a put belongs to its checkpoint";
    EXPECT_EQ(d.get("p"), "persistent");
    d.put("x", std::string("x at 1"));
    EXPECT_EQ(d.get("x"), "x at 1");
    d.rollback(); // 0
    EXPECT_EQ(d.get("x"), "x at 0");
    // A second handle moves to the newest checkpoint anyone wrote.
    dragon::DDict other = dragon::DDict::attach(d.serialize());
    EXPECT_EQ(other.checkpoint_id(), 0u);
    other.sync_to_newest();
    EXPECT_EQ(other.checkpoint_id(), 1u);
    EXPECT_EQ(other.get("x"), "x at 1");
    // Writing checkpoint 2 with a window of 2 retires checkpoint 0 on that manager.
    other.checkpoint();
    other.put("x", std::string("x at 2"));
    try {
        d.get("x"); // d is at 0
        ADD_FAILURE() << "checkpoint 0 should be retired";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_NOT_FOUND);
        EXPECT_NE(std::string(e.what()).find("retired"), std::string::npos) << e.what();
    }
    EXPECT_EQ(other.get("p"), "persistent") << "a persistent put survives checkpoints";
    EXPECT_EQ(other.size(), 2u); // x at 2, p
}

TEST(DDict, PersistAndRestore) {
    std::string dir = "/tmp/ddict-test-persist-" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    dragon::DDictOptions o;
    o.managers_per_node = 2;
    {
        dragon::DDict d(o);
        for (int i = 0; i < 500; ++i) {
            d.put("p" + std::to_string(i), std::string(100 + i, 'a' + i % 26));
        }
        d.put("big", std::string(2u << 20, 'B'));
        d.persist(dir);
        d.clear();
        EXPECT_EQ(d.size(), 0u);
        d.restore(dir);
        EXPECT_EQ(d.size(), 501u);
        EXPECT_EQ(d.get("p7"), std::string(107, 'h'));
        EXPECT_EQ(d.get("big"), std::string(2u << 20, 'B'));
        // A torn file (as a crash mid-write of something other than us would leave): refused,
        // and the manager's contents stay.
        std::string f = dir + "/manager-0-of-2.ddict";
        {
            FILE *fp = std::fopen(f.c_str(), "r+b");
            ASSERT_NE(fp, nullptr);
            std::fseek(fp, 100, SEEK_SET);
            std::fputc(0x5a, fp);
            std::fclose(fp);
        }
        try {
            d.restore(dir);
            ADD_FAILURE() << "a corrupted file was restored";
        } catch (const dragon::Error &e) {
            EXPECT_EQ(e.status(), DRAGON_CORRUPTED) << e.what();
        }
        EXPECT_EQ(d.size(), 501u);
    }
    {
        // Another dictionary with another manager count refuses the files.
        dragon::DDictOptions three;
        three.managers_per_node = 3;
        dragon::DDict d3(three);
        EXPECT_THROW(d3.restore(dir), dragon::Error);
    }
    std::filesystem::remove_all(dir);
}

TEST(DDict, APersistKilledMidwayLeavesThePreviousOneWhole) {
    std::string dir = "/tmp/ddict-test-kill-" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    dragon::DDictOptions o;
    o.managers_per_node = 1;
    o.total_mem = 320u << 20;
    dragon::DDict d(o);
    d.put("v", std::string("first"));
    d.persist(dir);
    // Enough bytes that the second persist takes a while to write and fsync (values a little
    // under 1 MiB: a block is a power of two, so a value of 1 MiB and its header take 2 MiB).
    std::string mib((1u << 20) - 256, 'x');
    {
        auto b = d.batch();
        for (int i = 0; i < 256; ++i) {
            d.put("big" + std::to_string(i), mib);
        }
        b.end();
    }
    d.put("v", std::string("second"));
    pid_t manager = d.stats(0).pid;
    std::thread persister([&] {
        try {
            d.persist(dir);
        } catch (const dragon::Error &) {
            // the manager is killed under it: DRAGON_OWNER_DIED
        }
    });
    // Kill the manager as soon as its temporary file appears (or give up after 30 s).
    bool killed_midway = false;
    auto t0 = std::chrono::steady_clock::now();
    while (ms_since(t0) < 30000.0 && !killed_midway) {
        for (const auto &e : std::filesystem::directory_iterator(dir)) {
            if (e.path().filename().string().find(".tmp.") != std::string::npos) {
                killed_midway =
                    kill_by_pidfd(manager, SIGKILL) == 0 && std::filesystem::exists(e.path());
                break;
            }
        }
    }
    persister.join();
    ASSERT_TRUE(killed_midway) << "the persist was never seen midway";
    // A new dictionary of the same shape restores the first persist, whole.
    dragon::DDict fresh(o);
    fresh.restore(dir);
    EXPECT_EQ(fresh.get("v"), "first");
    EXPECT_EQ(fresh.size(), 1u);
    // The next persist that completes removes what the killed one left.
    fresh.persist(dir);
    for (const auto &e : std::filesystem::directory_iterator(dir)) {
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
    }
    std::filesystem::remove_all(dir);
}

TEST(DDict, OneManagerPerPolicy) {
    dragon::DDictOptions o;
    dragon_policy_t p;
    dragon_policy_init(&p);
    p.placement = DRAGON_PLACEMENT_LOCAL;
    p.cpu_count = 1;
    p.cpus[0] = 0;
    o.policies = {p, p};
    p.cpus[0] = 1;
    o.policies.push_back(p);
    dragon::DDict d(o);
    EXPECT_EQ(d.managers(), 3u);
    for (int i = 0; i < 300; ++i) {
        d.put("p" + std::to_string(i), i);
    }
    uint64_t sum = 0;
    for (uint32_t m = 0; m < 3; ++m) {
        auto s = d.stats(m);
        EXPECT_GT(s.keys, 50u) << m; // the hash spreads keys over all three
        sum += s.keys;
        // The manager runs bound to its policy's CPU.
        std::ifstream st("/proc/" + std::to_string(s.pid) + "/status");
        std::string line, allowed;
        while (std::getline(st, line)) {
            if (line.rfind("Cpus_allowed_list:", 0) == 0) {
                allowed = line.substr(line.find(':') + 1);
            }
        }
        allowed.erase(0, allowed.find_first_not_of(" \t"));
        EXPECT_EQ(allowed, m < 2 ? "0" : "1") << m;
    }
    EXPECT_EQ(sum, 300u);
}

TEST(DDict, AFullManagerRefusesNamingItselfAndLosesNothing) {
    dragon::DDictOptions o;
    o.managers_per_node = 2;
    o.total_mem = 4u << 20; // 2 MiB each
    dragon::DDict d(o);
    std::string v(64u << 10, 'v');
    int stored = 0;
    std::string why;
    for (; stored < 200; ++stored) {
        try {
            d.put("f" + std::to_string(stored), v);
        } catch (const dragon::Error &e) {
            EXPECT_EQ(e.status(), DRAGON_NO_SPACE) << e.what();
            why = e.what();
            break;
        }
    }
    ASSERT_LT(stored, 200) << "never full";
    EXPECT_NE(why.find("ddict manager 'm"), std::string::npos) << why;
    EXPECT_NE(why.find("full"), std::string::npos) << why;
    for (int i = 0; i < stored; ++i) {
        EXPECT_EQ(d.get("f" + std::to_string(i)), v) << i;
    }
    // A value larger than a manager's whole pool: a clear status too.
    try {
        d.put("huge", std::string(8u << 20, 'h'));
        ADD_FAILURE() << "a value larger than a manager";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_NO_SPACE) << e.what();
    }
}

TEST(DDict, BadInputGetsAClearStatusAndTheManagerServesOn) {
    dragon::DDict d;
    d.put("keep", std::string("kept"));
    dragon_ddict_t *h = d.c_handle();
    char buf[16];
    size_t n = 0;
    EXPECT_EQ(dragon_ddict_put(h, "", 0, "v", 1), DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(dragon_ddict_put(h, "k", 1, "", 0), DRAGON_INVALID_ARGUMENT);
    EXPECT_NE(std::string(dragon_last_error()).find("zero-length"), std::string::npos);
    std::string longkey(70000, 'k');
    EXPECT_EQ(dragon_ddict_put(h, longkey.data(), longkey.size(), "v", 1), DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(dragon_ddict_get(h, "keep", 4, buf, 2, &n), DRAGON_BUFFER_TOO_SMALL);
    EXPECT_EQ(n, 4u);

    // Raw messages straight into the manager's request channel, as a buggy or hostile client
    // in another language would send them.
    std::string desc = d.serialize();
    // The descriptor's first manager's channel: after 24 + id bytes, u32 node, u64 puid, u16 len.
    auto *p = reinterpret_cast<const unsigned char *>(desc.data());
    size_t at = 24 + wire::get_u32(p + 20);
    size_t clen = wire::get_u16(p + at + 12);
    dragon_channel_t *req = nullptr;
    ASSERT_EQ(dragon_channel_attach(p + at + 14, clen, nullptr, &req), DRAGON_SUCCESS);
    dragon_pool_t *pool = nullptr;
    dragon_channel_pool(req, &pool);
    dragon_channel_t *rep = nullptr;
    ASSERT_EQ(dragon_channel_create(pool, 16, wire::kSlotBytes, nullptr, &rep), DRAGON_SUCCESS);
    unsigned char hello[16 + DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t dl = 0;
    dragon_channel_serialize(rep, hello + 16, DRAGON_OBJECT_DESCRIPTOR_MAX, &dl);
    wire::put_u64(hello, 0);
    wire::put_u64(hello + 8, static_cast<uint64_t>(getpid()));
    auto send = [&](wire::Request r) {
        std::vector<unsigned char> m(wire::request_bytes(r));
        wire::encode_request(r, m.data());
        return dragon_channel_send(req, m.data(), m.size(), 1'000'000'000);
    };
    auto answer = [&](uint64_t id) {
        std::vector<unsigned char> m(wire::kSlotBytes);
        for (;;) {
            size_t len = 0;
            if (dragon_channel_recv(rep, m.data(), m.size(), &len, 5'000'000'000) !=
                DRAGON_SUCCESS) {
                return std::make_pair(-1, std::string("no answer"));
            }
            wire::Response r;
            if (wire::decode_response(m.data(), len, &r) != DRAGON_SUCCESS) {
                return std::make_pair(-2, std::string("undecodable answer"));
            }
            if (r.request_id == id) {
                return std::make_pair(
                    static_cast<int>(r.status),
                    std::string(r.message != nullptr ? r.message : "", r.message_len));
            }
        }
    };
    wire::Request hr;
    hr.op = wire::Op::Hello;
    hr.request_id = 1;
    hr.value = hello;
    hr.value_len = 16 + dl;
    ASSERT_EQ(send(hr), DRAGON_SUCCESS);
    std::vector<unsigned char> m(wire::kSlotBytes);
    size_t len = 0;
    ASSERT_EQ(dragon_channel_recv(rep, m.data(), m.size(), &len, 5'000'000'000), DRAGON_SUCCESS);
    wire::Response hello_reply;
    ASSERT_EQ(wire::decode_response(m.data(), len, &hello_reply), DRAGON_SUCCESS);
    auto client = static_cast<uint32_t>(hello_reply.arg);

    // A newer protocol version: answered, naming both versions.
    unsigned char raw[wire::kHeaderBytes + 4];
    wire::Request g;
    g.op = wire::Op::Get;
    g.client = client;
    g.request_id = 10;
    g.key = reinterpret_cast<const unsigned char *>("keep");
    g.key_len = 4;
    wire::encode_request(g, raw);
    raw[4] = 2;
    ASSERT_EQ(dragon_channel_send(req, raw, sizeof raw, 1'000'000'000), DRAGON_SUCCESS);
    auto a = answer(10);
    EXPECT_EQ(a.first, DRAGON_VERSION_MISMATCH) << a.second;
    EXPECT_NE(a.second.find("version 2"), std::string::npos) << a.second;
    // Lengths that do not add up.
    wire::encode_request(g, raw);
    wire::put_u32(raw + 12, 9);
    g.request_id = 11;
    wire::put_u64(raw + 16, 11);
    ASSERT_EQ(dragon_channel_send(req, raw, sizeof raw, 1'000'000'000), DRAGON_SUCCESS);
    a = answer(11);
    EXPECT_EQ(a.first, DRAGON_MALFORMED) << a.second;
    // An unknown opcode.
    wire::encode_request(g, raw);
    raw[5] = 200;
    wire::put_u64(raw + 16, 12);
    ASSERT_EQ(dragon_channel_send(req, raw, sizeof raw, 1'000'000'000), DRAGON_SUCCESS);
    EXPECT_EQ(answer(12).first, DRAGON_MALFORMED);
    // Garbage that names nobody: dropped (and counted); short, long, random.
    unsigned char junk[700];
    for (size_t i = 0; i < sizeof junk; ++i) {
        junk[i] = static_cast<unsigned char>(i * 131 + 7);
    }
    ASSERT_EQ(dragon_channel_send(req, junk, 3, 1'000'000'000), DRAGON_SUCCESS);
    ASSERT_EQ(dragon_channel_send(req, junk, sizeof junk, 1'000'000'000), DRAGON_SUCCESS);
    ASSERT_EQ(dragon_channel_send(req, junk, 0, 1'000'000'000), DRAGON_SUCCESS);
    // A put of a zero-length value, and one with an empty key, straight on the wire.
    wire::Request z;
    z.op = wire::Op::Put;
    z.client = client;
    z.request_id = 13;
    z.key = reinterpret_cast<const unsigned char *>("zk");
    z.key_len = 2;
    ASSERT_EQ(send(z), DRAGON_SUCCESS);
    EXPECT_EQ(answer(13).first, DRAGON_INVALID_ARGUMENT);
    z.request_id = 14;
    z.key_len = 0;
    z.key = nullptr;
    z.value = reinterpret_cast<const unsigned char *>("v");
    z.value_len = 1;
    ASSERT_EQ(send(z), DRAGON_SUCCESS);
    EXPECT_EQ(answer(14).first, DRAGON_INVALID_ARGUMENT);
    // The manager still serves, and counted what it refused.
    g.request_id = 15;
    ASSERT_EQ(send(g), DRAGON_SUCCESS);
    EXPECT_EQ(answer(15).first, DRAGON_SUCCESS);
    EXPECT_EQ(d.get("keep"), "kept");
    EXPECT_GE(d.stats(0).malformed, 6u);
    wire::Request bye;
    bye.op = wire::Op::Bye;
    bye.client = client;
    send(bye);
    dragon_channel_destroy(rep);
    dragon_channel_detach(req);
}

TEST(DDict, ADeadManagerIsAClearErrorAndTheOthersServeOn) {
    dragon::DDictOptions o;
    o.managers_per_node = 3;
    o.timeout = 20s;
    dragon::DDict d(o);
    std::string k0 = key_on(0, 3, "a"), k1 = key_on(1, 3, "b"), k2 = key_on(2, 3, "c");
    d.put(k0, 0);
    d.put(k1, 1);
    d.put(k2, 2);
    pid_t victim = d.stats(1).pid;
    ASSERT_GT(victim, 0);
    ASSERT_EQ(kill_by_pidfd(victim, SIGKILL), 0);
    auto t0 = std::chrono::steady_clock::now();
    try {
        d.get(k1);
        ADD_FAILURE() << "a get from a killed manager";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_OWNER_DIED) << e.what();
        EXPECT_NE(std::string(e.what()).find("'m1"), std::string::npos) << e.what();
    }
    EXPECT_LT(ms_since(t0), 20000.0);
    EXPECT_EQ(d.get<int>(k0), 0);
    EXPECT_EQ(d.get<int>(k2), 2);
    d.put(k2, 22);
    EXPECT_EQ(d.get<int>(k2), 22);
    try {
        d.put(k1, 5);
        ADD_FAILURE() << "a put to a killed manager";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_OWNER_DIED) << e.what();
    }
    // Destroy does not hang on the dead one.
    t0 = std::chrono::steady_clock::now();
    d.destroy();
    EXPECT_LT(ms_since(t0), 15000.0);
}

// The segments of a dictionary's managers now in /dev/shm (their pools are named
// ddict.<dictionary id>.m<i>).
size_t segments_of(const std::string &desc) {
    auto *p = reinterpret_cast<const unsigned char *>(desc.data());
    std::string id(desc.data() + 24, wire::get_u32(p + 20));
    size_t n = 0;
    for (const auto &e : std::filesystem::directory_iterator("/dev/shm")) {
        n += e.path().filename().string().find(".pool.ddict." + id + ".") != std::string::npos;
    }
    return n;
}

TEST(DDict, DetachAndDestroyNeverBlockAndDestroyFreesEverything) {
    dragon::DDictOptions o;
    o.managers_per_node = 3;
    dragon::DDict d(o);
    d.put("x", 1);
    std::string desc = d.serialize();
    EXPECT_EQ(segments_of(desc), 3u);
    dragon::DDict other = dragon::DDict::attach(desc);
    EXPECT_EQ(other.get<int>("x"), 1);
    auto t0 = std::chrono::steady_clock::now();
    other.detach();
    uint32_t n = d.managers();
    std::vector<pid_t> pids;
    for (uint32_t m = 0; m < n; ++m) {
        pids.push_back(d.stats(m).pid);
    }
    d.destroy();
    EXPECT_LT(ms_since(t0), 5000.0);
    // The managers ended by themselves (not killed) and took their pools with them.
    EXPECT_EQ(segments_of(desc), 0u);
    for (pid_t p : pids) {
        EXPECT_NE(kill(p, 0), 0) << "manager " << p << " still there";
    }
    // Another handle's calls after the destroy: DRAGON_CLOSED, at once.
    dragon::DDict late = dragon::DDict::attach(desc);
    try {
        late.get("x");
        ADD_FAILURE() << "a get from a destroyed dictionary";
    } catch (const dragon::Error &e) {
        EXPECT_EQ(e.status(), DRAGON_CLOSED) << e.what();
    }
}

TEST(DDict, ChurnOfNewKeysDoesNotFillAManager) {
    dragon::DDictOptions o;
    o.total_mem = 2u << 20;
    dragon::DDict d(o);
    for (int i = 0; i < 200000; ++i) {
        std::string k = "churn" + std::to_string(i);
        d.put(k, i);
        ASSERT_EQ(d.pop<int>(k), i) << i;
    }
    EXPECT_EQ(d.size(), 0u);
    EXPECT_GT(d.stats(0).free_bytes, 2u << 20) << "removed keys' slots must be reused";
}

TEST(DDict, MemoryGivenBackIsThereForTheNextPut) {
    dragon::DDictOptions o;
    o.total_mem = 4u << 20;
    dragon::DDict d(o);
    std::string big(3u << 20, 'b');
    for (int i = 0; i < 5; ++i) {
        d.put("big", big); // a pop, then a put at once, that needs the popped value's memory
        EXPECT_EQ(d.pop("big").size(), big.size()) << i;
    }
    // Replacing a value read a moment ago: the old one (leased by the get) must be gone before
    // the next replacement finds room (two 1.5 MiB values fit the 4 MiB, three do not).
    d.clear();
    std::string half((3u << 20) / 2, 'h');
    d.put("half", half);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(d.get("half").size(), half.size());
        d.put("half", std::string(half.size(), static_cast<char>('c' + i))); // replace
    }
    EXPECT_EQ(d.get("half"), std::string(half.size(), static_cast<char>('c' + 9)));
}

TEST(DDict, TimedOutCallsLeakNoLeaseAndNoClient) {
    dragon::DDict d;
    d.put("big", std::string(1u << 20, 'x'));
    uint64_t free0 = d.stats(0).free_bytes;
    for (int i = 0; i < 8; ++i) {
        dragon::DDict h = dragon::DDict::attach(d.serialize());
        h.set_timeout(std::chrono::nanoseconds(1));
        try {
            h.get("big");
        } catch (const dragon::Error &) {
            // DRAGON_TIMEOUT: the reply (and its lease) comes late
        }
        h.detach();
        d.put("big", std::string(1u << 20, static_cast<char>('a' + i)));
    }
    // The late replies' leases were given back and their clients said goodbye: wait until
    // the manager has counted the goodbyes (each call is a turn of the manager).
    auto t0 = std::chrono::steady_clock::now();
    while (d.stats(0).clients > 1 && ms_since(t0) < 5000.0) {
    }
    auto s = d.stats(0);
    EXPECT_EQ(s.clients, 1u);
    EXPECT_GE(s.free_bytes + (64u << 10), free0) << "leases were kept";
}

TEST(DDict, AClientThatNeverReadsStallsNobody) {
    dragon::DDict d;
    d.put("big", std::string(1u << 20, 'x'));
    std::string desc = d.serialize();
    auto *p = reinterpret_cast<const unsigned char *>(desc.data());
    size_t at = 24 + wire::get_u32(p + 20);
    dragon_channel_t *req = nullptr;
    ASSERT_EQ(dragon_channel_attach(p + at + 14, wire::get_u16(p + at + 12), nullptr, &req),
              DRAGON_SUCCESS);
    dragon_pool_t *pool = nullptr;
    dragon_channel_pool(req, &pool);
    dragon_channel_t *rep = nullptr;
    ASSERT_EQ(dragon_channel_create(pool, 4, wire::kSlotBytes, nullptr, &rep), DRAGON_SUCCESS);
    unsigned char hello[16 + DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t dl = 0;
    dragon_channel_serialize(rep, hello + 16, DRAGON_OBJECT_DESCRIPTOR_MAX, &dl);
    wire::put_u64(hello, 0);
    wire::put_u64(hello + 8, static_cast<uint64_t>(getpid()));
    auto send = [&](const wire::Request &r) {
        std::vector<unsigned char> m(wire::request_bytes(r));
        wire::encode_request(r, m.data());
        return dragon_channel_send(req, m.data(), m.size(), 1'000'000'000);
    };
    wire::Request hr;
    hr.op = wire::Op::Hello;
    hr.value = hello;
    hr.value_len = 16 + dl;
    ASSERT_EQ(send(hr), DRAGON_SUCCESS);
    std::vector<unsigned char> m(wire::kSlotBytes);
    size_t len = 0;
    ASSERT_EQ(dragon_channel_recv(rep, m.data(), m.size(), &len, 5'000'000'000), DRAGON_SUCCESS);
    wire::Response hello_reply;
    ASSERT_EQ(wire::decode_response(m.data(), len, &hello_reply), DRAGON_SUCCESS);
    uint64_t free0 = d.stats(0).free_bytes;
    // 300 gets of a large (leased) value, never read: 4 replies fit, the rest are dropped.
    wire::Request g;
    g.op = wire::Op::Get;
    g.client = static_cast<uint32_t>(hello_reply.arg);
    g.key = reinterpret_cast<const unsigned char *>("big");
    g.key_len = 3;
    for (int i = 0; i < 300; ++i) {
        g.request_id = 100 + static_cast<uint64_t>(i);
        ASSERT_EQ(send(g), DRAGON_SUCCESS);
    }
    double worst = 0;
    for (int i = 0; i < 50; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        d.get("big");
        worst = std::max(worst, ms_since(t0));
    }
    EXPECT_LT(worst, 100.0) << "a client that never reads held up the others";
    // The dropped replies' leases were taken back: once the value is replaced, the old one's
    // memory returns, except for the 4 replies still queued unread.
    d.put("big", std::string(1u << 20, 'y'));
    d.put("big", std::string(1u << 20, 'z'));
    EXPECT_GE(d.stats(0).free_bytes + (64u << 10), free0 - (2u << 20)) << "leases leaked";
    dragon_channel_destroy(rep);
    dragon_channel_detach(req);
}

TEST(DDict, FrozenReadsOfARetiredCheckpointSaySo) {
    dragon::DDictOptions o;
    o.checkpoint_window = 2;
    dragon::DDict d(o);
    d.put("x", std::string("x0"));
    dragon::DDict w = dragon::DDict::attach(d.serialize());
    for (int c = 1; c <= 3; ++c) {
        w.checkpoint();
        w.put("x", std::string("x") + std::to_string(c));
    }
    d.freeze();
    for (bool frozen : {true, false}) {
        try {
            d.get("x"); // at checkpoint 0, retired
            ADD_FAILURE() << "frozen " << frozen;
        } catch (const dragon::Error &e) {
            EXPECT_EQ(e.status(), DRAGON_NOT_FOUND);
            EXPECT_NE(std::string(e.what()).find("retired"), std::string::npos)
                << "frozen " << frozen << ": " << e.what();
        }
        d.unfreeze();
    }
}

namespace {

int reader_main() {
    try {
        dragon::DDict d = dragon::DDict::attach(env_desc());
        if (d.get("from-parent") != "hello") {
            return 3;
        }
        d.put("from-child", std::string("written by a child"));
        dragon::DDict byname = dragon::DDict::attach_name("test/ddict-by-name", 10s);
        return byname.get("from-parent") == "hello" ? 0 : 4;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "reader: %s\n", e.what());
        return 2;
    }
}

int adder_main() {
    try {
        dragon::DDict d = dragon::DDict::attach(env_desc());
        uint64_t me = 0;
        dragon_process_self(&me);
        std::vector<int64_t> olds;
        for (int i = 0; i < 1000; ++i) {
            olds.push_back(d.fetch_add("counter", 1));
        }
        // Which child am I: the first free slot, by fetch_add on a second counter.
        int64_t slot = d.fetch_add("slot", 1);
        d.put("olds" + std::to_string(slot), olds);
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "adder: %s\n", e.what());
        return 2;
    }
}

int waiter_main() {
    try {
        dragon::DDict d = dragon::DDict::attach(env_desc());
        d.put("waiter-ready", 1);
        if (!d.wait_for_key("late", dragon::forever)) {
            return 3;
        }
        d.put("waiter-saw", d.get("late"));
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "waiter: %s\n", e.what());
        return 2;
    }
}

} // namespace

int main(int argc, char **argv) {
    const char *role = dragon_process_role();
    std::string r = role != nullptr ? role : "";
    if (r == "reader") {
        return reader_main();
    }
    if (r == "adder") {
        return adder_main();
    }
    if (r == "waiter") {
        return waiter_main();
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
