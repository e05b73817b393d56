// Links between node daemons (node/link.hpp, docs/multinode.md): framed messages over a
// pipe pair on the reactor. Everything sent arrives whole and in order however the bytes
// are cut; a frame over the limit, a malformed message and the end of the stream close the
// link with a reason, once; reading can pause and resume without losing what was read.
#include "node/link.hpp"
#include "node/reactor.hpp"
#include "protocol/codec.hpp"

#include <dragon/dragon.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

namespace pr = dragon::protocol;
using dragon::node::Link;
using dragon::node::Reactor;

// Run rounds until done() or 5 s.
template <typename Done>
bool run_until(Reactor &r, Done done) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < until) {
        r.run_once(10);
    }
    return done();
}

std::string frame(const std::string &bytes) {
    auto n = static_cast<uint32_t>(bytes.size());
    return std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)} +
           bytes;
}

struct Pair {
    int a_to_b[2] = {-1, -1};
    int b_to_a[2] = {-1, -1};
    Pair() {
        EXPECT_EQ(pipe2(a_to_b, O_CLOEXEC), 0);
        EXPECT_EQ(pipe2(b_to_a, O_CLOEXEC), 0);
    }
};

TEST(Link, MessagesArriveWholeAndInOrder) {
    Reactor r;
    Pair p;
    std::vector<pr::LinkMessage> got;
    int closed = 0;
    Link a(
        r, p.b_to_a[0], p.a_to_b[1], [](pr::LinkMessage &) {}, [&](const std::string &) {});
    Link b(
        r, p.a_to_b[0], p.b_to_a[1], [&](pr::LinkMessage &m) { got.push_back(m); },
        [&](const std::string &) { ++closed; });
    std::string big(1 << 20, 'x'); // the largest output a message carries
    for (int i = 0; i < 100; ++i) {
        a.send(pr::LinkOutput{static_cast<uint32_t>(i % 2), std::to_string(i)});
    }
    a.send(pr::LinkOutput{0, big});
    a.send(pr::LinkTeardown{true});
    ASSERT_TRUE(run_until(r, [&] { return got.size() == 102; })) << got.size();
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(std::get<pr::LinkOutput>(got[i]).bytes, std::to_string(i));
    }
    EXPECT_EQ(std::get<pr::LinkOutput>(got[100]).bytes.size(), big.size());
    EXPECT_TRUE(std::get<pr::LinkTeardown>(got[101]).now);
    EXPECT_EQ(a.queued(), 0U);
    EXPECT_EQ(closed, 0);
}

TEST(Link, BytesCutAnywhereMakeTheSameMessages) {
    Reactor r;
    int raw[2];
    int back[2];
    ASSERT_EQ(pipe2(raw, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(back, O_CLOEXEC), 0);
    std::vector<std::string> got;
    Link b(
        r, raw[0], back[1],
        [&](pr::LinkMessage &m) { got.push_back(std::get<pr::LinkOutput>(m).bytes); },
        [](const std::string &) {});
    std::string bytes = frame(pr::encode(pr::LinkMessage{pr::LinkOutput{0, "one\n"}})) +
                        frame(pr::encode(pr::LinkMessage{pr::LinkOutput{1, "two\n"}}));
    for (char c : bytes) { // one byte at a time, a round between each
        ASSERT_EQ(write(raw[1], &c, 1), 1);
        r.run_once(0);
    }
    ASSERT_TRUE(run_until(r, [&] { return got.size() == 2; }));
    EXPECT_EQ(got, (std::vector<std::string>{"one\n", "two\n"}));
    close(raw[1]);
    close(back[0]);
}

// What closes a link, and the reason it gives.
std::string closed_by(const std::string &bytes, bool end = false) {
    Reactor r;
    int raw[2];
    int back[2];
    EXPECT_EQ(pipe2(raw, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(back, O_CLOEXEC), 0);
    std::string why;
    int closes = 0;
    int messages = 0;
    Link b(
        r, raw[0], back[1], [&](pr::LinkMessage &) { ++messages; },
        [&](const std::string &w) {
            why = w;
            ++closes;
        });
    EXPECT_EQ(write(raw[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    if (end) {
        close(raw[1]);
        raw[1] = -1;
    }
    run_until(r, [&] { return closes > 0; });
    r.run_once(10);
    EXPECT_EQ(closes, 1);
    EXPECT_TRUE(b.closed());
    EXPECT_EQ(messages, 0);
    b.send(pr::LinkTeardown{}); // dropped, no crash
    if (raw[1] >= 0) {
        close(raw[1]);
    }
    close(back[0]);
    return why;
}

TEST(Link, ClosesWithAReason) {
    EXPECT_NE(closed_by(std::string("\x7f\xff\xff\xff", 4)).find("a frame of"), std::string::npos);
    EXPECT_NE(closed_by(frame("not cbor at all")).find("malformed"), std::string::npos);
    EXPECT_NE(closed_by(frame(pr::encode(pr::LinkMessage{pr::LinkTeardown{}})).substr(0, 6), true)
                  .find("end of its stream"),
              std::string::npos);
}

TEST(Link, PausedReadingKeepsWhatWasRead) {
    Reactor r;
    Pair p;
    std::vector<std::string> got;
    Link a(
        r, p.b_to_a[0], p.a_to_b[1], [](pr::LinkMessage &) {}, [](const std::string &) {});
    Link *bp = nullptr;
    Link b(
        r, p.a_to_b[0], p.b_to_a[1],
        [&](pr::LinkMessage &m) {
            got.push_back(std::get<pr::LinkOutput>(m).bytes);
            bp->pause_reading(true); // after each message
        },
        [](const std::string &) {});
    bp = &b;
    for (int i = 0; i < 5; ++i) {
        a.send(pr::LinkOutput{0, std::to_string(i)});
    }
    ASSERT_TRUE(run_until(r, [&] { return !got.empty(); }));
    for (int i = 0; i < 10; ++i) {
        r.run_once(5);
    }
    EXPECT_EQ(got.size(), 1U); // paused: nothing more, though all five were read together
    for (size_t want = 2; want <= 5; ++want) {
        b.pause_reading(false);
        ASSERT_TRUE(run_until(r, [&] { return got.size() == want; })) << got.size();
    }
    EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

TEST(Link, BootMessageReadWithATimeout) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    pr::LinkMessage m;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(dragon::node::read_link_message(p[0], 100, &m), DRAGON_TIMEOUT);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
    std::string f = frame(pr::encode(pr::LinkMessage{pr::LinkTeardown{true}}));
    ASSERT_EQ(write(p[1], f.data(), f.size()), static_cast<ssize_t>(f.size()));
    ASSERT_EQ(dragon::node::read_link_message(p[0], 1000, &m), DRAGON_SUCCESS);
    EXPECT_TRUE(std::get<pr::LinkTeardown>(m).now);
    ASSERT_EQ(write(p[1], f.data(), 3), 3); // half a head, then the end
    close(p[1]);
    EXPECT_EQ(dragon::node::read_link_message(p[0], 1000, &m), DRAGON_CLOSED);
    close(p[0]);
}

} // namespace
