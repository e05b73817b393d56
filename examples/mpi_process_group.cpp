// The seed's 2_dragon_mpi_process_group.py in C++: an MPI program run as a ProcessGroup with
// the pmi flag set, one rank per policy across the allocation (one per GPU of every node;
// without GPUs, one per CPU of each node, bound to it). The runtime serves PMIx to the ranks
// itself: no mpirun (docs/pmi.md).
// Run it with the launcher:   dragon build/examples/mpi-process-group [MPI_PROGRAM]
// (default: mpi-hello next to this program, examples/mpi_hello.c).
#include <dragon/dragon.hpp>

#include <climits>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

std::string self_dir() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    std::string e = n > 0 ? std::string(buf, static_cast<size_t>(n)) : ".";
    return e.substr(0, e.rfind('/'));
}

} // namespace

int main(int argc, char **argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        std::string program = argc > 1 ? argv[1] : self_dir() + "/mpi-hello";
        std::vector<dragon::Policy> policies = dragon::System::gpu_policies();
        if (policies.empty()) {
            auto here = dragon::Node::discover();
            for (const dragon::System::NodeInfo &n : dragon::System::nodes()) {
                // This node's CPUs are known here; another node's by count only (placed there,
                // bound by its daemon's own choice).
                std::vector<std::uint32_t> cpus = here.cpus();
                bool local = n.host_name == here.host_name();
                std::uint32_t count = local ? static_cast<std::uint32_t>(cpus.size()) : n.cpu_count;
                for (std::uint32_t k = 0; k < count; ++k) {
                    dragon::Policy p;
                    p.placement(dragon::Policy::Placement::host_name).host_name(n.host_name);
                    if (local) {
                        p.cpu_affinity({cpus[k]});
                    }
                    policies.push_back(p);
                }
            }
        }
        std::printf("Launching %zu MPI ranks of %s as a ProcessGroup (pmi), one per policy...\n",
                    policies.size(), program.c_str());
        dragon::ProcessGroup group;
        for (const dragon::Policy &p : policies) {
            dragon::ProcessOptions o;
            o.policy = &p;
            group.add(1, {program}, o);
        }
        group.set_pmi();
        group.start();
        group.join();
        int failed = 0;
        for (std::uint32_t i = 0; i < group.size(); ++i) {
            int code = group.member(i).exit_code;
            if (code != 0) {
                std::printf("rank %u exited with %d\n", i, code);
                ++failed;
            }
        }
        std::printf("%u ranks ran, %d failed\n", group.size(), failed);
        return failed == 0 ? 0 : 1;
    } catch (const dragon::Error &e) {
        std::fprintf(stderr, "mpi-process-group: %s\n", e.what());
        return 1;
    }
}
