// Channels: a bounded MPMC ring of slots in a pool (docs/channel.md).
//
// Producers claim the slot at `tail` by moving its state from (pos, free) to
// (pos, writing, pid) with one CAS, then advance `tail` (anyone who sees a claimed slot at
// `tail` helps advance it), fill the slot and publish (pos, ready). Consumers copy the
// message at `head` out first and then claim it by moving the state straight to
// (pos + capacity, free), the slot's state for the next lap; a failed CAS means another
// consumer won and the copy is dropped. So only a sender can be caught mid-operation, and
// the pid in its state word is what makes that recoverable: whoever is stuck behind a
// (pos, writing, pid) slot checks the pid and, if that process is dead, frees the slot.
#include "channel.hpp"

#include "../common/error.hpp"
#include "../common/proc.hpp"
#include "../common/wait_mode.hpp"
#include "../pool/internal.hpp"

#include <algorithm>
#include <cinttypes>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

using dragon::detail::Attempt;
using dragon::detail::fail;
using dragon::detail::guarded;
using dragon::detail::WaitMode;
using dragon::detail::wrap;
namespace dc = dragon::chan;
namespace dobj = dragon::obj;
namespace detail = dragon::detail;

namespace {

constexpr uint64_t kMaxCapacity = 1ULL << 32;
constexpr uint64_t kMaxSlotSize = 1ULL << 30;

// Where DRAGON_TEST_CRASH_AT=<point>:<n> makes this process SIGKILL itself the n-th time it
// gets there (tests/c uses it): send: a sender claimed a slot, before filling it; publish:
// it filled the slot (and tagged a zero-copy message queued), before publishing it;
// handover: a receiver took a zero-copy message's block, before claiming its slot; recv: a
// receiver claimed a slot, before releasing it.
enum CrashAt { kAtSend, kAtPublish, kAtHandover, kAtRecv, kCrashPoints };
#ifdef DRAGON_TEST_HOOKS
struct CrashHooks {
    long at[kCrashPoints] = {};
    std::atomic<long> seen[kCrashPoints] = {};
    CrashHooks() {
        const char *spec = std::getenv("DRAGON_TEST_CRASH_AT");
        static const char *const names[kCrashPoints] = {"send:", "publish:", "handover:", "recv:"};
        for (int i = 0; spec != nullptr && i < kCrashPoints; ++i) {
            size_t n = std::strlen(names[i]);
            if (std::strncmp(spec, names[i], n) == 0) {
                at[i] = std::atol(spec + n);
            }
        }
    }
};
CrashHooks &hooks() {
    static CrashHooks h;
    return h;
}
inline void crash_point(CrashAt where) {
    CrashHooks &h = hooks();
    if (h.at[where] > 0 && h.seen[where].fetch_add(1) + 1 == h.at[where]) {
        ::kill(::getpid(), SIGKILL);
    }
}
#else
inline void crash_point(CrashAt) {}
#endif

inline dc::Slot *slot_at(const dragon_channel_t *ch, uint64_t pos) {
    uint64_t idx = ch->pow2 ? (pos & ch->mask) : (pos % ch->capacity);
    return reinterpret_cast<dc::Slot *>(ch->slots + idx * ch->stride);
}
inline uint8_t *payload(dc::Slot *s) {
    return reinterpret_cast<uint8_t *>(s) + dc::kSlotHeader;
}

inline void help_advance(std::atomic<uint64_t> &counter, uint64_t from) {
    counter.compare_exchange_strong(from, from + 1, std::memory_order_acq_rel,
                                    std::memory_order_relaxed);
}

// Free a slot whose writer died mid-call. The message it held is lost; a zero-copy
// allocation it carried is left to dragon_pool_reclaim (docs/channel.md).
void recover_slot(dragon_channel_t *ch, dc::Slot *s, uint64_t seen) {
    uint64_t next = dc::make_state(dc::seq_of(seen) + ch->capacity, dc::kFree, 0);
    if (s->state.compare_exchange_strong(seen, next, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
        dragon::detail::wake_sleepers(&ch->hdr->send.sleepers, &ch->hdr->send.word);
        dragon::detail::wake_sleepers(&ch->hdr->recv.sleepers, &ch->hdr->recv.word);
    }
}

// A peer is mid-operation on this slot; recover it if the peer is dead.
bool peer_dead(uint64_t state) {
    uint32_t pid = dc::pid_of(state);
    return pid != 0 && pid != dragon::detail::self_pid() && dragon::detail::pid_dead(pid);
}

dragon_status_t closed(const dragon_channel_t *ch) {
    return fail(DRAGON_CLOSED, "%s was destroyed", dobj::kind_name(ch->obj.kind));
}

bool valid_mode(dragon_wait_mode_t m) {
    return dragon::detail::valid_wait_mode(static_cast<int>(m));
}

void bind(dragon_channel_t *ch) {
    auto *h = static_cast<dc::ChannelHeader *>(ch->obj.base);
    ch->hdr = h;
    ch->capacity = h->capacity;
    ch->pow2 = (h->capacity & (h->capacity - 1)) == 0;
    ch->mask = ch->pow2 ? h->capacity - 1 : 0;
    ch->stride = h->stride;
    ch->slot_size = h->slot_size;
    ch->slots = static_cast<uint8_t *>(ch->obj.base) + h->slots_offset;
    ch->heap = dragon::pool::heap_base_of(ch->obj.pool);
    ch->heap_size = dragon::pool::heap_size_of(ch->obj.pool);
}

uint64_t round_up(uint64_t v, uint64_t a) {
    return (v + a - 1) / a * a;
}

// ---- send ----

struct SendArgs {
    const void *buf;
    size_t len;
    void *zc; // zero-copy allocation, or null
    bool count_task;
    bool saw_full; // an earlier attempt found the channel full
};

Attempt try_send(dragon_channel_t *ch, SendArgs &m, bool check_peers, dragon_status_t *status) {
    dc::ChannelHeader *h = ch->hdr;
    if (!dobj::alive(ch->obj)) {
        *status = closed(ch);
        return Attempt::kDone;
    }
    uint32_t pid = dragon::detail::self_pid();
    for (;;) {
        uint64_t pos = h->tail.load(std::memory_order_acquire);
        dc::Slot *s = slot_at(ch, pos);
        // A free slot's state is known in advance: claim it with one CAS, without reading it
        // first (one cache-line transfer instead of two). After a full channel was seen, look
        // before touching, so that a waiting sender does not pull the line from consumers.
        uint64_t cur = dc::make_state(pos, dc::kFree, 0);
        if (m.saw_full) {
            cur = s->state.load(std::memory_order_acquire);
        }
        if (cur == dc::make_state(pos, dc::kFree, 0) &&
            s->state.compare_exchange_strong(cur, dc::make_state(pos, dc::kWriting, pid),
                                             std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
            help_advance(h->tail, pos);
            crash_point(kAtSend);
            if (m.zc != nullptr) {
                uint64_t off = static_cast<uint64_t>(static_cast<uint8_t *>(m.zc) - ch->heap);
                std::memcpy(payload(s), &off, sizeof off);
                s->meta.store(dc::kZeroCopy | m.len, std::memory_order_relaxed);
                // From here the channel holds it (the publish below orders this store).
                dragon::pool::owner_of(ch->obj.pool, off)
                    .store(dragon::pool::kOwnerQueued | dragon::detail::self_tag(),
                           std::memory_order_relaxed);
            } else {
                if (m.len != 0) {
                    std::memcpy(payload(s), m.buf, m.len);
                }
                s->meta.store(m.len, std::memory_order_relaxed);
            }
            if (m.count_task) {
                h->unfinished.fetch_add(1, std::memory_order_relaxed);
            }
            crash_point(kAtPublish);
            s->state.exchange(dc::make_state(pos, dc::kReady, pid), std::memory_order_seq_cst);
            dragon::detail::wake_sleepers_after_rmw(&h->recv.sleepers, &h->recv.word);
            *status = DRAGON_SUCCESS;
            return Attempt::kDone;
        }
        int64_t d = dc::seq_diff(cur, pos);
        if (d >= 0) {
            // Claimed by another sender (d == 0) or long gone (d > 0): tail is behind.
            help_advance(h->tail, pos);
            continue;
        }
        // The slot still holds the previous lap's message: full, unless tail moved meanwhile.
        if (h->tail.load(std::memory_order_acquire) != pos) {
            continue;
        }
        m.saw_full = true;
        if (dc::phase_of(cur) != dc::kWriting) {
            return Attempt::kAgain;
        }
        // A sender of the previous lap has not finished: slow, or dead.
        if (check_peers && peer_dead(cur)) {
            recover_slot(ch, s, cur);
            continue;
        }
        return Attempt::kStuck;
    }
}

// ---- recv ----

// A zero-copy message changes hands before its slot is claimed: the receiver CASes the
// block's owner from "queued" to itself first, so that at every moment the block is either
// named by a ready slot or owned by a live process that can answer for it (dragon_pool_reclaim
// relies on that). An owner that is not queued is another receiver's claim in progress (maybe
// another thread's of this process): wait for it, or take over if that receiver died before
// it claimed the slot. If the slot claim then fails, the owner is put back.
struct Handover {
    static constexpr int kClaimSpins = 64; // a live claimer finishes in nanoseconds

    std::atomic<uint32_t> *owner = nullptr;
    uint32_t prior = 0;

    Attempt claim(dragon_channel_t *ch, dc::Slot *s, uint64_t seen, uint64_t off, size_t len,
                  bool check_peers) {
        if (off >= ch->heap_size || len > ch->heap_size - off) {
            return Attempt::kDone; // reported as corrupted once the slot is claimed
        }
        std::atomic<uint32_t> &word = dragon::pool::owner_of(ch->obj.pool, off);
        uint32_t me = dragon::detail::self_tag();
        for (int spins = 0;; ++spins) {
            uint32_t cur = word.load(std::memory_order_acquire);
            if (s->state.load(std::memory_order_acquire) != seen) {
                return Attempt::kAgain; // the slot moved on: look again
            }
            bool queued = (cur & dragon::pool::kOwnerKindMask) == dragon::pool::kOwnerQueued;
            if (queued || (spins >= kClaimSpins && check_peers && cur != dragon::pool::kOwnerNone &&
                           cur != dragon::pool::kOwnerReclaimed && dragon::detail::tag_dead(cur))) {
                if (!word.compare_exchange_strong(cur, me, std::memory_order_acq_rel)) {
                    return Attempt::kAgain;
                }
                owner = &word;
                prior = cur;
                return Attempt::kDone;
            }
            if (spins >= kClaimSpins) {
                return Attempt::kStuck;
            }
            dragon::detail::cpu_relax();
        }
    }
    void undo() {
        if (owner != nullptr) {
            uint32_t me = dragon::detail::self_tag();
            owner->compare_exchange_strong(me, prior, std::memory_order_acq_rel);
            owner = nullptr;
        }
    }
};

struct RecvArgs {
    void *buf;
    size_t cap;
    bool as_mem;
    void **out_ptr;
    size_t *out_len;
    void *scratch; // as_mem: an allocation to copy a slot message into
    size_t scratch_size;
};

Attempt try_recv(dragon_channel_t *ch, RecvArgs &r, bool check_peers, dragon_status_t *status) {
    dc::ChannelHeader *h = ch->hdr;
    if (!dobj::alive(ch->obj)) {
        *status = closed(ch);
        return Attempt::kDone;
    }
    for (;;) {
        uint64_t pos = h->head.load(std::memory_order_acquire);
        dc::Slot *s = slot_at(ch, pos);
        uint64_t cur = s->state.load(std::memory_order_acquire);
        int64_t d = dc::seq_diff(cur, pos);
        if (d > 0) {
            help_advance(h->head, pos); // taken already: head is behind
            continue;
        }
        dc::Phase ph = dc::phase_of(cur);
        if (d == 0 && ph == dc::kReady) {
            uint64_t meta = s->meta.load(std::memory_order_relaxed);
            size_t len = static_cast<size_t>(meta & dc::kLenMask);
            bool zc = (meta & dc::kZeroCopy) != 0;
            if (!zc && len > ch->slot_size) {
                if (s->state.load(std::memory_order_acquire) != cur) {
                    continue; // torn read of a slot being reused: look again
                }
                *status = fail(DRAGON_CORRUPTED,
                               "%s: the next message claims %zu bytes in a %" PRIu64 "-byte slot",
                               dobj::kind_name(ch->obj.kind), len, ch->slot_size);
                return Attempt::kDone;
            }
            if (!r.as_mem && len > r.cap) {
                if (s->state.load(std::memory_order_acquire) != cur) {
                    continue;
                }
                *r.out_len = len;
                *status = fail(DRAGON_BUFFER_TOO_SMALL,
                               "%s: the next message has %zu bytes, the buffer %zu; it stays "
                               "queued",
                               dobj::kind_name(ch->obj.kind), len, r.cap);
                return Attempt::kDone;
            }
            if (r.as_mem && !zc && r.scratch_size < std::max<size_t>(len, 1)) {
                if (r.scratch != nullptr) {
                    dragon_pool_free(ch->obj.pool, r.scratch);
                    r.scratch = nullptr;
                    r.scratch_size = 0;
                }
                dragon_status_t st =
                    dragon_pool_alloc(ch->obj.pool, std::max<size_t>(len, 1), &r.scratch);
                r.scratch_size = st == DRAGON_SUCCESS ? std::max<size_t>(len, 1) : 0;
                if (st != DRAGON_SUCCESS) {
                    *status = wrap(st,
                                   "%s: no room in the pool to hand over a %zu-byte message "
                                   "(it stays queued)",
                                   dobj::kind_name(ch->obj.kind), len);
                    return Attempt::kDone;
                }
            }
            // Copy first, claim after: the claim moves the slot straight from ready to free
            // for the next lap, so a consumer holds no slot while it copies and one that dies
            // here claims nothing. If the CAS fails another consumer took the message and the
            // copy (possibly torn) is dropped; if it succeeds nothing touched the slot since
            // `cur` was read (its sequence only grows), so the copy is whole.
            uint64_t off = 0;
            Handover take;
            if (zc) {
                std::memcpy(&off, payload(s), sizeof off);
                Attempt a = take.claim(ch, s, cur, off, len, check_peers);
                if (a == Attempt::kAgain) {
                    continue;
                }
                if (a == Attempt::kStuck) {
                    return a;
                }
                if (take.owner != nullptr) {
                    crash_point(kAtHandover);
                }
            } else if (len != 0) {
                std::memcpy(r.as_mem ? r.scratch : r.buf, payload(s), len);
            }
            if (!s->state.compare_exchange_strong(
                    cur, dc::make_state(pos + ch->capacity, dc::kFree, 0),
                    std::memory_order_seq_cst, std::memory_order_relaxed)) {
                take.undo();
                continue;
            }
            help_advance(h->head, pos);
            crash_point(kAtRecv);
            if (zc && (off >= ch->heap_size || len > ch->heap_size - off)) {
                *status = fail(DRAGON_CORRUPTED,
                               "%s: a zero-copy message names memory outside the pool "
                               "(offset %" PRIu64 ", %zu bytes); dropped",
                               dobj::kind_name(ch->obj.kind), off, len);
                return Attempt::kDone;
            }
            if (zc) {
                void *mem = ch->heap + off;
                if (r.as_mem) {
                    *r.out_ptr = mem;
                } else {
                    if (len != 0) {
                        std::memcpy(r.buf, mem, len);
                    }
                    dragon_pool_free(ch->obj.pool, mem);
                }
            } else if (r.as_mem) {
                *r.out_ptr = r.scratch;
                r.scratch = nullptr;
                r.scratch_size = 0;
            }
            *r.out_len = len;
            dragon::detail::wake_sleepers_after_rmw(&h->send.sleepers, &h->send.word);
            *status = DRAGON_SUCCESS;
            return Attempt::kDone;
        }
        if (h->head.load(std::memory_order_acquire) != pos) {
            continue;
        }
        if (ph != dc::kWriting) {
            return Attempt::kAgain; // empty
        }
        // The next message is still being written: by a slow sender, or a dead one.
        if (check_peers && peer_dead(cur)) {
            recover_slot(ch, s, cur);
            continue;
        }
        return Attempt::kStuck;
    }
}

// ---- channel sets ----

// Readiness of one channel, recovering a slot held by a dead peer when allowed.
uint32_t readiness(dragon_channel_t *ch, uint32_t events, bool check_peers, bool *stuck) {
    if (!dobj::alive(ch->obj)) {
        return DRAGON_CHANNEL_CLOSED;
    }
    dc::ChannelHeader *h = ch->hdr;
    uint32_t ready = 0;
    if ((events & DRAGON_CHANNEL_READABLE) != 0) {
        uint64_t pos = h->head.load(std::memory_order_acquire);
        dc::Slot *s = slot_at(ch, pos);
        uint64_t cur = s->state.load(std::memory_order_acquire);
        int64_t d = dc::seq_diff(cur, pos);
        dc::Phase ph = dc::phase_of(cur);
        if (d > 0 || (d == 0 && ph == dc::kReady)) {
            ready |= DRAGON_CHANNEL_READABLE; // ready, or head is about to move: look again
        } else if (ph == dc::kWriting) {
            if (check_peers && peer_dead(cur)) {
                recover_slot(ch, s, cur);
            }
            *stuck = true;
        }
    }
    if ((events & DRAGON_CHANNEL_WRITABLE) != 0) {
        uint64_t pos = h->tail.load(std::memory_order_acquire);
        dc::Slot *s = slot_at(ch, pos);
        uint64_t cur = s->state.load(std::memory_order_acquire);
        int64_t d = dc::seq_diff(cur, pos);
        dc::Phase ph = dc::phase_of(cur);
        if (d >= 0) {
            ready |= DRAGON_CHANNEL_WRITABLE;
        } else if (ph != dc::kReady) {
            if (check_peers && peer_dead(cur)) {
                recover_slot(ch, s, cur);
            }
            *stuck = true;
        }
    }
    return ready;
}

constexpr size_t kWaitvMax = 128; // FUTEX_WAITV_MAX

struct WaitvEntry {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

bool waitv_supported = true;

// Sleep until one of the words changes or `rel` passes; false if futex_waitv is missing.
bool waitv(WaitvEntry *w, size_t n, const struct timespec *rel) {
    struct timespec abs {};
    struct timespec *absp = nullptr;
    if (rel != nullptr) {
        clock_gettime(CLOCK_MONOTONIC, &abs);
        abs.tv_sec += rel->tv_sec;
        abs.tv_nsec += rel->tv_nsec;
        if (abs.tv_nsec >= 1000000000L) {
            abs.tv_sec += 1;
            abs.tv_nsec -= 1000000000L;
        }
        absp = &abs;
    }
    long rc = ::syscall(SYS_futex_waitv, w, static_cast<unsigned>(n), 0U, absp, CLOCK_MONOTONIC);
    if (rc < 0 && errno == ENOSYS) {
        waitv_supported = false;
        return false;
    }
    return true;
}

} // namespace

namespace dragon::chan {

dragon_status_t resolve_wait_mode(const dragon_channel_attr_t *given, dragon_wait_mode_t *mode) {
    *mode = dragon::detail::process_wait_mode();
    if (given == nullptr) {
        return DRAGON_SUCCESS;
    }
    if (given->struct_size < sizeof(size_t)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "attributes: struct_size is %zu; call dragon_channel_attr_init first",
                    given->struct_size);
    }
    if (given->struct_size < offsetof(dragon_channel_attr_t, wait_mode) + sizeof(int)) {
        return DRAGON_SUCCESS;
    }
    // Read the mode as an int: a C caller may store any value in the enum.
    int raw = 0;
    std::memcpy(&raw,
                reinterpret_cast<const char *>(given) + offsetof(dragon_channel_attr_t, wait_mode),
                sizeof raw);
    if (!dragon::detail::valid_wait_mode(raw)) {
        return fail(DRAGON_INVALID_ARGUMENT, "unknown wait mode %d", raw);
    }
    *mode = raw == DRAGON_WAIT_DEFAULT ? dragon::detail::process_wait_mode()
                                       : static_cast<dragon_wait_mode_t>(raw);
    return DRAGON_SUCCESS;
}

dragon_status_t create(dragon_pool_t *pool, obj::Kind kind, size_t capacity, size_t slot_size,
                       dragon_wait_mode_t mode, dragon_channel_t **out, ItemType item) {
    if (out == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "create %s: output handle is NULL",
                    obj::kind_name(kind));
    }
    *out = nullptr;
    if (capacity == 0 || capacity > kMaxCapacity) {
        return fail(DRAGON_INVALID_ARGUMENT, "create %s: capacity %zu (use 1 to %" PRIu64 ")",
                    obj::kind_name(kind), capacity, kMaxCapacity);
    }
    if (slot_size == 0 || slot_size > kMaxSlotSize) {
        return fail(DRAGON_INVALID_ARGUMENT, "create %s: slot size %zu (use 1 to %" PRIu64 ")",
                    obj::kind_name(kind), slot_size, kMaxSlotSize);
    }
    if (!valid_mode(mode)) {
        return fail(DRAGON_INVALID_ARGUMENT, "create %s: unknown wait mode %d",
                    obj::kind_name(kind), static_cast<int>(mode));
    }
    uint64_t slot = std::max<uint64_t>(16, round_up(slot_size, 8));
    uint64_t stride = round_up(kSlotHeader + slot, 64);
    uint64_t bytes = sizeof(ChannelHeader) + stride * capacity;
    auto ch = std::make_unique<dragon_channel>();
    if (dragon_status_t st = obj::create(pool, kind, bytes, &ch->obj); st != DRAGON_SUCCESS) {
        return st;
    }
    auto *h = static_cast<ChannelHeader *>(ch->obj.base);
    h->capacity = capacity;
    h->slot_size = slot;
    h->stride = stride;
    h->slots_offset = sizeof(ChannelHeader);
    h->item_fixed = item.fixed;
    h->item_tag = item.tag;
    uint8_t *slots = static_cast<uint8_t *>(ch->obj.base) + h->slots_offset;
    for (uint64_t i = 0; i < capacity; ++i) {
        reinterpret_cast<Slot *>(slots + i * stride)
            ->state.store(make_state(i, kFree, 0), std::memory_order_relaxed);
    }
    obj::publish(ch->obj);
    bind(ch.get());
    ch->mode = dc::to_wait_mode(mode);
    *out = ch.release();
    return DRAGON_SUCCESS;
}

dragon_status_t attach(const void *bytes, size_t len, uint32_t accept, dragon_wait_mode_t mode,
                       dragon_channel_t **out) {
    if (out == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "attach: output handle is NULL");
    }
    *out = nullptr;
    if (!valid_mode(mode)) {
        return fail(DRAGON_INVALID_ARGUMENT, "attach: unknown wait mode %d",
                    static_cast<int>(mode));
    }
    auto ch = std::make_unique<dragon_channel>();
    if (dragon_status_t st = obj::attach(bytes, len, accept, &ch->obj); st != DRAGON_SUCCESS) {
        return st;
    }
    const auto *h = static_cast<const ChannelHeader *>(ch->obj.base);
    // Never trust shared sizes: the slots must lie inside the object's memory.
    bool ok = ch->obj.size >= sizeof(ChannelHeader) && h->capacity >= 1 &&
              h->capacity <= kMaxCapacity && h->slot_size >= 16 && h->slot_size <= kMaxSlotSize &&
              h->stride >= kSlotHeader + h->slot_size && h->stride % 64 == 0 &&
              h->slots_offset == sizeof(ChannelHeader) &&
              h->slots_offset + h->stride * h->capacity <= ch->obj.size;
    if (!ok) {
        obj::release(&ch->obj);
        return fail(DRAGON_CORRUPTED, "attach %s: its header is inconsistent",
                    obj::kind_name(ch->obj.kind));
    }
    bind(ch.get());
    ch->mode = dc::to_wait_mode(mode);
    *out = ch.release();
    return DRAGON_SUCCESS;
}

void detach(dragon_channel_t *ch) {
    obj::release(&ch->obj);
    delete ch;
}

dragon_status_t destroy(dragon_channel_t *ch) {
    ChannelHeader *h = ch->hdr;
    if (!obj::alive(ch->obj)) {
        dragon_status_t st = closed(ch);
        detach(ch);
        return st;
    }
    obj::retire(ch->obj);
    // Wake every sleeper; each finds the object retired and returns DRAGON_CLOSED. Give them
    // (and calls already past their liveness check) time to leave before the memory goes
    // back to the pool. A waiter that was SIGKILLed never leaves: its slot is taken back
    // (one that found no slot is waited for until the bound).
    Waiters *all[] = {&h->recv, &h->send, &h->join};
    for (Waiters *w : all) {
        w->word.fetch_add(1, std::memory_order_seq_cst);
        detail::futex_wake_all(&w->word);
    }
    int64_t give_up = detail::monotonic_ns() + 1000000000LL;
    struct timespec ms = {0, 1000000};
    auto inside = [&] {
        uint32_t n = 0;
        for (Waiters *w : all) {
            detail::repair_waiters(*w);
            n += detail::blocked_count(*w);
        }
        return n;
    };
    nanosleep(&ms, nullptr);
    while (inside() != 0 && detail::monotonic_ns() < give_up) {
        for (Waiters *w : all) {
            w->word.fetch_add(1, std::memory_order_seq_cst);
            detail::futex_wake_all(&w->word);
        }
        nanosleep(&ms, nullptr);
    }
    // Drop queued zero-copy messages: their allocations go back to the pool.
    for (uint64_t i = 0; i < ch->capacity; ++i) {
        auto *s = reinterpret_cast<Slot *>(ch->slots + i * ch->stride);
        uint64_t cur = s->state.load(std::memory_order_acquire);
        uint64_t meta = s->meta.load(std::memory_order_relaxed);
        if (phase_of(cur) == kReady && (meta & kZeroCopy) != 0) {
            uint64_t off = 0;
            std::memcpy(&off, payload(s), sizeof off);
            if (off >= ch->heap_size) {
                continue;
            }
            // Take it as a receiver would, so that a concurrent dragon_pool_reclaim (which
            // no longer sees this channel) and this free do not both free it.
            std::atomic<uint32_t> &owner = pool::owner_of(ch->obj.pool, off);
            uint32_t was = owner.load(std::memory_order_acquire);
            if (was != pool::kOwnerReclaimed &&
                owner.compare_exchange_strong(was, detail::self_tag(), std::memory_order_acq_rel)) {
                dragon_pool_free(ch->obj.pool, ch->heap + off);
            }
        }
    }
    dragon_status_t st = obj::free_memory(&ch->obj);
    delete ch;
    return st;
}

dragon_status_t send(dragon_channel_t *ch, const void *buf, size_t len, void *zc_ptr,
                     bool count_task, dragon_timeout_t timeout) {
    if (len > kLenMask) {
        return fail(DRAGON_INVALID_ARGUMENT, "send: %zu bytes is too long", len);
    }
    if (buf == nullptr && len != 0 && zc_ptr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "send: buffer is NULL");
    }
    detail::Deadline deadline(timeout);
    void *owned = nullptr; // an allocation this call made for a large message
    if (zc_ptr == nullptr && len > ch->slot_size) {
        dragon_status_t st = dragon_pool_alloc_timeout(ch->obj.pool, len, timeout, &owned);
        if (st != DRAGON_SUCCESS) {
            return wrap(st, "send: no room in the pool for a %zu-byte message", len);
        }
        std::memcpy(owned, buf, len);
        zc_ptr = owned;
    }
    SendArgs m{buf, len, zc_ptr, count_task, false};
    dragon_timeout_t left = owned != nullptr ? deadline.left() : timeout;
    dragon_status_t st = detail::blocking_wait(
        ch->mode, left, ch->hdr->send,
        [&](bool check, dragon_status_t *status) { return try_send(ch, m, check, status); });
    if (st != DRAGON_SUCCESS && owned != nullptr) {
        dragon_pool_free(ch->obj.pool, owned);
    }
    if (st == DRAGON_TIMEOUT) {
        return fail(st, "send: the %s stayed full (%" PRIu64 " messages) for %" PRId64 " ns",
                    obj::kind_name(ch->obj.kind), ch->capacity, timeout);
    }
    return st;
}

dragon_status_t recv(dragon_channel_t *ch, void *buf, size_t cap, bool as_mem, void **ptr,
                     size_t *len, dragon_timeout_t timeout) {
    RecvArgs r{buf, cap, as_mem, ptr, len, nullptr, 0};
    dragon_status_t st = detail::blocking_wait(
        ch->mode, timeout, ch->hdr->recv,
        [&](bool check, dragon_status_t *status) { return try_recv(ch, r, check, status); });
    if (r.scratch != nullptr) {
        dragon_pool_free(ch->obj.pool, r.scratch);
    }
    if (st == DRAGON_TIMEOUT) {
        return fail(st, "recv: the %s stayed empty for %" PRId64 " ns",
                    obj::kind_name(ch->obj.kind), timeout);
    }
    return st;
}

} // namespace dragon::chan

extern "C" {

DRAGON_API dragon_status_t dragon_channel_attr_init(dragon_channel_attr_t *attr) {
    if (attr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_attr_init: attr is NULL");
    }
    std::memset(attr, 0, sizeof *attr);
    attr->struct_size = sizeof *attr;
    attr->wait_mode = DRAGON_WAIT_DEFAULT;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_channel_create(dragon_pool_t *pool, size_t capacity,
                                                 size_t slot_size,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_channel_t **channel) {
    return guarded("dragon_channel_create", [&]() -> dragon_status_t {
        dragon_wait_mode_t mode{};
        if (dragon_status_t st = dc::resolve_wait_mode(attr, &mode); st != DRAGON_SUCCESS) {
            return st;
        }
        return dc::create(pool, dobj::Kind::kChannel, capacity, slot_size, mode, channel);
    });
}

DRAGON_API dragon_status_t dragon_channel_serialize(const dragon_channel_t *channel, void *buf,
                                                    size_t cap, size_t *len) {
    if (channel == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_serialize: channel is NULL");
    }
    return dobj::serialize(channel->obj, buf, cap, len);
}

DRAGON_API dragon_status_t dragon_channel_attach(const void *bytes, size_t len,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_channel_t **channel) {
    return guarded("dragon_channel_attach", [&]() -> dragon_status_t {
        dragon_wait_mode_t mode{};
        if (dragon_status_t st = dc::resolve_wait_mode(attr, &mode); st != DRAGON_SUCCESS) {
            return st;
        }
        return dc::attach(bytes, len, dobj::kind_bit(dobj::Kind::kChannel), mode, channel);
    });
}

DRAGON_API dragon_status_t dragon_channel_detach(dragon_channel_t *channel) {
    if (channel == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_detach: channel is NULL");
    }
    return guarded("dragon_channel_detach", [&]() -> dragon_status_t {
        dc::detach(channel);
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_channel_destroy(dragon_channel_t *channel) {
    if (channel == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_destroy: channel is NULL");
    }
    return guarded("dragon_channel_destroy", [&]() { return dc::destroy(channel); });
}

DRAGON_API dragon_status_t dragon_channel_set_wait_mode(dragon_channel_t *channel,
                                                        dragon_wait_mode_t mode) {
    int raw = 0;
    static_assert(sizeof raw == sizeof mode);
    std::memcpy(&raw, &mode, sizeof raw);
    if (channel == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_set_wait_mode: channel is NULL");
    }
    if (!dragon::detail::valid_wait_mode(raw)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_set_wait_mode: unknown wait mode %d",
                    raw);
    }
    channel->mode = dc::to_wait_mode(mode);
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_channel_pool(const dragon_channel_t *channel,
                                               dragon_pool_t **pool) {
    if (channel == nullptr || pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_pool: NULL argument");
    }
    *pool = channel->obj.pool;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_channel_send(dragon_channel_t *channel, const void *buf,
                                               size_t len, dragon_timeout_t timeout) {
    if (channel == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_send: channel is NULL");
    }
    return dc::send(channel, buf, len, nullptr, false, timeout);
}

DRAGON_API dragon_status_t dragon_channel_send_mem(dragon_channel_t *channel, void *ptr, size_t len,
                                                   dragon_timeout_t timeout) {
    if (channel == nullptr || ptr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_send_mem: NULL argument");
    }
    size_t block = 0;
    if (dragon_status_t st = dragon_pool_block_size(channel->obj.pool, ptr, &block);
        st != DRAGON_SUCCESS) {
        return wrap(st, "dragon_channel_send_mem: the memory must be a live allocation of the "
                        "channel's pool");
    }
    if (len > block) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_channel_send_mem: %zu bytes is more than the %zu-byte allocation", len,
                    block);
    }
    return dc::send(channel, nullptr, len, ptr, false, timeout);
}

DRAGON_API dragon_status_t dragon_channel_recv(dragon_channel_t *channel, void *buf, size_t cap,
                                               size_t *len, dragon_timeout_t timeout) {
    if (channel == nullptr || len == nullptr || (buf == nullptr && cap != 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_recv: NULL argument");
    }
    return dc::recv(channel, buf, cap, false, nullptr, len, timeout);
}

DRAGON_API dragon_status_t dragon_channel_recv_mem(dragon_channel_t *channel, void **ptr,
                                                   size_t *len, dragon_timeout_t timeout) {
    if (channel == nullptr || ptr == nullptr || len == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_recv_mem: NULL argument");
    }
    *ptr = nullptr;
    return dc::recv(channel, nullptr, 0, true, ptr, len, timeout);
}

DRAGON_API dragon_status_t dragon_channel_info(const dragon_channel_t *channel,
                                               dragon_channel_info_t *info) {
    if (channel == nullptr || info == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_info: NULL argument");
    }
    if (info->struct_size < sizeof(size_t)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_channel_info: set info->struct_size = sizeof(dragon_channel_info_t)");
    }
    if (!dobj::alive(channel->obj)) {
        return closed(channel);
    }
    const dc::ChannelHeader *h = channel->hdr;
    dragon_channel_info_t full{};
    full.struct_size = info->struct_size;
    full.capacity = channel->capacity;
    full.slot_size = channel->slot_size;
    uint64_t head = h->head.load(std::memory_order_acquire);
    uint64_t tail = h->tail.load(std::memory_order_acquire);
    full.count = tail > head ? std::min<uint64_t>(tail - head, channel->capacity) : 0;
    full.blocked_senders = detail::blocked_count(h->send);
    full.blocked_receivers = detail::blocked_count(h->recv);
    std::memcpy(info, &full, std::min(info->struct_size, sizeof full));
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_channel_poll(dragon_channel_t *const *channels, size_t n,
                                               uint32_t events, uint32_t *revents,
                                               dragon_timeout_t timeout) {
    return guarded("dragon_channel_poll", [&]() -> dragon_status_t {
        if (channels == nullptr || revents == nullptr || n == 0) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_poll: no channels");
        }
        events &= DRAGON_CHANNEL_READABLE | DRAGON_CHANNEL_WRITABLE;
        if (events == 0) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "dragon_channel_poll: ask for READABLE and/or WRITABLE");
        }
        for (size_t i = 0; i < n; ++i) {
            if (channels[i] == nullptr) {
                return fail(DRAGON_INVALID_ARGUMENT, "dragon_channel_poll: channel %zu is NULL", i);
            }
        }
        bool stuck = false;
        auto scan = [&](bool check) {
            bool any = false;
            stuck = false;
            for (size_t i = 0; i < n; ++i) {
                revents[i] = readiness(channels[i], events, check, &stuck);
                any = any || revents[i] != 0;
            }
            return any;
        };
        if (scan(timeout == 0)) {
            return DRAGON_SUCCESS;
        }
        if (timeout == 0) {
            return fail(DRAGON_TIMEOUT, "dragon_channel_poll: none of %zu channels is ready", n);
        }
        detail::Deadline deadline(timeout);
        WaitMode mode = channels[0]->mode;
        if (mode != WaitMode::kIdle) {
            int64_t spin_end = mode == WaitMode::kSpin
                                   ? INT64_MAX
                                   : detail::monotonic_ns() + detail::kAdaptiveSpinNs;
            for (unsigned i = 1;; ++i) {
                detail::cpu_relax();
                if (scan(false)) {
                    return DRAGON_SUCCESS;
                }
                if ((i & 15U) == 0) {
                    if (deadline.expired()) {
                        return fail(DRAGON_TIMEOUT, "dragon_channel_poll: timed out");
                    }
                    if (detail::monotonic_ns() >= spin_end) {
                        break;
                    }
                }
            }
        }
        // Sleep on every channel's word at once (futex_waitv). Register as a sleeper first so
        // that senders (receivers) wake us.
        std::vector<dc::Waiters *> ws;
        for (size_t i = 0; i < n; ++i) {
            if ((events & DRAGON_CHANNEL_READABLE) != 0) {
                ws.push_back(&channels[i]->hdr->recv);
            }
            if ((events & DRAGON_CHANNEL_WRITABLE) != 0) {
                ws.push_back(&channels[i]->hdr->send);
            }
        }
        std::vector<detail::WaitRegistration> regs;
        regs.reserve(ws.size());
        for (dc::Waiters *w : ws) {
            regs.emplace_back(w);
            regs.back().sleep();
        }
        std::atomic_thread_fence(std::memory_order_seq_cst);
        std::vector<WaitvEntry> wv(std::min(ws.size(), kWaitvMax));
        size_t window = 0; // more words than futex_waitv takes: rotate windows, 1 ms each
        for (;;) {
            size_t count = wv.size();
            for (size_t k = 0; k < count; ++k) {
                dc::Waiters *w = ws[(window + k) % ws.size()];
                wv[k] = WaitvEntry{w->word.load(std::memory_order_seq_cst),
                                   reinterpret_cast<uint64_t>(&w->word), FUTEX_32, 0};
            }
            if (scan(true)) {
                return DRAGON_SUCCESS;
            }
            if (deadline.expired()) {
                return fail(DRAGON_TIMEOUT,
                            "dragon_channel_poll: none of %zu channels became "
                            "ready in %" PRId64 " ns",
                            n, timeout);
            }
            struct timespec ts {};
            const struct timespec *rel = deadline.remaining(&ts);
            struct timespec slice {
                0, detail::kStuckSliceNs
            };
            bool sliced = stuck || ws.size() > count || !waitv_supported;
            if (!waitv_supported) {
                slice.tv_nsec = 1000000;
            }
            if (sliced && (rel == nullptr || ts.tv_sec > 0 || ts.tv_nsec > slice.tv_nsec)) {
                rel = &slice;
            }
            if (!waitv_supported || !waitv(wv.data(), count, rel)) {
                detail::futex_wait(&ws[window % ws.size()]->word, static_cast<uint32_t>(wv[0].val),
                                   rel);
            }
            if (ws.size() > count) {
                window = (window + count) % ws.size();
            }
        }
    });
}

} // extern "C"
