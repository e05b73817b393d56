// LineRelay: whole lines out, one call each, whatever the read boundaries.
#include "runtime/line_relay.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using dragon::runtime::LineRelay;

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
    EXPECT_EQ(relay({"no newline at the end"}), (V{"no newline at the end\n"}));
    EXPECT_EQ(relay({}), V{});
}

TEST(LineRelay, OverlongLinesAreSplitNotLost) {
    using V = std::vector<std::string>;
    EXPECT_EQ(relay({"abcdefgh\n"}, 4), (V{"abcd\n", "efgh\n"}));
    EXPECT_EQ(relay({"ab", "cdef", "g\nxy"}, 4), (V{"abcd\n", "efg\n", "xy\n"}));
    // Every byte arrives exactly once, in order.
    std::string big(100000, 'z');
    big += "\n";
    auto lines = relay({big.substr(0, 333), big.substr(333)}, 4096);
    std::string joined;
    for (const auto &l : lines) {
        ASSERT_LE(l.size(), 4097U);
        ASSERT_EQ(l.back(), '\n');
        joined += l.substr(0, l.size() - 1);
    }
    EXPECT_EQ(joined, std::string(100000, 'z'));
}

} // namespace
