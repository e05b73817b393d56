// The node daemon's control messages: envelope validation and spawn requests.
#include "runtime/protocol.hpp"

#include <dragon/dragon.h>

#include <gtest/gtest.h>

#include <string>

namespace {

namespace rt = dragon::runtime;
namespace dp = dragon::proc;

TEST(Protocol, EnvelopeRoundTrip) {
    nlohmann::json m = {{"op", "spawn"}, {"id", 7}, {"program", "/bin/true"}};
    rt::Message got;
    ASSERT_EQ(rt::decode(rt::encode(m), &got), DRAGON_SUCCESS) << dragon_last_error();
    EXPECT_EQ(got.op, "spawn");
    EXPECT_EQ(got.id, 7U);
    EXPECT_EQ(got.body["program"], "/bin/true");
}

TEST(Protocol, BadEnvelopesAreRefusedWithAReason) {
    rt::Message m;
    for (const char *bad : {"", "nonsense", "[1,2]", "{\"id\":1}", "{\"op\":\"spawn\"}",
                            "{\"op\":\"Spawn!\",\"id\":1}", "{\"op\":\"spawn\",\"id\":-1}",
                            "{\"op\":\"spawn\",\"id\":\"1\"}", "{\"op\":7,\"id\":1}"}) {
        EXPECT_EQ(rt::decode(bad, &m), DRAGON_BAD_DESCRIPTOR) << bad;
        EXPECT_STRNE(dragon_last_error(), "") << bad;
    }
    std::string deep(1000, '[');
    EXPECT_EQ(rt::decode(deep, &m), DRAGON_BAD_DESCRIPTOR);
    EXPECT_NE(std::string(dragon_last_error()).find("nested"), std::string::npos);
    std::string huge =
        "{\"op\":\"x\",\"id\":1,\"pad\":\"" + std::string(rt::kMaxMessage, 'a') + "\"}";
    EXPECT_EQ(rt::decode(huge, &m), DRAGON_BAD_DESCRIPTOR);
    // Brackets inside strings do not count as nesting.
    std::string quoted = "{\"op\":\"x\",\"id\":1,\"s\":\"" + std::string(100, '[') + "\"}";
    EXPECT_EQ(rt::decode(quoted, &m), DRAGON_SUCCESS) << dragon_last_error();
}

TEST(Protocol, SpawnRequests) {
    nlohmann::json body = {{"op", "spawn"},     {"id", 1},
                           {"program", "sh"},   {"args", {"-c", "true"}},
                           {"cwd", "/tmp"},     {"cpus", nlohmann::json::array({0})},
                           {"stdout", "relay"}, {"stderr", "devnull"}};
    rt::SpawnSpec spec;
    ASSERT_EQ(rt::parse_spawn(body, &spec), DRAGON_SUCCESS) << dragon_last_error();
    const dp::SpawnRequest &r = spec.req;
    EXPECT_EQ(r.program, "sh");
    EXPECT_EQ(r.args.size(), 2U);
    EXPECT_EQ(r.cwd, "/tmp");
    EXPECT_EQ(r.cpus.size(), 1U);
    EXPECT_EQ(r.out, dp::Stdio::kPipe);
    EXPECT_EQ(r.err, dp::Stdio::kDevNull);
    EXPECT_EQ(r.in, dp::Stdio::kDevNull); // stdin defaults to /dev/null
    EXPECT_EQ(spec.streams[1], rt::Stream::kRelay);
    EXPECT_EQ(spec.count, 1U);
    EXPECT_EQ(spec.max_restarts, 0U);
    EXPECT_EQ(spec.fds_expected(), 0);

    nlohmann::json more = body;
    more["stdin"] = "fd";
    more["stderr"] = "fd";
    more["count"] = 64;
    more["restart"] = 3;
    more["host_name"] = "n1";
    more["host_id"] = 0;
    ASSERT_EQ(rt::parse_spawn(more, &spec), DRAGON_SUCCESS) << dragon_last_error();
    EXPECT_EQ(spec.fds_expected(), 2);
    EXPECT_EQ(spec.req.in, dp::Stdio::kFd);
    EXPECT_EQ(spec.count, 64U);
    EXPECT_EQ(spec.max_restarts, 3U);
    EXPECT_EQ(spec.host_name, "n1");
    EXPECT_EQ(spec.host_id, 0);

    for (const auto &mutate : std::vector<std::pair<const char *, nlohmann::json>>{
             {"program", ""},
             {"program", 5},
             {"args", "not an array"},
             {"args", {1, 2}},
             {"env", {"A=1", nullptr}},
             {"cwd", 3},
             {"cpus", nlohmann::json::array({-1})},
             {"cpus", nlohmann::json::array({"0"})},
             {"stdout", "file"},
             {"stdin", "relay"},
             {"count", 0},
             {"count", rt::kMaxSpawnCount + 1},
             {"count", -1},
             {"restart", "yes"},
             {"host_id", -2},
             {"host_name", 7},
         }) {
        nlohmann::json b = body;
        b[mutate.first] = mutate.second;
        EXPECT_EQ(rt::parse_spawn(b, &spec), DRAGON_BAD_DESCRIPTOR) << b.dump();
        EXPECT_STRNE(dragon_last_error(), "");
    }
    // A pipe back to the requester is for one process that is not restarted.
    for (const auto &[key, value] :
         std::vector<std::pair<const char *, int>>{{"count", 2}, {"restart", 1}}) {
        nlohmann::json b = body;
        b["stdout"] = "pipe";
        b[key] = value;
        EXPECT_EQ(rt::parse_spawn(b, &spec), DRAGON_BAD_DESCRIPTOR) << b.dump();
    }
    nlohmann::json nul = body;
    nul["program"] = std::string("a\0b", 3);
    EXPECT_EQ(rt::parse_spawn(nul, &spec), DRAGON_BAD_DESCRIPTOR);
}

TEST(Protocol, ProcessIds) {
    std::vector<uint64_t> puids;
    ASSERT_EQ(rt::parse_puids({{"puid", 5}}, &puids), DRAGON_SUCCESS);
    EXPECT_EQ(puids, std::vector<uint64_t>{5});
    ASSERT_EQ(rt::parse_puids({{"puids", {1, 2, 3}}}, &puids), DRAGON_SUCCESS);
    EXPECT_EQ(puids.size(), 3U);
    for (const nlohmann::json &bad :
         {nlohmann::json::object(), nlohmann::json{{"puid", -1}}, nlohmann::json{{"puid", "1"}},
          nlohmann::json{{"puids", nlohmann::json::array()}}, nlohmann::json{{"puids", {1, -1}}},
          nlohmann::json{{"puids", 3}}}) {
        EXPECT_EQ(rt::parse_puids(bad, &puids), DRAGON_BAD_DESCRIPTOR) << bad.dump();
    }
}

TEST(Protocol, RegistryNamesAndValues) {
    std::string name;
    EXPECT_EQ(rt::parse_name({{"name", "pool:results/0"}}, &name), DRAGON_SUCCESS);
    EXPECT_EQ(name, "pool:results/0");
    EXPECT_EQ(rt::parse_name({{"name", ""}}, &name), DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(rt::parse_name({{"name", "a b"}}, &name), DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(rt::parse_name({{"name", std::string(256, 'x')}}, &name), DRAGON_INVALID_ARGUMENT);
    EXPECT_EQ(rt::parse_name({{"name", 3}}, &name), DRAGON_BAD_DESCRIPTOR);
    EXPECT_EQ(rt::parse_name(nlohmann::json::object(), &name), DRAGON_BAD_DESCRIPTOR);

    std::string bytes("\x00\x01\xfe\xff dragon", 10);
    std::string hex = rt::hex_encode(bytes.data(), bytes.size());
    EXPECT_EQ(hex.substr(0, 8), "0001feff");
    std::string back;
    ASSERT_EQ(rt::hex_decode(hex, &back), DRAGON_SUCCESS);
    EXPECT_EQ(back, bytes);
    EXPECT_EQ(rt::hex_decode("abc", &back), DRAGON_BAD_DESCRIPTOR);
    EXPECT_EQ(rt::hex_decode("zz", &back), DRAGON_BAD_DESCRIPTOR);
    EXPECT_EQ(rt::hex_decode("AB", &back), DRAGON_BAD_DESCRIPTOR); // lowercase only
}

} // namespace
