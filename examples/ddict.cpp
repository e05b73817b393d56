// The seed's 3_dragon_dictionary.py in C++: a distributed dictionary with one manager per
// node, filled in parallel by a task pool whose initializer attaches each worker to it, then
// read back by the main process.
// Run it with the launcher:   dragon build/examples/ddict
#include <dragon/dragon.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace {

// Each worker's handle on the dictionary, made once by the pool's initializer (the
// multiprocessing "stash" of the seed).
std::optional<dragon::DDict> stash;

auto setup = dragon::task("setup", [](std::string descriptor) {
    stash.emplace(dragon::DDict::attach(descriptor));
    return 0;
});

auto assign = dragon::task("assign", [](int x) {
    (*stash)["key_" + std::to_string(x)] = x;
    return 0;
});

} // namespace

int main() {
    dragon::TaskPool::serve_if_worker(); // a worker serves tasks here, and never returns
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        auto num_nodes = static_cast<std::uint32_t>(dragon::System::nodes().size());

        // One manager per node, 1 GiB of memory per node (as the seed asks; the pool's pages
        // are reserved, so shrink it with DDICT_MEM_MIB on a small machine).
        std::printf("Creating distributed dictionary with one manager per node...\n");
        dragon::DDictOptions o;
        o.managers_per_node = 1;
        o.nodes = num_nodes;
        const char *mib = std::getenv("DDICT_MEM_MIB");
        o.total_mem = size_t{num_nodes} * (mib != nullptr ? std::stoul(mib) : 1024) << 20;
        dragon::DDict dist_dict(o);

        std::printf("Assigning values to distributed dictionary from all nodes...\n");
        dragon::TaskPoolOptions po;
        po.workers = 4 * num_nodes;
        po.initialize_with(setup, dist_dict.serialize());
        {
            dragon::TaskPool pool(po);
            std::vector<int> xs;
            for (std::uint32_t x = 0; x < 8 * num_nodes; ++x) {
                xs.push_back(static_cast<int>(x));
            }
            pool.map(assign, xs);
            pool.close();
            pool.join(std::chrono::minutes(1));
        }

        std::printf("Distributed dictionary contents:\n");
        for (const std::string &k : dist_dict.keys()) {
            std::printf("%s = %d\n", k.c_str(), dist_dict.get<int>(k));
        }
    } catch (const dragon::Error &e) {
        std::fprintf(stderr, "ddict: %s\n", e.what());
        return 1;
    }
    return 0;
}
