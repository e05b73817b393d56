// The process operations of the runtime client, shared by the process ABI (process.cpp) and
// process groups (group.cpp): each is one request to the node daemon, for one process or
// many.
#pragma once

#include <string>

#include <dragon/process.h>

#include <cstdint>
#include <vector>

namespace dragon::runtime {

// Start `count` processes from argv and (widened) attributes; *puids receives their ids.
// What a group adds to a spawn.
struct SpawnExtra {
    bool check = false;        // only check placement and binding: nothing starts, no puids
    int64_t group_first = -1;  // group members: the first one's index in the group
    uint32_t group_size = 0;   // and the group's size
    std::string pmi;           // an MPI job's PMIx namespace ("": none)
    uint32_t group_stride = 1; // member i of the request is group_first + i * group_stride
    int64_t host_id = -1;      // >= 0: on this node, whatever the policy's placement says
};
// pipes: where PIPE streams' ends go (PIPE needs count 1 and pipes non-null).
dragon_status_t spawn_processes(const char *const *argv, const dragon_process_attr_t &attr,
                                uint32_t count, std::vector<uint64_t> *puids,
                                dragon_process_pipes_t *pipes, SpawnExtra extra = {});

// Wait until every process has ended for good. *codes receives their exit statuses (-1 for
// those still running when DRAGON_TIMEOUT comes back).
dragon_status_t join_processes(const std::vector<uint64_t> &puids, dragon_timeout_t timeout,
                               std::vector<int> *codes);

// Signal each (its process group); final: no more restarts for them.
dragon_status_t signal_processes(const std::vector<uint64_t> &puids, int signal, bool final);

// The state of each, now.
dragon_status_t query_processes(const std::vector<uint64_t> &puids,
                                std::vector<dragon_process_status_t> *out);

} // namespace dragon::runtime
