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
    nlohmann::json body = {{"op", "spawn"},    {"id", 1},
                           {"program", "sh"},  {"args", {"-c", "true"}},
                           {"cwd", "/tmp"},    {"cpus", nlohmann::json::array({0})},
                           {"stdout", "pipe"}, {"stderr", "devnull"}};
    dp::SpawnRequest r;
    ASSERT_EQ(rt::parse_spawn(body, &r), DRAGON_SUCCESS) << dragon_last_error();
    EXPECT_EQ(r.program, "sh");
    EXPECT_EQ(r.args.size(), 2U);
    EXPECT_EQ(r.cwd, "/tmp");
    EXPECT_EQ(r.cpus.size(), 1U);
    EXPECT_EQ(r.out, dp::Stdio::kPipe);
    EXPECT_EQ(r.err, dp::Stdio::kDevNull);
    EXPECT_EQ(r.in, dp::Stdio::kInherit);

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
         }) {
        nlohmann::json b = body;
        b[mutate.first] = mutate.second;
        EXPECT_EQ(rt::parse_spawn(b, &r), DRAGON_BAD_DESCRIPTOR) << b.dump();
    }
    nlohmann::json nul = body;
    nul["program"] = std::string("a\0b", 3);
    EXPECT_EQ(rt::parse_spawn(nul, &r), DRAGON_BAD_DESCRIPTOR);
}

} // namespace
