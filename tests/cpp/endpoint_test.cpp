// The endpoint (libdragon-c/runtime/endpoint): one persistent connection to a real node
// daemon, shared by many threads, with events pushed to subscribers, and DRAGON_CLOSED
// within the timeout when the daemon dies mid-call. Each test starts its own dragon-node
// (DRAGON_NODE_EXE) in a private runtime directory, as the launcher would, and signals it
// only through its pidfd.
#include "node/paths.hpp"
#include "runtime/endpoint.hpp"

#include <dragon/dragon.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace pr = dragon::protocol;
namespace rt = dragon::runtime;
using rt::Endpoint;
using Clock = std::chrono::steady_clock;

constexpr int kStartMs = 10000;

int64_t ms_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// The private base directory every daemon of this test binary lives under.
std::string test_base() {
    static std::string base = [] {
        char tmpl[] = "/tmp/dragon-endpoint-test.XXXXXX";
        const char *dir = mkdtemp(tmpl);
        if (dir == nullptr) {
            return std::string();
        }
        setenv("XDG_RUNTIME_DIR", dir, 1);
        return std::string(dir);
    }();
    return base;
}

void remove_tree(const std::string &dir) {
    if (DIR *d = opendir(dir.c_str())) {
        while (struct dirent *e = readdir(d)) {
            std::string name = e->d_name;
            if (name != "." && name != "..") {
                std::string path = dir;
                path += "/";
                path += name;
                struct stat st {};
                if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
                    remove_tree(path);
                } else {
                    unlink(path.c_str());
                }
            }
        }
        closedir(d);
    }
    rmdir(dir.c_str());
}

// A dragon-node of our own: started with a ready pipe and a life pipe, as the launcher
// starts it; ended by closing the life pipe (its launcher left) or by SIGKILL.
class Daemon {
  public:
    Daemon() {
        static int serial = 0;
        id_ = "ept" + std::to_string(getpid()) + "-" + std::to_string(++serial);
        std::string why;
        if (test_base().empty() || !rt::make_private_base(&why) ||
            mkdir(rt::runtime_dir(id_).c_str(), 0700) != 0) {
            ADD_FAILURE() << "no runtime directory: " << why << std::strerror(errno);
            return;
        }
        int ready[2];
        int life[2];
        if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(life, O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe: " << std::strerror(errno);
            return;
        }
        const char *exe = std::getenv("DRAGON_NODE_EXE");
        pid_ = fork();
        if (pid_ == 0) {
            fcntl(ready[1], F_SETFD, 0);
            fcntl(life[0], F_SETFD, 0);
            std::string rfd = std::to_string(ready[1]);
            std::string lfd = std::to_string(life[0]);
            execl(exe != nullptr ? exe : "dragon-node", "dragon-node", "--runtime-id", id_.c_str(),
                  "--ready-fd", rfd.c_str(), "--life-fd", lfd.c_str(),
                  static_cast<char *>(nullptr));
            _exit(127);
        }
        close(ready[1]);
        close(life[0]);
        life_ = life[1];
        pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
        if (pidfd_ < 0) { // no pidfd: end it through its life pipe, and reap it
            ADD_FAILURE() << "pidfd_open: " << std::strerror(errno);
            close(ready[0]);
            close(life_);
            life_ = -1;
            waitpid(pid_, nullptr, 0);
            return;
        }
        struct pollfd p = {ready[0], POLLIN, 0};
        char line[8] = {};
        ok_ = poll(&p, 1, kStartMs) == 1 && read(ready[0], line, 5) == 5 &&
              std::strncmp(line, "ready", 5) == 0;
        close(ready[0]);
        EXPECT_TRUE(ok_) << "dragon-node did not start (DRAGON_NODE_EXE=" << (exe ? exe : "")
                         << ")";
    }

    ~Daemon() {
        if (life_ >= 0) {
            close(life_); // "the launcher is gone": the daemon tears down and exits
        }
        if (pidfd_ >= 0 && !ended(kStartMs)) {
            ADD_FAILURE() << "dragon-node did not end when its launcher left";
            kill9();
            ended(kStartMs);
        }
        if (pidfd_ >= 0) {
            close(pidfd_);
        }
        remove_tree(rt::runtime_dir(id_));
        rt::remove_segments(id_);
    }
    Daemon(const Daemon &) = delete;
    Daemon &operator=(const Daemon &) = delete;

    bool ok() const { return ok_; }
    std::string socket() const { return rt::node_socket(id_, 0); }
    void kill9() const { syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0); }

    // Reaped within wait_ms; *status gets its wait status.
    bool ended(int wait_ms, int *status = nullptr) {
        if (reaped_) {
            return true;
        }
        struct pollfd p = {pidfd_, POLLIN, 0};
        if (poll(&p, 1, wait_ms) != 1) {
            return false;
        }
        int ws = 0;
        if (waitpid(pid_, &ws, 0) != pid_) {
            return false;
        }
        reaped_ = true;
        status_ = ws;
        if (status != nullptr) {
            *status = ws;
        }
        return true;
    }

  private:
    std::string id_;
    pid_t pid_ = -1;
    int pidfd_ = -1;
    int life_ = -1;
    bool ok_ = false;
    bool reaped_ = false;
    int status_ = 0;
};

pr::Request req(pr::RequestBody body) {
    return pr::Request{0, "", std::move(body)};
}

int open_sockets() {
    int n = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (struct dirent *e = readdir(d)) {
            char target[64] = {};
            std::string path = std::string("/proc/self/fd/") + e->d_name;
            if (readlink(path.c_str(), target, sizeof target - 1) > 0 &&
                std::strncmp(target, "socket:", 7) == 0) {
                ++n;
            }
        }
        closedir(d);
    }
    return n;
}

// A value no other (thread, iteration) has, of a length that varies.
std::string value_for(int thread, int i) {
    std::string v(static_cast<size_t>(1 + (thread * 131 + i * 37) % 600), '\0');
    for (size_t k = 0; k < v.size(); ++k) {
        v[k] = static_cast<char>((thread * 7 + i * 13 + static_cast<int>(k)) & 0xff);
    }
    return v + std::to_string(thread) + "." + std::to_string(i);
}

TEST(Endpoint, EightThreadsShareOneConnectionAndEachGetsItsOwnReplies) {
    Daemon d;
    ASSERT_TRUE(d.ok());
    int sockets_before = open_sockets();
    // The process's endpoint, as every ABI call reaches it: whichever thread comes first
    // connects, and all get the same one.
    setenv("DRAGON_NODE_SOCKET", d.socket().c_str(), 1);
    constexpr int kThreads = 8;
    constexpr int kRounds = 300;
    constexpr int kWaitMs = 5000; // per call; the daemon answers these at once
    std::vector<Endpoint *> seen(kThreads, nullptr);
    std::atomic<int> wrong{0};
    std::atomic<int> async_done{0};
    std::atomic<int> async_sent{0};
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            Endpoint *e = nullptr;
            if (Endpoint::process(&e) != DRAGON_SUCCESS) {
                ++wrong;
                return;
            }
            seen[static_cast<size_t>(t)] = e;
            for (int i = 0; i < kRounds; ++i) {
                std::string name = "ep.t" + std::to_string(t) + ".n" + std::to_string(i);
                std::string value = value_for(t, i);
                pr::Reply r;
                pr::Register reg{name, static_cast<uint32_t>(t), value, false};
                if (rt::request(reg, kWaitMs, &r) != DRAGON_SUCCESS) {
                    ++wrong;
                    return; // one failure is enough: no waiting out every later one
                }
                if (i % 3 == 0) { // asynchronous: the completion runs on whichever thread reads
                    ++async_sent;
                    dragon_status_t st = e->send(
                        req(pr::Lookup{name, 0}),
                        [&, value, t](dragon_status_t s, pr::Reply &reply, std::vector<int> &) {
                            auto *l = std::get_if<pr::LookupReply>(&reply.body);
                            if (s != DRAGON_SUCCESS || l == nullptr || l->value != value ||
                                l->kind != static_cast<uint32_t>(t)) {
                                ++wrong;
                            }
                            ++async_done;
                        });
                    if (st != DRAGON_SUCCESS) {
                        ++wrong;
                        ++async_done;
                    }
                    continue;
                }
                if (rt::request(pr::Lookup{name, 0}, kWaitMs, &r) != DRAGON_SUCCESS) {
                    ++wrong;
                    return; // one failure is enough: no waiting out every later one
                }
                auto *l = std::get_if<pr::LookupReply>(&r.body);
                if (l == nullptr || l->value != value || l->kind != static_cast<uint32_t>(t)) {
                    ++wrong;
                    return;
                }
            }
        });
    }
    for (auto &th : threads) {
        th.join();
    }
    Endpoint *e = seen[0];
    ASSERT_NE(e, nullptr);
    auto t0 = Clock::now();
    while (async_done.load() < async_sent.load() && ms_since(t0) < 10000) {
        e->pump(100); // completions not yet delivered by a caller's read
    }
    EXPECT_EQ(async_done.load(), async_sent.load());
    EXPECT_EQ(wrong.load(), 0) << "replies went to the wrong caller, or calls failed";
    for (Endpoint *s : seen) {
        EXPECT_EQ(s, e) << "threads got different endpoints";
    }
    EXPECT_EQ(open_sockets(), sockets_before + 1) << "more than one connection to the daemon";
    EXPECT_FALSE(e->broken());
    unsetenv("DRAGON_NODE_SOCKET");
    e->abandon(); // the daemon is about to go; this process's endpoint goes with it
}

TEST(Endpoint, ProcessEndedEventsReachSubscribersOnly) {
    Daemon d;
    ASSERT_TRUE(d.ok());
    Endpoint sub(d.socket(), "test");
    Endpoint other(d.socket(), "test");
    ASSERT_EQ(other.connect(), DRAGON_SUCCESS) << dragon_last_error();
    std::mutex m;
    std::vector<pr::ProcEnded> got;
    std::vector<pr::ProcEnded> got_second; // a second subscriber on the same endpoint
    uint64_t id1 = 0;
    uint64_t id2 = 0;
    ASSERT_EQ(sub.subscribe(
                  [&](const pr::Event &ev) {
                      std::lock_guard<std::mutex> l(m);
                      got.push_back(std::get<pr::ProcEnded>(ev.body));
                  },
                  &id1),
              DRAGON_SUCCESS)
        << dragon_last_error();
    ASSERT_EQ(sub.subscribe(
                  [&](const pr::Event &ev) {
                      std::lock_guard<std::mutex> l(m);
                      got_second.push_back(std::get<pr::ProcEnded>(ev.body));
                  },
                  &id2),
              DRAGON_SUCCESS);

    pr::Spawn s;
    s.program = "/bin/sh";
    s.args = {"-c", "exit 7"};
    s.streams[1] = pr::Stream::kDevNull;
    s.streams[2] = pr::Stream::kDevNull;
    s.count = 3;
    pr::Reply r;
    ASSERT_EQ(other.call(req(s), Endpoint::kCallMs, &r), DRAGON_SUCCESS) << dragon_last_error();
    std::vector<uint64_t> puids = std::get<pr::SpawnReply>(r.body).puids;
    ASSERT_EQ(puids.size(), 3U);

    auto t0 = Clock::now();
    for (;;) {
        {
            std::lock_guard<std::mutex> l(m);
            if (got.size() >= 3 && got_second.size() >= 3) {
                break;
            }
        }
        ASSERT_LT(ms_since(t0), 10000) << "no process-ended events within 10 s";
        dragon_status_t st = sub.pump(100);
        ASSERT_TRUE(st == DRAGON_SUCCESS || st == DRAGON_TIMEOUT) << dragon_last_error();
    }
    std::set<uint64_t> ended;
    for (const pr::ProcEnded &e : got) {
        ended.insert(e.puid);
        EXPECT_EQ(e.exit_code, 7);
    }
    EXPECT_EQ(ended, std::set<uint64_t>(puids.begin(), puids.end()));
    EXPECT_EQ(got.size(), 3U);
    EXPECT_EQ(got_second.size(), 3U);

    // The connection that did not subscribe was sent nothing: the daemon publishes an event
    // to every subscriber at once, and the subscriber has had all of them, so anything sent
    // to `other` would be waiting on its socket now.
    struct pollfd p = {other.fd(), POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0) << "an event reached a connection that did not subscribe";
    // The join that follows agrees with the events.
    ASSERT_EQ(other.call(req(pr::Join{puids, 0}), Endpoint::kCallMs, &r), DRAGON_SUCCESS)
        << dragon_last_error();
    EXPECT_EQ(std::get<pr::JoinReply>(r.body).exit_codes, std::vector<int>(3, 7));

    // An unsubscribed handler hears nothing more; the other still does.
    sub.unsubscribe(id2);
    s.count = 1;
    ASSERT_EQ(other.call(req(s), Endpoint::kCallMs, &r), DRAGON_SUCCESS);
    t0 = Clock::now();
    for (;;) {
        {
            std::lock_guard<std::mutex> l(m);
            if (got.size() >= 4) {
                break;
            }
        }
        ASSERT_LT(ms_since(t0), 10000);
        sub.pump(100);
    }
    std::lock_guard<std::mutex> l(m);
    EXPECT_EQ(got_second.size(), 3U);
}

// The syscall thread `tid` of this process is in, or -1 (also when the kernel does not say:
// the file is missing where /proc is emulated).
long syscall_of(pid_t tid) {
    std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
    long nr = -1;
    f >> nr;
    return nr;
}

bool waiting_in_poll(pid_t tid) {
    long nr = syscall_of(tid);
#ifdef SYS_poll
    if (nr == SYS_poll) {
        return true;
    }
#endif
    return nr == SYS_ppoll;
}

TEST(Endpoint, ADaemonThatDiesMidCallGivesClosedWithinTheTimeout) {
    if (syscall_of(static_cast<pid_t>(syscall(SYS_gettid))) < 0) {
        GTEST_SKIP() << "/proc/self/task/TID/syscall is not readable here: a call cannot be "
                        "seen waiting for its reply";
    }
    Daemon d;
    ASSERT_TRUE(d.ok());
    Endpoint ep(d.socket(), "test");
    ASSERT_EQ(ep.connect(), DRAGON_SUCCESS) << dragon_last_error();

    // Two requests the daemon parks (lookups of a name nobody registers, waiting without
    // limit): one asynchronous, one a blocking call with a 20 s timeout on another thread.
    std::atomic<int> async_status{-1};
    ASSERT_EQ(
        ep.send(req(pr::Lookup{"never.registered", -1}),
                [&](dragon_status_t st, pr::Reply &, std::vector<int> &) { async_status = st; }),
        DRAGON_SUCCESS);
    std::atomic<pid_t> caller_tid{0};
    std::atomic<int> call_status{-1};
    std::atomic<int64_t> call_ms{-1};
    std::string call_error;
    std::thread caller([&] {
        caller_tid = static_cast<pid_t>(syscall(SYS_gettid));
        pr::Reply r;
        auto t0 = Clock::now();
        dragon_status_t st = ep.call(req(pr::Lookup{"never.registered.either", -1}), 20000, &r);
        call_ms = ms_since(t0);
        call_error = dragon_last_error();
        call_status = st;
    });
    // Mid-call for certain: the caller has sent its request and waits in poll for the reply
    // (it reads for everyone: no other thread is reading).
    auto t0 = Clock::now();
    while (caller_tid.load() == 0 || !waiting_in_poll(caller_tid.load())) {
        ASSERT_LT(ms_since(t0), 10000) << "the caller never waited for its reply";
        std::this_thread::yield();
    }
    d.kill9();
    caller.join();
    EXPECT_EQ(call_status.load(), DRAGON_CLOSED) << call_error;
    EXPECT_LT(call_ms.load(), 5000) << "DRAGON_CLOSED came only near the call's own timeout";
    EXPECT_NE(call_error.find("daemon"), std::string::npos) << call_error;
    EXPECT_EQ(async_status.load(), DRAGON_CLOSED) << "the asynchronous request was not failed";
    int ws = 0;
    ASSERT_TRUE(d.ended(kStartMs, &ws));
    EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

    // From then on, every use fails at once with the same status.
    pr::Reply r;
    auto t1 = Clock::now();
    EXPECT_EQ(ep.call(req(pr::NodeQuery{}), 20000, &r), DRAGON_CLOSED);
    EXPECT_EQ(ep.pump(1000), DRAGON_CLOSED);
    EXPECT_LT(ms_since(t1), 1000);
    EXPECT_TRUE(ep.broken());
}

TEST(Endpoint, NoDaemonIsClosedWithTheReason) {
    Endpoint ep(test_base() + "/nobody-listens.sock", "test");
    EXPECT_EQ(ep.connect(), DRAGON_CLOSED);
    EXPECT_NE(std::string(dragon_last_error()).find("nobody-listens.sock"), std::string::npos)
        << dragon_last_error();
}

} // namespace

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int rc = RUN_ALL_TESTS();
    if (!test_base().empty()) {
        remove_tree(test_base());
    }
    return rc;
}
