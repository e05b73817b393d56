#include "socket.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace dragon::runtime {

ssize_t send_with_fds(int sock, std::string_view bytes, const std::vector<int> &fds, int flags) {
    if (fds.size() > kMaxPassedFds) {
        errno = EINVAL;
        return -1;
    }
    struct iovec iov = {const_cast<char *>(bytes.data()), bytes.size()};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
}

ssize_t recv_with_fds(int sock, char *buf, std::size_t cap, std::vector<int> *fds, bool *truncated,
                      int flags) {
    struct iovec iov = {buf, cap};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR);
    *truncated = n >= 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    if (n < 0) {
        return n;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < k; ++i) {
                int f = -1;
                std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
                fds->push_back(f);
            }
        }
    }
    return n;
}

bool peer_is_owner(int sock, const std::string &path, std::string *why) {
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        *why = "cannot tell who runs the node daemon at " + path + ": " + std::strerror(errno);
        return false;
    }
    if (cred.uid != geteuid()) {
        *why = "the node daemon at " + path + " runs as uid " + std::to_string(cred.uid) +
               " (pid " + std::to_string(cred.pid) + "), not as you (uid " +
               std::to_string(geteuid()) + "): refusing to talk to it";
        return false;
    }
    return true;
}

} // namespace dragon::runtime
