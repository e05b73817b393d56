// libdragon C++ — the task pool (dragon::TaskPool): typed tasks registered by name, run by
// worker processes the runtime starts; map, map_async, imap, imap_unordered, apply_async.
// Header-only over dragon/taskpool.h; docs/taskpool.md.
//
//   auto square = dragon::task("square", [](int x) { return x * x; });
//   int main() {
//       dragon::TaskPool::serve_if_worker(); // a worker serves here and exits
//       dragon::TaskPool pool;               // one worker per granted CPU
//       std::vector<int> squares = pool.map(square, std::vector<int>{1, 2, 3});
//   }
//
// Arguments and results travel as bytes: trivially copyable types, std::string and
// std::vector of trivially copyable types as they are; another type through a specialisation
// of dragon::Serializer<T> (static void put(const T &, std::string &out); static T get(const
// void *, std::size_t)).
#ifndef DRAGON_TASKPOOL_HPP
#define DRAGON_TASKPOOL_HPP

#include <dragon/channel.hpp>
#include <dragon/error.hpp>
#include <dragon/machine.hpp>
#include <dragon/serializer.hpp>
#include <dragon/taskpool.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dragon {

// An item that did not end well: its status (DRAGON_TASK_FAILED, DRAGON_TIMEOUT,
// DRAGON_WORKER_DIED, DRAGON_CANCELLED), its message and its place in the input.
class TaskError : public Error {
  public:
    TaskError(dragon_status_t st, const std::string &message, std::size_t index)
        : Error(st, message), index_(index) {}
    std::size_t index() const noexcept { return index_; }

  private:
    std::size_t index_;
};

template <typename Signature>
class Task;

// A registered task: its name, and the types it takes and gives.
template <typename R, typename A>
class Task<R(A)> {
  public:
    explicit Task(std::string name) : name_(std::move(name)) {}
    const std::string &name() const noexcept { return name_; }

  private:
    std::string name_;
};

namespace detail {

template <typename T>
struct callable_traits : callable_traits<decltype(&T::operator())> {};
template <typename C, typename R, typename A>
struct callable_traits<R (C::*)(A) const> {
    using result = R;
    using arg = std::decay_t<A>;
};
template <typename C, typename R, typename A>
struct callable_traits<R (C::*)(A)> {
    using result = R;
    using arg = std::decay_t<A>;
};
template <typename R, typename A>
struct callable_traits<R (*)(A)> {
    using result = R;
    using arg = std::decay_t<A>;
};

template <typename R>
using wire_t = std::conditional_t<std::is_void_v<R>, Nothing, R>;

template <typename T>
std::string to_bytes(const T &v) {
    std::string s;
    Serializer<T>::put(v, s);
    return s;
}

template <typename R, typename A, typename F>
struct TaskBody {
    F f;
    static dragon_status_t run(const void *arg, std::size_t len, dragon_task_ctx_t *ctx,
                               void *user) {
        auto *self = static_cast<TaskBody *>(user);
        try {
            A a = Serializer<A>::get(arg, len);
            if constexpr (std::is_void_v<R>) {
                self->f(std::move(a));
                return DRAGON_SUCCESS;
            } else {
                std::string out = to_bytes<R>(self->f(std::move(a)));
                return dragon_task_return(ctx, out.data(), out.size());
            }
        } catch (const std::exception &e) {
            dragon_task_fail(ctx, e.what());
        } catch (...) {
            dragon_task_fail(ctx, "an exception that is not a std::exception");
        }
        return DRAGON_TASK_FAILED;
    }
};

inline void throw_item(dragon_status_t st, const void *bytes, std::size_t len, std::size_t index) {
    throw TaskError(st, std::string(static_cast<const char *>(bytes), len), index);
}

// A job handle (shared by the result objects below).
class JobHandle {
  public:
    JobHandle() = default;
    explicit JobHandle(dragon_taskpool_job_t *j) : j_(j) {}
    ~JobHandle() { dragon_taskpool_job_release(j_); }
    JobHandle(JobHandle &&o) noexcept : j_(std::exchange(o.j_, nullptr)) {}
    JobHandle &operator=(JobHandle &&o) noexcept {
        if (this != &o) {
            dragon_taskpool_job_release(j_);
            j_ = std::exchange(o.j_, nullptr);
        }
        return *this;
    }
    JobHandle(const JobHandle &) = delete;
    JobHandle &operator=(const JobHandle &) = delete;
    dragon_taskpool_job_t *get() const noexcept { return j_; }

    // The next result: false when all were delivered; throws Error(DRAGON_TIMEOUT).
    bool next(dragon_timeout_t timeout, std::size_t *index, dragon_status_t *st, const void **bytes,
              std::size_t *len) const {
        dragon_status_t s = dragon_taskpool_job_next(j_, timeout, index, st, bytes, len);
        if (s == DRAGON_NOT_FOUND) {
            return false;
        }
        check(s);
        return true;
    }
    // Up to cap results at once: false when all were delivered.
    bool next_many(dragon_timeout_t timeout, dragon_taskpool_result_t *out, std::size_t cap,
                   std::size_t *count) const {
        dragon_status_t s =
            dragon_taskpool_job_next_many(j_, timeout, out, cap, sizeof *out, count);
        if (s == DRAGON_NOT_FOUND) {
            return false;
        }
        check(s);
        return true;
    }
    bool wait(dragon_timeout_t timeout) const {
        dragon_status_t s = dragon_taskpool_job_wait(j_, timeout);
        if (s == DRAGON_TIMEOUT) {
            return false;
        }
        check(s);
        return true;
    }
    void cancel() const { check(dragon_taskpool_job_cancel(j_)); }

  private:
    dragon_taskpool_job_t *j_ = nullptr;
};

} // namespace detail

// Register `f` (a callable of one argument) as task `name` in this process; do it in every
// process of the program (before TaskPool::serve_if_worker), e.g. as a global.
template <typename F>
auto task(const std::string &name, F f) {
    using traits = detail::callable_traits<std::decay_t<F>>;
    using R = typename traits::result;
    using A = typename traits::arg;
    using Body = detail::TaskBody<R, A, std::decay_t<F>>;
    auto *body = new Body{std::move(f)}; // lives as long as the process
    dragon_status_t st = dragon_task_register(name.c_str(), &Body::run, body);
    if (st != DRAGON_SUCCESS) {
        delete body;
        detail::check(st);
    }
    return Task<R(A)>(name);
}

struct TaskPoolProgress {
    std::uint64_t done = 0;    // ended well
    std::uint64_t failed = 0;  // ended otherwise
    std::uint64_t running = 0; // with the workers
    std::uint64_t queued = 0;  // not yet submitted (array inputs)
    bool input_done = false;
};

// One item's result, later (apply_async).
template <typename R>
class AsyncResult {
  public:
    explicit AsyncResult(detail::JobHandle j) : j_(std::move(j)) {}
    // The result; throws TaskError if the task did not end well, Error(DRAGON_TIMEOUT).
    template <typename Timeout = Forever>
    R get(Timeout timeout = forever) {
        if (!value_) {
            std::size_t index = 0, len = 0;
            dragon_status_t st = DRAGON_SUCCESS;
            const void *bytes = nullptr;
            if (!j_.next(detail::timeout_of(timeout), &index, &st, &bytes, &len)) {
                throw Error(DRAGON_NOT_FOUND, "task pool: the result was taken already");
            }
            if (st != DRAGON_SUCCESS) {
                detail::throw_item(st, bytes, len, index);
            }
            value_ = Serializer<detail::wire_t<R>>::get(bytes, len);
        }
        if constexpr (!std::is_void_v<R>) {
            return *value_;
        }
    }
    bool ready() { return j_.wait(0); }
    template <typename Timeout = Forever>
    bool wait(Timeout timeout = forever) {
        return j_.wait(detail::timeout_of(timeout));
    }
    void cancel() { j_.cancel(); }

  private:
    detail::JobHandle j_;
    std::optional<detail::wire_t<R>> value_;
};

// Every item's result, later (map_async); the inputs are kept until the job ends.
template <typename R>
class MapResult {
  public:
    MapResult(detail::JobHandle j, std::shared_ptr<void> inputs, std::size_t n)
        : j_(std::move(j)), inputs_(std::move(inputs)), n_(n) {}
    // The results in input order; throws the first item's TaskError that did not end well
    // (again at every later call), or Error(DRAGON_TIMEOUT), keeping what came so far for the
    // next call.
    template <typename Timeout = Forever>
    std::vector<detail::wire_t<R>> get(Timeout timeout = forever) {
        if (error_) {
            std::rethrow_exception(error_);
        }
        dragon_timeout_t t = detail::timeout_of(timeout);
        auto start = std::chrono::steady_clock::now();
        std::vector<detail::wire_t<R>> &out = got_;
        out.reserve(n_);
        while (!complete_) {
            dragon_timeout_t left = t;
            if (t >= 0) {
                auto spent = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count();
                left = spent >= t ? 0 : t - spent;
            }
            dragon_taskpool_result_t batch[256];
            std::size_t n = 0;
            if (!j_.next_many(left, batch, 256, &n)) {
                complete_ = true;
                break;
            }
            for (std::size_t i = 0; i < n; ++i) {
                if (batch[i].status != DRAGON_SUCCESS) {
                    error_ = std::make_exception_ptr(TaskError(
                        batch[i].status,
                        std::string(static_cast<const char *>(batch[i].bytes), batch[i].len),
                        batch[i].index));
                    std::rethrow_exception(error_);
                }
                out.push_back(Serializer<detail::wire_t<R>>::get(batch[i].bytes, batch[i].len));
            }
        }
        return out;
    }
    bool ready() { return j_.wait(0); }
    template <typename Timeout = Forever>
    bool wait(Timeout timeout = forever) {
        return j_.wait(detail::timeout_of(timeout));
    }
    void cancel() { j_.cancel(); }
    TaskPoolProgress progress() const;

  private:
    detail::JobHandle j_;
    std::shared_ptr<void> inputs_;
    std::size_t n_;
    std::vector<detail::wire_t<R>> got_; // results taken so far
    std::exception_ptr error_;           // the first item that did not end well
    bool complete_ = false;
};

// Results as they come (imap: in input order; imap_unordered: as they end). The input is
// drawn as results are taken, at most max_in_flight items ahead.
template <typename R>
class Imap {
  public:
    struct Source {
        std::function<bool(std::string &)> next; // serialise the next item; false: no more
        std::string current;
        std::exception_ptr error; // what the input threw: it ends there, next() rethrows it
        static int call(void *user, const void **arg, std::size_t *len) noexcept {
            auto *s = static_cast<Source *>(user);
            try {
                s->current.clear();
                if (!s->next(s->current)) {
                    return 0;
                }
            } catch (...) {
                s->error = std::current_exception();
                return 0;
            }
            *arg = s->current.data();
            *len = s->current.size();
            return 1;
        }
    };
    Imap(detail::JobHandle j, std::unique_ptr<Source> src)
        : src_(std::move(src)), j_(std::move(j)) {}

    // The next result with its input index; nothing when all were delivered. Throws the
    // item's TaskError if it did not end well, Error(DRAGON_TIMEOUT), and, after the items
    // drawn before it, what the input threw.
    template <typename Timeout = Forever>
    std::optional<std::pair<std::size_t, detail::wire_t<R>>> next(Timeout timeout = forever) {
        std::size_t index = 0, len = 0;
        dragon_status_t st = DRAGON_SUCCESS;
        const void *bytes = nullptr;
        if (!j_.next(detail::timeout_of(timeout), &index, &st, &bytes, &len)) {
            if (src_->error) {
                std::rethrow_exception(std::exchange(src_->error, nullptr));
            }
            return std::nullopt;
        }
        if (st != DRAGON_SUCCESS) {
            detail::throw_item(st, bytes, len, index);
        }
        return std::make_pair(index, Serializer<detail::wire_t<R>>::get(bytes, len));
    }
    void cancel() { j_.cancel(); }
    TaskPoolProgress progress() const;

  private:
    std::unique_ptr<Source> src_; // outlives the job handle (declared first)
    detail::JobHandle j_;
};

struct TaskPoolOptions {
    std::uint32_t workers = 0;    // 0: the CPUs granted to this job
    std::vector<Policy> policies; // or: processes_per_policy workers for each of these
    std::uint32_t processes_per_policy = 1;
    std::vector<std::string> worker_command; // empty: this program
    std::string initializer;                 // a task run once in each worker
    std::string initializer_arg;             // its argument's bytes
    std::uint32_t max_tasks_per_child = 0;
    std::uint32_t max_retries = 0;
    std::optional<std::chrono::nanoseconds> task_timeout;
    std::size_t max_in_flight = 0;
    std::size_t pool_bytes = 0;

    template <typename R, typename A>
    TaskPoolOptions &initialize_with(const Task<R(A)> &t, const A &arg) {
        initializer = t.name();
        initializer_arg = detail::to_bytes(arg);
        return *this;
    }
};

class TaskPool {
  public:
    // In main, after every task is registered: a worker serves tasks and exits here.
    static void serve_if_worker() { detail::check(dragon_taskpool_serve_if_worker()); }
    static bool is_worker() { return dragon_taskpool_is_worker() != 0; }

    explicit TaskPool(const TaskPoolOptions &o = {}) {
        dragon_taskpool_attr_t a;
        dragon_taskpool_attr_init(&a);
        a.workers = o.workers;
        std::vector<dragon_policy_t> raw;
        for (const Policy &p : o.policies) {
            raw.push_back(p.raw());
        }
        a.policies = raw.empty() ? nullptr : raw.data();
        a.n_policies = raw.size();
        a.processes_per_policy = o.processes_per_policy;
        std::vector<const char *> argv;
        for (const auto &s : o.worker_command) {
            argv.push_back(s.c_str());
        }
        argv.push_back(nullptr);
        a.worker_argv = o.worker_command.empty() ? nullptr : argv.data();
        a.initializer = o.initializer.empty() ? nullptr : o.initializer.c_str();
        a.initializer_arg = o.initializer_arg.data();
        a.initializer_arg_len = o.initializer_arg.size();
        a.max_tasks_per_child = o.max_tasks_per_child;
        a.max_retries = o.max_retries;
        a.task_timeout =
            o.task_timeout ? detail::to_timeout(*o.task_timeout) : DRAGON_TIMEOUT_FOREVER;
        a.max_in_flight = o.max_in_flight;
        a.pool_bytes = o.pool_bytes;
        detail::check(dragon_taskpool_create(&a, &p_));
    }
    ~TaskPool() { dragon_taskpool_destroy(p_); }
    TaskPool(TaskPool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    TaskPool &operator=(TaskPool &&o) noexcept {
        if (this != &o) {
            dragon_taskpool_destroy(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    TaskPool(const TaskPool &) = delete;
    TaskPool &operator=(const TaskPool &) = delete;

    dragon_taskpool_t *handle() const noexcept { return p_; }
    std::uint32_t workers() const {
        std::uint32_t n = 0;
        detail::check(dragon_taskpool_workers(p_, &n));
        return n;
    }

    template <typename R, typename A>
    AsyncResult<R> apply_async(const Task<R(A)> &t, const A &arg) {
        std::string b = detail::to_bytes(arg);
        dragon_taskpool_job_t *j = nullptr;
        detail::check(dragon_taskpool_apply_async(p_, t.name().c_str(), b.data(), b.size(), &j));
        return AsyncResult<R>(detail::JobHandle(j));
    }
    template <typename R, typename A>
    R apply(const Task<R(A)> &t, const A &arg) {
        return apply_async(t, arg).get();
    }

    template <typename R, typename A>
    MapResult<R> map_async(const Task<R(A)> &t, const std::vector<A> &items,
                           std::size_t chunksize = 1) {
        // Every item serialised into one buffer, then pointed at (it does not move after).
        struct Inputs {
            std::string bytes;
            std::vector<const void *> args;
            std::vector<std::size_t> lens;
        };
        auto in = std::make_shared<Inputs>();
        std::vector<std::size_t> ends;
        ends.reserve(items.size());
        for (const A &x : items) {
            Serializer<A>::put(x, in->bytes);
            ends.push_back(in->bytes.size());
        }
        in->args.reserve(items.size());
        in->lens.reserve(items.size());
        std::size_t at = 0;
        for (std::size_t end : ends) {
            in->args.push_back(in->bytes.data() + at);
            in->lens.push_back(end - at);
            at = end;
        }
        dragon_taskpool_input_t input;
        dragon_taskpool_input_init(&input);
        input.args = in->args.data();
        input.lens = in->lens.data();
        input.n = items.size();
        input.chunksize = chunksize;
        dragon_taskpool_job_t *j = nullptr;
        detail::check(dragon_taskpool_submit(p_, t.name().c_str(), &input, &j));
        return MapResult<R>(detail::JobHandle(j), in, items.size());
    }
    template <typename R, typename A>
    std::vector<detail::wire_t<R>> map(const Task<R(A)> &t, const std::vector<A> &items,
                                       std::size_t chunksize = 1) {
        return map_async(t, items, chunksize).get();
    }

    // Over [first, last), drawn as results are taken.
    template <typename R, typename A, typename It>
    Imap<R> imap(const Task<R(A)> &t, It first, It last, std::size_t chunksize = 1,
                 std::size_t max_in_flight = 0) {
        return imap_impl(t, first, last, chunksize, max_in_flight, true);
    }
    template <typename R, typename A, typename It>
    Imap<R> imap_unordered(const Task<R(A)> &t, It first, It last, std::size_t chunksize = 1,
                           std::size_t max_in_flight = 0) {
        return imap_impl(t, first, last, chunksize, max_in_flight, false);
    }

    TaskPoolProgress progress() const { return progress_of(p_, nullptr); }
    void close() { detail::check(dragon_taskpool_close(p_)); }
    // After close(): false if jobs or workers still run after `timeout`.
    template <typename Timeout = Forever>
    bool join(Timeout timeout = forever) {
        dragon_status_t st = dragon_taskpool_join(p_, detail::timeout_of(timeout));
        if (st == DRAGON_TIMEOUT) {
            return false;
        }
        detail::check(st);
        return true;
    }
    void terminate() { detail::check(dragon_taskpool_terminate(p_)); }

    static TaskPoolProgress progress_of(dragon_taskpool_t *p, const dragon_taskpool_job_t *j) {
        dragon_taskpool_progress_t raw{};
        raw.struct_size = sizeof raw;
        detail::check(dragon_taskpool_progress(p, j, &raw));
        return TaskPoolProgress{raw.done, raw.failed, raw.running, raw.queued, raw.input_done != 0};
    }

  private:
    template <typename R, typename A, typename It>
    Imap<R> imap_impl(const Task<R(A)> &t, It first, It last, std::size_t chunksize,
                      std::size_t max_in_flight, bool ordered) {
        auto src = std::make_unique<typename Imap<R>::Source>();
        src->next = [first, last](std::string &out) mutable {
            if (first == last) {
                return false;
            }
            Serializer<A>::put(static_cast<const A &>(*first), out);
            ++first;
            return true;
        };
        dragon_taskpool_input_t input;
        dragon_taskpool_input_init(&input);
        input.next = &Imap<R>::Source::call;
        input.user = src.get();
        input.chunksize = chunksize;
        input.ordered = ordered ? 1 : 0;
        input.max_in_flight = max_in_flight;
        dragon_taskpool_job_t *j = nullptr;
        detail::check(dragon_taskpool_submit(p_, t.name().c_str(), &input, &j));
        return Imap<R>(detail::JobHandle(j), std::move(src));
    }

    dragon_taskpool_t *p_ = nullptr;
};

template <typename R>
TaskPoolProgress MapResult<R>::progress() const {
    return TaskPool::progress_of(nullptr, j_.get());
}
template <typename R>
TaskPoolProgress Imap<R>::progress() const {
    return TaskPool::progress_of(nullptr, j_.get());
}

} // namespace dragon

#endif // DRAGON_TASKPOOL_HPP
