// The seed's 0_dragon_pool.py in C++: a task pool of workers the runtime starts, first with no
// affinity (Test 1: gpus_per_node x nnodes workers), then one worker per GPU of every node
// (Test 2: dragon::System::gpu_policies(), one process per policy). Each task sleeps, then
// says on which host and with which GPU its worker runs.
// Run it with the launcher:   dragon build/examples/task-pool [SECONDS]
// On a machine without GPUs, Test 1 has one worker per granted CPU and Test 2 is skipped; a
// synthetic GPU node can stand in:   dragon --topology tests/data/topology/nvidia-2gpu-2cpu.xml
#include <dragon/dragon.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

// A simple function to show task execution and GPU affinity (registered in every process
// of the program: the workers are this program too).
auto hello_gpu_affinity = dragon::task("hello_gpu_affinity", [](double sleep_time) {
    std::this_thread::sleep_for(std::chrono::duration<double>(sleep_time));
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    const char *gpu = std::getenv("CUDA_VISIBLE_DEVICES");
    if (gpu == nullptr) {
        gpu = std::getenv("ZE_AFFINITY_MASK");
    }
    if (gpu == nullptr) {
        gpu = std::getenv("ROCR_VISIBLE_DEVICES");
    }
    return std::string("Hello from host ") + host +
           ", GPU ID(s): " + (gpu != nullptr ? gpu : "No GPUs assigned");
});

void run(dragon::TaskPool &pool, const std::vector<double> &sleep_times) {
    auto async_results = pool.map_async(hello_gpu_affinity, sleep_times);
    for (const std::string &res : async_results.get(std::chrono::minutes(10))) {
        std::printf("%s\n", res.c_str());
    }
    pool.close();
    pool.join(std::chrono::minutes(1));
}

} // namespace

int main(int argc, char **argv) {
    dragon::TaskPool::serve_if_worker(); // a worker serves tasks here, and never returns
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
        auto nodes = dragon::System::nodes();
        std::uint32_t gpus_per_node = nodes.empty() ? 0 : nodes.front().gpu_count;
        auto num_nodes = static_cast<std::uint32_t>(nodes.size());

        // Test 1: tasks over the allocation with a simple pool, no GPU affinity.
        dragon::TaskPoolOptions simple;
        simple.workers = gpus_per_node * num_nodes; // 0 (no GPUs): one per granted CPU
        dragon::TaskPool pool(simple);
        std::vector<double> sleep_times(2 * pool.workers(), seconds);
        std::printf("Launching %zu tasks with a simple Pool of %u workers, no GPU affinity...\n",
                    sleep_times.size(), pool.workers());
        run(pool, sleep_times);

        // Test 2: one worker per GPU of every node.
        auto policies = dragon::System::gpu_policies();
        if (policies.empty()) {
            std::printf("\nNo GPUs on this allocation: the pool with GPU affinity is skipped.\n");
            return 0;
        }
        dragon::TaskPoolOptions per_gpu;
        per_gpu.policies = policies;
        per_gpu.processes_per_policy = 1;
        dragon::TaskPool gpu_pool(per_gpu);
        sleep_times.assign(2 * gpu_pool.workers(), seconds);
        std::printf("\nLaunching %zu tasks with a Pool of one worker per GPU (%zu GPUs)...\n",
                    sleep_times.size(), policies.size());
        run(gpu_pool, sleep_times);
    } catch (const dragon::Error &e) {
        std::fprintf(stderr, "task-pool: %s\n", e.what());
        return 1;
    }
    return 0;
}
