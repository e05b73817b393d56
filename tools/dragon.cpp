// dragon: the launcher (docs/runtime.md). Boots the runtime on this machine (one dragon-node
// acting as local and global services), runs PROGRAM as a managed process with its output
// relayed line by line, and exits with PROGRAM's exit code, tearing everything down.
#include "node/paths.hpp"
#include "node/topology.hpp"
#include "process/reaper.hpp"
#include "protocol/codec.hpp"
#include "runtime/endpoint.hpp"

#include <dragon/dragon.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace rt = dragon::runtime;
namespace pr = dragon::protocol;

constexpr int kRuntimeError = 125; // the runtime itself failed
constexpr int kNotFound = 127;     // PROGRAM not found
constexpr int kNotExecutable = 126;
constexpr int kDaemonStartMs = 10000;
constexpr double kDefaultGrace = 5.0; // seconds from the first signal to SIGKILL

static_assert(rt::kRuntimeIdMax == 32, "--help says: --runtime-id takes 1 to 32 characters");

void usage(FILE *to) {
    std::fprintf(
        to, "Usage: dragon [OPTIONS] PROGRAM [ARGS...]\n"
            "\n"
            "Boot the libdragon runtime on this machine, run PROGRAM in it as a managed process,\n"
            "and exit with PROGRAM's exit status. Everything the runtime started is gone when\n"
            "dragon exits: processes, shared-memory segments, sockets.\n"
            "\n"
            "Options:\n"
            "  --runtime-id ID   name the runtime (1 to 32 letters, digits, '-', '_'; default: r\n"
            "                    and 12 random hex digits); dragon-cleanup takes the same name\n"
            "  --grace SECONDS   after the first SIGINT/SIGTERM/SIGHUP, how long PROGRAM has to\n"
            "                    end before everything is killed (default 5)\n"
            "  --nodes N         run on the first N nodes of the allocation (--wlm test: N nodes)\n"
            "  --wlm NAME        how the nodes are reached: local (this machine only, the\n"
            "                    default), ssh (--hosts or --hostfile), test (N daemons on this\n"
            "                    machine as N nodes, for tests and measurements)\n"
            "  --hosts A,B,...   the allocation's hosts, reached over ssh (implies --wlm ssh)\n"
            "  --hostfile FILE   the same, one host per line ('#' comments; a host listed\n"
            "                    twice, as in a PBS node file, counts once)\n"
            "  --ssh COMMAND     the ssh command, with its options (default: $DRAGON_SSH, else\n"
            "                    ssh -o BatchMode=yes)\n"
            "  --fanout K        each daemon starts at most K others (a tree; default 8)\n"
            "  --boot-timeout S  a node that has not joined after S seconds failed (default 60)\n"
            "  --label           prefix every output line with [host:puid] (daemons: [host])\n"
            "  --topology FILE   take this node to be the one an hwloc XML topology describes\n"
            "                    (sets DRAGON_TOPOLOGY_XML; GPU placement on a machine without\n"
            "                    GPUs, for testing)\n"
            "  -V, --version     print the version of dragon, and exit\n"
            "  -h, --help        print this text, and exit\n"
            "\n"
            "PROGRAM:\n"
            "  A path, or a name looked up in PATH. It runs in a process group of its own, with\n"
            "  the environment of dragon plus DRAGON_RUNTIME_ID, DRAGON_NODE_ID,\n"
            "  DRAGON_NODE_SOCKET and DRAGON_PUID, through which libdragon (processes, groups,\n"
            "  the registry, pools, channels) finds the runtime, and DRAGON_RUNTIME_TOKEN, the\n"
            "  runtime's secret, from which pool segment names are derived so that other users\n"
            "  cannot guess them (keep it private). It may start more processes of the runtime,\n"
            "  on this node and with CPU and GPU placement, through that API.\n"
            "\n"
            "Input and output:\n"
            "  PROGRAM's standard output and error, and those of the processes it starts, are\n"
            "  relayed byte for byte, a line at a time: two processes' output is never mixed\n"
            "  inside a line (lines over 64 KiB may be, at 64 KiB boundaries). Its\n"
            "  standard input is dragon's when that is a file or a pipe; a terminal is read by\n"
            "  dragon and fed to PROGRAM while dragon is in the foreground, and a background\n"
            "  dragon gives PROGRAM /dev/null.\n"
            "\n"
            "Signals:\n"
            "  The first SIGINT, SIGTERM or SIGHUP is passed on to PROGRAM's process group. If\n"
            "  the runtime has not ended after the grace period (--grace), or at a second one,\n"
            "  every process of the runtime is killed (SIGKILL) and dragon exits with 128+N for\n"
            "  the first signal N (130 for Ctrl-C). When PROGRAM has ended, every process of the\n"
            "  runtime gets SIGTERM, then SIGKILL after 1 s, and the runtime is removed. If the\n"
            "  node daemon dies, its processes die with it (dragon exits with 125).\n"
            "\n"
            "Exit status:\n"
            "  PROGRAM's exit status, or 128+N when a signal N killed it;\n"
            "  127  PROGRAM was not found;  126  PROGRAM could not be executed;\n"
            "  125  the runtime failed (a daemon did not start, or went away, or a node was\n"
            "       lost: its host is named);\n"
            "    2  a usage error.\n"
            "\n"
            "Environment:\n"
            "  XDG_RUNTIME_DIR      the runtime's directory is $XDG_RUNTIME_DIR/dragon/ID (else\n"
            "                       /tmp/dragon-UID/ID), mode 0700: only its owner can reach it\n"
            "                       (dragon refuses a base directory that is another user's\n"
            "                       or that others can write)\n"
            "  DRAGON_TOPOLOGY_XML  an hwloc XML topology that stands in for this node (testing\n"
            "                       GPU placement on a machine without GPUs)\n"
            "  DRAGON_NODE_EXE      the dragon-node daemon to run (default: next to dragon); the\n"
            "                       same path on every node\n"
            "  DRAGON_SSH           the ssh command for --wlm ssh\n"
            "  DRAGON_DDICT_MANAGER_EXE  the dictionary manager (default: next to dragon)\n"
            "\n"
            "Examples:\n"
            "  dragon ./my_program --steps 100\n"
            "  dragon python3 workflow.py < inputs.txt > results.txt\n"
            "  dragon --hosts n1,n2,n3 --label ./my_program   (run from n1)\n"
            "\n"
            "After a `kill -9` of dragon and its daemon, `dragon-cleanup --runtime-id ID` removes\n"
            "what the runtime left. Design: docs/runtime.md.\n");
}

int64_t now_ms() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string self_dir() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        return ".";
    }
    buf[n] = '\0';
    std::string s(buf);
    return s.substr(0, s.rfind('/'));
}

std::string random_id() {
    unsigned char b[6] = {};
    if (getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
        unsigned v = static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr));
        std::memcpy(b, &v, sizeof v);
    }
    char out[16];
    std::snprintf(out, sizeof out, "r%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    return out;
}

// PROGRAM's stdin. A file or a pipe is passed on as it is (the daemon gets the descriptor).
// A terminal is not: PROGRAM runs in a process group of its own and would be stopped by
// SIGTTIN on reading it, so the launcher, while it is the terminal's foreground job, reads
// the terminal and feeds a pipe; a background launcher gives PROGRAM /dev/null, as does a
// closed stdin.
class StdinFeed {
  public:
    // The descriptor to send for PROGRAM's stdin, or -1 for /dev/null.
    int open() {
        if (fcntl(STDIN_FILENO, F_GETFD) < 0) {
            return -1;
        }
        if (!isatty(STDIN_FILENO)) {
            return STDIN_FILENO;
        }
        if (tcgetpgrp(STDIN_FILENO) != getpgrp()) {
            return -1;
        }
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            return -1;
        }
        read_end_ = p[0];
        write_end_ = p[1];
        fcntl(write_end_, F_SETFL, fcntl(write_end_, F_GETFL) | O_NONBLOCK);
        return read_end_;
    }
    // The daemon holds its copy now.
    void sent() {
        if (read_end_ >= 0) {
            close(read_end_);
            read_end_ = -1;
        }
    }
    // What to wait for: terminal input while nothing is pending, else room in the pipe.
    struct pollfd poll_entry() const {
        if (write_end_ < 0) {
            return {-1, 0, 0};
        }
        return pending_.empty() ? pollfd{STDIN_FILENO, POLLIN, 0} : pollfd{write_end_, POLLOUT, 0};
    }
    void ready(short revents) {
        if (write_end_ < 0 || revents == 0) {
            return;
        }
        if (pending_.empty()) {
            char buf[4096];
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) { // end of input (^D) or a terminal gone: PROGRAM sees EOF
                stop();
                return;
            }
            pending_.assign(buf, static_cast<size_t>(n));
        }
        ssize_t w = write(write_end_, pending_.data(), pending_.size());
        if (w > 0) {
            pending_.erase(0, static_cast<size_t>(w));
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            stop(); // PROGRAM closed its stdin
        }
    }
    ~StdinFeed() {
        sent();
        stop();
    }
    StdinFeed() = default;
    StdinFeed(const StdinFeed &) = delete;
    StdinFeed &operator=(const StdinFeed &) = delete;

  private:
    void stop() {
        if (write_end_ >= 0) {
            close(write_end_);
            write_end_ = -1;
        }
        pending_.clear();
    }
    int read_end_ = -1;
    int write_end_ = -1;
    std::string pending_;
};

struct Runtime {
    std::set<pid_t> before; // children of ours from before the runtime: not its processes
    std::string id;
    std::string dir;
    pid_t daemon = -1;
    int life_w = -1;

    // Ask the daemon to stop (`now`: without the SIGTERM grace period) and wait for it: it
    // ends every process of the runtime and relays their output to the end, which may take
    // as long as the reader of that output takes. A signal meanwhile hurries it (it sees
    // its life pipe close) and then, after 3 s, kills it. Whatever the daemon left (its
    // processes become this launcher's children, a child subreaper, when it dies) is
    // killed here, and the runtime's files removed.
    void shutdown(rt::Endpoint *c, bool now, int sfd) {
        pr::Shutdown bye;
        bye.now = now;
        if (c != nullptr && c->send(pr::Request{0, "", bye}, {}) == DRAGON_SUCCESS) {
            // the daemon tears down and ends; we wait for it below
        } else if (c != nullptr && life_w >= 0) {
            close(life_w);
            life_w = -1;
            c = nullptr;
        } else if (life_w >= 0) {
            close(life_w); // the daemon tears down at once
            life_w = -1;
        }
        if (daemon > 0) {
            int pidfd = static_cast<int>(syscall(SYS_pidfd_open, daemon, 0));
            int limit = c == nullptr ? 3000 : -1;
            while (pidfd >= 0) {
                struct pollfd p[2] = {{pidfd, POLLIN, 0}, {sfd, POLLIN, 0}};
                int rc = poll(p, sfd >= 0 ? 2 : 1, limit);
                if (rc < 0 && errno == EINTR) {
                    continue;
                }
                if (rc <= 0 || (p[0].revents & POLLIN) != 0) {
                    break; // gone, or 3 s after hurrying it
                }
                struct signalfd_siginfo si {};
                ssize_t ignored = read(sfd, &si, sizeof si);
                (void)ignored;
                if (life_w >= 0) {
                    close(life_w);
                    life_w = -1;
                }
                limit = 3000;
            }
            if (pidfd >= 0 && waitpid(daemon, nullptr, WNOHANG) != daemon) {
                syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
                waitpid(daemon, nullptr, 0);
            } else if (pidfd < 0) {
                waitpid(daemon, nullptr, 0);
            }
            if (pidfd >= 0) {
                close(pidfd);
            }
            daemon = -1;
        }
        if (life_w >= 0) {
            close(life_w);
            life_w = -1;
        }
        dragon::proc::end_all_children(0, 0, 5000, before);
        rt::remove_segments(id);
        rt::remove_runtime_dir(id);
    }
};

// The allocation: which hosts, how to reach them (docs/multinode.md).
struct Allocation {
    std::string wlm = "local";
    std::vector<std::string> hosts; // empty: this machine alone
    long nodes = -1;                // --nodes
    std::vector<std::string> ssh;
    uint32_t fanout = 8;
    bool label = false;
    uint32_t boot_timeout_ms = 60000;
};

std::vector<std::string> split(const std::string &s, const char *seps) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find_first_of(seps, i);
        if (j == std::string::npos) {
            j = s.size();
        }
        if (j > i) {
            out.push_back(s.substr(i, j - i));
        }
        i = j + 1;
    }
    return out;
}

// A host list, each host once, in the order first seen.
void add_hosts(std::vector<std::string> *to, const std::vector<std::string> &hosts) {
    for (const std::string &h : hosts) {
        if (std::find(to->begin(), to->end(), h) == to->end()) {
            to->push_back(h);
        }
    }
}

bool read_hostfile(const char *path, std::vector<std::string> *out, std::string *why) {
    std::ifstream in(path);
    if (!in) {
        *why = std::string(path) + ": " + std::strerror(errno);
        return false;
    }
    std::string line;
    std::vector<std::string> hosts;
    while (std::getline(in, line)) {
        line = line.substr(0, line.find('#'));
        std::vector<std::string> words = split(line, " \t\r");
        if (!words.empty()) {
            hosts.push_back(words[0]); // "host slots=4" and the like: the host
        }
    }
    add_hosts(out, hosts);
    if (out->empty()) {
        *why = std::string(path) + " names no host";
        return false;
    }
    return true;
}

std::string this_host() {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    return h;
}

// Put this machine first (node 0: the launcher's, where PROGRAM runs); false if it is not
// in the list.
bool this_host_first(std::vector<std::string> *hosts) {
    std::string me = this_host();
    std::string short_me = me.substr(0, me.find('.'));
    for (size_t i = 0; i < hosts->size(); ++i) {
        const std::string &h = (*hosts)[i];
        if (h == me || h == short_me || h.substr(0, h.find('.')) == short_me || h == "localhost") {
            std::rotate(hosts->begin(), hosts->begin() + static_cast<long>(i),
                        hosts->begin() + static_cast<long>(i) + 1);
            return true;
        }
    }
    return false;
}

// The boot message for the head (node 0), from the allocation; "" when there is one node.
std::string boot_message(const Allocation &a, const std::string &runtime_id,
                         const std::string &node_exe) {
    pr::LinkBoot b;
    b.runtime_id = runtime_id;
    b.node_id = 0;
    b.wlm = a.wlm;
    b.node_exe = node_exe;
    b.fanout = a.fanout;
    b.label = a.label;
    b.boot_timeout_ms = a.boot_timeout_ms;
    if (a.wlm == "test") {
        std::string me = this_host();
        for (long i = 0; i < a.nodes; ++i) {
            b.hosts.emplace_back("");
            b.names.push_back(me + "-" + std::to_string(i));
        }
    } else {
        b.hosts = a.hosts;
        b.launch = a.ssh;
    }
    // What every daemon needs of the launcher's environment: the token, and settings; not
    // what belongs to one process.
    static const char *const kOwn[] = {
        "DRAGON_NODE_ID=",    "DRAGON_NODE_SOCKET=", "DRAGON_PUID=",       "DRAGON_GROUP_INDEX=",
        "DRAGON_GROUP_SIZE=", "DRAGON_ROLE=",        "DRAGON_RUNTIME_ID=", "DRAGON_TEST_PIDNS="};
    for (char **e = environ; *e != nullptr; ++e) {
        std::string kv = *e;
        if (kv.rfind("DRAGON_", 0) != 0) {
            continue;
        }
        bool own = false;
        for (const char *k : kOwn) {
            own = own || kv.rfind(k, 0) == 0;
        }
        if (!own) {
            b.env.push_back(kv);
        }
    }
    if (const char *t = std::getenv("HWLOC_THISSYSTEM"); t != nullptr && a.wlm == "test") {
        b.env.push_back(std::string("HWLOC_THISSYSTEM=") + t);
    }
    std::string bytes = pr::encode(pr::LinkMessage{std::move(b)});
    auto n = static_cast<uint32_t>(bytes.size());
    std::string frame = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                         static_cast<char>(n >> 8), static_cast<char>(n)};
    return frame + bytes;
}

// Seconds, as a positive decimal number; -1 if it is not one.
double parse_seconds(const char *s) {
    char *end = nullptr;
    double v = std::strtod(s, &end);
    return end != s && *end == '\0' && v >= 0 && v < 1e6 ? v : -1;
}

} // namespace

static int run(int argc, char **argv) {
    std::string runtime_id;
    double grace = kDefaultGrace;
    Allocation alloc;
    std::string wlm_asked;
    const char *ssh_env = std::getenv("DRAGON_SSH");
    alloc.ssh =
        split(ssh_env != nullptr && *ssh_env != '\0' ? ssh_env : "ssh -o BatchMode=yes", " \t");
    static const option opts[] = {{"runtime-id", required_argument, nullptr, 'r'},
                                  {"grace", required_argument, nullptr, 'g'},
                                  {"nodes", required_argument, nullptr, 'N'},
                                  {"wlm", required_argument, nullptr, 'W'},
                                  {"hosts", required_argument, nullptr, 'H'},
                                  {"hostfile", required_argument, nullptr, 'F'},
                                  {"ssh", required_argument, nullptr, 'S'},
                                  {"fanout", required_argument, nullptr, 'k'},
                                  {"boot-timeout", required_argument, nullptr, 'b'},
                                  {"label", no_argument, nullptr, 'l'},
                                  {"topology", required_argument, nullptr, 'T'},
                                  {"version", no_argument, nullptr, 'V'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    opterr = 0; // our own messages, naming the program one way
    while ((c = getopt_long(argc, argv, "+:hV", opts, nullptr)) != -1) {
        switch (c) {
        case 'r':
            runtime_id = optarg;
            if (!rt::valid_runtime_id(runtime_id)) {
                std::fprintf(stderr,
                             "dragon: --runtime-id '%s': use 1 to %d letters, digits, '-' or "
                             "'_'\n",
                             optarg, rt::kRuntimeIdMax);
                return 2;
            }
            break;
        case 'g':
            grace = parse_seconds(optarg);
            if (grace < 0) {
                std::fprintf(stderr, "dragon: --grace '%s': give a number of seconds\n", optarg);
                return 2;
            }
            break;
        case 'N': {
            char *end = nullptr;
            alloc.nodes = std::strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || alloc.nodes < 1 ||
                alloc.nodes > static_cast<long>(pr::kMaxNodes)) {
                std::fprintf(stderr, "dragon: --nodes '%s': give a number from 1 to %u\n", optarg,
                             pr::kMaxNodes);
                return 2;
            }
            break;
        }
        case 'W':
            wlm_asked = optarg;
            if (wlm_asked != "local" && wlm_asked != "ssh" && wlm_asked != "test") {
                std::fprintf(stderr, "dragon: --wlm '%s': use local, ssh or test\n", optarg);
                return 2;
            }
            break;
        case 'H':
            add_hosts(&alloc.hosts, split(optarg, ", "));
            break;
        case 'F':
            if (std::string why; !read_hostfile(optarg, &alloc.hosts, &why)) {
                std::fprintf(stderr, "dragon: --hostfile %s\n", why.c_str());
                return 2;
            }
            break;
        case 'S':
            alloc.ssh = split(optarg, " \t");
            if (alloc.ssh.empty()) {
                std::fprintf(stderr, "dragon: --ssh needs a command\n");
                return 2;
            }
            break;
        case 'k': {
            char *end = nullptr;
            long k = std::strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || k < 1 || k > 1024) {
                std::fprintf(stderr, "dragon: --fanout '%s': give a number from 1 to 1024\n",
                             optarg);
                return 2;
            }
            alloc.fanout = static_cast<uint32_t>(k);
            break;
        }
        case 'b': {
            double t = parse_seconds(optarg);
            if (t <= 0 || t > 86400) {
                std::fprintf(stderr, "dragon: --boot-timeout '%s': give a number of seconds\n",
                             optarg);
                return 2;
            }
            alloc.boot_timeout_ms = static_cast<uint32_t>(t * 1000);
            break;
        }
        case 'l':
            alloc.label = true;
            break;
        case 'T':
            if (access(optarg, R_OK) != 0) {
                std::fprintf(stderr, "dragon: --topology %s: %s\n", optarg, std::strerror(errno));
                return 2;
            }
            setenv("DRAGON_TOPOLOGY_XML", optarg, 1); // for the daemon and PROGRAM alike
            break;
        case 'V':
            std::printf("dragon %s (control protocol %u)\n", DRAGON_VERSION_STRING, pr::kVersion);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            std::fprintf(stderr, "dragon: %s needs a value; try 'dragon --help'\n",
                         argv[optind - 1]);
            return 2;
        default:
            std::fprintf(stderr, "dragon: unknown option '%s'; try 'dragon --help'\n",
                         argv[optind - 1]);
            return 2;
        }
    }
    if (optind >= argc) {
        std::fprintf(stderr, "dragon: no PROGRAM given; try 'dragon --help'\n");
        return 2;
    }
    // The allocation: asked for, or what was given (docs/multinode.md).
    alloc.wlm = !wlm_asked.empty() ? wlm_asked : !alloc.hosts.empty() ? "ssh" : "local";
    if (alloc.wlm == "test") {
        alloc.nodes = alloc.nodes < 0 ? 1 : alloc.nodes;
        alloc.hosts.clear();
    } else if (alloc.wlm == "ssh") {
        if (alloc.hosts.empty()) {
            std::fprintf(stderr, "dragon: --wlm ssh needs --hosts or --hostfile\n");
            return 2;
        }
        if (!this_host_first(&alloc.hosts)) {
            std::string all;
            for (const std::string &h : alloc.hosts) {
                all += (all.empty() ? "" : ", ") + h;
            }
            std::fprintf(stderr,
                         "dragon: this host (%s) is not one of the allocation's hosts (%s): run "
                         "dragon on one of them (it is node 0, where PROGRAM runs)\n",
                         this_host().c_str(), all.c_str());
            return 2;
        }
        if (alloc.nodes > static_cast<long>(alloc.hosts.size())) {
            std::fprintf(stderr, "dragon: --nodes %ld: the allocation has %zu hosts\n", alloc.nodes,
                         alloc.hosts.size());
            return 2;
        }
        if (alloc.nodes > 0) {
            alloc.hosts.resize(static_cast<size_t>(alloc.nodes));
        }
        alloc.nodes = static_cast<long>(alloc.hosts.size());
    } else if (alloc.nodes > 1) {
        std::fprintf(stderr,
                     "dragon: --nodes %ld: the local allocation is this machine alone "
                     "(use --hosts, or --wlm test for daemons as nodes here)\n",
                     alloc.nodes);
        return 2;
    }
    bool many = alloc.nodes > 1;
    if (runtime_id.empty()) {
        runtime_id = random_id();
    }
    // The runtime's secret: inherited by the daemon and PROGRAM, never on a command line.
    std::string token = rt::new_runtime_token();
    if (token.empty() || setenv(rt::kRuntimeTokenEnv, token.c_str(), 1) != 0) {
        std::perror("dragon: cannot make the runtime's token");
        return kRuntimeError;
    }

    // Signals become events on a signalfd: nothing happens inside a handler.
    // A shell starts background jobs with SIGINT ignored; a launcher must still hear it.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        signal(sig, SIG_DFL);
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);

    // Processes of the runtime that outlive the daemon become ours, to be ended here; the
    // children this process had already (a shell's, through exec: `exec dragon ...`, a
    // process substitution) are not the runtime's and are left alone.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    Runtime rtm;
    for (pid_t c : dragon::proc::children()) {
        rtm.before.insert(c);
    }
    rtm.id = runtime_id;
    if (std::string why; !rt::make_private_base(&why)) {
        std::fprintf(stderr, "dragon: %s\n", why.c_str());
        return kRuntimeError;
    }
    rtm.dir = rt::runtime_dir(runtime_id);
    if (mkdir(rtm.dir.c_str(), 0700) != 0) {
        std::fprintf(stderr, "dragon: cannot create the runtime directory %s: %s\n",
                     rtm.dir.c_str(), std::strerror(errno));
        return kRuntimeError;
    }

    int ready[2];
    int life[2];
    int boot[2] = {-1, -1};
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(life, O_CLOEXEC) != 0 ||
        (many && pipe2(boot, O_CLOEXEC) != 0)) {
        std::perror("dragon: pipe");
        rtm.shutdown(nullptr, true, -1);
        return kRuntimeError;
    }
    // The many-daemons mode: N daemons on this one machine read its topology from one
    // export instead of each discovering it again (hwloc takes ~12 ms a node on a small VM:
    // 64 nodes would cost 0.8 s of CPU). HWLOC_THISSYSTEM keeps it this machine's, so that
    // affinity masks still count (docs/multinode.md).
    if (alloc.wlm == "test" && many && std::getenv("DRAGON_TOPOLOGY_XML") == nullptr) {
        std::string path = rtm.dir + "/topology.xml";
        const std::string &xml = dragon::node::topology_xml();
        int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (!xml.empty() && fd >= 0 &&
            write(fd, xml.data(), xml.size()) == static_cast<ssize_t>(xml.size())) {
            setenv("DRAGON_TOPOLOGY_XML", path.c_str(), 1);
            setenv("HWLOC_THISSYSTEM", "1", 1);
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    const char *node_env = std::getenv("DRAGON_NODE_EXE");
    std::string node_exe = node_env != nullptr ? node_env : self_dir() + "/dragon-node";
    // The dictionary's manager program that goes with this launcher (a build tree or an
    // install), for dragon_ddict_create in the runtime's processes.
    if (std::getenv("DRAGON_DDICT_MANAGER_EXE") == nullptr) {
        std::string manager = self_dir() + "/dragon-ddict-manager";
        if (access(manager.c_str(), X_OK) == 0) {
            setenv("DRAGON_DDICT_MANAGER_EXE", manager.c_str(), 1);
        }
    }
    pid_t daemon = fork();
    if (daemon == 0) {
        sigprocmask(SIG_UNBLOCK, &mask, nullptr);
        // The daemon survives the terminal's Ctrl-C (the launcher decides when it stops) and
        // leads a session of its own, which holds every process of the runtime.
        setsid();
        int in = open("/dev/null", O_RDONLY);
        if (in > STDIN_FILENO) {
            dup2(in, STDIN_FILENO);
            close(in);
        }
        fcntl(ready[1], F_SETFD, 0);
        fcntl(life[0], F_SETFD, 0);
        std::string rfd = std::to_string(ready[1]);
        std::string lfd = std::to_string(life[0]);
        if (boot[0] >= 0) {
            fcntl(boot[0], F_SETFD, 0);
            std::string bfd = std::to_string(boot[0]);
            execl(node_exe.c_str(), "dragon-node", "--runtime-id", runtime_id.c_str(), "--node-id",
                  "0", "--ready-fd", rfd.c_str(), "--life-fd", lfd.c_str(), "--boot-fd",
                  bfd.c_str(), static_cast<char *>(nullptr));
        }
        execl(node_exe.c_str(), "dragon-node", "--runtime-id", runtime_id.c_str(), "--node-id", "0",
              "--ready-fd", rfd.c_str(), "--life-fd", lfd.c_str(), static_cast<char *>(nullptr));
        std::fprintf(stderr, "dragon: cannot run the node daemon %s: %s\n", node_exe.c_str(),
                     std::strerror(errno));
        _exit(kRuntimeError);
    }
    close(ready[1]);
    close(life[0]);
    rtm.daemon = daemon;
    rtm.life_w = life[1];
    if (boot[0] >= 0) {
        close(boot[0]);
        // The head reads it at once; a boot message fits a pipe's buffer for thousands of
        // hosts, and a larger one is written as the head reads it.
        std::string msg = boot_message(alloc, runtime_id, node_exe);
        for (size_t done = 0; done < msg.size();) {
            ssize_t w = write(boot[1], msg.data() + done, msg.size() - done);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                break; // the daemon is gone: it says why, and "ready" does not come
            }
            done += static_cast<size_t>(w);
        }
        close(boot[1]);
    }
    // The whole runtime is up when the head says "ready": every node has joined.
    int start_wait_ms =
        many ? static_cast<int>(alloc.boot_timeout_ms) * 2 + kDaemonStartMs : kDaemonStartMs;
    struct pollfd pr = {ready[0], POLLIN, 0};
    char line[16] = {};
    int polled = -1;
    while ((polled = poll(&pr, 1, start_wait_ms)) < 0 && errno == EINTR) {
    }
    if (polled != 1 || read(ready[0], line, sizeof line - 1) <= 0 ||
        std::strncmp(line, "ready", 5) != 0) {
        std::fprintf(stderr,
                     many ? "dragon: the runtime did not start on its %ld nodes (see the "
                            "messages above)\n"
                          : "dragon: the node daemon did not start (see its messages "
                            "above)\n",
                     alloc.nodes);
        close(ready[0]);
        rtm.shutdown(nullptr, true, -1);
        return kRuntimeError;
    }
    close(ready[0]);

    // The same endpoint as every process of the runtime uses, to the daemon it started.
    rt::Endpoint client(rt::node_socket(runtime_id, 0), "launcher");
    if (client.connect() != DRAGON_SUCCESS) {
        std::fprintf(stderr, "dragon: %s\n", dragon_last_error());
        rtm.shutdown(nullptr, true, -1);
        return kRuntimeError;
    }
    // A node lost mid-run ends the runtime; dragon then says which, and exits 125.
    std::string lost_node;
    uint64_t sub = 0;
    if (many) {
        client.subscribe(
            [&](const pr::Event &e) {
                if (const auto *l = std::get_if<pr::NodeLost>(&e.body); l && lost_node.empty()) {
                    lost_node = "node " + std::to_string(l->node_id) + " (" + l->host_name +
                                ") was lost: " + l->why;
                }
            },
            &sub);
    }
    StdinFeed feed;
    int stdin_fd = feed.open();
    pr::Spawn spawn;
    spawn.program = argv[optind];
    spawn.args.assign(argv + optind + 1, argv + argc);
    spawn.streams[0] = stdin_fd >= 0 ? pr::Stream::kFd : pr::Stream::kDevNull;
    pr::Reply spawned;
    std::vector<int> send_fds;
    if (stdin_fd >= 0) {
        send_fds.push_back(stdin_fd);
    }
    dragon_status_t st = client.call(pr::Request{0, "", std::move(spawn)}, rt::Endpoint::kCallMs,
                                     &spawned, send_fds);
    feed.sent();
    if (st != DRAGON_SUCCESS) {
        std::fprintf(stderr, "dragon: %s\n", dragon_last_error());
        rtm.shutdown(st == DRAGON_CLOSED || st == DRAGON_TIMEOUT ? nullptr : &client, true, sfd);
        return st == DRAGON_NOT_FOUND           ? kNotFound
               : st == DRAGON_PERMISSION_DENIED ? kNotExecutable
                                                : kRuntimeError;
    }
    uint64_t puid = std::get<pr::SpawnReply>(spawned.body).puids.at(0);
    int exit_code = kRuntimeError;
    bool joined = false;
    pr::Join join;
    join.puids = {puid};
    client.send(pr::Request{0, "", join},
                [&](dragon_status_t jst, pr::Reply &r, std::vector<int> &) {
                    const auto *codes = std::get_if<pr::JoinReply>(&r.body);
                    if (jst == DRAGON_SUCCESS && codes != nullptr && !codes->exit_codes.empty()) {
                        exit_code = codes->exit_codes[0];
                        joined = true;
                    }
                });

    int first_signal = 0;
    int64_t kill_at = -1; // the grace period after the first signal ends then
    bool daemon_gone = false;
    bool killed = false; // by the launcher: a second signal, or the grace period ended
    for (;;) {
        struct pollfd fds[3] = {{client.fd(), POLLIN, 0}, {sfd, POLLIN, 0}, feed.poll_entry()};
        int wait = kill_at < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, kill_at - now_ms()));
        if (poll(fds, 3, wait) < 0 && errno != EINTR) {
            break;
        }
        feed.ready(fds[2].revents);
        bool kill_now = kill_at >= 0 && now_ms() >= kill_at;
        if ((fds[1].revents & POLLIN) != 0) {
            struct signalfd_siginfo si {};
            if (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                if (first_signal == 0) { // passed on; the grace period starts
                    first_signal = static_cast<int>(si.ssi_signo);
                    pr::Signal pass;
                    pass.puids = {puid};
                    pass.signal = first_signal;
                    client.send(pr::Request{0, "", pass}, {});
                    kill_at = now_ms() + static_cast<int64_t>(grace * 1000);
                } else {
                    kill_now = true; // a second one: at once
                }
            }
        }
        if (kill_now) {
            exit_code = 128 + first_signal;
            killed = true;
            break;
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            if (client.pump(0) == DRAGON_CLOSED) {
                if (lost_node.empty()) { // else a node was lost: said below
                    std::fprintf(stderr, "dragon: the node daemon went away; its processes are "
                                         "killed\n");
                }
                daemon_gone = true;
                break;
            }
            if (joined) {
                break;
            }
        }
    }
    rtm.shutdown(daemon_gone ? nullptr : &client, killed, sfd);
    if (!lost_node.empty() && !killed) {
        std::fprintf(stderr, "dragon: %s; the runtime ended\n", lost_node.c_str());
        return kRuntimeError;
    }
    return exit_code;
}

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "dragon: internal error: %s\n", e.what());
        return kRuntimeError;
    }
}
