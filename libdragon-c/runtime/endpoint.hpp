// A connection to a node daemon (docs/runtime.md, "The endpoint"): persistent, shared by
// every thread, with request ids. Requests are sent at once (asynchronously: a completion
// runs when the reply comes) or as a blocking call with a timeout on top; events the daemon
// pushes go to subscribers. There is no thread of its own: whichever thread waits reads the
// socket for everyone (the others sleep on a condition variable), so a lone call costs one
// send and one receive. Events and asynchronous completions are delivered by the thread that
// reads: one in call() or pump(); a subscriber that wants events while nobody calls runs
// pump() (or polls fd() and pumps).
//
// Every ABI call of the runtime goes through Endpoint::process(), the process's one
// connection to its node daemon (DRAGON_NODE_SOCKET), opened on first use; a forked child
// gets a fresh one on its first use. The launcher uses an Endpoint of its own, and
// daemon-to-daemon links will too.
#pragma once

#include "../protocol/messages.hpp"

#include <dragon/status.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace dragon::runtime {

class Endpoint {
  public:
    // When a reply comes (or the connection ends: DRAGON_CLOSED). The descriptors that came
    // with it are the callee's to close.
    using Done =
        std::function<void(dragon_status_t st, protocol::Reply &reply, std::vector<int> &fds)>;
    using EventHandler = std::function<void(const protocol::Event &event)>;

    explicit Endpoint(std::string socket_path, std::string role = "library");
    ~Endpoint();
    Endpoint(const Endpoint &) = delete;
    Endpoint &operator=(const Endpoint &) = delete;

    // The process's endpoint, connected (DRAGON_CLOSED outside a runtime, or with the reason
    // connecting failed). The pointer lives as long as the process.
    static dragon_status_t process(Endpoint **out);

    // Connect, check the peer (same uid) and say hello (same protocol version): once; false
    // results are not cached, a broken connection is (DRAGON_CLOSED from then on).
    dragon_status_t connect(int wait_ms = kCallMs);

    // Send a request (id assigned here, *id receives it); `done` (may be empty) runs when
    // its reply comes. fds go along (SCM_RIGHTS, at most protocol::kMaxFds).
    dragon_status_t send(protocol::Request request, Done done, const std::vector<int> &fds = {},
                         uint64_t *id = nullptr);
    // Forget a request sent with send(): its reply, if it comes, is dropped.
    void forget(uint64_t id);

    // Send and wait at most wait_ms (-1: no limit) for the reply. A reply with a status
    // other than success becomes that status, its message the error. Descriptors of a
    // successful reply go to *recv_fds (closed when recv_fds is null).
    dragon_status_t call(protocol::Request request, int wait_ms, protocol::Reply *reply,
                         const std::vector<int> &send_fds = {},
                         std::vector<int> *recv_fds = nullptr);

    // Events: the first subscriber makes the daemon send them on this connection.
    dragon_status_t subscribe(EventHandler handler, uint64_t *id);
    void unsubscribe(uint64_t id);

    // Read and deliver what comes within wait_ms (0: what is there now). DRAGON_CLOSED once
    // the connection has ended; DRAGON_TIMEOUT when nothing came.
    dragon_status_t pump(int wait_ms);

    // The socket, to poll for input before pump(0). -1 before connect().
    int fd() const { return fd_; }
    bool broken() const;

    // Drop the connection without a word (a forked child's copy of its parent's).
    void abandon();

    static constexpr int kCallMs = 30000; // a daemon silent this long on a quick request is gone
    // How long a reader spins for a reply before it sleeps (adaptive, spin wait modes).
    static constexpr int64_t kAdaptiveSpinNs = 50000;
    static constexpr int64_t kSpinMaxNs = 1000000;

  private:
    struct Pending {
        bool done = false;
        bool waited = false; // a call() waits for it (else: Done runs)
        dragon_status_t status = DRAGON_SUCCESS;
        protocol::Reply reply;
        std::vector<int> fds;
        Done on_done;
    };
    using Work = std::vector<std::function<void()>>;

    dragon_status_t send_bytes(const std::string &bytes, const std::vector<int> &fds, int wait_ms);
    // With the lock held and reading_ taken by this thread: read one message (the lock is
    // released while waiting), queue what it completes into *work.
    void read_one(std::unique_lock<std::mutex> &lock, int wait_ms, Work *work);
    void fail_all(dragon_status_t st, const std::string &why, Work *work);

    std::string path_;
    std::string role_;
    int fd_ = -1;
    std::atomic<uint64_t> next_id_{1};
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool connected_ = false;
    bool reading_ = false; // a thread reads the socket for everyone
    bool broken_ = false;
    std::string broken_why_;
    std::map<uint64_t, Pending> pending_;
    std::map<uint64_t, EventHandler> subscribers_;
    uint64_t next_subscriber_ = 1;
    bool subscribed_ = false;
    std::vector<char> buf_; // the reader's
};

// How long to wait for the reply to a request the daemon answers after `timeout`.
int reply_wait_ms(dragon_timeout_t timeout);

// One call on the process's endpoint: what every ABI call does.
dragon_status_t request(protocol::RequestBody body, int wait_ms, protocol::Reply *reply,
                        const std::vector<int> &send_fds = {},
                        std::vector<int> *recv_fds = nullptr);

} // namespace dragon::runtime
