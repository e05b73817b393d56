#include "connection.hpp"

#include "fdpass.hpp"
#include "paths.hpp"

#include "../common/error.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace dragon::runtime {

using detail::fail;
using json = nlohmann::json;

Connection::~Connection() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

dragon_status_t Connection::open() {
    const char *path = std::getenv("DRAGON_NODE_SOCKET");
    if (path == nullptr || *path == '\0') {
        return fail(DRAGON_CLOSED, "not inside a dragon runtime: DRAGON_NODE_SOCKET is not set "
                                   "(start the program with `dragon`)");
    }
    struct sockaddr_un addr {};
    size_t len = std::strlen(path);
    if (len >= sizeof addr.sun_path) {
        return fail(DRAGON_INVALID_ARGUMENT, "DRAGON_NODE_SOCKET is too long");
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path, len + 1);
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) != 0) {
        return detail::fail_errno(DRAGON_CLOSED, errno, "cannot reach the node daemon at %s", path);
    }
    // Nothing goes to a daemon that is not ours (a swapped runtime directory, a forged
    // DRAGON_NODE_SOCKET): not a request, not a descriptor.
    if (std::string why; !peer_is_owner(fd_, path, &why)) {
        close(fd_);
        fd_ = -1;
        return fail(DRAGON_PERMISSION_DENIED, "%s", why.c_str());
    }
    return DRAGON_SUCCESS;
}

dragon_status_t Connection::call(json request, int wait_ms, json *reply,
                                 const std::vector<int> &send_fds, std::vector<int> *recv_fds) {
    request["id"] = 1;
    std::string bytes = encode(request);
    if (send_fds.size() > 3) {
        return fail(DRAGON_INTERNAL, "node daemon: too many descriptors to pass");
    }
    if (send_with_fds(fd_, bytes, send_fds) < 0) {
        if (errno == EMSGSIZE) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "node daemon: a request of %zu bytes is too large for its socket "
                        "(a huge environment or argument list?)",
                        bytes.size());
        }
        return detail::fail_errno(DRAGON_CLOSED, errno, "node daemon: send");
    }
    struct pollfd p = {fd_, POLLIN, 0};
    int rc;
    do {
        rc = poll(&p, 1, wait_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        return fail(DRAGON_TIMEOUT, "node daemon: no reply within %d ms", wait_ms);
    }
    std::string buf(kMaxMessage, '\0');
    std::vector<int> got;
    bool truncated = false;
    ssize_t n = recv_with_fds(fd_, buf.data(), buf.size(), &got, &truncated);
    // The descriptors are the caller's only with a successful reply.
    struct Owned {
        std::vector<int> *fds;
        std::vector<int> *to = nullptr;
        ~Owned() {
            if (to != nullptr) {
                *to = *fds;
            } else {
                std::for_each(fds->begin(), fds->end(), [](int f) { close(f); });
            }
        }
    } owned{&got};
    if (n <= 0) {
        return fail(DRAGON_CLOSED, "node daemon: connection closed");
    }
    buf.resize(static_cast<size_t>(n));
    *reply = json::parse(buf, nullptr, false);
    if (!reply->is_object() || !reply->contains("status") ||
        !(*reply)["status"].is_number_integer()) {
        return fail(DRAGON_CORRUPTED, "node daemon: malformed reply");
    }
    int st = (*reply)["status"].get<int>();
    if (st < 0 || st >= DRAGON_STATUS_COUNT_) {
        return fail(DRAGON_CORRUPTED, "node daemon: reply with status %d", st);
    }
    if (st != DRAGON_SUCCESS) {
        const auto *err = reply->contains("error") && (*reply)["error"].is_string()
                              ? &(*reply)["error"].get_ref<const std::string &>()
                              : nullptr;
        return fail(static_cast<dragon_status_t>(st), "%s",
                    err != nullptr ? err->c_str()
                                   : dragon_strerror(static_cast<dragon_status_t>(st)));
    }
    owned.to = recv_fds;
    return DRAGON_SUCCESS;
}

dragon_status_t request(json request, int wait_ms, json *reply, const std::vector<int> &send_fds,
                        std::vector<int> *recv_fds) {
    Connection c;
    if (dragon_status_t st = c.open(); st != DRAGON_SUCCESS) {
        return st;
    }
    return c.call(std::move(request), wait_ms, reply, send_fds, recv_fds);
}

int reply_wait_ms(dragon_timeout_t timeout) {
    // The daemon answers at the timeout; allow it some slack before giving up on it.
    return timeout < 0 ? -1
                       : static_cast<int>(std::min<int64_t>(timeout / 1000000 + kCallMs, INT_MAX));
}

} // namespace dragon::runtime
