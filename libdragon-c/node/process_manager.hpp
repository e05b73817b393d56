// The process-manager service: spawn (with placement and affinity from NodeInfo), the relay
// of managed processes' output (Output), restart on failure, join / status / signal, the
// "process ended" event, and ending every process at teardown. Processes are signalled only
// through their pidfds while they are unreaped children (docs/runtime.md, "Teardown").
#pragma once

#include "node_info.hpp"
#include "pmix_server.hpp"
#include "service.hpp"

#include "../process/spawn.hpp"
#include "../protocol/messages.hpp"

#include <array>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

namespace dragon::node {

class ProcessManager : public Service {
  public:
    static constexpr int64_t kGrace = 1000000000LL;      // teardown: SIGTERM, then SIGKILL
    static constexpr int64_t kGiveUp = 5 * 1000000000LL; // ... and no more waiting after that

    ProcessManager(NodeContext &node, NodeInfo &info, PmixServer &pmix)
        : Service(node), info_(info), pmix_(pmix) {}
    ~ProcessManager() override;
    const char *name() const override { return "process-manager"; }
    bool start() override;
    // End every process of the runtime (SIGTERM, then SIGKILL after the grace period; at
    // once with stop_now or when hurried) and every child the daemon adopted, relaying their
    // output meanwhile.
    void stop() override;

  private:
    // What a spawn request asked for, shared by the processes it started (count > 1) and
    // kept for their restarts; owns the descriptors the requester sent.
    struct Launch {
        protocol::Spawn spec;
        proc::SpawnRequest req;
        std::array<int, 3> fds{-1, -1, -1};
        Launch() = default;
        Launch(const Launch &) = delete;
        Launch &operator=(const Launch &) = delete;
        ~Launch();
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
        uint64_t restart_timer = 0;  // a restart is due (its timer), 0: none
        bool final = false;          // stopped on purpose: never restart
        uint64_t relays[2] = {0, 0}; // its stdout and stderr relays, 0: none
        int64_t group_index = -1;    // its index in its process group, -1: none
    };
    // A parked join: answered when every puid has ended for good, or at its deadline.
    struct Join {
        Call call;
        std::vector<uint64_t> puids;
        size_t remaining = 0;
        uint64_t timer = 0;
        uint64_t parked = 0;
    };

    void on_spawn(const Call &c, protocol::Spawn &spec, ReceivedFds &fds);
    void on_join(const Call &c, protocol::Join &req);
    void on_signal(const Call &c, protocol::Signal &req);
    void on_status(const Call &c, protocol::Status &req);
    bool find_all(const Call &c, const std::vector<uint64_t> &puids);

    dragon_status_t start_proc(Proc &p, std::array<int, 3> *pipes);
    void signal_proc(Proc &p, int sig);
    void children_ended();
    void proc_ended(Proc &p, int status);
    void end_for_good(Proc &p, int code);
    void restart_due(uint64_t puid);
    void answer_join(uint64_t join, bool timed_out);
    void drop_join(uint64_t join);

    NodeInfo &info_;
    PmixServer &pmix_;
    int child_fd_ = -1; // signalfd for SIGCHLD
    uint64_t child_watch_ = 0;
    uint64_t next_puid_ = 1;
    std::map<uint64_t, Proc> procs_;
    std::unordered_map<pid_t, uint64_t> live_; // pid of an unreaped process -> its puid
    std::map<uint64_t, Join> joins_;
    uint64_t next_join_ = 1;
    std::multimap<uint64_t, uint64_t> joins_by_puid_; // puid -> join
};

} // namespace dragon::node
