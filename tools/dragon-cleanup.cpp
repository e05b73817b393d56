// dragon-cleanup: remove what a runtime left behind after its launcher (and daemon) were
// killed: its processes (the session its daemon led), its shared-memory segments, its
// runtime directory. Only the invoking user's processes and files are ever touched, and a
// process only through a pidfd, after checking it is still the one found.
// With --reclaim, it frees instead what dead processes left in one live pool
// (dragon_pool_reclaim), and removes nothing.
#include <dragon/dragon.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <csignal>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <getopt.h>
#include <sstream>
#include <vector>

#include "node/paths.hpp"
#include "process/reaper.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

constexpr const char *kShmDir = "/dev/shm";

void usage(FILE *to) {
    std::fprintf(to,
                 "Usage: dragon-cleanup [--runtime-id ID | --all] [--dry-run] [--verbose]\n"
                 "       dragon-cleanup --reclaim POOL [-r ID] [--node-id N] [--pid PID]\n"
                 "\n"
                 "Remove what a libdragon runtime left behind, e.g. after its launcher was\n"
                 "killed with SIGKILL: with a runtime id, its processes (SIGKILL), its\n"
                 "shared-memory segments and its runtime directory; with --all, the\n"
                 "segments of every runtime. Only what you own is touched.\n"
                 "\n"
                 "  -r, --runtime-id ID  the runtime to clean up (default: $DRAGON_RUNTIME_ID,\n"
                 "                       or u<uid>, the id of pools made outside a runtime)\n"
                 "  -a, --all            every libdragon segment you own, of any runtime\n"
                 "  -n, --dry-run        list what would be removed, remove nothing\n"
                 "  -v, --verbose        name each segment removed\n"
                 "  -R, --reclaim POOL   touch nothing else: in the live pool POOL, free what\n"
                 "                       dead processes held and the waiter registrations\n"
                 "                       they left (queued messages stay)\n"
                 "      --node-id N      the node of POOL (default: $DRAGON_NODE_ID, or 0)\n"
                 "      --pid PID        only what process PID held (it must be dead);\n"
                 "                       default: every dead process\n"
                 "  -h, --help           this text\n"
                 "\n"
                 "Exit status: 0 when nothing of the runtime is left (with --reclaim: when the\n"
                 "pool was reclaimed), 1 when something could not be removed (or reclaimed),\n"
                 "2 on a usage error.\n");
}

std::string read_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The daemon's identity as it wrote it in the runtime directory: pid, start time, session.
struct DaemonRecord {
    pid_t pid = -1;
    unsigned long long start = 0;
    pid_t session = -1;
};

// Only from a private runtime directory of ours (anyone who could write the record could
// name any process of ours in it), and only a file of ours that nobody else can write.
DaemonRecord read_daemon_record(const std::string &runtime) {
    DaemonRecord d;
    std::string why;
    std::string dir = dragon::runtime::runtime_dir(runtime);
    if (!dragon::runtime::private_dir(dragon::runtime::runtime_base(), "runtime base directory",
                                      &why) ||
        !dragon::runtime::private_dir(dir, "runtime directory", &why)) {
        struct stat there {};
        if (lstat(dir.c_str(), &there) == 0) { // a runtime directory that is not private
            std::fprintf(stderr, "dragon-cleanup: not reading %s/daemon: %s\n", dir.c_str(),
                         why.c_str());
        }
        return d;
    }
    int fd = open((dir + "/daemon").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st {};
    char text[128] = {};
    ssize_t n = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        (st.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
        n = read(fd, text, sizeof text - 1);
    }
    if (fd >= 0) {
        close(fd);
    }
    long pid = -1;
    long session = -1;
    if (n > 0 && std::sscanf(text, "%ld %llu %ld", &pid, &d.start, &session) == 3 && pid > 0 &&
        session > 0) {
        d.pid = static_cast<pid_t>(pid);
        d.session = static_cast<pid_t>(session);
    }
    return d;
}

// True when pid runs `dragon-node --runtime-id ID ...`.
bool is_daemon_of(pid_t pid, const std::string &runtime) {
    std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::string want = std::string("--runtime-id") + '\0' + runtime + '\0';
    size_t nul = cmd.find('\0');
    std::string argv0 = cmd.substr(0, nul);
    return nul != std::string::npos && argv0.size() >= 11 &&
           argv0.compare(argv0.size() - 11, 11, "dragon-node") == 0 &&
           cmd.compare(nul + 1, want.size(), want) == 0;
}

struct Found {
    pid_t pid;
    uint64_t start; // to check, through a pidfd, that it is still the same process
};

// Processes of the runtime, the user's own only: its daemon, and every process in the
// session the daemon leads (found from the runtime directory, whatever a process did to its
// environment) — unless that session id now belongs to someone else (a process with that
// pid that is not our daemon). Also, for a runtime without that record, processes whose
// environment or command line names it.
std::vector<Found> runtime_processes(const std::string &runtime) {
    std::vector<Found> out;
    DaemonRecord d = read_daemon_record(runtime);
    bool daemon_alive =
        d.pid > 0 && dragon::proc::start_time(d.pid) == d.start && is_daemon_of(d.pid, runtime);
    pid_t session = -1;
    // Only a session the daemon led itself (never, say, the user's login session).
    if (d.session > 0 && d.session == d.pid &&
        (daemon_alive || dragon::proc::start_time(d.session) == 0)) {
        session = d.session; // the session is ours while its leader is, or has no process
    }
    DIR *proc = opendir("/proc");
    if (proc == nullptr) {
        return out;
    }
    std::string env_needle = std::string("DRAGON_RUNTIME_ID=") + runtime;
    std::string arg_needle = std::string("--runtime-id") + '\0' + runtime + '\0';
    while (dirent *e = readdir(proc)) {
        char *end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0' || pid == getpid()) {
            continue;
        }
        std::string dir = std::string("/proc/") + e->d_name;
        struct stat st {};
        if (stat(dir.c_str(), &st) != 0 || st.st_uid != geteuid()) {
            continue;
        }
        auto p = static_cast<pid_t>(pid);
        uint64_t start = dragon::proc::start_time(p);
        bool match =
            (session > 0 && dragon::proc::session_of(p) == session) || (daemon_alive && p == d.pid);
        if (!match) {
            std::string env = read_file(dir + "/environ");
            for (size_t at = 0; at < env.size();) {
                size_t nul = env.find('\0', at);
                size_t len = (nul == std::string::npos ? env.size() : nul) - at;
                if (env.compare(at, len, env_needle) == 0) {
                    match = true;
                    break;
                }
                at = nul == std::string::npos ? env.size() : nul + 1;
            }
        }
        if (!match) {
            std::string cmd = read_file(dir + "/cmdline");
            match = cmd.find("dragon-node") != std::string::npos &&
                    cmd.find(arg_needle) != std::string::npos;
        }
        if (match && start != 0) {
            out.push_back({p, start});
        }
    }
    closedir(proc);
    return out;
}

// SIGKILL through a pidfd, and only if the pid is still the process that was found.
void kill_found(const Found &f) {
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, f.pid, 0));
    if (pidfd < 0) {
        return;
    }
    if (dragon::proc::start_time(f.pid) == f.start) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    }
    close(pidfd);
}

// SIGKILL the runtime's processes; true when none is left (bounded wait, 2 s).
bool kill_runtime_processes(const std::string &runtime, bool dry_run, bool verbose) {
    for (int round = 0; round < 200; ++round) {
        std::vector<Found> found = runtime_processes(runtime);
        bool alive = false;
        for (const Found &f : found) {
            // A zombie waiting for a parent that is not us is harmless.
            std::string stat = read_file("/proc/" + std::to_string(f.pid) + "/stat");
            size_t close_paren = stat.rfind(')');
            if (stat.empty() || close_paren == std::string::npos ||
                close_paren + 2 >= stat.size() || stat[close_paren + 2] == 'Z') {
                continue;
            }
            alive = true;
            if (dry_run) {
                std::printf("would kill process %d\n", static_cast<int>(f.pid));
                continue;
            }
            kill_found(f);
            if (verbose && round == 0) {
                std::printf("killed process %d\n", static_cast<int>(f.pid));
            }
        }
        if (!alive || dry_run) {
            return true;
        }
        struct timespec ms10 = {0, 10000000};
        nanosleep(&ms10, nullptr);
    }
    return false;
}

// --reclaim: dragon_pool_reclaim on one pool of the runtime.
int reclaim_pool(const std::string &runtime, const std::string &name, long node, long pid) {
    dragon_pool_attr_t attr;
    dragon_pool_attr_init(&attr);
    attr.runtime_id = runtime.c_str();
    attr.node_id = node;
    dragon_pool_t *pool = nullptr;
    if (dragon_pool_attach(name.c_str(), &attr, &pool) != DRAGON_SUCCESS) {
        std::fprintf(stderr, "dragon-cleanup: %s\n", dragon_last_error());
        return 1;
    }
    dragon_pool_reclaimed_t r{};
    r.struct_size = sizeof r;
    dragon_status_t st = dragon_pool_reclaim(pool, static_cast<pid_t>(pid), &r);
    if (st != DRAGON_SUCCESS) {
        std::fprintf(stderr, "dragon-cleanup: %s\n", dragon_last_error());
    } else {
        std::printf("dragon-cleanup: pool '%s': reclaimed %llu block%s (%llu bytes) and %llu "
                    "waiter registration%s\n",
                    name.c_str(), static_cast<unsigned long long>(r.blocks),
                    r.blocks == 1 ? "" : "s", static_cast<unsigned long long>(r.bytes),
                    static_cast<unsigned long long>(r.waiters), r.waiters == 1 ? "" : "s");
    }
    dragon_pool_detach(pool);
    return st == DRAGON_SUCCESS ? 0 : 1;
}

long number_arg(const char *what, const char *text, long min) {
    char *end = nullptr;
    errno = 0;
    long v = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min) {
        std::fprintf(stderr, "dragon-cleanup: %s '%s' is not a number of %ld or more\n", what, text,
                     min);
        std::exit(2);
    }
    return v;
}

} // namespace

int main(int argc, char **argv) {
    std::string runtime;
    bool all = false;
    bool dry_run = false;
    bool verbose = false;
    std::string reclaim;
    long node = -1;
    long pid = 0;
    static const option opts[] = {{"runtime-id", required_argument, nullptr, 'r'},
                                  {"all", no_argument, nullptr, 'a'},
                                  {"dry-run", no_argument, nullptr, 'n'},
                                  {"verbose", no_argument, nullptr, 'v'},
                                  {"reclaim", required_argument, nullptr, 'R'},
                                  {"node-id", required_argument, nullptr, 'N'},
                                  {"pid", required_argument, nullptr, 'P'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    opterr = 0; // our own messages, naming the program one way
    while ((c = getopt_long(argc, argv, ":r:anvR:h", opts, nullptr)) != -1) {
        switch (c) {
        case 'R':
            reclaim = optarg;
            break;
        case 'N':
            node = number_arg("node id", optarg, 0);
            break;
        case 'P':
            pid = number_arg("pid", optarg, 1);
            break;
        case 'r':
            runtime = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            std::fprintf(stderr, "dragon-cleanup: %s needs a value; try 'dragon-cleanup --help'\n",
                         argv[optind - 1]);
            return 2;
        default:
            std::fprintf(stderr,
                         "dragon-cleanup: unknown option '%s'; try 'dragon-cleanup --help'\n",
                         argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc) {
        std::fprintf(stderr, "dragon-cleanup: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (all && !runtime.empty()) {
        std::fprintf(stderr, "dragon-cleanup: give --runtime-id or --all, not both\n");
        return 2;
    }
    // The runtime id of pools made outside a runtime (pool/pool.cpp).
    const std::string outside = "u" + std::to_string(geteuid());
    if (!all && runtime.empty()) {
        const char *env = std::getenv("DRAGON_RUNTIME_ID");
        runtime = env != nullptr && *env != '\0' ? env : outside;
    }
    if (!all && !dragon::runtime::valid_runtime_id(runtime)) {
        std::fprintf(stderr, "dragon-cleanup: '%s' is not a runtime id\n", runtime.c_str());
        return 2;
    }
    if (!reclaim.empty()) {
        if (all || dry_run) {
            std::fprintf(stderr, "dragon-cleanup: --reclaim takes neither --all nor --dry-run\n");
            return 2;
        }
        return reclaim_pool(runtime, reclaim, node, pid);
    }
    if (node >= 0 || pid != 0) {
        std::fprintf(stderr, "dragon-cleanup: --node-id and --pid go with --reclaim\n");
        return 2;
    }
    std::string prefix = all ? "dragon." : "dragon." + runtime + ".";

    // A named runtime: its processes first (they could re-create segments), and its
    // directory (the daemon's socket) after the segments.
    int failed = 0;
    if (!all && !kill_runtime_processes(runtime, dry_run, verbose)) {
        std::fprintf(stderr, "dragon-cleanup: processes of runtime '%s' did not die\n",
                     runtime.c_str());
        ++failed;
    }

    DIR *dir = opendir(kShmDir);
    if (dir == nullptr) {
        std::fprintf(stderr, "dragon-cleanup: cannot read %s: %s\n", kShmDir, std::strerror(errno));
        return 1;
    }
    int removed = 0;
    while (dirent *e = readdir(dir)) {
        if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) {
            continue;
        }
        struct stat st {};
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            st.st_uid != geteuid()) {
            continue;
        }
        if (dry_run) {
            std::printf("would remove %s/%s\n", kShmDir, e->d_name);
            ++removed;
            continue;
        }
        std::string name = std::string("/") + e->d_name;
        if (S_ISDIR(st.st_mode)) {
            // An MPI job's shared-memory directory (Open MPI's segments, docs/pmi.md).
            std::error_code ec;
            std::filesystem::remove_all(kShmDir + name, ec);
            if (ec) {
                std::fprintf(stderr, "dragon-cleanup: cannot remove %s%s: %s\n", kShmDir,
                             name.c_str(), ec.message().c_str());
                ++failed;
                continue;
            }
        } else if (shm_unlink(name.c_str()) != 0 && errno != ENOENT) {
            std::fprintf(stderr, "dragon-cleanup: cannot remove %s/%s: %s\n", kShmDir, e->d_name,
                         std::strerror(errno));
            ++failed;
            continue;
        }
        ++removed;
        if (verbose) {
            std::printf("removed %s/%s\n", kShmDir, e->d_name);
        }
    }
    closedir(dir);
    if (!all && !dry_run) {
        std::string rdir = dragon::runtime::runtime_dir(runtime);
        if (!dragon::runtime::remove_runtime_dir(runtime)) {
            std::fprintf(stderr, "dragon-cleanup: cannot remove %s: %s\n", rdir.c_str(),
                         std::strerror(errno));
            ++failed;
        }
    }
    if (verbose || dry_run || removed != 0) {
        std::string of = all ? std::string(" of every runtime")
                         : runtime == outside
                             ? " of pools made outside a runtime ('" + runtime + "')"
                             : " of runtime '" + runtime + "'";
        std::printf("dragon-cleanup: %s %d segment%s%s\n", dry_run ? "would remove" : "removed",
                    removed, removed == 1 ? "" : "s", of.c_str());
    }
    return failed == 0 ? 0 : 1;
}
