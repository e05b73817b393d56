// The Redis side of the DDict benchmark (../shared/BENCHMARKS.md): a redis-server started on
// loopback for the run and stopped by it, and redis-benchmark processes as its clients.
//
// Each client is its own redis-benchmark process with one connection (-c 1), so "2 clients"
// means two processes on two cores, as a DDict benchmark's two client processes would be.
// All clients use the one key redis-benchmark names "key:__rand_int__" (no -r): a GET then
// always reads a value that a SET with the same -d wrote, checked with STRLEN beforehand.
// Every child runs under a deadline and is killed through its pidfd when it passes it, so a
// hung peer shows up as a failed row, never as a hung benchmark.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <string>

#include <sys/types.h>

namespace bench::redis {

// Debian 12's packages redis-server and redis-tools put them here.
inline constexpr const char *kServerPath = "/usr/bin/redis-server";
inline constexpr const char *kBenchmarkPath = "/usr/bin/redis-benchmark";

// True when both programs can be run; otherwise *why says which is missing (a row's note).
bool available(std::string *why);

// One redis-server on 127.0.0.1 at a free port, persistence off, its own temporary --dir,
// output to /dev/null. Ready (answers PING) once constructed, or !ok() and error() says why.
class Server {
  public:
    explicit Server(std::chrono::milliseconds ready_timeout = std::chrono::seconds(10));
    ~Server();
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    Server(Server &&other) noexcept;
    Server &operator=(Server &&other) noexcept;

    bool ok() const { return port_ != 0; }
    const std::string &error() const { return error_; }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }

    // SIGTERM through the pidfd, SIGKILL if it is still there after 5 s, reap, remove the
    // directory. Idempotent; the destructor calls it.
    void stop();

  private:
    bool start_once(std::chrono::steady_clock::time_point deadline, bool *retry);

    pid_t pid_ = -1;
    int pidfd_ = -1;
    int port_ = 0;
    std::string dir_;
    std::string error_;
};

enum class Op { Set, Get };
const char *op_name(Op op); // "set" / "get", as redis-benchmark's -t takes them

struct Load {
    Op op = Op::Set;
    std::size_t value_size = 64;
    int clients = 1;  // redis-benchmark processes, each with one connection
    int pipeline = 1; // -P
    long n_per_client = 10000;
    int reps = 1; // figures are medians over the repetitions
    std::chrono::milliseconds timeout = std::chrono::seconds(60); // per repetition
};

struct Result {
    bool ok = false;
    std::string error;      // set when !ok: which child failed and how
    double ops_per_s = NAN; // the clients' requests/s summed
    double p50_us = NAN;    // the median of the clients' p50
    double p99_us = NAN;    // the worst client's p99
    double GBps = NAN;      // ops_per_s * value_size / 1e9
};

// The general measurement; the three below are the shapes the DDict benchmark quotes.
Result measure(const Server &server, const Load &load);

Result ops_per_s(const Server &server, Op op, std::size_t value_size, int clients,
                 int pipeline_depth, long n_per_client, int reps = 1);

// One client, unpipelined: p50_us and p99_us are its round-trip latencies, timed by our own
// RESP client on one connection. redis-benchmark's histogram has 8 us buckets below 16 us,
// so measure()'s p50/p99 (from its CSV) say little about a loopback round trip.
Result latency(const Server &server, Op op, std::size_t value_size, long n, int reps = 1);

// One client, unpipelined, large values: GBps (and ops_per_s), by the same client as
// latency(), which receives a value into one buffer of its size. redis-benchmark's reader
// copies a 64 MiB reply through growing buffers and reaches about 60% of that here.
Result bandwidth(const Server &server, Op op, std::size_t value_size, long n, int reps = 1);

} // namespace bench::redis
