#include "output.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace dragon::node {
namespace {

Output *g_log = nullptr; // where log() writes once open() ran

} // namespace

Output::Output(Reactor &reactor) : reactor_(reactor) {
    reactor_.each_round([this] { update(); });
}

Output::~Output() {
    if (g_log == this) {
        g_log = nullptr;
    }
    for (auto &[id, r] : relays_) {
        close(r.fd);
    }
}

void Output::open() {
    out_.open(STDOUT_FILENO);
    err_.open(STDERR_FILENO);
    g_log = this;
}

void Output::log(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n =
        std::vsnprintf(buf, sizeof buf - 1, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    if (n < 0) {
        return;
    }
    size_t len = std::min(static_cast<size_t>(n), sizeof buf - 2);
    buf[len] = '\n';
    if (g_log != nullptr && g_log->err_.usable()) {
        if (!g_log->log_label_.empty()) {
            g_log->err_.put(g_log->log_label_ + std::string(buf, len + 1));
        } else {
            g_log->err_.put(std::string_view(buf, len + 1));
        }
    } else {
        ssize_t ignored = write(STDERR_FILENO, buf, len + 1);
        (void)ignored;
    }
}

uint64_t Output::add_relay(int fd, Stream to, std::string label) {
    uint64_t id = next_relay_++;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    Relay &r = relays_[id];
    r.fd = fd;
    r.to = to;
    Sink *to_sink = &sink(to);
    if (label.empty()) {
        r.lines = std::make_unique<LineRelay>([to_sink](std::string_view b) { to_sink->put(b); });
    } else {
        r.lines =
            std::make_unique<LineRelay>([to_sink, label = std::move(label)](std::string_view b) {
                to_sink->put(label + std::string(b));
            });
    }
    if (to_sink->queued() >= kHigh) {
        to_sink->paused.insert(id); // watched once the sink has drained
    } else {
        r.watch = reactor_.watch(fd, EPOLLIN, [this, id](uint32_t) { pump(id, false); });
    }
    return id;
}

void Output::drain(uint64_t relay) {
    pump(relay, true);
}

// Read a relayed pipe into its sink: until the sink is full (then the relay pauses, and its
// producer blocks on its own pipe, not the daemon), or with `drain` whatever the pipe holds.
void Output::pump(uint64_t relay, bool drain) {
    auto it = relays_.find(relay);
    if (it == relays_.end()) {
        return;
    }
    Relay &r = it->second;
    Sink &out = sink(r.to);
    char buf[65536];
    // With drain, what the pipe holds now and no more: a writer that goes on writing does
    // not keep us here, nor grow the queue beyond what the pipe held.
    int drain_left = 0;
    if (drain && (ioctl(r.fd, FIONREAD, &drain_left) != 0 || drain_left < 0)) {
        drain_left = 0;
    }
    for (;;) {
        if (!drain && out.queued() >= kHigh) {
            if (r.watch != 0) {
                // Out of epoll altogether: a pipe whose writers are gone would report
                // EPOLLHUP on every round.
                reactor_.unwatch(r.watch);
                r.watch = 0;
                out.paused.insert(relay);
            }
            return;
        }
        size_t want = sizeof buf;
        if (drain) {
            if (drain_left <= 0) {
                return;
            }
            want = std::min(want, static_cast<size_t>(drain_left));
        }
        ssize_t n = read(r.fd, buf, want);
        if (n > 0) {
            if (drain) {
                drain_left -= static_cast<int>(n);
            }
            r.lines->feed(std::string_view(buf, static_cast<size_t>(n)));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        close_relay(relay); // end of file: every writer is gone
        return;
    }
}

void Output::close_relay(uint64_t relay) {
    auto it = relays_.find(relay);
    if (it == relays_.end()) {
        return;
    }
    Relay &r = it->second;
    r.lines->finish();
    if (r.watch != 0) {
        reactor_.unwatch(r.watch);
    } else {
        sink(r.to).paused.erase(relay);
    }
    close(r.fd);
    relays_.erase(it);
}

void Output::close_relays() {
    while (!relays_.empty()) {
        uint64_t id = relays_.begin()->first;
        pump(id, true);
        close_relay(id);
    }
    update();
}

void Output::update() {
    for (int i = 0; i < 2; ++i) {
        Sink &s = sink(static_cast<Stream>(i));
        bool want = s.queued() > 0 && s.pollable() && s.fd() >= 0;
        if (want != (sink_watch_[i] != 0)) {
            if (want) {
                sink_watch_[i] = reactor_.watch(s.fd(), EPOLLOUT, [&s](uint32_t) { s.flush(); });
            } else {
                reactor_.unwatch(sink_watch_[i]);
                sink_watch_[i] = 0;
            }
        }
        if (s.queued() < kLow && !s.paused.empty()) {
            for (uint64_t id : s.paused) {
                Relay &r = relays_.at(id);
                r.watch = reactor_.watch(r.fd, EPOLLIN, [this, id](uint32_t) { pump(id, false); });
            }
            s.paused.clear();
        }
    }
}

int64_t Output::last_progress() const {
    return std::max(out_.last_progress(), err_.last_progress());
}

void Output::drop() {
    out_.drop();
    err_.drop();
    update();
}

void Output::restore() {
    out_.restore();
    err_.restore();
}

} // namespace dragon::node
