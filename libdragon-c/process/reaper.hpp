// Signalling and reaping the processes of a runtime without ever reaching anyone else's
// (docs/runtime.md, "Teardown"). A pid is signalled only while it cannot have been reused:
// it is an unreaped child of the caller (only the caller reaps it), and even then through a
// pidfd. A process group is signalled only while its leader is such a child.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include <sys/types.h>

namespace dragon::proc {

// Signal the process group led by the process of `pidfd` (an unreaped child of the
// caller, whose pid is `pid`). 0, or -1 with errno (ESRCH once it has been reaped).
int signal_group(int pidfd, pid_t pid, int sig);

// The caller's children, living or zombie (from /proc).
std::vector<pid_t> children();

// Signal one child of the caller (through a pidfd opened on it). 0, or -1 with errno.
int signal_child(pid_t pid, int sig);

// Reap every child that has ended; with `on_exit` for each (pid, wait status). Returns how
// many; -1 when the caller has no children left at all.
template <typename F>
int reap_ended(F on_exit);

// End every child of the caller but those in `spare` (children it had before, say ones a
// shell left it through exec), and all their descendants (which, the caller being a child
// subreaper, become its children as their parents die): `first` (SIGTERM, or 0 for none) to
// all, SIGKILL to what is left after grace_ms, repeated until none is left. Returns when the
// caller has no such child, or after grace_ms + give_up_ms. Spared children are neither
// signalled nor reaped.
void end_all_children(int first, int grace_ms, int give_up_ms, const std::set<pid_t> &spare = {});

// The start time of a process (clock ticks since boot, /proc/<pid>/stat field 22), 0 if it
// does not exist. A pid with another start time is another process.
uint64_t start_time(pid_t pid);

// The session id of a process, -1 if it does not exist.
pid_t session_of(pid_t pid);

} // namespace dragon::proc

#include <sys/wait.h>

template <typename F>
int dragon::proc::reap_ended(F on_exit) {
    int n = 0;
    for (;;) {
        int status = 0;
        pid_t got = waitpid(-1, &status, WNOHANG);
        if (got > 0) {
            on_exit(got, status);
            ++n;
            continue;
        }
        return got < 0 && n == 0 ? -1 : n;
    }
}
