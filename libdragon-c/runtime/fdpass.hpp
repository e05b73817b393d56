// One control message with descriptors passed along (SCM_RIGHTS), on a Unix socket: the
// node daemon, its clients and the launcher send and receive them the same way.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace dragon::runtime {

constexpr std::size_t kMaxPassedFds = 8; // received beyond this, the message is truncated

// sendmsg with MSG_NOSIGNAL and `flags` (MSG_DONTWAIT); fds (at most kMaxPassedFds) go
// along. -1 with errno on failure.
ssize_t send_with_fds(int sock, std::string_view bytes, const std::vector<int> &fds, int flags = 0);

// recvmsg into buf; descriptors that came along are appended to *fds (close-on-exec), and
// *truncated tells whether the message or its descriptors did not fit. EINTR is retried.
ssize_t recv_with_fds(int sock, char *buf, std::size_t cap, std::vector<int> *fds, bool *truncated);

} // namespace dragon::runtime
