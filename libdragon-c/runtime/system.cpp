// The system's C ABI: the runtime's nodes, asked of the node daemon ("node" request). One
// node today; with several, the head node's daemon answers for all of them.
#include "connection.hpp"

#include "../common/error.hpp"

#include <dragon/system.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using dragon::detail::fail;
using dragon::detail::guarded;
namespace rt = dragon::runtime;
using json = nlohmann::json;

namespace {

dragon_status_t nodes(std::vector<json> *out) {
    json reply;
    if (dragon_status_t st = rt::request({{"op", "node"}}, rt::kCallMs, &reply);
        st != DRAGON_SUCCESS) {
        return st;
    }
    if (!reply.contains("host_name") || !reply["host_name"].is_string() ||
        !reply.contains("gpu_policies") || !reply["gpu_policies"].is_array()) {
        return fail(DRAGON_CORRUPTED, "node daemon: malformed node reply");
    }
    out->clear();
    out->push_back(std::move(reply));
    return DRAGON_SUCCESS;
}

// Copy a JSON array of small non-negative integers into a policy's list.
uint32_t fill(const json &list, uint32_t *dst, size_t cap) {
    uint32_t n = 0;
    if (!list.is_array()) {
        return 0;
    }
    for (const auto &v : list) {
        if (n < cap && v.is_number_unsigned()) {
            dst[n++] = v.get<uint32_t>();
        }
    }
    return n;
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_system_node_count(uint32_t *count) {
    return guarded("dragon_system_node_count", [&]() -> dragon_status_t {
        if (count == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_system_node_count: count is NULL");
        }
        std::vector<json> all;
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
        std::vector<json> all;
        if (dragon_status_t st = nodes(&all); st != DRAGON_SUCCESS) {
            return st;
        }
        if (index >= all.size()) {
            return fail(DRAGON_NOT_FOUND, "system: no node %u (the runtime has %zu)", index,
                        all.size());
        }
        const json &j = all[index];
        dragon_system_node_t n{};
        n.struct_size = sizeof n;
        n.node_id = j.value("node_id", 0U);
        std::string host = j["host_name"].get<std::string>();
        host.copy(n.host_name, std::min<size_t>(host.size(), DRAGON_HOST_NAME_MAX));
        n.cpu_count = j.value("cpu_count", 0U);
        n.numa_count = j.value("numa_count", 0U);
        n.gpu_count = j.contains("gpus") && j["gpus"].is_array()
                          ? static_cast<uint32_t>(j["gpus"].size())
                          : 0;
        size_t k = std::min(node->struct_size, sizeof n);
        std::memcpy(node, &n, k);
        node->struct_size = k;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_system_gpu_policies(dragon_policy_t *policies, size_t cap,
                                                      size_t *count) {
    return guarded("dragon_system_gpu_policies", [&]() -> dragon_status_t {
        if (count == nullptr || (policies == nullptr && cap != 0)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_system_gpu_policies: bad argument");
        }
        std::vector<json> all;
        if (dragon_status_t st = nodes(&all); st != DRAGON_SUCCESS) {
            return st;
        }
        size_t n = 0;
        for (const json &node : all) {
            std::string host = node["host_name"].get<std::string>();
            for (const json &p : node["gpu_policies"]) {
                if (n < cap) {
                    dragon_policy_t &out = policies[n];
                    dragon_policy_init(&out);
                    out.placement = DRAGON_PLACEMENT_HOST_NAME;
                    host.copy(out.host_name, std::min<size_t>(host.size(), DRAGON_HOST_NAME_MAX));
                    out.host_name[std::min<size_t>(host.size(), DRAGON_HOST_NAME_MAX)] = '\0';
                    out.host_id = node.value("node_id", int64_t{0});
                    out.cpu_count =
                        fill(p.value("cpus", json::array()), out.cpus, DRAGON_POLICY_MAX_CPUS);
                    out.gpu_count =
                        fill(p.value("gpus", json::array()), out.gpus, DRAGON_POLICY_MAX_GPUS);
                }
                ++n;
            }
        }
        *count = n;
        return DRAGON_SUCCESS;
    });
}

} // extern "C"
