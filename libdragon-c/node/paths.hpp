// Where a runtime keeps its sockets: a private directory per runtime (docs/runtime.md); the
// rule for runtime ids and the runtime's secret token. For the runtime's own programs
// (dragon, dragon-node, dragon-cleanup), not in libdragon-c.so.
#pragma once

#include "pool/descriptor.hpp"
#include "pool/naming.hpp"

#include <string>

namespace dragon::runtime {

// The one rule for a runtime id, wherever one enters (the launcher, dragon-cleanup, the pool
// ABI): 1 to kRuntimeIdMax of [A-Za-z0-9_-]. Segment and socket names carry it.
constexpr int kRuntimeIdMax = DRAGON_RUNTIME_ID_MAX;
inline bool valid_runtime_id(const std::string &id) {
    return pool::valid_runtime_id(id.data(), id.size());
}

// The runtime's secret (docs/pool.md, segment names): the launcher makes one and puts it in
// its environment before it starts the node daemon; the daemon sets it in the environment of
// every process it starts. Never on a command line.
constexpr const char *kRuntimeTokenEnv = pool::kTokenEnv;
// A fresh token; empty (errno set) when the kernel gave no random bytes.
std::string new_runtime_token();

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

// The check of make_private_base, on any directory (`what` names it in *why).
bool private_dir(const std::string &dir, const char *what, std::string *why);

// Remove what daemons keep in the runtime directory (their sockets node-N.sock, their
// record, PMIx's files, the many-daemons mode's topology), then the directory if it is empty;
// false (errno set) when the directory is still there.
bool remove_runtime_dir(const std::string &runtime_id);

// Remove /dev/shm/dragon.<runtime_id>.* owned by this user; returns how many are left.
int remove_segments(const std::string &runtime_id, long node_id = -1);

} // namespace dragon::runtime
