// Demo: what libdragon is, in one program. Run it with `dragon pool-share`.
//
// The program creates a shared-memory pool and two queues in it, names them in the
// runtime's registry, and asks the runtime to start 4 copies of itself in the role
// "worker" as a process group. Each worker finds the pool and the queues by name, takes
// numbers from the job queue until it is empty, writes a greeting into a block it
// allocates in the shared pool, and sends back the block's descriptor (not the text). The
// first process reads every greeting in place, frees the blocks the workers allocated, and
// destroys everything; the launcher checks that nothing is left.
#include <dragon/dragon.hpp>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;

namespace {

constexpr int kWorkers = 4;
constexpr int kJobs = 20;

struct Greeting { // what a worker writes into its block of the shared pool
    long sum;
    char text[120];
};

int worker() {
    auto rank = dragon::this_process::group_rank().value();
    auto pool = dragon::Registry::pool("demo/pool", 30s);
    auto jobs = dragon::Registry::queue<int>("demo/jobs", 30s);
    auto results = dragon::Registry::queue<std::vector<std::uint8_t>>("demo/results", 30s);
    long sum = 0;
    int done = 0;
    for (;;) {
        int n = jobs.get(30s);
        if (n < 0) { // one stop item per worker
            break;
        }
        std::this_thread::sleep_for(5ms); // a job that takes a while, as the seed's tasks do
        long square = static_cast<long>(n) * n;
        sum += square;
        ++done;
    }
    auto block = pool.allocate(sizeof(Greeting));
    auto *g = block.as<Greeting>();
    g->sum = sum;
    std::snprintf(g->text, sizeof g->text, "worker %u of %u (puid %llu, pid %d): %d jobs",
                  rank.index, rank.size,
                  static_cast<unsigned long long>(dragon::this_process::puid()), getpid(), done);
    results.put(block.descriptor(), 30s);
    block.release(); // the block now belongs to whoever adopts its descriptor
    return 0;
}

} // namespace

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        if (dragon::this_process::role() == "worker") {
            return worker();
        }
        auto pool = dragon::Pool::create("demo", 4 << 20);
        auto jobs = dragon::Queue<int>::create(pool, 64);
        auto results = dragon::Queue<std::vector<std::uint8_t>>::create(pool, 64);
        dragon::Registry::put("demo/pool", pool);
        dragon::Registry::put("demo/jobs", jobs);
        dragon::Registry::put("demo/results", results);
        const auto before = pool.stats().allocation_count; // the two queues
        std::printf("pool 'demo': %llu bytes of shared memory, with a job queue and a result "
                    "queue, named in the runtime's registry\n",
                    static_cast<unsigned long long>(pool.stats().total_bytes));

        dragon::ProcessOptions o;
        o.role = "worker";
        dragon::ProcessGroup group;
        group.add(kWorkers, dragon::this_process::command(), o);
        group.start();
        std::printf("the runtime started %d workers: this program in the role 'worker'\n",
                    kWorkers);

        long expected = 0;
        for (int n = 1; n <= kJobs; ++n) {
            jobs.put(n, 30s);
            expected += static_cast<long>(n) * n;
        }
        for (int w = 0; w < kWorkers; ++w) {
            jobs.put(-1, 30s);
        }
        std::printf("sent %d jobs; the workers' greetings, read in place from the pool:\n", kJobs);

        long total = 0;
        for (int w = 0; w < kWorkers; ++w) {
            auto block = pool.adopt(results.get(30s)); // freed here, when block goes
            const auto *g = block.as<Greeting>();
            std::printf("  %s\n", g->text);
            total += g->sum;
        }
        bool joined = group.join(30s);
        std::printf("sum of squares 1..%d: %ld (expected %ld); workers %s; workers' blocks "
                    "left in the pool: %llu\n",
                    kJobs, total, expected, joined ? "all exited" : "STILL RUNNING",
                    static_cast<unsigned long long>(pool.stats().allocation_count - before));
        for (const char *name : {"demo/pool", "demo/jobs", "demo/results"}) {
            dragon::Registry::remove(name);
        }
        results.destroy();
        jobs.destroy();
        pool.destroy();
        return total == expected && joined ? 0 : 1;
    } catch (const dragon::Error &e) {
        std::fprintf(stderr, "pool-share: %s\n", e.what());
        return 1;
    }
}
