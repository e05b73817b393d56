// The process ABI (include/dragon/process.h): requests to the node daemon over the
// process's endpoint (docs/runtime.md).
#include "process_ops.hpp"

#include "attr.hpp"
#include "endpoint.hpp"

#include "../common/clock.hpp"
#include "../common/error.hpp"
#include "../common/wait_mode.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::guarded;
namespace rt = dragon::runtime;
namespace pr = dragon::protocol;

namespace dragon::runtime {
namespace {

// The protocol's stream for an ABI mode; INHERIT passes the caller's own descriptor.
dragon_status_t stream_of(dragon_stdio_t m, int stream, pr::Stream *name,
                          std::vector<int> *send_fds) {
    int raw = 0;
    std::memcpy(&raw, &m, sizeof raw);
    switch (raw) {
    case DRAGON_STDIO_INHERIT:
        if (fcntl(stream, F_GETFD) < 0) { // closed here: nothing to inherit
            *name = pr::Stream::kDevNull;
        } else {
            *name = pr::Stream::kFd;
            send_fds->push_back(stream);
        }
        return DRAGON_SUCCESS;
    case DRAGON_STDIO_DEVNULL:
        *name = pr::Stream::kDevNull;
        return DRAGON_SUCCESS;
    case DRAGON_STDIO_PIPE:
        *name = pr::Stream::kPipe;
        return DRAGON_SUCCESS;
    case DRAGON_STDIO_RELAY:
        if (stream != STDIN_FILENO) {
            *name = pr::Stream::kRelay;
            return DRAGON_SUCCESS;
        }
        return fail(DRAGON_INVALID_ARGUMENT, "process attributes: stdin cannot be RELAY");
    default:
        return fail(DRAGON_INVALID_ARGUMENT, "process attributes: unknown stdio mode %d", raw);
    }
}

// A policy's placement and affinity as spawn fields.
dragon_status_t add_policy(const dragon_policy_t *policy, pr::Spawn *req) {
    dragon_policy_t merged;
    const dragon_policy_t *levels[] = {policy};
    merged.struct_size = sizeof merged;
    if (dragon_status_t st = dragon_policy_merge(levels, 1, &merged); st != DRAGON_SUCCESS) {
        return st;
    }
    if (merged.cpu_count != 0) {
        req->cpus.assign(merged.cpus, merged.cpus + merged.cpu_count);
    }
    if (merged.gpu_count != 0) {
        req->gpus.assign(merged.gpus, merged.gpus + merged.gpu_count);
    }
    // A host name or id names the node, whether or not the placement says so; a placement
    // of HOST_NAME / HOST_ID without one is an error.
    bool by_name = merged.placement == DRAGON_PLACEMENT_HOST_NAME ||
                   (merged.placement == DRAGON_PLACEMENT_UNSET && merged.host_name[0] != '\0');
    bool by_id = merged.placement == DRAGON_PLACEMENT_HOST_ID ||
                 (merged.placement == DRAGON_PLACEMENT_UNSET && merged.host_id >= 0);
    if (by_name) {
        if (merged.host_name[0] == '\0') {
            return fail(DRAGON_INVALID_ARGUMENT, "policy: placement HOST_NAME without a host name");
        }
        req->host_name = merged.host_name;
    }
    if (by_id) {
        if (merged.host_id < 0) {
            return fail(DRAGON_INVALID_ARGUMENT, "policy: placement HOST_ID without a host id");
        }
        req->host_id = merged.host_id;
    }
    if (merged.wait_mode != DRAGON_WAIT_DEFAULT) {
        if (dragon::detail::wait_mode_name(merged.wait_mode) == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "policy: unknown wait mode %d",
                        static_cast<int>(merged.wait_mode));
        }
        req->wait_mode = merged.wait_mode;
    }
    return DRAGON_SUCCESS;
}

} // namespace

dragon_status_t spawn_processes(const char *const *argv, const dragon_process_attr_t &a,
                                uint32_t count, std::vector<uint64_t> *puids,
                                dragon_process_pipes_t *pipes, SpawnExtra extra) {
    bool check = extra.check;
    pr::Spawn req;
    req.program = argv[0];
    req.count = count;
    req.check = check;
    req.group_first = extra.group_first;
    req.group_size = extra.group_size;
    req.group_stride = extra.group_stride;
    req.pmi = extra.pmi;
    std::vector<int> send_fds;
    const dragon_stdio_t modes[3] = {a.in_mode, a.out_mode, a.err_mode};
    bool piped = false;
    for (int i = 0; i < 3; ++i) {
        if (dragon_status_t st = stream_of(modes[i], i, &req.streams[i], &send_fds);
            st != DRAGON_SUCCESS) {
            return st;
        }
        piped = piped || req.streams[i] == pr::Stream::kPipe;
    }
    if (piped && pipes == nullptr && !check) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "process attributes: PIPE streams need dragon_process_create_with_pipes");
    }
    if (a.max_restarts > INT32_MAX) {
        return fail(DRAGON_INVALID_ARGUMENT, "process attributes: max_restarts too large");
    }
    req.restart = a.max_restarts;
    for (const char *const *p = argv + 1; *p != nullptr; ++p) {
        req.args.emplace_back(*p);
    }
    // What says who a process is comes from its request, never from its creator's
    // environment (a worker starting a helper must not pass on its role or group index).
    for (const char *const *e = a.env != nullptr ? a.env : environ; *e != nullptr; ++e) {
        std::string_view v(*e);
        if (v.rfind("DRAGON_ROLE=", 0) != 0 && v.rfind("DRAGON_GROUP_INDEX=", 0) != 0 &&
            v.rfind("DRAGON_GROUP_SIZE=", 0) != 0) {
            req.env.emplace_back(*e);
        }
    }
    if (a.role != nullptr) {
        std::string_view role(a.role);
        bool printable =
            !role.empty() && role.size() <= 64 &&
            std::all_of(role.begin(), role.end(), [](char ch) { return ch > ' ' && ch < 127; });
        if (!printable) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "process attributes: role '%.64s' (1 to 64 printable characters, no "
                        "space)",
                        a.role);
        }
        req.env.emplace_back(std::string("DRAGON_ROLE=") + a.role);
    }
    if (a.cwd != nullptr) {
        req.cwd = a.cwd;
    }
    if (a.policy != nullptr) {
        if (dragon_status_t st = add_policy(a.policy, &req); st != DRAGON_SUCCESS) {
            return st;
        }
    }
    if (extra.host_id >= 0) {
        req.host_id = extra.host_id;
        req.host_name.clear();
    }
    pr::Reply reply;
    std::vector<int> got;
    pr::Stream streams[3] = {req.streams[0], req.streams[1], req.streams[2]};
    if (dragon_status_t st = request(std::move(req), Endpoint::kCallMs, &reply, send_fds, &got);
        st != DRAGON_SUCCESS) {
        return st;
    }
    const auto *r = std::get_if<pr::SpawnReply>(&reply.body);
    if (r == nullptr || r->puids.size() != (check ? 0 : count)) {
        for (int f : got) {
            close(f);
        }
        return fail(DRAGON_CORRUPTED, "node daemon: spawn reply without its process ids");
    }
    *puids = r->puids;
    if (pipes != nullptr) {
        *pipes = dragon_process_pipes_t{-1, -1, -1};
        int *slots[3] = {&pipes->in_fd, &pipes->out_fd, &pipes->err_fd};
        size_t k = 0;
        for (int i = 0; i < 3; ++i) {
            if (streams[i] == pr::Stream::kPipe && k < got.size()) {
                *slots[i] = got[k++];
            }
        }
        for (; k < got.size(); ++k) {
            close(got[k]);
        }
    } else {
        for (int f : got) {
            close(f);
        }
    }
    return DRAGON_SUCCESS;
}

namespace {

// One join request for at most pr::kMaxPuids processes.
dragon_status_t join_some(const uint64_t *puids, size_t n, dragon_timeout_t timeout, int *codes) {
    pr::Join req;
    req.puids.assign(puids, puids + n);
    req.timeout_ns = timeout < 0 ? -1 : timeout;
    pr::Reply reply;
    dragon_status_t st = request(std::move(req), reply_wait_ms(timeout), &reply);
    if (st != DRAGON_SUCCESS && st != DRAGON_TIMEOUT) {
        return st;
    }
    if (const auto *r = std::get_if<pr::JoinReply>(&reply.body)) {
        for (size_t i = 0; i < std::min(n, r->exit_codes.size()); ++i) {
            codes[i] = r->exit_codes[i];
        }
    }
    return st;
}

} // namespace

// Requests carry at most pr::kMaxPuids ids (a control message must fit a socket buffer): larger
// sets go in chunks, a join's under one deadline.
dragon_status_t join_processes(const std::vector<uint64_t> &puids, dragon_timeout_t timeout,
                               std::vector<int> *codes) {
    codes->assign(puids.size(), -1);
    detail::Deadline deadline(timeout);
    dragon_status_t result = DRAGON_SUCCESS;
    for (size_t at = 0; at < puids.size(); at += pr::kMaxPuids) {
        size_t n = std::min(pr::kMaxPuids, puids.size() - at);
        // Once a chunk has timed out, the others are only polled (for their exit codes).
        dragon_timeout_t t = result == DRAGON_TIMEOUT || timeout == 0 ? 0 : deadline.left();
        dragon_status_t st = join_some(puids.data() + at, n, t, codes->data() + at);
        if (st != DRAGON_SUCCESS && st != DRAGON_TIMEOUT) {
            return st;
        }
        if (st == DRAGON_TIMEOUT) {
            result = DRAGON_TIMEOUT;
        }
    }
    return result == DRAGON_TIMEOUT ? detail::fail(DRAGON_TIMEOUT, "processes still running")
                                    : DRAGON_SUCCESS;
}

dragon_status_t signal_processes(const std::vector<uint64_t> &puids, int signal, bool final) {
    for (size_t at = 0; at < puids.size(); at += pr::kMaxPuids) {
        size_t n = std::min(pr::kMaxPuids, puids.size() - at);
        pr::Reply reply;
        pr::Signal req;
        req.puids.assign(puids.begin() + static_cast<long>(at),
                         puids.begin() + static_cast<long>(at + n));
        req.signal = signal;
        req.final = final;
        if (dragon_status_t st = request(std::move(req), Endpoint::kCallMs, &reply);
            st != DRAGON_SUCCESS) {
            return st;
        }
    }
    return DRAGON_SUCCESS;
}

dragon_status_t query_processes(const std::vector<uint64_t> &puids,
                                std::vector<dragon_process_status_t> *out) {
    out->clear();
    for (size_t at = 0; at < puids.size(); at += pr::kMaxPuids) {
        size_t n = std::min(pr::kMaxPuids, puids.size() - at);
        std::vector<uint64_t> some(puids.begin() + static_cast<long>(at),
                                   puids.begin() + static_cast<long>(at + n));
        pr::Reply reply;
        if (dragon_status_t st = request(pr::Status{some}, Endpoint::kCallMs, &reply);
            st != DRAGON_SUCCESS) {
            return st;
        }
        const auto *r = std::get_if<pr::StatusReply>(&reply.body);
        if (r == nullptr || r->processes.size() != n) {
            return fail(DRAGON_CORRUPTED, "node daemon: malformed status reply");
        }
        for (size_t i = 0; i < n; ++i) {
            const pr::ProcessState &p = r->processes[i];
            dragon_process_status_t s{};
            s.struct_size = sizeof s;
            s.state = p.exited ? DRAGON_PROCESS_EXITED : DRAGON_PROCESS_RUNNING;
            s.pid = static_cast<int>(p.pid);
            s.exit_code = p.exit_code;
            s.restarts = p.restarts;
            s.node_id = static_cast<uint32_t>(some[i] >> 32);
            out->push_back(s);
        }
    }
    return DRAGON_SUCCESS;
}

} // namespace dragon::runtime

extern "C" {

DRAGON_API dragon_status_t dragon_process_attr_init(dragon_process_attr_t *attr) {
    if (attr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_attr_init: attr is NULL");
    }
    std::memset(attr, 0, sizeof *attr);
    attr->struct_size = sizeof *attr;
    attr->out_mode = DRAGON_STDIO_RELAY;
    attr->err_mode = DRAGON_STDIO_RELAY;
    attr->in_mode = DRAGON_STDIO_DEVNULL;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_process_create_with_pipes(const char *const *argv,
                                                            const dragon_process_attr_t *attr,
                                                            uint64_t *puid,
                                                            dragon_process_pipes_t *pipes) {
    return guarded("dragon_process_create", [&]() -> dragon_status_t {
        if (argv == nullptr || argv[0] == nullptr || argv[0][0] == '\0' || puid == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_create: no program");
        }
        dragon_process_attr_t a;
        if (dragon_status_t st = rt::widen_attr(attr, &a); st != DRAGON_SUCCESS) {
            return st;
        }
        std::vector<uint64_t> puids;
        if (dragon_status_t st = rt::spawn_processes(argv, a, 1, &puids, pipes);
            st != DRAGON_SUCCESS) {
            return st;
        }
        if (puids.size() != 1) { // spawn_processes checks the reply; said here for the reader
            return fail(DRAGON_CORRUPTED, "node daemon: spawn reply without its process id");
        }
        *puid = puids[0];
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_create(const char *const *argv,
                                                 const dragon_process_attr_t *attr,
                                                 uint64_t *puid) {
    return dragon_process_create_with_pipes(argv, attr, puid, nullptr);
}

DRAGON_API dragon_status_t dragon_process_join(uint64_t puid, dragon_timeout_t timeout,
                                               int *exit_code) {
    return guarded("dragon_process_join", [&]() -> dragon_status_t {
        if (exit_code == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_join: exit_code is NULL");
        }
        std::vector<int> codes;
        dragon_status_t st = rt::join_processes({puid}, timeout, &codes);
        if (st == DRAGON_SUCCESS) {
            *exit_code = codes[0];
        }
        return st;
    });
}

DRAGON_API dragon_status_t dragon_process_signal(uint64_t puid, int signal) {
    return guarded("dragon_process_signal",
                   [&]() { return rt::signal_processes({puid}, signal, false); });
}

DRAGON_API dragon_status_t dragon_process_stop(uint64_t puid, int signal) {
    return guarded("dragon_process_stop",
                   [&]() { return rt::signal_processes({puid}, signal, true); });
}

DRAGON_API dragon_status_t dragon_process_query(uint64_t puid, dragon_process_status_t *status) {
    return guarded("dragon_process_query", [&]() -> dragon_status_t {
        if (status == nullptr || status->struct_size < sizeof(size_t)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_process_query: set status->struct_size first");
        }
        std::vector<dragon_process_status_t> out;
        if (dragon_status_t st = rt::query_processes({puid}, &out); st != DRAGON_SUCCESS) {
            return st;
        }
        size_t n = std::min(status->struct_size, sizeof out[0]);
        std::memcpy(status, &out[0], n);
        status->struct_size = n;
        return DRAGON_SUCCESS;
    });
}

} // extern "C"

// ---- the calling process (docs/runtime.md, "Who am I") ----

namespace {

// A decimal variable the daemon set for this process; false when unset or not a number.
bool env_uint(const char *name, uint64_t max, uint64_t *out) {
    const char *v = std::getenv(name);
    if (v == nullptr || *v < '0' || *v > '9') {
        return false;
    }
    char *end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || n > max) {
        return false;
    }
    *out = n;
    return true;
}

dragon_status_t not_started_by_runtime(const char *what) {
    return fail(DRAGON_NOT_IN_RUNTIME,
                "%s: this process was not started by the runtime (DRAGON_PUID is not set; "
                "start the program with `dragon`)",
                what);
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_process_self(uint64_t *puid) {
    if (puid == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_self: puid is NULL");
    }
    if (!env_uint("DRAGON_PUID", UINT64_MAX, puid)) {
        return not_started_by_runtime("dragon_process_self");
    }
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_process_group_rank(uint32_t *index, uint32_t *size) {
    if (index == nullptr || size == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_rank: NULL argument");
    }
    uint64_t puid = 0;
    if (!env_uint("DRAGON_PUID", UINT64_MAX, &puid)) {
        return not_started_by_runtime("dragon_process_group_rank");
    }
    uint64_t i = 0;
    uint64_t n = 0;
    if (!env_uint("DRAGON_GROUP_INDEX", INT32_MAX, &i) ||
        !env_uint("DRAGON_GROUP_SIZE", INT32_MAX, &n) || i >= n) {
        return fail(DRAGON_NOT_FOUND,
                    "dragon_process_group_rank: process %llu is not a member of a process group",
                    static_cast<unsigned long long>(puid));
    }
    *index = static_cast<uint32_t>(i);
    *size = static_cast<uint32_t>(n);
    return DRAGON_SUCCESS;
}

DRAGON_API const char *dragon_process_role(void) {
    const char *role = std::getenv("DRAGON_ROLE");
    return role != nullptr && *role != '\0' ? role : nullptr;
}

DRAGON_API const char *dragon_process_self_exe(void) {
    static const std::string *path = [] {
        std::string p(4096, '\0');
        ssize_t n = readlink("/proc/self/exe", p.data(), p.size() - 1);
        if (n <= 0) {
            return static_cast<std::string *>(nullptr);
        }
        p.resize(static_cast<size_t>(n));
        return new std::string(std::move(p)); // for the life of the process
    }();
    if (path == nullptr) {
        dragon::detail::fail_errno(DRAGON_NOT_FOUND, errno,
                                   "dragon_process_self_exe: cannot read /proc/self/exe");
        return nullptr;
    }
    return path->c_str();
}

} // extern "C"
