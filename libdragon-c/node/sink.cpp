#include "sink.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dragon::node {
namespace {

int64_t now_ns() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

} // namespace

void Sink::open(int std_fd) {
    struct stat st {};
    if (fstat(std_fd, &st) != 0) {
        return; // closed: output is dropped
    }
    bool stream = S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode);
    if (stream) {
        std::string path = "/proc/self/fd/" + std::to_string(std_fd);
        fd_ = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd_ >= 0) {
            mode_ = kNonBlocking;
            return;
        }
    }
    fd_ = fcntl(std_fd, F_DUPFD_CLOEXEC, 3);
    if (S_ISSOCK(st.st_mode)) {
        mode_ = kSocket;
    } else if (stream) {
        shared_flags_ = fcntl(fd_, F_GETFL);
        fcntl(fd_, F_SETFL, shared_flags_ | O_NONBLOCK);
        mode_ = kNonBlocking;
    } else {
        mode_ = kBlocking; // a regular file or a block device: never blocks for long
    }
}

void Sink::to_link(std::function<void(std::string_view)> put, std::function<std::size_t()> queued) {
    link_put_ = std::move(put);
    link_queued_ = std::move(queued);
}

void Sink::restore() {
    if (shared_flags_ >= 0) {
        fcntl(fd_, F_SETFL, shared_flags_);
        shared_flags_ = -1;
    }
}

void Sink::put(std::string_view bytes) {
    if (link_put_ && !bytes.empty()) {
        link_put_(bytes);
        last_progress_ = now_ns();
        return;
    }
    if (broken_ || fd_ < 0 || bytes.empty()) {
        return;
    }
    if (queued() == 0) {
        bytes.remove_prefix(std::min(write_some(bytes), bytes.size()));
        if (bytes.empty()) {
            return;
        }
    }
    if (head_ > 0 && head_ >= buf_.size() / 2) {
        buf_.erase(0, head_);
        head_ = 0;
    }
    buf_.append(bytes);
}

void Sink::flush() {
    if (link_put_) {
        return; // the link writes on its own
    }
    while (queued() > 0 && !broken_) {
        std::size_t n = write_some(std::string_view(buf_).substr(head_));
        if (n == 0) {
            return;
        }
        head_ += n;
    }
    if (queued() == 0) {
        drop();
    }
}

void Sink::drop() {
    buf_.clear();
    head_ = 0;
}

// What the descriptor takes now (a regular file: all of it); 0 when it takes nothing, or
// when the reader is gone (EPIPE or worse: then output is dropped from now on).
std::size_t Sink::write_some(std::string_view b) {
    std::size_t done = 0;
    while (done < b.size()) {
        std::string_view rest = b.substr(done);
        ssize_t n = mode_ == kSocket
                        ? send(fd_, rest.data(), rest.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                        : write(fd_, rest.data(), rest.size());
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            last_progress_ = now_ns();
            if (mode_ != kBlocking) {
                return done; // the rest when there is room again
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN) {
            broken_ = true;
            drop();
        }
        return done;
    }
    return done;
}

} // namespace dragon::node
