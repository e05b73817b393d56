// The DDict's key hash and manager choice against the test vectors of
// tests/data/ddict/hash-vectors.txt (computed from docs/ddict.md by another implementation).
#include "ddict/hash.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dd = dragon::ddict;

namespace {

std::vector<unsigned char> from_hex(const std::string &h) {
    std::vector<unsigned char> out;
    if (h == "-") {
        return out;
    }
    for (size_t i = 0; i + 1 < h.size(); i += 2) {
        out.push_back(static_cast<unsigned char>(std::stoul(h.substr(i, 2), nullptr, 16)));
    }
    return out;
}

} // namespace

TEST(DDictHash, Fnv1aHasItsPublishedValues) {
    EXPECT_EQ(dd::fnv1a64("", 0), 0xcbf29ce484222325ULL);
    EXPECT_EQ(dd::fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
}

TEST(DDictHash, MatchesTheTestVectors) {
    const char *dir = std::getenv("DRAGON_DDICT_DATA");
    ASSERT_NE(dir, nullptr) << "DRAGON_DDICT_DATA is not set";
    std::ifstream f(std::string(dir) + "/hash-vectors.txt");
    ASSERT_TRUE(f.good());
    int checked = 0;
    for (std::string line; std::getline(f, line);) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream in(line);
        std::string key_hex, fnv_hex, mix_hex;
        in >> key_hex >> fnv_hex >> mix_hex;
        auto key = from_hex(key_hex);
        uint64_t fnv = std::stoull(fnv_hex, nullptr, 16);
        uint64_t mix = std::stoull(mix_hex, nullptr, 16);
        EXPECT_EQ(dd::fnv1a64(key.data(), key.size()), fnv) << line;
        EXPECT_EQ(dd::key_hash(key.data(), key.size()), mix) << line;
        for (uint32_t n : {1u, 2u, 3u, 7u, 64u}) {
            uint32_t want = 0;
            in >> want;
            EXPECT_EQ(dd::manager_of(key.data(), key.size(), n), want) << line << " n=" << n;
        }
        ++checked;
    }
    EXPECT_GE(checked, 10);
}

TEST(DDictHash, SpreadsKeysEvenlyOverManagers) {
    // 10,000 keys "key<i>" over 64 managers: each gets within 40% of the mean (156).
    std::vector<int> count(64, 0);
    for (int i = 0; i < 10000; ++i) {
        std::string k = "key" + std::to_string(i);
        ++count[dd::manager_of(k.data(), k.size(), 64)];
    }
    for (int n : count) {
        EXPECT_GT(n, 94);
        EXPECT_LT(n, 219);
    }
}
