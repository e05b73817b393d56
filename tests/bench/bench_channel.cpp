// bench-channel: dragon channels between two (or four) processes next to their peers on this
// machine, in one run (../shared/BENCHMARKS.md):
//   channel.rtt         64 B round trip: dragon (adaptive and spin) vs pipe, Unix socket,
//                       POSIX message queue and a raw shared-memory flag ping-pong (the limit)
//   channel.throughput  64 B one way: 1 -> 1 and 2 -> 2 (dragon), 1 -> 1 (pipe, socket)
//   channel.large       1 MiB messages: copied through slots vs zero-copy handoff vs pipe,
//                       and the zero-copy handoff at 64 B (its cost must not grow with size)
//   channel.blocked_cpu CPU used by a consumer blocked 2 s (adaptive; idle too without --quick)
// Ends with ratio rows for the goals.
#include "bench_common.hpp"

#include <dragon/dragon.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include <fcntl.h>
#include <mqueue.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr size_t kSmall = 64;
constexpr size_t kLarge = 1 << 20;

dragon_pool_t *pool = nullptr;
std::map<std::string, double> results;

void record(const char *bench, const char *impl, long size, const char *metric, double value,
            const char *note = nullptr) {
    bench::row(bench, impl, size, metric, value, note);
    results[std::string(bench) + "/" + impl + "/" + std::to_string(size)] = value;
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void die(const char *what) {
    std::fprintf(stderr, "bench-channel: %s: %s\n", what, dragon_last_error());
    std::exit(1);
}

dragon_channel_t *make_channel(size_t capacity, size_t slot, dragon_wait_mode_t mode) {
    dragon_channel_attr_t attr;
    dragon_channel_attr_init(&attr);
    attr.wait_mode = mode;
    dragon_channel_t *ch = nullptr;
    if (dragon_channel_create(pool, capacity, slot, &attr, &ch) != DRAGON_SUCCESS) {
        die("create channel");
    }
    return ch;
}

// Shared start line for forked workers.
struct Start {
    std::atomic<int> ready;
    std::atomic<int> go;
    double end[8];
    double value[8];
};
Start *shared_start() {
    void *mem =
        mmap(nullptr, sizeof(Start), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return new (mem) Start{};
}

pid_t spawn(Start *st, int index, const std::function<void()> &body) {
    pid_t pid = fork();
    if (pid == 0) {
        st->ready.fetch_add(1);
        while (st->go.load() == 0) {
        }
        body();
        st->end[index] = now_s();
        _exit(0);
    }
    return pid;
}

void reap(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "bench-channel: a worker failed\n");
        std::exit(1);
    }
}

// ---- round trips -----------------------------------------------------------------------

// Median over reps of the time per round trip (ns) of ping(n) against an echoing child.
double rtt(const std::function<void(long)> &echo, const std::function<void(long)> &ping, long n,
           int reps) {
    std::vector<double> per;
    Start *st = shared_start();
    pid_t child = spawn(st, 0, [&] { echo(n / 10 + 1 + n * reps); });
    while (st->ready.load() < 1) {
    }
    st->go.store(1);
    ping(n / 10 + 1); // warm up
    for (int r = 0; r < reps; ++r) {
        double t0 = now_s();
        ping(n);
        per.push_back((now_s() - t0) / static_cast<double>(n) * 1e9);
    }
    reap(child);
    munmap(st, sizeof(Start));
    return bench::median(per);
}

void bench_rtt(bool quick, int reps) {
    long n = quick ? 20000 : 100000;
    long slow_n = quick ? 2000 : 10000; // kernel-mediated peers are ~50x slower
    char msg[kSmall] = {};

    // This kind of machine is a VM whose two vCPUs move between near and far cores every few
    // seconds: raw ping-pong and dragon are measured in turns, and each turn gives a ratio.
    auto *flag = static_cast<std::atomic<uint64_t> *>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    auto raw_rtt = [&]() {
        flag->store(0);
        // The echo side answers every odd value v with v + 1.
        auto echo = [&](long k) {
            uint64_t expect = 1;
            for (long i = 0; i < k; ++i, expect += 2) {
                while (flag->load(std::memory_order_acquire) != expect) {
                    __builtin_ia32_pause();
                }
                flag->store(expect + 1, std::memory_order_release);
            }
        };
        uint64_t v = 0;
        auto ping = [&](long k) {
            for (long i = 0; i < k; ++i) {
                flag->store(v + 1, std::memory_order_release);
                while (flag->load(std::memory_order_acquire) != v + 2) {
                    __builtin_ia32_pause();
                }
                v += 2;
            }
        };
        return rtt(echo, ping, n, 1);
    };
    // The limit for moving 64 bytes rather than a flag: the payload in one line, the flag
    // in the next, written payload first; the reader polls the flag, then copies the payload.
    auto raw64_rtt = [&]() {
        auto *mem = static_cast<char *>(
            mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
        char *data[2] = {mem, mem + 256};
        std::atomic<uint64_t> *flags[2] = {reinterpret_cast<std::atomic<uint64_t> *>(mem + 64),
                                           reinterpret_cast<std::atomic<uint64_t> *>(mem + 320)};
        auto hop_send = [&](int dir, uint64_t seq, const char *payload) {
            std::memcpy(data[dir], payload, kSmall);
            flags[dir]->store(seq, std::memory_order_release);
        };
        auto hop_recv = [&](int dir, uint64_t seq, char *out) {
            while (flags[dir]->load(std::memory_order_acquire) != seq) {
                __builtin_ia32_pause();
            }
            std::memcpy(out, data[dir], kSmall);
        };
        auto echo = [&](long k) {
            char buf[kSmall];
            for (long i = 1; i <= k; ++i) {
                hop_recv(0, static_cast<uint64_t>(i), buf);
                hop_send(1, static_cast<uint64_t>(i), buf);
            }
        };
        uint64_t seq = 0;
        auto ping = [&](long k) {
            char buf[kSmall];
            for (long i = 0; i < k; ++i) {
                ++seq;
                hop_send(0, seq, msg);
                hop_recv(1, seq, buf);
            }
        };
        double t = rtt(echo, ping, n, 1);
        munmap(mem, 4096);
        return t;
    };
    auto dragon_rtt = [&](dragon_wait_mode_t mode, long count, size_t size = kSmall) {
        dragon_channel_t *a = make_channel(16, kSmall, mode);
        dragon_channel_t *b = make_channel(16, kSmall, mode);
        auto echo = [&](long k) {
            char buf[kSmall];
            size_t len = 0;
            for (long i = 0; i < k; ++i) {
                dragon_channel_recv(a, buf, sizeof buf, &len, DRAGON_TIMEOUT_FOREVER);
                dragon_channel_send(b, buf, len, DRAGON_TIMEOUT_FOREVER);
            }
        };
        auto ping = [&](long k) {
            char buf[kSmall];
            size_t len = 0;
            for (long i = 0; i < k; ++i) {
                dragon_channel_send(a, msg, size, DRAGON_TIMEOUT_FOREVER);
                dragon_channel_recv(b, buf, sizeof buf, &len, DRAGON_TIMEOUT_FOREVER);
            }
        };
        double t = rtt(echo, ping, count, 1);
        dragon_channel_destroy(a);
        dragon_channel_destroy(b);
        return t;
    };
    // Also 40 B: with the slot's 16-byte header a 40-byte message fits one cache line, a
    // 64-byte one needs two; the second line is most of the gap to the raw flag.
    std::vector<double> raw, raw64, adaptive, spin, one_line, r_adaptive, r_spin, r_one_line,
        r_raw64;
    int turns = reps * 3;
    for (int r = 0; r < turns; ++r) {
        raw.push_back(raw_rtt());
        adaptive.push_back(dragon_rtt(DRAGON_WAIT_ADAPTIVE, n));
        spin.push_back(dragon_rtt(DRAGON_WAIT_SPIN, n));
        one_line.push_back(dragon_rtt(DRAGON_WAIT_ADAPTIVE, n, 40));
        raw64.push_back(raw64_rtt());
        double raw_after = raw_rtt();
        double base = (raw.back() + raw_after) / 2;
        r_adaptive.push_back(adaptive.back() / base);
        r_spin.push_back(spin.back() / base);
        r_one_line.push_back(one_line.back() / base);
        r_raw64.push_back(adaptive.back() / raw64.back());
    }
    munmap(flag, 4096);
    record("channel.rtt", "dragon", kSmall, "rtt_ns", bench::median(adaptive));
    record("channel.rtt", "dragon-spin", kSmall, "rtt_ns", bench::median(spin));
    record("channel.rtt", "dragon", 40, "rtt_ns", bench::median(one_line));
    record("channel.rtt", "raw-shm-flag", kSmall, "rtt_ns", bench::median(raw));
    record("channel.rtt", "raw-shm-64B", kSmall, "rtt_ns", bench::median(raw64));
    std::vector<double> idle;
    idle.reserve(static_cast<size_t>(reps));
    for (int r = 0; r < reps; ++r) {
        idle.push_back(dragon_rtt(DRAGON_WAIT_IDLE, slow_n));
    }
    record("channel.rtt", "dragon-idle", kSmall, "rtt_ns", bench::median(idle));
    results["turns/adaptive"] = bench::median(r_adaptive);
    results["turns/spin"] = bench::median(r_spin);
    results["turns/one_line"] = bench::median(r_one_line);
    results["turns/raw64"] = bench::median(r_raw64);

    auto fd_pair_rtt = [&](const char *impl, int ab[2], int ba[2], int ping_w, int ping_r) {
        auto echo = [&](long k) {
            char buf[kSmall];
            for (long i = 0; i < k; ++i) {
                if (read(ab[0], buf, sizeof buf) != static_cast<ssize_t>(sizeof buf) ||
                    write(ba[1], buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) {
                    _exit(1);
                }
            }
        };
        auto ping = [&](long k) {
            char buf[kSmall];
            for (long i = 0; i < k; ++i) {
                if (write(ping_w, msg, sizeof msg) != static_cast<ssize_t>(sizeof msg) ||
                    read(ping_r, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) {
                    std::exit(1);
                }
            }
        };
        record("channel.rtt", impl, kSmall, "rtt_ns", rtt(echo, ping, slow_n, reps));
    };
    {
        int ab[2], ba[2];
        if (pipe(ab) == 0 && pipe(ba) == 0) {
            fd_pair_rtt("pipe", ab, ba, ab[1], ba[0]);
            for (int fd : {ab[0], ab[1], ba[0], ba[1]}) {
                close(fd);
            }
        }
    }
    {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
            // One socket each way: the echo reads and writes sv[1], the pinger sv[0].
            int ab[2] = {sv[1], sv[0]};
            int ba[2] = {sv[0], sv[1]};
            fd_pair_rtt("unix-socket", ab, ba, sv[0], sv[0]);
            close(sv[0]);
            close(sv[1]);
        }
    }
    {
        std::string na = "/dragon-bench-a-" + std::to_string(getpid());
        std::string nb = "/dragon-bench-b-" + std::to_string(getpid());
        struct mq_attr attr {};
        attr.mq_maxmsg = 8;
        attr.mq_msgsize = kSmall;
        mqd_t qa = mq_open(na.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
        mqd_t qb = mq_open(nb.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
        if (qa == static_cast<mqd_t>(-1) || qb == static_cast<mqd_t>(-1)) {
            record("channel.rtt", "posix-mq", kSmall, "rtt_ns", NAN, "mq_open failed");
        } else {
            auto echo = [&](long k) {
                char buf[kSmall];
                for (long i = 0; i < k; ++i) {
                    if (mq_receive(qa, buf, sizeof buf, nullptr) < 0 ||
                        mq_send(qb, buf, sizeof buf, 0) != 0) {
                        _exit(1);
                    }
                }
            };
            auto ping = [&](long k) {
                char buf[kSmall];
                for (long i = 0; i < k; ++i) {
                    if (mq_send(qa, msg, sizeof msg, 0) != 0 ||
                        mq_receive(qb, buf, sizeof buf, nullptr) < 0) {
                        std::exit(1);
                    }
                }
            };
            record("channel.rtt", "posix-mq", kSmall, "rtt_ns", rtt(echo, ping, slow_n, reps));
        }
        if (qa != static_cast<mqd_t>(-1)) {
            mq_close(qa);
        }
        if (qb != static_cast<mqd_t>(-1)) {
            mq_close(qb);
        }
        mq_unlink(na.c_str());
        mq_unlink(nb.c_str());
    }
}

// ---- one-way throughput -------------------------------------------------------------------

// Messages per second from `producers` senders to `consumers` receivers of one channel, each
// producer sending n; the parent queues one stop per consumer once the producers are done.
double channel_throughput(int producers, int consumers, long n, size_t size) {
    dragon_channel_t *ch = make_channel(1024, std::max<size_t>(size, 16), DRAGON_WAIT_ADAPTIVE);
    Start *st = shared_start();
    std::vector<pid_t> prod, cons;
    for (int c = 0; c < consumers; ++c) {
        cons.push_back(spawn(st, c, [&] {
            char buf[256];
            size_t len = 0;
            for (;;) {
                if (dragon_channel_recv(ch, buf, sizeof buf, &len, DRAGON_TIMEOUT_FOREVER) !=
                    DRAGON_SUCCESS) {
                    _exit(1);
                }
                if (len == 0) {
                    return; // stop
                }
            }
        }));
    }
    for (int p = 0; p < producers; ++p) {
        prod.push_back(spawn(st, consumers + p, [&] {
            char msg[256] = {1};
            for (long i = 0; i < n; ++i) {
                if (dragon_channel_send(ch, msg, size, DRAGON_TIMEOUT_FOREVER) != DRAGON_SUCCESS) {
                    _exit(1);
                }
            }
        }));
    }
    while (st->ready.load() < producers + consumers) {
    }
    double t0 = now_s();
    st->go.store(1);
    for (pid_t p : prod) {
        reap(p);
    }
    for (int c = 0; c < consumers; ++c) {
        dragon_channel_send(ch, nullptr, 0, DRAGON_TIMEOUT_FOREVER);
    }
    double end = 0;
    for (int c = 0; c < consumers; ++c) {
        reap(cons[c]);
        end = std::max(end, st->end[c]);
    }
    munmap(st, sizeof(Start));
    dragon_channel_destroy(ch);
    return static_cast<double>(n) * producers / (end - t0);
}

double fd_throughput(int wfd, int rfd, long n, size_t size) {
    Start *st = shared_start();
    pid_t consumer = spawn(st, 0, [&] {
        std::vector<char> buf(size);
        long want = n * static_cast<long>(size);
        while (want > 0) {
            ssize_t got = read(rfd, buf.data(), buf.size());
            if (got <= 0) {
                _exit(1);
            }
            want -= got;
        }
    });
    while (st->ready.load() < 1) {
    }
    std::vector<char> msg(size, 1);
    double t0 = now_s();
    st->go.store(1);
    for (long i = 0; i < n; ++i) {
        size_t off = 0;
        while (off < size) {
            ssize_t w = write(wfd, msg.data() + off, size - off);
            if (w <= 0) {
                std::exit(1);
            }
            off += static_cast<size_t>(w);
        }
    }
    reap(consumer);
    double end = st->end[0];
    munmap(st, sizeof(Start));
    return static_cast<double>(n) / (end - t0);
}

void bench_throughput(bool quick, int reps) {
    long n = quick ? 1000000 : 5000000;
    std::vector<double> r11, r22, rp, rs;
    for (int r = 0; r < reps; ++r) {
        r11.push_back(channel_throughput(1, 1, n, kSmall));
        r22.push_back(channel_throughput(2, 2, n / 2, kSmall));
    }
    record("channel.throughput", "dragon-1to1", kSmall, "msgs_per_s", bench::median(r11));
    record("channel.throughput", "dragon-2to2", kSmall, "msgs_per_s", bench::median(r22));
    long slow_n = n / 10;
    for (int r = 0; r < reps; ++r) {
        int p[2];
        if (pipe(p) == 0) {
            rp.push_back(fd_throughput(p[1], p[0], slow_n, kSmall));
            close(p[0]);
            close(p[1]);
        }
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
            rs.push_back(fd_throughput(sv[0], sv[1], slow_n, kSmall));
            close(sv[0]);
            close(sv[1]);
        }
    }
    record("channel.throughput", "pipe-1to1", kSmall, "msgs_per_s", bench::median(rp));
    record("channel.throughput", "unix-socket-1to1", kSmall, "msgs_per_s", bench::median(rs));
}

// ---- large messages ---------------------------------------------------------------------

// Handoffs per second of `size`-byte pool allocations: the producer allocates and sends
// them zero-copy, the consumer receives and frees them. Neither touches the payload: this
// is what moving ownership costs.
double zero_copy_rate(long n, size_t size) {
    dragon_channel_t *ch = make_channel(64, 16, DRAGON_WAIT_ADAPTIVE);
    Start *st = shared_start();
    pid_t consumer = spawn(st, 0, [&] {
        for (long i = 0; i < n; ++i) {
            void *p = nullptr;
            size_t len = 0;
            if (dragon_channel_recv_mem(ch, &p, &len, DRAGON_TIMEOUT_FOREVER) != DRAGON_SUCCESS ||
                len != size || dragon_pool_free(pool, p) != DRAGON_SUCCESS) {
                _exit(1);
            }
        }
    });
    while (st->ready.load() < 1) {
    }
    double t0 = now_s();
    st->go.store(1);
    for (long i = 0; i < n; ++i) {
        void *p = nullptr;
        if (dragon_pool_alloc_timeout(pool, size, DRAGON_TIMEOUT_FOREVER, &p) != DRAGON_SUCCESS ||
            dragon_channel_send_mem(ch, p, size, DRAGON_TIMEOUT_FOREVER) != DRAGON_SUCCESS) {
            die("zero-copy send");
        }
    }
    reap(consumer);
    double end = st->end[0];
    munmap(st, sizeof(Start));
    dragon_channel_destroy(ch);
    return static_cast<double>(n) / (end - t0);
}

// Messages per second of `size` bytes copied into and out of channel slots.
double slot_copy_rate(long n, size_t size) {
    dragon_channel_t *ch = make_channel(4, size, DRAGON_WAIT_ADAPTIVE);
    Start *st = shared_start();
    pid_t consumer = spawn(st, 0, [&] {
        std::vector<char> buf(size);
        size_t len = 0;
        for (long i = 0; i < n; ++i) {
            if (dragon_channel_recv(ch, buf.data(), buf.size(), &len, DRAGON_TIMEOUT_FOREVER) !=
                DRAGON_SUCCESS) {
                _exit(1);
            }
        }
    });
    while (st->ready.load() < 1) {
    }
    std::vector<char> msg(size, 7);
    double t0 = now_s();
    st->go.store(1);
    for (long i = 0; i < n; ++i) {
        if (dragon_channel_send(ch, msg.data(), size, DRAGON_TIMEOUT_FOREVER) != DRAGON_SUCCESS) {
            die("slot send");
        }
    }
    reap(consumer);
    double end = st->end[0];
    munmap(st, sizeof(Start));
    dragon_channel_destroy(ch);
    return static_cast<double>(n) / (end - t0);
}

void bench_large(bool quick, int reps) {
    long n_zc = quick ? 200000 : 1000000;
    long n_copy = quick ? 2000 : 10000;
    std::vector<double> zc_small, zc_large, copy, pipe_rate;
    for (int r = 0; r < reps; ++r) {
        zc_small.push_back(zero_copy_rate(n_zc, kSmall));
        zc_large.push_back(zero_copy_rate(n_zc, kLarge));
        copy.push_back(slot_copy_rate(n_copy, kLarge));
        int p[2];
        if (pipe(p) == 0) {
            fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
            pipe_rate.push_back(fd_throughput(p[1], p[0], n_copy, kLarge));
            close(p[0]);
            close(p[1]);
        }
    }
    record("channel.large", "dragon-zero-copy", kSmall, "msgs_per_s", bench::median(zc_small));
    record("channel.large", "dragon-zero-copy", kLarge, "msgs_per_s", bench::median(zc_large));
    record("channel.large", "dragon-slot-copy", kLarge, "msgs_per_s", bench::median(copy));
    record("channel.large", "pipe", kLarge, "msgs_per_s", bench::median(pipe_rate));
}

// ---- a blocked consumer's CPU -------------------------------------------------------------

double cpu_ns() {
    struct timespec ts {};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void bench_blocked_cpu(bool quick) {
    std::vector<std::pair<const char *, dragon_wait_mode_t>> modes = {
        {"dragon-adaptive", DRAGON_WAIT_ADAPTIVE}};
    if (!quick) {
        modes.push_back({"dragon-idle", DRAGON_WAIT_IDLE});
    }
    for (auto [impl, mode] : modes) {
        dragon_channel_t *ch = make_channel(4, 16, mode);
        Start *st = shared_start();
        pid_t consumer = spawn(st, 0, [&] {
            double c0 = cpu_ns();
            double w0 = now_s();
            char buf[16];
            size_t len = 0;
            dragon_channel_recv(ch, buf, sizeof buf, &len, DRAGON_TIMEOUT_FOREVER);
            st->value[0] = (cpu_ns() - c0) / ((now_s() - w0) * 1e9) * 100.0;
        });
        while (st->ready.load() < 1) {
        }
        st->go.store(1);
        struct timespec two = {2, 0};
        nanosleep(&two, nullptr); // a benchmark, not a test: it measures 2 s of blocking
        dragon_channel_send(ch, "x", 1, DRAGON_TIMEOUT_FOREVER);
        reap(consumer);
        record("channel.blocked_cpu", impl, 0, "cpu_pct", st->value[0]);
        munmap(st, sizeof(Start));
        dragon_channel_destroy(ch);
    }
}

double get(const std::string &key) {
    auto it = results.find(key);
    return it == results.end() ? NAN : it->second;
}

} // namespace

int main(int argc, char **argv) {
    bool quick = bench::has_flag(argc, argv, "--quick");
    int reps = quick ? 3 : 5;
    std::string rt = "bench" + std::to_string(getpid());
    setenv("DRAGON_RUNTIME_ID", rt.c_str(), 1);
    if (dragon_pool_create("bench-channel", 256 << 20, nullptr, &pool) != DRAGON_SUCCESS) {
        die("create pool");
    }
    bench_rtt(quick, reps);
    bench_throughput(quick, reps);
    bench_large(quick, reps);
    bench_blocked_cpu(quick);

    // The goals, as ratios from this run.
    std::string s = "/" + std::to_string(kSmall);
    // Medians of per-turn ratios (each dragon run against raw runs just before and after).
    record("channel.rtt.ratio", "dragon/raw-shm-flag", kSmall, "ratio_x", get("turns/adaptive"));
    record("channel.rtt.ratio", "dragon-spin/raw-shm-flag", kSmall, "ratio_x", get("turns/spin"));
    record("channel.rtt.ratio", "dragon/raw-shm-flag", 40, "ratio_x", get("turns/one_line"));
    record("channel.rtt.ratio", "dragon/raw-shm-64B", kSmall, "ratio_x", get("turns/raw64"));
    record("channel.rtt.ratio", "unix-socket/dragon", kSmall, "ratio_x",
           get("channel.rtt/unix-socket" + s) / get("channel.rtt/dragon" + s));
    record("channel.large.ratio", "zero-copy-64B/zero-copy-1MiB", kLarge, "ratio_x",
           get("channel.large/dragon-zero-copy" + s) /
               get("channel.large/dragon-zero-copy/" + std::to_string(kLarge)));
    dragon_pool_destroy(pool);
    return 0;
}
