// Starting one process with a policy's binding applied (docs/runtime.md, "Processes"): the
// primitive the node daemon builds managed processes on.
#pragma once

#include <dragon/status.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace dragon::proc {

enum class Stdio { kInherit, kPipe, kDevNull, kFd };

struct SpawnRequest {
    std::string program;           // a path, or a name looked up in PATH
    std::vector<std::string> args; // argv[1..]; argv[0] is the program as given
    std::vector<std::string> env;  // the whole environment ("NAME=value"); empty: inherit
    std::vector<std::pair<std::string, std::string>> set_env; // set over env
    std::string cwd;                                          // empty: inherit
    std::vector<uint32_t> cpus; // bind to these CPUs before exec; empty: no binding
    Stdio in = Stdio::kInherit;
    Stdio out = Stdio::kInherit;
    Stdio err = Stdio::kInherit;
    int fds[3] = {-1, -1, -1};      // for kFd: the descriptor to give the child (not closed)
    bool new_process_group = false; // the child leads a process group of its own
    bool die_with_parent = false;   // SIGKILL the child if the caller dies (PR_SET_PDEATHSIG)
    long nofile_soft = -1;          // >= 0: the child's soft RLIMIT_NOFILE (the caller's may
                                    // have been raised for its own many descriptors)
};

struct Spawned {
    pid_t pid = -1;
    int pidfd = -1; // readable when the process has exited
    int in_fd = -1; // our ends of kPipe streams (close-on-exec), else -1
    int out_fd = -1;
    int err_fd = -1;
};

// Fork and exec. Failures before exec (no such program, not executable, bad cwd, CPUs that
// cannot be bound) come back as a status with a message naming the program and the step;
// the child is then already reaped.
dragon_status_t spawn(const SpawnRequest &req, Spawned *out);

// Close a Spawned's descriptors (not the process).
void close_fds(Spawned *s);

} // namespace dragon::proc
