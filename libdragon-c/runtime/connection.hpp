// A connection to this node's daemon (DRAGON_NODE_SOCKET), for the runtime's C ABI
// (processes, groups, registry, system). One connection per call: calls are rare next to
// their cost, and a connection of its own makes every call thread-safe and fork-safe.
#pragma once

#include "protocol.hpp"

#include <dragon/status.h>

#include <nlohmann/json.hpp>

#include <vector>

namespace dragon::runtime {

class Connection {
  public:
    Connection() = default;
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    ~Connection();

    // DRAGON_CLOSED outside a runtime or when the daemon is gone.
    dragon_status_t open();

    // Send a request (with send_fds passed along, SCM_RIGHTS) and wait at most wait_ms
    // (-1: no limit) for its reply. A reply with a status other than success becomes that
    // status, its "error" the message. Descriptors that come with the reply go to *recv_fds
    // (closed when recv_fds is null).
    dragon_status_t call(nlohmann::json request, int wait_ms, nlohmann::json *reply,
                         const std::vector<int> &send_fds = {},
                         std::vector<int> *recv_fds = nullptr);

  private:
    int fd_ = -1;
};

// Open a connection, make one call (Connection::call), close: what every ABI call does.
dragon_status_t request(nlohmann::json request, int wait_ms, nlohmann::json *reply,
                        const std::vector<int> &send_fds = {},
                        std::vector<int> *recv_fds = nullptr);

constexpr int kCallMs = 30000; // a daemon that does not answer a quick request in 30 s is gone

// How long to wait for the reply to a request the daemon answers after `timeout`.
int reply_wait_ms(dragon_timeout_t timeout);

} // namespace dragon::runtime
