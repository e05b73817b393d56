// Where a runtime keeps its sockets: a private directory per runtime (docs/runtime.md).
#pragma once

#include <string>

namespace dragon::runtime {

// $XDG_RUNTIME_DIR/dragon, else /tmp/dragon-<uid>: the parent of every runtime directory of
// this user (created 0700 by the launcher).
std::string runtime_base();
inline std::string runtime_dir(const std::string &runtime_id) {
    return runtime_base() + "/" + runtime_id;
}
inline std::string node_socket(const std::string &runtime_id, long node_id) {
    return runtime_dir(runtime_id) + "/node-" + std::to_string(node_id) + ".sock";
}

// Remove /dev/shm/dragon.<runtime_id>.* owned by this user; returns how many are left.
int remove_segments(const std::string &runtime_id);

} // namespace dragon::runtime
