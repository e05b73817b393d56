// The task pool's owner side (include/dragon/taskpool.h, docs/taskpool.md): workers started
// through the runtime, chunks handed out through a shared table and a task channel, results
// read from a result channel by whichever thread waits (leader/follower; a background thread
// reads when nobody does), worker ends learnt from the runtime's proc_ended events.
#include "wire.hpp"
#include "worker.hpp"

#include "../common/clock.hpp"
#include "../common/error.hpp"
#include "../common/struct_array.hpp"
#include "../protocol/messages.hpp"
#include "../runtime/endpoint.hpp"

#include <dragon/channel.h>
#include <dragon/pool.h>
#include <dragon/process.h>
#include <dragon/taskpool.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::fail_errno;
using dragon::detail::guarded;
using dragon::detail::monotonic_ns;
using dragon::detail::wrap;

namespace dragon::taskpool {
namespace {

constexpr size_t kDefaultSlots = 4096;
constexpr size_t kDefaultPoolBytes = 8ull << 20;
constexpr int64_t kDefaultStartNs = 60'000'000'000LL;
constexpr int64_t kLeaderCapNs = 50'000'000LL; // a reader re-checks its own state this often

// The results of one chunk (items first..first+n-1), delivered one by one. Successful
// results point into the message they came in (copied, or the pool allocation itself, held
// until the chunk goes); messages of failed items are NUL-terminated copies.
struct Chunk {
    struct Entry {
        dragon_status_t status;
        const char *data;
        size_t len;
    };
    size_t first = 0;
    std::vector<Entry> entries;
    uint32_t cursor = 0;            // the next to deliver
    std::vector<char> copy;         // a small message's bytes
    std::shared_ptr<void> block;    // a large message: the pool allocation it lies in
    std::vector<std::string> texts; // messages (reserved up front: their addresses stay put)
};
using ChunkPtr = std::shared_ptr<Chunk>;

struct Job {
    std::string task;
    // input
    const void *const *args = nullptr;
    const size_t *lens = nullptr;
    size_t n = 0;
    int (*next)(void *, const void **, size_t *) = nullptr;
    void *user = nullptr;
    std::shared_ptr<void> keep; // what args/lens point into (apply_async's copy)
    size_t chunksize = 1;
    bool ordered = true;
    size_t max_in_flight = 0;
    size_t drawn = 0; // items taken from the input (submitted, or ended without running)
    bool input_done = false;
    bool drawing = false; // a thread calls the input callback now
    // results
    uint64_t done = 0, failed = 0, running = 0;
    size_t delivered = 0;
    std::map<size_t, ChunkPtr> ready_ordered; // by first index
    std::deque<ChunkPtr> ready_fifo;
    size_t next_index = 0;
    std::vector<ChunkPtr> held; // what the last delivered bytes point into
    bool released = false;

    size_t ended() const { return static_cast<size_t>(done + failed); }
    bool complete() const { return input_done && ended() == drawn; }
    bool all_delivered() const { return input_done && delivered == drawn; }
    size_t undelivered() const { return drawn - delivered; }
};
using JobPtr = std::shared_ptr<Job>;

struct SlotRec {
    JobPtr job;
    size_t first = 0;
    uint32_t n = 0;
    uint32_t gen = 0;
    bool busy = false;
    bool timed_out = false;
    bool cancelled = false;
    uint32_t attempts = 0;
    std::vector<unsigned char> msg; // the task message, for a retry
};

struct WorkerRec {
    uint64_t puid = 0;
    pid_t pid = 0;
    bool ready = false;
    bool retired = false; // this incarnation exits on its own, replaced already
    bool alive = false;   // a process holds this place
    uint32_t failed_starts = 0;
    dragon_policy_t policy{};
    bool has_policy = false;
};

size_t granted_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    size_t n = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        n = static_cast<size_t>(std::max(1, CPU_COUNT(&set)));
    }
    // A cgroup v2 CPU limit ("max" or "<quota> <period>") lowers it.
    std::ifstream f("/sys/fs/cgroup/cpu.max");
    std::string quota;
    long long period = 0;
    if (f >> quota >> period && quota != "max" && period > 0) {
        long long q = std::atoll(quota.c_str());
        if (q > 0) {
            n = std::min(n, static_cast<size_t>(std::max(1LL, (q + period - 1) / period)));
        }
    }
    return n;
}

} // namespace

class Engine : public std::enable_shared_from_this<Engine> {
  public:
    ~Engine() { release_resources(); }

    dragon_status_t create(const dragon_taskpool_attr_t &a);
    dragon_status_t submit(const std::string &task, const dragon_taskpool_input_t &in,
                           std::shared_ptr<void> keep, JobPtr *out);
    // Up to cap results (next and next_many).
    dragon_status_t take(const JobPtr &job, dragon_timeout_t timeout, dragon_taskpool_result_t *out,
                         size_t cap, size_t elem, size_t *count);
    dragon_status_t wait(const JobPtr &job, dragon_timeout_t timeout);
    void progress(const Job *job, dragon_taskpool_progress_t *p);
    dragon_status_t cancel(const JobPtr &job);
    void release(const JobPtr &job);
    dragon_status_t close();
    dragon_status_t join(dragon_timeout_t timeout);
    dragon_status_t terminate();
    dragon_status_t destroy();
    uint32_t workers() const { return static_cast<uint32_t>(workers_.size()); }

  private:
    // Waits until pred() (checked under mu_) or the deadline; reads results meanwhile.
    template <typename Pred>
    dragon_status_t wait_until(std::unique_lock<std::mutex> &lock, const detail::Deadline &dl,
                               const JobPtr &job, Pred pred, bool feed_all = false);
    void read_results(std::unique_lock<std::mutex> &lock, int64_t wait_ns);
    void receive(std::unique_lock<std::mutex> &lock, int64_t wait_ns);
    void drain(std::unique_lock<std::mutex> &lock);
    void handle(std::unique_lock<std::mutex> &lock, const unsigned char *msg, size_t len,
                const std::shared_ptr<void> &block);
    void handle_end(std::unique_lock<std::mutex> &lock, uint64_t puid, int code);
    void end_slot(uint32_t s, dragon_status_t st, const std::string &why,
                  const std::vector<ResultItem> *items = nullptr,
                  const std::shared_ptr<void> &block = nullptr, const unsigned char *msg = nullptr,
                  size_t len = 0);
    void end_items(SlotRec &rec, dragon_status_t st, const std::string &why,
                   const std::vector<ResultItem> *items = nullptr,
                   const std::shared_ptr<void> &block = nullptr, const unsigned char *msg = nullptr,
                   size_t len = 0);
    void deliver(Job &job, ChunkPtr chunk);
    void deliver_all(Job &job, size_t first, size_t n, dragon_status_t st, const std::string &why);
    void feed(std::unique_lock<std::mutex> &lock, const JobPtr &only, bool all = false);
    bool submit_chunk(const JobPtr &job, std::vector<unsigned char> &msg, size_t first, uint32_t n,
                      void *block = nullptr, size_t block_len = 0);
    void check_timeouts(std::unique_lock<std::mutex> &lock, int64_t *next_deadline);
    dragon_status_t spawn(std::unique_lock<std::mutex> &lock, uint32_t w);
    void cancel_locked(Job &job, const char *why);
    void break_pool(const std::string &why);
    void nudge();
    void background();
    void stop_background();
    void release_resources();
    std::string worker_env(uint32_t w) const;

    std::mutex mu_;
    std::condition_variable changed_;
    bool reading_ = false;                       // a thread reads the result channel (the leader)
    std::atomic<int> waiting_{0};                // threads waiting for results
    std::deque<std::pair<uint64_t, int>> ended_; // from the event handler
    std::mutex ended_mu_;

    dragon_pool_t *pool_ = nullptr;
    dragon_channel_t *tasks_ = nullptr;
    dragon_channel_t *results_ = nullptr;
    void *shared_ = nullptr;
    SharedView view_;
    std::vector<unsigned char> shared_desc_, tasks_desc_, results_desc_;
    std::vector<SlotRec> slots_;
    std::vector<uint32_t> free_slots_;
    std::vector<WorkerRec> workers_;
    std::unordered_map<uint64_t, uint32_t> by_puid_;
    std::vector<std::string> argv_;
    std::string init_name_;
    std::vector<unsigned char> init_arg_;
    uint32_t max_tasks_ = 0;
    uint32_t max_retries_ = 0;
    int64_t task_timeout_ns_ = -1;
    std::vector<JobPtr> jobs_; // not yet released
    std::vector<unsigned char> rbuf_ = std::vector<unsigned char>(size_t{64} * 1024);
    std::string broken_; // why the pool cannot run tasks (workers fail to start)
    bool closed_ = false, terminated_ = false, destroyed_ = false, joined_ = false;
    uint64_t sub_id_ = 0;
    runtime::Endpoint *ep_ = nullptr;
    std::thread bg_;
    std::atomic<bool> bg_stop_{false};
    int wake_fd_ = -1; // ends the background thread's wait
};

// ---- creation ---------------------------------------------------------------------------

std::string Engine::worker_env(uint32_t w) const {
    std::string v = "v1:" + std::to_string(w) + ":" + std::to_string(getpid()) + ":" +
                    std::to_string(slots_.size()) + ":" +
                    to_hex(tasks_desc_.data(), tasks_desc_.size()) + ":" +
                    to_hex(results_desc_.data(), results_desc_.size()) + ":" +
                    to_hex(shared_desc_.data(), shared_desc_.size()) + ":" +
                    to_hex(init_name_.data(), init_name_.size()) + ":" +
                    to_hex(init_arg_.data(), init_arg_.size());
    return std::string(kWorkerEnv) + "=" + v;
}

// Start a worker in place w: mu_ held on entry and exit, released while the runtime starts it
// (the reader calls this, so the new worker's end cannot be handled before it is known here).
dragon_status_t Engine::spawn(std::unique_lock<std::mutex> &lock, uint32_t w) {
    WorkerRec &r = workers_[w];
    std::vector<std::string> env_store;
    for (char **e = environ; *e != nullptr; ++e) {
        if (std::strncmp(*e, kWorkerEnv, std::strlen(kWorkerEnv)) != 0) {
            env_store.emplace_back(*e);
        }
    }
    env_store.push_back(worker_env(w));
    std::vector<const char *> env;
    env.reserve(env_store.size() + 1);
    for (const auto &e : env_store) {
        env.push_back(e.c_str());
    }
    env.push_back(nullptr);
    std::vector<const char *> argv;
    for (const auto &a : argv_) {
        argv.push_back(a.c_str());
    }
    argv.push_back(nullptr);
    dragon_process_attr_t attr;
    dragon_process_attr_init(&attr);
    attr.env = env.data();
    attr.policy = r.has_policy ? &r.policy : nullptr;
    attr.role = "dragon.taskpool.worker";
    uint64_t puid = 0;
    lock.unlock();
    dragon_status_t st = dragon_process_create(argv.data(), &attr, &puid);
    lock.lock();
    if (st != DRAGON_SUCCESS) {
        return wrap(st, "task pool: starting worker %u", w);
    }
    r.puid = puid;
    r.pid = 0;
    r.ready = false;
    r.retired = false;
    r.alive = true;
    by_puid_[puid] = w;
    view_.workers[w].puid.store(puid, std::memory_order_relaxed);
    // The pool began to end while it started: it ends too.
    if (terminated_) {
        lock.unlock();
        dragon_process_stop(puid, SIGKILL);
        lock.lock();
    } else if (joined_) {
        TaskHeader stop{};
        stop.kind = kStop;
        dragon_channel_send(tasks_, &stop, sizeof stop, DRAGON_TIMEOUT_TRY);
    }
    return DRAGON_SUCCESS;
}

dragon_status_t Engine::create(const dragon_taskpool_attr_t &a) {
    uint64_t self = 0;
    if (dragon_status_t st = dragon_process_self(&self); st != DRAGON_SUCCESS) {
        return wrap(st, "task pool");
    }
    // Worker places.
    if (a.n_policies > 0) {
        if (a.policies == nullptr ||
            a.policy_size < offsetof(dragon_policy_t, wait_mode) + sizeof(dragon_wait_mode_t)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "task pool: policies need an array and policy_size = "
                        "sizeof(dragon_policy_t)");
        }
        uint32_t per = a.processes_per_policy == 0 ? 1 : a.processes_per_policy;
        for (size_t i = 0; i < a.n_policies; ++i) {
            WorkerRec base;
            dragon_policy_init(&base.policy);
            std::memcpy(&base.policy,
                        reinterpret_cast<const char *>(a.policies) + i * a.policy_size,
                        std::min(a.policy_size, sizeof(dragon_policy_t)));
            base.policy.struct_size = sizeof(dragon_policy_t);
            base.has_policy = true;
            for (uint32_t k = 0; k < per; ++k) {
                workers_.push_back(base);
            }
        }
    } else {
        size_t n = a.workers != 0 ? a.workers : granted_cpus();
        workers_.resize(n);
    }
    if (workers_.empty() || workers_.size() > 0xffffffu) {
        return fail(DRAGON_INVALID_ARGUMENT, "task pool: %zu workers (1 to 16777215, please)",
                    workers_.size());
    }
    if (a.worker_argv != nullptr && a.worker_argv[0] != nullptr) {
        for (const char *const *p = a.worker_argv; *p != nullptr; ++p) {
            argv_.emplace_back(*p);
        }
    } else {
        const char *exe = dragon_process_self_exe();
        if (exe == nullptr) {
            return fail(DRAGON_NOT_FOUND, "task pool: this program's executable is not known");
        }
        argv_.emplace_back(exe);
    }
    if (a.initializer != nullptr) {
        init_name_ = a.initializer;
        if (init_name_.empty() || init_name_.size() > kMaxName ||
            a.initializer_arg_len > kMaxInitArg ||
            (a.initializer_arg == nullptr && a.initializer_arg_len != 0)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "task pool: an initializer's name is 1 to %zu bytes, its argument at "
                        "most %zu bytes",
                        kMaxName, kMaxInitArg);
        }
        const auto *b = static_cast<const unsigned char *>(a.initializer_arg);
        init_arg_.assign(b, b + a.initializer_arg_len);
    }
    max_tasks_ = a.max_tasks_per_child;
    max_retries_ = a.max_retries;
    task_timeout_ns_ = a.task_timeout < 0 ? -1 : a.task_timeout;
    size_t n_slots = a.max_in_flight != 0 ? a.max_in_flight : kDefaultSlots;
    if (n_slots > (1u << 24)) {
        return fail(DRAGON_INVALID_ARGUMENT, "task pool: max_in_flight %zu is above 2^24", n_slots);
    }
    size_t bytes = a.pool_bytes != 0 ? a.pool_bytes : kDefaultPoolBytes;

    // The shared memory: a pool of this process's own, its two channels and the table.
    static std::atomic<uint32_t> seq{0};
    char name[64];
    std::snprintf(name, sizeof name, "taskpool.%d.%u", static_cast<int>(getpid()),
                  seq.fetch_add(1));
    if (dragon_status_t st = dragon_pool_create(name, bytes, nullptr, &pool_);
        st != DRAGON_SUCCESS) {
        return wrap(st, "task pool: its shared memory");
    }
    size_t cap = n_slots + 2 * workers_.size() + 16;
    if (dragon_status_t st = dragon_channel_create(pool_, cap, kSlotBytes, nullptr, &tasks_);
        st != DRAGON_SUCCESS) {
        return wrap(st, "task pool: its task channel");
    }
    if (dragon_status_t st =
            dragon_channel_create(pool_, cap + 4 * workers_.size(), kSlotBytes, nullptr, &results_);
        st != DRAGON_SUCCESS) {
        return wrap(st, "task pool: its result channel");
    }
    size_t sb =
        shared_bytes(static_cast<uint32_t>(n_slots), static_cast<uint32_t>(workers_.size()));
    if (dragon_status_t st = dragon_pool_alloc(pool_, sb, &shared_); st != DRAGON_SUCCESS) {
        return wrap(st,
                    "task pool: its table of %zu chunks (max_in_flight) in %zu bytes of shared "
                    "memory (pool_bytes): raise pool_bytes or lower max_in_flight",
                    n_slots, bytes);
    }
    std::memset(shared_, 0, sb);
    view_ = SharedView::of(shared_, static_cast<uint32_t>(n_slots));
    view_.header->magic = kMagic;
    view_.header->version = kWireVersion;
    view_.header->n_slots = static_cast<uint32_t>(n_slots);
    view_.header->n_workers = static_cast<uint32_t>(workers_.size());
    view_.header->max_tasks_per_child = max_tasks_;
    view_.header->owner_pid = getpid();
    unsigned char buf[DRAGON_OBJECT_DESCRIPTOR_MAX + DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    if (dragon_channel_serialize(tasks_, buf, sizeof buf, &len) != DRAGON_SUCCESS) {
        return wrap(DRAGON_INTERNAL, "task pool");
    }
    tasks_desc_.assign(buf, buf + len);
    if (dragon_channel_serialize(results_, buf, sizeof buf, &len) != DRAGON_SUCCESS) {
        return wrap(DRAGON_INTERNAL, "task pool");
    }
    results_desc_.assign(buf, buf + len);
    if (dragon_pool_mem_serialize(pool_, shared_, sb, buf, sizeof buf, &len) != DRAGON_SUCCESS) {
        return wrap(DRAGON_INTERNAL, "task pool");
    }
    shared_desc_.assign(buf, buf + len);
    slots_.resize(n_slots);
    free_slots_.reserve(n_slots);
    for (size_t i = n_slots; i-- > 0;) {
        free_slots_.push_back(static_cast<uint32_t>(i));
    }

    // Worker ends come as the runtime's events.
    if (dragon_status_t st = runtime::Endpoint::process(&ep_); st != DRAGON_SUCCESS) {
        return wrap(st, "task pool");
    }
    std::weak_ptr<Engine> weak = weak_from_this();
    dragon_status_t st = ep_->subscribe(
        [weak](const protocol::Event &ev) {
            const auto *pe = std::get_if<protocol::ProcEnded>(&ev.body);
            auto self = weak.lock();
            if (pe == nullptr || !self) {
                return;
            }
            {
                std::lock_guard<std::mutex> lock(self->ended_mu_);
                self->ended_.emplace_back(pe->puid, pe->exit_code);
            }
            self->nudge();
        },
        &sub_id_);
    if (st != DRAGON_SUCCESS) {
        return wrap(st, "task pool: worker events");
    }
    {
        std::unique_lock<std::mutex> lock(mu_);
        for (uint32_t w = 0; w < workers_.size(); ++w) {
            if (dragon_status_t s = spawn(lock, w); s != DRAGON_SUCCESS) {
                lock.unlock();
                terminate();
                return s;
            }
        }
    }
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
        terminate();
        return fail_errno(DRAGON_SYSTEM_ERROR, errno, "task pool: eventfd");
    }
    bg_ = std::thread([this]() { background(); });

    // Every worker ready (its initializer done), or the reason one is not.
    detail::Deadline dl(a.start_timeout > 0 ? a.start_timeout : kDefaultStartNs);
    std::unique_lock<std::mutex> lock(mu_);
    dragon_status_t ws = wait_until(lock, dl, nullptr, [&]() {
        if (!broken_.empty()) {
            return true;
        }
        return std::all_of(workers_.begin(), workers_.end(),
                           [](const WorkerRec &r) { return r.ready; });
    });
    if (!broken_.empty() || ws != DRAGON_SUCCESS) {
        std::string why = broken_.empty() ? "its workers were not ready in time" : broken_;
        lock.unlock();
        terminate();
        return fail(broken_.empty() ? DRAGON_TIMEOUT : DRAGON_TASK_FAILED, "task pool: %s",
                    why.c_str());
    }
    return DRAGON_SUCCESS;
}

// ---- reading results --------------------------------------------------------------------

void Engine::nudge() {
    ResultHeader h{};
    h.kind = kNudge;
    dragon_channel_send(results_, &h, sizeof h, DRAGON_TIMEOUT_TRY); // full: it wakes anyway
}

template <typename Pred>
dragon_status_t Engine::wait_until(std::unique_lock<std::mutex> &lock, const detail::Deadline &dl,
                                   const JobPtr &job, Pred pred, bool feed_all) {
    for (;;) {
        // Drawing from a callback input is not waiting: the background thread reads
        // meanwhile (a slow callback must not stall the pool's other jobs).
        if (job || feed_all) {
            feed(lock, job, feed_all);
        }
        if (pred()) {
            return DRAGON_SUCCESS;
        }
        if (destroyed_) {
            return fail(DRAGON_CLOSED, "task pool: destroyed");
        }
        if (dl.expired()) {
            return DRAGON_TIMEOUT;
        }
        // Counted while it reads or sleeps: the background thread then leaves reading to it.
        struct Counted {
            std::atomic<int> &n;
            explicit Counted(std::atomic<int> &c) : n(c) { n.fetch_add(1); }
            ~Counted() { n.fetch_sub(1); }
            Counted(const Counted &) = delete;
            Counted &operator=(const Counted &) = delete;
        } counted(waiting_);
        if (!reading_) {
            int64_t left = dl.forever() ? kLeaderCapNs : std::min<int64_t>(dl.left(), kLeaderCapNs);
            read_results(lock, left);
        } else if (dl.forever()) {
            changed_.wait_for(lock, std::chrono::nanoseconds(kLeaderCapNs));
        } else {
            changed_.wait_for(lock,
                              std::chrono::nanoseconds(std::min<int64_t>(dl.left(), kLeaderCapNs)));
        }
    }
}

// Take the messages there are (waiting at most wait_ns for the first): mu_ held on entry and
// exit, released while receiving.
void Engine::receive(std::unique_lock<std::mutex> &lock, int64_t wait_ns) {
    std::vector<unsigned char> &buf = rbuf_;
    bool first = true;
    for (;;) {
        lock.unlock();
        size_t len = 0;
        void *big = nullptr;
        dragon_status_t st = dragon_channel_recv(results_, buf.data(), buf.size(), &len,
                                                 first ? wait_ns : DRAGON_TIMEOUT_TRY);
        if (st == DRAGON_BUFFER_TOO_SMALL) {
            st = dragon_channel_recv_mem(results_, &big, &len, DRAGON_TIMEOUT_TRY);
        }
        lock.lock();
        first = false;
        if (st != DRAGON_SUCCESS) {
            break;
        }
        if (big != nullptr) {
            // A large message: its results stay where they are until the items go.
            dragon_pool_t *pool = pool_;
            std::shared_ptr<void> block(big, [pool](void *p) { dragon_pool_free(pool, p); });
            handle(lock, static_cast<unsigned char *>(big), len, block);
        } else {
            handle(lock, buf.data(), len, nullptr);
        }
    }
}

void Engine::drain(std::unique_lock<std::mutex> &lock) {
    receive(lock, DRAGON_TIMEOUT_TRY);
}

// As the leader: wait at most wait_ns for a message, then take all there are. mu_ is held on
// entry and exit, released while waiting.
void Engine::read_results(std::unique_lock<std::mutex> &lock, int64_t wait_ns) {
    reading_ = true;
    struct Done { // however this ends, others may read next
        Engine &e;
        ~Done() {
            e.reading_ = false;
            e.changed_.notify_all();
        }
    } done{*this};
    int64_t next_deadline = -1;
    check_timeouts(lock, &next_deadline);
    if (next_deadline >= 0) {
        wait_ns = std::min(wait_ns, std::max<int64_t>(0, next_deadline - monotonic_ns()));
    }
    receive(lock, wait_ns);
    // Worker ends the event handler queued. What a worker sent before it ended is in the
    // result channel before its end is known here: read it first, so that a chunk whose
    // results came is not taken for one its worker died in.
    std::deque<std::pair<uint64_t, int>> ends;
    {
        std::lock_guard<std::mutex> g(ended_mu_);
        ends.swap(ended_);
    }
    if (!ends.empty()) {
        drain(lock);
        for (const auto &e : ends) {
            handle_end(lock, e.first, e.second);
        }
    }
    check_timeouts(lock, &next_deadline);
    feed(lock, nullptr);
}

void Engine::deliver(Job &job, ChunkPtr chunk) {
    for (const Chunk::Entry &e : chunk->entries) {
        if (e.status == DRAGON_SUCCESS) {
            ++job.done;
        } else {
            ++job.failed;
        }
    }
    if (job.released) {
        job.delivered += chunk->entries.size(); // nobody takes them
        return;
    }
    if (job.ordered) {
        size_t first = chunk->first;
        job.ready_ordered.emplace(first, std::move(chunk));
    } else {
        job.ready_fifo.push_back(std::move(chunk));
    }
}

// Items first..first+n-1 end with one status and message.
void Engine::deliver_all(Job &job, size_t first, size_t n, dragon_status_t st,
                         const std::string &why) {
    if (n == 0) {
        return;
    }
    auto c = std::make_shared<Chunk>();
    c->first = first;
    c->texts.reserve(1);
    c->texts.push_back(why);
    c->entries.assign(n, Chunk::Entry{st, c->texts.front().c_str(), why.size()});
    deliver(job, std::move(c));
}

// A chunk ends: its items end (end_items), and its slot is free again.
void Engine::end_slot(uint32_t s, dragon_status_t st, const std::string &why,
                      const std::vector<ResultItem> *items, const std::shared_ptr<void> &block,
                      const unsigned char *msg, size_t len) {
    SlotRec &rec = slots_[s];
    if (rec.job) {
        end_items(rec, st, why, items, block, msg, len);
    }
    rec.busy = false;
    rec.msg.clear();
    view_.words[s].store(slot_word(kFree, 0, rec.gen), std::memory_order_release);
    free_slots_.push_back(s);
}

// The chunk's items end (the slot stays taken until its message is accounted for): with the
// worker's results (which lie in msg..msg+len, or in block), or all of them with status st and
// message why.
void Engine::end_items(SlotRec &rec, dragon_status_t st, const std::string &why,
                       const std::vector<ResultItem> *items, const std::shared_ptr<void> &block,
                       const unsigned char *msg, size_t len) {
    Job &job = *rec.job;
    job.running -= rec.n;
    if (items == nullptr) {
        deliver_all(job, rec.first, rec.n, st, why);
        rec.job.reset();
        return;
    }
    auto c = std::make_shared<Chunk>();
    c->first = rec.first;
    c->entries.reserve(rec.n);
    const char *base = reinterpret_cast<const char *>(msg);
    const char *into = base;
    if (block) {
        c->block = block;
    } else {
        c->copy.assign(base, base + len); // the reader's buffer is reused
        into = c->copy.data();
    }
    size_t failures = 0;
    for (uint32_t i = 0; i < rec.n; ++i) {
        failures += (*items)[i].status != DRAGON_SUCCESS ? 1 : 0;
    }
    c->texts.reserve(failures);
    for (uint32_t i = 0; i < rec.n; ++i) {
        const ResultItem &r = (*items)[i];
        auto status = static_cast<dragon_status_t>(r.status);
        if (status == DRAGON_SUCCESS) {
            c->entries.push_back({status, into + (r.bytes.data() - base), r.bytes.size()});
        } else {
            c->texts.emplace_back(r.bytes);
            c->entries.push_back({status, c->texts.back().c_str(), c->texts.back().size()});
        }
    }
    deliver(job, std::move(c));
    rec.job.reset();
}

void Engine::handle(std::unique_lock<std::mutex> &lock, const unsigned char *msg, size_t len,
                    const std::shared_ptr<void> &block) {
    ResultView view;
    bool ok = decode_result(msg, len, &view);
    if (len < sizeof(ResultHeader)) {
        return;
    }
    const ResultHeader &h = view.header;
    auto slot_of = [&]() -> SlotRec * {
        if (h.slot >= slots_.size() || !slots_[h.slot].busy || slots_[h.slot].gen != h.gen) {
            return nullptr;
        }
        return &slots_[h.slot];
    };
    switch (h.kind) {
    case kResult:
        if (SlotRec *r = slot_of(); r != nullptr) {
            // Delivered even when a cancel or timeout raced it: the worker ran it to its end.
            if (!ok || h.code != DRAGON_SUCCESS || view.items.size() != r->n) {
                end_slot(h.slot, DRAGON_MALFORMED,
                         "task pool: a malformed task or result message (worker " +
                             std::to_string(h.worker) + ")");
            } else {
                end_slot(h.slot, DRAGON_SUCCESS, "", &view.items, block, msg, len);
            }
        }
        break;
    case kDropped:
        if (SlotRec *r = slot_of(); r != nullptr) {
            end_slot(h.slot, DRAGON_CANCELLED, "task pool: cancelled before it started");
        }
        break;
    case kReady:
        if (h.worker < workers_.size()) {
            workers_[h.worker].ready = true;
            workers_[h.worker].pid = static_cast<pid_t>(h.aux);
            workers_[h.worker].failed_starts = 0;
        }
        break;
    case kRetired:
        if (h.worker < workers_.size() && workers_[h.worker].alive) {
            WorkerRec &r = workers_[h.worker];
            r.retired = true;
            by_puid_.erase(r.puid);
            r.alive = false;
            if (!terminated_ && !joined_) {
                dragon_status_t st = spawn(lock, h.worker);
                if (st != DRAGON_SUCCESS) {
                    break_pool(std::string("replacing a retired worker: ") + dragon_last_error());
                }
            }
        }
        break;
    case kInitFailed: {
        if (ok && view.items.size() == 1) {
            broken_ = "the initializer failed in worker " + std::to_string(h.worker) + ": " +
                      std::string(view.items[0].bytes);
        } else {
            broken_ = "the initializer failed in worker " + std::to_string(h.worker);
        }
        break;
    }
    default:
        break; // kNudge
    }
}

void Engine::handle_end(std::unique_lock<std::mutex> &lock, uint64_t puid, int code) {
    auto it = by_puid_.find(puid);
    if (it == by_puid_.end()) {
        return; // a retired worker, or another process of the runtime
    }
    uint32_t w = it->second;
    by_puid_.erase(it);
    WorkerRec &r = workers_[w];
    bool was_ready = r.ready;
    r.alive = false;
    r.ready = false;
    if (r.pid > 0) {
        dragon_pool_reclaimed_t rc{};
        rc.struct_size = sizeof rc;
        dragon_pool_reclaim(pool_, r.pid, &rc); // what it held mid-send
    }
    // Its chunks: retried, or ended.
    for (uint32_t s = 0; s < slots_.size(); ++s) {
        SlotRec &rec = slots_[s];
        if (!rec.busy || !rec.job) {
            continue;
        }
        uint64_t word = view_.words[s].load(std::memory_order_acquire);
        SlotState state = word_state(word);
        if ((state != kRunning && state != kKilling && state != kDone) || word_worker(word) != w ||
            word_gen(word) != rec.gen) {
            continue;
        }
        // DONE and not yet ended: its results were never sent (what it sent was read first).
        if (state == kKilling && rec.timed_out) {
            end_slot(s, DRAGON_TIMEOUT,
                     "task pool: task '" + rec.job->task + "' ran past its timeout of " +
                         std::to_string(task_timeout_ns_ / 1000000) +
                         " ms; its worker was ended and replaced");
        } else if (state == kKilling) {
            end_slot(s, DRAGON_CANCELLED, "task pool: cancelled while it ran");
        } else if (rec.attempts < max_retries_ && !terminated_) {
            ++rec.attempts;
            ++rec.gen;
            TaskHeader th;
            std::memcpy(&th, rec.msg.data(), sizeof th);
            th.gen = rec.gen;
            std::memcpy(rec.msg.data(), &th, sizeof th);
            view_.words[s].store(slot_word(kPending, 0, rec.gen), std::memory_order_release);
            if (dragon_channel_send(tasks_, rec.msg.data(), rec.msg.size(), DRAGON_TIMEOUT_TRY) !=
                DRAGON_SUCCESS) {
                end_slot(s, DRAGON_WORKER_DIED, "task pool: its retry could not be queued");
            }
        } else {
            char why[160];
            std::snprintf(why, sizeof why,
                          "task pool: worker %u (puid %llu) ended with code %d while it ran "
                          "task '%s'%s",
                          w, static_cast<unsigned long long>(puid), code, rec.job->task.c_str(),
                          max_retries_ > 0 ? ", out of retries" : "");
            end_slot(s, DRAGON_WORKER_DIED, why);
        }
    }
    if (terminated_ || joined_) {
        return;
    }
    if (!was_ready) {
        if (++r.failed_starts >= 3) {
            break_pool("worker " + std::to_string(w) + " ended with code " + std::to_string(code) +
                       " before it was ready, 3 times");
        }
        if (!broken_.empty()) {
            return;
        }
    }
    dragon_status_t st = spawn(lock, w);
    if (st != DRAGON_SUCCESS) {
        break_pool(std::string("replacing worker ") + std::to_string(w) + ": " +
                   dragon_last_error());
    }
}

void Engine::check_timeouts(std::unique_lock<std::mutex> &lock, int64_t *next_deadline) {
    *next_deadline = -1;
    if (task_timeout_ns_ < 0) {
        return;
    }
    int64_t now = monotonic_ns();
    std::vector<uint64_t> kill;
    for (uint32_t s = 0; s < slots_.size(); ++s) {
        SlotRec &rec = slots_[s];
        if (!rec.busy || !rec.job || rec.timed_out) {
            continue;
        }
        uint64_t word = view_.words[s].load(std::memory_order_acquire);
        if (word_state(word) != kRunning || word_gen(word) != rec.gen) {
            continue;
        }
        auto start = static_cast<int64_t>(view_.start_ns[s].load(std::memory_order_acquire));
        if (start == 0) {
            start = now; // claimed, its clock not yet written
        }
        int64_t due = start + task_timeout_ns_;
        if (due <= now) {
            // Ends the worker only while it still holds this chunk (wire.hpp).
            uint32_t w = word_worker(word);
            if (view_.words[s].compare_exchange_strong(word, slot_word(kKilling, w, rec.gen))) {
                rec.timed_out = true;
                if (w < workers_.size() && workers_[w].alive) {
                    kill.push_back(workers_[w].puid);
                }
            }
        } else if (*next_deadline < 0 || due < *next_deadline) {
            *next_deadline = due;
        }
    }
    if (!kill.empty()) {
        lock.unlock();
        for (uint64_t p : kill) {
            dragon_process_stop(p, SIGKILL);
        }
        lock.lock();
    }
}

// ---- submitting -------------------------------------------------------------------------

// Queue one chunk whose message is in msg (or, block != nullptr, in that allocation of the
// pool, len bytes, handed over zero-copy), its header still to be written.
bool Engine::submit_chunk(const JobPtr &job, std::vector<unsigned char> &msg, size_t first,
                          uint32_t n, void *block, size_t block_len) {
    uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    SlotRec &rec = slots_[s];
    rec.job = job;
    rec.first = first;
    rec.n = n;
    ++rec.gen;
    rec.busy = true;
    rec.timed_out = false;
    rec.cancelled = false;
    rec.attempts = 0;
    TaskHeader th{};
    th.kind = kTask;
    th.slot = s;
    th.gen = rec.gen;
    th.n_items = n;
    th.name_len = static_cast<uint32_t>(job->task.size());
    auto *head = block != nullptr ? static_cast<unsigned char *>(block) : msg.data();
    std::memcpy(head, &th, sizeof th);
    view_.start_ns[s].store(0, std::memory_order_relaxed);
    view_.words[s].store(slot_word(kPending, 0, rec.gen), std::memory_order_release);
    job->running += n;
    dragon_status_t st =
        block != nullptr ? dragon_channel_send_mem(tasks_, block, block_len, DRAGON_TIMEOUT_TRY)
                         : dragon_channel_send(tasks_, msg.data(), msg.size(), DRAGON_TIMEOUT_TRY);
    if (st != DRAGON_SUCCESS) {
        if (block != nullptr) {
            dragon_pool_free(pool_, block);
        }
        // The one reason a send that never waits fails here: no room in the pool's memory.
        std::string why = std::string("task pool: a chunk of ") +
                          std::to_string(block != nullptr ? block_len : msg.size()) +
                          " bytes found no room in the pool's shared memory: raise pool_bytes (" +
                          dragon_last_error() + ")";
        end_slot(s, st == DRAGON_CLOSED ? st : DRAGON_NO_SPACE, why);
        return false;
    }
    if (max_retries_ > 0) {
        rec.msg = std::move(msg); // kept for a retry (never a block: see feed)
    }
    return true;
}

// Submit what the bounds allow: of every job with an array input, and of the callback input of
// job `only` (of every job: all), called with mu_ released, by one thread at a time.
void Engine::feed(std::unique_lock<std::mutex> &lock, const JobPtr &only, bool all) {
    if (terminated_ || destroyed_ || joined_) {
        return;
    }
    auto room = [&](const Job &j) -> size_t {
        if (j.max_in_flight == 0) {
            return SIZE_MAX;
        }
        return j.max_in_flight > j.undelivered() ? j.max_in_flight - j.undelivered() : 0;
    };
    for (size_t ji = 0; ji < jobs_.size(); ++ji) {
        JobPtr job = jobs_[ji]; // a copy: jobs_ may change while a callback runs
        if (job->input_done || job->drawing || (job->next != nullptr && job != only && !all)) {
            continue;
        }
        while (!job->input_done && !free_slots_.empty()) {
            size_t r = room(*job);
            if (r == 0) {
                break;
            }
            size_t want = std::min(job->chunksize, r);
            size_t first = job->drawn;
            size_t head = sizeof(TaskHeader) + job->task.size();
            // A large chunk of an array input is written once, straight into the pool, and
            // travels zero-copy (with retries on, a copy is kept, so it goes the usual way).
            if (job->next == nullptr && max_retries_ == 0) {
                size_t total = head;
                uint32_t k = 0;
                while (k < want && first + k < job->n) {
                    total += 4 + job->lens[first + k];
                    ++k;
                }
                void *block = nullptr;
                if (total > kSlotBytes &&
                    dragon_pool_alloc_timeout(pool_, total, DRAGON_TIMEOUT_TRY, &block) ==
                        DRAGON_SUCCESS) {
                    auto *p = static_cast<unsigned char *>(block);
                    // The name, not NUL-terminated on the wire (its length is in the header).
                    // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
                    std::memcpy(p + sizeof(TaskHeader), job->task.data(), job->task.size());
                    p += head;
                    for (uint32_t i = 0; i < k; ++i) {
                        size_t len = job->lens[first + i];
                        put_u32(p, static_cast<uint32_t>(len));
                        if (len != 0) {
                            std::memcpy(p, job->args[first + i], len);
                        }
                        p += len;
                    }
                    job->drawn += k;
                    if (job->drawn >= job->n) {
                        job->input_done = true;
                    }
                    std::vector<unsigned char> none;
                    submit_chunk(job, none, first, k, block, total);
                    continue;
                }
            }
            // Build one chunk's message.
            std::vector<unsigned char> msg(head);
            std::memcpy(msg.data() + sizeof(TaskHeader), job->task.data(), job->task.size());
            uint32_t n = 0;
            auto add = [&](const void *p, size_t len) {
                encode_item(&msg, std::string_view(static_cast<const char *>(p), len));
                ++n;
            };
            if (job->next == nullptr) {
                while (n < want && job->drawn + n < job->n) {
                    add(job->args[job->drawn + n], job->lens[job->drawn + n]);
                }
                if (job->drawn + n >= job->n) {
                    job->input_done = true;
                }
            } else {
                // The slot is reserved while the callback runs unlocked (other jobs feed too).
                uint32_t reserved = free_slots_.back();
                free_slots_.pop_back();
                job->drawing = true;
                lock.unlock();
                bool more = true;
                try {
                    while (n < want) {
                        const void *p = nullptr;
                        size_t len = 0;
                        if (job->next(job->user, &p, &len) == 0) {
                            more = false;
                            break;
                        }
                        add(p, len);
                    }
                } catch (...) { // a C++ callback that throws: its input ends there
                    more = false;
                }
                lock.lock();
                job->drawing = false;
                if (!more) {
                    job->input_done = true;
                }
                free_slots_.push_back(reserved); // taken again by submit_chunk below
                if (terminated_ || destroyed_) {
                    // Drawn and never run: they end cancelled.
                    deliver_all(*job, first, n, DRAGON_CANCELLED, "task pool: terminated");
                    job->drawn += n;
                    return;
                }
            }
            if (n == 0) {
                break;
            }
            job->drawn += n;
            submit_chunk(job, msg, first, n);
        }
    }
}

dragon_status_t Engine::submit(const std::string &task, const dragon_taskpool_input_t &in,
                               std::shared_ptr<void> keep, JobPtr *out) {
    auto job = std::make_shared<Job>();
    job->task = task;
    job->keep = std::move(keep);
    job->args = in.args;
    job->lens = in.lens;
    job->n = in.n;
    job->next = in.next;
    job->user = in.user;
    job->chunksize = in.chunksize == 0 ? 1 : in.chunksize;
    job->ordered = in.ordered != 0;
    job->max_in_flight = in.max_in_flight;
    if (job->next != nullptr && job->max_in_flight == 0) {
        job->max_in_flight = 64 * job->chunksize * workers_.size();
    }
    if (job->next == nullptr && job->n == 0) {
        job->input_done = true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_ || terminated_ || destroyed_) {
        return fail(DRAGON_CLOSED, "task pool: %s, no more submissions",
                    destroyed_    ? "destroyed"
                    : terminated_ ? "terminated"
                                  : "closed");
    }
    if (!broken_.empty()) {
        return fail(DRAGON_TASK_FAILED, "task pool: %s", broken_.c_str());
    }
    jobs_.push_back(job);
    feed(lock, job);
    *out = job;
    return DRAGON_SUCCESS;
}

// ---- results ----------------------------------------------------------------------------

dragon_status_t Engine::take(const JobPtr &job, dragon_timeout_t timeout,
                             dragon_taskpool_result_t *out, size_t cap, size_t elem,
                             size_t *count) {
    std::unique_lock<std::mutex> lock(mu_);
    *count = 0;
    job->held.clear(); // what the previous call's bytes pointed into
    if (destroyed_) {
        return fail(DRAGON_CLOSED, "task pool: destroyed");
    }
    detail::Deadline dl(timeout);
    auto front = [&]() -> Chunk * {
        if (job->ordered) {
            if (job->ready_ordered.empty()) {
                return nullptr;
            }
            Chunk *c = job->ready_ordered.begin()->second.get();
            return c->first + c->cursor == job->next_index ? c : nullptr;
        }
        return job->ready_fifo.empty() ? nullptr : job->ready_fifo.front().get();
    };
    dragon_status_t st =
        wait_until(lock, dl, job, [&]() { return front() != nullptr || job->all_delivered(); });
    if (st != DRAGON_SUCCESS && front() == nullptr) {
        return st == DRAGON_TIMEOUT ? fail(DRAGON_TIMEOUT, "task pool: no result in time") : st;
    }
    if (front() == nullptr) {
        return fail(DRAGON_NOT_FOUND, "task pool: every result was delivered");
    }
    while (*count < cap) {
        Chunk *c = front();
        if (c == nullptr) {
            break;
        }
        const Chunk::Entry &e = c->entries[c->cursor];
        dragon_taskpool_result_t r{};
        r.index = c->first + c->cursor;
        r.status = e.status;
        r.bytes = e.data;
        r.len = e.len;
        detail::store_element(r, out, *count, elem);
        ++*count;
        ++job->delivered;
        if (job->ordered) {
            ++job->next_index;
        }
        if (++c->cursor == c->entries.size()) {
            if (job->ordered) {
                auto it = job->ready_ordered.begin();
                job->held.push_back(std::move(it->second));
                job->ready_ordered.erase(it);
            } else {
                job->held.push_back(std::move(job->ready_fifo.front()));
                job->ready_fifo.pop_front();
            }
        }
    }
    feed(lock, job); // room for more
    return DRAGON_SUCCESS;
}

dragon_status_t Engine::wait(const JobPtr &job, dragon_timeout_t timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (destroyed_) {
        return fail(DRAGON_CLOSED, "task pool: destroyed");
    }
    detail::Deadline dl(timeout);
    dragon_status_t st = wait_until(lock, dl, job, [&]() {
        // A bounded callback input cannot end while its results wait to be taken.
        bool stuck = job->next != nullptr && job->max_in_flight != 0 &&
                     job->undelivered() >= job->max_in_flight && job->ended() == job->drawn;
        return job->complete() || stuck;
    });
    if (st == DRAGON_TIMEOUT) {
        return fail(DRAGON_TIMEOUT, "task pool: the job did not end in time");
    }
    return st;
}

void Engine::progress(const Job *job, dragon_taskpool_progress_t *p) {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t done = 0, failed = 0, running = 0, queued = 0;
    int input_done = 1;
    auto add = [&](const Job &j) {
        done += j.done;
        failed += j.failed;
        running += j.running;
        if (j.next == nullptr) {
            queued += j.n - j.drawn;
        }
        input_done &= j.input_done ? 1 : 0;
    };
    if (job != nullptr) {
        add(*job);
    } else {
        for (const auto &j : jobs_) {
            add(*j);
        }
    }
    dragon_taskpool_progress_t out{};
    out.struct_size = std::min(p->struct_size, sizeof out);
    out.done = done;
    out.failed = failed;
    out.running = running;
    out.queued = queued;
    out.input_done = input_done;
    std::memcpy(p, &out, out.struct_size);
}

// The pool cannot run tasks (why). With no worker left, what waits for one ends now.
void Engine::break_pool(const std::string &why) {
    if (broken_.empty()) {
        broken_ = why;
    }
    if (std::any_of(workers_.begin(), workers_.end(), [](const WorkerRec &r) { return r.alive; })) {
        return; // the others serve what is queued
    }
    std::string msg = "task pool: no worker left: " + broken_;
    for (const JobPtr &j : jobs_) {
        if (!j->input_done) {
            if (j->next == nullptr) {
                deliver_all(*j, j->drawn, j->n - j->drawn, DRAGON_WORKER_DIED, msg);
                j->drawn = j->n;
            }
            j->input_done = true;
        }
    }
    for (uint32_t s = 0; s < slots_.size(); ++s) {
        SlotRec &rec = slots_[s];
        uint64_t expect = slot_word(kPending, 0, rec.gen);
        if (rec.busy && rec.job &&
            view_.words[s].compare_exchange_strong(expect, slot_word(kCancelled, 0, rec.gen))) {
            end_items(rec, DRAGON_WORKER_DIED, msg);
        }
    }
    changed_.notify_all();
}

void Engine::cancel_locked(Job &job, const char *why) {
    // Not yet drawn: an array's items end cancelled now; a callback is not called again.
    if (!job.input_done) {
        if (job.next == nullptr) {
            deliver_all(job, job.drawn, job.n - job.drawn, DRAGON_CANCELLED, why);
            job.drawn = job.n;
        }
        job.input_done = true;
    }
    std::vector<uint64_t> kill;
    for (uint32_t s = 0; s < slots_.size(); ++s) {
        SlotRec &rec = slots_[s];
        if (!rec.busy || rec.job.get() != &job || rec.cancelled) {
            continue;
        }
        rec.cancelled = true;
        uint64_t expect = slot_word(kPending, 0, rec.gen);
        if (view_.words[s].compare_exchange_strong(expect, slot_word(kCancelled, 0, rec.gen))) {
            // Its items end now; the slot stays taken until a worker drops the message.
            end_items(rec, DRAGON_CANCELLED, "task pool: cancelled before it started");
            continue;
        }
        if (word_state(expect) == kRunning && word_gen(expect) == rec.gen) {
            uint32_t w = word_worker(expect);
            if (view_.words[s].compare_exchange_strong(expect, slot_word(kKilling, w, rec.gen)) &&
                w < workers_.size() && workers_[w].alive) {
                kill.push_back(workers_[w].puid);
            }
        } // DONE: its results come, and are delivered
    }
    for (uint64_t p : kill) {
        dragon_process_stop(p, SIGKILL); // its end ends the chunk (cancelled)
    }
}

dragon_status_t Engine::cancel(const JobPtr &job) {
    std::unique_lock<std::mutex> lock(mu_);
    if (destroyed_) {
        return fail(DRAGON_CLOSED, "task pool: destroyed");
    }
    cancel_locked(*job, "task pool: cancelled");
    changed_.notify_all();
    return DRAGON_SUCCESS;
}

void Engine::release(const JobPtr &job) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!job->complete()) {
        cancel_locked(*job, "task pool: released");
    }
    job->released = true;
    job->ready_ordered.clear();
    job->ready_fifo.clear();
    job->held.clear();
    jobs_.erase(std::remove(jobs_.begin(), jobs_.end(), job), jobs_.end());
}

// ---- the end ----------------------------------------------------------------------------

dragon_status_t Engine::close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    return DRAGON_SUCCESS;
}

dragon_status_t Engine::join(dragon_timeout_t timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!closed_ && !terminated_) {
        return fail(DRAGON_INVALID_ARGUMENT, "task pool: join before close (or terminate)");
    }
    detail::Deadline dl(timeout);
    // Every job to its end (callback inputs drawn here too; a job whose results wait to be
    // taken at its max_in_flight cannot end: the timeout says so).
    dragon_status_t st = wait_until(
        lock, dl, nullptr,
        [&]() {
            return std::all_of(jobs_.begin(), jobs_.end(),
                               [](const JobPtr &j) { return j->complete(); });
        },
        true);
    if (st != DRAGON_SUCCESS) {
        return st == DRAGON_TIMEOUT ? fail(DRAGON_TIMEOUT, "task pool: jobs still run") : st;
    }
    if (!joined_) {
        joined_ = true; // no replacements from now on
        TaskHeader stop{};
        stop.kind = kStop;
        for (const WorkerRec &w : workers_) {
            if (w.alive) {
                dragon_channel_send(tasks_, &stop, sizeof stop, DRAGON_TIMEOUT_TRY);
            }
        }
    }
    st = wait_until(lock, dl, nullptr, [&]() { return by_puid_.empty(); });
    if (st == DRAGON_TIMEOUT) {
        return fail(DRAGON_TIMEOUT, "task pool: %zu worker(s) still run", by_puid_.size());
    }
    return st;
}

dragon_status_t Engine::terminate() {
    std::vector<uint64_t> kill;
    {
        std::lock_guard<std::mutex> lock(mu_);
        terminated_ = true;
        closed_ = true;
        for (const JobPtr &j : jobs_) {
            cancel_locked(*j, "task pool: terminated");
        }
        for (const WorkerRec &w : workers_) {
            if (w.alive) {
                kill.push_back(w.puid);
            }
        }
    }
    for (uint64_t p : kill) {
        dragon_process_stop(p, SIGKILL);
    }
    // Wait (bounded) for their ends, so that nothing of theirs outlives the pool.
    std::unique_lock<std::mutex> lock(mu_);
    detail::Deadline dl(5'000'000'000LL);
    wait_until(lock, dl, nullptr, [&]() { return by_puid_.empty(); });
    // A chunk whose worker's end never came ends now.
    for (uint32_t s = 0; s < slots_.size(); ++s) {
        if (slots_[s].busy) {
            end_slot(s, DRAGON_CANCELLED, "task pool: terminated");
        }
    }
    changed_.notify_all();
    return DRAGON_SUCCESS;
}

void Engine::background() {
    while (!bg_stop_.load(std::memory_order_acquire)) {
        // The runtime's events (worker ends) come in through the endpoint; the eventfd ends
        // the wait when the pool stops. Every 5 ms at most, results are read too.
        struct pollfd p[2] = {{ep_->fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        int n = poll(p, 2, 5);
        if (n > 0 && (p[0].revents & POLLIN) != 0) {
            if (ep_->pump(0) == DRAGON_CLOSED) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
        }
        if (bg_stop_.load(std::memory_order_acquire)) {
            break;
        }
        if (waiting_.load(std::memory_order_relaxed) != 0) {
            continue; // a waiting thread reads the results
        }
        std::unique_lock<std::mutex> lock(mu_);
        if (!reading_ && !destroyed_) {
            read_results(lock, 0);
        }
    }
}

void Engine::stop_background() {
    if (bg_.joinable()) {
        bg_stop_.store(true, std::memory_order_release);
        uint64_t one = 1;
        ssize_t w = write(wake_fd_, &one, sizeof one);
        (void)w; // a full counter wakes it too
        bg_.join();
    }
}

dragon_status_t Engine::destroy() {
    bool need_terminate = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        need_terminate = !by_puid_.empty() && !terminated_;
    }
    if (need_terminate) {
        terminate();
    }
    stop_background();
    {
        std::lock_guard<std::mutex> lock(mu_);
        destroyed_ = true;
        for (const JobPtr &j : jobs_) {
            j->input_done = true;
            // Results that lie in the pool's memory go before it does.
            j->ready_ordered.clear();
            j->ready_fifo.clear();
            j->held.clear();
        }
    }
    changed_.notify_all();
    release_resources();
    return DRAGON_SUCCESS;
}

void Engine::release_resources() {
    stop_background();
    if (ep_ != nullptr && sub_id_ != 0) {
        ep_->unsubscribe(sub_id_);
        sub_id_ = 0;
    }
    // With every worker's end seen, nobody is inside the channels: they go with the pool (a
    // channel's own destruction waits a grace period for callers still inside). Otherwise
    // destroy them, which wakes a worker that still waits with DRAGON_CLOSED.
    bool alone = by_puid_.empty();
    for (dragon_channel_t **ch : {&tasks_, &results_}) {
        if (*ch != nullptr) {
            if (alone) {
                dragon_channel_detach(*ch);
            } else {
                dragon_channel_destroy(*ch);
            }
            *ch = nullptr;
        }
    }
    if (pool_ != nullptr) {
        dragon_pool_destroy(pool_);
        pool_ = nullptr;
        shared_ = nullptr;
    }
    if (wake_fd_ >= 0) {
        ::close(wake_fd_);
        wake_fd_ = -1;
    }
}

} // namespace dragon::taskpool

namespace tp = dragon::taskpool;

struct dragon_taskpool {
    std::shared_ptr<tp::Engine> engine;
};
struct dragon_taskpool_job {
    std::shared_ptr<tp::Engine> engine;
    tp::JobPtr job;
};

DRAGON_API dragon_status_t dragon_taskpool_attr_init(dragon_taskpool_attr_t *attr) {
    if (attr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_attr_init: attr is NULL");
    }
    *attr = dragon_taskpool_attr_t{};
    attr->struct_size = sizeof *attr;
    attr->policy_size = sizeof(dragon_policy_t);
    attr->task_timeout = DRAGON_TIMEOUT_FOREVER;
    attr->start_timeout = DRAGON_TIMEOUT_FOREVER;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_taskpool_input_init(dragon_taskpool_input_t *input) {
    if (input == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_input_init: input is NULL");
    }
    *input = dragon_taskpool_input_t{};
    input->struct_size = sizeof *input;
    input->chunksize = 1;
    input->ordered = 1;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_taskpool_create(const dragon_taskpool_attr_t *attr,
                                                  dragon_taskpool_t **pool) {
    return guarded("dragon_taskpool_create", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_create: pool is NULL");
        }
        *pool = nullptr;
        dragon_taskpool_attr_t a;
        dragon_taskpool_attr_init(&a);
        if (attr != nullptr) {
            if (attr->struct_size <
                offsetof(dragon_taskpool_attr_t, start_timeout) + sizeof(dragon_timeout_t)) {
                return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_create: initialise attr with "
                                                     "dragon_taskpool_attr_init");
            }
            std::memcpy(&a, attr, std::min(attr->struct_size, sizeof a));
        }
        auto engine = std::make_shared<tp::Engine>();
        if (dragon_status_t st = engine->create(a); st != DRAGON_SUCCESS) {
            engine->destroy();
            return st;
        }
        *pool = new dragon_taskpool{std::move(engine)};
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_taskpool_workers(const dragon_taskpool_t *pool, uint32_t *n) {
    if (pool == nullptr || n == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_workers: NULL argument");
    }
    *n = pool->engine->workers();
    return DRAGON_SUCCESS;
}

namespace {

dragon_status_t check_task(const char *where, const char *task) {
    if (task == nullptr || *task == '\0' || std::strlen(task) > tp::kMaxName) {
        return fail(DRAGON_INVALID_ARGUMENT, "%s: a task name of 1 to %zu bytes, please", where,
                    tp::kMaxName);
    }
    return DRAGON_SUCCESS;
}

} // namespace

DRAGON_API dragon_status_t dragon_taskpool_submit(dragon_taskpool_t *pool, const char *task,
                                                  const dragon_taskpool_input_t *input,
                                                  dragon_taskpool_job_t **job) {
    return guarded("dragon_taskpool_submit", [&]() -> dragon_status_t {
        if (pool == nullptr || input == nullptr || job == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_submit: NULL argument");
        }
        if (dragon_status_t st = check_task("dragon_taskpool_submit", task); st != DRAGON_SUCCESS) {
            return st;
        }
        dragon_taskpool_input_t in;
        dragon_taskpool_input_init(&in);
        std::memcpy(&in, input, std::min(input->struct_size, sizeof in));
        if (in.next == nullptr && in.n > 0 && (in.args == nullptr || in.lens == nullptr)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_taskpool_submit: an input of %zu items needs args and lens "
                        "(or a next callback)",
                        in.n);
        }
        tp::JobPtr j;
        if (dragon_status_t st = pool->engine->submit(task, in, nullptr, &j);
            st != DRAGON_SUCCESS) {
            return st;
        }
        *job = new dragon_taskpool_job{pool->engine, std::move(j)};
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_taskpool_apply_async(dragon_taskpool_t *pool, const char *task,
                                                       const void *arg, size_t len,
                                                       dragon_taskpool_job_t **job) {
    return guarded("dragon_taskpool_apply_async", [&]() -> dragon_status_t {
        if (pool == nullptr || job == nullptr || (arg == nullptr && len != 0)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_apply_async: NULL argument");
        }
        if (dragon_status_t st = check_task("dragon_taskpool_apply_async", task);
            st != DRAGON_SUCCESS) {
            return st;
        }
        // The job keeps its own copy of the argument; args/lens point into it.
        struct Single {
            std::vector<unsigned char> bytes;
            const void *arg = nullptr;
            size_t len = 0;
        };
        auto single = std::make_shared<Single>();
        const auto *b = static_cast<const unsigned char *>(arg);
        single->bytes.assign(b, b + len);
        single->arg = single->bytes.data();
        single->len = len;
        dragon_taskpool_input_t in;
        dragon_taskpool_input_init(&in);
        in.args = &single->arg;
        in.lens = &single->len;
        in.n = 1;
        tp::JobPtr j;
        if (dragon_status_t st = pool->engine->submit(task, in, single, &j); st != DRAGON_SUCCESS) {
            return st;
        }
        *job = new dragon_taskpool_job{pool->engine, std::move(j)};
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_taskpool_job_next(dragon_taskpool_job_t *job,
                                                    dragon_timeout_t timeout, size_t *index,
                                                    dragon_status_t *item_status,
                                                    const void **bytes, size_t *len) {
    return guarded("dragon_taskpool_job_next", [&]() -> dragon_status_t {
        if (job == nullptr || index == nullptr || item_status == nullptr || bytes == nullptr ||
            len == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_job_next: NULL argument");
        }
        dragon_taskpool_result_t r{};
        size_t n = 0;
        dragon_status_t st = job->engine->take(job->job, timeout, &r, 1, sizeof r, &n);
        if (st == DRAGON_SUCCESS) {
            *index = r.index;
            *item_status = r.status;
            *bytes = r.bytes;
            *len = r.len;
        }
        return st;
    });
}

DRAGON_API dragon_status_t dragon_taskpool_job_next_many(dragon_taskpool_job_t *job,
                                                         dragon_timeout_t timeout,
                                                         dragon_taskpool_result_t *results,
                                                         size_t cap, size_t result_size,
                                                         size_t *count) {
    return guarded("dragon_taskpool_job_next_many", [&]() -> dragon_status_t {
        if (job == nullptr || count == nullptr || (results == nullptr && cap != 0) || cap == 0) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_taskpool_job_next_many: a job, room for at least one result and "
                        "a count, please");
        }
        if (dragon_status_t st = dragon::detail::check_element_size(
                result_size, sizeof(dragon_taskpool_result_t), cap, "dragon_taskpool_job_next_many",
                "result_size", "dragon_taskpool_result_t");
            st != DRAGON_SUCCESS) {
            return st;
        }
        return job->engine->take(job->job, timeout, results, cap, result_size, count);
    });
}

DRAGON_API dragon_status_t dragon_taskpool_job_wait(dragon_taskpool_job_t *job,
                                                    dragon_timeout_t timeout) {
    return guarded("dragon_taskpool_job_wait", [&]() -> dragon_status_t {
        if (job == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_job_wait: job is NULL");
        }
        return job->engine->wait(job->job, timeout);
    });
}

DRAGON_API dragon_status_t dragon_taskpool_progress(dragon_taskpool_t *pool,
                                                    const dragon_taskpool_job_t *job,
                                                    dragon_taskpool_progress_t *progress) {
    return guarded("dragon_taskpool_progress", [&]() -> dragon_status_t {
        if ((pool == nullptr && job == nullptr) || progress == nullptr ||
            progress->struct_size < sizeof(size_t)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_taskpool_progress: a pool or a job, and progress with "
                        "struct_size set");
        }
        auto &engine = job != nullptr ? job->engine : pool->engine;
        engine->progress(job != nullptr ? job->job.get() : nullptr, progress);
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_taskpool_job_cancel(dragon_taskpool_job_t *job) {
    return guarded("dragon_taskpool_job_cancel", [&]() -> dragon_status_t {
        if (job == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_job_cancel: job is NULL");
        }
        return job->engine->cancel(job->job);
    });
}

DRAGON_API dragon_status_t dragon_taskpool_job_release(dragon_taskpool_job_t *job) {
    return guarded("dragon_taskpool_job_release", [&]() -> dragon_status_t {
        if (job == nullptr) {
            return DRAGON_SUCCESS;
        }
        job->engine->release(job->job);
        delete job;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_taskpool_close(dragon_taskpool_t *pool) {
    return guarded("dragon_taskpool_close", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_close: pool is NULL");
        }
        return pool->engine->close();
    });
}

DRAGON_API dragon_status_t dragon_taskpool_join(dragon_taskpool_t *pool, dragon_timeout_t timeout) {
    return guarded("dragon_taskpool_join", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_join: pool is NULL");
        }
        return pool->engine->join(timeout);
    });
}

DRAGON_API dragon_status_t dragon_taskpool_terminate(dragon_taskpool_t *pool) {
    return guarded("dragon_taskpool_terminate", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_taskpool_terminate: pool is NULL");
        }
        return pool->engine->terminate();
    });
}

DRAGON_API dragon_status_t dragon_taskpool_destroy(dragon_taskpool_t *pool) {
    return guarded("dragon_taskpool_destroy", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return DRAGON_SUCCESS;
        }
        dragon_status_t st = pool->engine->destroy();
        delete pool;
        return st;
    });
}
