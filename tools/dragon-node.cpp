// dragon-node: the per-node daemon (docs/runtime.md). On a single node it is also the head
// node's global services. One thread, one epoll loop: the control socket, its clients, each
// managed process's pidfd and output pipes, and the launcher's life pipe.
#include "process/spawn.hpp"
#include "runtime/line_relay.hpp"
#include "runtime/paths.hpp"
#include "runtime/protocol.hpp"

#include <dragon/dragon.h>

#include <algorithm>
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
#include <sys/socket.h>
#include <sys/stat.h>
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

struct Join {
    int client;
    uint64_t id;
    int64_t deadline; // -1: none
};

struct Proc {
    uint64_t puid = 0;
    dp::Spawned sp;
    bool exited = false;
    int exit_code = -1; // 128+N for signal N
    std::unique_ptr<rt::LineRelay> out, err;
    std::vector<Join> joins;
};

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
    void reply(int fd, uint64_t id, dragon_status_t st, json extra = json::object());
    void on_spawn(int fd, const rt::Message &m);
    void on_join(int fd, const rt::Message &m);
    void on_signal(int fd, const rt::Message &m);
    void pump(Proc &p, int fd, bool is_err);
    void reap(Proc &p);
    void finish_joins(Proc &p, bool timeout_only);
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
    bool stopping_ = false;
    dragon_machine_t *machine_ = nullptr;
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
    if (rc != 0 || listen(listen_fd_, 64) != 0) {
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

void Daemon::reply(int fd, uint64_t id, dragon_status_t st, json extra) {
    extra["id"] = id;
    extra["status"] = static_cast<int>(st);
    if (st != DRAGON_SUCCESS && !extra.contains("error")) {
        extra["error"] = dragon_last_error();
    }
    std::string s = rt::encode(extra);
    send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}

void Daemon::client_message(int fd) {
    std::string buf(rt::kMaxMessage, '\0');
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
        drop(fd);
        close(fd);
        for (auto &[puid, p] : procs_) {
            std::erase_if(p.joins, [fd](const Join &j) { return j.client == fd; });
        }
        return;
    }
    buf.resize(static_cast<size_t>(n));
    rt::Message m;
    if (rt::decode(buf, &m) != DRAGON_SUCCESS) {
        log_line("dragon-node: bad control message: %s", dragon_last_error());
        reply(fd, 0, DRAGON_BAD_DESCRIPTOR);
        return;
    }
    if (m.op == "hello") {
        reply(fd, m.id, DRAGON_SUCCESS,
              {{"protocol", rt::kProtocolVersion}, {"node_id", node_id_}});
    } else if (m.op == "spawn") {
        on_spawn(fd, m);
    } else if (m.op == "join") {
        on_join(fd, m);
    } else if (m.op == "signal") {
        on_signal(fd, m);
    } else if (m.op == "shutdown") {
        reply(fd, m.id, DRAGON_SUCCESS);
        stopping_ = true;
    } else {
        dragon_status_t st = DRAGON_NOT_SUPPORTED;
        reply(fd, m.id, st, {{"error", "unknown op '" + m.op + "'"}});
    }
}

void Daemon::on_spawn(int fd, const rt::Message &m) {
    dp::SpawnRequest req;
    std::vector<uint32_t> gpus;
    if (dragon_status_t st = rt::parse_spawn(m.body, &req, &gpus); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    if (!req.cpus.empty() || !gpus.empty()) {
        // The policy's affinity, checked against this node (loaded on first use:
        // DRAGON_TOPOLOGY_XML can stand in for it) and turned into a binding.
        if (machine_ == nullptr && dragon_machine_load(nullptr, &machine_) != DRAGON_SUCCESS) {
            reply(fd, m.id, DRAGON_INTERNAL);
            return;
        }
        auto policy = std::make_unique<dragon_policy_t>();
        dragon_policy_init(policy.get());
        policy->cpu_count =
            static_cast<uint32_t>(std::min<size_t>(req.cpus.size(), DRAGON_POLICY_MAX_CPUS));
        std::copy_n(req.cpus.begin(), policy->cpu_count, policy->cpus);
        policy->gpu_count =
            static_cast<uint32_t>(std::min<size_t>(gpus.size(), DRAGON_POLICY_MAX_GPUS));
        std::copy_n(gpus.begin(), policy->gpu_count, policy->gpus);
        auto binding = std::make_unique<dragon_policy_binding_t>();
        binding->struct_size = sizeof *binding;
        if (dragon_status_t st = dragon_policy_bind(policy.get(), machine_, binding.get());
            st != DRAGON_SUCCESS) {
            reply(fd, m.id, st);
            return;
        }
        req.cpus.assign(binding->cpus, binding->cpus + binding->cpu_count);
        if (binding->gpu_variable[0] != '\0') {
            req.set_env.emplace_back(binding->gpu_variable, binding->gpu_value);
            if (binding->gpu_vendor == DRAGON_GPU_VENDOR_NVIDIA) {
                req.set_env.emplace_back("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
            }
        }
    }
    uint64_t puid = (static_cast<uint64_t>(node_id_) << 32) | next_puid_++;
    req.set_env.emplace_back("DRAGON_RUNTIME_ID", runtime_id_);
    req.set_env.emplace_back("DRAGON_NODE_ID", std::to_string(node_id_));
    req.set_env.emplace_back("DRAGON_NODE_SOCKET", socket_path_);
    req.set_env.emplace_back("DRAGON_PUID", std::to_string(puid));
    req.new_process_group = true;
    Proc p;
    p.puid = puid;
    if (dragon_status_t st = dp::spawn(req, &p.sp); st != DRAGON_SUCCESS) {
        reply(fd, m.id, st);
        return;
    }
    auto relay_to = [](int out_fd) {
        return std::make_unique<rt::LineRelay>(
            [out_fd](std::string_view line) { write_all(out_fd, line); });
    };
    p.out = relay_to(STDOUT_FILENO);
    p.err = relay_to(STDERR_FILENO);
    auto [it, inserted] = procs_.emplace(puid, std::move(p));
    Proc &q = it->second;
    add(q.sp.pidfd, kPidfd, puid);
    for (int f : {q.sp.out_fd, q.sp.err_fd}) {
        if (f >= 0) {
            fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK);
            add(f, f == q.sp.out_fd ? kOut : kErr, puid);
        }
    }
    reply(fd, m.id, DRAGON_SUCCESS, {{"puid", puid}, {"pid", q.sp.pid}});
}

void Daemon::on_join(int fd, const rt::Message &m) {
    auto puid = m.body.find("puid");
    auto it = puid != m.body.end() && puid->is_number_unsigned()
                  ? procs_.find(puid->get<uint64_t>())
                  : procs_.end();
    if (it == procs_.end()) {
        reply(fd, m.id, DRAGON_NOT_FOUND, {{"error", "no such process"}});
        return;
    }
    int64_t timeout = -1;
    if (auto t = m.body.find("timeout_ns"); t != m.body.end() && t->is_number_integer()) {
        timeout = t->get<int64_t>();
    }
    Proc &p = it->second;
    if (p.exited) {
        reply(fd, m.id, DRAGON_SUCCESS, {{"exit_code", p.exit_code}});
        return;
    }
    if (timeout == 0) {
        reply(fd, m.id, DRAGON_TIMEOUT, {{"error", "still running"}});
        return;
    }
    p.joins.push_back(Join{fd, m.id, timeout < 0 ? -1 : now_ns() + timeout});
}

void Daemon::on_signal(int fd, const rt::Message &m) {
    auto puid = m.body.find("puid");
    auto sig = m.body.find("signal");
    auto it = puid != m.body.end() && puid->is_number_unsigned()
                  ? procs_.find(puid->get<uint64_t>())
                  : procs_.end();
    if (it == procs_.end() || sig == m.body.end() || !sig->is_number_integer() ||
        sig->get<int>() < 0 || sig->get<int>() >= NSIG) {
        reply(fd, m.id, DRAGON_INVALID_ARGUMENT, {{"error", "no such process or signal"}});
        return;
    }
    if (!it->second.exited) {
        kill(-it->second.sp.pid, sig->get<int>()); // its whole process group
    }
    reply(fd, m.id, DRAGON_SUCCESS);
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
    if (waitpid(p.sp.pid, &status, WNOHANG) != p.sp.pid) {
        return;
    }
    // Relay what the pipes still hold (output written just before the exit), then close.
    for (bool is_err : {false, true}) {
        int fd = is_err ? p.sp.err_fd : p.sp.out_fd;
        if (fd >= 0) {
            pump(p, fd, is_err);
            if ((is_err ? p.sp.err_fd : p.sp.out_fd) >= 0) {
                (is_err ? p.err : p.out)->finish();
                drop(fd);
                close(fd);
                (is_err ? p.sp.err_fd : p.sp.out_fd) = -1;
            }
        }
    }
    drop(p.sp.pidfd);
    close(p.sp.pidfd);
    p.sp.pidfd = -1;
    p.exited = true;
    p.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    finish_joins(p, false);
}

void Daemon::finish_joins(Proc &p, bool timeout_only) {
    int64_t now = now_ns();
    std::vector<Join> keep;
    for (const Join &j : p.joins) {
        if (p.exited && !timeout_only) {
            reply(j.client, j.id, DRAGON_SUCCESS, {{"exit_code", p.exit_code}});
        } else if (j.deadline >= 0 && now >= j.deadline) {
            reply(j.client, j.id, DRAGON_TIMEOUT, {{"error", "still running"}});
        } else {
            keep.push_back(j);
        }
    }
    p.joins = std::move(keep);
}

void Daemon::teardown() {
    // Every managed process group: SIGTERM, then SIGKILL after 1 s. The daemon is a child
    // subreaper, so what those processes started and left behind is its child too and is
    // waited for here: nothing of the runtime outlives the daemon.
    for (auto &[puid, p] : procs_) {
        if (!p.exited) {
            kill(-p.sp.pid, SIGTERM);
        }
    }
    int64_t give_up = now_ns() + 1000000000LL;
    for (auto &[puid, p] : procs_) {
        while (!p.exited && now_ns() < give_up) {
            struct pollfd pf = {p.sp.pidfd, POLLIN, 0};
            poll(&pf, 1, 20);
            reap(p);
        }
    }
    for (auto &[puid, p] : procs_) {
        kill(-p.sp.pid, SIGKILL); // the group: stragglers of an exited leader too
        if (!p.exited) {
            waitpid(p.sp.pid, nullptr, 0);
            p.exited = true;
        }
        dp::close_fds(&p.sp);
    }
    // Orphans adopted by this subreaper (they may have left the group): wait for them,
    // SIGKILLing what is still there after 1 s.
    int64_t orphans_deadline = now_ns() + 1000000000LL;
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
            orphans_deadline = now_ns() + 1000000000LL;
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
        int64_t next_deadline = -1;
        for (auto &[puid, p] : procs_) {
            for (const Join &j : p.joins) {
                if (j.deadline >= 0 && (next_deadline < 0 || j.deadline < next_deadline)) {
                    next_deadline = j.deadline;
                }
            }
        }
        int wait_ms =
            next_deadline < 0
                ? -1
                : static_cast<int>(std::max<int64_t>(0, next_deadline - now_ns()) / 1000000 + 1);
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
        for (auto &[puid, p] : procs_) {
            finish_joins(p, true);
        }
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
