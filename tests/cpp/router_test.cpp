// The node daemon's router: every request is decoded once and handed to the service that
// registered its op, or refused with a status of its own and a reason that says what was
// wrong. Requests are built here with nlohmann-json's CBOR writer, as any peer could send.
#include "node/router.hpp"

#include "protocol/codec.hpp"

#include <dragon/dragon.h>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

namespace pr = dragon::protocol;
using dragon::node::Call;
using dragon::node::ReceivedFds;
using dragon::node::Router;
using json = nlohmann::json;

std::string cbor(const json &j) {
    std::vector<uint8_t> v = json::to_cbor(j);
    return {v.begin(), v.end()};
}

struct Refusal {
    uint64_t id = 0;
    std::string op;
    dragon_status_t status = DRAGON_SUCCESS;
    std::string error;
};

// A router with one op ("status", no descriptors) and one that takes them ("spawn").
struct Fixture {
    std::vector<Refusal> refused;
    std::vector<uint64_t> served; // ids handed to the status handler
    std::vector<int> taken;       // descriptors the spawn handler took
    Router router{[this](const Call &c, dragon_status_t st, const std::string &why) {
        refused.push_back({c.id, c.op, st, why});
    }};
    Fixture() {
        router.add("status", [this](const Call &c, pr::Request &req, ReceivedFds &) {
            EXPECT_EQ(c.op, "status");
            EXPECT_NE(std::get_if<pr::Status>(&req.body), nullptr);
            served.push_back(c.id);
        });
        router.add(
            "spawn",
            [this](const Call &, pr::Request &, ReceivedFds &fds) { taken.push_back(fds.take()); },
            true);
    }
    void route(const std::string &bytes, std::vector<int> fds = {}, bool truncated = false) {
        ReceivedFds received;
        received.raw() = std::move(fds);
        Call c;
        c.client = 1;
        c.pid = getpid();
        router.route(c, bytes, truncated, received);
    }
    const Refusal &only_refusal() const {
        EXPECT_EQ(refused.size(), 1U);
        EXPECT_TRUE(served.empty());
        static const Refusal none;
        return refused.empty() ? none : refused.back();
    }
};

// A descriptor whose being open or closed can be checked.
int fresh_fd() {
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    close(p[1]);
    return p[0];
}

bool is_open(int fd) {
    return fcntl(fd, F_GETFD) != -1;
}

TEST(Router, AWellFormedRequestReachesItsServiceWithItsId) {
    Fixture f;
    f.route(pr::encode(pr::Request{41, "", pr::Status{{1, 2}}}));
    ASSERT_TRUE(f.refused.empty()) << f.refused[0].error;
    EXPECT_EQ(f.served, std::vector<uint64_t>{41});
    EXPECT_TRUE(f.router.serves("status"));
    EXPECT_FALSE(f.router.serves("pmix_fence"));
}

TEST(Router, AnUnknownOpIsNotSupportedAndNamed) {
    Fixture f;
    f.route(cbor({{"v", pr::kVersion}, {"op", "pmix_fence"}, {"id", 7}}));
    const Refusal &r = f.only_refusal();
    EXPECT_EQ(r.status, DRAGON_NOT_SUPPORTED);
    EXPECT_EQ(r.id, 7U); // answered on the right request
    EXPECT_NE(r.error.find("pmix_fence"), std::string::npos) << r.error;

    // An op this build knows but that no service registered: the same answer.
    Fixture g;
    g.route(pr::encode(pr::Request{8, "", pr::NodeQuery{}}));
    EXPECT_EQ(g.only_refusal().status, DRAGON_NOT_SUPPORTED);
    EXPECT_NE(g.only_refusal().error.find("node"), std::string::npos);
}

TEST(Router, AnotherVersionIsAMismatchNamingBoth) {
    Fixture f;
    f.route(cbor({{"v", pr::kVersion + 1}, {"op", "status"}, {"id", 9}, {"puids", {1}}}));
    const Refusal &r = f.only_refusal();
    EXPECT_EQ(r.status, DRAGON_VERSION_MISMATCH);
    EXPECT_EQ(r.id, 9U);
    EXPECT_NE(r.error.find(std::to_string(pr::kVersion + 1)), std::string::npos) << r.error;
    EXPECT_NE(r.error.find(std::to_string(pr::kVersion)), std::string::npos) << r.error;

    // Version 1 spoke JSON: named as such.
    Fixture g;
    g.route(R"({"op":"status","id":1,"puids":[1]})");
    EXPECT_EQ(g.only_refusal().status, DRAGON_VERSION_MISMATCH);
    EXPECT_NE(g.only_refusal().error.find("version 1"), std::string::npos)
        << g.only_refusal().error;
}

TEST(Router, MalformedMessagesAreMalformedWithAReason) {
    struct Case {
        std::string bytes;
        const char *says; // a word the reason must contain
    };
    std::vector<Case> cases = {
        {std::string("\xff\xfe\x00", 3), "CBOR"},
        {cbor(json::array({1, 2})), "map"},
        {cbor({{"v", pr::kVersion}, {"id", 3}}), "op"},
        {cbor({{"v", pr::kVersion}, {"op", "status"}, {"id", 3}, {"puids", "x"}}), "puids"},
        {cbor({{"v", pr::kVersion}, {"op", "status"}, {"id", -3}, {"puids", {1}}}), "\"id\""},
        {std::string(), "CBOR"},
    };
    std::string cut = cbor({{"v", pr::kVersion}, {"op", "status"}, {"id", 3}, {"puids", {1}}});
    cut.pop_back();
    cases.push_back({cut, "well-formed"});
    for (const Case &c : cases) {
        Fixture f;
        f.route(c.bytes);
        const Refusal &r = f.only_refusal();
        EXPECT_EQ(r.status, DRAGON_MALFORMED) << c.says;
        EXPECT_NE(r.error.find(c.says), std::string::npos) << "reason: " << r.error;
    }
}

TEST(Router, DescriptorsGoOnlyWithOpsThatTakeThemAndAreNeverLeaked) {
    Fixture f;
    int fd = fresh_fd();
    f.route(pr::encode(pr::Request{5, "", pr::Status{{1}}}), {fd});
    EXPECT_EQ(f.only_refusal().status, DRAGON_BAD_DESCRIPTOR);
    EXPECT_EQ(f.only_refusal().id, 5U);
    EXPECT_FALSE(is_open(fd)) << "a refused request's descriptor stays open";

    // A truncated message (cut by the socket) is refused before it is read.
    Fixture t;
    int fd2 = fresh_fd();
    t.route(pr::encode(pr::Request{6, "", pr::Status{{1}}}), {fd2}, true);
    EXPECT_EQ(t.only_refusal().status, DRAGON_BAD_DESCRIPTOR);
    EXPECT_FALSE(is_open(fd2));

    // An op that takes descriptors gets them; what it did not take is closed after it.
    Fixture s;
    int a = fresh_fd();
    int b = fresh_fd();
    pr::Spawn sp;
    sp.program = "true";
    sp.streams[0] = pr::Stream::kFd;
    sp.streams[1] = pr::Stream::kFd;
    s.route(pr::encode(pr::Request{7, "", sp}), {a, b});
    ASSERT_TRUE(s.refused.empty()) << s.refused[0].error;
    ASSERT_EQ(s.taken, std::vector<int>{a});
    EXPECT_TRUE(is_open(a));
    EXPECT_FALSE(is_open(b));
    close(a);
}

} // namespace
