// dragon-node: the per-node daemon (docs/runtime.md). On a single node it is also the head
// node's global services. One thread, one epoll loop: the control socket, its clients, each
// managed process's pidfd and output pipes, and the launcher's life pipe.
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
#include <getopt.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace rt = dragon::runtime;
namespace dp = dragon::proc;
using json = nlohmann::json;

int64_t now_ns() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

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
    ssize_t ignored = write(STDERR_FILENO, buf, len + 1);
    (void)ignored;
}

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = write(fd, s.data(), s.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        s.remove_prefix(static_cast<size_t>(n));
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
    dp::Spawned sp;
    bool exited = false; // for good: no restart follows
    int exit_code = -1;  // 128+N for signal N; the last incarnation's while restarting
    uint32_t restarts = 0;
    uint32_t quick_failures = 0; // in a row, each within 1 s of its start
    int64_t started_ns = 0;
    int64_t restart_at = -1; // a restart is due then
    bool final = false;      // stopped on purpose: never restart
    std::unique_ptr<rt::LineRelay> out, err;
};

struct Join { // waits until every puid has ended for good
    int client;
    uint64_t id;
    int64_t deadline; // -1: none
    std::vector<uint64_t> puids;
};

struct Lookup { // waits until the name is registered
    int client;
    uint64_t id;
    int64_t deadline;
    std::string name;
};

struct Entry {
    int kind;
    std::string value;
};

constexpr size_t kMaxEntries = 65536;
constexpr int64_t kSecond = 1000000000LL;

class Daemon {
  public:
    Daemon(std::string runtime_id, long node_id, int life_fd)
        : runtime_id_(std::move(runtime_id)), node_id_(node_id), life_fd_(life_fd) {}

    bool start(int ready_fd);
    int run();

  private:
    enum Kind : uint64_t { kListen = 1, kClient, kLife, kPidfd, kOut, kErr };
    static uint64_t tag(Kind k, uint64_t v) { return (static_cast<uint64_t>(k) << 56) | v; }

    void add(int fd, Kind k, uint64_t v) {
        struct epoll_event ev {};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(k, v);
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
    void drop(int fd) { epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }

    void accept_client();
    void client_message(int fd);
    void client_gone(int fd);
    void reply(int fd, uint64_t id, dragon_status_t st, json extra = json::object(),
               const std::vector<int> &fds = {});
    void dispatch(int fd, const rt::Message &m, ReceivedFds &fds);
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
    dragon_status_t start_proc(Proc &p);
    void pump(Proc &p, int fd, bool is_err);
    void reap(Proc &p);
    void end_for_good(Proc &p, int code);
    void restart_due(Proc &p);
    void finish_joins(bool expired_only);
    void finish_lookups(const std::string *registered);
    int64_t next_deadline() const;
    void teardown();
    void kill_remaining_children();

    std::string runtime_id_;
    long node_id_;
    int life_fd_;
    int ep_ = -1;
    int listen_fd_ = -1;
    std::string socket_path_;
    uint64_t next_puid_ = 1;
    std::map<uint64_t, Proc> procs_;
    std::vector<Join> joins_;
    std::map<std::string, Entry> registry_;
    std::vector<Lookup> lookups_;
    bool stopping_ = false;
    dragon_machine_t *machine_ = nullptr;
    long nofile_soft_ = -1; // the soft descriptor limit the daemon was started with

  public:
    // A node daemon holds three descriptors per running process (relays, pidfd): raise the
    // soft limit to the hard one, and give managed processes the limit we were given.
    void raise_nofile() {
        struct rlimit rl {};
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            nofile_soft_ = static_cast<long>(rl.rlim_cur);
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
};

bool Daemon::start(int ready_fd) {
    socket_path_ = rt::node_socket(runtime_id_, node_id_);
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
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
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    add(listen_fd_, kListen, 0);
    if (life_fd_ >= 0) {
        add(life_fd_, kLife, 0);
    }
    write_all(ready_fd, "ready\n");
    close(ready_fd);
    return true;
}

void Daemon::accept_client() {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
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
        return;
    }
    add(fd, kClient, static_cast<uint64_t>(fd));
}

void Daemon::reply(int fd, uint64_t id, dragon_status_t st, json extra,
                   const std::vector<int> &fds) {
    extra["id"] = id;
    extra["status"] = static_cast<int>(st);
    if (st != DRAGON_SUCCESS && !extra.contains("error")) {
        extra["error"] = dragon_last_error();
    }
    rt::send_with_fds(fd, rt::encode(extra), fds);
}

void Daemon::client_gone(int fd) {
    drop(fd);
    close(fd);
    std::erase_if(joins_, [fd](const Join &j) { return j.client == fd; });
    std::erase_if(lookups_, [fd](const Lookup &l) { return l.client == fd; });
}

void Daemon::client_message(int fd) {
    std::string buf(rt::kMaxMessage, '\0');
    ReceivedFds fds;
    bool truncated = false;
    ssize_t n = rt::recv_with_fds(fd, buf.data(), buf.size(), &fds.fds, &truncated);
    if (n <= 0) {
        client_gone(fd);
        return;
    }
    buf.resize(static_cast<size_t>(n));
    rt::Message m;
    if (truncated) {
        log_line("dragon-node: truncated control message (too long, or too many descriptors)");
        reply(fd, 0, DRAGON_BAD_DESCRIPTOR, {{"error", "message or descriptors truncated"}});
        return;
    }
    if (rt::decode(buf, &m) != DRAGON_SUCCESS) {
        log_line("dragon-node: bad control message: %s", dragon_last_error());
        reply(fd, 0, DRAGON_BAD_DESCRIPTOR);
        return;
    }
    dispatch(fd, m, fds);
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
    if (dragon_status_t st = dp::spawn(req, &p.sp); st != DRAGON_SUCCESS) {
        return st;
    }
    p.started_ns = now_ns();
    auto relay_to = [](int out_fd) {
        return std::make_unique<rt::LineRelay>(
            [out_fd](std::string_view line) { write_all(out_fd, line); });
    };
    p.out = relay_to(STDOUT_FILENO);
    p.err = relay_to(STDERR_FILENO);
    add(p.sp.pidfd, kPidfd, p.puid);
    const auto &streams = p.launch->spec.streams;
    if (streams[1] == rt::Stream::kRelay) {
        fcntl(p.sp.out_fd, F_SETFL, fcntl(p.sp.out_fd, F_GETFL) | O_NONBLOCK);
        add(p.sp.out_fd, kOut, p.puid);
    }
    if (streams[2] == rt::Stream::kRelay) {
        fcntl(p.sp.err_fd, F_SETFL, fcntl(p.sp.err_fd, F_GETFL) | O_NONBLOCK);
        add(p.sp.err_fd, kErr, p.puid);
    }
    return DRAGON_SUCCESS;
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
    spec.req.new_process_group = true;
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
                kill(-q.sp.pid, SIGKILL);
            }
            reply(fd, m.id, st,
                  {{"error", spec.count > 1 ? "process " + std::to_string(i) + " of " +
                                                  std::to_string(spec.count) + ": " + why
                                            : why}});
            return;
        }
        if (spec.streams[0] == rt::Stream::kPipe) {
            give.push_back(std::exchange(p.sp.in_fd, -1));
        }
        if (spec.streams[1] == rt::Stream::kPipe) {
            give.push_back(std::exchange(p.sp.out_fd, -1));
        }
        if (spec.streams[2] == rt::Stream::kPipe) {
            give.push_back(std::exchange(p.sp.err_fd, -1));
        }
        puids.push_back(puid);
        pids.push_back(p.sp.pid);
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
    // Timeout 0: the deadline has passed already, so it is answered now, whichever way.
    joins_.push_back(Join{fd, m.id, timeout < 0 ? -1 : now_ns() + timeout, std::move(puids)});
    finish_joins(false);
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
    for (uint64_t puid : puids) {
        Proc &p = procs_.at(puid);
        if (final) {
            p.final = true;
            if (p.restart_at >= 0) { // between two lives: it ends here
                end_for_good(p, p.exit_code);
            }
        }
        if (!p.exited && p.restart_at < 0) {
            kill(-p.sp.pid, sig->get<int>()); // its whole process group
        }
    }
    reply(fd, m.id, DRAGON_SUCCESS);
    finish_joins(false);
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
                       {"pid", p.sp.pid},
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
    registry_[name] = std::move(e);
    reply(fd, m.id, DRAGON_SUCCESS);
    finish_lookups(&name);
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
    lookups_.push_back(Lookup{fd, m.id, timeout < 0 ? -1 : now_ns() + timeout, name});
    if (timeout == 0) {
        lookups_.back().deadline = 0;
    }
    finish_lookups(&name);
}

void Daemon::on_unregister(int fd, const rt::Message &m) {
    std::string name;
    if (dragon_status_t st = rt::parse_name(m.body, &name); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    if (registry_.erase(name) == 0) {
        reply(fd, m.id, DRAGON_NOT_FOUND, {{"error", "registry: no name '" + name + "'"}});
        return;
    }
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

void Daemon::pump(Proc &p, int fd, bool is_err) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            (is_err ? p.err : p.out)->feed(std::string_view(buf, static_cast<size_t>(n)));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        // EOF or error: this stream is done.
        (is_err ? p.err : p.out)->finish();
        drop(fd);
        close(fd);
        (is_err ? p.sp.err_fd : p.sp.out_fd) = -1;
        return;
    }
}

void Daemon::reap(Proc &p) {
    int status = 0;
    if (p.sp.pidfd < 0 || waitpid(p.sp.pid, &status, WNOHANG) != p.sp.pid) {
        return;
    }
    // Relay what the pipes still hold (output written just before the exit), then close.
    for (bool is_err : {false, true}) {
        int fd = is_err ? p.sp.err_fd : p.sp.out_fd;
        bool relayed = p.launch->spec.streams[is_err ? 2 : 1] == rt::Stream::kRelay;
        if (fd >= 0 && relayed) {
            pump(p, fd, is_err);
            if ((is_err ? p.sp.err_fd : p.sp.out_fd) >= 0) {
                (is_err ? p.err : p.out)->finish();
                drop(fd);
            }
        }
    }
    drop(p.sp.pidfd);
    pid_t pid = p.sp.pid;
    dp::close_fds(&p.sp);
    p.sp.pid = pid; // its process group may outlive it (teardown kills stragglers)
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
    finish_joins(false);
}

void Daemon::restart_due(Proc &p) {
    p.restart_at = -1;
    ++p.restarts;
    if (start_proc(p) != DRAGON_SUCCESS) {
        log_line("dragon-node: process %llu could not restart: %s",
                 static_cast<unsigned long long>(p.puid), dragon_last_error());
        end_for_good(p, p.exit_code);
    }
}

void Daemon::finish_joins(bool expired_only) {
    int64_t now = now_ns();
    std::vector<Join> keep;
    for (Join &j : joins_) {
        bool all = true;
        json codes = json::array();
        for (uint64_t puid : j.puids) {
            const Proc &p = procs_.at(puid);
            all = all && p.exited;
            codes.push_back(p.exited ? p.exit_code : -1);
        }
        if (all && !expired_only) {
            reply(j.client, j.id, DRAGON_SUCCESS, {{"exit_code", codes[0]}, {"exit_codes", codes}});
        } else if (j.deadline >= 0 && now >= j.deadline) {
            reply(j.client, j.id, DRAGON_TIMEOUT,
                  {{"error", "still running"}, {"exit_codes", codes}});
        } else {
            keep.push_back(std::move(j));
        }
    }
    joins_ = std::move(keep);
}

// Answer the lookups of `registered` (just registered), and those whose time is up.
void Daemon::finish_lookups(const std::string *registered) {
    int64_t now = now_ns();
    std::vector<Lookup> keep;
    for (Lookup &l : lookups_) {
        auto it = registry_.find(l.name);
        if (registered != nullptr && l.name == *registered && it != registry_.end()) {
            reply(l.client, l.id, DRAGON_SUCCESS,
                  {{"kind", it->second.kind},
                   {"value", rt::hex_encode(it->second.value.data(), it->second.value.size())}});
        } else if (l.deadline >= 0 && now >= l.deadline) {
            reply(l.client, l.id, l.deadline == 0 ? DRAGON_NOT_FOUND : DRAGON_TIMEOUT,
                  {{"error", "registry: no name '" + l.name + "'"}});
        } else {
            keep.push_back(std::move(l));
        }
    }
    lookups_ = std::move(keep);
}

int64_t Daemon::next_deadline() const {
    int64_t next = -1;
    auto consider = [&next](int64_t t) {
        if (t >= 0 && (next < 0 || t < next)) {
            next = t;
        }
    };
    for (const Join &j : joins_) {
        consider(j.deadline);
    }
    for (const Lookup &l : lookups_) {
        consider(l.deadline);
    }
    for (const auto &[puid, p] : procs_) {
        consider(p.restart_at);
    }
    return next;
}

void Daemon::teardown() {
    // Every managed process group: SIGTERM, then SIGKILL after 1 s. The daemon is a child
    // subreaper, so what those processes started and left behind is its child too and is
    // waited for here: nothing of the runtime outlives the daemon.
    for (auto &[puid, p] : procs_) {
        if (!p.exited && p.restart_at < 0) {
            kill(-p.sp.pid, SIGTERM);
        }
    }
    int64_t give_up = now_ns() + kSecond;
    for (auto &[puid, p] : procs_) {
        while (!p.exited && p.restart_at < 0 && now_ns() < give_up) {
            struct pollfd pf = {p.sp.pidfd, POLLIN, 0};
            poll(&pf, 1, 20);
            reap(p);
        }
    }
    for (auto &[puid, p] : procs_) {
        kill(-p.sp.pid, SIGKILL); // the group: stragglers of an exited leader too
        if (!p.exited && p.restart_at < 0) {
            waitpid(p.sp.pid, nullptr, 0);
        }
        p.exited = true;
        dp::close_fds(&p.sp);
    }
    // Orphans adopted by this subreaper (they may have left the group): wait for them,
    // SIGKILLing what is still there after 1 s.
    int64_t orphans_deadline = now_ns() + kSecond;
    for (;;) {
        pid_t got = waitpid(-1, nullptr, WNOHANG);
        if (got < 0 && errno == ECHILD) {
            break;
        }
        if (got > 0) {
            continue;
        }
        if (now_ns() >= orphans_deadline) {
            kill_remaining_children();
            orphans_deadline = now_ns() + kSecond;
        }
        struct timespec ms5 = {0, 5000000};
        nanosleep(&ms5, nullptr);
    }
    rt::remove_segments(runtime_id_);
    unlink(socket_path_.c_str());
    rmdir(rt::runtime_dir(runtime_id_).c_str()); // the launcher's, if it is gone
    dragon_machine_free(machine_);
    machine_ = nullptr;
}

// SIGKILL every process whose parent is this daemon (found in /proc).
void Daemon::kill_remaining_children() {
    DIR *proc = opendir("/proc");
    if (proc == nullptr) {
        return;
    }
    pid_t self = getpid();
    while (struct dirent *e = readdir(proc)) {
        long pid = std::strtol(e->d_name, nullptr, 10);
        if (pid <= 0) {
            continue;
        }
        char path[64];
        std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = std::fopen(path, "r");
        if (f == nullptr) {
            continue;
        }
        char buf[512] = {};
        size_t n = std::fread(buf, 1, sizeof buf - 1, f);
        std::fclose(f);
        buf[n] = '\0';
        const char *close_paren = std::strrchr(buf, ')');
        int ppid = 0;
        char state = 0;
        if (close_paren != nullptr && std::sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 &&
            ppid == self) {
            kill(static_cast<pid_t>(pid), SIGKILL);
        }
    }
    closedir(proc);
}

int Daemon::run() {
    while (!stopping_) {
        int64_t next = next_deadline();
        int wait_ms = next < 0
                          ? -1
                          : static_cast<int>(std::min<int64_t>(
                                INT32_MAX, std::max<int64_t>(0, next - now_ns()) / 1000000 + 1));
        struct epoll_event evs[32];
        int n = epoll_wait(ep_, evs, 32, wait_ms);
        for (int i = 0; i < n; ++i) {
            auto kind = static_cast<Kind>(evs[i].data.u64 >> 56);
            uint64_t v = evs[i].data.u64 & ((1ULL << 56) - 1);
            if (kind == kListen) {
                accept_client();
            } else if (kind == kClient) {
                client_message(static_cast<int>(v));
            } else if (kind == kLife) {
                log_line("dragon-node: the launcher is gone; tearing the runtime down");
                stopping_ = true;
            } else if (auto it = procs_.find(v); it != procs_.end()) {
                Proc &p = it->second;
                if (kind == kPidfd) {
                    reap(p);
                } else if (kind == kOut && p.sp.out_fd >= 0) {
                    pump(p, p.sp.out_fd, false);
                } else if (kind == kErr && p.sp.err_fd >= 0) {
                    pump(p, p.sp.err_fd, true);
                }
            }
        }
        int64_t now = now_ns();
        for (auto &[puid, p] : procs_) {
            if (p.restart_at >= 0 && now >= p.restart_at && !stopping_) {
                restart_due(p);
            }
        }
        finish_joins(true);
        finish_lookups(nullptr);
    }
    teardown();
    return 0;
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
