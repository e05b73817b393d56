#include "connection.hpp"

#include "../common/error.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
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
    return DRAGON_SUCCESS;
}

dragon_status_t Connection::call(json request, int wait_ms, json *reply,
                                 const std::vector<int> &send_fds, std::vector<int> *recv_fds) {
    request["id"] = 1;
    std::string bytes = encode(request);
    struct iovec iov = {bytes.data(), bytes.size()};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)] = {};
    if (send_fds.size() > 3) {
        return fail(DRAGON_INTERNAL, "node daemon: too many descriptors to pass");
    }
    if (!send_fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * send_fds.size());
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * send_fds.size());
        std::memcpy(CMSG_DATA(c), send_fds.data(), sizeof(int) * send_fds.size());
    }
    if (sendmsg(fd_, &msg, MSG_NOSIGNAL) < 0) {
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
    struct iovec riov = {buf.data(), buf.size()};
    struct msghdr rmsg {};
    rmsg.msg_iov = &riov;
    rmsg.msg_iovlen = 1;
    alignas(struct cmsghdr) char rcontrol[CMSG_SPACE(sizeof(int) * 3)];
    rmsg.msg_control = rcontrol;
    rmsg.msg_controllen = sizeof rcontrol;
    ssize_t n;
    do {
        n = recvmsg(fd_, &rmsg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    std::vector<int> got;
    if (n > 0) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&rmsg); c != nullptr; c = CMSG_NXTHDR(&rmsg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; ++i) {
                    int f = -1;
                    std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
                    got.push_back(f);
                }
            }
        }
    }
    if (recv_fds != nullptr) {
        *recv_fds = got;
    } else {
        std::for_each(got.begin(), got.end(), [](int f) { close(f); });
    }
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
    return DRAGON_SUCCESS;
}

int reply_wait_ms(dragon_timeout_t timeout) {
    // The daemon answers at the timeout; allow it some slack before giving up on it.
    return timeout < 0 ? -1
                       : static_cast<int>(std::min<int64_t>(timeout / 1000000 + kCallMs, INT_MAX));
}

} // namespace dragon::runtime
