// Synchronisation objects (docs/sync.md): Lock, recursive Lock, Semaphore, Event and Barrier
// are one cache-line-aligned header each in a pool, waited on through the shared blocking
// loop (common/wait.hpp); Queue is a channel of kind "queue" plus task accounting.
#include "../channel/channel.hpp"
#include "../channel/object.hpp"
#include "../common/error.hpp"
#include "../common/proc.hpp"
#include "../common/wait.hpp"
#include "layout.hpp"

#include <dragon/sync.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <memory>

using dragon::detail::Attempt;
using dragon::detail::fail;
using dragon::detail::guarded;
using dragon::detail::WaitMode;
namespace dc = dragon::chan;
namespace dobj = dragon::obj;
namespace detail = dragon::detail;
using dragon::sync::SyncHeader;

namespace {

dragon_status_t resolve_mode(const dragon_channel_attr_t *given, WaitMode *mode) {
    dragon_wait_mode_t m = DRAGON_WAIT_ADAPTIVE;
    if (dragon_status_t st = dc::resolve_wait_mode(given, &m); st != DRAGON_SUCCESS) {
        return st;
    }
    *mode = dc::to_wait_mode(m);
    return DRAGON_SUCCESS;
}

detail::Waiters &words(SyncHeader *h) {
    return h->waiters;
}

} // namespace

// One handle type behind every sync object's opaque C type.
struct SyncHandle {
    dobj::Attached obj;
    SyncHeader *h = nullptr;
    WaitMode mode = WaitMode::kAdaptive;
};
struct dragon_lock : SyncHandle {};
struct dragon_semaphore : SyncHandle {};
struct dragon_event : SyncHandle {};
struct dragon_barrier : SyncHandle {};
struct dragon_queue {
    dragon_channel_t *ch = nullptr;
};

namespace {

template <typename T>
dragon_status_t sync_create(dragon_pool_t *pool, dobj::Kind kind, uint32_t param,
                            const dragon_channel_attr_t *attr, T **out) {
    if (out == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "create %s: output handle is NULL",
                    dobj::kind_name(kind));
    }
    *out = nullptr;
    auto s = std::make_unique<T>();
    if (dragon_status_t st = resolve_mode(attr, &s->mode); st != DRAGON_SUCCESS) {
        return st;
    }
    if (dragon_status_t st = dobj::create(pool, kind, sizeof(SyncHeader), &s->obj);
        st != DRAGON_SUCCESS) {
        return st;
    }
    s->h = static_cast<SyncHeader *>(s->obj.base);
    s->h->param = param;
    if (kind == dobj::Kind::kSemaphore) {
        s->h->value.store(param & 0x7FFFFFFFU, std::memory_order_relaxed);
        s->h->param = param; // bound, with bit 31 set when bounded (see semaphore_create)
    }
    dobj::publish(s->obj);
    *out = s.release();
    return DRAGON_SUCCESS;
}

template <typename T>
dragon_status_t sync_attach(const void *bytes, size_t len, uint32_t accept,
                            const dragon_channel_attr_t *attr, T **out) {
    if (out == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "attach: output handle is NULL");
    }
    *out = nullptr;
    auto s = std::make_unique<T>();
    if (dragon_status_t st = resolve_mode(attr, &s->mode); st != DRAGON_SUCCESS) {
        return st;
    }
    if (dragon_status_t st = dobj::attach(bytes, len, accept, &s->obj); st != DRAGON_SUCCESS) {
        return st;
    }
    if (s->obj.size < sizeof(SyncHeader)) {
        dobj::release(&s->obj);
        return fail(DRAGON_CORRUPTED, "attach %s: its memory is too small",
                    dobj::kind_name(s->obj.kind));
    }
    s->h = static_cast<SyncHeader *>(s->obj.base);
    *out = s.release();
    return DRAGON_SUCCESS;
}

dragon_status_t closed(const SyncHandle *s) {
    return fail(DRAGON_CLOSED, "%s was destroyed", dobj::kind_name(s->obj.kind));
}

template <typename T>
dragon_status_t sync_detach(T *s) {
    if (s == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "detach: handle is NULL");
    }
    dobj::release(&s->obj);
    delete s;
    return DRAGON_SUCCESS;
}

template <typename T>
dragon_status_t sync_destroy(T *s) {
    if (s == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "destroy: handle is NULL");
    }
    if (!dobj::alive(s->obj)) {
        dragon_status_t st = closed(s);
        sync_detach(s);
        return st;
    }
    dobj::retire(s->obj);
    SyncHeader *h = s->h;
    int64_t give_up = detail::monotonic_ns() + 1000000000LL;
    struct timespec ms = {0, 1000000};
    // A waiter that was SIGKILLed never leaves: its slot is taken back instead.
    do {
        h->waiters.word.fetch_add(1, std::memory_order_seq_cst);
        detail::futex_wake_all(&h->waiters.word);
        nanosleep(&ms, nullptr);
        detail::repair_waiters(h->waiters);
    } while (detail::blocked_count(h->waiters) != 0 && detail::monotonic_ns() < give_up);
    dragon_status_t st = dobj::free_memory(&s->obj);
    delete s;
    return st;
}

template <typename T>
dragon_status_t sync_serialize(const T *s, void *buf, size_t cap, size_t *len) {
    if (s == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "serialize: handle is NULL");
    }
    return dobj::serialize(s->obj, buf, cap, len);
}

void wake(SyncHeader *h) {
    detail::wake_sleepers(&h->waiters.sleepers, &h->waiters.word);
}

constexpr uint64_t kBroken = 1ULL << 63;
constexpr uint64_t kGenMask = 0x7FFFFFFFULL;
uint32_t gen_of(uint64_t b) {
    return static_cast<uint32_t>((b >> 32) & kGenMask);
}
uint32_t arrived_of(uint64_t b) {
    return static_cast<uint32_t>(b);
}
uint64_t make_barrier(uint32_t gen, uint32_t arrived, bool broken) {
    return (broken ? kBroken : 0) | (static_cast<uint64_t>(gen & kGenMask) << 32) | arrived;
}

void wake_all(SyncHeader *h) {
    h->waiters.word.fetch_add(1, std::memory_order_seq_cst);
    detail::futex_wake_all(&h->waiters.word);
}

} // namespace

extern "C" {

// ---- Queue ----

namespace {

dragon_status_t queue_create(dragon_pool_t *pool, size_t maxsize, size_t item_size,
                             dc::ItemType item, const dragon_channel_attr_t *attr,
                             dragon_queue_t **queue) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "create queue: queue is NULL");
    }
    *queue = nullptr;
    dragon_wait_mode_t m = DRAGON_WAIT_ADAPTIVE;
    if (dragon_status_t st = dc::resolve_wait_mode(attr, &m); st != DRAGON_SUCCESS) {
        return st;
    }
    auto q = std::make_unique<dragon_queue>();
    dragon_status_t st =
        dc::create(pool, dobj::Kind::kQueue, maxsize == 0 ? DRAGON_QUEUE_DEFAULT_MAXSIZE : maxsize,
                   item_size == 0 ? 256 : item_size, m, &q->ch, item);
    if (st != DRAGON_SUCCESS) {
        return st;
    }
    *queue = q.release();
    return DRAGON_SUCCESS;
}

dragon_status_t queue_attach(const void *bytes, size_t len, const dragon_channel_attr_t *attr,
                             dragon_queue_t **queue) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "attach queue: queue is NULL");
    }
    *queue = nullptr;
    dragon_wait_mode_t m = DRAGON_WAIT_ADAPTIVE;
    if (dragon_status_t st = dc::resolve_wait_mode(attr, &m); st != DRAGON_SUCCESS) {
        return st;
    }
    auto q = std::make_unique<dragon_queue>();
    dragon_status_t st = dc::attach(bytes, len, dobj::kind_bit(dobj::Kind::kQueue), m, &q->ch);
    if (st != DRAGON_SUCCESS) {
        return st;
    }
    *queue = q.release();
    return DRAGON_SUCCESS;
}

} // namespace

DRAGON_API dragon_status_t dragon_queue_create(dragon_pool_t *pool, size_t maxsize,
                                               size_t item_size, const dragon_channel_attr_t *attr,
                                               dragon_queue_t **queue) {
    return guarded("dragon_queue_create", [&]() -> dragon_status_t {
        return queue_create(pool, maxsize, item_size, {}, attr, queue);
    });
}

DRAGON_API dragon_status_t dragon_queue_create_typed(dragon_pool_t *pool, size_t maxsize,
                                                     size_t item_size, uint64_t type_tag,
                                                     const dragon_channel_attr_t *attr,
                                                     dragon_queue_t **queue) {
    return guarded("dragon_queue_create_typed", [&]() -> dragon_status_t {
        if (item_size == 0) {
            if (queue != nullptr) {
                *queue = nullptr;
            }
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_queue_create_typed: item_size is 0 (a typed queue's items have "
                        "a fixed size of 1 byte or more)");
        }
        return queue_create(pool, maxsize, item_size, {item_size, type_tag}, attr, queue);
    });
}

DRAGON_API dragon_status_t dragon_queue_attach(const void *bytes, size_t len,
                                               const dragon_channel_attr_t *attr,
                                               dragon_queue_t **queue) {
    return guarded("dragon_queue_attach",
                   [&]() -> dragon_status_t { return queue_attach(bytes, len, attr, queue); });
}

DRAGON_API dragon_status_t dragon_queue_attach_typed(const void *bytes, size_t len,
                                                     size_t item_size, uint64_t type_tag,
                                                     const dragon_channel_attr_t *attr,
                                                     dragon_queue_t **queue) {
    return guarded("dragon_queue_attach_typed", [&]() -> dragon_status_t {
        if (dragon_status_t st = queue_attach(bytes, len, attr, queue); st != DRAGON_SUCCESS) {
            return st;
        }
        const dc::ChannelHeader *h = (*queue)->ch->hdr;
        uint64_t fixed = h->item_fixed;
        uint64_t tag = h->item_tag;
        const char *why = nullptr;
        if (fixed == 0) {
            why = "its items have any length (made by dragon_queue_create)";
        } else if (fixed != item_size) {
            why = "its items have another size";
        } else if (tag != 0 && type_tag != 0 && tag != type_tag) {
            why = "its items are of another type";
        }
        if (why == nullptr) {
            return DRAGON_SUCCESS;
        }
        dragon_queue_detach(*queue);
        *queue = nullptr;
        return fail(DRAGON_INVALID_ARGUMENT,
                    "attach queue: %s: it holds items of %" PRIu64 " bytes, type tag %#" PRIx64
                    "; this handle takes items of %zu bytes, type tag %#" PRIx64
                    " (nothing was taken from the queue)",
                    why, fixed, tag, item_size, type_tag);
    });
}

DRAGON_API dragon_status_t dragon_queue_item_type(const dragon_queue_t *queue, size_t *item_size,
                                                  uint64_t *type_tag) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_item_type: queue is NULL");
    }
    if (item_size != nullptr) {
        *item_size = queue->ch->hdr->item_fixed;
    }
    if (type_tag != nullptr) {
        *type_tag = queue->ch->hdr->item_tag;
    }
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_queue_serialize(const dragon_queue_t *queue, void *buf,
                                                  size_t cap, size_t *len) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_serialize: queue is NULL");
    }
    return dobj::serialize(queue->ch->obj, buf, cap, len);
}

DRAGON_API dragon_status_t dragon_queue_detach(dragon_queue_t *queue) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_detach: queue is NULL");
    }
    dc::detach(queue->ch);
    delete queue;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_queue_destroy(dragon_queue_t *queue) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_destroy: queue is NULL");
    }
    return guarded("dragon_queue_destroy", [&]() {
        dragon_status_t st = dc::destroy(queue->ch);
        delete queue;
        return st;
    });
}

DRAGON_API dragon_status_t dragon_queue_put(dragon_queue_t *queue, const void *buf, size_t len,
                                            dragon_timeout_t timeout) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_put: queue is NULL");
    }
    if (uint64_t fixed = queue->ch->hdr->item_fixed; fixed != 0 && len != fixed) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_queue_put: an item of %zu bytes in a queue of %" PRIu64 "-byte items",
                    len, fixed);
    }
    return dc::send(queue->ch, buf, len, nullptr, true, timeout);
}

DRAGON_API dragon_status_t dragon_queue_get(dragon_queue_t *queue, void *buf, size_t cap,
                                            size_t *len, dragon_timeout_t timeout) {
    if (queue == nullptr || len == nullptr || (buf == nullptr && cap != 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_get: NULL argument");
    }
    return dc::recv(queue->ch, buf, cap, false, nullptr, len, timeout);
}

DRAGON_API dragon_status_t dragon_queue_task_done(dragon_queue_t *queue) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_task_done: queue is NULL");
    }
    dc::ChannelHeader *h = queue->ch->hdr;
    if (!dobj::alive(queue->ch->obj)) {
        return fail(DRAGON_CLOSED, "queue was destroyed");
    }
    uint64_t v = h->unfinished.load(std::memory_order_acquire);
    do {
        if (v == 0) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_queue_task_done: called more times than items were put");
        }
    } while (!h->unfinished.compare_exchange_weak(v, v - 1, std::memory_order_acq_rel));
    if (v == 1) {
        detail::wake_sleepers(&h->join.sleepers, &h->join.word);
    }
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_queue_join(dragon_queue_t *queue, dragon_timeout_t timeout) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_join: queue is NULL");
    }
    dragon_channel_t *ch = queue->ch;
    dc::ChannelHeader *h = ch->hdr;
    dragon_status_t st =
        detail::blocking_wait(ch->mode, timeout, h->join, [&](bool, dragon_status_t *status) {
            if (!dobj::alive(ch->obj)) {
                *status = fail(DRAGON_CLOSED, "queue was destroyed");
                return Attempt::kDone;
            }
            if (h->unfinished.load(std::memory_order_acquire) == 0) {
                *status = DRAGON_SUCCESS;
                return Attempt::kDone;
            }
            return Attempt::kAgain;
        });
    if (st == DRAGON_TIMEOUT) {
        return fail(st, "dragon_queue_join: %llu items still unfinished",
                    static_cast<unsigned long long>(h->unfinished.load()));
    }
    return st;
}

DRAGON_API dragon_status_t dragon_queue_size(const dragon_queue_t *queue, size_t *size,
                                             size_t *maxsize) {
    if (queue == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_queue_size: queue is NULL");
    }
    dragon_channel_info_t info{};
    info.struct_size = sizeof info;
    if (dragon_status_t st = dragon_channel_info(queue->ch, &info); st != DRAGON_SUCCESS) {
        return st;
    }
    if (size != nullptr) {
        *size = static_cast<size_t>(info.count);
    }
    if (maxsize != nullptr) {
        *maxsize = static_cast<size_t>(info.capacity);
    }
    return DRAGON_SUCCESS;
}

// ---- Lock ----

DRAGON_API dragon_status_t dragon_lock_create(dragon_pool_t *pool, int recursive,
                                              const dragon_channel_attr_t *attr,
                                              dragon_lock_t **lock) {
    return guarded("dragon_lock_create", [&]() {
        return sync_create(pool, recursive != 0 ? dobj::Kind::kRLock : dobj::Kind::kLock,
                           recursive != 0 ? 1U : 0U, attr, lock);
    });
}
DRAGON_API dragon_status_t dragon_lock_attach(const void *bytes, size_t len,
                                              const dragon_channel_attr_t *attr,
                                              dragon_lock_t **lock) {
    return guarded("dragon_lock_attach", [&]() {
        return sync_attach(bytes, len,
                           dobj::kind_bit(dobj::Kind::kLock) | dobj::kind_bit(dobj::Kind::kRLock),
                           attr, lock);
    });
}
DRAGON_API dragon_status_t dragon_lock_serialize(const dragon_lock_t *lock, void *buf, size_t cap,
                                                 size_t *len) {
    return sync_serialize(lock, buf, cap, len);
}
DRAGON_API dragon_status_t dragon_lock_detach(dragon_lock_t *lock) {
    return sync_detach(lock);
}
DRAGON_API dragon_status_t dragon_lock_destroy(dragon_lock_t *lock) {
    return guarded("dragon_lock_destroy", [&]() { return sync_destroy(lock); });
}

DRAGON_API dragon_status_t dragon_lock_acquire(dragon_lock_t *lock, dragon_timeout_t timeout) {
    if (lock == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_lock_acquire: lock is NULL");
    }
    SyncHeader *h = lock->h;
    bool recursive = h->param != 0;
    uint32_t me = detail::self_tid() & detail::kPidMask;
    if (!dobj::alive(lock->obj)) {
        return closed(lock);
    }
    if (recursive && h->value.load(std::memory_order_relaxed) == me) {
        h->count.fetch_add(1, std::memory_order_relaxed);
        return DRAGON_SUCCESS;
    }
    dragon_status_t st = detail::blocking_wait(
        lock->mode, timeout, words(h), [&](bool check, dragon_status_t *status) {
            if (!dobj::alive(lock->obj)) {
                *status = closed(lock);
                return Attempt::kDone;
            }
            uint32_t v = h->value.load(std::memory_order_relaxed);
            if (v == 0) {
                if (h->value.compare_exchange_strong(v, me, std::memory_order_acquire)) {
                    h->count.store(1, std::memory_order_relaxed);
                    *status = DRAGON_SUCCESS;
                    return Attempt::kDone;
                }
                return Attempt::kAgain;
            }
            if (check && v != me && detail::pid_dead(v) &&
                h->value.compare_exchange_strong(v, me, std::memory_order_acquire)) {
                h->count.store(1, std::memory_order_relaxed);
                *status = fail(DRAGON_OWNER_DIED,
                               "%s acquired, but its previous holder (thread %u) died holding "
                               "it",
                               dobj::kind_name(lock->obj.kind), v);
                return Attempt::kDone;
            }
            return Attempt::kStuck; // the holder may die without waking us
        });
    if (st == DRAGON_TIMEOUT) {
        return fail(st, "%s still held by thread %u after %lld ns", dobj::kind_name(lock->obj.kind),
                    h->value.load(), static_cast<long long>(timeout));
    }
    return st;
}

DRAGON_API dragon_status_t dragon_lock_release(dragon_lock_t *lock) {
    if (lock == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_lock_release: lock is NULL");
    }
    SyncHeader *h = lock->h;
    if (!dobj::alive(lock->obj)) {
        return closed(lock);
    }
    uint32_t v = h->value.load(std::memory_order_relaxed);
    if (v == 0) {
        return fail(DRAGON_INVALID_ARGUMENT, "release of an unlocked %s",
                    dobj::kind_name(lock->obj.kind));
    }
    if (h->param != 0) {
        uint32_t me = detail::self_tid() & detail::kPidMask;
        if (v != me) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "recursive lock held by thread %u cannot be released by thread %u", v, me);
        }
        if (h->count.fetch_sub(1, std::memory_order_relaxed) > 1) {
            return DRAGON_SUCCESS;
        }
        h->value.store(0, std::memory_order_release);
    } else if (!h->value.compare_exchange_strong(v, 0, std::memory_order_release)) {
        return fail(DRAGON_INVALID_ARGUMENT, "release of an unlocked lock");
    }
    wake(h);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_lock_locked(const dragon_lock_t *lock, int *locked) {
    if (lock == nullptr || locked == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_lock_locked: NULL argument");
    }
    if (!dobj::alive(lock->obj)) {
        return closed(lock);
    }
    *locked = lock->h->value.load(std::memory_order_acquire) != 0 ? 1 : 0;
    return DRAGON_SUCCESS;
}

// ---- Semaphore ----

constexpr uint32_t kBounded = 1U << 31;

DRAGON_API dragon_status_t dragon_semaphore_create(dragon_pool_t *pool, uint32_t value, int bounded,
                                                   const dragon_channel_attr_t *attr,
                                                   dragon_semaphore_t **sem) {
    if (value >= kBounded) {
        return fail(DRAGON_INVALID_ARGUMENT, "semaphore value %u is too large", value);
    }
    return guarded("dragon_semaphore_create", [&]() {
        return sync_create(pool, dobj::Kind::kSemaphore, value | (bounded != 0 ? kBounded : 0U),
                           attr, sem);
    });
}
DRAGON_API dragon_status_t dragon_semaphore_attach(const void *bytes, size_t len,
                                                   const dragon_channel_attr_t *attr,
                                                   dragon_semaphore_t **sem) {
    return guarded("dragon_semaphore_attach", [&]() {
        return sync_attach(bytes, len, dobj::kind_bit(dobj::Kind::kSemaphore), attr, sem);
    });
}
DRAGON_API dragon_status_t dragon_semaphore_serialize(const dragon_semaphore_t *sem, void *buf,
                                                      size_t cap, size_t *len) {
    return sync_serialize(sem, buf, cap, len);
}
DRAGON_API dragon_status_t dragon_semaphore_detach(dragon_semaphore_t *sem) {
    return sync_detach(sem);
}
DRAGON_API dragon_status_t dragon_semaphore_destroy(dragon_semaphore_t *sem) {
    return guarded("dragon_semaphore_destroy", [&]() { return sync_destroy(sem); });
}

DRAGON_API dragon_status_t dragon_semaphore_acquire(dragon_semaphore_t *sem,
                                                    dragon_timeout_t timeout) {
    if (sem == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_semaphore_acquire: semaphore is NULL");
    }
    SyncHeader *h = sem->h;
    dragon_status_t st =
        detail::blocking_wait(sem->mode, timeout, words(h), [&](bool, dragon_status_t *status) {
            if (!dobj::alive(sem->obj)) {
                *status = closed(sem);
                return Attempt::kDone;
            }
            uint32_t v = h->value.load(std::memory_order_relaxed);
            while (v > 0) {
                if (h->value.compare_exchange_weak(v, v - 1, std::memory_order_acquire)) {
                    *status = DRAGON_SUCCESS;
                    return Attempt::kDone;
                }
            }
            return Attempt::kAgain;
        });
    if (st == DRAGON_TIMEOUT) {
        return fail(st, "semaphore stayed at 0 for %lld ns", static_cast<long long>(timeout));
    }
    return st;
}

DRAGON_API dragon_status_t dragon_semaphore_release(dragon_semaphore_t *sem) {
    if (sem == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_semaphore_release: semaphore is NULL");
    }
    SyncHeader *h = sem->h;
    if (!dobj::alive(sem->obj)) {
        return closed(sem);
    }
    uint32_t bound = (h->param & kBounded) != 0 ? (h->param & ~kBounded) : kBounded - 1;
    uint32_t v = h->value.load(std::memory_order_relaxed);
    do {
        if (v >= bound) {
            return fail(DRAGON_INVALID_ARGUMENT, "semaphore released too many times (value %u)", v);
        }
    } while (!h->value.compare_exchange_weak(v, v + 1, std::memory_order_release));
    wake(h);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_semaphore_value(const dragon_semaphore_t *sem, uint32_t *value) {
    if (sem == nullptr || value == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_semaphore_value: NULL argument");
    }
    if (!dobj::alive(sem->obj)) {
        return closed(sem);
    }
    *value = sem->h->value.load(std::memory_order_acquire);
    return DRAGON_SUCCESS;
}

// ---- Event ----

DRAGON_API dragon_status_t dragon_event_create(dragon_pool_t *pool,
                                               const dragon_channel_attr_t *attr,
                                               dragon_event_t **event) {
    return guarded("dragon_event_create",
                   [&]() { return sync_create(pool, dobj::Kind::kEvent, 0, attr, event); });
}
DRAGON_API dragon_status_t dragon_event_attach(const void *bytes, size_t len,
                                               const dragon_channel_attr_t *attr,
                                               dragon_event_t **event) {
    return guarded("dragon_event_attach", [&]() {
        return sync_attach(bytes, len, dobj::kind_bit(dobj::Kind::kEvent), attr, event);
    });
}
DRAGON_API dragon_status_t dragon_event_serialize(const dragon_event_t *event, void *buf,
                                                  size_t cap, size_t *len) {
    return sync_serialize(event, buf, cap, len);
}
DRAGON_API dragon_status_t dragon_event_detach(dragon_event_t *event) {
    return sync_detach(event);
}
DRAGON_API dragon_status_t dragon_event_destroy(dragon_event_t *event) {
    return guarded("dragon_event_destroy", [&]() { return sync_destroy(event); });
}

DRAGON_API dragon_status_t dragon_event_set(dragon_event_t *event) {
    if (event == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_event_set: event is NULL");
    }
    if (!dobj::alive(event->obj)) {
        return closed(event);
    }
    event->h->value.store(1, std::memory_order_release);
    wake(event->h);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_event_clear(dragon_event_t *event) {
    if (event == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_event_clear: event is NULL");
    }
    if (!dobj::alive(event->obj)) {
        return closed(event);
    }
    event->h->value.store(0, std::memory_order_release);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_event_is_set(const dragon_event_t *event, int *set) {
    if (event == nullptr || set == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_event_is_set: NULL argument");
    }
    if (!dobj::alive(event->obj)) {
        return closed(event);
    }
    *set = event->h->value.load(std::memory_order_acquire) != 0 ? 1 : 0;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_event_wait(dragon_event_t *event, dragon_timeout_t timeout) {
    if (event == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_event_wait: event is NULL");
    }
    SyncHeader *h = event->h;
    dragon_status_t st =
        detail::blocking_wait(event->mode, timeout, words(h), [&](bool, dragon_status_t *status) {
            if (!dobj::alive(event->obj)) {
                *status = closed(event);
                return Attempt::kDone;
            }
            if (h->value.load(std::memory_order_acquire) != 0) {
                *status = DRAGON_SUCCESS;
                return Attempt::kDone;
            }
            return Attempt::kAgain;
        });
    if (st == DRAGON_TIMEOUT) {
        return fail(st, "event stayed clear for %lld ns", static_cast<long long>(timeout));
    }
    return st;
}

// ---- Barrier ----

DRAGON_API dragon_status_t dragon_barrier_create(dragon_pool_t *pool, uint32_t parties,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_barrier_t **barrier) {
    if (parties == 0 || parties >= kBounded) {
        return fail(DRAGON_INVALID_ARGUMENT, "barrier: %u parties", parties);
    }
    return guarded("dragon_barrier_create", [&]() {
        return sync_create(pool, dobj::Kind::kBarrier, parties, attr, barrier);
    });
}
DRAGON_API dragon_status_t dragon_barrier_attach(const void *bytes, size_t len,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_barrier_t **barrier) {
    return guarded("dragon_barrier_attach", [&]() -> dragon_status_t {
        dragon_status_t st =
            sync_attach(bytes, len, dobj::kind_bit(dobj::Kind::kBarrier), attr, barrier);
        if (st == DRAGON_SUCCESS && *barrier != nullptr && (*barrier)->h->param == 0) {
            sync_detach(*barrier);
            *barrier = nullptr;
            return fail(DRAGON_CORRUPTED, "attach barrier: 0 parties");
        }
        return st;
    });
}
DRAGON_API dragon_status_t dragon_barrier_serialize(const dragon_barrier_t *barrier, void *buf,
                                                    size_t cap, size_t *len) {
    return sync_serialize(barrier, buf, cap, len);
}
DRAGON_API dragon_status_t dragon_barrier_detach(dragon_barrier_t *barrier) {
    return sync_detach(barrier);
}
DRAGON_API dragon_status_t dragon_barrier_destroy(dragon_barrier_t *barrier) {
    return guarded("dragon_barrier_destroy", [&]() { return sync_destroy(barrier); });
}

DRAGON_API dragon_status_t dragon_barrier_wait(dragon_barrier_t *barrier, dragon_timeout_t timeout,
                                               uint32_t *index) {
    if (barrier == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_barrier_wait: barrier is NULL");
    }
    SyncHeader *h = barrier->h;
    if (!dobj::alive(barrier->obj)) {
        return closed(barrier);
    }
    uint32_t parties = h->param;
    uint64_t b = h->barrier.load(std::memory_order_acquire);
    uint32_t gen = 0;
    uint32_t arrived = 0;
    for (;;) {
        if ((b & kBroken) != 0) {
            return fail(DRAGON_BROKEN, "barrier is broken (aborted, or a wait timed out)");
        }
        gen = gen_of(b);
        arrived = arrived_of(b);
        bool last = arrived + 1 >= parties;
        uint64_t next = last ? make_barrier(gen + 1, 0, false) : b + 1;
        if (h->barrier.compare_exchange_weak(b, next, std::memory_order_acq_rel)) {
            if (last) {
                if (index != nullptr) {
                    *index = arrived;
                }
                wake_all(h);
                return DRAGON_SUCCESS;
            }
            break;
        }
    }
    if (index != nullptr) {
        *index = arrived;
    }
    // How a round we joined ended: completed (SUCCESS) or broken/reset (BROKEN).
    auto outcome = [&](uint64_t now, dragon_status_t *status) {
        if (gen_of(now) != gen) {
            *status = h->last_reset.load(std::memory_order_acquire) == gen + 1
                          ? fail(DRAGON_BROKEN, "barrier was reset while waiting")
                          : DRAGON_SUCCESS;
            return true;
        }
        if ((now & kBroken) != 0) {
            *status = fail(DRAGON_BROKEN, "barrier was broken while waiting");
            return true;
        }
        return false;
    };
    dragon_status_t st =
        detail::blocking_wait(barrier->mode, timeout, words(h), [&](bool, dragon_status_t *status) {
            if (!dobj::alive(barrier->obj)) {
                *status = closed(barrier);
                return Attempt::kDone;
            }
            return outcome(h->barrier.load(std::memory_order_acquire), status) ? Attempt::kDone
                                                                               : Attempt::kAgain;
        });
    if (st != DRAGON_TIMEOUT) {
        return st;
    }
    // Timed out: break the round, unless it completed meanwhile.
    b = h->barrier.load(std::memory_order_acquire);
    for (;;) {
        dragon_status_t late = DRAGON_SUCCESS;
        if (outcome(b, &late)) {
            return late;
        }
        if (h->barrier.compare_exchange_weak(b, b | kBroken, std::memory_order_acq_rel)) {
            break;
        }
    }
    wake_all(h);
    return fail(DRAGON_TIMEOUT, "barrier: %u of %u parties arrived within %lld ns; it is broken",
                arrived_of(b), parties, static_cast<long long>(timeout));
}

DRAGON_API dragon_status_t dragon_barrier_abort(dragon_barrier_t *barrier) {
    if (barrier == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_barrier_abort: barrier is NULL");
    }
    if (!dobj::alive(barrier->obj)) {
        return closed(barrier);
    }
    barrier->h->barrier.fetch_or(kBroken, std::memory_order_acq_rel);
    wake_all(barrier->h);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_barrier_reset(dragon_barrier_t *barrier) {
    if (barrier == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_barrier_reset: barrier is NULL");
    }
    SyncHeader *h = barrier->h;
    if (!dobj::alive(barrier->obj)) {
        return closed(barrier);
    }
    uint64_t b = h->barrier.load(std::memory_order_acquire);
    do {
        h->last_reset.store(gen_of(b) + 1, std::memory_order_release);
    } while (!h->barrier.compare_exchange_weak(b, make_barrier(gen_of(b) + 1, 0, false),
                                               std::memory_order_acq_rel));
    wake_all(h);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_barrier_info(const dragon_barrier_t *barrier, uint32_t *parties,
                                               uint32_t *waiting, int *broken) {
    if (barrier == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_barrier_info: barrier is NULL");
    }
    if (!dobj::alive(barrier->obj)) {
        return closed(barrier);
    }
    uint64_t b = barrier->h->barrier.load(std::memory_order_acquire);
    if (parties != nullptr) {
        *parties = barrier->h->param;
    }
    if (waiting != nullptr) {
        *waiting = arrived_of(b);
    }
    if (broken != nullptr) {
        *broken = (b & kBroken) != 0 ? 1 : 0;
    }
    return DRAGON_SUCCESS;
}

} // extern "C"
