#include "heap.hpp"

#include "../common/clock.hpp"
#include "../common/futex.hpp"
#include "../common/proc.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <csignal>
#include <new>
#include <utility>

#include <cstring>

#include <sched.h>
#include <sys/stat.h>
#ifdef DRAGON_HAVE_RSEQ
#include <sys/rseq.h>
#endif
#include <unistd.h>

namespace dragon::pool {
namespace {

constexpr uint64_t kTagStep = 1ULL << 32;
constexpr uint64_t kTagMask = ~0xFFFFFFFFULL;

unsigned floor_log2(uint64_t v) {
    return 63U - static_cast<unsigned>(std::countl_zero(v));
}

// The word a cached block uses to link to the next one on its stack.
std::atomic_ref<uint32_t> link_of(uint8_t *block) {
    return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t *>(block));
}

} // namespace

// Holds the segment's robust mutex. When the previous owner died holding it, the buddy state
// may be half-updated: rebuild it from the block map before marking the mutex consistent.
class Heap::Locked {
  public:
    explicit Locked(Heap &heap) : heap_(heap) {
        int rc = pthread_mutex_lock(&heap_.hdr_->lock);
        if (rc == EOWNERDEAD) {
            heap_.rebuild();
            heap_.hdr_->recoveries++;
            pthread_mutex_consistent(&heap_.hdr_->lock);
            rc = 0;
        }
        status_ = rc == 0                 ? DRAGON_SUCCESS
                  : rc == ENOTRECOVERABLE ? DRAGON_CORRUPTED
                                          : DRAGON_SYSTEM_ERROR;
    }
    ~Locked() {
        if (status_ == DRAGON_SUCCESS) {
            pthread_mutex_unlock(&heap_.hdr_->lock);
        }
    }
    Locked(const Locked &) = delete;
    Locked &operator=(const Locked &) = delete;

    dragon_status_t status() const { return status_; }

  private:
    Heap &heap_;
    dragon_status_t status_;
};

Heap::Heap(void *base) : hdr_(static_cast<SegmentHeader *>(base)) {
    auto *bytes = static_cast<uint8_t *>(base);
    map_ = reinterpret_cast<std::atomic<uint8_t> *>(bytes + hdr_->map_offset);
    owners_ = reinterpret_cast<std::atomic<uint32_t> *>(bytes + hdr_->owner_offset);
    heap_ = bytes + hdr_->heap_offset;
    heap_size_ = hdr_->heap_size;
    min_order_ = hdr_->min_order;
    max_order_ = hdr_->max_order;
    shard_mask_ = hdr_->shard_count - 1;
}

void Heap::format(void *base, uint64_t segment_size, uint64_t map_offset, uint64_t owner_offset,
                  uint64_t heap_offset, uint64_t heap_size, unsigned min_order) {
    auto *hdr = new (base) SegmentHeader{};
    hdr->layout_version = kLayoutVersion;
    hdr->header_size = sizeof(SegmentHeader);
    hdr->segment_size = segment_size;
    hdr->map_offset = map_offset;
    hdr->owner_offset = owner_offset;
    hdr->heap_offset = heap_offset;
    hdr->heap_size = heap_size;
    hdr->min_order = min_order;
    hdr->max_order = floor_log2(heap_size);
    long cpus = sysconf(_SC_NPROCESSORS_CONF);
    unsigned shards = 1;
    while (shards < kMaxShards && static_cast<long>(shards) < cpus) {
        shards *= 2;
    }
    hdr->shard_count = shards;

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&hdr->lock, &ma);
    pthread_mutexattr_destroy(&ma);

    std::fill(std::begin(hdr->free_head), std::end(hdr->free_head), kNil);
    for (auto &shard : hdr->cache) {
        for (auto &top : shard.top) {
            top.store(kEmptyIndex, std::memory_order_relaxed);
        }
    }

    // The heap need not be a power of two: cover it with the largest aligned blocks, biggest
    // first. Each such block's buddy would lie past the heap's end, so they never merge.
    Heap view(base);
    uint64_t offset = 0;
    uint64_t left = heap_size;
    while (left != 0) {
        unsigned k = floor_log2(left);
        view.list_insert(offset, k);
        offset += 1ULL << k;
        left -= 1ULL << k;
    }
}

unsigned Heap::my_shard() const {
    // The CPU we run on, read from the rseq area the kernel keeps current for each thread
    // (glibc registers it): one load, no call. Migrating right after is harmless: any shard
    // is correct, our own is just the one nobody else is hammering.
#ifdef DRAGON_HAVE_RSEQ
    if (__builtin_expect(__rseq_size != 0, 1)) {
        const auto *area = reinterpret_cast<const volatile struct rseq *>(
            static_cast<const char *>(__builtin_thread_pointer()) + __rseq_offset);
        return area->cpu_id_start & shard_mask_;
    }
#endif
    int cpu = sched_getcpu();
    return cpu < 0 ? 0U : static_cast<unsigned>(cpu) & shard_mask_;
}

uint64_t Heap::cache_pop(std::atomic<uint64_t> &top) {
    uint64_t cur = top.load(std::memory_order_acquire);
    for (;;) {
        auto index = static_cast<uint32_t>(cur);
        if (index == kEmptyIndex) {
            return kNil;
        }
        uint64_t offset = static_cast<uint64_t>(index) << min_order_;
        // The block may be popped and reused by another process meanwhile; then the tag has
        // changed and the exchange below fails, so a stale link is never installed.
        uint32_t next = link_of(heap_ + offset).load(std::memory_order_relaxed);
        uint64_t want = ((cur & kTagMask) + kTagStep) | next;
        if (top.compare_exchange_weak(cur, want, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
            return offset;
        }
    }
}

void Heap::cache_push(std::atomic<uint64_t> &top, uint64_t offset) {
    auto index = static_cast<uint32_t>(offset >> min_order_);
    uint64_t cur = top.load(std::memory_order_relaxed);
    for (;;) {
        link_of(heap_ + offset).store(static_cast<uint32_t>(cur), std::memory_order_relaxed);
        uint64_t want = ((cur & kTagMask) + kTagStep) | index;
        if (top.compare_exchange_weak(cur, want, std::memory_order_release,
                                      std::memory_order_relaxed)) {
            return;
        }
    }
}

void Heap::list_insert(uint64_t offset, unsigned order) {
    FreeNode *n = node(offset);
    uint64_t head = hdr_->free_head[order];
    n->next = head;
    n->prev = kNil;
    if (head != kNil) {
        node(head)->prev = offset;
    }
    hdr_->free_head[order] = offset;
    hdr_->nonempty |= 1ULL << order;
    hdr_->free_bytes += 1ULL << order;
    map_at(offset).store(pack(kFree, order), std::memory_order_release);
}

void Heap::list_remove(uint64_t offset, unsigned order) {
    FreeNode *n = node(offset);
    if (n->prev != kNil) {
        node(n->prev)->next = n->next;
    } else {
        hdr_->free_head[order] = n->next;
    }
    if (n->next != kNil) {
        node(n->next)->prev = n->prev;
    }
    if (hdr_->free_head[order] == kNil) {
        hdr_->nonempty &= ~(1ULL << order);
    }
    hdr_->free_bytes -= 1ULL << order;
}

// Every store to the block map below leaves it describing a valid partition of the heap, so a
// crash at any point leaves something rebuild() can read (docs/pool.md walks through it).
dragon_status_t Heap::buddy_alloc(unsigned order, uint32_t tag, uint64_t *offset,
                                  BlockState state) {
    uint64_t avail = hdr_->nonempty & (~0ULL << order);
    if (avail == 0) {
        return DRAGON_NO_SPACE;
    }
    auto k = static_cast<unsigned>(std::countr_zero(avail));
    uint64_t off = hdr_->free_head[k];
    list_remove(off, k);
    // Split: the upper halves become free blocks; the map still shows `off` as one free
    // block of the original order until the final store, which hides them until then.
    while (k > order) {
        --k;
        list_insert(off + (1ULL << k), k);
        maybe_crash(CrashPoint::kSplit);
    }
    owner_at(off).store(tag, std::memory_order_relaxed);
    map_at(off).store(pack(state, order), std::memory_order_release);
    hdr_->live_blocks++;
    *offset = off;
    return DRAGON_SUCCESS;
}

void Heap::coalesce_insert(uint64_t offset, unsigned order, bool rebuilding) {
    while (order < max_order_) {
        uint64_t size = 1ULL << order;
        uint64_t buddy = offset ^ size;
        if (buddy + size > heap_size_) {
            break;
        }
        // While rebuilding, only blocks below the walk's position are in the lists yet.
        if (rebuilding && buddy > offset) {
            break;
        }
        if (map_at(buddy).load(std::memory_order_acquire) != pack(kFree, order)) {
            break;
        }
        list_remove(buddy, order);
        maybe_crash(CrashPoint::kCoalesce);
        uint64_t low = std::min(offset, buddy);
        uint64_t high = std::max(offset, buddy);
        map_at(low).store(pack(kFree, order + 1), std::memory_order_release);
        map_at(high).store(kNone, std::memory_order_release);
        offset = low;
        ++order;
    }
    list_insert(offset, order);
}

void Heap::buddy_release(uint64_t offset, unsigned order) {
    map_at(offset).store(pack(kFree, order), std::memory_order_release);
    hdr_->live_blocks--;
    coalesce_insert(offset, order, false);
}

uint64_t Heap::drain_caches() {
    uint64_t drained = 0;
    for (unsigned shard = 0; shard <= shard_mask_; ++shard) {
        for (unsigned k = min_order_; k <= max_order_; ++k) {
            uint64_t off;
            while ((off = cache_pop(stack(shard, k))) != kNil) {
                maybe_crash(CrashPoint::kDrain);
                buddy_release(off, k);
                ++drained;
            }
        }
    }
    return drained;
}

// Re-derive the free lists and counters from the block map. Cached blocks stay where they
// are (the lock-free stacks are not guarded by the lock); free blocks are relisted and
// merged with their lower buddies as the walk goes up the heap.
void Heap::rebuild() {
    std::fill(std::begin(hdr_->free_head), std::end(hdr_->free_head), kNil);
    hdr_->nonempty = 0;
    hdr_->free_bytes = 0;
    hdr_->live_blocks = 0;
    maybe_crash(CrashPoint::kRebuild);
    uint64_t off = 0;
    while (off < heap_size_) {
        uint8_t b = map_at(off).load(std::memory_order_acquire);
        BlockState st = state_of(b);
        unsigned k = order_of(b);
        bool valid = st != kNone && k >= min_order_ && k <= max_order_ &&
                     (off & ((1ULL << k) - 1)) == 0 && off + (1ULL << k) <= heap_size_;
        if (!valid) {
            // Never seen in practice: the map is written so that this cannot happen. Should it
            // be damaged anyway, fence the region off as live (leaked) rather than risk
            // handing out memory somebody uses.
            k = off == 0 ? max_order_ : static_cast<unsigned>(std::countr_zero(off));
            k = std::min({k, floor_log2(heap_size_ - off), max_order_});
            k = std::max(k, min_order_);
            st = kLive;
            owner_at(off).store(kOwnerNone, std::memory_order_relaxed); // never reclaimed
            map_at(off).store(pack(kLive, k), std::memory_order_release);
        }
        if (st == kFree) {
            coalesce_insert(off, k, true);
        } else {
            hdr_->live_blocks++;
        }
        off += 1ULL << k;
    }
}

dragon_status_t Heap::alloc_slow(unsigned order, uint32_t tag, uint64_t *offset) {
    Locked lock(*this);
    if (lock.status() != DRAGON_SUCCESS) {
        return lock.status();
    }
    dragon_status_t st = buddy_alloc(order, tag, offset);
    if (st == DRAGON_NO_SPACE && drain_caches() != 0) {
        st = buddy_alloc(order, tag, offset);
    }
    if (st == DRAGON_NO_SPACE && free_dead_caches_locked() != 0) {
        st = buddy_alloc(order, tag, offset);
    }
    return st;
}

// A block just popped from a cache stack becomes ours, unless reclaim() took it from a
// process that died holding it popped (see reclaim): the exchange decides which.
bool Heap::take_cached(uint64_t offset, unsigned order, uint32_t tag) {
    if (owner_at(offset).exchange(tag, std::memory_order_acq_rel) == kOwnerReclaimed) {
        return false;
    }
    map_at(offset).store(pack(kLive, order), std::memory_order_release);
    return true;
}

dragon_status_t Heap::alloc(unsigned order, uint32_t tag, uint64_t *offset) {
    // Own shard first, then the others' (blocks freed by a process on another CPU), and only
    // then the buddy allocator's lock.
    unsigned own = my_shard();
    for (unsigned i = 0; i <= shard_mask_; ++i) {
        std::atomic<uint64_t> &top = stack((own + i) & shard_mask_, order);
        uint64_t off;
        while ((off = cache_pop(top)) != kNil) {
            if (take_cached(off, order, tag)) {
                *offset = off;
                return DRAGON_SUCCESS;
            }
        }
    }
    return alloc_slow(order, tag, offset);
}

dragon_status_t Heap::alloc_wait(unsigned order, uint32_t tag, dragon_timeout_t timeout,
                                 uint64_t *offset) {
    detail::Deadline deadline(timeout);
    detail::WaitRegistration reg(&hdr_->space);
    for (;;) {
        dragon_status_t st = alloc(order, tag, offset);
        if (st != DRAGON_NO_SPACE || timeout == 0) {
            return st;
        }
        // Announce ourselves, then look once more: a free that lands after this point sees
        // a sleeper and bumps the word, so the futex wait below cannot miss it.
        reg.sleep();
        uint32_t seq = hdr_->space.word.load(std::memory_order_seq_cst);
        st = alloc(order, tag, offset);
        if (st == DRAGON_NO_SPACE && !deadline.expired()) {
            struct timespec ts {};
            detail::futex_wait(&hdr_->space.word, seq, deadline.remaining(&ts));
        }
        reg.wake();
        if (st != DRAGON_NO_SPACE) {
            return st;
        }
        if (deadline.expired()) {
            return DRAGON_TIMEOUT;
        }
    }
}

dragon_status_t Heap::free(uint64_t offset, uint32_t tag) {
    std::atomic<uint8_t> &slot = map_at(offset);
    uint8_t b = slot.load(std::memory_order_acquire);
    if (state_of(b) != kLive) {
        return DRAGON_NOT_ALLOCATED;
    }
    // The freer answers for the block until it is on a stack: killed between the exchange
    // and the push, it leaves a cached block on no stack that reclaim() can give back.
    std::atomic<uint32_t> &owner = owner_at(offset);
    if (owner.load(std::memory_order_relaxed) != tag) {
        owner.store(tag, std::memory_order_relaxed);
    }
    // The exchange makes a racing double free lose cleanly instead of caching a block twice.
    if (!slot.compare_exchange_strong(b, pack(kCached, order_of(b)), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return DRAGON_NOT_ALLOCATED;
    }
    cache_push(stack(my_shard(), order_of(b)), offset);
    detail::wake_sleepers_after_rmw(&hdr_->space.sleepers, &hdr_->space.word);
    return DRAGON_SUCCESS;
}

dragon_status_t Heap::set_owner(uint64_t offset, uint32_t tag) {
    std::atomic<uint32_t> &owner = owner_at(offset);
    uint32_t cur = owner.load(std::memory_order_acquire);
    for (;;) {
        if (state_of(map_at(offset).load(std::memory_order_acquire)) != kLive ||
            cur == kOwnerReclaimed) {
            return DRAGON_NOT_ALLOCATED;
        }
        if (owner.compare_exchange_weak(cur, tag, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
            return DRAGON_SUCCESS;
        }
    }
}

uint64_t Heap::live_block_size(uint64_t offset) const {
    uint8_t b = map_at(offset).load(std::memory_order_acquire);
    return state_of(b) == kLive ? 1ULL << order_of(b) : 0;
}

dragon_status_t Heap::stats(Stats *out) {
    Locked lock(*this);
    if (lock.status() != DRAGON_SUCCESS) {
        return lock.status();
    }
    drain_caches();
    free_dead_caches_locked();
    uint64_t blocks = 0;
    uint64_t bytes = 0;
    for (const CacheSlot &slot : hdr_->slots) {
        if (slot.tag.load(std::memory_order_acquire) != 0) {
            for (unsigned i = 0; i < kMagOrders; ++i) {
                uint64_t n = slot.count[i].load(std::memory_order_relaxed);
                blocks += n;
                bytes += n << (min_order_ + i);
            }
        }
    }
    out->total_bytes = heap_size_;
    out->free_bytes = std::min(hdr_->free_bytes + bytes, heap_size_);
    out->live_blocks = hdr_->live_blocks - std::min(blocks, hdr_->live_blocks);
    out->largest_free = hdr_->nonempty == 0 ? 0 : 1ULL << floor_log2(hdr_->nonempty);
    out->cached_bytes = bytes;
    return DRAGON_SUCCESS;
}

// ---- thread caches ------------------------------------------------------------------------

namespace {

constexpr uint64_t kMagBytesPerOrder = 32ULL * 1024; // at most, per order and thread
constexpr uint64_t kMagHeapShare = 256;              // and at most heap / 256 per order

// The pid namespace of this process: a slot of another one cannot be judged dead or alive
// from here (its pids mean other processes), so it is left alone.
uint64_t own_pidns() {
    static const uint64_t ino = [] {
        struct stat st {};
        return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
    }();
    return ino;
}

// Free the header slots of this pid namespace whose owner dead(tag) says is dead.
template <typename Dead>
void free_slots(CacheSlot (&slots)[kCacheSlots], const Dead &dead) {
    for (CacheSlot &slot : slots) {
        uint32_t tag = slot.tag.load(std::memory_order_acquire);
        if (tag != 0 && slot.pidns.load(std::memory_order_relaxed) == own_pidns() && dead(tag)) {
            for (auto &c : slot.count) {
                c.store(0, std::memory_order_relaxed);
            }
            slot.tag.compare_exchange_strong(tag, 0, std::memory_order_acq_rel);
        }
    }
}

} // namespace

bool Heap::cache_setup(Magazine *m, uint32_t tag) {
    *m = Magazine{};
    m->tag = tag;
    uint64_t budget = std::min(kMagBytesPerOrder, std::bit_floor(heap_size_ / kMagHeapShare));
    unsigned orders = 0;
    for (unsigned i = 0; i < kMagOrders && min_order_ + i <= max_order_; ++i) {
        uint64_t cap = std::min<uint64_t>(kMagMaxCap, budget >> (min_order_ + i));
        if (cap < 2) {
            break;
        }
        m->cap[i] = static_cast<uint32_t>(cap);
        orders = i + 1;
    }
    if (orders == 0) {
        return false;
    }
    unsigned start = detail::self_tid() % kCacheSlots;
    for (int round = 0; round < 2; ++round) {
        for (unsigned j = 0; j < kCacheSlots; ++j) {
            CacheSlot &slot = hdr_->slots[(start + j) % kCacheSlots];
            uint32_t free_tag = 0;
            if (slot.tag.load(std::memory_order_relaxed) == 0 &&
                slot.tag.compare_exchange_strong(free_tag, tag, std::memory_order_acq_rel)) {
                slot.tid.store(detail::self_tid(), std::memory_order_relaxed);
                slot.pidns.store(own_pidns(), std::memory_order_relaxed);
                for (auto &c : slot.count) {
                    c.store(0, std::memory_order_relaxed);
                }
                m->slot = &slot;
                m->orders = orders;
                return true;
            }
        }
        free_dead_caches(); // every slot taken: those of dead processes come back
    }
    return false;
}

void Heap::cache_release(Magazine *m) {
    if (m->slot == nullptr) {
        return;
    }
    flush_all(m);
    m->slot->tag.store(0, std::memory_order_release);
    m->slot = nullptr;
    m->orders = 0;
}

void Heap::cache_flush(Magazine *m) {
    if (m->slot != nullptr) {
        flush_all(m);
    }
}

dragon_status_t Heap::alloc_refill(Magazine *m, unsigned order, uint64_t *offset) {
    unsigned i = order - min_order_;
    if (i >= m->orders) {
        dragon_status_t st = alloc(order, m->tag, offset);
        if (st == DRAGON_NO_SPACE && holds_any(m)) {
            flush_all(m); // our small blocks may be what keeps a large one from merging
            st = alloc(order, m->tag, offset);
        }
        return st;
    }
    if (refill(m, i) == 0) {
        // No run left for us: our cached blocks of every order go back (the slow path then
        // merges them) and the usual path decides.
        flush_all(m);
        return alloc(order, m->tag, offset);
    }
    uint32_t g = m->item[i][--m->count[i]];
    map_[g].store(pack(kLive, order), std::memory_order_release);
    publish(m, i);
    *offset = static_cast<uint64_t>(g) << min_order_;
    return DRAGON_SUCCESS;
}

dragon_status_t Heap::free_slow(Magazine *m, uint64_t offset) {
    uint64_t g = offset >> min_order_;
    uint8_t b = map_[g].load(std::memory_order_acquire);
    if (state_of(b) != kLive) {
        return DRAGON_NOT_ALLOCATED;
    }
    unsigned k = order_of(b);
    unsigned i = k - min_order_;
    if (i >= m->orders || hdr_->space.sleepers.load(std::memory_order_relaxed) != 0) {
        return free(offset, m->tag); // to the stacks, waking whoever waits for space
    }
    // Another owner's block, or a full cache: taken as free() takes it (the freer answers
    // for it, and the exchange settles a race with reclaim or a racing double free).
    std::atomic<uint32_t> &owner = owners_[g];
    if (owner.load(std::memory_order_relaxed) != m->tag) {
        owner.store(m->tag, std::memory_order_relaxed);
    }
    if (!map_[g].compare_exchange_strong(b, pack(kCached, k), std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
        return DRAGON_NOT_ALLOCATED;
    }
    if (m->count[i] == m->cap[i]) {
        flush(m, i, m->cap[i] / 2U);
    }
    m->item[i][m->count[i]++] = static_cast<uint32_t>(g);
    publish(m, i);
    return DRAGON_SUCCESS;
}

// Half a cache's worth from the stacks (each block popped and exchanged to us, as alloc()
// does: a crash leaves at most one block in flight), else a fresh run.
unsigned Heap::refill(Magazine *m, unsigned i) {
    unsigned k = min_order_ + i;
    unsigned want = std::max(1U, m->cap[i] / 2U);
    unsigned got = 0;
    unsigned own = my_shard();
    for (unsigned s = 0; s <= shard_mask_ && got < want; ++s) {
        std::atomic<uint64_t> &top = stack((own + s) & shard_mask_, k);
        uint64_t off;
        while (got < want && (off = cache_pop(top)) != kNil) {
            if (owner_at(off).exchange(m->tag, std::memory_order_acq_rel) == kOwnerReclaimed) {
                continue; // reclaim() is giving it back
            }
            m->item[i][m->count[i]++] = static_cast<uint32_t>(off >> min_order_);
            ++got;
        }
    }
    if (got != 0) {
        publish(m, i);
        return got;
    }
    return carve(m, i);
}

// A run for this thread alone: one buddy block, up to a full cache of blocks of order k,
// marked cached and ours. The run is first cached whole (one block of its own order), then
// its blocks from the top down, the first last: a crash at any point leaves cached blocks of
// a dead owner on no stack, which free_dead_caches() and reclaim() give back.
unsigned Heap::carve(Magazine *m, unsigned i) {
    unsigned k = min_order_ + i;
    Locked lock(*this);
    if (lock.status() != DRAGON_SUCCESS) {
        return 0;
    }
    unsigned want = std::min(k + floor_log2(m->cap[i]), max_order_);
    unsigned run = 0;
    for (int round = 0; round < 2 && run == 0; ++round) {
        for (unsigned r = want; r >= k && run == 0; --r) {
            if ((hdr_->nonempty >> r) != 0) {
                run = r;
            }
        }
        if (run == 0 && (round != 0 || drain_caches() == 0)) {
            return 0;
        }
    }
    uint64_t off = 0;
    if (run < k || buddy_alloc(run, m->tag, &off, kCached) != DRAGON_SUCCESS) {
        return 0;
    }
    unsigned n = 1U << std::min(run - k, 7U); // a run is at most kMagMaxCap blocks
    for (unsigned j = n - 1; j >= 1; --j) {
        uint64_t sub = off + (static_cast<uint64_t>(j) << k);
        owner_at(sub).store(m->tag, std::memory_order_relaxed);
        map_at(sub).store(pack(kCached, k), std::memory_order_release);
    }
    map_at(off).store(pack(kCached, k), std::memory_order_release);
    hdr_->live_blocks += n - 1;
    for (unsigned j = n; j-- > 0;) {
        m->item[i][m->count[i]++] =
            static_cast<uint32_t>((off + (static_cast<uint64_t>(j) << k)) >> min_order_);
    }
    publish(m, i);
    return n;
}

// The n oldest blocks (the bottom of the array) go on this CPU's stack in one push: linked
// to each other first (they are ours and on no stack meanwhile), then one exchange.
void Heap::flush(Magazine *m, unsigned i, unsigned n) {
    if (n == 0) {
        return;
    }
    unsigned k = min_order_ + i;
    uint32_t *items = m->item[i];
    for (unsigned j = 0; j + 1 < n; ++j) {
        link_of(heap_ + (static_cast<uint64_t>(items[j]) << min_order_))
            .store(items[j + 1], std::memory_order_relaxed);
    }
    uint8_t *last = heap_ + (static_cast<uint64_t>(items[n - 1]) << min_order_);
    std::atomic<uint64_t> &top = stack(my_shard(), k);
    uint64_t cur = top.load(std::memory_order_relaxed);
    for (;;) {
        link_of(last).store(static_cast<uint32_t>(cur), std::memory_order_relaxed);
        uint64_t want = ((cur & kTagMask) + kTagStep) | items[0];
        if (top.compare_exchange_weak(cur, want, std::memory_order_release,
                                      std::memory_order_relaxed)) {
            break;
        }
    }
    std::memmove(items, items + n, (m->count[i] - n) * sizeof *items);
    m->count[i] -= n;
    publish(m, i);
    detail::wake_sleepers_after_rmw(&hdr_->space.sleepers, &hdr_->space.word);
}

void Heap::flush_all(Magazine *m) {
    for (unsigned i = 0; i < m->orders; ++i) {
        flush(m, i, m->count[i]);
    }
}

uint64_t Heap::free_dead_caches() {
    Locked lock(*this);
    if (lock.status() != DRAGON_SUCCESS) {
        return 0;
    }
    return free_dead_caches_locked();
}

// Slots of dead processes (of this pid namespace) name the owners whose cached blocks are
// now nobody's: after the stacks are drained, every block still cached with such an owner is
// on no stack and is given back (with a CAS of its owner, as reclaim() takes blocks). Cheap
// when no slot is dead: one /proc look-up per live process that holds a slot.
uint64_t Heap::free_dead_caches_locked() {
    std::vector<uint32_t> dead;
    std::vector<uint32_t> alive;
    bool holding = false;
    uint64_t ns = own_pidns();
    for (CacheSlot &slot : hdr_->slots) {
        uint32_t tag = slot.tag.load(std::memory_order_acquire);
        if (tag == 0 || slot.pidns.load(std::memory_order_relaxed) != ns ||
            std::find(alive.begin(), alive.end(), tag) != alive.end()) {
            continue;
        }
        if (std::find(dead.begin(), dead.end(), tag) == dead.end()) {
            if (!detail::tag_dead(tag)) {
                alive.push_back(tag);
                continue;
            }
            dead.push_back(tag);
        }
        for (const auto &c : slot.count) {
            holding = holding || c.load(std::memory_order_relaxed) != 0;
        }
    }
    if (dead.empty()) {
        return 0;
    }
    uint64_t freed = 0;
    if (holding) {
        drain_caches();
        std::vector<std::pair<uint64_t, unsigned>> found;
        for (uint64_t off = 0; off < heap_size_;) {
            uint8_t b = map_at(off).load(std::memory_order_acquire);
            unsigned k = order_of(b);
            if (state_of(b) == kNone || k < min_order_ || k > max_order_) {
                off += 1ULL << min_order_; // never seen: the map is valid under the lock
                continue;
            }
            if (state_of(b) == kCached &&
                std::find(dead.begin(), dead.end(),
                          owner_at(off).load(std::memory_order_acquire)) != dead.end()) {
                found.emplace_back(off, k);
            }
            off += 1ULL << k;
        }
        for (const auto &[off, k] : found) {
            uint32_t tag = owner_at(off).load(std::memory_order_acquire);
            if (std::find(dead.begin(), dead.end(), tag) == dead.end() ||
                !owner_at(off).compare_exchange_strong(tag, kOwnerReclaimed,
                                                       std::memory_order_acq_rel)) {
                continue;
            }
            buddy_release(off, k);
            ++freed;
        }
        if (freed != 0) {
            detail::wake_sleepers(&hdr_->space.sleepers, &hdr_->space.word);
        }
    }
    free_slots(hdr_->slots, [&](uint32_t tag) {
        return std::find(dead.begin(), dead.end(), tag) != dead.end();
    });
    return freed;
}

// Under the lock the block map is a valid partition of the heap; meanwhile the lock-free fast
// path only flips blocks between live and cached, and pushes and pops cached blocks.
//
// A block is reclaimed when the owner it names is dead, and
//   - it is live and no shared object holds it (a zero-copy message queued in a channel
//     names its sender, or a receiver that died before it claimed the message);
//   - or it is cached and on no stack: a process died between popping it and marking it
//     (it then names that block's last freer, as every free does), or between marking it
//     cached and pushing it (it names that freer).
// The owners are read first, the objects' holdings after, so a block that enters a channel
// after its owner was read has changed owner (the sender tags it queued). Every cached block
// on a stack is popped by drain_caches() before the cached candidates are looked at again;
// one that is still cached with the same owner was on no stack. Each block is taken with a
// CAS of its owner to kOwnerReclaimed, which the fast path's exchange on pop (take_cached)
// and a receiver's or adopter's CAS arbitrate against.
dragon_status_t Heap::reclaim(const ReclaimPlan &plan, ReclaimResult *out) {
    Locked lock(*this);
    if (lock.status() != DRAGON_SUCCESS) {
        return lock.status();
    }
    struct Candidate {
        uint64_t offset;
        unsigned order;
        uint32_t tag;
        bool live;
    };
    std::vector<Candidate> found;
    std::vector<std::pair<uint64_t, uint64_t>> objects;
    for (uint64_t off = 0; off < heap_size_;) {
        uint8_t b = map_at(off).load(std::memory_order_acquire);
        BlockState st = state_of(b);
        unsigned k = order_of(b);
        if (st == kNone || k < min_order_ || k > max_order_ || off + (1ULL << k) > heap_size_) {
            off += 1ULL << min_order_; // never seen: the map is valid under the lock
            continue;
        }
        if (st == kLive || st == kCached) {
            uint32_t tag = owner_at(off).load(std::memory_order_acquire);
            if (tag == kOwnerNone) {
                if (st == kLive) {
                    objects.emplace_back(off, 1ULL << k);
                }
            } else if (tag != kOwnerReclaimed && plan.dead(tag)) {
                found.push_back({off, k, tag, st == kLive});
            }
        }
        off += 1ULL << k;
    }
    std::vector<uint64_t> held;
    for (const auto &[off, size] : objects) {
        plan.object(off, size, &held);
    }
    std::sort(held.begin(), held.end());
    drain_caches();

    ReclaimResult r;
    for (const Candidate &c : found) {
        std::atomic<uint8_t> &state = map_at(c.offset);
        uint8_t want = pack(c.live ? kLive : kCached, c.order);
        if (state.load(std::memory_order_acquire) != want ||
            (c.live && std::binary_search(held.begin(), held.end(), c.offset))) {
            continue;
        }
        uint32_t tag = c.tag;
        if (!owner_at(c.offset).compare_exchange_strong(tag, kOwnerReclaimed,
                                                        std::memory_order_acq_rel)) {
            continue;
        }
        // A live block may still be freed by a process that uses it without owning it
        // (before the CAS above it would have changed the owner): the state decides.
        if (c.live && !state.compare_exchange_strong(want, pack(kCached, c.order),
                                                     std::memory_order_acq_rel)) {
            continue;
        }
        buddy_release(c.offset, c.order);
        if (c.live) {
            r.blocks++;
            r.bytes += 1ULL << c.order;
        } else {
            r.cached_blocks++; // a dead thread's cache, or a block it had in flight
        }
    }
    // The header slots of dead threads' caches: their blocks were candidates above.
    free_slots(hdr_->slots, plan.dead);
    r.waiters = detail::repair_waiters(hdr_->space, plan.dead);
    if (r.blocks + r.cached_blocks != 0) {
        detail::wake_sleepers(&hdr_->space.sleepers, &hdr_->space.word);
    }
    *out = r;
    return DRAGON_SUCCESS;
}

void Heap::maybe_crash([[maybe_unused]] CrashPoint here) {
#ifdef DRAGON_TEST_HOOKS
    if (crash_point_ == here && --crash_countdown_ == 0) {
        ::raise(SIGKILL);
    }
#endif
}

} // namespace dragon::pool
