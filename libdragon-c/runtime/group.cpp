// Process groups (docs/runtime.md): kept in the process that made the group; members are
// runtime processes. Each template's members start with one request to the node daemon,
// and join, stop and member queries are one request for the whole group.
#include "../protocol/messages.hpp"
#include "attr.hpp"
#include "endpoint.hpp"
#include "process_ops.hpp"

#include "../common/error.hpp"

#include <dragon/process.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using dragon::detail::fail;
using dragon::detail::guarded;
namespace rt = dragon::runtime;

namespace {

// argv and attributes of a template, copied.
struct Template {
    uint32_t count = 0;
    std::vector<std::string> argv;
    std::vector<std::string> env;
    bool has_env = false;
    std::string cwd;
    bool has_cwd = false;
    dragon_stdio_t in_mode = DRAGON_STDIO_DEVNULL;
    dragon_stdio_t out_mode = DRAGON_STDIO_RELAY;
    dragon_stdio_t err_mode = DRAGON_STDIO_RELAY;
    uint32_t max_restarts = 0;
    std::string role;
    bool has_role = false;
    std::unique_ptr<dragon_policy_t> policy; // the group's merged over the template's
};

struct Member {
    uint64_t puid = 0;
    bool ended = false;
    int exit_code = -1;
};

bool pipe_mode(dragon_stdio_t m) {
    int raw = 0;
    std::memcpy(&raw, &m, sizeof raw);
    return raw == DRAGON_STDIO_PIPE;
}

} // namespace

struct dragon_process_group {
    std::unique_ptr<dragon_policy_t> policy;
    std::vector<Template> templates;
    std::vector<Member> members;
    uint32_t max_restarts = 0;
    bool restart_set = false;
    bool started = false;
    std::string pmi; // the PMIx namespace of an MPI group ("": not one)
};

namespace {

// Members started and not known to have ended.
std::vector<size_t> open_members(const dragon_process_group &g) {
    std::vector<size_t> out;
    for (size_t i = 0; i < g.members.size(); ++i) {
        if (g.members[i].puid != 0 && !g.members[i].ended) {
            out.push_back(i);
        }
    }
    return out;
}

// Wait (timeout 0: poll) for the open members; record those that ended.
dragon_status_t wait_members(dragon_process_group &g, dragon_timeout_t timeout) {
    std::vector<size_t> open = open_members(g);
    if (open.empty()) {
        return DRAGON_SUCCESS;
    }
    std::vector<uint64_t> puids;
    puids.reserve(open.size());
    for (size_t i : open) {
        puids.push_back(g.members[i].puid);
    }
    std::vector<int> codes;
    dragon_status_t st = rt::join_processes(puids, timeout, &codes);
    if (st != DRAGON_SUCCESS && st != DRAGON_TIMEOUT) {
        return st;
    }
    for (size_t k = 0; k < open.size(); ++k) {
        if (codes[k] >= 0) {
            g.members[open[k]].ended = true;
            g.members[open[k]].exit_code = codes[k];
        }
    }
    return st;
}

dragon_status_t signal_open(dragon_process_group &g, int sig) {
    std::vector<uint64_t> puids;
    for (size_t i : open_members(g)) {
        puids.push_back(g.members[i].puid);
    }
    return puids.empty() ? DRAGON_SUCCESS : rt::signal_processes(puids, sig, true);
}

dragon_status_t stop_group(dragon_process_group &g, dragon_timeout_t grace) {
    if (dragon_status_t st = signal_open(g, SIGTERM); st != DRAGON_SUCCESS) {
        return st;
    }
    dragon_status_t st = wait_members(g, grace < 0 ? 0 : grace);
    if (st == DRAGON_TIMEOUT) {
        if (st = signal_open(g, SIGKILL); st != DRAGON_SUCCESS) {
            return st;
        }
        st = wait_members(g, DRAGON_TIMEOUT_FOREVER);
    }
    return st;
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_process_group_create(const dragon_policy_t *policy,
                                                       dragon_process_group_t **group) {
    return guarded("dragon_process_group_create", [&]() -> dragon_status_t {
        if (group == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_create: group is NULL");
        }
        *group = nullptr;
        auto g = std::make_unique<dragon_process_group>();
        g->policy = std::make_unique<dragon_policy_t>();
        const dragon_policy_t *levels[] = {policy};
        g->policy->struct_size = sizeof(dragon_policy_t);
        if (dragon_status_t st = dragon_policy_merge(levels, 1, g->policy.get());
            st != DRAGON_SUCCESS) {
            return st;
        }
        *group = g.release();
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_group_add(dragon_process_group_t *group, uint32_t n,
                                                    const char *const *argv,
                                                    const dragon_process_attr_t *attr) {
    return guarded("dragon_process_group_add", [&]() -> dragon_status_t {
        if (group == nullptr || argv == nullptr || argv[0] == nullptr || argv[0][0] == '\0' ||
            n == 0) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_add: bad argument");
        }
        if (group->started) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_process_group_add: the group has started already");
        }
        dragon_process_attr_t a;
        if (dragon_status_t st = rt::widen_attr(attr, &a); st != DRAGON_SUCCESS) {
            return st;
        }
        if (pipe_mode(a.in_mode) || pipe_mode(a.out_mode) || pipe_mode(a.err_mode)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_process_group_add: members cannot have PIPE streams");
        }
        Template t;
        t.count = n;
        for (const char *const *p = argv; *p != nullptr; ++p) {
            t.argv.emplace_back(*p);
        }
        if (a.env != nullptr) {
            t.has_env = true;
            for (const char *const *e = a.env; *e != nullptr; ++e) {
                t.env.emplace_back(*e);
            }
        }
        if (a.cwd != nullptr) {
            t.has_cwd = true;
            t.cwd = a.cwd;
        }
        t.in_mode = a.in_mode;
        t.out_mode = a.out_mode;
        t.err_mode = a.err_mode;
        t.max_restarts = a.max_restarts;
        if (a.role != nullptr) {
            t.has_role = true;
            t.role = a.role;
        }
        // Group policy over the template's, field by field.
        const dragon_policy_t *levels[] = {a.policy, group->policy.get()};
        t.policy = std::make_unique<dragon_policy_t>();
        t.policy->struct_size = sizeof(dragon_policy_t);
        if (dragon_status_t st = dragon_policy_merge(levels, 2, t.policy.get());
            st != DRAGON_SUCCESS) {
            return st;
        }
        group->templates.push_back(std::move(t));
        group->members.resize(group->members.size() + n);
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_group_set_restart(dragon_process_group_t *group,
                                                            uint32_t max_restarts) {
    if (group == nullptr || group->started) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_process_group_set_restart: no group, or started already");
    }
    group->max_restarts = max_restarts;
    group->restart_set = true;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_process_group_set_pmi(dragon_process_group_t *group, int enable) {
    if (group == nullptr || group->started) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_process_group_set_pmi: no group, or started already");
    }
    if (enable == 0) {
        group->pmi.clear();
        return DRAGON_SUCCESS;
    }
    // A namespace unique in the runtime: this process's puid and a count.
    static std::atomic<uint32_t> seq{0};
    uint64_t self = 0;
    dragon_process_self(&self);
    const char *rt_id = std::getenv("DRAGON_RUNTIME_ID");
    group->pmi = std::string("dragon.") + (rt_id != nullptr ? rt_id : "rt") + "." +
                 std::to_string(self) + "." + std::to_string(seq.fetch_add(1));
    return DRAGON_SUCCESS;
}

namespace {

// Members of a template that go to one node in one request: member first + i * stride for
// i < count, on node host_id (-1: where the template's policy says, or this node).
struct Part {
    int64_t host_id = -1;
    size_t first = 0;
    uint32_t stride = 1;
    uint32_t count = 0;
};

// Every node's CPU count, by node id (one node: {its count}).
dragon_status_t node_cpus(std::vector<uint32_t> *out) {
    dragon::protocol::Reply reply;
    if (dragon_status_t st =
            rt::request(dragon::protocol::NodesQuery{}, rt::Endpoint::kCallMs, &reply);
        st != DRAGON_SUCCESS) {
        return st;
    }
    const auto *all = std::get_if<dragon::protocol::NodesReply>(&reply.body);
    if (all == nullptr || all->nodes.empty()) {
        return fail(DRAGON_CORRUPTED, "node daemon: malformed nodes reply");
    }
    out->clear();
    for (const auto &n : all->nodes) {
        out->push_back(std::max<uint32_t>(n.cpu_count, 1));
    }
    return DRAGON_SUCCESS;
}

// Where t's members (from member `first` on) go. A policy that names a host, and an MPI
// group (one node until MPI crosses nodes), keep them together; otherwise, on several
// nodes, member g of the group goes to node g % N (round-robin, the default) or fills each
// node's CPUs in turn (block), and each node's members become runs of evenly spaced
// members (docs/multinode.md, "Groups over nodes").
std::vector<Part> plan(const dragon_process_group &group, const Template &t, size_t first,
                       const std::vector<uint32_t> &cpus) {
    const dragon_policy_t *p = t.policy.get();
    bool placed =
        p != nullptr &&
        (p->placement == DRAGON_PLACEMENT_HOST_NAME || p->placement == DRAGON_PLACEMENT_HOST_ID ||
         p->placement == DRAGON_PLACEMENT_LOCAL || p->host_name[0] != '\0' || p->host_id >= 0);
    size_t n = cpus.size();
    if (placed || !group.pmi.empty() || n <= 1 || t.count == 0) {
        return {Part{-1, first, 1, t.count}};
    }
    bool block = p != nullptr && p->distribution == DRAGON_DISTRIBUTION_BLOCK;
    uint64_t total = 0;
    for (uint32_t c : cpus) {
        total += c;
    }
    std::vector<std::vector<size_t>> by_node(n);
    for (size_t g = first; g < first + t.count; ++g) {
        size_t node = g % n;
        if (block) {
            uint64_t r = g % total;
            node = 0;
            while (r >= cpus[node]) {
                r -= cpus[node++];
            }
        }
        by_node[node].push_back(g);
    }
    std::vector<Part> parts;
    for (size_t node = 0; node < n; ++node) {
        const std::vector<size_t> &m = by_node[node];
        for (size_t i = 0; i < m.size();) {
            Part part{static_cast<int64_t>(node), m[i], 1, 1};
            if (i + 1 < m.size()) {
                part.stride = static_cast<uint32_t>(m[i + 1] - m[i]);
            }
            size_t j = i + 1;
            while (j < m.size() && m[j] - m[j - 1] == part.stride) {
                ++j;
            }
            part.count = static_cast<uint32_t>(j - i);
            parts.push_back(part);
            i = j;
        }
    }
    return parts;
}

// Start t's members (first is the index of its first member), or with check only ask the
// daemons whether they can be placed and bound (one request per node they go to).
dragon_status_t start_template(dragon_process_group &group, const Template &t, size_t first,
                               bool check, const std::vector<uint32_t> &cpus) {
    std::vector<const char *> argv;
    argv.reserve(t.argv.size() + 1);
    for (const auto &s : t.argv) {
        argv.push_back(s.c_str());
    }
    argv.push_back(nullptr);
    std::vector<const char *> env;
    env.reserve(t.env.size() + 1);
    for (const auto &s : t.env) {
        env.push_back(s.c_str());
    }
    env.push_back(nullptr);
    dragon_process_attr_t a;
    dragon_process_attr_init(&a);
    a.env = t.has_env ? env.data() : nullptr;
    a.cwd = t.has_cwd ? t.cwd.c_str() : nullptr;
    a.in_mode = t.in_mode;
    a.out_mode = t.out_mode;
    a.err_mode = t.err_mode;
    a.max_restarts = group.restart_set ? group.max_restarts : t.max_restarts;
    a.policy = t.policy.get();
    a.role = t.has_role ? t.role.c_str() : nullptr;
    std::vector<Part> parts = plan(group, t, first, cpus);
    if (check) { // members of a template on one node are placed alike
        std::vector<int64_t> checked;
        for (const Part &part : parts) {
            if (std::find(checked.begin(), checked.end(), part.host_id) != checked.end()) {
                continue;
            }
            checked.push_back(part.host_id);
            std::vector<uint64_t> none;
            rt::SpawnExtra check_only;
            check_only.check = true;
            check_only.host_id = part.host_id;
            if (dragon_status_t st =
                    rt::spawn_processes(argv.data(), a, 1, &none, nullptr, check_only);
                st != DRAGON_SUCCESS) {
                return st;
            }
        }
        return DRAGON_SUCCESS;
    }
    // One request per part (at most kMaxSpawnCount members each).
    for (const Part &part : parts) {
        for (uint32_t done = 0; done < part.count;) {
            uint32_t n = std::min(part.count - done, dragon::protocol::kMaxSpawnCount);
            std::vector<uint64_t> some;
            rt::SpawnExtra extra;
            extra.group_first = static_cast<int64_t>(part.first + size_t{done} * part.stride);
            extra.group_size = static_cast<uint32_t>(group.members.size());
            extra.group_stride = part.stride;
            extra.host_id = part.host_id;
            extra.pmi = group.pmi;
            if (dragon_status_t st = rt::spawn_processes(argv.data(), a, n, &some, nullptr, extra);
                st != DRAGON_SUCCESS) {
                return st;
            }
            for (uint32_t k = 0; k < some.size(); ++k) {
                size_t member = static_cast<size_t>(extra.group_first) + size_t{k} * part.stride;
                group.members[member].puid = some[k];
            }
            done += n;
        }
    }
    return DRAGON_SUCCESS;
}

} // namespace

DRAGON_API dragon_status_t dragon_process_group_start(dragon_process_group_t *group) {
    return guarded("dragon_process_group_start", [&]() -> dragon_status_t {
        if (group == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_start: group is NULL");
        }
        if (group->started) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_start: started already");
        }
        // Zero members is never what a program meant, and a silent start would let a job
        // "succeed" doing nothing: most often the GPU pattern on a machine without GPUs.
        size_t members = 0;
        for (const Template &t : group->templates) {
            members += t.count;
        }
        if (members == 0) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_process_group_start: the group has no members (nothing was "
                        "added; note that dragon_system_gpu_policies / System::gpu_policies() "
                        "give no policy on a machine without GPUs)");
        }
        group->started = true;
        std::vector<uint32_t> cpus; // every node's CPUs: where members go
        if (dragon_status_t st = node_cpus(&cpus); st != DRAGON_SUCCESS) {
            group->started = false;
            return st;
        }
        // Two passes over the templates: check every placement and binding with the daemon
        // first, then start; a member that cannot be placed or bound fails the start before
        // any member runs (all or none).
        for (int pass = 0; pass < 2; ++pass) {
            bool check = pass == 0;
            size_t first = 0;
            for (const Template &t : group->templates) {
                if (dragon_status_t st = start_template(*group, t, first, check, cpus);
                    st != DRAGON_SUCCESS) {
                    std::string why = dragon_last_error();
                    if (!check) {
                        stop_group(*group, 0);
                    }
                    std::string which = t.count == 1 ? "member " + std::to_string(first)
                                                     : "members " + std::to_string(first) + " to " +
                                                           std::to_string(first + t.count - 1);
                    return fail(
                        st, "process group: %s (%s) %s: %s", which.c_str(), t.argv[0].c_str(),
                        check ? "cannot be placed, so no member was started" : "did not start",
                        why.c_str());
                }
                first += t.count;
            }
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_group_join(dragon_process_group_t *group,
                                                     dragon_timeout_t timeout) {
    return guarded("dragon_process_group_join", [&]() -> dragon_status_t {
        if (group == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_join: group is NULL");
        }
        dragon_status_t st = wait_members(*group, timeout);
        if (st == DRAGON_TIMEOUT) {
            return fail(DRAGON_TIMEOUT, "process group: %zu member(s) still running",
                        open_members(*group).size());
        }
        return st;
    });
}

DRAGON_API dragon_status_t dragon_process_group_stop(dragon_process_group_t *group,
                                                     dragon_timeout_t grace) {
    return guarded("dragon_process_group_stop", [&]() -> dragon_status_t {
        if (group == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_stop: group is NULL");
        }
        return stop_group(*group, grace);
    });
}

DRAGON_API dragon_status_t dragon_process_group_size(const dragon_process_group_t *group,
                                                     uint32_t *size) {
    if (group == nullptr || size == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_size: NULL argument");
    }
    *size = static_cast<uint32_t>(group->members.size());
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_process_group_member(dragon_process_group_t *group,
                                                       uint32_t index, uint64_t *puid, int *ended,
                                                       int *exit_code) {
    return guarded("dragon_process_group_member", [&]() -> dragon_status_t {
        if (group == nullptr || index >= group->members.size()) {
            return fail(DRAGON_NOT_FOUND, "process group: no member %u", index);
        }
        Member &m = group->members[index];
        if (m.puid != 0 && !m.ended) {
            std::vector<int> codes;
            dragon_status_t st = rt::join_processes({m.puid}, 0, &codes);
            if (st == DRAGON_SUCCESS) {
                m.ended = true;
                m.exit_code = codes[0];
            } else if (st != DRAGON_TIMEOUT) {
                return st;
            }
        }
        if (puid != nullptr) {
            *puid = m.puid;
        }
        if (ended != nullptr) {
            *ended = m.ended ? 1 : 0;
        }
        if (exit_code != nullptr) {
            *exit_code = m.exit_code;
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_group_destroy(dragon_process_group_t *group) {
    delete group;
    return DRAGON_SUCCESS;
}

} // extern "C"
