#include "endpoint.hpp"

#include "socket.hpp"

#include "../common/error.hpp"
#include "../common/wait_mode.hpp"
#include "../protocol/codec.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace dragon::runtime {

using detail::fail;
namespace pr = dragon::protocol;
using Clock = std::chrono::steady_clock;

namespace {

void close_all(std::vector<int> &fds) {
    for (int f : fds) {
        close(f);
    }
    fds.clear();
}

// Wait for `events` on fd at most wait_ms (-1: no limit); EINTR is not an end.
int wait_for(int fd, short events, int wait_ms) {
    auto until = Clock::now() + std::chrono::milliseconds(wait_ms);
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int left = wait_ms;
        if (wait_ms > 0) {
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
            left = static_cast<int>(std::max<int64_t>(0, ms.count()));
        }
        int rc = poll(&p, 1, left);
        if (rc >= 0 || errno != EINTR) {
            return rc;
        }
    }
}

std::atomic<Endpoint *> g_process{nullptr};

// How long a reader spins for a reply before it sleeps, by the process's wait mode
// (docs/runtime.md, "The endpoint"): adaptive about the time a reply takes from a daemon on
// another CPU, spin a millisecond, idle not at all.
int64_t spin_ns() {
    static const int64_t ns = [] {
        switch (detail::process_wait_mode()) {
        case DRAGON_WAIT_IDLE:
            return int64_t{0};
        case DRAGON_WAIT_SPIN:
            return Endpoint::kSpinMaxNs;
        default:
            return Endpoint::kAdaptiveSpinNs;
        }
    }();
    return ns;
}

// A forked child must not read its parent's replies: its first call opens its own
// connection. The parent's object may be locked by a thread the child does not have, so it
// is left alone (its descriptor closed).
void forget_in_child() {
    Endpoint *e = g_process.exchange(nullptr);
    if (e != nullptr) {
        e->abandon();
    }
}

} // namespace

Endpoint::Endpoint(std::string socket_path, std::string role)
    : path_(std::move(socket_path)), role_(std::move(role)) {}

Endpoint::~Endpoint() {
    if (fd_ >= 0) {
        close(fd_);
    }
    for (auto &[id, p] : pending_) {
        close_all(p.fds);
    }
}

void Endpoint::abandon() {
    if (fd_ >= 0) {
        close(fd_);
        fd_ = -1;
    }
}

bool Endpoint::broken() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return broken_;
}

dragon_status_t Endpoint::process(Endpoint **out) {
    Endpoint *e = g_process.load(std::memory_order_acquire);
    if (e != nullptr) {
        *out = e;
        return DRAGON_SUCCESS;
    }
    static std::once_flag atfork;
    std::call_once(atfork, [] { pthread_atfork(nullptr, nullptr, forget_in_child); });
    const char *path = std::getenv("DRAGON_NODE_SOCKET");
    if (path == nullptr || *path == '\0') {
        return fail(DRAGON_NOT_IN_RUNTIME,
                    "not inside a dragon runtime: DRAGON_NODE_SOCKET is not set "
                    "(start the program with `dragon`)");
    }
    auto *fresh = new Endpoint(path);
    if (dragon_status_t st = fresh->connect(); st != DRAGON_SUCCESS) {
        delete fresh;
        return st;
    }
    Endpoint *expected = nullptr;
    if (!g_process.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
        delete fresh; // another thread connected first
        *out = expected;
        return DRAGON_SUCCESS;
    }
    *out = fresh;
    return DRAGON_SUCCESS;
}

dragon_status_t Endpoint::connect(int wait_ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (broken_) {
        return fail(DRAGON_CLOSED, "%s", broken_why_.c_str());
    }
    if (connected_) {
        return DRAGON_SUCCESS;
    }
    struct sockaddr_un addr {};
    if (path_.size() >= sizeof addr.sun_path) {
        return fail(DRAGON_INVALID_ARGUMENT, "node daemon socket path is too long: %s",
                    path_.c_str());
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) != 0) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        return detail::fail_errno(DRAGON_CLOSED, err, "cannot reach the node daemon at %s",
                                  path_.c_str());
    }
    // Nothing goes to a daemon that is not ours (a swapped runtime directory, a forged
    // DRAGON_NODE_SOCKET): not a request, not a descriptor.
    if (std::string why; !peer_is_owner(fd, path_, &why)) {
        close(fd);
        return fail(DRAGON_PERMISSION_DENIED, "%s", why.c_str());
    }
    // Hello: the daemon checks our version and we check its.
    pr::Request hello{0, "", pr::Hello{role_}};
    std::string bytes = pr::encode(hello);
    buf_.resize(pr::kMaxMessage);
    if (send_with_fds(fd, bytes, {}) < 0 || wait_for(fd, POLLIN, wait_ms) <= 0) {
        close(fd);
        return fail(DRAGON_CLOSED, "the node daemon at %s does not answer", path_.c_str());
    }
    std::vector<int> fds;
    bool truncated = false;
    ssize_t n = recv_with_fds(fd, buf_.data(), buf_.size(), &fds, &truncated);
    close_all(fds);
    pr::Incoming in;
    if (n <= 0) {
        close(fd);
        return fail(DRAGON_CLOSED, "the node daemon at %s closed the connection", path_.c_str());
    }
    if (dragon_status_t st = pr::decode(std::string_view(buf_.data(), static_cast<size_t>(n)), &in);
        st != DRAGON_SUCCESS) {
        close(fd);
        return st; // another version (named), or garbage
    }
    auto *r = std::get_if<pr::Reply>(&in);
    if (r == nullptr || r->status != DRAGON_SUCCESS ||
        std::get_if<pr::HelloReply>(&r->body) == nullptr) {
        close(fd);
        if (r != nullptr && r->status != DRAGON_SUCCESS) {
            return fail(r->status, "node daemon: %s", r->error.c_str());
        }
        return fail(DRAGON_MALFORMED, "node daemon: no hello reply");
    }
    fd_ = fd;
    connected_ = true;
    return DRAGON_SUCCESS;
}

dragon_status_t Endpoint::send_bytes(const std::string &bytes, const std::vector<int> &fds,
                                     int wait_ms) {
    for (;;) {
        if (send_with_fds(fd_, bytes, fds, MSG_DONTWAIT) >= 0) {
            return DRAGON_SUCCESS;
        }
        if (errno == EMSGSIZE) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "node daemon: a request of %zu bytes is too large for its socket "
                        "(a huge environment or argument list?)",
                        bytes.size());
        }
        if (errno != EAGAIN) {
            return detail::fail_errno(DRAGON_CLOSED, errno, "node daemon: send");
        }
        if (wait_for(fd_, POLLOUT, wait_ms) <= 0) {
            return fail(DRAGON_TIMEOUT, "node daemon: takes no request for %d ms", wait_ms);
        }
    }
}

dragon_status_t Endpoint::send(pr::Request request, Done done, const std::vector<int> &fds,
                               uint64_t *id) {
    if (dragon_status_t st = connect(); st != DRAGON_SUCCESS) {
        return st;
    }
    if (fds.size() > pr::kMaxFds) {
        return fail(DRAGON_INTERNAL, "node daemon: too many descriptors to pass");
    }
    request.id = next_id_.fetch_add(1, std::memory_order_relaxed);
    std::string bytes = pr::encode(request);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (broken_) {
            return fail(DRAGON_CLOSED, "%s", broken_why_.c_str());
        }
        Pending &p = pending_[request.id];
        p.waited = !done;
        p.on_done = std::move(done);
    }
    if (dragon_status_t st = send_bytes(bytes, fds, kCallMs); st != DRAGON_SUCCESS) {
        std::lock_guard<std::mutex> lock(mutex_);
        pending_.erase(request.id);
        return st;
    }
    if (id != nullptr) {
        *id = request.id;
    }
    return DRAGON_SUCCESS;
}

void Endpoint::forget(uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = pending_.find(id); it != pending_.end()) {
        close_all(it->second.fds);
        pending_.erase(it);
    }
}

void Endpoint::fail_all(dragon_status_t st, const std::string &why, Work *work) {
    broken_ = true;
    broken_why_ = why;
    for (auto it = pending_.begin(); it != pending_.end();) {
        Pending &p = it->second;
        p.status = st;
        p.reply.status = st;
        p.reply.error = why;
        if (p.waited) {
            p.done = true;
            ++it;
            continue;
        }
        if (p.on_done) {
            work->push_back([done = std::move(p.on_done), st, why]() mutable {
                pr::Reply r;
                r.status = st;
                r.error = why;
                std::vector<int> none;
                done(st, r, none);
            });
        }
        it = pending_.erase(it);
    }
}

void Endpoint::read_one(std::unique_lock<std::mutex> &lock, int wait_ms, Work *work) {
    bool awaited = !pending_.empty(); // a reply is due (not only events)
    lock.unlock();
    std::vector<int> fds;
    bool truncated = false;
    ssize_t n = -1;
    int err = EAGAIN;
    int ready = 1;
    // When a reply is due, first spin a little (the process's wait mode permitting, and
    // never beyond wait_ms) on a non-blocking receive: a reply usually comes within
    // microseconds, and a thread that sleeps for it pays a wake-up, which across the CPUs of
    // a VM costs more than the whole request.
    int64_t spin = wait_ms == 0 || !awaited ? 0 : spin_ns();
    if (wait_ms > 0) {
        spin = std::min<int64_t>(spin, int64_t{wait_ms} * 1000000);
    }
    auto start = Clock::now();
    if (spin > 0) {
        auto until = start + std::chrono::nanoseconds(spin);
        for (;;) {
            n = recv_with_fds(fd_, buf_.data(), buf_.size(), &fds, &truncated, MSG_DONTWAIT);
            err = errno;
            if (n >= 0 || err != EAGAIN || Clock::now() >= until) {
                break;
            }
            sched_yield(); // the daemon may be waiting for this CPU
        }
    }
    if (n < 0 && err == EAGAIN) {
        int left = wait_ms;
        if (wait_ms > 0) {
            auto spent =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
            left = static_cast<int>(std::max<int64_t>(0, wait_ms - spent.count()));
        }
        ready = wait_for(fd_, POLLIN, left);
        if (ready > 0) {
            n = recv_with_fds(fd_, buf_.data(), buf_.size(), &fds, &truncated);
            err = errno;
        }
    }
    pr::Incoming in;
    dragon_status_t decoded = DRAGON_MALFORMED;
    if (ready > 0 && n > 0 && !truncated) {
        decoded = pr::decode(std::string_view(buf_.data(), static_cast<size_t>(n)), &in);
    }
    lock.lock();
    if (ready <= 0) {
        return; // nothing within wait_ms
    }
    if (n <= 0) {
        if (n < 0 && (err == EAGAIN || err == EINTR)) {
            return;
        }
        fail_all(DRAGON_CLOSED, "node daemon: the connection closed (the daemon is gone)", work);
        return;
    }
    if (decoded != DRAGON_SUCCESS) {
        close_all(fds);
        // A reply we cannot read answers its caller with the refusal (decode keeps the id
        // when it could read one); anything else answers nobody.
        auto *bad = std::get_if<pr::Reply>(&in);
        if (bad == nullptr || bad->id == 0) {
            return;
        }
        bad->error = "node daemon: a reply this process cannot read: " + bad->error;
        fds.clear();
    } else if (auto *ev = std::get_if<pr::Event>(&in)) {
        for (const auto &[sid, handler] : subscribers_) {
            work->push_back([handler = handler, event = *ev] { handler(event); });
        }
        close_all(fds);
        return;
    }
    auto &reply = std::get<pr::Reply>(in);
    auto it = pending_.find(reply.id);
    if (it == pending_.end()) {
        close_all(fds); // forgotten, or its caller gave up waiting
        return;
    }
    Pending &p = it->second;
    if (p.waited) {
        p.done = true;
        p.status = reply.status;
        p.reply = std::move(reply);
        p.fds = std::move(fds);
        return;
    }
    if (p.on_done) {
        work->push_back([done = std::move(p.on_done), r = std::move(reply),
                         f = std::move(fds)]() mutable { done(r.status, r, f); });
    } else {
        close_all(fds);
    }
    pending_.erase(it);
}

dragon_status_t Endpoint::call(pr::Request request, int wait_ms, pr::Reply *reply,
                               const std::vector<int> &send_fds, std::vector<int> *recv_fds) {
    uint64_t id = 0;
    if (dragon_status_t st = send(std::move(request), nullptr, send_fds, &id);
        st != DRAGON_SUCCESS) {
        return st;
    }
    auto deadline = Clock::now() + std::chrono::milliseconds(std::max(wait_ms, 0));
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        auto it = pending_.find(id);
        if (it == pending_.end()) {
            return fail(DRAGON_INTERNAL, "node daemon: a call lost its reply");
        }
        if (it->second.done) {
            Pending p = std::move(it->second);
            pending_.erase(it);
            lock.unlock();
            *reply = std::move(p.reply);
            if (p.status != DRAGON_SUCCESS) {
                close_all(p.fds);
                return fail(p.status, "%s",
                            reply->error.empty() ? dragon_strerror(p.status)
                                                 : reply->error.c_str());
            }
            if (recv_fds != nullptr) {
                *recv_fds = std::move(p.fds);
            } else {
                close_all(p.fds);
            }
            return DRAGON_SUCCESS;
        }
        int left = -1;
        if (wait_ms >= 0) {
            auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            left = static_cast<int>(std::max<int64_t>(0, ms.count()));
            if (left == 0 && Clock::now() >= deadline) {
                close_all(it->second.fds);
                pending_.erase(it);
                return fail(DRAGON_TIMEOUT, "node daemon: no reply within %d ms", wait_ms);
            }
        }
        if (!reading_) {
            reading_ = true;
            Work work;
            read_one(lock, left, &work);
            reading_ = false;
            changed_.notify_all();
            if (!work.empty()) {
                lock.unlock();
                for (auto &w : work) {
                    w();
                }
                lock.lock();
            }
        } else if (wait_ms < 0) {
            changed_.wait(lock);
        } else {
            changed_.wait_until(lock, deadline);
        }
    }
}

dragon_status_t Endpoint::pump(int wait_ms) {
    if (dragon_status_t st = connect(); st != DRAGON_SUCCESS) {
        return st;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (broken_) {
        return fail(DRAGON_CLOSED, "%s", broken_why_.c_str());
    }
    if (reading_) { // another thread delivers; wait for it to read something
        if (wait_ms < 0) {
            changed_.wait(lock);
        } else {
            changed_.wait_for(lock, std::chrono::milliseconds(wait_ms));
        }
        return broken_ ? fail(DRAGON_CLOSED, "%s", broken_why_.c_str()) : DRAGON_SUCCESS;
    }
    reading_ = true;
    Work work;
    read_one(lock, wait_ms, &work);
    reading_ = false;
    changed_.notify_all();
    bool closed = broken_;
    std::string why = broken_why_;
    lock.unlock();
    for (auto &w : work) {
        w();
    }
    if (closed) {
        return fail(DRAGON_CLOSED, "%s", why.c_str());
    }
    return work.empty() ? DRAGON_TIMEOUT : DRAGON_SUCCESS;
}

dragon_status_t Endpoint::subscribe(EventHandler handler, uint64_t *id) {
    bool first = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        *id = next_subscriber_++;
        subscribers_[*id] = std::move(handler);
        first = !subscribed_;
        subscribed_ = true;
    }
    if (!first) {
        return DRAGON_SUCCESS;
    }
    pr::Reply r;
    pr::Subscribe s;
    s.proc_ended = true;
    dragon_status_t st = call(pr::Request{0, "", s}, kCallMs, &r);
    if (st != DRAGON_SUCCESS) {
        std::lock_guard<std::mutex> lock(mutex_);
        subscribers_.erase(*id);
        subscribed_ = false;
    }
    return st;
}

void Endpoint::unsubscribe(uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    subscribers_.erase(id); // the daemon keeps sending; nobody is told
}

int reply_wait_ms(dragon_timeout_t timeout) {
    // The daemon answers at the timeout; allow it some slack before giving up on it.
    return timeout < 0 ? -1
                       : static_cast<int>(
                             std::min<int64_t>(timeout / 1000000 + Endpoint::kCallMs, INT_MAX));
}

dragon_status_t request(pr::RequestBody body, int wait_ms, pr::Reply *reply,
                        const std::vector<int> &send_fds, std::vector<int> *recv_fds) {
    Endpoint *e = nullptr;
    if (dragon_status_t st = Endpoint::process(&e); st != DRAGON_SUCCESS) {
        return st;
    }
    return e->call(pr::Request{0, "", std::move(body)}, wait_ms, reply, send_fds, recv_fds);
}

} // namespace dragon::runtime
