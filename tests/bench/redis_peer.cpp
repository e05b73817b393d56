// See redis_peer.hpp. Children are started with posix_spawn (no shell), watched through
// pidfds in one poll loop with their output pipes, and reaped with waitpid.
#include "redis_peer.hpp"

#include "bench_common.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace bench::redis {
namespace {

using Clock = std::chrono::steady_clock;

// The one key redis-benchmark uses without -r.
constexpr const char *kKey = "key:__rand_int__";

std::string errno_text(const char *what, int err) {
    return std::string(what) + ": " + std::strerror(err);
}

int pidfd_open(pid_t pid) {
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Milliseconds left until deadline, for poll(); 0 once it has passed.
int ms_left(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::clamp<long long>(left.count(), 0, 60 * 60 * 1000));
}

// True once the process behind pidfd has exited, waiting up to timeout_ms for it.
bool exited_within(int pidfd, int timeout_ms) {
    pollfd p{pidfd, POLLIN, 0};
    int rc;
    do {
        rc = poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

void reap(pid_t pid, int *status) {
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
    }
}

// A running child: its pidfd and, when captured, the read ends of its stdout and stderr.
struct Child {
    pid_t pid = -1;
    int pidfd = -1;
    int out = -1;
    int err = -1;
    std::string out_text;
    std::string err_text;
    int status = 0;
    bool reaped = false;
    bool killed = false; // by us, at the deadline
};

void close_fd(int *fd) {
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

// Starts argv[0] with stdin from /dev/null and stdout/stderr into pipes (capture) or
// /dev/null. The child gets no other descriptor of ours, default handling of the signals we
// stop it with, and no blocked signals, whatever the benchmark process has set.
bool spawn(const std::vector<std::string> &args, bool capture, Child *c, std::string *why) {
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    if (capture && (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)) {
        *why = errno_text("pipe2", errno);
        for (int fd : {out[0], out[1], err[0], err[1]}) {
            if (fd >= 0) {
                close(fd);
            }
        }
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (capture) {
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // A descriptor we hold without O_CLOEXEC (another pipe's write end, a socket) would
    // otherwise keep a pipe open after its child exits, or a port bound after we stop.
    posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
#endif
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGHUP}) {
        sigaddset(&defaults, sig);
    }
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<char *> argv;
    for (const auto &a : args) {
        argv.push_back(const_cast<char *>(a.c_str()));
    }
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (capture) {
        close(out[1]);
        close(err[1]);
    }
    if (rc != 0) {
        *why = errno_text(("posix_spawn " + args[0]).c_str(), rc);
        if (capture) {
            close(out[0]);
            close(err[0]);
        }
        return false;
    }
    *c = Child{};
    c->pid = pid;
    c->pidfd = pidfd_open(pid);
    c->out = capture ? out[0] : -1;
    c->err = capture ? err[0] : -1;
    if (c->pidfd < 0) {
        *why = errno_text("pidfd_open", errno);
        kill(pid, SIGKILL); // still our unreaped child: the pid cannot have been reused
        reap(pid, &c->status);
        close_fd(&c->out);
        close_fd(&c->err);
        return false;
    }
    return true;
}

// Kills and reaps whatever is left of c, and closes its descriptors.
void finish(Child *c) {
    if (!c->reaped && c->pid > 0) {
        if (!exited_within(c->pidfd, 0)) {
            pidfd_send_signal(c->pidfd, SIGKILL);
            c->killed = true;
        }
        reap(c->pid, &c->status);
        c->reaped = true;
    }
    close_fd(&c->pidfd);
    close_fd(&c->out);
    close_fd(&c->err);
}

// Drains the children's pipes and reaps them as they exit; those still running at the
// deadline are killed. One poll loop, so no child's full pipe can stall another.
void wait_all(std::vector<Child> &children, Clock::time_point deadline) {
    char buf[4096];
    for (;;) {
        std::vector<pollfd> fds;
        std::vector<std::pair<Child *, int>> who; // which child, 0 out / 1 err / 2 pidfd
        for (auto &c : children) {
            if (c.out >= 0) {
                fds.push_back({c.out, POLLIN, 0});
                who.emplace_back(&c, 0);
            }
            if (c.err >= 0) {
                fds.push_back({c.err, POLLIN, 0});
                who.emplace_back(&c, 1);
            }
            if (!c.reaped && c.pidfd >= 0) {
                fds.push_back({c.pidfd, POLLIN, 0});
                who.emplace_back(&c, 2);
            }
        }
        if (fds.empty()) {
            break;
        }
        int rc = poll(fds.data(), fds.size(), ms_left(deadline));
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            break; // the deadline (or a poll failure): kill what is left below
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].revents == 0) {
                continue;
            }
            Child *c = who[i].first;
            if (who[i].second == 2) {
                reap(c->pid, &c->status);
                c->reaped = true;
                continue;
            }
            int *fd = who[i].second == 0 ? &c->out : &c->err;
            std::string *text = who[i].second == 0 ? &c->out_text : &c->err_text;
            ssize_t got = read(*fd, buf, sizeof buf);
            if (got > 0) {
                text->append(buf, static_cast<std::size_t>(got));
            } else if (got == 0 || errno != EINTR) {
                close_fd(fd);
            }
        }
    }
    for (auto &c : children) {
        finish(&c);
    }
}

// What went wrong with a child, for a row's note; empty when it exited 0.
std::string failure(const Child &c, const char *name) {
    std::string what;
    if (c.killed) {
        what = "killed at the deadline";
    } else if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) {
        return {};
    } else if (WIFEXITED(c.status)) {
        what = "exit " + std::to_string(WEXITSTATUS(c.status));
    } else if (WIFSIGNALED(c.status)) {
        what = std::string("signal ") + strsignal(WTERMSIG(c.status));
    } else {
        what = "status " + std::to_string(c.status);
    }
    std::string first = c.err_text.substr(0, c.err_text.find('\n'));
    return std::string(name) + ": " + what + (first.empty() ? "" : " (" + first + ")");
}

// A port the kernel just handed out on 127.0.0.1 and took back; redis-server binds it next.
// Another process could take it in between, which start() notices and retries.
int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

std::string resp(const std::vector<std::string> &args);

// Sends one command in RESP and returns the first line of the reply ("+PONG", ":64", ...),
// or nothing if there is none by the deadline. Enough for PING and STRLEN.
std::optional<std::string> command(int port, const std::vector<std::string> &args,
                                   Clock::time_point deadline) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return std::nullopt;
    }
    std::optional<std::string> reply;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    std::string req = resp(args);
    std::size_t sent = 0;
    std::string got;
    bool connected = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    if (!connected && errno != EINPROGRESS) {
        close(fd);
        return std::nullopt;
    }
    for (;;) {
        pollfd p{fd, static_cast<short>(sent < req.size() ? POLLOUT : POLLIN), 0};
        int rc = poll(&p, 1, ms_left(deadline));
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
            break;
        }
        if (sent < req.size()) {
            ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                break;
            }
            sent += n > 0 ? static_cast<std::size_t>(n) : 0;
            continue;
        }
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
            break;
        }
        got.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        auto eol = got.find("\r\n");
        if (eol != std::string::npos) {
            reply = got.substr(0, eol);
            break;
        }
    }
    close(fd);
    return reply;
}

// A connection that times round trips itself, for latency(): redis-benchmark's histogram
// starts at 10 us (8 us buckets down there), too coarse for a loopback round trip. One
// request in flight, TCP_NODELAY as hiredis sets it; each reply is read whole.
class Connection {
  public:
    ~Connection() { close_fd(&fd_); }

    bool open(int port, Clock::time_point deadline, std::string *why) {
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd_ < 0) {
            *why = errno_text("socket", errno);
            return false;
        }
        int one = 1;
        setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(port));
        if (connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
            *why = errno_text("connect", errno);
            return false;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (!wait_for(POLLOUT, deadline) ||
            getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            *why = err != 0 ? errno_text("connect", err) : "connect: timed out";
            return false;
        }
        return true;
    }

    // Sends req and reads one reply: a simple string, an integer or a bulk string.
    bool round_trip(const std::string &req, Clock::time_point deadline, std::string *why) {
        for (std::size_t sent = 0; sent < req.size();) {
            ssize_t n = send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
            } else if ((errno != EAGAIN && errno != EINTR) || !wait_for(POLLOUT, deadline)) {
                *why = "send to redis-server failed or timed out";
                return false;
            }
        }
        std::size_t need = 0; // the whole reply's length, once its first line is in
        for (;;) {
            if (need == 0) {
                auto eol = in_.find("\r\n");
                if (eol != std::string::npos) {
                    if (in_[0] == '+' || in_[0] == ':') {
                        need = eol + 2;
                    } else if (in_[0] == '$' && std::atol(in_.c_str() + 1) >= 0) {
                        auto len = static_cast<std::size_t>(std::atol(in_.c_str() + 1));
                        if (len >= kDirect) {
                            in_.erase(0, eol + 2);
                            return read_value(len, deadline, why);
                        }
                        need = eol + 2 + len + 2;
                    } else {
                        *why =
                            "redis-server replied " + in_.substr(0, std::min<std::size_t>(eol, 80));
                        return false;
                    }
                }
            }
            if (need != 0 && in_.size() >= need) {
                in_.erase(0, need);
                return true;
            }
            char buf[65536];
            ssize_t n = recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                in_.append(buf, static_cast<std::size_t>(n));
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR) ||
                       !wait_for(POLLIN, deadline)) {
                *why = "no reply from redis-server in time";
                return false;
            }
        }
    }

  private:
    // A large value goes straight into one buffer of its size, reused from call to call, as
    // a client would land a value in its own memory; no growing string to copy it through.
    static constexpr std::size_t kDirect = 1 << 16;

    bool read_value(std::size_t len, Clock::time_point deadline, std::string *why) {
        value_.resize(len + 2); // the value and its \r\n
        std::size_t have = std::min(in_.size(), value_.size());
        std::memcpy(value_.data(), in_.data(), have);
        in_.erase(0, have);
        while (have < value_.size()) {
            ssize_t n = recv(fd_, value_.data() + have, value_.size() - have, 0);
            if (n > 0) {
                have += static_cast<std::size_t>(n);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR) ||
                       !wait_for(POLLIN, deadline)) {
                *why = "no reply from redis-server in time";
                return false;
            }
        }
        return true;
    }

    bool wait_for(short events, Clock::time_point deadline) {
        pollfd p{fd_, events, 0};
        int rc;
        do {
            rc = poll(&p, 1, ms_left(deadline));
        } while (rc < 0 && errno == EINTR);
        return rc > 0 && (p.revents & (POLLERR | POLLNVAL)) == 0;
    }

    int fd_ = -1;
    std::string in_;
    std::vector<char> value_;
};

std::string resp(const std::vector<std::string> &args) {
    std::string req = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto &arg : args) {
        req += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    }
    return req;
}

// RFC 4180-ish: fields separated by commas, optionally quoted, "" inside quotes is a quote,
// lines end in \n or \r\n.
std::vector<std::vector<std::string>> parse_csv(const std::string &text) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false;
    bool any = false; // the current row has content
    for (std::size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (quoted) {
            if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (ch == '"') {
                quoted = false;
            } else {
                field += ch;
            }
        } else if (ch == '"') {
            quoted = true;
            any = true;
        } else if (ch == ',') {
            row.push_back(std::move(field));
            field.clear();
            any = true;
        } else if (ch == '\n' || ch == '\r') {
            if (any || !field.empty()) {
                row.push_back(std::move(field));
                rows.push_back(std::move(row));
            }
            field.clear();
            row.clear();
            any = false;
        } else {
            field += ch;
            any = true;
        }
    }
    if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
    }
    return rows;
}

bool to_double(const std::string &s, double *v) {
    if (s.empty()) {
        return false;
    }
    char *end = nullptr;
    errno = 0;
    *v = std::strtod(s.c_str(), &end);
    return errno == 0 && end == s.c_str() + s.size() && std::isfinite(*v);
}

struct ClientFigures {
    double rps = 0;
    double p50_ms = 0;
    double p99_ms = 0;
};

// The row for test (SET, GET) of redis-benchmark --csv output, located by the header's
// column names rather than by position.
std::optional<ClientFigures> parse_benchmark(const std::string &out, const char *test,
                                             std::string *why) {
    auto rows = parse_csv(out);
    const std::vector<std::string> *header = nullptr;
    for (const auto &r : rows) {
        if (!r.empty() && r[0] == "test") {
            header = &r;
        } else if (header != nullptr && !r.empty() && strcasecmp(r[0].c_str(), test) == 0) {
            ClientFigures f;
            double *dest[] = {&f.rps, &f.p50_ms, &f.p99_ms};
            const char *names[] = {"rps", "p50_latency_ms", "p99_latency_ms"};
            for (int k = 0; k < 3; ++k) {
                auto col = std::find(header->begin(), header->end(), names[k]);
                auto at = static_cast<std::size_t>(col - header->begin());
                if (col == header->end() || at >= r.size() || !to_double(r[at], dest[k])) {
                    *why = std::string("redis-benchmark --csv: no usable ") + names[k];
                    return std::nullopt;
                }
            }
            return f;
        }
    }
    *why =
        std::string("redis-benchmark --csv: no ") + test + " row in \"" + out.substr(0, 120) + "\"";
    return std::nullopt;
}

std::vector<std::string> benchmark_args(int port, Op op, std::size_t size, int pipeline, long n) {
    return {kBenchmarkPath,
            "-h",
            "127.0.0.1",
            "-p",
            std::to_string(port),
            "-c",
            "1",
            "-n",
            std::to_string(n),
            "-d",
            std::to_string(size),
            "-P",
            std::to_string(std::max(pipeline, 1)),
            "-t",
            op_name(op),
            "--csv",
            "-q"};
}

// Runs `clients` redis-benchmark processes at once; their figures, or why not.
// With parse false only their exit status counts (a one-request run's rate can be "inf").
std::optional<std::vector<ClientFigures>> run_clients(int port, const Load &load, std::string *why,
                                                      bool parse = true) {
    auto deadline = Clock::now() + load.timeout;
    std::vector<Child> children(static_cast<std::size_t>(std::max(load.clients, 1)));
    auto args = benchmark_args(port, load.op, load.value_size, load.pipeline, load.n_per_client);
    for (std::size_t i = 0; i < children.size(); ++i) {
        if (!spawn(args, true, &children[i], why)) {
            children.resize(i); // the others still get killed and reaped
            wait_all(children, Clock::now());
            return std::nullopt;
        }
    }
    wait_all(children, deadline);
    std::vector<ClientFigures> figures;
    const char *test = load.op == Op::Set ? "SET" : "GET";
    for (const auto &c : children) {
        std::string bad = failure(c, "redis-benchmark");
        if (!bad.empty()) {
            *why = bad;
            return std::nullopt;
        }
        if (!parse) {
            continue;
        }
        auto f = parse_benchmark(c.out_text, test, why);
        if (!f) {
            return std::nullopt;
        }
        figures.push_back(*f);
    }
    return figures;
}

// Makes the key a GET reads hold value_size bytes: a SET by redis-benchmark with the same
// -d writes the same key, then STRLEN checks it.
bool prime_key(const Server &server, const Load &load, std::string *why) {
    Load prime = load;
    prime.op = Op::Set;
    prime.clients = 1;
    prime.pipeline = 1;
    prime.n_per_client = 1;
    if (!run_clients(server.port(), prime, why, false)) {
        return false;
    }
    auto len = command(server.port(), {"STRLEN", kKey}, Clock::now() + std::chrono::seconds(5));
    if (!len || *len != ":" + std::to_string(load.value_size)) {
        *why = "the key GET reads is not " + std::to_string(load.value_size) +
               " bytes (STRLEN: " + len.value_or("no reply") + ")";
        return false;
    }
    return true;
}

double median_of(std::vector<double> v) {
    if (v.empty()) {
        return NAN;
    }
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

const char *op_name(Op op) {
    return op == Op::Set ? "set" : "get";
}

bool available(std::string *why) {
    for (const char *path : {kServerPath, kBenchmarkPath}) {
        if (access(path, X_OK) != 0) {
            *why = std::string(path) + " not found (apt-get install redis-server redis-tools)";
            return false;
        }
    }
    return true;
}

Server::Server(std::chrono::milliseconds ready_timeout) {
    if (!available(&error_)) {
        return;
    }
    char tmpl[] = "/tmp/bench-redis-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        error_ = errno_text("mkdtemp", errno);
        return;
    }
    dir_ = tmpl;
    auto deadline = Clock::now() + ready_timeout;
    // A port taken between free_port() and redis-server's bind makes it exit: try another.
    for (int attempt = 0; attempt < 5; ++attempt) {
        bool retry = false;
        if (start_once(deadline, &retry) || !retry) {
            break;
        }
    }
    if (!ok()) {
        stop();
    }
}

bool Server::start_once(Clock::time_point deadline, bool *retry) {
    int port = free_port();
    if (port == 0) {
        error_ = "no free port on 127.0.0.1";
        return false;
    }
    Child c;
    std::vector<std::string> args = {kServerPath,
                                     "--bind",
                                     "127.0.0.1",
                                     "--port",
                                     std::to_string(port),
                                     "--daemonize",
                                     "no",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--logfile",
                                     "",
                                     "--proto-max-bulk-len",
                                     "512mb",
                                     "--client-query-buffer-limit",
                                     "1gb"};
    if (!spawn(args, false, &c, &error_)) {
        return false;
    }
    pid_ = c.pid;
    pidfd_ = c.pidfd;
    while (Clock::now() < deadline) {
        auto reply =
            command(port, {"PING"}, std::min(deadline, Clock::now() + std::chrono::seconds(1)));
        if (reply && *reply == "+PONG" && !exited_within(pidfd_, 0)) {
            port_ = port;
            return true;
        }
        // Wait for its exit (the port was taken, say), 20 ms at most, then ask again.
        if (exited_within(pidfd_, std::min(ms_left(deadline), 20))) {
            int status = 0;
            reap(pid_, &status);
            close_fd(&pidfd_);
            pid_ = -1;
            error_ = "redis-server exited at start (status " + std::to_string(status) + ")";
            *retry = true;
            return false;
        }
    }
    error_ = "redis-server did not answer PING on port " + std::to_string(port) + " in time";
    return false;
}

Server::~Server() {
    stop();
}

Server::Server(Server &&other) noexcept {
    *this = std::move(other);
}

Server &Server::operator=(Server &&other) noexcept {
    if (this != &other) {
        stop();
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::exchange(other.pidfd_, -1);
        port_ = std::exchange(other.port_, 0);
        dir_ = std::move(other.dir_);
        other.dir_.clear();
        error_ = std::move(other.error_);
    }
    return *this;
}

void Server::stop() {
    if (pid_ > 0) {
        pidfd_send_signal(pidfd_, SIGTERM); // with --save '' it exits without writing
        if (!exited_within(pidfd_, 5000)) {
            pidfd_send_signal(pidfd_, SIGKILL);
        }
        int status = 0;
        reap(pid_, &status);
        pid_ = -1;
    }
    close_fd(&pidfd_);
    port_ = 0;
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        dir_.clear();
    }
}

Result measure(const Server &server, const Load &load) {
    Result res;
    if (!server.ok()) {
        res.error = server.error().empty() ? "no redis-server" : server.error();
        return res;
    }
    if (load.op == Op::Get && !prime_key(server, load, &res.error)) {
        return res;
    }
    // A tenth-sized run first, not counted: a run's first connections and allocations are
    // slower, most of all on the server's first run.
    Load warm = load;
    warm.n_per_client = load.n_per_client / 10 + 1;
    if (!run_clients(server.port(), warm, &res.error, false)) {
        return res;
    }
    std::vector<double> rates;
    std::vector<double> p50s;
    std::vector<double> p99s;
    for (int r = 0; r < std::max(load.reps, 1); ++r) {
        auto figures = run_clients(server.port(), load, &res.error);
        if (!figures) {
            return res;
        }
        double total = 0;
        std::vector<double> client_p50;
        double worst_p99 = 0;
        for (const auto &f : *figures) {
            total += f.rps;
            client_p50.push_back(f.p50_ms);
            worst_p99 = std::max(worst_p99, f.p99_ms);
        }
        rates.push_back(total);
        p50s.push_back(median_of(client_p50) * 1000.0);
        p99s.push_back(worst_p99 * 1000.0);
    }
    res.ok = true;
    res.ops_per_s = median_of(rates);
    res.p50_us = median_of(p50s);
    res.p99_us = median_of(p99s);
    res.GBps = res.ops_per_s * static_cast<double>(load.value_size) / 1e9;
    return res;
}

Result ops_per_s(const Server &server, Op op, std::size_t value_size, int clients,
                 int pipeline_depth, long n_per_client, int reps) {
    Load load;
    load.op = op;
    load.value_size = value_size;
    load.clients = clients;
    load.pipeline = pipeline_depth;
    load.n_per_client = n_per_client;
    load.reps = reps;
    return measure(server, load);
}

namespace {

// n round trips of one request on one connection of our own, timed one by one; reps times.
Result own_client(const Server &server, Op op, std::size_t value_size, long n, int reps) {
    Result res;
    Load load;
    load.op = op;
    load.value_size = value_size;
    if (!server.ok()) {
        res.error = server.error().empty() ? "no redis-server" : server.error();
        return res;
    }
    if (op == Op::Get && !prime_key(server, load, &res.error)) {
        return res;
    }
    auto deadline = Clock::now() + load.timeout * std::max(reps, 1);
    Connection conn;
    if (!conn.open(server.port(), deadline, &res.error)) {
        return res;
    }
    std::string req =
        op == Op::Get ? resp({"GET", kKey}) : resp({"SET", kKey, std::string(value_size, 'x')});
    std::vector<double> rates;
    std::vector<double> p50s;
    std::vector<double> p99s;
    for (int r = -1; r < std::max(reps, 1); ++r) { // r == -1: a warm-up, not counted
        long count = r < 0 ? n / 10 + 1 : std::max(n, 1L);
        std::vector<double> us;
        us.reserve(static_cast<std::size_t>(count));
        auto t0 = Clock::now();
        for (long i = 0; i < count; ++i) {
            auto start = Clock::now();
            if (!conn.round_trip(req, deadline, &res.error)) {
                return res;
            }
            us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        }
        std::chrono::duration<double> total = Clock::now() - t0;
        if (r >= 0) {
            rates.push_back(static_cast<double>(count) / total.count());
            p50s.push_back(bench::quantile(us, 0.50));
            p99s.push_back(bench::quantile(us, 0.99));
        }
    }
    res.ok = true;
    res.ops_per_s = median_of(rates);
    res.p50_us = median_of(p50s);
    res.p99_us = median_of(p99s);
    res.GBps = res.ops_per_s * static_cast<double>(value_size) / 1e9;
    return res;
}

} // namespace

Result latency(const Server &server, Op op, std::size_t value_size, long n, int reps) {
    return own_client(server, op, value_size, n, reps);
}

Result bandwidth(const Server &server, Op op, std::size_t value_size, long n, int reps) {
    return own_client(server, op, value_size, n, reps);
}

} // namespace bench::redis
