#include "daemon.hpp"

#include "cluster.hpp"
#include "control.hpp"
#include "lifecycle.hpp"
#include "node_info.hpp"
#include "output.hpp"
#include "paths.hpp"
#include "pmix_server.hpp"
#include "process_manager.hpp"
#include "reactor.hpp"
#include "registry.hpp"

#include "../process/reaper.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace dragon::node {

namespace rt = dragon::runtime;
namespace pr = dragon::protocol;

namespace {

constexpr int64_t kFlushNoProgress = 10 * 1000000000LL; // give up on a reader taking nothing

// A node daemon holds two descriptors per running process (relays, pidfd): raise the soft
// limit to the hard one, and give managed processes the limit we were given.
long raise_nofile() {
    struct rlimit rl {};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        long soft = static_cast<long>(rl.rlim_cur);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        return soft;
    }
    return -1;
}

// <runtime dir>/daemon: "pid start-time session", the daemon's identity for dragon-cleanup,
// which finds the runtime's processes by the session the daemon leads (docs/runtime.md).
void write_daemon_file(const std::string &runtime_id) {
    std::string path = rt::runtime_dir(runtime_id) + "/daemon";
    std::string line = std::to_string(getpid()) + " " + std::to_string(proc::start_time(getpid())) +
                       " " + std::to_string(getsid(0) == getpid() ? getpid() : -1) + "\n";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        ssize_t ignored = write(fd, line.data(), line.size());
        (void)ignored;
        close(fd);
    }
}

} // namespace

int run_daemon(const DaemonOptions &options) {
    Reactor reactor;
    if (!reactor.ok()) {
        Output::log("dragon-node: no epoll or eventfd: %s", std::strerror(errno));
        return 1;
    }
    Output output(reactor);
    output.open();
    Control control(reactor, options.node_id);
    NodeContext node(reactor, control, output);
    node.runtime_id = options.runtime_id;
    node.node_id = options.node_id;
    if (options.node_id < options.boot.names.size()) {
        node.host_name = options.boot.names[options.node_id];
    }
    node.label = options.boot.label;
    node.socket_path = rt::node_socket(options.runtime_id, options.node_id);
    node.nofile_soft = raise_nofile();

    // The services, in start order; they stop in the reverse order.
    NodeInfo info(node);
    Registry registry(node);
    PmixServer pmix(node);
    ProcessManager processes(node, info, pmix);
    Lifecycle lifecycle(node, options.life_fd);
    Cluster cluster(node, info, options.boot, options.parent_in, options.parent_out);
    std::vector<Service *> services = {&info, &registry, &pmix, &processes, &lifecycle, &cluster};

    for (Service *s : services) {
        if (!s->start()) {
            Output::log("dragon-node: the %s service did not start", s->name());
            return 1;
        }
    }
    if (!control.listen(node.socket_path)) {
        return 1;
    }
    // One daemon file per host: in the many-daemons mode (wlm "test") the nodes share the
    // head's directory, and their processes its session.
    bool own_dir = options.node_id == 0 || options.boot.wlm != "test";
    if (own_dir) {
        write_daemon_file(options.runtime_id);
    }
    if (options.stdout_relay >= 0) {
        output.add_relay(options.stdout_relay, Output::kOut);
    }
    if (node.host_name.empty()) { // the machine's own, from here on
        if (pr::NodeReply me; info.describe(&me) == DRAGON_SUCCESS) {
            node.host_name = me.host_name;
        }
    }
    if (node.label) {
        output.set_log_label("[" + node.host_name + "] ");
    }
    // The launcher hears "ready" once every node has joined.
    cluster.when_up([&](bool ok, const std::string &why) {
        if (!ok) {
            Output::log("dragon-node: %s", why.c_str());
            node.stop(true);
        } else if (options.ready_fd >= 0) {
            ssize_t ignored = write(options.ready_fd, "ready\n", 6);
            (void)ignored;
        }
        if (options.ready_fd >= 0) {
            close(options.ready_fd);
        }
    });

    reactor.run();

    // The teardown: no more clients; each service's part; then the output. Queued output
    // goes out while the launcher waits for it (a slow reader, such as a pager, gets it
    // all), and is dropped when the launcher hurries or leaves (or, without a launcher, when
    // the reader has taken nothing for 10 s). Nothing here blocks on a write.
    control.close();
    for (auto it = services.rbegin(); it != services.rend(); ++it) {
        (*it)->stop();
    }
    output.close_relays(); // every writer of the relayed pipes is gone
    if (!node.stop_now && !node.hurry) {
        output.flush([&] {
            int64_t idle = Reactor::now_ns() - std::max(output.last_progress(), node.stop_at);
            return node.hurry || !output.pollable() ||
                   (!node.have_launcher && idle > kFlushNoProgress);
        });
    }
    output.drop();
    output.restore();
    // This node's segments (nodes of the many-daemons mode share /dev/shm).
    rt::remove_segments(options.runtime_id, static_cast<long>(options.node_id));
    if (own_dir) {
        unlink((rt::runtime_dir(options.runtime_id) + "/daemon").c_str());
        rmdir(rt::runtime_dir(options.runtime_id).c_str()); // the launcher's, if it is gone
    }
    return 0;
}

} // namespace dragon::node
