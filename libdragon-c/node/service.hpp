// A node service (docs/runtime.md, "Services"): one concern of the node daemon (processes,
// the registry, node info, ...), with its own operations (registered with the router in
// start()), watches and timers on the reactor, and its own part of the teardown. Services
// share a NodeContext; they talk to clients only through Control, and to each other through
// the interfaces they are constructed with.
#pragma once

#include "control.hpp"
#include "output.hpp"
#include "reactor.hpp"

#include <cstdint>
#include <string>

namespace dragon::node {

struct NodeContext {
    NodeContext(Reactor &r, Control &c, Output &o) : reactor(r), control(c), output(o) {}
    Reactor &reactor;
    Control &control;
    Output &output;
    std::string runtime_id;
    uint32_t node_id = 0;
    std::string host_name; // the name this node goes by ("": the machine's own)
    bool label = false;    // --label: output lines carry their host and process
    std::string socket_path;
    long nofile_soft = -1;      // the soft descriptor limit the daemon was started with
    bool have_launcher = false; // a launcher waits for the teardown (its life pipe)
    bool stopping = false;      // the teardown has begun
    bool stop_now = false;      // ... without the SIGTERM grace period
    bool hurry = false;         // the launcher asked to hurry (or left): nothing waits
    int64_t stop_at = 0;        // when the teardown began (CLOCK_MONOTONIC ns)

    void stop(bool now) {
        if (!stopping) {
            stop_at = Reactor::now_ns();
        }
        stopping = true;
        stop_now = stop_now || now;
        reactor.stop();
    }
};

class Service {
  public:
    explicit Service(NodeContext &node) : node_(node) {}
    virtual ~Service() = default;
    Service(const Service &) = delete;
    Service &operator=(const Service &) = delete;

    virtual const char *name() const = 0;
    // Register operations and watches; false: the daemon cannot start (logged).
    virtual bool start() = 0;
    // The teardown's part of this service, in the reverse order of start(); the clients are
    // gone already, the reactor still runs (run_once).
    virtual void stop() {}

  protected:
    NodeContext &node_;
};

} // namespace dragon::node
