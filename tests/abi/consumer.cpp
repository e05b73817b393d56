// Built against the installed library with `pkg-config --cflags --libs dragon-cpp` only.
#include <dragon/dragon.hpp>

#include <chrono>
#include <cstring>
#include <iostream>

int main() {
    try {
        auto pool = dragon::Pool::create("consumer-cpp", 1 << 16);
        {
            auto a = pool.allocate(64);
            std::strcpy(a.as<char>(), "from C++");
        }
        auto queue = dragon::Queue<int>::create(pool, 4);
        queue.put(41);
        bool ok = queue.get(std::chrono::seconds(1)) == 41;
        queue.destroy();
        ok = ok && pool.stats().allocation_count == 0;
        pool.destroy();
        // $DRAGON_TOPOLOGY_XML: a node with 4 GPUs. A policy's wait mode is dragon::WaitMode.
        auto policies = dragon::Node::discover().gpu_policies();
        ok = ok && policies.size() == 4 && policies[2].gpu_affinity()[0] == 2 &&
             policies[2].wait_mode() == dragon::WaitMode::process_default;
        std::cout << "C++ consumer: libdragon " << dragon_version() << ": "
                  << (ok ? "ok" : "FAILED") << "\n";
        return ok ? 0 : 1;
    } catch (const dragon::Error &e) {
        std::cerr << "C++ consumer: " << e.what() << "\n";
        return 1;
    }
}
