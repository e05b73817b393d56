// The node daemon's router (docs/runtime.md, "Services"): each service registers the
// operations it serves; a request is decoded once (protocol/codec), checked (version, shape,
// descriptors), and handed to its operation's handler, or refused with a status of its own:
// DRAGON_MALFORMED, DRAGON_VERSION_MISMATCH, DRAGON_NOT_SUPPORTED (an unknown op), or
// DRAGON_BAD_DESCRIPTOR (descriptors where the op takes none, or a truncated message).
#pragma once

#include "../protocol/messages.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace dragon::node {

// Descriptors received with a request (SCM_RIGHTS): closed unless taken.
class ReceivedFds {
  public:
    ReceivedFds() = default;
    ReceivedFds(const ReceivedFds &) = delete;
    ReceivedFds &operator=(const ReceivedFds &) = delete;
    ~ReceivedFds();
    std::vector<int> &raw() { return fds_; }
    int take() { return next_ < fds_.size() ? fds_[next_++] : -1; }
    std::size_t left() const { return fds_.size() - next_; }

  private:
    std::vector<int> fds_;
    std::size_t next_ = 0;
};

// Who asked what: the handle a service answers (at once, or later after parking it).
struct Call {
    uint64_t client = 0; // the connection (never reused)
    uint64_t id = 0;     // the request's id on it
    std::string op;
    pid_t pid = -1; // the client's, from its credentials
};

class Router {
  public:
    using Handler =
        std::function<void(const Call &call, protocol::Request &request, ReceivedFds &fds)>;
    // How refusals are answered (Control::reply in the daemon).
    using Refuse =
        std::function<void(const Call &call, dragon_status_t status, const std::string &error)>;

    explicit Router(Refuse refuse) : refuse_(std::move(refuse)) {}

    // Serve `op` (one service per op); takes_fds: the requests may carry descriptors.
    void add(const std::string &op, Handler handler, bool takes_fds = false);
    bool serves(const std::string &op) const { return ops_.count(op) != 0; }

    // Before a well-formed request reaches its op's handler, `forward` may take it (true):
    // the multi-node service sends requests about other nodes there (docs/multinode.md).
    using Forward =
        std::function<bool(const Call &call, protocol::Request &request, ReceivedFds &fds)>;
    void set_forward(Forward forward) { forward_ = std::move(forward); }

    // One message from a client (truncated: the socket cut it or its descriptors).
    void route(Call call, std::string_view bytes, bool truncated, ReceivedFds &fds);

  private:
    struct Op {
        Handler handler;
        bool takes_fds;
    };
    Refuse refuse_;
    Forward forward_;
    std::map<std::string, Op, std::less<>> ops_;
};

} // namespace dragon::node
