#include "node_info.hpp"

#include "../common/error.hpp"

#include <dragon/dragon.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string>

#include <sched.h>

namespace dragon::node {

namespace pr = dragon::protocol;
using detail::fail;

NodeInfo::~NodeInfo() {
    dragon_machine_free(machine_);
}

namespace {

// The CPUs this process may run on: the job's grant (affinity mask, so cgroup cpusets too).
std::vector<uint32_t> granted_cpus() {
    constexpr int kMaxCpus = 1 << 15;
    std::vector<uint32_t> out;
    cpu_set_t *set = CPU_ALLOC(kMaxCpus);
    size_t size = CPU_ALLOC_SIZE(kMaxCpus);
    if (set != nullptr && sched_getaffinity(0, size, set) == 0) {
        for (int c = 0; c < kMaxCpus; ++c) {
            if (CPU_ISSET_S(c, size, set)) {
                out.push_back(static_cast<uint32_t>(c));
            }
        }
    }
    CPU_FREE(set);
    return out;
}

// "0-3,8,10-11"
std::string cpu_list(const std::vector<uint32_t> &cpus) {
    std::string s;
    for (size_t i = 0; i < cpus.size();) {
        size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) {
            ++j;
        }
        s += (s.empty() ? "" : ",") + std::to_string(cpus[i]);
        if (j > i) {
            s += "-" + std::to_string(cpus[j]);
        }
        i = j + 1;
    }
    return s.empty() ? "none" : s;
}

} // namespace

dragon_status_t NodeInfo::load() {
    if (machine_ != nullptr) {
        return DRAGON_SUCCESS;
    }
    granted_ = granted_cpus();
    return dragon_machine_load(nullptr, &machine_);
}

dragon_status_t NodeInfo::describe(pr::NodeReply *out) {
    if (dragon_status_t st = load(); st != DRAGON_SUCCESS) {
        return st;
    }
    dragon_node_info_t info{};
    info.struct_size = sizeof info;
    dragon_machine_info(machine_, &info);
    pr::NodeReply r;
    r.node_id = node_.node_id;
    r.host_name = node_.host_name.empty() ? std::string(info.host_name) : node_.host_name;
    r.cpu_count = info.cpu_count;
    r.numa_count = info.numa_count;
    for (uint32_t i = 0; i < info.gpu_count; ++i) {
        dragon_gpu_info_t g{};
        g.struct_size = sizeof g;
        dragon_machine_gpu(machine_, i, &g);
        r.gpus.push_back({static_cast<int>(g.vendor), g.vendor_index, g.numa_node, g.pci_bus_id});
    }
    std::vector<dragon_policy_t> per_gpu(info.gpu_count);
    size_t count = 0;
    dragon_policy_per_gpu(machine_, per_gpu.data(), per_gpu.size(), sizeof(dragon_policy_t),
                          &count);
    for (size_t i = 0; i < std::min(count, per_gpu.size()); ++i) {
        const dragon_policy_t &pol = per_gpu[i];
        r.gpu_policies.push_back(
            {{pol.cpus, pol.cpus + pol.cpu_count}, {pol.gpus, pol.gpus + pol.gpu_count}});
    }
    *out = std::move(r);
    return DRAGON_SUCCESS;
}

bool NodeInfo::start() {
    node_.control.router().add("node", [this](const Call &c, pr::Request &, ReceivedFds &) {
        pr::NodeReply r;
        if (dragon_status_t st = describe(&r); st != DRAGON_SUCCESS) {
            node_.control.fail(c, st);
            return;
        }
        node_.control.reply(c, DRAGON_SUCCESS, std::move(r));
    });
    return true;
}

void NodeInfo::stop() {
    dragon_machine_free(machine_);
    machine_ = nullptr;
}

dragon_status_t NodeInfo::check_placement(const pr::Spawn &spec) {
    if (spec.host_id >= 0 && spec.host_id != node_.node_id) {
        return fail(DRAGON_NOT_FOUND,
                    "placement: no node with host id %lld in this runtime (it has node %u)",
                    static_cast<long long>(spec.host_id), node_.node_id);
    }
    if (!spec.host_name.empty()) {
        if (dragon_status_t st = load(); st != DRAGON_SUCCESS) {
            return st;
        }
        dragon_node_info_t info{};
        info.struct_size = sizeof info;
        dragon_machine_info(machine_, &info);
        std::string mine = node_.host_name.empty() ? std::string(info.host_name) : node_.host_name;
        if (spec.host_name != mine) {
            return fail(DRAGON_NOT_FOUND,
                        "placement: no node named '%s' in this runtime (it has '%s')",
                        spec.host_name.c_str(), mine.c_str());
        }
    }
    return DRAGON_SUCCESS;
}

dragon_status_t NodeInfo::bind(const pr::Spawn &spec, proc::SpawnRequest *req) {
    if (spec.cpus.empty() && spec.gpus.empty()) {
        return DRAGON_SUCCESS;
    }
    if (dragon_status_t st = load(); st != DRAGON_SUCCESS) {
        return st;
    }
    auto policy = std::make_unique<dragon_policy_t>();
    dragon_policy_init(policy.get());
    policy->cpu_count =
        static_cast<uint32_t>(std::min<size_t>(spec.cpus.size(), DRAGON_POLICY_MAX_CPUS));
    std::copy_n(spec.cpus.begin(), policy->cpu_count, policy->cpus);
    policy->gpu_count =
        static_cast<uint32_t>(std::min<size_t>(spec.gpus.size(), DRAGON_POLICY_MAX_GPUS));
    std::copy_n(spec.gpus.begin(), policy->gpu_count, policy->gpus);
    auto binding = std::make_unique<dragon_policy_binding_t>();
    binding->struct_size = sizeof *binding;
    if (dragon_status_t st = dragon_policy_bind(policy.get(), machine_, binding.get());
        st != DRAGON_SUCCESS) {
        return st;
    }
    // Bind to the policy's CPUs that the job was granted here: a policy drawn from the
    // whole node's topology (a NUMA domain, a GPU's CPUs) narrows to the grant, as a
    // Slurm or cgroup allocation intends; none granted is an error, before anything starts.
    std::vector<uint32_t> want(binding->cpus, binding->cpus + binding->cpu_count);
    std::vector<uint32_t> cpus;
    std::sort(want.begin(), want.end());
    std::set_intersection(want.begin(), want.end(), granted_.begin(), granted_.end(),
                          std::back_inserter(cpus));
    if (!want.empty() && cpus.empty()) {
        dragon_node_info_t info{};
        info.struct_size = sizeof info;
        dragon_machine_info(machine_, &info);
        const char *xml = std::getenv("DRAGON_TOPOLOGY_XML");
        std::string from = xml != nullptr && *xml != '\0'
                               ? std::string(" (from the topology in DRAGON_TOPOLOGY_XML / "
                                             "--topology, ") +
                                     xml + ")"
                               : "";
        return fail(DRAGON_NOT_FOUND,
                    "cannot bind to CPUs %s%s: node %u ('%s') grants this job CPUs %s only",
                    cpu_list(want).c_str(), from.c_str(), node_.node_id, info.host_name,
                    cpu_list(granted_).c_str());
    }
    req->cpus = std::move(cpus);
    if (binding->gpu_variable[0] != '\0') {
        req->set_env.emplace_back(binding->gpu_variable, binding->gpu_value);
        if (binding->gpu_vendor == DRAGON_GPU_VENDOR_NVIDIA) {
            req->set_env.emplace_back("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
        }
    }
    return DRAGON_SUCCESS;
}

} // namespace dragon::node
