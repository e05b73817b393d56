// The control protocol's codec (libdragon-c/protocol): every request, reply and event round
// trips; what is not a well-formed message of this version is refused with its own status
// and a reason. Malformed input is built here with nlohmann-json's CBOR writer, as a peer
// of any implementation could send it.
#include "protocol/codec.hpp"

#include <dragon/dragon.h>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

namespace pr = dragon::protocol;
using json = nlohmann::json;

std::string cbor(const json &j) {
    std::vector<uint8_t> v = json::to_cbor(j);
    return {v.begin(), v.end()};
}

json envelope(const char *op, uint64_t id = 1) {
    return {{"v", pr::kVersion}, {"op", op}, {"id", id}};
}

template <typename T>
T round_trip(const T &body, uint64_t id = 9) {
    pr::Request out;
    EXPECT_EQ(pr::decode(pr::encode(pr::Request{id, "", body}), &out), DRAGON_SUCCESS)
        << dragon_last_error();
    EXPECT_EQ(out.id, id);
    EXPECT_EQ(out.op, pr::op_name(pr::RequestBody{body}));
    const T *got = std::get_if<T>(&out.body);
    EXPECT_NE(got, nullptr);
    return got != nullptr ? *got : T{};
}

TEST(Protocol, RequestsRoundTrip) {
    pr::Spawn s;
    s.program = "sh";
    s.args = {"-c", "true", std::string("\xff\x00x", 3).substr(0, 1)};
    s.env = {"A=1"};
    s.cwd = "/tmp";
    s.cpus = {0, 3};
    s.gpus = {1};
    s.streams[0] = pr::Stream::kFd;
    s.streams[2] = pr::Stream::kFd;
    s.count = 64;
    s.restart = 3;
    s.host_name = "n1";
    s.host_id = 0;
    s.wait_mode = DRAGON_WAIT_SPIN;
    s.group_first = 0;
    s.group_size = 64;
    s.pmi = "dragon.rt.1.0";
    pr::Spawn g = round_trip(s);
    EXPECT_EQ(g.pmi, "dragon.rt.1.0");
    EXPECT_EQ(g.group_size, 64U);
    EXPECT_EQ(g.program, "sh");
    EXPECT_EQ(g.args, s.args);
    EXPECT_EQ(g.env, s.env);
    EXPECT_EQ(g.cwd, "/tmp");
    EXPECT_EQ(g.cpus, s.cpus);
    EXPECT_EQ(g.gpus, s.gpus);
    EXPECT_EQ(g.streams[0], pr::Stream::kFd);
    EXPECT_EQ(g.streams[1], pr::Stream::kRelay);
    EXPECT_EQ(g.fds_expected(), 2);
    EXPECT_EQ(g.count, 64U);
    EXPECT_EQ(g.restart, 3U);
    EXPECT_EQ(g.host_name, "n1");
    EXPECT_EQ(g.host_id, 0);
    EXPECT_EQ(g.wait_mode, DRAGON_WAIT_SPIN);

    EXPECT_EQ(round_trip(pr::Join{{1, 2, 3}, 5000}).timeout_ns, 5000);
    pr::Signal sig = round_trip(pr::Signal{{7}, 15, true});
    EXPECT_EQ(sig.signal, 15);
    EXPECT_TRUE(sig.final);
    EXPECT_EQ(round_trip(pr::Status{{4, 5}}).puids.size(), 2U);
    // Binary values travel as binary: every byte value, NULs included.
    std::string bytes;
    for (int i = 0; i < 256; ++i) {
        bytes.push_back(static_cast<char>(i));
    }
    pr::Register reg = round_trip(pr::Register{"pool:results/0", 2, bytes, true});
    EXPECT_EQ(reg.value, bytes);
    EXPECT_EQ(reg.kind, 2U);
    EXPECT_TRUE(reg.replace);
    EXPECT_EQ(round_trip(pr::Lookup{"x", -1}).timeout_ns, -1);
    EXPECT_EQ(round_trip(pr::Unregister{"x"}).name, "x");
    round_trip(pr::NodeQuery{});
    EXPECT_TRUE(round_trip(pr::Shutdown{true}).now);
    EXPECT_TRUE(round_trip(pr::Subscribe{true}).proc_ended);
    EXPECT_EQ(round_trip(pr::Hello{"launcher"}).role, "launcher");
}

TEST(Protocol, RepliesAndEventsRoundTrip) {
    pr::Reply r;
    r.id = 42;
    r.status = DRAGON_TIMEOUT;
    r.error = "still running";
    r.body = pr::JoinReply{{-1, 0, 137}};
    pr::Incoming in;
    ASSERT_EQ(pr::decode(pr::encode(r, "join"), &in), DRAGON_SUCCESS) << dragon_last_error();
    const auto &got = std::get<pr::Reply>(in);
    EXPECT_EQ(got.id, 42U);
    EXPECT_EQ(got.status, DRAGON_TIMEOUT);
    EXPECT_EQ(got.error, "still running");
    EXPECT_EQ(std::get<pr::JoinReply>(got.body).exit_codes, (std::vector<int>{-1, 0, 137}));

    pr::NodeReply n;
    n.node_id = 3;
    n.host_name = "h";
    n.cpu_count = 8;
    n.gpus.push_back({1, 0, 1, "0000:3b:00.0"});
    n.gpu_policies.push_back({{4, 5}, {0}});
    r = pr::Reply{};
    r.body = n;
    ASSERT_EQ(pr::decode(pr::encode(r, "node"), &in), DRAGON_SUCCESS) << dragon_last_error();
    const auto &node = std::get<pr::NodeReply>(std::get<pr::Reply>(in).body);
    EXPECT_EQ(node.host_name, "h");
    EXPECT_EQ(node.gpus.at(0).pci_bus_id, "0000:3b:00.0");
    EXPECT_EQ(node.gpu_policies.at(0).cpus, (std::vector<uint32_t>{4, 5}));

    r.body = pr::LookupReply{7, std::string("\0\1", 2)};
    ASSERT_EQ(pr::decode(pr::encode(r, "lookup"), &in), DRAGON_SUCCESS);
    EXPECT_EQ(std::get<pr::LookupReply>(std::get<pr::Reply>(in).body).value.size(), 2U);

    ASSERT_EQ(pr::decode(pr::encode(pr::Event{pr::ProcEnded{11, 3}}), &in), DRAGON_SUCCESS);
    EXPECT_EQ(std::get<pr::ProcEnded>(std::get<pr::Event>(in).body).exit_code, 3);

    // A spawn "check" reply carries no process ids.
    r = pr::Reply{};
    r.id = 5;
    r.body = pr::SpawnReply{};
    ASSERT_EQ(pr::decode(pr::encode(r, "spawn"), &in), DRAGON_SUCCESS) << dragon_last_error();
    EXPECT_TRUE(std::get<pr::SpawnReply>(std::get<pr::Reply>(in).body).puids.empty());

    // A reply whose body cannot be read still names its id, with the refusal as its status
    // and error, so the caller waiting for it is answered (it once waited out its timeout).
    pr::SpawnReply uneven;
    uneven.puids = {1, 2};
    uneven.pids = {3};
    r.id = 9;
    r.body = uneven;
    EXPECT_EQ(pr::decode(pr::encode(r, "spawn"), &in), DRAGON_MALFORMED);
    const auto &refused = std::get<pr::Reply>(in);
    EXPECT_EQ(refused.id, 9U);
    EXPECT_EQ(refused.status, DRAGON_MALFORMED);
    EXPECT_NE(refused.error.find("\"pids\" must match"), std::string::npos) << refused.error;
}

TEST(Protocol, MalformedMessagesGetTheirOwnStatusAndAReason) {
    pr::Request m;
    json no_id = {{"v", pr::kVersion}, {"op", "hello"}};
    json no_op = {{"v", pr::kVersion}, {"id", 1}};
    json bad_op = envelope("Spawn!");
    json neg_id = {{"v", pr::kVersion}, {"op", "hello"}, {"id", -1}};
    json str_id = {{"v", pr::kVersion}, {"op", "hello"}, {"id", "1"}};
    for (const std::string &bad :
         {std::string(), std::string("nonsense"), cbor(json::array({1, 2})), cbor(no_id),
          cbor(no_op), cbor(bad_op), cbor(neg_id), cbor(str_id), cbor(json(7)),
          std::string("\xff\x00not json", 10), cbor(envelope("hello")) + "x",
          cbor(envelope("hello")).substr(0, 5)}) {
        EXPECT_EQ(pr::decode(bad, &m), DRAGON_MALFORMED) << json::to_cbor(bad).size();
        EXPECT_STRNE(dragon_last_error(), "");
    }
    // Outside the subset this protocol sends: tags, indefinite lengths, keys that are not
    // text, floats, `undefined` and other simple values, a key twice.
    using namespace std::string_view_literals;
    for (std::string_view raw :
         {"\xa1\x61v\xc1\x02"sv, "\xa1\x61x\x9f\xff"sv, "\xa1\x61x\x5f\x41\x61\xff"sv,
          "\xa1\x01\x02"sv, "\xa1\x61x\xf7"sv, "\xa1\x61x\xf0"sv, "\xa1\x61x\xff"sv,
          "\xa1\x61x\xf9\x3c\x00"sv, "\xa1\x61x\xfa\x3f\x80\x00\x00"sv,
          "\xa1\x61x\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00"sv}) {
        EXPECT_EQ(pr::decode(raw, &m), DRAGON_MALFORMED) << raw;
        EXPECT_NE(std::string(dragon_last_error()).find("CBOR"), std::string::npos);
    }
    // A key twice, at the top or in a nested map: peers would disagree on which one counts.
    std::string twice = cbor(envelope("status", 5));
    twice[0] = static_cast<char>(0xa5); // five pairs: v, op, id and "puids" twice
    twice += cbor("puids") + cbor(json::array({1}));
    twice += cbor("puids") + cbor(json::array({2}));
    EXPECT_EQ(pr::decode(twice, &m), DRAGON_MALFORMED);
    EXPECT_NE(std::string(dragon_last_error()).find("twice"), std::string::npos);
    std::string inner = cbor(envelope("hello"));
    inner[0] = static_cast<char>(0xa4);
    inner += cbor("x") + std::string("\xa2\x61k\x01\x61k\x02", 7);
    EXPECT_EQ(pr::decode(inner, &m), DRAGON_MALFORMED);
    // ... and in a large map (checked by sorting): 21 pairs, "k3" twice or not.
    for (bool dup : {true, false}) {
        std::string big = cbor(envelope("hello"));
        big[0] = static_cast<char>(0xb5); // 21 pairs: v, op, id and 18 more
        for (int k = 0; k < 18; ++k) {
            big += cbor("k" + std::to_string(dup && k == 17 ? 3 : k)) + cbor(0);
        }
        EXPECT_EQ(pr::decode(big, &m), dup ? DRAGON_MALFORMED : DRAGON_SUCCESS)
            << (dup ? "a key twice in a large map" : "a large map");
    }
    // Nesting: the envelope and 15 arrays inside it (16 levels) are read, one more is not,
    // whether the innermost array is empty or not.
    for (bool empty : {false, true}) {
        for (int levels : {15, 16}) {
            json deep = envelope("hello");
            json *at = &deep["x"];
            for (int i = 0; i < levels; ++i) {
                *at = i + 1 < levels || empty ? json::array() : json::array({nullptr});
                if (i + 1 < levels) {
                    *at = json::array({nullptr});
                    at = &(*at)[0];
                }
            }
            EXPECT_EQ(pr::decode(cbor(deep), &m), levels == 15 ? DRAGON_SUCCESS : DRAGON_MALFORMED)
                << levels << (empty ? " levels, the innermost empty" : " levels");
        }
    }
    json deep = envelope("hello");
    json *at = &deep["x"];
    for (int i = 0; i < 40; ++i) {
        *at = json::array({nullptr});
        at = &(*at)[0];
    }
    EXPECT_EQ(pr::decode(cbor(deep), &m), DRAGON_MALFORMED);
    EXPECT_NE(std::string(dragon_last_error()).find("nested"), std::string::npos);
    // More items than any message of ours has (262,144): refused, however small they are.
    json many = envelope("hello");
    many["x"] = json::array();
    for (int i = 0; i < (1 << 18) + 1; ++i) {
        many["x"].push_back(0);
    }
    EXPECT_EQ(pr::decode(cbor(many), &m), DRAGON_MALFORMED);
    EXPECT_NE(std::string(dragon_last_error()).find("items"), std::string::npos);
    json huge = envelope("hello");
    huge["pad"] = std::string(pr::kMaxMessage, 'a');
    EXPECT_EQ(pr::decode(cbor(huge), &m), DRAGON_MALFORMED);
    // A declared length far beyond the bytes there: refused, nothing allocated for it.
    std::string lying = cbor(envelope("hello"));
    lying[0] = static_cast<char>(0xbb); // a map of 2^64-ish pairs follows
    lying.insert(1, std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8));
    EXPECT_EQ(pr::decode(lying, &m), DRAGON_MALFORMED);
    // The id is read first, so that even a refusal answers the right request.
    json bad_body = envelope("join", 77);
    bad_body["puids"] = "all";
    EXPECT_EQ(pr::decode(cbor(bad_body), &m), DRAGON_MALFORMED);
    EXPECT_EQ(m.id, 77U);
    EXPECT_NE(std::string(dragon_last_error()).find("puids"), std::string::npos);
}

TEST(Protocol, OtherVersionsAreNamed) {
    pr::Request m;
    json old = envelope("hello", 5);
    old["v"] = 1;
    EXPECT_EQ(pr::decode(cbor(old), &m), DRAGON_VERSION_MISMATCH);
    EXPECT_EQ(m.id, 5U);
    std::string why = dragon_last_error();
    EXPECT_NE(why.find("version 1"), std::string::npos) << why;
    EXPECT_NE(why.find("version " + std::to_string(pr::kVersion)), std::string::npos) << why;
    // Version 1 spoke JSON.
    EXPECT_EQ(pr::decode("{\"op\":\"hello\",\"id\":1}", &m), DRAGON_VERSION_MISMATCH);
    EXPECT_NE(std::string(dragon_last_error()).find("JSON"), std::string::npos);
    pr::Incoming in;
    pr::Reply r;
    std::string reply = pr::encode(r, "");
    json j = json::from_cbor(reply);
    j["v"] = pr::kVersion + 1;
    EXPECT_EQ(pr::decode(cbor(j), &in), DRAGON_VERSION_MISMATCH);
}

TEST(Protocol, UnknownOpsDecodeForTheRouterToRefuse) {
    pr::Request m;
    ASSERT_EQ(pr::decode(cbor(envelope("frobnicate", 4)), &m), DRAGON_SUCCESS);
    EXPECT_EQ(m.op, "frobnicate");
    EXPECT_EQ(m.body.index(), 0U);
}

TEST(Protocol, SpawnFieldRules) {
    json body = envelope("spawn");
    body["program"] = "sh";
    body["args"] = {"-c", "true"};
    body["stdout"] = "relay";
    body["stderr"] = "devnull";
    pr::Request m;
    ASSERT_EQ(pr::decode(cbor(body), &m), DRAGON_SUCCESS) << dragon_last_error();
    const auto &s = std::get<pr::Spawn>(m.body);
    EXPECT_EQ(s.streams[0], pr::Stream::kDevNull); // stdin defaults to /dev/null
    EXPECT_EQ(s.streams[2], pr::Stream::kDevNull);
    EXPECT_EQ(s.count, 1U);

    for (const auto &[key, value] : std::vector<std::pair<const char *, json>>{
             {"program", ""},
             {"program", 5},
             {"program", std::string("a\0b", 3)},
             {"args", "not an array"},
             {"args", {1, 2}},
             {"env", {"A=1", nullptr}},
             {"cwd", 3},
             {"cpus", json::array({-1})},
             {"cpus", json::array({"0"})},
             {"stdout", "file"},
             {"stdin", "relay"},
             {"count", 0},
             {"count", pr::kMaxSpawnCount + 1},
             {"count", -1},
             {"restart", "yes"},
             {"host_id", -2},
             {"host_name", 7},
             {"wait_mode", "fast"},
         }) {
        json b = body;
        b[key] = value;
        EXPECT_EQ(pr::decode(cbor(b), &m), DRAGON_MALFORMED) << b.dump();
        EXPECT_NE(std::string(dragon_last_error()).find(key), std::string::npos)
            << dragon_last_error();
    }
    // A PMI namespace is for group members, and printable without spaces.
    {
        json b = body;
        b["pmi"] = "ns";
        EXPECT_EQ(pr::decode(cbor(b), &m), DRAGON_MALFORMED) << b.dump();
        EXPECT_NE(std::string(dragon_last_error()).find("pmi"), std::string::npos);
        b["group_first"] = 0;
        b["group_size"] = 1;
        EXPECT_EQ(pr::decode(cbor(b), &m), DRAGON_SUCCESS) << dragon_last_error();
        for (const char *bad : {"a b", "a\tb", "\x7f"}) {
            b["pmi"] = bad;
            EXPECT_EQ(pr::decode(cbor(b), &m), DRAGON_MALFORMED) << b.dump();
        }
        b["pmi"] = std::string(201, 'n');
        EXPECT_EQ(pr::decode(cbor(b), &m), DRAGON_MALFORMED);
    }
    // A pipe back to the requester is for one process that is not restarted.
    for (const auto &[key, value] :
         std::vector<std::pair<const char *, int>>{{"count", 2}, {"restart", 1}}) {
        json b = body;
        b["stdout"] = "pipe";
        b[key] = value;
        EXPECT_EQ(pr::decode(cbor(b), &m), DRAGON_INVALID_ARGUMENT) << b.dump();
    }
}

TEST(Protocol, IntegersAtTheirEdges) {
    pr::Request m;
    auto join = [](const json &timeout) {
        json j = envelope("join", 3);
        j["puids"] = json::array({UINT64_MAX});
        j["timeout_ns"] = timeout;
        return cbor(j);
    };
    ASSERT_EQ(pr::decode(join(-1), &m), DRAGON_SUCCESS) << dragon_last_error();
    EXPECT_EQ(std::get<pr::Join>(m.body).puids[0], UINT64_MAX);
    EXPECT_EQ(std::get<pr::Join>(m.body).timeout_ns, -1);
    EXPECT_EQ(pr::decode(join(INT64_MAX), &m), DRAGON_SUCCESS);
    EXPECT_EQ(std::get<pr::Join>(m.body).timeout_ns, INT64_MAX);
    EXPECT_EQ(pr::decode(join(-2), &m), DRAGON_MALFORMED);
    EXPECT_EQ(pr::decode(join(INT64_MIN), &m), DRAGON_MALFORMED);
    EXPECT_EQ(pr::decode(join(static_cast<uint64_t>(INT64_MAX) + 1), &m), DRAGON_MALFORMED);
    // -2^64, the most negative CBOR integer (beyond int64_t): a negative integer of n =
    // 2^64 - 1.
    std::string lowest = join(-1);
    size_t at = lowest.rfind('\x20'); // -1 is 0x20
    ASSERT_NE(at, std::string::npos);
    lowest.replace(at, 1, std::string("\x3b\xff\xff\xff\xff\xff\xff\xff\xff", 9));
    EXPECT_EQ(pr::decode(lowest, &m), DRAGON_MALFORMED);
    EXPECT_NE(std::string(dragon_last_error()).find("timeout_ns"), std::string::npos);
}

TEST(Protocol, ErrorTextIsValidUtf8) {
    pr::Reply r;
    r.id = 4;
    r.status = DRAGON_NOT_FOUND;
    r.error = std::string("cannot start 'caf\xc3\xa9\xff\xfe\xc0\x80x': not found");
    pr::Incoming in;
    ASSERT_EQ(pr::decode(pr::encode(r, "spawn"), &in), DRAGON_SUCCESS) << dragon_last_error();
    EXPECT_EQ(std::get<pr::Reply>(in).error, "cannot start 'caf\xc3\xa9????x': not found");
    // What a strict reader checks: the text is valid UTF-8 (nlohmann's parser reads it).
    std::vector<uint8_t> bytes;
    std::string enc = pr::encode(r, "spawn");
    bytes.assign(enc.begin(), enc.end());
    json j = json::from_cbor(bytes, true, false);
    ASSERT_FALSE(j.is_discarded());
    EXPECT_NO_THROW((void)j["error"].dump());
}

TEST(Protocol, ProcessIdsAndRegistryNames) {
    pr::Request m;
    json one = envelope("status");
    one["puid"] = 5;
    ASSERT_EQ(pr::decode(cbor(one), &m), DRAGON_SUCCESS);
    EXPECT_EQ(std::get<pr::Status>(m.body).puids, std::vector<uint64_t>{5});
    for (const json &puids :
         {json::array(), json{1, -1}, json(3), json(std::vector<int>(pr::kMaxPuids + 1, 1))}) {
        json b = envelope("status");
        b["puids"] = puids;
        EXPECT_EQ(pr::decode(cbor(b), &m), DRAGON_MALFORMED) << puids.dump();
    }
    std::string why;
    EXPECT_TRUE(pr::valid_name("pool:results/0", &why));
    EXPECT_FALSE(pr::valid_name("", &why));
    EXPECT_FALSE(pr::valid_name("a b", &why));
    EXPECT_FALSE(pr::valid_name(std::string(256, 'x'), &why));
    json reg = envelope("register");
    reg["name"] = "a b";
    reg["kind"] = 1;
    reg["value"] = json::binary({1});
    EXPECT_EQ(pr::decode(cbor(reg), &m), DRAGON_INVALID_ARGUMENT);
    reg["name"] = "ab";
    reg["value"] = "6869"; // hex text is not a value any more: binary only
    EXPECT_EQ(pr::decode(cbor(reg), &m), DRAGON_MALFORMED);
    reg["value"] = json::binary(std::vector<uint8_t>(pr::kMaxValueLength + 1));
    EXPECT_EQ(pr::decode(cbor(reg), &m), DRAGON_MALFORMED);
}

} // namespace

// Many nodes (docs/multinode.md): the nodes op, the node_lost event, members spread with a
// stride, and every link message.
TEST(Protocol, NodesAndStrides) {
    round_trip(pr::NodesQuery{});
    pr::NodeReply a;
    a.node_id = 0;
    a.host_name = "h0";
    a.cpu_count = 4;
    a.gpu_policies.push_back({{0, 1}, {0}});
    pr::NodeReply b = a;
    b.node_id = 1;
    b.host_name = "h1";
    pr::Reply r;
    r.id = 3;
    r.body = pr::NodesReply{{a, b}};
    pr::Incoming in;
    ASSERT_EQ(pr::decode(pr::encode(r, "nodes"), &in), DRAGON_SUCCESS) << dragon_last_error();
    const auto &nodes = std::get<pr::NodesReply>(std::get<pr::Reply>(in).body).nodes;
    ASSERT_EQ(nodes.size(), 2U);
    EXPECT_EQ(nodes[1].host_name, "h1");
    EXPECT_EQ(nodes[0].gpu_policies.at(0).cpus, (std::vector<uint32_t>{0, 1}));

    ASSERT_EQ(pr::decode(pr::encode(pr::Event{pr::NodeLost{2, "h2", "gone"}}), &in),
              DRAGON_SUCCESS);
    const auto &lost = std::get<pr::NodeLost>(std::get<pr::Event>(in).body);
    EXPECT_EQ(lost.node_id, 2U);
    EXPECT_EQ(lost.host_name, "h2");
    EXPECT_EQ(lost.why, "gone");

    pr::Spawn s;
    s.program = "true";
    s.count = 3;
    s.group_first = 1;
    s.group_size = 7;
    s.group_stride = 3; // members 1, 4, 7? 7 is past the end
    pr::Request out;
    EXPECT_EQ(pr::decode(pr::encode(pr::Request{1, "", s}), &out), DRAGON_MALFORMED);
    EXPECT_NE(std::string(dragon_last_error()).find("group_stride"), std::string::npos);
    s.group_size = 8; // members 1, 4, 7
    EXPECT_EQ(round_trip(s).group_stride, 3U);
    json zero = envelope("spawn");
    zero["program"] = "true";
    zero["group_first"] = 0;
    zero["group_size"] = 2;
    zero["group_stride"] = 0;
    EXPECT_EQ(pr::decode(cbor(zero), &out), DRAGON_MALFORMED);
}

TEST(Protocol, LinkMessagesRoundTrip) {
    auto again = [](const pr::LinkMessage &m) {
        pr::LinkMessage out;
        EXPECT_EQ(pr::decode(pr::encode(m), &out), DRAGON_SUCCESS) << dragon_last_error();
        EXPECT_EQ(out.index(), m.index());
        return out;
    };
    pr::LinkBoot b;
    b.runtime_id = "r1";
    b.node_id = 2;
    b.hosts = {"h0", "h1", "h2"};
    b.launch = {"ssh", "-F", "cfg"};
    b.wlm = "ssh";
    b.node_exe = "/x/dragon-node";
    b.fanout = 2;
    b.label = true;
    b.boot_timeout_ms = 1234;
    b.env = {"DRAGON_RUNTIME_TOKEN=abc", "DRAGON_X=a=b"};
    auto gb = std::get<pr::LinkBoot>(again(b));
    EXPECT_EQ(gb.hosts, b.hosts);
    EXPECT_EQ(gb.launch, b.launch);
    EXPECT_EQ(gb.env, b.env);
    EXPECT_EQ(gb.node_id, 2U);
    EXPECT_EQ(gb.fanout, 2U);
    EXPECT_TRUE(gb.label);
    EXPECT_EQ(gb.boot_timeout_ms, 1234U);

    pr::NodeReply n;
    n.node_id = 5;
    n.host_name = "h5";
    EXPECT_EQ(std::get<pr::LinkJoined>(again(pr::LinkJoined{{n}})).nodes.at(0).host_name, "h5");
    EXPECT_EQ(std::get<pr::LinkBook>(again(pr::LinkBook{{n, n}})).nodes.size(), 2U);
    std::string inner = pr::encode(pr::Request{4, "", pr::Join{{1}, -1}});
    auto f = std::get<pr::LinkForward>(again(pr::LinkForward{2, 0, 77, false, inner}));
    EXPECT_EQ(f.to, 2U);
    EXPECT_EQ(f.tag, 77U);
    EXPECT_EQ(f.bytes, inner);
    EXPECT_EQ(std::get<pr::LinkOutput>(again(pr::LinkOutput{1, std::string("a\0b\n", 4)})).bytes,
              std::string("a\0b\n", 4));
    auto l = std::get<pr::LinkLost>(again(pr::LinkLost{3, "h3", "timeout", true}));
    EXPECT_TRUE(l.booting);
    EXPECT_EQ(l.host, "h3");
    EXPECT_TRUE(std::get<pr::LinkTeardown>(again(pr::LinkTeardown{true})).now);
}

TEST(Protocol, LinkMessageRules) {
    pr::LinkMessage out;
    auto boot = [] {
        json j = {{"v", pr::kVersion},   {"link", "boot"},   {"runtime_id", "r"}, {"node_id", 1},
                  {"hosts", {"a", "b"}}, {"node_exe", "/x"}, {"fanout", 2}};
        return j;
    };
    EXPECT_EQ(pr::decode(cbor(boot()), &out), DRAGON_SUCCESS) << dragon_last_error();
    json j = boot();
    j["node_id"] = 2; // beyond the hosts
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
    j = boot();
    j["fanout"] = 0;
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
    j = boot();
    j["env"] = {"NOEQUALS"};
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
    j = boot();
    j["names"] = {"only one"};
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
    j = boot();
    j.erase("node_exe");
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
    EXPECT_NE(std::string(dragon_last_error()).find("node_exe"), std::string::npos);
    j = {{"v", pr::kVersion}, {"link", "gossip"}};
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
    EXPECT_NE(std::string(dragon_last_error()).find("gossip"), std::string::npos);
    j = {{"v", pr::kVersion + 1}, {"link", "teardown"}};
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_VERSION_MISMATCH);
    j = {{"v", pr::kVersion}, {"link", "output"}, {"stream", 2}, {"bytes", json::binary({})}};
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
    j = {{"v", pr::kVersion}, {"link", "forward"}, {"to", pr::kMaxNodes},
         {"from", 0},         {"tag", 1},          {"bytes", json::binary({})}};
    EXPECT_EQ(pr::decode(cbor(j), &out), DRAGON_MALFORMED);
}
