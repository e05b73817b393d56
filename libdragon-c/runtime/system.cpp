// The system's C ABI: the runtime's nodes, asked of the node daemon ("nodes" request: every
// daemon knows every node once the runtime is up, docs/multinode.md).
#include "endpoint.hpp"

#include "../common/error.hpp"
#include "../common/struct_array.hpp"
#include "../machine/policy.hpp"

#include <dragon/system.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using dragon::detail::fail;
using dragon::detail::guarded;
namespace rt = dragon::runtime;
namespace pr = dragon::protocol;

namespace {

dragon_status_t nodes(std::vector<pr::NodeReply> *out) {
    pr::Reply reply;
    if (dragon_status_t st = rt::request(pr::NodesQuery{}, rt::Endpoint::kCallMs, &reply);
        st != DRAGON_SUCCESS) {
        return st;
    }
    auto *all = std::get_if<pr::NodesReply>(&reply.body);
    if (all == nullptr || all->nodes.empty()) {
        return fail(DRAGON_CORRUPTED, "node daemon: malformed nodes reply");
    }
    *out = std::move(all->nodes);
    return DRAGON_SUCCESS;
}

// Copy a list of small integers into a policy's fixed array.
uint32_t fill(const std::vector<uint32_t> &list, uint32_t *dst, size_t cap) {
    auto n = static_cast<uint32_t>(std::min(list.size(), cap));
    std::copy_n(list.begin(), n, dst);
    return n;
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_system_node_count(uint32_t *count) {
    return guarded("dragon_system_node_count", [&]() -> dragon_status_t {
        if (count == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_system_node_count: count is NULL");
        }
        std::vector<pr::NodeReply> all;
        if (dragon_status_t st = nodes(&all); st != DRAGON_SUCCESS) {
            return st;
        }
        *count = static_cast<uint32_t>(all.size());
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_system_node(uint32_t index, dragon_system_node_t *node) {
    return guarded("dragon_system_node", [&]() -> dragon_status_t {
        if (node == nullptr || node->struct_size < sizeof(size_t)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_system_node: set node->struct_size");
        }
        std::vector<pr::NodeReply> all;
        if (dragon_status_t st = nodes(&all); st != DRAGON_SUCCESS) {
            return st;
        }
        if (index >= all.size()) {
            return fail(DRAGON_NOT_FOUND, "system: no node %u (the runtime has %zu)", index,
                        all.size());
        }
        const pr::NodeReply &j = all[index];
        dragon_system_node_t n{};
        n.struct_size = sizeof n;
        n.node_id = j.node_id;
        j.host_name.copy(n.host_name, std::min<size_t>(j.host_name.size(), DRAGON_HOST_NAME_MAX));
        n.cpu_count = j.cpu_count;
        n.numa_count = j.numa_count;
        n.gpu_count = static_cast<uint32_t>(j.gpus.size());
        size_t k = std::min(node->struct_size, sizeof n);
        std::memcpy(node, &n, k);
        node->struct_size = k;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_system_gpu_policies(dragon_policy_t *policies, size_t cap,
                                                      size_t policy_size, size_t *count) {
    return guarded("dragon_system_gpu_policies", [&]() -> dragon_status_t {
        if (count == nullptr || (policies == nullptr && cap != 0)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_system_gpu_policies: bad argument");
        }
        if (dragon_status_t st = dragon::detail::check_element_size(
                policy_size, dragon::policy::kMinSize, cap, "dragon_system_gpu_policies",
                "policy_size", "dragon_policy_t");
            st != DRAGON_SUCCESS) {
            return st;
        }
        std::vector<pr::NodeReply> all;
        if (dragon_status_t st = nodes(&all); st != DRAGON_SUCCESS) {
            return st;
        }
        size_t n = 0;
        for (const pr::NodeReply &node : all) {
            const std::string &host = node.host_name;
            for (const pr::CpuSet &p : node.gpu_policies) {
                if (n < cap) {
                    dragon_policy_t out;
                    dragon_policy_init(&out);
                    out.placement = DRAGON_PLACEMENT_HOST_NAME;
                    host.copy(out.host_name, std::min<size_t>(host.size(), DRAGON_HOST_NAME_MAX));
                    out.host_name[std::min<size_t>(host.size(), DRAGON_HOST_NAME_MAX)] = '\0';
                    out.host_id = node.node_id;
                    out.cpu_count = fill(p.cpus, out.cpus, DRAGON_POLICY_MAX_CPUS);
                    out.gpu_count = fill(p.gpus, out.gpus, DRAGON_POLICY_MAX_GPUS);
                    dragon::detail::store_element(out, policies, n, policy_size);
                }
                ++n;
            }
        }
        *count = n;
        return DRAGON_SUCCESS;
    });
}

} // extern "C"
