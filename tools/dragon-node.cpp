// dragon-node: the per-node daemon (docs/runtime.md, "Services"); on a single node it is
// also the head node's global services. Started by `dragon`, not by hand. Everything it does
// lives in libdragon-c/node/ (the reactor, the control endpoint, the services).
#include "node/daemon.hpp"
#include "node/link.hpp"
#include "node/output.hpp"
#include "node/paths.hpp"

#include <dragon/dragon.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <getopt.h>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

void usage(FILE *to) {
    std::fprintf(to, "Usage: dragon-node --runtime-id ID [--node-id N] [--ready-fd FD] "
                     "[--life-fd FD] [--boot-fd FD]\n"
                     "       dragon-node --link [--node-id N]\n"
                     "The libdragon node daemon; started by `dragon`, not by hand. With --link\n"
                     "it is a node below the head: its parent daemon speaks to it on its stdin\n"
                     "and stdout (docs/multinode.md).\n");
}

constexpr int kBootWaitMs = 30000;

// The boot message on fd (the launcher's, for the head; the parent's link, for a node
// below it); false with a message.
bool read_boot(int fd, dragon::protocol::LinkBoot *out) {
    dragon::protocol::LinkMessage m;
    if (dragon_status_t st = dragon::node::read_link_message(fd, kBootWaitMs, &m);
        st != DRAGON_SUCCESS) {
        std::fprintf(stderr, "dragon-node: no boot message: %s\n", dragon_last_error());
        return false;
    }
    auto *b = std::get_if<dragon::protocol::LinkBoot>(&m);
    if (b == nullptr || !dragon::runtime::valid_runtime_id(b->runtime_id)) {
        std::fprintf(stderr, "dragon-node: the first message is not a valid boot message\n");
        return false;
    }
    *out = std::move(*b);
    return true;
}

// A node below the head: its boot message, its environment, its runtime directory on this
// host; stdin goes to /dev/null and stdout into a pipe relayed as the node's output, so
// that nothing but link messages reaches the parent on the link.
bool become_linked_node(dragon::node::DaemonOptions *o, long want_node) {
    int in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    int out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (in < 0 || out < 0 || !read_boot(in, &o->boot)) {
        return false;
    }
    if (want_node >= 0 && o->boot.node_id != static_cast<uint32_t>(want_node)) {
        std::fprintf(stderr, "dragon-node: started as node %ld, booted as node %u\n", want_node,
                     o->boot.node_id);
        return false;
    }
    for (const std::string &e : o->boot.env) {
        size_t eq = e.find('=');
        setenv(e.substr(0, eq).c_str(), e.substr(eq + 1).c_str(), 1);
    }
    o->runtime_id = o->boot.runtime_id;
    o->node_id = o->boot.node_id;
    std::string why;
    if (!dragon::runtime::make_private_base(&why)) {
        std::fprintf(stderr, "dragon-node: %s\n", why.c_str());
        return false;
    }
    std::string dir = dragon::runtime::runtime_dir(o->runtime_id);
    if (mkdir(dir.c_str(), 0700) != 0 &&
        (errno != EEXIST || !dragon::runtime::private_dir(dir, "runtime directory", &why))) {
        std::fprintf(stderr, "dragon-node: cannot use the runtime directory %s: %s\n", dir.c_str(),
                     why.empty() ? std::strerror(errno) : why.c_str());
        return false;
    }
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int p[2];
    if (null < 0 || pipe2(p, O_CLOEXEC) != 0) {
        return false;
    }
    dup2(null, STDIN_FILENO);
    close(null);
    dup2(p[1], STDOUT_FILENO);
    close(p[1]);
    o->stdout_relay = p[0];
    o->parent_in = in;
    o->parent_out = out;
    return true;
}

int run(int argc, char **argv) {
    dragon::node::DaemonOptions o;
    static const option opts[] = {{"runtime-id", required_argument, nullptr, 'r'},
                                  {"node-id", required_argument, nullptr, 'n'},
                                  {"ready-fd", required_argument, nullptr, 'R'},
                                  {"life-fd", required_argument, nullptr, 'L'},
                                  {"boot-fd", required_argument, nullptr, 'B'},
                                  {"link", no_argument, nullptr, 'K'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    int boot_fd = -1;
    bool link = false;
    long want_node = -1;
    while ((c = getopt_long(argc, argv, "r:n:h", opts, nullptr)) != -1) {
        switch (c) {
        case 'r':
            o.runtime_id = optarg;
            break;
        case 'n':
            o.node_id = static_cast<uint32_t>(std::strtoul(optarg, nullptr, 10));
            want_node = static_cast<long>(o.node_id);
            break;
        case 'B':
            boot_fd = std::atoi(optarg);
            break;
        case 'K':
            link = true;
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
    signal(SIGPIPE, SIG_IGN);
    if (link) {
        if (!become_linked_node(&o, want_node)) {
            return 1;
        }
    } else if (o.runtime_id.empty()) {
        usage(stderr);
        return 2;
    } else if (boot_fd >= 0) {
        bool ok = read_boot(boot_fd, &o.boot);
        close(boot_fd);
        if (!ok || o.boot.runtime_id != o.runtime_id || o.boot.node_id != o.node_id) {
            std::fprintf(stderr, "dragon-node: the launcher's boot message does not match\n");
            return 1;
        }
    } else {
        o.boot.runtime_id = o.runtime_id;
        o.boot.node_id = 0;
        o.boot.hosts = {""};
    }
    // The daemon leads a session of its own: every process of the runtime is in it unless
    // it leaves on purpose, which is how dragon-cleanup finds them without the daemon. A node
    // below the head is a session leader already (ssh, srun), or one of the head's machine
    // (the many-daemons mode), whose session it stays in.
    if (!link && getsid(0) != getpid()) {
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
