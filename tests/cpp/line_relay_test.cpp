// LineRelay: whole lines out, one call each, whatever the read boundaries; byte-exact.
#include "node/line_relay.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using dragon::node::LineRelay;

std::vector<std::string> relay(const std::vector<std::string> &chunks, std::size_t max = 65536) {
    std::vector<std::string> out;
    LineRelay r([&](std::string_view l) { out.emplace_back(l); }, max);
    for (const auto &c : chunks) {
        r.feed(c);
    }
    r.finish();
    return out;
}

TEST(LineRelay, CutsAtNewlinesWhateverTheChunks) {
    using V = std::vector<std::string>;
    EXPECT_EQ(relay({"a\nb\n"}), (V{"a\n", "b\n"}));
    EXPECT_EQ(relay({"he", "llo\nwor", "ld\n"}), (V{"hello\n", "world\n"}));
    EXPECT_EQ(relay({"\n\n"}), (V{"\n", "\n"}));
    EXPECT_EQ(relay({"no newline at the end"}), (V{"no newline at the end"}));
    EXPECT_EQ(relay({"x"}), (V{"x"})); // `printf x`: nothing added
    EXPECT_EQ(relay({"a\nb", "c"}), (V{"a\n", "bc"}));
    EXPECT_EQ(relay({}), V{});
}

std::string joined(const std::vector<std::string> &chunks) {
    std::string all;
    for (const auto &c : chunks) {
        all += c;
    }
    return all;
}

TEST(LineRelay, OverlongLinesGoOutInChunksWithNothingAdded) {
    using V = std::vector<std::string>;
    EXPECT_EQ(relay({"abcdefgh\n"}, 4), (V{"abcd", "efgh\n"}));
    EXPECT_EQ(relay({"abc\n"}, 4), (V{"abc\n"}));
    EXPECT_EQ(relay({"ab", "cdef", "g\nxy"}, 4), (V{"abcd", "efg\n", "xy"}));
    // Every byte arrives exactly once, in order, in chunks of at most max_line bytes (a newline may
    // follow).
    std::string big(100000, 'z');
    big += "\n";
    auto chunks = relay({big.substr(0, 333), big.substr(333)}, 4096);
    for (const auto &c : chunks) {
        ASSERT_LE(c.size(), 4097U);
    }
    EXPECT_EQ(joined(chunks), big);
}

TEST(LineRelay, BinaryDataIsByteExact) {
    // Any bytes (NULs, no newlines for long stretches), fed in odd chunk sizes.
    std::string data;
    uint32_t x = 12345;
    for (int i = 0; i < 300000; ++i) {
        x = x * 1103515245U + 12345U;
        data.push_back(static_cast<char>(x >> 24));
    }
    std::vector<std::string> in;
    for (std::size_t at = 0, step = 1; at < data.size(); at += step, step = step * 7 % 65537 + 1) {
        in.push_back(data.substr(at, step));
    }
    EXPECT_EQ(joined(relay(in, 1000)), data);
    EXPECT_EQ(joined(relay({std::string(10 << 20, 'q')})), std::string(10 << 20, 'q'));
}

} // namespace
