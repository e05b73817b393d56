// Policies: field-by-field merging and binding against a node (docs/policy.md).
#include "policy.hpp"
#include "machine.hpp"

#include "../common/error.hpp"
#include "../common/struct_array.hpp"
#include "../common/wait_mode.hpp"

#include <dragon/policy.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

using dragon::detail::fail;

namespace {

// A caller's policy as a full struct of this library's size (missing tail fields unset).
dragon_status_t widen(const dragon_policy_t *given, dragon_policy_t *out, const char *where) {
    dragon_policy_init(out);
    if (given->struct_size < sizeof(size_t)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "%s: policy struct_size is %zu; call "
                    "dragon_policy_init first",
                    where, given->struct_size);
    }
    std::memcpy(out, given, std::min(given->struct_size, sizeof *out));
    out->struct_size = sizeof *out;
    if (out->cpu_count > DRAGON_POLICY_MAX_CPUS || out->gpu_count > DRAGON_POLICY_MAX_GPUS) {
        return fail(DRAGON_INVALID_ARGUMENT, "%s: %u CPUs / %u GPUs (at most %d / %d)", where,
                    out->cpu_count, out->gpu_count, DRAGON_POLICY_MAX_CPUS, DRAGON_POLICY_MAX_GPUS);
    }
    // Enums read as int: a C caller may store any value in one.
    int placement = 0;
    int distribution = 0;
    int wait_mode = 0;
    std::memcpy(&placement, &out->placement, sizeof placement);
    std::memcpy(&distribution, &out->distribution, sizeof distribution);
    std::memcpy(&wait_mode, &out->wait_mode, sizeof wait_mode);
    if (placement < DRAGON_PLACEMENT_UNSET || placement > DRAGON_PLACEMENT_HOST_ID ||
        distribution < DRAGON_DISTRIBUTION_UNSET || distribution > DRAGON_DISTRIBUTION_BLOCK ||
        !dragon::detail::valid_wait_mode(wait_mode)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "%s: placement %d, distribution %d or wait mode %d is not a valid value", where,
                    placement, distribution, wait_mode);
    }
    if (std::memchr(out->host_name, '\0', sizeof out->host_name) == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "%s: host_name is not terminated", where);
    }
    return DRAGON_SUCCESS;
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_policy_init(dragon_policy_t *policy) {
    if (policy == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_policy_init: policy is NULL");
    }
    std::memset(policy, 0, sizeof *policy);
    policy->struct_size = sizeof *policy;
    policy->placement = DRAGON_PLACEMENT_UNSET;
    policy->distribution = DRAGON_DISTRIBUTION_UNSET;
    policy->host_id = -1;
    policy->wait_mode = DRAGON_WAIT_DEFAULT;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_policy_merge(const dragon_policy_t *const *levels, size_t n,
                                               dragon_policy_t *out) {
    if (out == nullptr || (levels == nullptr && n != 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_policy_merge: NULL argument");
    }
    dragon_policy_t merged;
    dragon_policy_init(&merged);
    for (size_t i = 0; i < n; ++i) {
        if (levels[i] == nullptr) {
            continue;
        }
        dragon_policy_t p;
        if (dragon_status_t st = widen(levels[i], &p, "dragon_policy_merge");
            st != DRAGON_SUCCESS) {
            return st;
        }
        if (p.placement != DRAGON_PLACEMENT_UNSET) {
            merged.placement = p.placement;
        }
        if (p.distribution != DRAGON_DISTRIBUTION_UNSET) {
            merged.distribution = p.distribution;
        }
        if (p.host_name[0] != '\0') {
            std::memcpy(merged.host_name, p.host_name, sizeof merged.host_name);
        }
        if (p.host_id >= 0) {
            merged.host_id = p.host_id;
        }
        if (p.cpu_count != 0) {
            merged.cpu_count = p.cpu_count;
            std::copy_n(p.cpus, p.cpu_count, merged.cpus);
        }
        if (p.gpu_count != 0) {
            merged.gpu_count = p.gpu_count;
            std::copy_n(p.gpus, p.gpu_count, merged.gpus);
        }
        if (p.wait_mode != DRAGON_WAIT_DEFAULT) {
            merged.wait_mode = p.wait_mode;
        }
    }
    size_t keep = out->struct_size >= sizeof(size_t) ? out->struct_size : sizeof merged;
    merged.struct_size = std::min(keep, sizeof merged);
    std::memcpy(out, &merged, merged.struct_size);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_policy_bind(const dragon_policy_t *policy,
                                              const dragon_machine_t *machine,
                                              dragon_policy_binding_t *binding) {
    if (policy == nullptr || machine == nullptr || binding == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_policy_bind: NULL argument");
    }
    if (binding->struct_size < sizeof(size_t)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_policy_bind: set binding->struct_size");
    }
    dragon_policy_t p;
    if (dragon_status_t st = widen(policy, &p, "dragon_policy_bind"); st != DRAGON_SUCCESS) {
        return st;
    }
    dragon_policy_binding_t b{};
    b.struct_size = binding->struct_size;
    for (uint32_t i = 0; i < p.cpu_count; ++i) {
        if (!std::binary_search(machine->cpus.begin(), machine->cpus.end(), p.cpus[i])) {
            return fail(DRAGON_NOT_FOUND,
                        "policy asks for CPU %u, which node '%s' does not have or did not grant "
                        "this job (%zu CPUs granted)",
                        p.cpus[i], machine->host_name.c_str(), machine->cpus.size());
        }
        b.cpus[i] = p.cpus[i];
    }
    b.cpu_count = p.cpu_count;
    std::string value;
    for (uint32_t i = 0; i < p.gpu_count; ++i) {
        if (p.gpus[i] >= machine->gpus.size()) {
            return fail(DRAGON_NOT_FOUND, "policy asks for GPU %u; node '%s' has %zu GPU(s)",
                        p.gpus[i], machine->host_name.c_str(), machine->gpus.size());
        }
        const dragon_gpu_info_t &g = machine->gpus[p.gpus[i]];
        if (i > 0 && g.vendor != b.gpu_vendor) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "policy mixes GPUs of %s and %s: one process selects one vendor's GPUs",
                        dragon_gpu_vendor_name(b.gpu_vendor), dragon_gpu_vendor_name(g.vendor));
        }
        b.gpu_vendor = g.vendor;
        if (!value.empty()) {
            value += ',';
        }
        value += std::to_string(g.vendor_index);
    }
    if (p.gpu_count != 0) {
        std::snprintf(b.gpu_variable, sizeof b.gpu_variable, "%s",
                      dragon_gpu_visibility_variable(b.gpu_vendor));
        std::snprintf(b.gpu_value, sizeof b.gpu_value, "%s", value.c_str());
    }
    std::memcpy(binding, &b, std::min(binding->struct_size, sizeof b));
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_policy_per_gpu(const dragon_machine_t *machine,
                                                 dragon_policy_t *policies, size_t cap,
                                                 size_t policy_size, size_t *count) {
    if (machine == nullptr || count == nullptr || (policies == nullptr && cap != 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_policy_per_gpu: NULL argument");
    }
    if (dragon_status_t st = dragon::detail::check_element_size(
            policy_size, dragon::policy::kMinSize, cap, "dragon_policy_per_gpu", "policy_size",
            "dragon_policy_t");
        st != DRAGON_SUCCESS) {
        return st;
    }
    *count = machine->gpus.size();
    for (size_t i = 0; i < std::min(cap, machine->gpus.size()); ++i) {
        dragon_policy_t p;
        dragon_policy_init(&p);
        p.placement = DRAGON_PLACEMENT_HOST_NAME;
        std::snprintf(p.host_name, sizeof p.host_name, "%s", machine->host_name.c_str());
        p.gpu_count = 1;
        p.gpus[0] = static_cast<uint32_t>(i);
        int32_t numa = machine->gpus[i].numa_node;
        const std::vector<uint32_t> &cpus =
            numa >= 0 && static_cast<size_t>(numa) < machine->numa_cpus.size() &&
                    !machine->numa_cpus[static_cast<size_t>(numa)].empty()
                ? machine->numa_cpus[static_cast<size_t>(numa)]
                : machine->cpus;
        p.cpu_count = static_cast<uint32_t>(std::min<size_t>(cpus.size(), DRAGON_POLICY_MAX_CPUS));
        std::copy_n(cpus.begin(), p.cpu_count, p.cpus);
        dragon::detail::store_element(p, policies, i, policy_size);
    }
    return DRAGON_SUCCESS;
}

} // extern "C"
