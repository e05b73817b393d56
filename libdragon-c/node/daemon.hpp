// The node daemon, assembled (docs/runtime.md, "Services"): a reactor, the output, the
// control endpoint, and the services in their start order. Adding a service is one line in
// daemon.cpp; nothing else here knows what a service does.
#pragma once

#include "../protocol/messages.hpp"

#include <cstdint>
#include <string>

namespace dragon::node {

struct DaemonOptions {
    std::string runtime_id;
    uint32_t node_id = 0;
    int ready_fd = -1; // "ready\n" is written here once the socket listens
    int life_fd = -1;  // the launcher's life pipe, -1: none
    // The runtime's nodes and how to start them (docs/multinode.md); one node by default.
    protocol::LinkBoot boot;
    int parent_in = -1; // a daemon below the head: the link to its parent
    int parent_out = -1;
    int stdout_relay = -1; // ... and a pipe its stdout goes into, relayed as its output
};

// Run until shutdown, then tear down; the exit status.
int run_daemon(const DaemonOptions &options);

} // namespace dragon::node
