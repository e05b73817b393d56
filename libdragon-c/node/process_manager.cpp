#include "process_manager.hpp"

#include "paths.hpp"

#include "../common/error.hpp"
#include "../common/wait_mode.hpp"
#include "../process/reaper.hpp"

#include <dragon/status.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <set>

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

namespace dragon::node {

namespace pr = dragon::protocol;
namespace dp = dragon::proc;
namespace rt = dragon::runtime;

namespace {
constexpr int64_t kSecond = 1000000000LL;
} // namespace

ProcessManager::Launch::~Launch() {
    for (int fd : fds) {
        if (fd >= 0) {
            close(fd);
        }
    }
}

ProcessManager::~ProcessManager() {
    if (child_fd_ >= 0) {
        close(child_fd_);
    }
}

bool ProcessManager::start() {
    // A failed MPI job: its other ranks are ended (SIGTERM; the group's join sees them).
    pmix_.set_end_job([this](const std::string &ns, int64_t except) {
        for (auto &[puid, q] : procs_) {
            if (!q.exited && q.launch && q.launch->spec.pmi == ns && q.group_index != except) {
                q.final = true;
                signal_proc(q, SIGTERM);
            }
        }
    });
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, nullptr);
    child_fd_ = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (child_fd_ < 0) {
        Output::log("dragon-node: signalfd: %s", strerror(errno));
        return false;
    }
    child_watch_ = node_.reactor.watch(child_fd_, EPOLLIN, [this](uint32_t) { children_ended(); });
    Router &r = node_.control.router();
    r.add(
        "spawn",
        [this](const Call &c, pr::Request &req, ReceivedFds &fds) {
            on_spawn(c, std::get<pr::Spawn>(req.body), fds);
        },
        /*takes_fds=*/true);
    r.add("join", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        on_join(c, std::get<pr::Join>(req.body));
    });
    r.add("signal", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        on_signal(c, std::get<pr::Signal>(req.body));
    });
    r.add("status", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        on_status(c, std::get<pr::Status>(req.body));
    });
    return true;
}

// Start (or restart) p from its launch; relay its relayed streams. *pipes receives the ends
// of "pipe" streams (for the requester), else -1.
dragon_status_t ProcessManager::start_proc(Proc &p, std::array<int, 3> *pipes) {
    dp::SpawnRequest req = p.launch->req;
    req.set_env.emplace_back("DRAGON_PUID", std::to_string(p.puid));
    if (p.group_index >= 0) {
        req.set_env.emplace_back("DRAGON_GROUP_INDEX", std::to_string(p.group_index));
        req.set_env.emplace_back("DRAGON_GROUP_SIZE", std::to_string(p.launch->spec.group_size));
    }
    if (const std::string &ns = p.launch->spec.pmi; !ns.empty()) {
        // An MPI rank: its PMIx job and the variables it finds its server by; nothing of an
        // inherited launcher's (docs/pmi.md, "The ranks' environment").
        if (req.env.empty()) {
            for (char **e = environ; *e != nullptr; ++e) {
                req.env.emplace_back(*e);
            }
        }
        req.env.erase(std::remove_if(req.env.begin(), req.env.end(),
                                     [](const std::string &kv) {
                                         return PmixServer::inherited_breaks_launch(kv);
                                     }),
                      req.env.end());
        if (dragon_status_t st =
                pmix_.prepare(ns, p.launch->spec.group_size, static_cast<uint32_t>(p.group_index),
                              req.env, &req.set_env);
            st != DRAGON_SUCCESS) {
            return st;
        }
    }
    dp::Spawned sp;
    if (dragon_status_t st = dp::spawn(req, &sp); st != DRAGON_SUCCESS) {
        return st;
    }
    p.pid = sp.pid;
    p.pidfd = std::exchange(sp.pidfd, -1);
    p.started_ns = Reactor::now_ns();
    live_[p.pid] = p.puid;
    const auto &streams = p.launch->spec.streams;
    std::string label =
        node_.label ? "[" + node_.host_name + ":" + std::to_string(p.puid) + "] " : std::string();
    p.relays[0] = streams[1] == pr::Stream::kRelay
                      ? node_.output.add_relay(std::exchange(sp.out_fd, -1), Output::kOut, label)
                      : 0;
    p.relays[1] = streams[2] == pr::Stream::kRelay
                      ? node_.output.add_relay(std::exchange(sp.err_fd, -1), Output::kErr, label)
                      : 0;
    *pipes = {sp.in_fd, sp.out_fd, sp.err_fd};
    return DRAGON_SUCCESS;
}

// Signal p's process group, only while p is an unreaped child (through its pidfd): a
// process that has been reaped is never signalled, nor is a group by a bare id.
void ProcessManager::signal_proc(Proc &p, int sig) {
    if (p.pidfd >= 0) {
        dp::signal_group(p.pidfd, p.pid, sig);
    } else if (live_.find(p.pid) != live_.end()) {
        kill(-p.pid, sig); // no pidfd (pidfd_open failed): unreaped, so still its group
    }
}

void ProcessManager::on_spawn(const Call &c, pr::Spawn &spec, ReceivedFds &fds) {
    auto launch = std::make_shared<Launch>();
    if (fds.left() != static_cast<size_t>(spec.fds_expected())) {
        node_.control.reply(c, DRAGON_BAD_DESCRIPTOR, {},
                            "spawn: " + std::to_string(spec.fds_expected()) +
                                " descriptor(s) expected, " + std::to_string(fds.left()) + " sent");
        return;
    }
    dp::SpawnRequest &req = launch->req;
    static const dp::Stdio to_proc[] = {dp::Stdio::kInherit, dp::Stdio::kPipe, dp::Stdio::kPipe,
                                        dp::Stdio::kDevNull, dp::Stdio::kFd};
    dp::Stdio *modes[3] = {&req.in, &req.out, &req.err};
    for (size_t i = 0; i < 3; ++i) {
        *modes[i] = to_proc[static_cast<size_t>(spec.streams[i])];
        if (spec.streams[i] == pr::Stream::kFd) {
            launch->fds[i] = fds.take();
            req.fds[i] = launch->fds[i];
        }
    }
    if (dragon_status_t st = info_.check_placement(spec); st != DRAGON_SUCCESS) {
        node_.control.fail(c, st);
        return;
    }
    if (dragon_status_t st = info_.bind(spec, &req); st != DRAGON_SUCCESS) {
        node_.control.fail(c, st);
        return;
    }
    if (spec.check) { // placement and binding hold; start nothing
        node_.control.reply(c, DRAGON_SUCCESS, pr::SpawnReply{});
        return;
    }
    req.program = spec.program;
    req.args = spec.args;
    req.env = spec.env;
    req.cwd = spec.cwd;
    if (const char *w = detail::wait_mode_name(spec.wait_mode)) {
        req.set_env.emplace_back("DRAGON_WAIT_MODE", w);
    }
    req.set_env.emplace_back("DRAGON_RUNTIME_ID", node_.runtime_id);
    req.set_env.emplace_back("DRAGON_NODE_ID", std::to_string(node_.node_id));
    req.set_env.emplace_back("DRAGON_NODE_SOCKET", node_.socket_path);
    if (const char *token = std::getenv(rt::kRuntimeTokenEnv)) { // over a request's own env
        req.set_env.emplace_back(rt::kRuntimeTokenEnv, token);
    }
    req.new_process_group = true;
    req.die_with_parent = true;
    req.nofile_soft = node_.nofile_soft;
    launch->spec = std::move(spec);
    const pr::Spawn &s = launch->spec;
    pr::SpawnReply out;
    std::vector<int> give; // the requester's ends of "pipe" streams
    for (uint32_t i = 0; i < s.count; ++i) {
        uint64_t puid = (static_cast<uint64_t>(node_.node_id) << 32) | next_puid_++;
        Proc p;
        p.puid = puid;
        p.launch = launch;
        p.group_index = s.group_first >= 0 ? s.group_first + int64_t{i} * s.group_stride : -1;
        std::array<int, 3> pipes{-1, -1, -1};
        if (dragon_status_t st = start_proc(p, &pipes); st != DRAGON_SUCCESS) {
            // All or none: what this request started is killed (and reaped as usual).
            std::string why = dragon_last_error();
            for (uint64_t started : out.puids) {
                Proc &q = procs_.at(started);
                q.final = true;
                signal_proc(q, SIGKILL);
            }
            for (int f : give) {
                close(f);
            }
            node_.control.reply(c, st, {},
                                s.count > 1 ? "process " + std::to_string(i) + " of " +
                                                  std::to_string(s.count) + ": " + why
                                            : why);
            return;
        }
        for (size_t k = 0; k < 3; ++k) {
            if (s.streams[k] == pr::Stream::kPipe) {
                give.push_back(pipes[k]);
            } else if (pipes[k] >= 0) {
                close(pipes[k]);
            }
        }
        out.puids.push_back(puid);
        out.pids.push_back(p.pid);
        procs_.emplace(puid, std::move(p));
    }
    node_.control.reply(c, DRAGON_SUCCESS, std::move(out), {}, give);
    for (int f : give) {
        close(f);
    }
}

// Every puid of the request, known here; else replies NOT_FOUND and returns false.
bool ProcessManager::find_all(const Call &c, const std::vector<uint64_t> &puids) {
    for (uint64_t puid : puids) {
        if (procs_.find(puid) == procs_.end()) {
            node_.control.reply(c, DRAGON_NOT_FOUND, {},
                                "no such process: " + std::to_string(puid));
            return false;
        }
    }
    return true;
}

void ProcessManager::on_join(const Call &c, pr::Join &req) {
    if (!find_all(c, req.puids)) {
        return;
    }
    uint64_t jid = next_join_++;
    Join j;
    j.call = c;
    j.puids = std::move(req.puids);
    for (uint64_t puid : j.puids) {
        j.remaining += procs_.at(puid).exited ? 0 : 1;
    }
    bool now = j.remaining == 0 || req.timeout_ns == 0;
    j.parked = node_.control.park(c, [this, jid] { drop_join(jid); });
    if (j.parked == 0) {
        return; // answered NO_SPACE
    }
    for (uint64_t puid : j.puids) {
        joins_by_puid_.emplace(puid, jid);
    }
    joins_.emplace(jid, std::move(j));
    if (now) {
        // Done already, or timeout 0: the deadline has passed, so it is answered now.
        answer_join(jid, joins_.at(jid).remaining != 0);
        return;
    }
    if (req.timeout_ns > 0) {
        joins_.at(jid).timer =
            node_.reactor.after(req.timeout_ns, [this, jid] { answer_join(jid, true); });
    }
}

void ProcessManager::drop_join(uint64_t jid) {
    auto it = joins_.find(jid);
    if (it == joins_.end()) {
        return;
    }
    Join &j = it->second;
    node_.reactor.cancel(j.timer);
    for (uint64_t puid : j.puids) {
        for (auto [at, end] = joins_by_puid_.equal_range(puid); at != end; ++at) {
            if (at->second == jid) {
                joins_by_puid_.erase(at);
                break;
            }
        }
    }
    joins_.erase(it);
}

void ProcessManager::answer_join(uint64_t jid, bool timed_out) {
    auto it = joins_.find(jid);
    if (it == joins_.end()) {
        return;
    }
    const Join &j = it->second;
    pr::JoinReply r;
    for (uint64_t puid : j.puids) {
        const Proc &p = procs_.at(puid);
        r.exit_codes.push_back(p.exited ? p.exit_code : -1);
    }
    node_.control.reply(j.call, timed_out ? DRAGON_TIMEOUT : DRAGON_SUCCESS, std::move(r),
                        timed_out ? "still running" : "");
    node_.control.unpark(j.parked);
    drop_join(jid);
}

void ProcessManager::on_signal(const Call &c, pr::Signal &req) {
    if (!find_all(c, req.puids)) {
        return;
    }
    if (req.signal < 0 || req.signal >= NSIG) {
        node_.control.reply(c, DRAGON_INVALID_ARGUMENT, {}, "no such signal");
        return;
    }
    node_.control.reply(c, DRAGON_SUCCESS);
    for (uint64_t puid : req.puids) {
        Proc &p = procs_.at(puid);
        if (req.final) {
            p.final = true;
            if (p.restart_timer != 0) { // between two lives: it ends here
                node_.reactor.cancel(p.restart_timer);
                p.restart_timer = 0;
                end_for_good(p, p.exit_code);
            }
        }
        if (!p.exited && p.restart_timer == 0) {
            signal_proc(p, req.signal); // its whole process group
        }
    }
}

void ProcessManager::on_status(const Call &c, pr::Status &req) {
    if (!find_all(c, req.puids)) {
        return;
    }
    pr::StatusReply r;
    for (uint64_t puid : req.puids) {
        const Proc &p = procs_.at(puid);
        r.processes.push_back({puid, p.exited, p.pid, p.exited ? p.exit_code : -1, p.restarts});
    }
    node_.control.reply(c, DRAGON_SUCCESS, std::move(r));
}

// SIGCHLD: reap every child that ended. Managed processes are handled; others are orphans
// the daemon adopted as a child subreaper, reaped at once so that they hold no pid.
void ProcessManager::children_ended() {
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

void ProcessManager::proc_ended(Proc &p, int status) {
    close(p.pidfd);
    p.pidfd = -1;
    // What its pipes hold now (written just before the exit) goes out before the news of
    // its end; the pipes stay relayed until their end (its children may hold them).
    for (uint64_t &r : p.relays) {
        if (r != 0) {
            node_.output.drain(r);
            r = 0;
        }
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    uint32_t max = p.launch->spec.restart;
    if (code != 0 && !p.final && !node_.stopping && p.restarts < max) {
        // Restart on failure: at once after a long life, else backing off (10 ms doubling,
        // at most 1 s) so that a program that cannot start does not spin.
        bool quick = Reactor::now_ns() - p.started_ns < kSecond;
        p.quick_failures = quick ? p.quick_failures + 1 : 0;
        int64_t delay =
            quick ? std::min<int64_t>(kSecond,
                                      10000000LL << std::min<uint32_t>(p.quick_failures - 1, 7))
                  : 0;
        p.exit_code = code;
        uint64_t puid = p.puid;
        p.restart_timer = node_.reactor.after(delay, [this, puid] { restart_due(puid); });
        // The count is logged when the restart happens (restart_due), where the status
        // counts it: a stop during the wait leaves both at the same number.
        Output::log("dragon-node: process %llu (%s) failed with exit status %d; restarting in "
                    "%lld ms",
                    static_cast<unsigned long long>(p.puid), p.launch->spec.program.c_str(), code,
                    static_cast<long long>(delay / 1000000));
        return;
    }
    end_for_good(p, code);
}

void ProcessManager::end_for_good(Proc &p, int code) {
    if (p.launch && !p.launch->spec.pmi.empty() && p.group_index >= 0) {
        pmix_.rank_ended(p.launch->spec.pmi, static_cast<uint32_t>(p.group_index), code);
    }
    p.exited = true;
    p.exit_code = code;
    p.restart_timer = 0;
    p.launch.reset();
    std::vector<uint64_t> done;
    for (auto [at, end] = joins_by_puid_.equal_range(p.puid); at != end; ++at) {
        Join &j = joins_.at(at->second);
        if (--j.remaining == 0) {
            done.push_back(at->second);
        }
    }
    for (uint64_t jid : done) {
        answer_join(jid, false);
    }
    node_.control.publish(pr::Event{pr::ProcEnded{p.puid, code}});
}

void ProcessManager::restart_due(uint64_t puid) {
    Proc &p = procs_.at(puid);
    p.restart_timer = 0;
    if (node_.stopping) {
        return;
    }
    ++p.restarts;
    Output::log("dragon-node: process %llu (%s): restart %u of %u",
                static_cast<unsigned long long>(p.puid), p.launch->spec.program.c_str(), p.restarts,
                p.launch->spec.restart);
    std::array<int, 3> pipes{-1, -1, -1};
    if (start_proc(p, &pipes) != DRAGON_SUCCESS) {
        Output::log("dragon-node: process %llu could not restart: %s",
                    static_cast<unsigned long long>(p.puid), dragon_last_error());
        end_for_good(p, p.exit_code);
        return;
    }
    for (int f : pipes) {
        if (f >= 0) {
            close(f);
        }
    }
}

// Only processes that are still this daemon's unreaped children are signalled: managed
// process groups through their leaders' pidfds, and every other child (an orphan the daemon
// adopted as a child subreaper) through a pidfd of its own; descendants of those become
// children as their parents die and are ended in turn.
void ProcessManager::stop() {
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
    bool now = node_.stop_now || node_.hurry;
    int64_t kill_at = now ? Reactor::now_ns() : Reactor::now_ns() + kGrace;
    if (!now) {
        signal_all(SIGTERM);
    }
    int64_t last_kill = -1;
    for (;;) {
        children_ended();
        if (dp::reap_ended([](pid_t, int) {}) < 0 && live_.empty()) {
            break; // no child left
        }
        int64_t t = Reactor::now_ns();
        if (node_.hurry && kill_at > t) {
            kill_at = t; // the launcher hurries us (a signal), or left
        }
        if (t >= kill_at + kGiveUp) {
            Output::log("dragon-node: %zu process(es) did not die of SIGKILL within %lld s "
                        "(stuck in the kernel?); leaving them",
                        dp::children().size(), static_cast<long long>(kGiveUp / kSecond));
            break;
        }
        if (t >= kill_at && (last_kill < 0 || t - last_kill >= 20000000)) {
            signal_all(SIGKILL); // again and again: adopted descendants are children now
            last_kill = t;
        }
        node_.reactor.run_once(10); // relays and sinks meanwhile
    }
    node_.reactor.unwatch(child_watch_);
}

} // namespace dragon::node
