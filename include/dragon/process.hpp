// libdragon C++ — processes of the runtime (dragon::Process). A Process is the runtime-wide
// id of a process started through the node daemon: a plain value, copyable; the process
// lives on until it ends or the runtime tears down. Header-only over dragon/process.h.
#ifndef DRAGON_PROCESS_HPP
#define DRAGON_PROCESS_HPP

#include <dragon/channel.hpp>
#include <dragon/error.hpp>
#include <dragon/machine.hpp>
#include <dragon/process.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace dragon {

enum class Stdio {
    relay = DRAGON_STDIO_RELAY,     // stdout/stderr: relayed line by line by the runtime
    inherit = DRAGON_STDIO_INHERIT, // the creating process's own
    devnull = DRAGON_STDIO_DEVNULL,
    pipe = DRAGON_STDIO_PIPE, // the creator gets the other end (Process::start_piped)
};

struct ProcessOptions {
    std::vector<std::string> env; // "NAME=value"; empty: the caller's environment
    std::string cwd;              // empty: the daemon's
    Stdio in = Stdio::devnull;
    Stdio out = Stdio::relay;
    Stdio err = Stdio::relay;
    const Policy *policy = nullptr; // placement, CPU and GPU affinity, wait mode
    std::uint32_t max_restarts = 0; // restarts after a failure (non-zero exit)
    std::string role;               // the role it starts in (this_process::role()); empty: none
};

// A file descriptor, closed on destruction. Move-only.
class FileDescriptor {
  public:
    FileDescriptor() noexcept = default;
    explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
    ~FileDescriptor() { reset(); }
    FileDescriptor(FileDescriptor &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    FileDescriptor &operator=(FileDescriptor &&o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    FileDescriptor(const FileDescriptor &) = delete;
    FileDescriptor &operator=(const FileDescriptor &) = delete;
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset() noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

  private:
    int fd_ = -1;
};

enum class ProcessState { running = DRAGON_PROCESS_RUNNING, exited = DRAGON_PROCESS_EXITED };

struct ProcessStatus {
    ProcessState state;
    int pid;                // on its node, the latest incarnation's
    int exit_code;          // -1 while running
    std::uint32_t restarts; // times restarted after a failure
    std::uint32_t node_id;
};

namespace detail {

// argv, environment and attributes of dragon/process.h, pointing into `argv` and `o`
// (which must outlive it).
struct ProcessArgs {
    std::vector<const char *> argv;
    std::vector<const char *> env;
    dragon_process_attr_t attr;

    ProcessArgs(const std::vector<std::string> &args, const ProcessOptions &o) {
        argv.reserve(args.size() + 1);
        for (const auto &a : args) {
            argv.push_back(a.c_str());
        }
        argv.push_back(nullptr);
        env.reserve(o.env.size() + 1);
        for (const auto &e : o.env) {
            env.push_back(e.c_str());
        }
        env.push_back(nullptr);
        dragon_process_attr_init(&attr);
        attr.env = o.env.empty() ? nullptr : env.data();
        attr.cwd = o.cwd.empty() ? nullptr : o.cwd.c_str();
        attr.in_mode = static_cast<dragon_stdio_t>(o.in);
        attr.out_mode = static_cast<dragon_stdio_t>(o.out);
        attr.err_mode = static_cast<dragon_stdio_t>(o.err);
        attr.policy = o.policy != nullptr ? &o.policy->raw() : nullptr;
        attr.max_restarts = o.max_restarts;
        attr.role = o.role.empty() ? nullptr : o.role.c_str();
    }
    ProcessArgs(const ProcessArgs &) = delete; // attr points into the vectors
    ProcessArgs &operator=(const ProcessArgs &) = delete;
};

} // namespace detail

class Process {
  public:
    // Start argv[0] (a path or a name in PATH) with argv.
    static Process start(const std::vector<std::string> &argv, const ProcessOptions &o = {}) {
        detail::ProcessArgs a(argv, o);
        std::uint64_t puid = 0;
        detail::check(dragon_process_create(a.argv.data(), &a.attr, &puid));
        return Process(puid);
    }

    struct Piped; // a Process with the creator's ends of its Stdio::pipe streams

    // Start with Stdio::pipe streams allowed.
    static Piped start_piped(const std::vector<std::string> &argv, const ProcessOptions &o);

    explicit Process(std::uint64_t puid) noexcept : puid_(puid) {}
    std::uint64_t puid() const noexcept { return puid_; }

    // The exit status (128+N when killed by signal N), or std::nullopt if the process is
    // still running after `timeout`.
    template <typename Timeout = Forever>
    std::optional<int> join(Timeout timeout = forever) const {
        int code = -1;
        dragon_status_t st = dragon_process_join(puid_, detail::timeout_of(timeout), &code);
        if (st == DRAGON_TIMEOUT) {
            return std::nullopt;
        }
        detail::check(st);
        return code;
    }

    void signal(int sig) const { detail::check(dragon_process_signal(puid_, sig)); }
    // End it for good (no restart), with `sig`.
    void stop(int sig = SIGTERM) const { detail::check(dragon_process_stop(puid_, sig)); }

    ProcessStatus status() const {
        dragon_process_status_t s{};
        s.struct_size = sizeof s;
        detail::check(dragon_process_query(puid_, &s));
        return ProcessStatus{static_cast<ProcessState>(s.state), s.pid, s.exit_code, s.restarts,
                             s.node_id};
    }

  private:
    std::uint64_t puid_;
};

struct Process::Piped {
    Process process;
    FileDescriptor in, out, err; // write to `in`, read `out` and `err`
};

inline Process::Piped Process::start_piped(const std::vector<std::string> &argv,
                                           const ProcessOptions &o) {
    detail::ProcessArgs a(argv, o);
    std::uint64_t puid = 0;
    dragon_process_pipes_t p{-1, -1, -1};
    detail::check(dragon_process_create_with_pipes(a.argv.data(), &a.attr, &puid, &p));
    return Piped{Process(puid), FileDescriptor(p.in_fd), FileDescriptor(p.out_fd),
                 FileDescriptor(p.err_fd)};
}

// A group of runtime processes: members added from templates, started, joined and stopped
// together; the group policy is merged over each template's. Move-only; destroying the
// handle leaves running members running (call stop() first to end them).
class ProcessGroup {
  public:
    explicit ProcessGroup(const Policy *group_policy = nullptr) {
        dragon_process_group_t *g = nullptr;
        detail::check(dragon_process_group_create(
            group_policy != nullptr ? &group_policy->raw() : nullptr, &g));
        g_ = g;
    }
    ~ProcessGroup() {
        if (g_ != nullptr) {
            dragon_process_group_destroy(g_);
        }
    }
    ProcessGroup(ProcessGroup &&o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    ProcessGroup &operator=(ProcessGroup &&o) noexcept {
        if (this != &o) {
            if (g_ != nullptr) {
                dragon_process_group_destroy(g_);
            }
            g_ = std::exchange(o.g_, nullptr);
        }
        return *this;
    }
    ProcessGroup(const ProcessGroup &) = delete;
    ProcessGroup &operator=(const ProcessGroup &) = delete;

    // Add n members started from this template.
    void add(std::uint32_t n, const std::vector<std::string> &argv, const ProcessOptions &o = {}) {
        detail::ProcessArgs a(argv, o);
        detail::check(dragon_process_group_add(g_, n, a.argv.data(), &a.attr));
    }
    // Restart members that fail, at most max_restarts times each (before start).
    void restart_on_failure(std::uint32_t max_restarts) {
        detail::check(dragon_process_group_set_restart(g_, max_restarts));
    }
    // Before start: the members are the ranks of one MPI job that the runtime serves PMIx to
    // (no mpirun; docs/pmi.md).
    void set_pmi(bool enable = true) { detail::check(dragon_process_group_set_pmi(g_, enable)); }
    void start() { detail::check(dragon_process_group_start(g_)); }
    // false if members still run after `timeout`.
    template <typename Timeout = Forever>
    bool join(Timeout timeout = forever) {
        dragon_status_t st = dragon_process_group_join(g_, detail::timeout_of(timeout));
        if (st == DRAGON_TIMEOUT) {
            return false;
        }
        detail::check(st);
        return true;
    }
    // End every member for good: SIGTERM, then SIGKILL after `grace`.
    template <typename Rep, typename Period>
    void stop(std::chrono::duration<Rep, Period> grace) {
        detail::check(dragon_process_group_stop(g_, detail::to_timeout(grace)));
    }
    std::uint32_t size() const {
        std::uint32_t n = 0;
        detail::check(dragon_process_group_size(g_, &n));
        return n;
    }
    struct Member {
        std::uint64_t puid;
        bool ended;
        int exit_code; // -1 while running
    };
    Member member(std::uint32_t i) {
        Member m{};
        int ended = 0;
        detail::check(dragon_process_group_member(g_, i, &m.puid, &ended, &m.exit_code));
        m.ended = ended != 0;
        return m;
    }

  private:
    dragon_process_group_t *g_ = nullptr;
};

// The calling process: who it is in the runtime.
namespace this_process {

// Its runtime-wide id (Error DRAGON_NOT_IN_RUNTIME when the runtime did not start it).
inline std::uint64_t puid() {
    std::uint64_t id = 0;
    detail::check(dragon_process_self(&id));
    return id;
}

// Its role (ProcessOptions::role), empty when it was started in none.
inline std::string role() {
    const char *r = dragon_process_role();
    return r != nullptr ? r : "";
}

// As a process group member: its index (in the order members were added) and the group's
// size; nothing when it is not a member.
struct GroupRank {
    std::uint32_t index;
    std::uint32_t size;
};
inline std::optional<GroupRank> group_rank() {
    GroupRank r{};
    dragon_status_t st = dragon_process_group_rank(&r.index, &r.size);
    if (st == DRAGON_NOT_FOUND) {
        return std::nullopt;
    }
    detail::check(st);
    return r;
}

// This same program with these arguments: argv for Process::start / ProcessGroup::add, with
// ProcessOptions::role saying what the new process is to do.
inline std::vector<std::string> command(std::vector<std::string> args = {}) {
    const char *exe = dragon_process_self_exe();
    if (exe == nullptr) {
        detail::check(DRAGON_NOT_FOUND);
    }
    args.insert(args.begin(), exe);
    return args;
}

} // namespace this_process

} // namespace dragon

#endif // DRAGON_PROCESS_HPP
