// Process groups (docs/runtime.md): kept in the process that made the group; members are
// started and joined through the node daemon like any process.
#include "attr.hpp"

#include "../common/clock.hpp"
#include "../common/error.hpp"

#include <dragon/process.h>

#include <csignal>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using dragon::detail::fail;
using dragon::detail::guarded;

namespace {

struct Member {
    std::vector<std::string> argv;
    std::vector<std::string> env;
    bool has_env = false;
    std::string cwd;
    bool has_cwd = false;
    dragon_stdio_t out_mode = DRAGON_STDIO_RELAY;
    dragon_stdio_t err_mode = DRAGON_STDIO_RELAY;
    // The merged policy (group over template), shared by the members of one template.
    std::shared_ptr<const dragon_policy_t> policy;
    uint64_t puid = 0;
    bool ended = false;
    int exit_code = -1;
};

} // namespace

struct dragon_process_group {
    std::unique_ptr<dragon_policy_t> policy;
    std::vector<Member> members;
    bool started = false;
};

namespace {

// Poll a member (timeout 0) or wait for it; updates ended/exit_code.
dragon_status_t wait_member(Member &m, dragon_timeout_t timeout) {
    if (m.ended || m.puid == 0) {
        return DRAGON_SUCCESS;
    }
    int code = -1;
    dragon_status_t st = dragon_process_join(m.puid, timeout, &code);
    if (st == DRAGON_SUCCESS) {
        m.ended = true;
        m.exit_code = code;
    }
    return st;
}

dragon_timeout_t left(const dragon::detail::Deadline &d) {
    if (d.forever()) {
        return DRAGON_TIMEOUT_FOREVER;
    }
    struct timespec ts {};
    d.remaining(&ts);
    return static_cast<dragon_timeout_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
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
        if (group == nullptr || argv == nullptr || argv[0] == nullptr || n == 0) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_add: bad argument");
        }
        if (group->started) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_process_group_add: the group has started already");
        }
        dragon_process_attr_t a;
        if (dragon_status_t st = dragon::runtime::widen_attr(attr, &a); st != DRAGON_SUCCESS) {
            return st;
        }
        Member tmpl;
        for (const char *const *p = argv; *p != nullptr; ++p) {
            tmpl.argv.emplace_back(*p);
        }
        if (a.env != nullptr) {
            tmpl.has_env = true;
            for (const char *const *e = a.env; *e != nullptr; ++e) {
                tmpl.env.emplace_back(*e);
            }
        }
        if (a.cwd != nullptr) {
            tmpl.has_cwd = true;
            tmpl.cwd = a.cwd;
        }
        tmpl.out_mode = a.out_mode;
        tmpl.err_mode = a.err_mode;
        // Group policy over the template's, field by field.
        const dragon_policy_t *levels[] = {a.policy, group->policy.get()};
        auto merged = std::make_shared<dragon_policy_t>();
        merged->struct_size = sizeof(dragon_policy_t);
        if (dragon_status_t st = dragon_policy_merge(levels, 2, merged.get());
            st != DRAGON_SUCCESS) {
            return st;
        }
        tmpl.policy = std::move(merged);
        group->members.insert(group->members.end(), n, tmpl);
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_group_start(dragon_process_group_t *group) {
    return guarded("dragon_process_group_start", [&]() -> dragon_status_t {
        if (group == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_start: group is NULL");
        }
        if (group->started) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_start: started already");
        }
        group->started = true;
        for (size_t i = 0; i < group->members.size(); ++i) {
            Member &m = group->members[i];
            std::vector<const char *> argv;
            argv.reserve(m.argv.size() + 1);
            for (const auto &s : m.argv) {
                argv.push_back(s.c_str());
            }
            argv.push_back(nullptr);
            std::vector<const char *> env;
            env.reserve(m.env.size() + 1);
            for (const auto &s : m.env) {
                env.push_back(s.c_str());
            }
            env.push_back(nullptr);
            dragon_process_attr_t a;
            dragon_process_attr_init(&a);
            a.env = m.has_env ? env.data() : nullptr;
            a.cwd = m.has_cwd ? m.cwd.c_str() : nullptr;
            a.out_mode = m.out_mode;
            a.err_mode = m.err_mode;
            a.policy = m.policy.get();
            dragon_status_t st = dragon_process_create(argv.data(), &a, &m.puid);
            if (st != DRAGON_SUCCESS) {
                std::string why = dragon_last_error();
                dragon_process_group_stop(group, 0);
                return fail(st, "process group: member %zu (%s) did not start: %s", i,
                            m.argv[0].c_str(), why.c_str());
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
        dragon::detail::Deadline deadline(timeout);
        for (Member &m : group->members) {
            dragon_timeout_t t = timeout == 0 ? 0 : left(deadline);
            dragon_status_t st = wait_member(m, t);
            if (st == DRAGON_TIMEOUT) {
                return fail(DRAGON_TIMEOUT, "process group: members still running");
            }
            if (st != DRAGON_SUCCESS) {
                return st;
            }
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_group_stop(dragon_process_group_t *group,
                                                     dragon_timeout_t grace) {
    return guarded("dragon_process_group_stop", [&]() -> dragon_status_t {
        if (group == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_group_stop: group is NULL");
        }
        for (Member &m : group->members) {
            if (m.puid != 0 && wait_member(m, 0) == DRAGON_TIMEOUT) {
                dragon_process_signal(m.puid, SIGTERM);
            }
        }
        dragon::detail::Deadline deadline(grace < 0 ? 0 : grace);
        for (Member &m : group->members) {
            if (wait_member(m, left(deadline)) == DRAGON_TIMEOUT) {
                dragon_process_signal(m.puid, SIGKILL);
            }
        }
        for (Member &m : group->members) {
            if (dragon_status_t st = wait_member(m, DRAGON_TIMEOUT_FOREVER); st != DRAGON_SUCCESS) {
                return st;
            }
        }
        return DRAGON_SUCCESS;
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
        dragon_status_t st = wait_member(m, 0);
        if (st != DRAGON_SUCCESS && st != DRAGON_TIMEOUT) {
            return st;
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
