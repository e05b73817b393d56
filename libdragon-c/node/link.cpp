#include "link.hpp"

#include "../common/error.hpp"
#include "../protocol/codec.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace dragon::node {

namespace pr = dragon::protocol;

namespace {

constexpr std::size_t kHead = 4;

uint32_t frame_length(const char *p) {
    auto b = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void put_length(std::string *out, uint32_t n) {
    char h[kHead] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
    out->append(h, kHead);
}

} // namespace

Link::Link(Reactor &reactor, int in_fd, int out_fd, OnMessage on_message, OnClosed on_closed)
    : reactor_(reactor), in_fd_(in_fd), out_fd_(out_fd), on_message_(std::move(on_message)),
      on_closed_(std::move(on_closed)) {
    for (int fd : {in_fd_, out_fd_}) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    update_watches();
}

Link::~Link() {
    close();
}

void Link::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    reactor_.unwatch(in_watch_);
    reactor_.unwatch(out_watch_);
    in_watch_ = out_watch_ = 0;
    ::close(in_fd_);
    if (out_fd_ != in_fd_) {
        ::close(out_fd_);
    }
    in_fd_ = out_fd_ = -1;
    out_buf_.clear();
    out_head_ = 0;
}

void Link::update_watches() {
    if (closed_) {
        return;
    }
    bool want_in = !paused_;
    if (want_in != (in_watch_ != 0)) {
        if (want_in) {
            in_watch_ = reactor_.watch(in_fd_, EPOLLIN, [this](uint32_t) { readable(); });
        } else {
            reactor_.unwatch(in_watch_);
            in_watch_ = 0;
        }
    }
    bool want_out = queued() > 0;
    if (want_out != (out_watch_ != 0)) {
        if (want_out) {
            out_watch_ = reactor_.watch(out_fd_, EPOLLOUT, [this](uint32_t) { write_some(); });
        } else {
            reactor_.unwatch(out_watch_);
            out_watch_ = 0;
        }
    }
}

void Link::pause_reading(bool paused) {
    if (paused == paused_) {
        return;
    }
    paused_ = paused;
    update_watches();
    if (!paused_) {
        process(); // what was read before the pause
    }
}

void Link::send(const pr::LinkMessage &message) {
    if (closed_) {
        return;
    }
    std::string bytes = pr::encode(message);
    if (out_head_ > 0 && out_head_ >= out_buf_.size() / 2) {
        out_buf_.erase(0, out_head_);
        out_head_ = 0;
    }
    put_length(&out_buf_, static_cast<uint32_t>(bytes.size()));
    out_buf_ += bytes;
    write_some();
}

void Link::write_some() {
    while (!closed_ && queued() > 0) {
        ssize_t n = write(out_fd_, out_buf_.data() + out_head_, queued());
        if (n > 0) {
            out_head_ += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN) {
            closed_by_peer(std::string("write: ") + std::strerror(errno));
            return;
        }
        break;
    }
    if (!closed_ && queued() == 0) {
        out_buf_.clear();
        out_head_ = 0;
    }
    update_watches();
}

void Link::readable() {
    char buf[65536];
    ssize_t n = read(in_fd_, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        closed_by_peer(n == 0 ? "end of its stream" : std::string("read: ") + std::strerror(errno));
        return;
    }
    in_buf_.append(buf, static_cast<std::size_t>(n));
    process();
}

// Hand on the whole messages read so far (until reading is paused).
void Link::process() {
    std::size_t at = 0;
    while (!closed_ && !paused_ && in_buf_.size() - at >= kHead) {
        uint32_t len = frame_length(in_buf_.data() + at);
        if (len > pr::kMaxLinkMessage) {
            closed_by_peer("a frame of " + std::to_string(len) + " bytes (at most " +
                           std::to_string(pr::kMaxLinkMessage) + ")");
            return;
        }
        if (in_buf_.size() - at - kHead < len) {
            break;
        }
        pr::LinkMessage m;
        if (pr::decode(std::string_view(in_buf_).substr(at + kHead, len), &m) != DRAGON_SUCCESS) {
            closed_by_peer(std::string("a malformed message: ") + dragon_last_error());
            return;
        }
        at += kHead + len;
        on_message_(m);
    }
    if (!closed_) {
        in_buf_.erase(0, at);
    }
}

void Link::closed_by_peer(const std::string &why) {
    if (closed_) {
        return;
    }
    close();
    if (on_closed_) {
        on_closed_(why);
    }
}

dragon_status_t read_link_message(int fd, int timeout_ms, pr::LinkMessage *out) {
    struct timespec start {};
    clock_gettime(CLOCK_MONOTONIC, &start);
    auto left_ms = [&]() {
        struct timespec now {};
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t spent =
            (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        return static_cast<int>(std::max<int64_t>(0, timeout_ms - spent));
    };
    auto read_exact = [&](char *p, std::size_t n) -> dragon_status_t {
        while (n > 0) {
            struct pollfd pf = {fd, POLLIN, 0};
            int rc = poll(&pf, 1, left_ms());
            if (rc < 0 && errno == EINTR) {
                continue;
            }
            if (rc <= 0) {
                return detail::fail(DRAGON_TIMEOUT, "link: no message within %d ms", timeout_ms);
            }
            ssize_t got = read(fd, p, n);
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            if (got <= 0) {
                return detail::fail(DRAGON_CLOSED, "link: the stream ended");
            }
            p += got;
            n -= static_cast<std::size_t>(got);
        }
        return DRAGON_SUCCESS;
    };
    char head[kHead];
    if (dragon_status_t st = read_exact(head, kHead); st != DRAGON_SUCCESS) {
        return st;
    }
    uint32_t len = frame_length(head);
    if (len > pr::kMaxLinkMessage) {
        return detail::fail(DRAGON_MALFORMED, "link: a frame of %u bytes", len);
    }
    std::string body(len, '\0');
    if (dragon_status_t st = read_exact(body.data(), len); st != DRAGON_SUCCESS) {
        return st;
    }
    return pr::decode(body, out);
}

} // namespace dragon::node
