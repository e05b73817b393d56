// Demo: several processes share one pool. The parent creates the pool and starts workers;
// each worker attaches by the pool's descriptor, allocates a block, writes a greeting into it
// and sends the block's memory descriptor back. The parent reads every greeting straight from
// shared memory (no copy) and frees the blocks the workers allocated.
#include <dragon/dragon.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

int main() {
    const int workers = 4;
    try {
        std::string rt = "demo" + std::to_string(getpid());
        setenv("DRAGON_RUNTIME_ID", rt.c_str(), 1);
        auto pool = dragon::Pool::create("demo", 16 << 20);
        auto pool_descr = pool.descriptor();
        std::printf("pool '%s' (%s): %llu bytes\n", pool.name().c_str(),
                    pool.segment_name().c_str(),
                    static_cast<unsigned long long>(pool.stats().total_bytes));

        std::vector<std::vector<std::uint8_t>> blocks;
        for (int w = 0; w < workers; ++w) {
            int fds[2];
            if (pipe(fds) != 0) {
                return 1;
            }
            pid_t pid = fork();
            if (pid == 0) {
                close(fds[0]);
                // A worker: attach by descriptor, allocate, write, hand the block over.
                auto mine = dragon::Pool::attach(pool_descr);
                auto a = mine.allocate(128);
                std::snprintf(a.as<char>(), 128, "hello from worker %d (pid %d)", w, getpid());
                auto d = a.descriptor();
                a.release(); // ownership moves to the parent with the descriptor
                std::uint8_t len = static_cast<std::uint8_t>(d.size());
                bool ok = write(fds[1], &len, 1) == 1 &&
                          write(fds[1], d.data(), d.size()) == static_cast<ssize_t>(d.size());
                _exit(ok ? 0 : 1);
            }
            close(fds[1]);
            std::uint8_t len = 0;
            std::vector<std::uint8_t> d(DRAGON_POOL_DESCRIPTOR_MAX);
            if (read(fds[0], &len, 1) == 1 && read(fds[0], d.data(), len) == len) {
                d.resize(len);
                blocks.push_back(d);
            }
            close(fds[0]);
            waitpid(pid, nullptr, 0);
        }
        std::printf("live allocations made by workers: %llu\n",
                    static_cast<unsigned long long>(pool.stats().allocation_count));
        for (const auto &d : blocks) {
            auto block = pool.adopt(d); // freed here, in the parent
            std::printf("  %s\n", block.as<char>());
        }
        std::printf("after the parent freed them: %llu live, %.1f%% used\n",
                    static_cast<unsigned long long>(pool.stats().allocation_count),
                    pool.stats().utilization_pct);
        pool.destroy();
        return blocks.size() == workers ? 0 : 1;
    } catch (const dragon::Error &e) {
        std::fprintf(stderr, "pool-share: %s\n", e.what());
        return 1;
    }
}
