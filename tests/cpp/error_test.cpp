// The per-thread error message: an error that wraps another reads each part once, however
// the wrapping is written (issue 12, bug 1), and a long message is cut, never overrun.
#include "common/error.hpp"

#include <dragon/dragon.h>

#include <gtest/gtest.h>

#include <string>

namespace {

using dragon::detail::fail;
using dragon::detail::wrap;

TEST(Error, WrappingPrefixesTheInnerMessageOnce) {
    EXPECT_EQ(fail(DRAGON_NOT_FOUND, "pool '%s': no segment", "p1"), DRAGON_NOT_FOUND);
    EXPECT_EQ(wrap(DRAGON_NOT_FOUND, "attach %s", "channel"), DRAGON_NOT_FOUND);
    EXPECT_STREQ(dragon_last_error(), "attach channel: pool 'p1': no segment");
    EXPECT_EQ(wrap(DRAGON_BAD_DESCRIPTOR, "object descriptor %d", 7), DRAGON_BAD_DESCRIPTOR);
    EXPECT_STREQ(dragon_last_error(), "object descriptor 7: attach channel: pool 'p1': no segment");
}

TEST(Error, QuotingTheCurrentMessageInAFormatIsSafe) {
    fail(DRAGON_NOT_FOUND, "inner %d", 42);
    fail(DRAGON_NOT_FOUND, "outer: %s", dragon_last_error());
    EXPECT_STREQ(dragon_last_error(), "outer: inner 42");
    wrap(DRAGON_NOT_FOUND, "ctx %s", dragon_last_error()); // even as wrap's own argument
    EXPECT_STREQ(dragon_last_error(), "ctx outer: inner 42: outer: inner 42");
}

TEST(Error, WrappingNothingNamesTheStatus) {
    fail(DRAGON_SUCCESS, "%s", "");
    wrap(DRAGON_TIMEOUT, "join");
    EXPECT_EQ(std::string(dragon_last_error()),
              std::string("join: ") + dragon_strerror(DRAGON_TIMEOUT));
}

TEST(Error, LongMessagesAreCutNotOverrun) {
    std::string inner(2000, 'x');
    fail(DRAGON_INTERNAL, "%s", inner.c_str());
    EXPECT_EQ(std::string(dragon_last_error()).size(), 1023U);
    wrap(DRAGON_INTERNAL, "context");
    std::string msg = dragon_last_error();
    EXPECT_EQ(msg.size(), 1023U);
    EXPECT_EQ(msg.rfind("context: xxx", 0), 0U);
}

} // namespace
