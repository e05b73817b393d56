// dragon-node: the per-node daemon (docs/runtime.md, "Services"); on a single node it is
// also the head node's global services. Started by `dragon`, not by hand. Everything it does
// lives in libdragon-c/node/ (the reactor, the control endpoint, the services).
#include "node/daemon.hpp"
#include "node/output.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <getopt.h>

#include <sys/prctl.h>
#include <unistd.h>

namespace {

void usage(FILE *to) {
    std::fprintf(to, "Usage: dragon-node --runtime-id ID [--node-id N] [--ready-fd FD] "
                     "[--life-fd FD]\n"
                     "The libdragon node daemon; started by `dragon`, not by hand.\n");
}

int run(int argc, char **argv) {
    dragon::node::DaemonOptions o;
    static const option opts[] = {{"runtime-id", required_argument, nullptr, 'r'},
                                  {"node-id", required_argument, nullptr, 'n'},
                                  {"ready-fd", required_argument, nullptr, 'R'},
                                  {"life-fd", required_argument, nullptr, 'L'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "r:n:h", opts, nullptr)) != -1) {
        switch (c) {
        case 'r':
            o.runtime_id = optarg;
            break;
        case 'n':
            o.node_id = static_cast<uint32_t>(std::strtoul(optarg, nullptr, 10));
            break;
        case 'R':
            o.ready_fd = std::atoi(optarg);
            break;
        case 'L':
            o.life_fd = std::atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.runtime_id.empty()) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    // The daemon leads a session of its own: every process of the runtime is in it unless
    // it leaves on purpose, which is how dragon-cleanup finds them without the daemon.
    if (getsid(0) != getpid()) {
        setsid();
    }
    // Processes that the managed ones start and abandon become ours, so that teardown can
    // wait for every one of them.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return dragon::node::run_daemon(o);
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        dragon::node::Output::log("dragon-node: internal error: %s", e.what());
        return 1;
    }
}
