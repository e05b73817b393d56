// The seed's 1_dragon_process_group.py in C++: one process per GPU of every node of the
// runtime (dragon::System::gpu_policies()), each placed on its GPU's node, pinned to the CPUs
// of the GPU's NUMA domain and given that GPU, printing where it runs.
// Run it with the launcher:   dragon build/examples/process-group
// On a machine without GPUs, one process per NUMA domain runs instead; a synthetic GPU node
// can stand in:   DRAGON_TOPOLOGY_XML=tests/data/topology/nvidia-4gpu.xml dragon ...
#include <dragon/dragon.hpp>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

// What one member prints: its host, the GPU(s) it was given, the CPUs it may run on.
int hello_gpu_affinity() {
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    const char *gpu = nullptr;
    for (const char *var : {"CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"}) {
        if (gpu == nullptr) {
            gpu = std::getenv(var);
        }
    }
    std::string cpus = "?";
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Cpus_allowed_list:", 0) == 0) {
            cpus = line.substr(line.find_first_not_of(" \t", 18));
        }
    }
    std::printf("Hello from host %s, GPU ID(s): %s, CPUs: %s\n", host,
                gpu != nullptr ? gpu : "No GPUs assigned", cpus.c_str());
    return 0;
}

std::string self_exe() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "process-group";
}

} // namespace

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "--worker") == 0) {
        return hello_gpu_affinity();
    }
    try {
        std::vector<dragon::Policy> policies = dragon::System::gpu_policies();
        if (policies.empty()) {
            // No GPUs anywhere: one process per NUMA domain of every node, with that domain's
            // CPUs (the nodes of an allocation are alike: this node's domains stand for
            // theirs).
            auto here = dragon::Node::discover();
            auto nodes = dragon::System::nodes();
            std::printf("No GPUs on the %zu node%s: one process per NUMA domain instead.\n",
                        nodes.size(), nodes.size() == 1 ? "" : "s");
            for (const auto &n : nodes) {
                for (std::uint32_t d = 0; d < n.numa_count; ++d) {
                    dragon::Policy p;
                    p.placement(dragon::Policy::Placement::host_name).host_name(n.host_name);
                    if (d < here.numa_count()) {
                        p.cpu_affinity(here.cpus(static_cast<std::int32_t>(d)));
                    }
                    policies.push_back(p);
                }
            }
        }
        std::printf("Launching %zu process%s with GPU and CPU affinity policies in a "
                    "ProcessGroup...\n",
                    policies.size(), policies.size() == 1 ? "" : "es");
        std::fflush(stdout);
        dragon::ProcessGroup group;
        for (const dragon::Policy &p : policies) {
            dragon::ProcessOptions o;
            o.policy = &p;
            group.add(1, {self_exe(), "--worker"}, o);
        }
        group.start();
        group.join();
        int failed = 0;
        for (std::uint32_t i = 0; i < group.size(); ++i) {
            failed += group.member(i).exit_code != 0 ? 1 : 0;
        }
        std::printf("%u process%s ran, %d failed\n", group.size(), group.size() == 1 ? "" : "es",
                    failed);
        return failed == 0 ? 0 : 1;
    } catch (const dragon::Error &e) {
        std::fprintf(stderr, "process-group: %s\n", e.what());
        return 1;
    }
}
