// bench-redis-peer: the Redis side of the DDict benchmark on its own, to try by hand. Prints
// the JSON lines bench-ddict prints for impl "redis" (../shared/BENCHMARKS.md).
//   ddict.{put,get}.{1,2}c[.p16]  64 B and 16 KiB SET/GET, ops_per_s (clients summed)
//   ddict.get.latency             64 B GET, one client unpipelined: p50_us, p99_us
//   ddict.get.bandwidth           1 MiB and 64 MiB GET, one client: read_GBps
#include "bench_common.hpp"
#include "redis_peer.hpp"

#include <cmath>
#include <string>

namespace rp = bench::redis;

namespace {

void print(const char *bench, long size, const char *metric, const rp::Result &r, double value,
           const std::string &missing) {
    const char *note = !missing.empty() ? missing.c_str() : r.ok ? nullptr : r.error.c_str();
    bench::row(bench, "redis", size, metric, r.ok ? value : NAN, note);
}

} // namespace

int main(int argc, char **argv) {
    bool quick = bench::has_flag(argc, argv, "--quick");
    int reps = quick ? 3 : 5; // the machines are noisy: medians even in quick mode
    long scale = quick ? 1 : 10;

    std::string missing;
    rp::Server server;
    if (!server.ok()) {
        missing = server.error(); // every row below prints null with this note
    }

    for (long size : {64L, 16384L}) {
        for (rp::Op op : {rp::Op::Set, rp::Op::Get}) {
            for (int clients : {1, 2}) {
                for (int depth : {1, 16}) {
                    // About 0.03-0.3 s a run in quick mode: redis-benchmark's rate has
                    // millisecond resolution, so a run must not be much shorter.
                    long n = (depth == 1 ? 3000 : 40000) * scale;
                    std::string bench = std::string("ddict.") +
                                        (op == rp::Op::Set ? "put." : "get.") +
                                        std::to_string(clients) + "c" +
                                        (depth > 1 ? ".p" + std::to_string(depth) : "");
                    auto r = rp::ops_per_s(server, op, static_cast<std::size_t>(size), clients,
                                           depth, n, reps);
                    print(bench.c_str(), size, "ops_per_s", r, r.ops_per_s, missing);
                }
            }
        }
    }

    auto lat = rp::latency(server, rp::Op::Get, 64, 5000 * scale, reps);
    print("ddict.get.latency", 64, "p50_us", lat, lat.p50_us, missing);
    print("ddict.get.latency", 64, "p99_us", lat, lat.p99_us, missing);

    auto mib = rp::bandwidth(server, rp::Op::Get, 1 << 20, 200 * scale, reps);
    print("ddict.get.bandwidth", 1 << 20, "read_GBps", mib, mib.GBps, missing);
    auto big = rp::bandwidth(server, rp::Op::Get, 64 << 20, quick ? 4 : 20, reps);
    print("ddict.get.bandwidth", 64 << 20, "read_GBps", big, big.GBps, missing);
    return 0;
}
