#include "control.hpp"

#include "output.hpp"

#include "../common/error.hpp"
#include "../protocol/codec.hpp"
#include "../runtime/socket.hpp"

#include <dragon/status.h>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace dragon::node {

namespace pr = dragon::protocol;

// A reply a client has not taken yet, with its own copies of the descriptors it carries.
struct Control::Outgoing {
    uint64_t id;
    std::string bytes;
    std::vector<int> fds;
    Outgoing(uint64_t request, std::string b, const std::vector<int> &give)
        : id(request), bytes(std::move(b)) {
        for (int f : give) {
            fds.push_back(fcntl(f, F_DUPFD_CLOEXEC, 3));
        }
    }
    Outgoing(Outgoing &&o) noexcept : id(o.id), bytes(std::move(o.bytes)), fds(std::move(o.fds)) {
        o.fds.clear();
    }
    Outgoing(const Outgoing &) = delete;
    Outgoing &operator=(const Outgoing &) = delete;
    Outgoing &operator=(Outgoing &&) = delete;
    ~Outgoing() { drop_fds(); }
    void drop_fds() {
        for (int f : fds) {
            if (f >= 0) {
                ::close(f);
            }
        }
        fds.clear();
    }
};

struct Control::Client {
    uint64_t id = 0;
    int fd = -1;
    pid_t pid = -1;
    uint64_t watch = 0;
    std::deque<Outgoing> out; // replies waiting for room in the socket
    size_t out_bytes = 0;
    bool want_out = false;                    // EPOLLOUT asked for
    bool dead = false;                        // closed at the end of this round
    bool events = false;                      // subscribed to events
    std::set<uint64_t> parked;                // its parked calls
    std::function<void(std::string)> deliver; // a client inside the daemon: no socket
};

namespace {

// The reply that stands in for one too large for its socket (a Unix datagram must fit the
// socket's send buffer, about 200 KB).
std::string too_large(uint64_t id, size_t size) {
    Output::log("dragon-node: a reply of %zu bytes is too large for its socket", size);
    pr::Reply r;
    r.id = id;
    r.status = DRAGON_INTERNAL;
    r.error =
        "node daemon: the reply (" + std::to_string(size) + " bytes) is too large for the socket";
    return pr::encode(r, "");
}

} // namespace

Control::Control(Reactor &reactor, uint32_t node_id)
    : reactor_(reactor), node_id_(node_id),
      router_([this](const Call &c, dragon_status_t st, const std::string &why) {
          reply(c, st, {}, why);
      }) {
    buf_.resize(pr::kMaxMessage);
    reactor_.each_round([this] { close_dead(); });
    serve_control_ops();
}

Control::~Control() {
    close();
}

// The control plane's own operations: hello (the version check, both ways) and subscribe.
void Control::serve_control_ops() {
    router_.add("hello", [this](const Call &c, pr::Request &, ReceivedFds &) {
        reply(c, DRAGON_SUCCESS, pr::HelloReply{pr::kVersion, node_id_});
    });
    router_.add("subscribe", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        if (auto it = clients_.find(c.client); it != clients_.end()) {
            it->second->events = std::get<pr::Subscribe>(req.body).proc_ended;
        }
        reply(c, DRAGON_SUCCESS);
    });
}

bool Control::listen(const std::string &path) {
    path_ = path;
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        Output::log("dragon-node: socket path %s is too long", path.c_str());
        return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    mode_t old = umask(0077);
    int rc = bind(listen_fd_, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr);
    umask(old);
    if (rc != 0 || ::listen(listen_fd_, 128) != 0) {
        Output::log("dragon-node: cannot listen on %s: %s", path.c_str(), strerror(errno));
        return false;
    }
    listen_watch_ = reactor_.watch(listen_fd_, EPOLLIN, [this](uint32_t) { accept_clients(); });
    return true;
}

void Control::close() {
    if (listen_fd_ >= 0) {
        reactor_.unwatch(listen_watch_);
        ::close(listen_fd_);
        listen_fd_ = -1;
        unlink(path_.c_str());
    }
    for (auto &[id, c] : clients_) {
        c->dead = true;
    }
    close_dead();
}

void Control::accept_clients() {
    for (;;) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            return;
        }
        struct ucred cred {};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
            Output::log("dragon-node: refused connection from uid %u (pid %d): not the runtime's "
                        "owner (uid %u)",
                        static_cast<unsigned>(cred.uid), static_cast<int>(cred.pid),
                        static_cast<unsigned>(geteuid()));
            ::close(fd);
            continue;
        }
        auto c = std::make_unique<Client>();
        c->id = next_client_++;
        c->fd = fd;
        c->pid = cred.pid;
        uint64_t id = c->id;
        c->watch = reactor_.watch(fd, EPOLLIN, [this, id](uint32_t events) {
            auto it = clients_.find(id);
            if (it == clients_.end() || it->second->dead) {
                return;
            }
            Client &cl = *it->second;
            if ((events & EPOLLOUT) != 0) {
                writable(cl);
            }
            if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !cl.dead) {
                readable(cl);
            }
        });
        clients_.emplace(id, std::move(c));
    }
}

// One request per wake-up: the watch is level-triggered, so a client with more comes back
// next round, after everyone else's (no client starves the others), and a lone request costs
// no extra receive.
void Control::readable(Client &c) {
    ReceivedFds fds;
    bool truncated = false;
    ssize_t n = runtime::recv_with_fds(c.fd, buf_.data(), buf_.size(), &fds.raw(), &truncated);
    if (n < 0 && errno == EAGAIN) {
        return;
    }
    if (n <= 0) {
        c.dead = true;
        return;
    }
    Call call;
    call.client = c.id;
    call.pid = c.pid;
    router_.route(std::move(call), std::string_view(buf_.data(), static_cast<size_t>(n)), truncated,
                  fds);
}

void Control::reply(const Call &call, dragon_status_t status, pr::ReplyBody body,
                    const std::string &error, const std::vector<int> &fds) {
    auto it = clients_.find(call.client);
    if (it == clients_.end() || it->second->dead) {
        return;
    }
    pr::Reply r;
    r.id = call.id;
    r.status = status;
    r.error = status != DRAGON_SUCCESS && error.empty() ? dragon_strerror(status) : error;
    r.body = std::move(body);
    send(*it->second, call.id, pr::encode(r, call.op), fds);
}

void Control::fail(const Call &call, dragon_status_t status) {
    reply(call, status, {}, dragon_last_error());
}

void Control::send(Client &c, uint64_t id, std::string bytes, const std::vector<int> &fds) {
    if (c.deliver) {
        c.deliver(std::move(bytes)); // descriptors do not cross nodes
        return;
    }
    if (c.out.empty()) {
        if (runtime::send_with_fds(c.fd, bytes, fds, MSG_DONTWAIT) >= 0) {
            return;
        }
        if (errno == EMSGSIZE) { // more than the socket can ever take: say so instead
            bytes = too_large(id, bytes.size());
            if (runtime::send_with_fds(c.fd, bytes, {}, MSG_DONTWAIT) >= 0) {
                return;
            }
        }
        if (errno != EAGAIN) {
            c.dead = true; // gone
            return;
        }
    }
    if (c.out.size() >= kQueueMessages || c.out_bytes + bytes.size() > kQueueBytes) {
        Output::log("dragon-node: client pid %d does not read its replies (%zu waiting): "
                    "disconnected",
                    static_cast<int>(c.pid), c.out.size());
        c.dead = true;
        return;
    }
    c.out_bytes += bytes.size();
    c.out.emplace_back(id, std::move(bytes), fds);
    if (!c.want_out) {
        c.want_out = true;
        reactor_.modify(c.watch, EPOLLIN | EPOLLOUT);
    }
}

void Control::writable(Client &c) {
    while (!c.out.empty()) {
        Outgoing &o = c.out.front();
        if (runtime::send_with_fds(c.fd, o.bytes, o.fds, MSG_DONTWAIT) < 0) {
            if (errno == EMSGSIZE) { // more than the socket can ever take: say so instead
                c.out_bytes -= o.bytes.size();
                o.bytes = too_large(o.id, o.bytes.size());
                c.out_bytes += o.bytes.size();
                o.drop_fds();
                continue;
            }
            if (errno != EAGAIN) {
                c.dead = true;
            }
            return;
        }
        c.out_bytes -= o.bytes.size();
        c.out.pop_front();
    }
    if (c.want_out) {
        c.want_out = false;
        reactor_.modify(c.watch, EPOLLIN);
    }
}

void Control::close_dead() {
    for (auto it = clients_.begin(); it != clients_.end();) {
        Client &c = *it->second;
        if (!c.dead) {
            ++it;
            continue;
        }
        reactor_.unwatch(c.watch);
        if (c.fd >= 0) {
            ::close(c.fd);
        }
        std::set<uint64_t> parked = std::move(c.parked);
        it = clients_.erase(it);
        for (uint64_t p : parked) {
            auto pit = parked_.find(p);
            if (pit == parked_.end()) {
                continue;
            }
            std::function<void()> gone = std::move(pit->second.on_gone);
            parked_.erase(pit);
            if (gone) {
                gone();
            }
        }
    }
}

uint64_t Control::park(const Call &call, std::function<void()> on_gone) {
    auto it = clients_.find(call.client);
    if (it == clients_.end() || it->second->dead) {
        return 0;
    }
    Client &c = *it->second;
    if (c.parked.size() >= kParkedPerClient) {
        reply(call, DRAGON_NO_SPACE, {},
              "node daemon: " + std::to_string(kParkedPerClient) +
                  " joins and lookups wait for this connection already");
        return 0;
    }
    uint64_t id = next_parked_++;
    parked_.emplace(id, Parked{call.client, std::move(on_gone)});
    c.parked.insert(id);
    return id;
}

void Control::unpark(uint64_t parked) {
    auto it = parked_.find(parked);
    if (it == parked_.end()) {
        return;
    }
    if (auto c = clients_.find(it->second.client); c != clients_.end()) {
        c->second->parked.erase(parked);
    }
    parked_.erase(it);
}

void Control::publish(const pr::Event &event) {
    std::string bytes;
    for (auto &[id, c] : clients_) {
        if (c->events && !c->dead) {
            if (bytes.empty()) {
                bytes = pr::encode(event);
            }
            send(*c, 0, bytes, {});
        }
    }
}

uint64_t Control::add_local_client(std::function<void(std::string bytes)> deliver) {
    auto c = std::make_unique<Client>();
    c->id = next_client_++;
    c->deliver = std::move(deliver);
    uint64_t id = c->id;
    clients_.emplace(id, std::move(c));
    return id;
}

void Control::route_local(uint64_t client, std::string_view request) {
    auto it = clients_.find(client);
    if (it == clients_.end() || it->second->dead) {
        return;
    }
    ReceivedFds none;
    Call call;
    call.client = client;
    router_.route(std::move(call), request, false, none);
}

void Control::remove_local_client(uint64_t client) {
    if (auto it = clients_.find(client); it != clients_.end()) {
        it->second->dead = true; // closed at the end of the round
    }
}

} // namespace dragon::node
