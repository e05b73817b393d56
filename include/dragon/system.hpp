// libdragon C++ — the runtime's nodes (dragon::System), from any process of the runtime:
// node count, ids, host names, and one policy per GPU of every node. Header-only over
// dragon/system.h.
#ifndef DRAGON_SYSTEM_HPP
#define DRAGON_SYSTEM_HPP

#include <dragon/error.hpp>
#include <dragon/machine.hpp>
#include <dragon/system.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace dragon {

class System {
  public:
    struct NodeInfo {
        std::uint32_t id; // the host id of policies
        std::string host_name;
        std::uint32_t cpu_count;
        std::uint32_t numa_count;
        std::uint32_t gpu_count;
    };

    static std::uint32_t node_count() {
        std::uint32_t n = 0;
        detail::check(dragon_system_node_count(&n));
        return n;
    }
    static std::vector<NodeInfo> nodes() {
        std::vector<NodeInfo> out;
        std::uint32_t n = node_count();
        for (std::uint32_t i = 0; i < n; ++i) {
            dragon_system_node_t raw{};
            raw.struct_size = sizeof raw;
            detail::check(dragon_system_node(i, &raw));
            out.push_back(
                NodeInfo{raw.node_id, raw.host_name, raw.cpu_count, raw.numa_count, raw.gpu_count});
        }
        return out;
    }
    // One policy per GPU of every node: its node, that GPU, the CPUs of its NUMA domain.
    // Empty on a machine without GPUs (and a ProcessGroup of no members does not start).
    static std::vector<Policy> gpu_policies() {
        std::size_t n = 0;
        detail::check(dragon_system_gpu_policies(nullptr, 0, sizeof(dragon_policy_t), &n));
        std::vector<dragon_policy_t> raw(n);
        detail::check(
            dragon_system_gpu_policies(raw.data(), raw.size(), sizeof(dragon_policy_t), &n));
        // The count may have changed between the two calls: keep what was written.
        return std::vector<Policy>(raw.begin(),
                                   raw.begin() + static_cast<long>(std::min(n, raw.size())));
    }
};

} // namespace dragon

#endif // DRAGON_SYSTEM_HPP
