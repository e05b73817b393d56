// The control protocol between processes and their node daemon (docs/protocol.md): one C++
// type per request, reply and event. Only protocol/codec.cpp turns them into bytes and back;
// nothing else in the tree sees the wire format. Limits checked by the decoders are here, so
// that senders can check them first.
#pragma once

#include <dragon/status.h>
#include <dragon/wait.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace dragon::protocol {

// Bumped on any change a peer of the previous version would misread. Every message carries
// it; a message of another version is answered DRAGON_VERSION_MISMATCH, naming both.
constexpr uint32_t kVersion = 2;

constexpr std::size_t kMaxMessage = 1 << 20;   // bytes of one message
constexpr int kMaxDepth = 16;                  // nesting of arrays and maps
constexpr std::size_t kMaxOpName = 32;         // bytes of [a-z_]
constexpr uint32_t kMaxSpawnCount = 4096;      // processes per spawn request
constexpr std::size_t kMaxPuids = 4096;        // puids per join / signal / status request
constexpr std::size_t kMaxNameLength = 255;    // registry names
constexpr std::size_t kMaxValueLength = 65536; // registry values, bytes
constexpr std::size_t kMaxFds = 3;             // descriptors passed with one message

// ---- requests --------------------------------------------------------------------------

// The first message on a connection: who is asking. The reply names the daemon's version
// and node (a peer of another version gets DRAGON_VERSION_MISMATCH instead).
struct Hello {
    std::string role; // "library", "launcher", ... (logged, not trusted)
};

// How a stream of a spawned process is connected. kInherit: the daemon's own; kRelay: a
// pipe the daemon relays line by line to its own (stdout/stderr only); kPipe: a pipe whose
// other end comes back with the reply (SCM_RIGHTS); kDevNull; kFd: a descriptor sent with
// the request.
enum class Stream : uint8_t { kInherit, kRelay, kPipe, kDevNull, kFd };

struct Spawn {
    std::string program; // non-empty, no NUL
    std::vector<std::string> args;
    std::vector<std::string> env; // "NAME=value"; empty: none
    std::string cwd;              // "": the daemon's
    std::vector<uint32_t> cpus;   // affinity, CPU ids (at most 1024)
    std::vector<uint32_t> gpus;   // the node's GPU indices (at most 64)
    Stream streams[3] = {Stream::kDevNull, Stream::kRelay, Stream::kRelay};
    uint32_t count = 1;    // 1..kMaxSpawnCount identical processes
    uint32_t restart = 0;  // restarts after a failure, per process (at most INT32_MAX)
    std::string host_name; // placement: "" = any node
    int64_t host_id = -1;  // placement: -1 = any node
    dragon_wait_mode_t wait_mode = DRAGON_WAIT_DEFAULT; // travels by name; DEFAULT: unset
    bool check = false; // only check placement and binding; start nothing (all-or-none groups)
    // Group members: the first one's index in its group (-1: not a group) and the group's
    // size; process i of the request gets DRAGON_GROUP_INDEX = group_first + i.
    int64_t group_first = -1;
    uint32_t group_size = 0;
    // ... and process i is member group_first + i * group_stride (members spread over
    // nodes in turn: each node's are every N-th).
    uint32_t group_stride = 1;
    // An MPI job's PMIx namespace ("": none): process i is its rank group_first + i
    // (docs/pmi.md).
    std::string pmi;
    // Descriptors the request carries: one per kFd stream, in stream order.
    int fds_expected() const;
};

struct Join {
    std::vector<uint64_t> puids; // 1..kMaxPuids
    int64_t timeout_ns = -1;     // -1: none; 0: answer now
};

struct Signal {
    std::vector<uint64_t> puids;
    int signal = 0;     // 0..NSIG-1 (checked by the daemon: INVALID_ARGUMENT)
    bool final = false; // no more restarts for them
};

struct Status {
    std::vector<uint64_t> puids;
};

struct Register {
    std::string name; // 1..kMaxNameLength of printable ASCII, no space
    uint32_t kind = 0;
    std::string value; // bytes, at most kMaxValueLength
    bool replace = false;
};

struct Lookup {
    std::string name;
    int64_t timeout_ns = 0; // -1: wait without limit; 0: answer now
};

struct Unregister {
    std::string name;
};

struct NodeQuery {};

struct Shutdown {
    bool now = false; // without the SIGTERM grace period
};

// Ask for events on this connection (pushed by the daemon until it closes).
struct Subscribe {
    bool proc_ended = false;
};

// Every node of the runtime, in node id order (docs/multinode.md).
struct NodesQuery {};

// std::monostate: an op this build does not know (the router answers NOT_SUPPORTED).
using RequestBody = std::variant<std::monostate, Hello, Spawn, Join, Signal, Status, Register,
                                 Lookup, Unregister, NodeQuery, Shutdown, Subscribe, NodesQuery>;

struct Request {
    uint64_t id = 0;
    std::string op; // set by the decoder; encode() takes it from the body
    RequestBody body;
};

// The op name of a body ("" for monostate).
const char *op_name(const RequestBody &body);

// ---- replies ---------------------------------------------------------------------------

struct HelloReply {
    uint32_t protocol = kVersion;
    uint32_t node_id = 0;
};

struct SpawnReply {
    std::vector<uint64_t> puids;
    std::vector<int64_t> pids;
};

// Success: every process has ended; DRAGON_TIMEOUT: -1 for those still running.
struct JoinReply {
    std::vector<int> exit_codes;
};

struct ProcessState {
    uint64_t puid = 0;
    bool exited = false;
    int64_t pid = -1;
    int exit_code = -1; // 128+N for signal N; -1 while running
    uint32_t restarts = 0;
};

struct StatusReply {
    std::vector<ProcessState> processes;
};

struct LookupReply {
    uint32_t kind = 0;
    std::string value;
};

struct GpuInfo {
    int vendor = 0; // dragon_gpu_vendor_t
    uint32_t vendor_index = 0;
    int32_t numa = -1;
    std::string pci_bus_id;
};

struct CpuSet {
    std::vector<uint32_t> cpus;
    std::vector<uint32_t> gpus;
};

struct NodeReply {
    uint32_t node_id = 0;
    std::string host_name;
    uint32_t cpu_count = 0;
    uint32_t numa_count = 0;
    std::vector<GpuInfo> gpus;
    std::vector<CpuSet> gpu_policies; // one per GPU: that GPU, the CPUs of its NUMA domain
    std::string fabric_addr;          // its daemon's fabric endpoint ("": none; docs/multinode.md)
};

struct NodesReply {
    std::vector<NodeReply> nodes;
};

using ReplyBody = std::variant<std::monostate, HelloReply, SpawnReply, JoinReply, StatusReply,
                               LookupReply, NodeReply, NodesReply>;

struct Reply {
    uint64_t id = 0;
    dragon_status_t status = DRAGON_SUCCESS;
    std::string error; // a message for any status but success
    ReplyBody body;
};

// ---- events ----------------------------------------------------------------------------

// A managed process has ended for good (no restart follows).
struct ProcEnded {
    uint64_t puid = 0;
    int exit_code = -1;
};

// A node of the runtime is gone (its daemon's link closed): the runtime ends.
struct NodeLost {
    uint32_t node_id = 0;
    std::string host_name;
    std::string why;
};

using EventBody = std::variant<ProcEnded, NodeLost>;

struct Event {
    EventBody body;
};

// What a daemon sends: a reply or an event.
using Incoming = std::variant<Reply, Event>;

// ---- links between node daemons (docs/multinode.md) --------------------------------------
//
// A daemon's link to its parent in the bootstrap tree (and the head's to nothing) is the
// stdin/stdout of the command that started it (a local fork, ssh, srun): length-prefixed
// messages of this codec. At most this many nodes in one runtime.
constexpr uint32_t kMaxNodes = 65536;
constexpr std::size_t kMaxLinkMessage = kMaxMessage + 1024; // a forwarded message and its head

// Parent to child, first: everything the child needs to be node `node_id`.
struct LinkBoot {
    std::string runtime_id;
    uint32_t node_id = 0;
    std::vector<std::string> hosts;   // the allocation, by node id (what the launcher reaches)
    std::vector<std::string> names;   // the host name each node reports ("": its own)
    std::vector<std::string> launch;  // the command before HOST (ssh ...; empty: local fork)
    std::string wlm;                  // "local", "test", "ssh", "slurm", "pbs" (logged)
    std::string node_exe;             // dragon-node's path on every node
    uint32_t fanout = 0;              // children per daemon in the tree
    bool label = false;               // prefix output lines with host (and process)
    uint32_t boot_timeout_ms = 60000; // a child that has not joined by then failed
    std::vector<std::string> env;     // NAME=value for the daemon (the token, ...)
};

// Child to parent: its subtree has joined; what each of its nodes is.
struct LinkJoined {
    std::vector<NodeReply> nodes;
};

// Parent to child, once everyone has joined: every node of the runtime, by node id.
struct LinkBook {
    std::vector<NodeReply> nodes;
};

// A control request from node `from` for node `to`, routed along the tree (its encoded
// bytes; `tag` names it in the reply), or its reply (`reply`: encoded bytes).
struct LinkForward {
    uint32_t to = 0;
    uint32_t from = 0;
    uint64_t tag = 0;
    bool is_reply = false;
    std::string bytes;
};

// Output for the launcher: whole lines of stdout (0) or stderr (1).
struct LinkOutput {
    uint32_t stream = 0;
    std::string bytes;
};

// Up the tree: a node was lost (its link closed) or, `booting`, did not start.
struct LinkLost {
    uint32_t node_id = 0;
    std::string host;
    std::string why;
    bool booting = false;
};

// Down the tree: tear down (`now`: without the SIGTERM grace period).
struct LinkTeardown {
    bool now = false;
};

using LinkMessage =
    std::variant<LinkBoot, LinkJoined, LinkBook, LinkForward, LinkOutput, LinkLost, LinkTeardown>;

// A registry name's rules (1..kMaxNameLength bytes of printable ASCII, no space); false
// with *why set when broken.
bool valid_name(std::string_view name, std::string *why);

} // namespace dragon::protocol
