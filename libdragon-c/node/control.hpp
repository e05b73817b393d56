// The node daemon's control endpoint (docs/runtime.md, "Services"): the listening socket,
// its clients and their non-blocking reply queues, the router every request goes through,
// calls parked by services until they can be answered, and events pushed to subscribers.
// Everything a service sends to a client goes through here, so the flow-control rules hold
// once for all of them: a reply goes out at once if the socket takes it, else waits in the
// client's queue (at most kQueueMessages / kQueueBytes), and a client that lets the queue
// fill up is not reading and is disconnected.
#pragma once

#include "reactor.hpp"
#include "router.hpp"

#include "../protocol/messages.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace dragon::node {

class Control {
  public:
    static constexpr std::size_t kQueueMessages = 1024;  // replies a client has not read yet
    static constexpr std::size_t kQueueBytes = 16 << 20; // ... and their bytes
    static constexpr std::size_t kParkedPerClient = 65536;

    Control(Reactor &reactor, uint32_t node_id);
    ~Control();
    Control(const Control &) = delete;
    Control &operator=(const Control &) = delete;

    Router &router() { return router_; }

    // Listen at path (mode 0600 by umask); false with a log line when it cannot.
    bool listen(const std::string &path);
    // Teardown: stop listening (the socket file goes), drop every client and parked call.
    void close();

    // Answer a call (a client that is gone is skipped). fds (not taken) go along.
    void reply(const Call &call, dragon_status_t status, protocol::ReplyBody body = {},
               const std::string &error = {}, const std::vector<int> &fds = {});
    // The last error (dragon_last_error) as the message.
    void fail(const Call &call, dragon_status_t status);

    // Keep a call to answer later; on_gone runs if its client goes first (the parked call is
    // forgotten then). 0 when the client has kParkedPerClient parked already: the call is
    // answered DRAGON_NO_SPACE here.
    uint64_t park(const Call &call, std::function<void()> on_gone);
    void unpark(uint64_t parked);

    // Events, to the clients that subscribed.
    void publish(const protocol::Event &event);

    // A client inside the daemon (a request forwarded from another node): what it is
    // answered is handed to `deliver` (encoded, as a socket client would receive it) instead
    // of a socket. Requests reach the router through route_local; remove_local_client ends
    // it (its parked calls are dropped, as for a client that went).
    uint64_t add_local_client(std::function<void(std::string bytes)> deliver);
    void route_local(uint64_t client, std::string_view request);
    void remove_local_client(uint64_t client);

  private:
    struct Outgoing;
    struct Client;
    void accept_clients();
    void readable(Client &c);
    void writable(Client &c);
    void send(Client &c, uint64_t id, std::string bytes, const std::vector<int> &fds);
    void close_dead();
    void serve_control_ops();

    Reactor &reactor_;
    uint32_t node_id_;
    Router router_;
    int listen_fd_ = -1;
    uint64_t listen_watch_ = 0;
    std::string path_;
    std::map<uint64_t, std::unique_ptr<Client>> clients_;
    uint64_t next_client_ = 1;
    struct Parked {
        uint64_t client;
        std::function<void()> on_gone;
    };
    std::map<uint64_t, Parked> parked_;
    uint64_t next_parked_ = 1;
    std::vector<char> buf_; // one message in
};

} // namespace dragon::node
