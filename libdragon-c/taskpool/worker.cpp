// The task pool's worker side (include/dragon/taskpool.h, docs/taskpool.md): the table of
// registered tasks, the running task's context, and the loop a worker serves tasks in.
#include "worker.hpp"

#include "wire.hpp"

#include "../common/clock.hpp"
#include "../common/error.hpp"

#include <dragon/channel.h>
#include <dragon/pool.h>
#include <dragon/taskpool.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::guarded;

struct dragon_task_ctx {
    std::string result;
    std::string error;
    bool failed = false;
};

namespace dragon::taskpool {
namespace {

struct TaskEntry {
    dragon_task_fn_t fn = nullptr;
    void *user = nullptr;
};

std::mutex &tasks_mutex() {
    static std::mutex m;
    return m;
}
std::unordered_map<std::string, TaskEntry> &tasks() {
    static std::unordered_map<std::string, TaskEntry> t;
    return t;
}

bool find_task(const std::string &name, TaskEntry *out) {
    std::lock_guard<std::mutex> lock(tasks_mutex());
    auto it = tasks().find(name);
    if (it == tasks().end()) {
        return false;
    }
    *out = it->second;
    return true;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

// The worker's environment, read once: nullptr outside a worker.
const std::string *worker_env() {
    static const std::string *env = []() -> const std::string * {
        const char *v = std::getenv(kWorkerEnv);
        return v != nullptr ? new std::string(v) : nullptr;
    }();
    return env;
}

[[noreturn]] void leave(int code) {
    std::fflush(nullptr);
    _exit(code);
}

[[noreturn]] void die(const char *what) {
    std::fprintf(stderr, "task pool worker %d: %s: %s\n", static_cast<int>(getpid()), what,
                 dragon_last_error());
    leave(70);
}

// Run one item: the task's status and its bytes (result or message).
dragon_status_t run_item(const TaskEntry &t, const std::string &name, const unsigned char *arg,
                         size_t len, std::string *out) {
    dragon_task_ctx ctx;
    dragon_status_t st = t.fn(arg, len, &ctx, t.user);
    if (st == DRAGON_SUCCESS && !ctx.failed) {
        *out = std::move(ctx.result);
        return DRAGON_SUCCESS;
    }
    if (ctx.failed) {
        *out = std::move(ctx.error);
    } else {
        const char *why = dragon_last_error();
        *out = (why != nullptr && *why != '\0') ? why : dragon_strerror(st);
    }
    *out = "task '" + name + "': " + *out;
    return DRAGON_TASK_FAILED;
}

// Watch the owner: when it ends, unlink the pool's segment (nobody else will) and exit, even
// in the middle of a task.
void watch_owner(pid_t owner, std::string segment) {
    int fd = static_cast<int>(syscall(SYS_pidfd_open, owner, 0));
    if (fd < 0 && errno != ESRCH) {
        return; // cannot watch (an old kernel): the channel's destruction still ends us
    }
    std::thread([fd, segment = std::move(segment)]() {
        if (fd >= 0) {
            struct pollfd p {
                fd, POLLIN, 0
            };
            while (poll(&p, 1, -1) < 0 && errno == EINTR) {
            }
        }
        shm_unlink(segment.c_str());
        leave(0);
    }).detach();
}

} // namespace

bool is_worker() {
    return worker_env() != nullptr;
}

// The environment: v1:<index>:<owner pid>:<n_slots>:<hex task ch>:<hex result ch>:
// <hex shared mem>:<hex initializer name>:<hex initializer arg>
struct Env {
    uint32_t index = 0;
    pid_t owner = 0;
    uint32_t n_slots = 0;
    std::vector<unsigned char> tasks, results, shared, init_name, init_arg;
};

std::string to_hex(const void *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(2 * n);
    const auto *b = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; ++i) {
        s.push_back(digits[b[i] >> 4]);
        s.push_back(digits[b[i] & 0xf]);
    }
    return s;
}

namespace {

bool from_hex(const std::string &s, std::vector<unsigned char> *out) {
    if (s.size() % 2 != 0) {
        return false;
    }
    out->clear();
    for (size_t i = 0; i < s.size(); i += 2) {
        int hi = hex_digit(s[i]);
        int lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out->push_back(static_cast<unsigned char>(hi * 16 + lo));
    }
    return true;
}

bool parse_env(const std::string &v, Env *e) {
    std::vector<std::string> f;
    size_t start = 0;
    for (;;) {
        size_t colon = v.find(':', start);
        f.push_back(v.substr(start, colon == std::string::npos ? colon : colon - start));
        if (colon == std::string::npos) {
            break;
        }
        start = colon + 1;
    }
    if (f.size() != 9 || f[0] != "v1") {
        return false;
    }
    char *end = nullptr;
    e->index = static_cast<uint32_t>(std::strtoul(f[1].c_str(), &end, 10));
    e->owner = static_cast<pid_t>(std::strtol(f[2].c_str(), &end, 10));
    e->n_slots = static_cast<uint32_t>(std::strtoul(f[3].c_str(), &end, 10));
    return from_hex(f[4], &e->tasks) && from_hex(f[5], &e->results) && from_hex(f[6], &e->shared) &&
           from_hex(f[7], &e->init_name) && from_hex(f[8], &e->init_arg) && e->owner > 0 &&
           e->n_slots > 0;
}

dragon_status_t send_result(dragon_channel_t *ch, const ResultHeader &h,
                            const std::vector<unsigned char> *body = nullptr,
                            dragon_timeout_t timeout = DRAGON_TIMEOUT_FOREVER) {
    std::vector<unsigned char> msg(sizeof h + (body != nullptr ? body->size() : 0));
    std::memcpy(msg.data(), &h, sizeof h);
    if (body != nullptr && !body->empty()) {
        std::memcpy(msg.data() + sizeof h, body->data(), body->size());
    }
    return dragon_channel_send(ch, msg.data(), msg.size(), timeout);
}

// Send a chunk's results: a message that fits a slot is copied there; a larger one is written
// once, straight into an allocation of the pool, and handed over zero-copy (the owner reads
// the results in place). If the pool has no room for it (the owner frees room as it reads, so
// this waits a while), each item ends DRAGON_NO_SPACE, saying so, in a message of a slot.
constexpr dragon_timeout_t kResultRoomNs = 10'000'000'000LL;

using Outs = std::vector<std::pair<int32_t, std::string>>;

dragon_status_t send_results(dragon_channel_t *ch, dragon_pool_t *pool, const ResultHeader &h,
                             const Outs &outs) {
    size_t total = sizeof h;
    for (const auto &o : outs) {
        total += 8 + o.second.size();
    }
    auto write = [&](unsigned char *p) {
        std::memcpy(p, &h, sizeof h);
        p += sizeof h;
        for (const auto &o : outs) {
            p = write_result_item(p, o.first, o.second);
        }
    };
    dragon_status_t st = DRAGON_SUCCESS;
    if (total <= kSlotBytes) {
        unsigned char small[kSlotBytes];
        write(small);
        return dragon_channel_send(ch, small, total, DRAGON_TIMEOUT_FOREVER);
    }
    void *block = nullptr;
    st = dragon_pool_alloc_timeout(pool, total, kResultRoomNs, &block);
    if (st == DRAGON_SUCCESS) {
        write(static_cast<unsigned char *>(block));
        st = dragon_channel_send_mem(ch, block, total, DRAGON_TIMEOUT_FOREVER);
        if (st == DRAGON_SUCCESS || st == DRAGON_CLOSED) {
            return st;
        }
        dragon_pool_free(pool, block);
    }
    std::string inner = dragon_last_error();
    dragon_pool_stats_t stats{};
    stats.struct_size = sizeof stats;
    dragon_pool_stats(pool, &stats);
    char why[512];
    std::snprintf(why, sizeof why,
                  "task pool: the results (%zu bytes) found no room in the pool's %llu bytes of "
                  "shared memory: raise pool_bytes (%s)",
                  total, static_cast<unsigned long long>(stats.total_bytes), inner.c_str());
    std::vector<unsigned char> msg(sizeof h);
    std::memcpy(msg.data(), &h, sizeof h);
    for (uint32_t i = 0; i < h.n_items; ++i) {
        encode_result_item(&msg, DRAGON_NO_SPACE, why);
    }
    return dragon_channel_send(ch, msg.data(), msg.size(), DRAGON_TIMEOUT_FOREVER);
}

} // namespace

[[noreturn]] void serve() {
    Env env;
    if (!parse_env(*worker_env(), &env)) {
        std::fprintf(stderr, "task pool worker: %s is malformed\n", kWorkerEnv);
        leave(70);
    }
    unsetenv(kWorkerEnv); // processes this worker starts are not workers
    dragon_channel_t *tasks_ch = nullptr;
    dragon_channel_t *results_ch = nullptr;
    if (dragon_channel_attach(env.tasks.data(), env.tasks.size(), nullptr, &tasks_ch) !=
            DRAGON_SUCCESS ||
        dragon_channel_attach(env.results.data(), env.results.size(), nullptr, &results_ch) !=
            DRAGON_SUCCESS) {
        die("cannot attach the pool's channels");
    }
    dragon_pool_t *pool = nullptr;
    void *base = nullptr;
    size_t size = 0;
    const char *segment = nullptr;
    if (dragon_channel_pool(tasks_ch, &pool) != DRAGON_SUCCESS ||
        dragon_pool_mem_attach(pool, env.shared.data(), env.shared.size(), &base, &size) !=
            DRAGON_SUCCESS ||
        dragon_pool_segment_name(pool, &segment) != DRAGON_SUCCESS) {
        die("cannot attach the pool's shared state");
    }
    SharedView view = SharedView::of(base, env.n_slots);
    if (view.header->magic != kMagic || view.header->version != kWireVersion ||
        env.index >= view.header->n_workers) {
        std::fprintf(stderr, "task pool worker: the shared state is of another version\n");
        leave(70);
    }
    watch_owner(env.owner, segment);
    const uint32_t max_items = view.header->max_tasks_per_child;

    ResultHeader h{};
    h.worker = env.index;
    if (!env.init_name.empty()) {
        std::string name(env.init_name.begin(), env.init_name.end());
        TaskEntry t;
        std::string out;
        dragon_status_t st = DRAGON_TASK_FAILED;
        if (!find_task(name, &t)) {
            out = "initializer '" + name +
                  "' is not a registered task in this worker (register it before "
                  "dragon_taskpool_serve_if_worker)";
        } else {
            st = run_item(t, name, env.init_arg.data(), env.init_arg.size(), &out);
        }
        if (st != DRAGON_SUCCESS) {
            h.kind = kInitFailed;
            h.n_items = 1;
            std::vector<unsigned char> body;
            encode_result_item(&body, st, out);
            send_result(results_ch, h, &body);
            leave(1);
        }
    }
    h.kind = kReady;
    h.aux = static_cast<uint64_t>(getpid());
    if (send_result(results_ch, h) != DRAGON_SUCCESS) {
        die("cannot reach the pool's owner");
    }

    std::vector<unsigned char> buf(size_t{64} * 1024);
    Outs outs;
    std::string cached_name;
    TaskEntry cached{};
    bool cached_found = false;
    uint64_t items_run = 0;
    TaskView task;
    for (;;) {
        size_t len = 0;
        void *big = nullptr;
        const unsigned char *msg = buf.data();
        dragon_status_t st =
            dragon_channel_recv(tasks_ch, buf.data(), buf.size(), &len, DRAGON_TIMEOUT_FOREVER);
        if (st == DRAGON_BUFFER_TOO_SMALL) {
            st = dragon_channel_recv_mem(tasks_ch, &big, &len, DRAGON_TIMEOUT_FOREVER);
            msg = static_cast<const unsigned char *>(big);
        }
        if (st == DRAGON_CLOSED) {
            leave(0); // the pool was destroyed
        }
        if (st != DRAGON_SUCCESS || len < sizeof(TaskHeader)) {
            die("cannot receive a task");
        }
        bool well_formed = decode_task(msg, len, &task);
        const TaskHeader &th = task.header;
        if (th.kind == kStop) {
            leave(0);
        }
        // Claim the chunk; a cancelled one (or a stale message) is reported and not run.
        uint64_t expect = slot_word(kPending, 0, th.gen);
        if (th.slot >= env.n_slots ||
            !view.words[th.slot].compare_exchange_strong(
                expect, slot_word(kRunning, env.index, th.gen), std::memory_order_acq_rel)) {
            ResultHeader d{};
            d.kind = kDropped;
            d.slot = th.slot;
            d.gen = th.gen;
            d.worker = env.index;
            if (big != nullptr) {
                dragon_pool_free(pool, big);
            }
            send_result(results_ch, d);
            continue;
        }
        view.start_ns[th.slot].store(static_cast<uint64_t>(detail::monotonic_ns()),
                                     std::memory_order_release);
        outs.clear();
        uint32_t n_out = 0;
        if (well_formed) {
            std::string name(task.name);
            if (name != cached_name) {
                cached_name = name;
                cached_found = find_task(name, &cached);
            }
            std::string out;
            for (std::string_view item : task.items) {
                dragon_status_t ist = DRAGON_TASK_FAILED;
                if (!cached_found) {
                    out = "no task named '" + name +
                          "' is registered in this worker (register it before "
                          "dragon_taskpool_serve_if_worker)";
                } else {
                    ist =
                        run_item(cached, name, reinterpret_cast<const unsigned char *>(item.data()),
                                 item.size(), &out);
                }
                outs.emplace_back(static_cast<int32_t>(ist), std::move(out));
                out.clear();
            }
            n_out = th.n_items;
        } // else: no items, and the owner ends the chunk's items as malformed
        if (big != nullptr) {
            dragon_pool_free(pool, big);
        }
        items_run += n_out;
        view.workers[env.index].items.fetch_add(n_out, std::memory_order_relaxed);
        ResultHeader r{};
        r.kind = kResult;
        r.slot = th.slot;
        r.gen = th.gen;
        r.worker = env.index;
        r.n_items = n_out;
        r.code = well_formed ? DRAGON_SUCCESS : DRAGON_MALFORMED;
        uint64_t running = slot_word(kRunning, env.index, th.gen);
        if (!view.words[th.slot].compare_exchange_strong(
                running, slot_word(kDone, env.index, th.gen), std::memory_order_acq_rel)) {
            leave(0); // KILLING: the owner ends this worker for this chunk (wire.hpp)
        }
        if (send_results(results_ch, pool, r, outs) != DRAGON_SUCCESS) {
            die("cannot send a result");
        }
        if (max_items != 0 && items_run >= max_items) {
            ResultHeader q{};
            q.kind = kRetired;
            q.worker = env.index;
            send_result(results_ch, q);
            leave(0);
        }
    }
}

} // namespace dragon::taskpool

namespace tp = dragon::taskpool;

DRAGON_API dragon_status_t dragon_task_register(const char *name, dragon_task_fn_t fn, void *user) {
    return guarded("dragon_task_register", [&]() -> dragon_status_t {
        if (name == nullptr || *name == '\0' || std::strlen(name) > tp::kMaxName || fn == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_task_register: a name of 1 to %zu bytes and a function, please",
                        tp::kMaxName);
        }
        std::lock_guard<std::mutex> lock(tp::tasks_mutex());
        if (!tp::tasks().emplace(name, tp::TaskEntry{fn, user}).second) {
            return fail(DRAGON_ALREADY_EXISTS, "dragon_task_register: task '%s' is registered",
                        name);
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_task_return(dragon_task_ctx_t *ctx, const void *bytes,
                                              size_t len) {
    return guarded("dragon_task_return", [&]() -> dragon_status_t {
        if (ctx == nullptr || (bytes == nullptr && len != 0)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_task_return: no context, or no bytes");
        }
        ctx->result.assign(static_cast<const char *>(bytes), len);
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_task_fail(dragon_task_ctx_t *ctx, const char *message) {
    return guarded("dragon_task_fail", [&]() -> dragon_status_t {
        if (ctx == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_task_fail: no context");
        }
        ctx->failed = true;
        ctx->error = message != nullptr ? message : "failed";
        return DRAGON_SUCCESS;
    });
}

DRAGON_API int dragon_taskpool_is_worker(void) {
    return tp::is_worker() ? 1 : 0;
}

DRAGON_API dragon_status_t dragon_taskpool_serve_if_worker(void) {
    if (!tp::is_worker()) {
        return DRAGON_SUCCESS;
    }
    tp::serve();
}
