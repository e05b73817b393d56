// dragon-node: the per-node daemon (docs/runtime.md). On a single node it is also the head
// node's global services. One thread, one epoll loop: the control socket and its clients,
// SIGCHLD (a signalfd), each managed process's output pipes, the daemon's own stdout and
// stderr, and the launcher's life pipe. Nothing in the loop blocks: every descriptor it
// writes is non-blocking with a bounded queue (docs/runtime.md, "Flow control").
#include "node/sink.hpp"
#include "process/reaper.hpp"
#include "process/spawn.hpp"
#include "runtime/fdpass.hpp"
#include "runtime/line_relay.hpp"
#include "runtime/paths.hpp"
#include "runtime/protocol.hpp"

#include "common/error.hpp"

#include <dragon/dragon.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <getopt.h>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace rt = dragon::runtime;
namespace dp = dragon::proc;
using json = nlohmann::json;

constexpr int64_t kSecond = 1000000000LL;
constexpr size_t kMaxEntries = 65536;              // registry names
constexpr size_t kMaxRegistryBytes = 64 << 20;     // registry names and values, in all
constexpr size_t kClientQueueMessages = 1024;      // replies a client has not read yet
constexpr size_t kClientQueueBytes = 16 << 20;     // ... and their bytes
constexpr size_t kClientWaiters = 65536;           // parked joins and lookups per client
constexpr size_t kSinkHigh = 1 << 20;              // output queued: stop reading producers
constexpr size_t kSinkLow = 256 << 10;             // ... and read them again
constexpr int64_t kFlushNoProgress = 10 * kSecond; // teardown: give up on a stuck reader
constexpr int64_t kGrace = kSecond;                // teardown: SIGTERM, then SIGKILL
constexpr int64_t kGiveUp = 5 * kSecond;           // ... and no more waiting after that

int64_t now_ns() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * kSecond + ts.tv_nsec;
}

using dragon::node::Sink;

Sink g_out; // the daemon's stdout: relayed stdout of managed processes
Sink g_err; // its stderr: relayed stderr, and the daemon's log

void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_line(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n =
        std::vsnprintf(buf, sizeof buf - 1, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    if (n < 0) {
        return;
    }
    size_t len = std::min(static_cast<size_t>(n), sizeof buf - 2);
    buf[len] = '\n';
    if (g_err.fd() >= 0) {
        g_err.put(std::string_view(buf, len + 1));
    } else {
        ssize_t ignored = write(STDERR_FILENO, buf, len + 1);
        (void)ignored;
    }
}

// Descriptors received with a request (SCM_RIGHTS): closed unless taken.
struct ReceivedFds {
    std::vector<int> fds;
    size_t next = 0;
    ReceivedFds() = default;
    ReceivedFds(const ReceivedFds &) = delete;
    ReceivedFds &operator=(const ReceivedFds &) = delete;
    ~ReceivedFds() {
        for (size_t i = next; i < fds.size(); ++i) {
            close(fds[i]);
        }
    }
    int take() { return next < fds.size() ? fds[next++] : -1; }
    size_t left() const { return fds.size() - next; }
};

// A reply a client has not taken yet, with its own copies of the descriptors it carries.
struct Outgoing {
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
    ~Outgoing() {
        for (int f : fds) {
            if (f >= 0) {
                close(f);
            }
        }
    }
};

struct Client {
    int fd = -1;
    pid_t pid = -1;
    std::deque<Outgoing> out; // replies waiting for room in the socket
    size_t out_bytes = 0;
    bool want_out = false;      // EPOLLOUT registered
    bool dead = false;          // closed at the end of this round
    std::set<uint64_t> waiters; // its parked joins and lookups
};

// What a spawn request asked for, shared by the processes it started (count > 1) and kept
// for their restarts; owns the descriptors the requester sent.
struct Launch {
    rt::SpawnSpec spec;
    std::array<int, 3> fds{-1, -1, -1};
    Launch() = default;
    Launch(const Launch &) = delete;
    Launch &operator=(const Launch &) = delete;
    ~Launch() {
        for (int fd : fds) {
            if (fd >= 0) {
                close(fd);
            }
        }
    }
};

struct Proc {
    uint64_t puid = 0;
    std::shared_ptr<const Launch> launch; // until the process has ended for good
    pid_t pid = -1;                       // of the latest incarnation
    int pidfd = -1;      // while it is an unreaped child: the only handle it is signalled by
    bool exited = false; // for good: no restart follows
    int exit_code = -1;  // 128+N for signal N; the last incarnation's while restarting
    uint32_t restarts = 0;
    uint32_t quick_failures = 0; // in a row, each within 1 s of its start
    int64_t started_ns = 0;
    int64_t restart_at = -1;     // a restart is due then
    bool final = false;          // stopped on purpose: never restart
    uint64_t relays[2] = {0, 0}; // its stdout and stderr relays (ids), 0: none
};

// A relayed output pipe: lives until its end of file (a process's children may hold it
// after the process has ended), feeding one sink.
struct Relay {
    int fd = -1;
    Sink *sink = nullptr;
    std::unique_ptr<rt::LineRelay> lines;
    bool paused = false; // the sink is full: not read until it drains
};

// A parked request: a join (until every puid has ended for good) or a lookup (until the
// name is registered), each with an optional deadline.
struct Waiter {
    bool is_join = true;
    int client = -1;
    uint64_t request = 0;
    int64_t deadline = -1;       // -1: none
    std::vector<uint64_t> puids; // join
    size_t remaining = 0;        // join: puids not ended yet
    std::string name;            // lookup
};

struct Entry {
    int kind;
    std::string value;
};

class Daemon {
  public:
    Daemon(std::string runtime_id, long node_id, int life_fd)
        : runtime_id_(std::move(runtime_id)), node_id_(node_id), life_fd_(life_fd) {}

    bool start(int ready_fd);
    int run();

    // A node daemon holds two descriptors per running process (relays, pidfd): raise the
    // soft limit to the hard one, and give managed processes the limit we were given.
    void raise_nofile() {
        struct rlimit rl {};
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            nofile_soft_ = static_cast<long>(rl.rlim_cur);
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }

  private:
    enum Kind : uint64_t { kListen = 1, kClient, kLife, kChild, kRelay, kSink };
    enum TimerKind : uint64_t { kWaiterTimer = 1, kRestartTimer };
    static uint64_t tag(uint64_t k, uint64_t v) { return (k << 56) | v; }
    void watch(int fd, Kind k, uint64_t v, uint32_t events = EPOLLIN) {
        struct epoll_event ev {};
        ev.events = events;
        ev.data.u64 = tag(k, v);
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
    void rewatch(int fd, Kind k, uint64_t v, uint32_t events) {
        struct epoll_event ev {};
        ev.events = events;
        ev.data.u64 = tag(k, v);
        epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
    }
    void unwatch(int fd) { epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }

    // clients and replies
    void accept_client();
    void client_readable(Client &c);
    void client_writable(Client &c);
    void reply(int fd, uint64_t id, dragon_status_t st, json extra = json::object(),
               const std::vector<int> &fds = {});
    void close_dead_clients();
    void close_client(Client &c);
    void dispatch(int fd, const rt::Message &m, ReceivedFds &fds);
    // operations
    void on_spawn(int fd, const rt::Message &m, ReceivedFds &fds);
    void on_join(int fd, const rt::Message &m);
    void on_signal(int fd, const rt::Message &m);
    void on_status(int fd, const rt::Message &m);
    void on_register(int fd, const rt::Message &m);
    void on_lookup(int fd, const rt::Message &m);
    void on_unregister(int fd, const rt::Message &m);
    void on_node(int fd, const rt::Message &m);
    bool find_all(int fd, const rt::Message &m, std::vector<uint64_t> *puids);
    dragon_status_t load_machine();
    dragon_status_t check_placement(const rt::SpawnSpec &spec);
    dragon_status_t bind_policy(rt::SpawnSpec *spec);
    // processes
    dragon_status_t start_proc(Proc &p);
    void signal_proc(Proc &p, int sig);
    void children_ended();
    void proc_ended(Proc &p, int status);
    void end_for_good(Proc &p, int code);
    void restart_due(uint64_t puid);
    // output
    uint64_t add_relay(int fd, Sink *sink);
    void pump(uint64_t relay_id, bool drain);
    void close_relay(uint64_t relay_id);
    void update_sinks();
    // parked requests
    uint64_t park(Waiter w);
    void unpark(uint64_t wid);
    void answer_join(uint64_t wid, bool timed_out);
    void timers_due();
    int wait_ms() const;
    // the end
    void teardown(bool now);
    void write_daemon_file();

    std::string runtime_id_;
    long node_id_;
    int life_fd_;
    int ep_ = -1;
    int listen_fd_ = -1;
    int child_fd_ = -1; // signalfd for SIGCHLD
    std::string socket_path_;
    uint64_t next_puid_ = 1;
    std::map<uint64_t, Proc> procs_;
    std::unordered_map<pid_t, uint64_t> live_; // pid of an unreaped process -> its puid
    std::map<int, Client> clients_;
    std::map<uint64_t, Relay> relays_;
    uint64_t next_relay_ = 1;
    std::map<uint64_t, Waiter> waiters_;
    uint64_t next_waiter_ = 1;
    std::multimap<uint64_t, uint64_t> joins_by_puid_;      // puid -> waiter
    std::multimap<std::string, uint64_t> lookups_by_name_; // name -> waiter
    std::set<std::pair<int64_t, uint64_t>> timers_;        // (when, tag(kind, id))
    std::map<std::string, Entry> registry_;
    size_t registry_bytes_ = 0;
    bool stopping_ = false;
    bool stop_now_ = false; // teardown without the SIGTERM grace period
    bool sinks_watched_[2] = {false, false};
    std::array<int, 3> pending_pipes_{-1, -1, -1}; // the last start's pipe ends, to be taken
    dragon_machine_t *machine_ = nullptr;
    long nofile_soft_ = -1; // the soft descriptor limit the daemon was started with
};

bool Daemon::start(int ready_fd) {
    socket_path_ = rt::node_socket(runtime_id_, node_id_);
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof addr.sun_path) {
        log_line("dragon-node: socket path %s is too long", socket_path_.c_str());
        return false;
    }
    std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    mode_t old = umask(0077);
    int rc = bind(listen_fd_, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr);
    umask(old);
    if (rc != 0 || listen(listen_fd_, 128) != 0) {
        log_line("dragon-node: cannot listen on %s: %s", socket_path_.c_str(), strerror(errno));
        return false;
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, nullptr);
    child_fd_ = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    watch(listen_fd_, kListen, 0);
    watch(child_fd_, kChild, 0);
    if (life_fd_ >= 0) {
        fcntl(life_fd_, F_SETFD, FD_CLOEXEC); // not for the processes we start
        watch(life_fd_, kLife, 0);
    }
    write_daemon_file();
    ssize_t ignored = write(ready_fd, "ready\n", 6);
    (void)ignored;
    close(ready_fd);
    return true;
}

// <runtime dir>/daemon: "pid start-time", the daemon's identity for dragon-cleanup, which
// finds the runtime's processes by the session the daemon leads (docs/runtime.md).
void Daemon::write_daemon_file() {
    std::string path = rt::runtime_dir(runtime_id_) + "/daemon";
    std::string line = std::to_string(getpid()) + " " + std::to_string(dp::start_time(getpid())) +
                       " " + std::to_string(getsid(0) == getpid() ? getpid() : -1) + "\n";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        ssize_t ignored = write(fd, line.data(), line.size());
        (void)ignored;
        close(fd);
    }
}

void Daemon::accept_client() {
    for (;;) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            return;
        }
        struct ucred cred {};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
            log_line("dragon-node: refused connection from uid %u (pid %d): not the runtime's "
                     "owner (uid %u)",
                     static_cast<unsigned>(cred.uid), static_cast<int>(cred.pid),
                     static_cast<unsigned>(geteuid()));
            close(fd);
            continue;
        }
        Client &c = clients_[fd];
        c.fd = fd;
        c.pid = cred.pid;
        watch(fd, kClient, static_cast<uint64_t>(fd));
    }
}

// The reply that stands in for one too large for its socket (a Unix datagram must fit the
// socket's send buffer, about 200 KB).
std::string too_large(uint64_t id, size_t size) {
    log_line("dragon-node: a reply of %zu bytes is too large for its socket", size);
    return rt::encode({{"id", id},
                       {"status", static_cast<int>(DRAGON_INTERNAL)},
                       {"error", "node daemon: the reply (" + std::to_string(size) +
                                     " bytes) is too large for the socket"}});
}

// A reply goes out at once if the socket takes it, else waits in the client's queue; a
// client that lets its queue fill up is not reading and is disconnected.
void Daemon::reply(int fd, uint64_t id, dragon_status_t st, json extra,
                   const std::vector<int> &fds) {
    auto it = clients_.find(fd);
    if (it == clients_.end() || it->second.dead) {
        return;
    }
    Client &c = it->second;
    extra["id"] = id;
    extra["status"] = static_cast<int>(st);
    if (st != DRAGON_SUCCESS && !extra.contains("error")) {
        extra["error"] = dragon_last_error();
    }
    std::string bytes = rt::encode(extra);
    if (c.out.empty()) {
        if (rt::send_with_fds(fd, bytes, fds, MSG_DONTWAIT) >= 0) {
            return;
        }
        if (errno == EMSGSIZE) { // more than the socket can ever take: say so instead
            bytes = too_large(id, bytes.size());
            if (rt::send_with_fds(fd, bytes, {}, MSG_DONTWAIT) >= 0) {
                return;
            }
        }
        if (errno != EAGAIN) {
            c.dead = true; // gone
            return;
        }
    }
    if (c.out.size() >= kClientQueueMessages || c.out_bytes + bytes.size() > kClientQueueBytes) {
        log_line("dragon-node: client pid %d does not read its replies (%zu waiting): "
                 "disconnected",
                 static_cast<int>(c.pid), c.out.size());
        c.dead = true;
        return;
    }
    c.out_bytes += bytes.size();
    c.out.emplace_back(id, std::move(bytes), fds);
    if (!c.want_out) {
        c.want_out = true;
        rewatch(fd, kClient, static_cast<uint64_t>(fd), EPOLLIN | EPOLLOUT);
    }
}

void Daemon::client_writable(Client &c) {
    while (!c.out.empty()) {
        Outgoing &o = c.out.front();
        if (rt::send_with_fds(c.fd, o.bytes, o.fds, MSG_DONTWAIT) < 0) {
            if (errno == EMSGSIZE) { // more than the socket can ever take: say so instead
                c.out_bytes -= o.bytes.size();
                o.bytes = too_large(o.id, o.bytes.size());
                c.out_bytes += o.bytes.size();
                for (int f : o.fds) {
                    close(f);
                }
                o.fds.clear();
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
        rewatch(c.fd, kClient, static_cast<uint64_t>(c.fd), EPOLLIN);
    }
}

void Daemon::close_client(Client &c) {
    unwatch(c.fd);
    close(c.fd);
    for (uint64_t wid : std::set<uint64_t>(c.waiters)) {
        unpark(wid);
    }
}

void Daemon::close_dead_clients() {
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->second.dead) {
            close_client(it->second);
            it = clients_.erase(it);
        } else {
            ++it;
        }
    }
}

void Daemon::client_readable(Client &c) {
    // At most a few requests per round, so that one busy client cannot starve the others.
    for (int i = 0; i < 16 && !c.dead; ++i) {
        std::string buf(rt::kMaxMessage, '\0');
        ReceivedFds fds;
        bool truncated = false;
        ssize_t n = rt::recv_with_fds(c.fd, buf.data(), buf.size(), &fds.fds, &truncated);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            c.dead = true;
            return;
        }
        buf.resize(static_cast<size_t>(n));
        rt::Message m;
        if (truncated) {
            log_line("dragon-node: truncated control message (too long, or too many descriptors)");
            reply(c.fd, 0, DRAGON_BAD_DESCRIPTOR, {{"error", "message or descriptors truncated"}});
            continue;
        }
        if (rt::decode(buf, &m) != DRAGON_SUCCESS) {
            log_line("dragon-node: bad control message: %s", dragon_last_error());
            reply(c.fd, 0, DRAGON_BAD_DESCRIPTOR);
            continue;
        }
        dispatch(c.fd, m, fds);
        if (stopping_) {
            return;
        }
    }
}

void Daemon::dispatch(int fd, const rt::Message &m, ReceivedFds &fds) {
    if (m.op == "spawn") {
        on_spawn(fd, m, fds);
        return;
    }
    if (fds.left() != 0) {
        reply(fd, m.id, DRAGON_BAD_DESCRIPTOR, {{"error", "'" + m.op + "' takes no descriptors"}});
        return;
    }
    if (m.op == "hello") {
        reply(fd, m.id, DRAGON_SUCCESS,
              {{"protocol", rt::kProtocolVersion}, {"node_id", node_id_}});
    } else if (m.op == "join") {
        on_join(fd, m);
    } else if (m.op == "signal") {
        on_signal(fd, m);
    } else if (m.op == "status") {
        on_status(fd, m);
    } else if (m.op == "register") {
        on_register(fd, m);
    } else if (m.op == "lookup") {
        on_lookup(fd, m);
    } else if (m.op == "unregister") {
        on_unregister(fd, m);
    } else if (m.op == "node") {
        on_node(fd, m);
    } else if (m.op == "shutdown") {
        auto now = m.body.find("now");
        stop_now_ = now != m.body.end() && now->is_boolean() && now->get<bool>();
        reply(fd, m.id, DRAGON_SUCCESS);
        stopping_ = true;
    } else {
        reply(fd, m.id, DRAGON_NOT_SUPPORTED, {{"error", "unknown op '" + m.op + "'"}});
    }
}

dragon_status_t Daemon::load_machine() {
    // This node, loaded on first use (DRAGON_TOPOLOGY_XML can stand in for it).
    if (machine_ == nullptr) {
        return dragon_machine_load(nullptr, &machine_);
    }
    return DRAGON_SUCCESS;
}

dragon_status_t Daemon::check_placement(const rt::SpawnSpec &spec) {
    if (spec.host_id >= 0 && spec.host_id != node_id_) {
        return dragon::detail::fail(DRAGON_NOT_FOUND,
                                    "placement: no node with host id %lld in this runtime "
                                    "(it has node %ld)",
                                    static_cast<long long>(spec.host_id), node_id_);
    }
    if (!spec.host_name.empty()) {
        if (dragon_status_t st = load_machine(); st != DRAGON_SUCCESS) {
            return st;
        }
        dragon_node_info_t info{};
        info.struct_size = sizeof info;
        dragon_machine_info(machine_, &info);
        if (spec.host_name != info.host_name) {
            return dragon::detail::fail(DRAGON_NOT_FOUND,
                                        "placement: no node named '%s' in this runtime (it has "
                                        "'%s')",
                                        spec.host_name.c_str(), info.host_name);
        }
    }
    return DRAGON_SUCCESS;
}

// The policy's affinity, checked against this node and turned into a binding.
dragon_status_t Daemon::bind_policy(rt::SpawnSpec *spec) {
    dp::SpawnRequest &req = spec->req;
    if (req.cpus.empty() && spec->gpus.empty()) {
        return DRAGON_SUCCESS;
    }
    if (dragon_status_t st = load_machine(); st != DRAGON_SUCCESS) {
        return st;
    }
    auto policy = std::make_unique<dragon_policy_t>();
    dragon_policy_init(policy.get());
    policy->cpu_count =
        static_cast<uint32_t>(std::min<size_t>(req.cpus.size(), DRAGON_POLICY_MAX_CPUS));
    std::copy_n(req.cpus.begin(), policy->cpu_count, policy->cpus);
    policy->gpu_count =
        static_cast<uint32_t>(std::min<size_t>(spec->gpus.size(), DRAGON_POLICY_MAX_GPUS));
    std::copy_n(spec->gpus.begin(), policy->gpu_count, policy->gpus);
    auto binding = std::make_unique<dragon_policy_binding_t>();
    binding->struct_size = sizeof *binding;
    if (dragon_status_t st = dragon_policy_bind(policy.get(), machine_, binding.get());
        st != DRAGON_SUCCESS) {
        return st;
    }
    req.cpus.assign(binding->cpus, binding->cpus + binding->cpu_count);
    if (binding->gpu_variable[0] != '\0') {
        req.set_env.emplace_back(binding->gpu_variable, binding->gpu_value);
        if (binding->gpu_vendor == DRAGON_GPU_VENDOR_NVIDIA) {
            req.set_env.emplace_back("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
        }
    }
    return DRAGON_SUCCESS;
}

// Start (or restart) p from its launch; relay its relayed streams.
dragon_status_t Daemon::start_proc(Proc &p) {
    dp::SpawnRequest req = p.launch->spec.req;
    req.set_env.emplace_back("DRAGON_PUID", std::to_string(p.puid));
    dp::Spawned sp;
    if (dragon_status_t st = dp::spawn(req, &sp); st != DRAGON_SUCCESS) {
        return st;
    }
    p.pid = sp.pid;
    p.pidfd = std::exchange(sp.pidfd, -1);
    p.started_ns = now_ns();
    live_[p.pid] = p.puid;
    const auto &streams = p.launch->spec.streams;
    p.relays[0] =
        streams[1] == rt::Stream::kRelay ? add_relay(std::exchange(sp.out_fd, -1), &g_out) : 0;
    p.relays[1] =
        streams[2] == rt::Stream::kRelay ? add_relay(std::exchange(sp.err_fd, -1), &g_err) : 0;
    // What remains open in sp (pipe ends for the requester) is taken by on_spawn.
    pending_pipes_ = {sp.in_fd, sp.out_fd, sp.err_fd};
    return DRAGON_SUCCESS;
}

// Signal p's process group, only while p is an unreaped child (through its pidfd): a
// process that has been reaped is never signalled, nor is a group by a bare id.
void Daemon::signal_proc(Proc &p, int sig) {
    if (p.pidfd >= 0) {
        dp::signal_group(p.pidfd, p.pid, sig);
    } else if (live_.find(p.pid) != live_.end()) {
        kill(-p.pid, sig); // no pidfd (pidfd_open failed): unreaped, so still its group
    }
}

void Daemon::on_spawn(int fd, const rt::Message &m, ReceivedFds &fds) {
    auto launch = std::make_shared<Launch>();
    rt::SpawnSpec &spec = launch->spec;
    if (dragon_status_t st = rt::parse_spawn(m.body, &spec); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    if (fds.left() != static_cast<size_t>(spec.fds_expected())) {
        reply(fd, m.id, DRAGON_BAD_DESCRIPTOR,
              {{"error", "spawn: " + std::to_string(spec.fds_expected()) +
                             " descriptor(s) expected, " + std::to_string(fds.left()) + " sent"}});
        return;
    }
    for (int i = 0; i < 3; ++i) {
        if (spec.streams[static_cast<size_t>(i)] == rt::Stream::kFd) {
            launch->fds[static_cast<size_t>(i)] = fds.take();
            spec.req.fds[i] = launch->fds[static_cast<size_t>(i)];
        }
    }
    if (dragon_status_t st = check_placement(spec); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    if (dragon_status_t st = bind_policy(&spec); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    if (!spec.wait_mode.empty()) {
        spec.req.set_env.emplace_back("DRAGON_WAIT_MODE", spec.wait_mode);
    }
    spec.req.set_env.emplace_back("DRAGON_RUNTIME_ID", runtime_id_);
    spec.req.set_env.emplace_back("DRAGON_NODE_ID", std::to_string(node_id_));
    spec.req.set_env.emplace_back("DRAGON_NODE_SOCKET", socket_path_);
    if (const char *token = std::getenv(rt::kRuntimeTokenEnv)) { // over a request's own env
        spec.req.set_env.emplace_back(rt::kRuntimeTokenEnv, token);
    }
    spec.req.new_process_group = true;
    spec.req.die_with_parent = true;
    spec.req.nofile_soft = nofile_soft_;
    json puids = json::array();
    json pids = json::array();
    std::vector<int> give; // the requester's ends of "pipe" streams
    for (uint32_t i = 0; i < spec.count; ++i) {
        uint64_t puid = (static_cast<uint64_t>(node_id_) << 32) | next_puid_++;
        Proc p;
        p.puid = puid;
        p.launch = launch;
        if (dragon_status_t st = start_proc(p); st != DRAGON_SUCCESS) {
            // All or none: what this request started is killed (and reaped as usual).
            std::string why = dragon_last_error();
            for (const auto &v : puids) {
                Proc &q = procs_.at(v.get<uint64_t>());
                q.final = true;
                signal_proc(q, SIGKILL);
            }
            for (int f : give) {
                close(f);
            }
            reply(fd, m.id, st,
                  {{"error", spec.count > 1 ? "process " + std::to_string(i) + " of " +
                                                  std::to_string(spec.count) + ": " + why
                                            : why}});
            return;
        }
        for (size_t s = 0; s < 3; ++s) {
            if (spec.streams[s] == rt::Stream::kPipe) {
                give.push_back(pending_pipes_[s]);
            }
        }
        puids.push_back(puid);
        pids.push_back(p.pid);
        procs_.emplace(puid, std::move(p));
    }
    reply(fd, m.id, DRAGON_SUCCESS,
          {{"puid", puids[0]}, {"pid", pids[0]}, {"puids", puids}, {"pids", pids}}, give);
    for (int f : give) {
        close(f);
    }
}

// Every puid of the request, known here; else replies NOT_FOUND and returns false.
bool Daemon::find_all(int fd, const rt::Message &m, std::vector<uint64_t> *puids) {
    if (dragon_status_t st = rt::parse_puids(m.body, puids); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return false;
    }
    for (uint64_t puid : *puids) {
        if (procs_.find(puid) == procs_.end()) {
            reply(fd, m.id, DRAGON_NOT_FOUND,
                  {{"error", "no such process: " + std::to_string(puid)}});
            return false;
        }
    }
    return true;
}

void Daemon::on_join(int fd, const rt::Message &m) {
    std::vector<uint64_t> puids;
    if (!find_all(fd, m, &puids)) {
        return;
    }
    int64_t timeout = -1;
    if (auto t = m.body.find("timeout_ns"); t != m.body.end() && t->is_number_integer()) {
        timeout = t->get<int64_t>();
    }
    Waiter w;
    w.client = fd;
    w.request = m.id;
    w.deadline = timeout < 0 ? -1 : now_ns() + timeout;
    w.puids = std::move(puids);
    for (uint64_t puid : w.puids) {
        w.remaining += procs_.at(puid).exited ? 0 : 1;
    }
    if (w.remaining == 0 || timeout == 0) {
        // Done already, or timeout 0: the deadline has passed, so it is answered now.
        if (uint64_t wid = park(std::move(w)); wid != 0) {
            answer_join(wid, waiters_.at(wid).remaining != 0);
        }
        return;
    }
    park(std::move(w));
}

void Daemon::on_signal(int fd, const rt::Message &m) {
    std::vector<uint64_t> puids;
    if (!find_all(fd, m, &puids)) {
        return;
    }
    auto sig = m.body.find("signal");
    if (sig == m.body.end() || !sig->is_number_integer() || sig->get<int64_t>() < 0 ||
        sig->get<int64_t>() >= NSIG) {
        reply(fd, m.id, DRAGON_INVALID_ARGUMENT, {{"error", "no such signal"}});
        return;
    }
    auto fin = m.body.find("final");
    bool final = fin != m.body.end() && fin->is_boolean() && fin->get<bool>();
    reply(fd, m.id, DRAGON_SUCCESS);
    for (uint64_t puid : puids) {
        Proc &p = procs_.at(puid);
        if (final) {
            p.final = true;
            if (p.restart_at >= 0) { // between two lives: it ends here
                timers_.erase({p.restart_at, tag(kRestartTimer, puid)});
                end_for_good(p, p.exit_code);
            }
        }
        if (!p.exited && p.restart_at < 0) {
            signal_proc(p, sig->get<int>()); // its whole process group
        }
    }
}

void Daemon::on_status(int fd, const rt::Message &m) {
    std::vector<uint64_t> puids;
    if (!find_all(fd, m, &puids)) {
        return;
    }
    json out = json::array();
    for (uint64_t puid : puids) {
        const Proc &p = procs_.at(puid);
        out.push_back({{"puid", puid},
                       {"state", p.exited ? "exited" : "running"},
                       {"pid", p.pid},
                       {"exit_code", p.exited ? p.exit_code : -1},
                       {"restarts", p.restarts}});
    }
    reply(fd, m.id, DRAGON_SUCCESS, {{"processes", out}});
}

void Daemon::on_register(int fd, const rt::Message &m) {
    std::string name;
    if (dragon_status_t st = rt::parse_name(m.body, &name); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    auto kind = m.body.find("kind");
    auto value = m.body.find("value");
    if (kind == m.body.end() || !kind->is_number_integer() || kind->get<int64_t>() < 0 ||
        kind->get<int64_t>() > 255 || value == m.body.end() || !value->is_string() ||
        value->get_ref<const std::string &>().size() > 2 * rt::kMaxValueLength) {
        reply(fd, m.id, DRAGON_BAD_DESCRIPTOR,
              {{"error", "register: needs a \"kind\" (0..255) and a hex \"value\" of at most " +
                             std::to_string(rt::kMaxValueLength) + " bytes"}});
        return;
    }
    Entry e{kind->get<int>(), {}};
    if (dragon_status_t st = rt::hex_decode(value->get_ref<const std::string &>(), &e.value);
        st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    auto rep = m.body.find("replace");
    bool replace = rep != m.body.end() && rep->is_boolean() && rep->get<bool>();
    auto it = registry_.find(name);
    if (it != registry_.end() && !replace) {
        reply(fd, m.id, DRAGON_ALREADY_EXISTS,
              {{"error", "registry: '" + name + "' is registered already"}});
        return;
    }
    if (it == registry_.end() && registry_.size() >= kMaxEntries) {
        reply(fd, m.id, DRAGON_NO_SPACE,
              {{"error", "registry: full (" + std::to_string(kMaxEntries) + " names)"}});
        return;
    }
    size_t old_bytes = it == registry_.end() ? 0 : name.size() + it->second.value.size();
    size_t new_bytes = name.size() + e.value.size();
    if (registry_bytes_ - old_bytes + new_bytes > kMaxRegistryBytes) {
        reply(fd, m.id, DRAGON_NO_SPACE,
              {{"error", "registry: full (its names and values may take " +
                             std::to_string(kMaxRegistryBytes >> 20) + " MiB in all, " +
                             std::to_string(registry_bytes_) +
                             " bytes are taken); unregister names no longer needed"}});
        return;
    }
    registry_bytes_ = registry_bytes_ - old_bytes + new_bytes;
    registry_[name] = std::move(e);
    reply(fd, m.id, DRAGON_SUCCESS);
    // The lookups parked on this name are answered now.
    const Entry &entry = registry_.at(name);
    std::vector<uint64_t> found;
    for (auto [at, end] = lookups_by_name_.equal_range(name); at != end; ++at) {
        found.push_back(at->second);
    }
    for (uint64_t wid : found) {
        const Waiter &w = waiters_.at(wid);
        reply(w.client, w.request, DRAGON_SUCCESS,
              {{"kind", entry.kind},
               {"value", rt::hex_encode(entry.value.data(), entry.value.size())}});
        unpark(wid);
    }
}

void Daemon::on_lookup(int fd, const rt::Message &m) {
    std::string name;
    if (dragon_status_t st = rt::parse_name(m.body, &name); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    int64_t timeout = 0;
    if (auto t = m.body.find("timeout_ns"); t != m.body.end() && t->is_number_integer()) {
        timeout = t->get<int64_t>();
    }
    if (auto it = registry_.find(name); it != registry_.end()) {
        reply(fd, m.id, DRAGON_SUCCESS,
              {{"kind", it->second.kind},
               {"value", rt::hex_encode(it->second.value.data(), it->second.value.size())}});
        return;
    }
    if (timeout == 0) {
        reply(fd, m.id, DRAGON_NOT_FOUND, {{"error", "registry: no name '" + name + "'"}});
        return;
    }
    Waiter w;
    w.is_join = false;
    w.client = fd;
    w.request = m.id;
    w.deadline = timeout < 0 ? -1 : now_ns() + timeout;
    w.name = name;
    park(std::move(w));
}

void Daemon::on_unregister(int fd, const rt::Message &m) {
    std::string name;
    if (dragon_status_t st = rt::parse_name(m.body, &name); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    auto it = registry_.find(name);
    if (it == registry_.end()) {
        reply(fd, m.id, DRAGON_NOT_FOUND, {{"error", "registry: no name '" + name + "'"}});
        return;
    }
    registry_bytes_ -= name.size() + it->second.value.size();
    registry_.erase(it);
    reply(fd, m.id, DRAGON_SUCCESS);
}

// This node as the runtime sees it: id, host name, CPUs, NUMA domains, GPUs, and one policy
// per GPU (docs/runtime.md, "System").
void Daemon::on_node(int fd, const rt::Message &m) {
    if (dragon_status_t st = load_machine(); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    dragon_node_info_t info{};
    info.struct_size = sizeof info;
    dragon_machine_info(machine_, &info);
    json gpus = json::array();
    for (uint32_t i = 0; i < info.gpu_count; ++i) {
        dragon_gpu_info_t g{};
        g.struct_size = sizeof g;
        dragon_machine_gpu(machine_, i, &g);
        gpus.push_back({{"vendor", static_cast<int>(g.vendor)},
                        {"vendor_index", g.vendor_index},
                        {"numa", g.numa_node},
                        {"pci_bus_id", g.pci_bus_id}});
    }
    std::vector<dragon_policy_t> per_gpu(info.gpu_count);
    size_t count = 0;
    dragon_policy_per_gpu(machine_, per_gpu.data(), per_gpu.size(), &count);
    json policies = json::array();
    for (size_t i = 0; i < std::min(count, per_gpu.size()); ++i) {
        const dragon_policy_t &pol = per_gpu[i];
        policies.push_back({{"cpus", std::vector<uint32_t>(pol.cpus, pol.cpus + pol.cpu_count)},
                            {"gpus", std::vector<uint32_t>(pol.gpus, pol.gpus + pol.gpu_count)}});
    }
    reply(fd, m.id, DRAGON_SUCCESS,
          {{"node_id", node_id_},
           {"host_name", info.host_name},
           {"cpu_count", info.cpu_count},
           {"numa_count", info.numa_count},
           {"gpus", gpus},
           {"gpu_policies", policies}});
}

// SIGCHLD: reap every child that ended. Managed processes are handled; others are orphans
// the daemon adopted as a child subreaper, reaped at once so that they hold no pid.
void Daemon::children_ended() {
    struct signalfd_siginfo si[16];
    while (read(child_fd_, si, sizeof si) > 0) {
    }
    dp::reap_ended([this](pid_t pid, int status) {
        auto it = live_.find(pid);
        if (it == live_.end()) {
            return;
        }
        uint64_t puid = it->second;
        live_.erase(it);
        proc_ended(procs_.at(puid), status);
    });
}

void Daemon::proc_ended(Proc &p, int status) {
    close(p.pidfd);
    p.pidfd = -1;
    // What its pipes hold now (written just before the exit) goes out before the news of
    // its end; the pipes stay relayed until their end (its children may hold them).
    for (uint64_t &r : p.relays) {
        if (r != 0) {
            pump(r, true);
            r = 0;
        }
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    uint32_t max = p.launch->spec.max_restarts;
    if (code != 0 && !p.final && !stopping_ && p.restarts < max) {
        // Restart on failure: at once after a long life, else backing off (10 ms doubling,
        // at most 1 s) so that a program that cannot start does not spin.
        bool quick = now_ns() - p.started_ns < kSecond;
        p.quick_failures = quick ? p.quick_failures + 1 : 0;
        int64_t delay =
            quick ? std::min<int64_t>(kSecond,
                                      10000000LL << std::min<uint32_t>(p.quick_failures - 1, 7))
                  : 0;
        p.exit_code = code;
        p.restart_at = now_ns() + delay;
        timers_.insert({p.restart_at, tag(kRestartTimer, p.puid)});
        log_line("dragon-node: process %llu (%s) failed with exit status %d; restart %u of %u",
                 static_cast<unsigned long long>(p.puid), p.launch->spec.req.program.c_str(), code,
                 p.restarts + 1, max);
        return;
    }
    end_for_good(p, code);
}

void Daemon::end_for_good(Proc &p, int code) {
    p.exited = true;
    p.exit_code = code;
    p.restart_at = -1;
    p.launch.reset();
    std::vector<uint64_t> done;
    for (auto [at, end] = joins_by_puid_.equal_range(p.puid); at != end; ++at) {
        Waiter &w = waiters_.at(at->second);
        if (--w.remaining == 0) {
            done.push_back(at->second);
        }
    }
    for (uint64_t wid : done) {
        answer_join(wid, false);
    }
}

void Daemon::restart_due(uint64_t puid) {
    Proc &p = procs_.at(puid);
    p.restart_at = -1;
    ++p.restarts;
    if (start_proc(p) != DRAGON_SUCCESS) {
        log_line("dragon-node: process %llu could not restart: %s",
                 static_cast<unsigned long long>(p.puid), dragon_last_error());
        end_for_good(p, p.exit_code);
        return;
    }
    for (int &f : pending_pipes_) {
        if (f >= 0) {
            close(f);
            f = -1;
        }
    }
}

uint64_t Daemon::add_relay(int fd, Sink *sink) {
    uint64_t id = next_relay_++;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    Relay &r = relays_[id];
    r.fd = fd;
    r.sink = sink;
    r.lines = std::make_unique<rt::LineRelay>([sink](std::string_view b) { sink->put(b); });
    if (sink->queued() >= kSinkHigh) {
        r.paused = true; // watched once the sink has drained
        sink->paused.insert(id);
    } else {
        watch(fd, kRelay, id);
    }
    return id;
}

// Read a relayed pipe into its sink: until the sink is full (then the relay pauses, and its
// producer blocks on its own pipe, not the daemon), or with `drain` whatever the pipe holds.
void Daemon::pump(uint64_t relay_id, bool drain) {
    auto it = relays_.find(relay_id);
    if (it == relays_.end()) {
        return;
    }
    Relay &r = it->second;
    char buf[65536];
    // With drain, what the pipe holds now and no more: a writer that goes on writing does
    // not keep us here, nor grow the queue beyond what the pipe held.
    int drain_left = 0;
    if (drain && (ioctl(r.fd, FIONREAD, &drain_left) != 0 || drain_left < 0)) {
        drain_left = 0;
    }
    for (;;) {
        if (!drain && r.sink->queued() >= kSinkHigh) {
            if (!r.paused) {
                // Out of epoll altogether: a pipe whose writers are gone would report
                // EPOLLHUP on every round.
                r.paused = true;
                r.sink->paused.insert(relay_id);
                unwatch(r.fd);
            }
            return;
        }
        size_t want = sizeof buf;
        if (drain) {
            if (drain_left <= 0) {
                return;
            }
            want = std::min(want, static_cast<size_t>(drain_left));
        }
        ssize_t n = read(r.fd, buf, want);
        if (n > 0 && drain) {
            drain_left -= static_cast<int>(n);
        }
        if (n > 0) {
            r.lines->feed(std::string_view(buf, static_cast<size_t>(n)));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        close_relay(relay_id); // end of file: every writer is gone
        return;
    }
}

void Daemon::close_relay(uint64_t relay_id) {
    auto it = relays_.find(relay_id);
    if (it == relays_.end()) {
        return;
    }
    it->second.lines->finish();
    if (it->second.paused) {
        it->second.sink->paused.erase(relay_id);
    } else {
        unwatch(it->second.fd);
    }
    close(it->second.fd);
    relays_.erase(it);
}

// Sinks with a queue are watched for room; relays paused on a sink that has drained are
// read again.
void Daemon::update_sinks() {
    Sink *sinks[2] = {&g_out, &g_err};
    for (int i = 0; i < 2; ++i) {
        Sink &s = *sinks[i];
        bool want = s.queued() > 0 && s.pollable();
        if (want != sinks_watched_[i]) {
            if (want) {
                watch(s.fd(), kSink, static_cast<uint64_t>(i), EPOLLOUT);
            } else {
                unwatch(s.fd());
            }
            sinks_watched_[i] = want;
        }
        if (s.queued() < kSinkLow && !s.paused.empty()) {
            for (uint64_t id : s.paused) {
                Relay &r = relays_.at(id);
                r.paused = false;
                watch(r.fd, kRelay, id);
            }
            s.paused.clear();
        }
    }
}

uint64_t Daemon::park(Waiter w) {
    Client &c = clients_.at(w.client);
    if (c.waiters.size() >= kClientWaiters) {
        reply(w.client, w.request, DRAGON_NO_SPACE,
              {{"error", "node daemon: " + std::to_string(kClientWaiters) +
                             " joins and lookups wait for this connection already"}});
        return 0;
    }
    uint64_t wid = next_waiter_++;
    if (w.deadline >= 0) {
        timers_.insert({w.deadline, tag(kWaiterTimer, wid)});
    }
    if (w.is_join) {
        for (uint64_t puid : w.puids) {
            joins_by_puid_.emplace(puid, wid);
        }
    } else {
        lookups_by_name_.emplace(w.name, wid);
    }
    c.waiters.insert(wid);
    waiters_.emplace(wid, std::move(w));
    return wid;
}

void Daemon::unpark(uint64_t wid) {
    auto it = waiters_.find(wid);
    if (it == waiters_.end()) {
        return;
    }
    Waiter &w = it->second;
    if (w.deadline >= 0) {
        timers_.erase({w.deadline, tag(kWaiterTimer, wid)});
    }
    auto erase_one = [wid](auto &index, const auto &key) {
        for (auto [at, end] = index.equal_range(key); at != end; ++at) {
            if (at->second == wid) {
                index.erase(at);
                return;
            }
        }
    };
    if (w.is_join) {
        for (uint64_t puid : w.puids) {
            erase_one(joins_by_puid_, puid);
        }
    } else {
        erase_one(lookups_by_name_, w.name);
    }
    if (auto c = clients_.find(w.client); c != clients_.end()) {
        c->second.waiters.erase(wid);
    }
    waiters_.erase(it);
}

void Daemon::answer_join(uint64_t wid, bool timed_out) {
    const Waiter &w = waiters_.at(wid);
    json codes = json::array();
    for (uint64_t puid : w.puids) {
        const Proc &p = procs_.at(puid);
        codes.push_back(p.exited ? p.exit_code : -1);
    }
    if (timed_out) {
        reply(w.client, w.request, DRAGON_TIMEOUT,
              {{"error", "still running"}, {"exit_codes", codes}});
    } else {
        reply(w.client, w.request, DRAGON_SUCCESS,
              {{"exit_code", codes[0]}, {"exit_codes", codes}});
    }
    unpark(wid);
}

void Daemon::timers_due() {
    int64_t now = now_ns();
    while (!timers_.empty() && timers_.begin()->first <= now) {
        uint64_t t = timers_.begin()->second;
        timers_.erase(timers_.begin());
        uint64_t kind = t >> 56;
        uint64_t id = t & ((1ULL << 56) - 1);
        if (kind == kRestartTimer) {
            if (!stopping_) {
                restart_due(id);
            }
            continue;
        }
        auto it = waiters_.find(id);
        if (it == waiters_.end()) {
            continue;
        }
        it->second.deadline = -1; // its timer is gone already
        if (it->second.is_join) {
            answer_join(id, true);
        } else {
            const Waiter &w = it->second;
            reply(w.client, w.request, DRAGON_TIMEOUT,
                  {{"error", "registry: no name '" + w.name + "'"}});
            unpark(id);
        }
    }
}

int Daemon::wait_ms() const {
    if (timers_.empty()) {
        return -1;
    }
    int64_t left = timers_.begin()->first - now_ns();
    return static_cast<int>(std::min<int64_t>(INT32_MAX, std::max<int64_t>(0, left) / 1000000 + 1));
}

int Daemon::run() {
    while (!stopping_) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep_, evs, 64, wait_ms());
        for (int i = 0; i < n && !stopping_; ++i) {
            uint64_t kind = evs[i].data.u64 >> 56;
            uint64_t v = evs[i].data.u64 & ((1ULL << 56) - 1);
            if (kind == kListen) {
                accept_client();
            } else if (kind == kClient) {
                auto it = clients_.find(static_cast<int>(v));
                if (it == clients_.end()) {
                    continue;
                }
                if ((evs[i].events & EPOLLOUT) != 0) {
                    client_writable(it->second);
                }
                if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
                    client_readable(it->second);
                }
            } else if (kind == kLife) {
                log_line("dragon-node: the launcher is gone; tearing the runtime down");
                stopping_ = true;
                stop_now_ = true;
            } else if (kind == kChild) {
                children_ended();
            } else if (kind == kRelay) {
                pump(v, false);
            } else if (kind == kSink) {
                (v == 0 ? g_out : g_err).flush();
            }
        }
        timers_due();
        close_dead_clients();
        update_sinks();
    }
    teardown(stop_now_);
    return 0;
}

// Every process of the runtime ends (SIGTERM, then SIGKILL after the grace period; at once
// when `now`), their output is relayed to the end, and the runtime's files go. Only
// processes that are still this daemon's unreaped children are signalled: managed process
// groups through their leaders' pidfds, and every other child (an orphan the daemon adopted
// as a child subreaper) through a pidfd of its own; descendants of those become children
// as their parents die and are ended in turn. Nothing here blocks on a write: queued output
// goes out while the launcher waits for it (a slow reader, such as a pager, gets it all),
// and is dropped when the launcher hurries or leaves (or, without a launcher, when the
// reader has taken nothing for 10 s).
void Daemon::teardown(bool now) {
    unwatch(listen_fd_);
    close(listen_fd_);
    unlink(socket_path_.c_str());
    for (auto &[fd, c] : clients_) {
        c.dead = true;
    }
    close_dead_clients();
    auto signal_all = [this](int sig) {
        for (auto &[pid, puid] : live_) {
            signal_proc(procs_.at(puid), sig);
        }
        for (pid_t c : dp::children()) {
            if (live_.find(c) == live_.end()) {
                dp::signal_child(c, sig);
            }
        }
    };
    int64_t kill_at = now ? now_ns() : now_ns() + kGrace;
    if (!now) {
        signal_all(SIGTERM);
    }
    int64_t last_kill = -1;
    bool forced = now;
    for (;;) {
        children_ended();
        if (dp::reap_ended([](pid_t, int) {}) < 0 && live_.empty()) {
            break; // no child left
        }
        int64_t t = now_ns();
        if (t >= kill_at + kGiveUp) {
            log_line("dragon-node: %zu process(es) did not die of SIGKILL within %lld s "
                     "(stuck in the kernel?); leaving them",
                     dp::children().size(), static_cast<long long>(kGiveUp / kSecond));
            break;
        }
        if (t >= kill_at && (last_kill < 0 || t - last_kill >= 20000000)) {
            signal_all(SIGKILL); // again and again: adopted descendants are children now
            last_kill = t;
        }
        struct epoll_event evs[64];
        int n = epoll_wait(ep_, evs, 64, 10);
        for (int i = 0; i < n; ++i) {
            uint64_t kind = evs[i].data.u64 >> 56;
            uint64_t v = evs[i].data.u64 & ((1ULL << 56) - 1);
            if (kind == kRelay) {
                pump(v, false);
            } else if (kind == kSink) {
                (v == 0 ? g_out : g_err).flush();
            } else if (kind == kLife && !forced) {
                forced = true;
                kill_at = now_ns();
            } else if (kind == kLife) {
                unwatch(life_fd_); // seen
            }
        }
        update_sinks();
    }
    // Every writer of the relayed pipes is gone: what they hold goes out, then they close.
    while (!relays_.empty()) {
        uint64_t id = relays_.begin()->first;
        pump(id, true);
        close_relay(id);
    }
    // The output still queued goes out while its reader takes it.
    update_sinks();
    while (!forced && (g_out.queued() > 0 || g_err.queued() > 0)) {
        int64_t progress = std::max(g_out.last_progress(), g_err.last_progress());
        // With a launcher, as long as it waits (it hurries us on a signal, and its end is
        // seen at once); without one, until the reader has taken nothing for 10 s.
        if ((life_fd_ < 0 && now_ns() - std::max(progress, kill_at) > kFlushNoProgress) ||
            (!g_out.pollable() && !g_err.pollable())) {
            break;
        }
        struct epoll_event evs[4];
        int n = epoll_wait(ep_, evs, 4, 100);
        for (int i = 0; i < n; ++i) {
            uint64_t kind = evs[i].data.u64 >> 56;
            if (kind == kSink) {
                (evs[i].data.u64 & 1 ? g_err : g_out).flush();
            } else if (kind == kLife) {
                forced = true;
            }
        }
        update_sinks();
    }
    g_out.drop();
    g_err.drop();
    g_out.restore();
    g_err.restore();
    rt::remove_segments(runtime_id_);
    unlink((rt::runtime_dir(runtime_id_) + "/daemon").c_str());
    rmdir(rt::runtime_dir(runtime_id_).c_str()); // the launcher's, if it is gone
    dragon_machine_free(machine_);
    machine_ = nullptr;
}

void usage(FILE *to) {
    std::fprintf(to, "Usage: dragon-node --runtime-id ID [--node-id N] [--ready-fd FD] "
                     "[--life-fd FD]\n"
                     "The libdragon node daemon; started by `dragon`, not by hand.\n");
}

} // namespace

static int run(int argc, char **argv) {
    std::string runtime_id;
    long node_id = 0;
    int ready_fd = -1;
    int life_fd = -1;
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
            runtime_id = optarg;
            break;
        case 'n':
            node_id = std::strtol(optarg, nullptr, 10);
            break;
        case 'R':
            ready_fd = std::atoi(optarg);
            break;
        case 'L':
            life_fd = std::atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (runtime_id.empty()) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    // The daemon leads a session of its own: every process of the runtime is in it unless
    // it leaves on purpose, which is how dragon-cleanup finds them without the daemon.
    if (getsid(0) != getpid()) {
        setsid();
    }
    g_out.open(STDOUT_FILENO);
    g_err.open(STDERR_FILENO);
    // Processes that the managed ones start and abandon become ours, so that teardown can
    // wait for every one of them.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    Daemon d(runtime_id, node_id, life_fd);
    d.raise_nofile();
    if (!d.start(ready_fd)) {
        return 1;
    }
    return d.run();
}

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        log_line("dragon-node: internal error: %s", e.what());
        return 1;
    }
}
