// Unix sockets of the control plane: one message with descriptors passed along (SCM_RIGHTS),
// sent and received the same way by the node daemon, its clients and the launcher; and the
// check of who is at the other end.
#pragma once

#include <cstddef>
#include <string>
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
ssize_t recv_with_fds(int sock, char *buf, std::size_t cap, std::vector<int> *fds, bool *truncated,
                      int flags = 0);

// True when the peer of a connected Unix socket runs as this process's effective uid; else
// false with *why naming the path, the peer's uid and pid. Checked before anything is sent
// to a node daemon (docs/runtime.md, "Security model").
bool peer_is_owner(int sock, const std::string &path, std::string *why);

} // namespace dragon::runtime
