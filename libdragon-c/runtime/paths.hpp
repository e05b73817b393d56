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

// Create the runtime base directory (mode 0700) if it is not there, and check that it is
// private: a directory (not a link) owned by this user that nobody else can write. Anyone
// who could write it could swap a runtime directory for one holding their own socket.
// False with *why (naming the path and what to do) when it is not.
bool make_private_base(std::string *why);

// True when the peer of a connected Unix socket runs as this process's effective uid; else
// false with *why naming the path, the peer's uid and pid. Checked before anything is sent
// to a node daemon (docs/runtime.md, "Security model").
bool peer_is_owner(int sock, const std::string &path, std::string *why);

// Remove /dev/shm/dragon.<runtime_id>.* owned by this user; returns how many are left.
int remove_segments(const std::string &runtime_id);

} // namespace dragon::runtime
