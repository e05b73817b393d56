// The pool ABI: segment creation and attachment, and the checks that turn bad input into a
// clear status before the allocator (heap.cpp) sees it.
#include "cache.hpp"
#include "descriptor.hpp"
#include "heap.hpp"
#include "internal.hpp"
#include "naming.hpp"

#include "../channel/object.hpp"
#include "../common/error.hpp"
#include "../common/proc.hpp"

#include <dragon/pool.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::fail_errno;
using dragon::detail::guarded;
using dragon::detail::status_from_errno;
namespace dp = dragon::pool;

struct dragon_pool {
    void *base = nullptr;
    size_t map_size = 0;
    dp::Heap heap;
    uint64_t uid = 0;
    uint64_t node_id = 0;
    char runtime_id[DRAGON_RUNTIME_ID_MAX + 1] = {};
    char name[DRAGON_POOL_NAME_MAX + 1] = {};
    char segment[dp::kSegmentNameCap] = {};
    bool keyed = false;                       // the segment name carries the runtime token's hash
    uint64_t serial = dp::next_pool_serial(); // names this handle to the thread caches

    ~dragon_pool() {
        if (base != nullptr) {
            dp::drop_thread_caches(serial);
            munmap(base, map_size);
        }
    }
};

namespace {

constexpr unsigned kMaxMinOrder = 30;
constexpr int kAttachWaitMs = 2000; // how long attach waits for a pool still being created

struct Resolved {
    char runtime_id[DRAGON_RUNTIME_ID_MAX + 1];
    uint64_t node_id;
    unsigned min_order;
    uint32_t flags;
    dp::Token token;
};

uint64_t round_up(uint64_t v, uint64_t align) {
    return (v + align - 1) & ~(align - 1);
}

dragon_status_t resolve(const dragon_pool_attr_t *given, Resolved *r) {
    dragon_pool_attr_t a;
    dragon_pool_attr_init(&a);
    if (given != nullptr) {
        if (given->struct_size < sizeof(size_t)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "pool attributes: struct_size is %zu; call dragon_pool_attr_init first",
                        given->struct_size);
        }
        std::memcpy(&a, given, std::min(given->struct_size, sizeof a));
    }

    const char *rt = a.runtime_id != nullptr ? a.runtime_id : std::getenv("DRAGON_RUNTIME_ID");
    if (rt != nullptr && *rt != '\0') {
        if (!dp::valid_runtime_id(rt, std::strlen(rt))) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "runtime id '%.40s' is invalid: use 1 to %d of [A-Za-z0-9_-]", rt,
                        DRAGON_RUNTIME_ID_MAX);
        }
        std::snprintf(r->runtime_id, sizeof r->runtime_id, "%s", rt);
    } else {
        // Outside a runtime: per-user, so two users' pools of one name never meet.
        std::snprintf(r->runtime_id, sizeof r->runtime_id, "u%u", static_cast<unsigned>(geteuid()));
    }

    if (a.node_id >= 0) {
        r->node_id = static_cast<uint64_t>(a.node_id);
    } else if (const char *env = std::getenv("DRAGON_NODE_ID"); env != nullptr && *env != '\0') {
        char *end = nullptr;
        errno = 0;
        unsigned long long v = std::strtoull(env, &end, 10);
        if (errno != 0 || *end != '\0' || v > dp::kMaxNodeId) {
            return fail(DRAGON_INVALID_ARGUMENT, "DRAGON_NODE_ID='%.40s' is not a node id", env);
        }
        r->node_id = v;
    } else {
        r->node_id = 0;
    }
    if (r->node_id > dp::kMaxNodeId) {
        return fail(DRAGON_INVALID_ARGUMENT, "node id %" PRIu64 " out of range", r->node_id);
    }

    size_t block = a.min_block == 0 ? 64 : a.min_block;
    if ((block & (block - 1)) != 0 || block < (1U << dp::kMinOrderFloor) ||
        block > (1ULL << kMaxMinOrder)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "min_block %zu: must be a power of two from 64 to 1 GiB", a.min_block);
    }
    r->min_order = static_cast<unsigned>(__builtin_ctzll(block));
    r->flags = a.flags;
    return dp::env_token(&r->token);
}

dragon_status_t check_name(const char *name) {
    if (name == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "pool name is NULL");
    }
    if (!dp::valid_pool_name(name, std::strlen(name))) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "pool name '%.80s' is invalid: use 1 to %d of [A-Za-z0-9_.-]", name,
                    DRAGON_POOL_NAME_MAX);
    }
    return DRAGON_SUCCESS;
}

// A handle's identity, segment name included: derived once, with the token this process has
// now (so that a handle keeps its segment whatever happens to the environment later).
dragon_status_t fill_identity(dragon_pool_t *p, const dp::Token &token, const char *runtime_id,
                              uint64_t node_id, const char *name) {
    std::snprintf(p->runtime_id, sizeof p->runtime_id, "%s", runtime_id);
    std::snprintf(p->name, sizeof p->name, "%s", name);
    p->node_id = node_id;
    p->keyed = token.present;
    return dp::segment_name(token, runtime_id, node_id, name, p->segment);
}

// What to tell the owner of a name another user took: inside a runtime names come from its
// secret, so the other user read it (or is root); outside one, names are guessable.
const char *squatter_advice(bool inside) {
    return inside ? "this runtime's segment names are derived from its secret token, so that "
                    "user read it: check who can read this runtime's processes"
                  : "names of pools made outside a runtime can be guessed: choose another pool "
                    "name or runtime id, or run the program under the dragon launcher, whose "
                    "segment names other users cannot guess";
}

// A segment is trusted only if this user owns it, it is a plain file, and nobody else may open
// it: anything else may hold what another user wrote (/dev/shm is writable by everyone).
dragon_status_t check_owner(const struct stat &st, const char *verb, const char *name,
                            const char *segment, bool inside) {
    if (st.st_uid != geteuid()) {
        return fail(DRAGON_PERMISSION_DENIED,
                    "%s pool '%s': segment /dev/shm%s belongs to uid %u, not to you (uid %u): "
                    "another user created it (/dev/shm is shared and sticky: only that user or "
                    "root can remove it); %s",
                    verb, name, segment, static_cast<unsigned>(st.st_uid),
                    static_cast<unsigned>(geteuid()), squatter_advice(inside));
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        return fail(DRAGON_PERMISSION_DENIED,
                    "%s pool '%s': segment /dev/shm%s is %s (mode 0%03o), which this library "
                    "never makes: other users may have written to it; remove it (dragon-cleanup) "
                    "and create the pool again",
                    verb, name, segment, S_ISREG(st.st_mode) ? "open to other users" : "not a file",
                    static_cast<unsigned>(st.st_mode & 0777));
    }
    return DRAGON_SUCCESS;
}

void install_test_hooks(dp::Heap &heap) {
#ifdef DRAGON_TEST_HOOKS
    // DRAGON_TEST_CRASH_AT=<point>:<n> makes this process SIGKILL itself the n-th time it
    // reaches <point> while holding the pool lock (tests/c/test_pool.c uses it).
    const char *spec = std::getenv("DRAGON_TEST_CRASH_AT");
    if (spec == nullptr) {
        return;
    }
    static const struct {
        const char *name;
        dp::CrashPoint point;
    } points[] = {{"split", dp::CrashPoint::kSplit},
                  {"coalesce", dp::CrashPoint::kCoalesce},
                  {"drain", dp::CrashPoint::kDrain},
                  {"rebuild", dp::CrashPoint::kRebuild}};
    for (const auto &p : points) {
        size_t n = std::strlen(p.name);
        if (std::strncmp(spec, p.name, n) == 0 && spec[n] == ':') {
            heap.set_crash_point(p.point, static_cast<unsigned>(std::atoi(spec + n + 1)));
        }
    }
#else
    (void)heap;
#endif
}

// Validate a mapped header before trusting its offsets.
dragon_status_t check_header(const dp::SegmentHeader *h, uint64_t file_size, const char *seg) {
    uint64_t granules = h->min_order < 64 ? h->heap_size >> h->min_order : 0;
    bool ok = h->layout_version == dp::kLayoutVersion &&
              h->header_size == sizeof(dp::SegmentHeader) && h->segment_size == file_size &&
              h->min_order >= dp::kMinOrderFloor && h->min_order <= kMaxMinOrder &&
              h->heap_size != 0 && (h->heap_size & ((1ULL << h->min_order) - 1)) == 0 &&
              h->map_offset >= sizeof(dp::SegmentHeader) &&
              h->map_offset + dp::map_bytes(granules) <= h->owner_offset &&
              h->owner_offset % 64 == 0 &&
              h->owner_offset + dp::owner_bytes(granules) <= h->heap_offset &&
              h->heap_offset % dp::kHeapAlign == 0 && h->heap_offset + h->heap_size == file_size &&
              h->max_order == 63U - static_cast<unsigned>(__builtin_clzll(h->heap_size));
    if (!ok) {
        return fail(DRAGON_CORRUPTED,
                    "segment %s: header is inconsistent (layout version %u, this library "
                    "reads %u)",
                    seg, h->layout_version, dp::kLayoutVersion);
    }
    return DRAGON_SUCCESS;
}

// Open and map the segment of p's identity (filled in), and check it before trusting it.
dragon_status_t open_segment(std::unique_ptr<dragon_pool> p, dragon_pool_t **out) {
    const char *name = p->name;
    const char *runtime_id = p->runtime_id;
    uint64_t node_id = p->node_id;
    int fd = shm_open(p->segment, O_RDWR, 0);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) {
            // Without the token a process of a runtime looks for names the runtime never uses.
            char own[16];
            std::snprintf(own, sizeof own, "u%u", static_cast<unsigned>(geteuid()));
            bool tokenless = !p->keyed && std::strcmp(runtime_id, own) != 0;
            return fail(DRAGON_NOT_FOUND,
                        "no pool '%s' in runtime '%s' on node %" PRIu64 " (no segment %s)%s", name,
                        runtime_id, node_id, p->segment,
                        tokenless ? "; this process has no DRAGON_RUNTIME_TOKEN, from which the "
                                    "segment names of a runtime's pools are derived"
                                  : "");
        }
        return fail_errno(status_from_errno(err), err, "attach pool '%s': shm_open %s", name,
                          p->segment);
    }
    struct stat st {};
    dragon_status_t status = DRAGON_SUCCESS;
    // A creator sizes the segment right after creating it and formats it after that; give it
    // a moment rather than failing an attach that raced a create.
    for (int waited = 0;; ++waited) {
        if (fstat(fd, &st) != 0) {
            status = fail_errno(DRAGON_SYSTEM_ERROR, errno, "attach pool '%s': fstat", name);
            break;
        }
        status = check_owner(st, "attach", name, p->segment, p->keyed);
        if (status != DRAGON_SUCCESS) {
            break;
        }
        if (static_cast<uint64_t>(st.st_size) >= sizeof(dp::SegmentHeader)) {
            break;
        }
        if (waited >= kAttachWaitMs) {
            status = fail(DRAGON_CORRUPTED, "pool '%s': segment %s is too small to be a pool", name,
                          p->segment);
            break;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, nullptr);
    }
    if (status != DRAGON_SUCCESS) {
        close(fd);
        return status;
    }
    p->map_size = static_cast<size_t>(st.st_size);
    void *base = mmap(nullptr, p->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int err = errno;
    close(fd);
    if (base == MAP_FAILED) {
        return fail_errno(status_from_errno(err), err, "attach pool '%s': mmap %zu bytes", name,
                          p->map_size);
    }
    p->base = base;
    auto *hdr = static_cast<dp::SegmentHeader *>(base);
    for (int waited = 0; hdr->magic.load(std::memory_order_acquire) != dp::kSegmentMagic;
         ++waited) {
        if (waited >= kAttachWaitMs || hdr->magic.load(std::memory_order_acquire) != 0) {
            return fail(DRAGON_CORRUPTED, "pool '%s': segment %s does not hold a dragon pool", name,
                        p->segment);
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, nullptr);
    }
    status = check_header(hdr, p->map_size, p->segment);
    if (status != DRAGON_SUCCESS) {
        return status;
    }
    p->heap = dp::Heap(base);
    p->uid = hdr->uid;
    install_test_hooks(p->heap);
    *out = p.release();
    return DRAGON_SUCCESS;
}

dragon_status_t attach_segment(const dp::Token &token, const char *runtime_id, uint64_t node_id,
                               const char *name, dragon_pool_t **out) {
    auto p = std::make_unique<dragon_pool>();
    if (dragon_status_t st = fill_identity(p.get(), token, runtime_id, node_id, name);
        st != DRAGON_SUCCESS) {
        return st;
    }
    return open_segment(std::move(p), out);
}

[[gnu::noinline, gnu::cold]] dragon_status_t bad_pointer(const dragon_pool_t *pool,
                                                         const void *ptr) {
    const auto *p = static_cast<const uint8_t *>(ptr);
    const uint8_t *heap = pool->heap.heap_base();
    if (p < heap || p >= heap + pool->heap.heap_size()) {
        return fail(DRAGON_BAD_POINTER, "pointer %p is not inside pool '%s' [%p, %p)", ptr,
                    pool->name, static_cast<const void *>(heap),
                    static_cast<const void *>(heap + pool->heap.heap_size()));
    }
    return fail(DRAGON_BAD_POINTER,
                "pointer %p is inside pool '%s' but not at the start of a block", ptr, pool->name);
}

// The heap offset of a block's start; the checks inline, the message out of line.
inline dragon_status_t offset_of(const dragon_pool_t *pool, const void *ptr, uint64_t *offset) {
    auto off = reinterpret_cast<uintptr_t>(ptr) -
               reinterpret_cast<uintptr_t>(pool->heap.heap_base()); // wraps below the heap
    if (__builtin_expect(off >= pool->heap.heap_size() ||
                             (off & ((1ULL << pool->heap.min_order()) - 1)) != 0,
                         0)) {
        return bad_pointer(pool, ptr);
    }
    *offset = off;
    return DRAGON_SUCCESS;
}

dragon_status_t not_live(const dragon_pool_t *pool, const void *ptr) {
    return fail(DRAGON_NOT_ALLOCATED,
                "pointer %p is not a live allocation of pool '%s' (already freed?)", ptr,
                pool->name);
}

dp::Descriptor pool_descriptor(const dragon_pool_t *pool) {
    dp::Descriptor d{};
    d.kind = dp::DescriptorKind::kPool;
    d.uid = pool->uid;
    d.node_id = pool->node_id;
    d.heap_size = pool->heap.heap_size();
    std::memcpy(d.runtime_id, pool->runtime_id, sizeof d.runtime_id);
    std::memcpy(d.name, pool->name, sizeof d.name);
    return d;
}

dragon_status_t write_descriptor(const dp::Descriptor &d, void *buf, size_t cap, size_t *len) {
    if (len == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "serialize: len is NULL");
    }
    size_t need = dp::encoded_size(d);
    *len = need;
    if (buf == nullptr || cap < need) {
        return fail(DRAGON_BUFFER_TOO_SMALL,
                    "serialize: descriptor needs %zu bytes, buffer has %zu", need,
                    buf == nullptr ? 0 : cap);
    }
    dp::encode(d, static_cast<uint8_t *>(buf));
    return DRAGON_SUCCESS;
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_pool_attr_init(dragon_pool_attr_t *attr) {
    if (attr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_attr_init: attr is NULL");
    }
    std::memset(attr, 0, sizeof *attr);
    attr->struct_size = sizeof *attr;
    attr->runtime_id = nullptr;
    attr->node_id = -1;
    attr->min_block = 0;
    attr->flags = 0;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_pool_create(const char *name, size_t size,
                                              const dragon_pool_attr_t *attr,
                                              dragon_pool_t **pool) {
    return guarded("dragon_pool_create", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_create: pool is NULL");
        }
        *pool = nullptr;
        if (dragon_status_t st = check_name(name); st != DRAGON_SUCCESS) {
            return st;
        }
        Resolved r{};
        if (dragon_status_t st = resolve(attr, &r); st != DRAGON_SUCCESS) {
            return st;
        }
        uint64_t block = 1ULL << r.min_order;
        if (size == 0) {
            return fail(DRAGON_INVALID_ARGUMENT, "pool '%s': size 0", name);
        }
        if (size > (1ULL << 62)) {
            return fail(DRAGON_INVALID_ARGUMENT, "pool '%s': size %zu is too large", name, size);
        }
        uint64_t heap_size = round_up(size, block);
        uint64_t granules = heap_size >> r.min_order;
        if (granules > dp::kMaxGranules) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "pool '%s': %zu bytes is more than 2^32 blocks of %" PRIu64
                        " bytes; raise min_block",
                        name, size, block);
        }
        uint64_t map_offset = round_up(sizeof(dp::SegmentHeader), 64);
        uint64_t owner_offset = round_up(map_offset + dp::map_bytes(granules), 64);
        uint64_t heap_offset = round_up(owner_offset + dp::owner_bytes(granules), dp::kHeapAlign);
        uint64_t segment_size = heap_offset + heap_size;

        auto p = std::make_unique<dragon_pool>();
        if (dragon_status_t st = fill_identity(p.get(), r.token, r.runtime_id, r.node_id, name);
            st != DRAGON_SUCCESS) {
            return st;
        }
        int fd = shm_open(p->segment, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            int err = errno;
            if (err == EEXIST) {
                // Taken: by this user (the pool exists), or by another one (refused, named).
                std::string path = std::string("/dev/shm") + p->segment;
                struct stat st {};
                if (lstat(path.c_str(), &st) == 0 && st.st_uid != geteuid()) {
                    return check_owner(st, "create", name, p->segment, p->keyed);
                }
                return fail(DRAGON_ALREADY_EXISTS,
                            "pool '%s' already exists in runtime '%s' on node %" PRIu64
                            " (segment %s); attach it to use it, or, if no running program "
                            "uses it (one that ended early leaves its pools), remove it with "
                            "`dragon-cleanup -r %s`",
                            name, r.runtime_id, r.node_id, p->segment, r.runtime_id);
            }
            return fail_errno(status_from_errno(err), err, "create pool '%s': shm_open %s", name,
                              p->segment);
        }
        // From here on a failure must remove the segment again.
        auto undo = [&](dragon_status_t st) {
            close(fd);
            shm_unlink(p->segment);
            return st;
        };
        if (fchmod(fd, 0600) != 0) {
            return undo(fail_errno(DRAGON_SYSTEM_ERROR, errno, "create pool '%s': fchmod", name));
        }
        if (ftruncate(fd, static_cast<off_t>(segment_size)) != 0) {
            int err = errno;
            return undo(fail_errno(status_from_errno(err), err,
                                   "create pool '%s': size segment to %" PRIu64 " bytes", name,
                                   segment_size));
        }
        if ((r.flags & DRAGON_POOL_NO_RESERVE) == 0) {
            int err = posix_fallocate(fd, 0, static_cast<off_t>(segment_size));
            if (err == ENOSPC || err == EFBIG || err == ENOMEM) {
                struct statvfs vfs {};
                unsigned long long avail = 0;
                if (fstatvfs(fd, &vfs) == 0) {
                    avail = static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize;
                }
                return undo(fail(DRAGON_NO_SPACE,
                                 "create pool '%s': needs %" PRIu64
                                 " bytes of shared memory but /dev/shm has %llu free; ask for "
                                 "less or enlarge /dev/shm",
                                 name, segment_size, avail));
            }
            if (err != 0 && err != EOPNOTSUPP) {
                return undo(fail_errno(status_from_errno(err), err,
                                       "create pool '%s': reserve %" PRIu64 " bytes", name,
                                       segment_size));
            }
        }
        void *base = mmap(nullptr, segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) {
            int err = errno;
            return undo(fail_errno(status_from_errno(err), err, "create pool '%s': mmap", name));
        }
        close(fd);
        p->base = base;
        p->map_size = segment_size;

        dp::Heap::format(base, segment_size, map_offset, owner_offset, heap_offset, heap_size,
                         r.min_order);
        auto *hdr = static_cast<dp::SegmentHeader *>(base);
        hdr->uid = dragon::detail::random_uid();
        hdr->node_id = r.node_id;
        hdr->creator_uid = static_cast<uint32_t>(geteuid());
        std::memcpy(hdr->runtime_id, p->runtime_id, sizeof hdr->runtime_id);
        std::memcpy(hdr->name, p->name, sizeof hdr->name);
        hdr->magic.store(dp::kSegmentMagic, std::memory_order_release);

        p->heap = dp::Heap(base);
        p->uid = hdr->uid;
        install_test_hooks(p->heap);
        *pool = p.release();
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_pool_attach(const char *name, const dragon_pool_attr_t *attr,
                                              dragon_pool_t **pool) {
    return guarded("dragon_pool_attach", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_attach: pool is NULL");
        }
        *pool = nullptr;
        if (dragon_status_t st = check_name(name); st != DRAGON_SUCCESS) {
            return st;
        }
        Resolved r{};
        if (dragon_status_t st = resolve(attr, &r); st != DRAGON_SUCCESS) {
            return st;
        }
        return attach_segment(r.token, r.runtime_id, r.node_id, name, pool);
    });
}

DRAGON_API dragon_status_t dragon_pool_serialize(const dragon_pool_t *pool, void *buf, size_t cap,
                                                 size_t *len) {
    if (pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_serialize: pool is NULL");
    }
    return write_descriptor(pool_descriptor(pool), buf, cap, len);
}

DRAGON_API dragon_status_t dragon_pool_attach_serialized(const void *bytes, size_t len,
                                                         dragon_pool_t **pool) {
    return guarded("dragon_pool_attach_serialized", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_attach_serialized: pool is NULL");
        }
        *pool = nullptr;
        dp::Descriptor d{};
        if (dragon_status_t st = dp::decode(bytes, len, &d); st != DRAGON_SUCCESS) {
            return st;
        }
        // The descriptor names the pool; this process's token gives its segment (the same as
        // the creator's in one runtime: they share the token through the environment).
        dp::Token token;
        if (dragon_status_t st = dp::env_token(&token); st != DRAGON_SUCCESS) {
            return st;
        }
        dragon_pool_t *p = nullptr;
        if (dragon_status_t st = attach_segment(token, d.runtime_id, d.node_id, d.name, &p);
            st != DRAGON_SUCCESS) {
            return st;
        }
        if (p->uid != d.uid) {
            delete p;
            return fail(DRAGON_POOL_MISMATCH,
                        "pool '%s' was destroyed and re-created since this descriptor was made",
                        d.name);
        }
        *pool = p;
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_pool_detach(dragon_pool_t *pool) {
    if (pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_detach: pool is NULL");
    }
    delete pool;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_pool_destroy(dragon_pool_t *pool) {
    if (pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_destroy: pool is NULL");
    }
    std::unique_ptr<dragon_pool> owned(pool);
    return guarded("dragon_pool_destroy", [&]() -> dragon_status_t {
        // Only unlink the segment if it still holds this pool: a re-created pool of the same
        // name belongs to somebody else. The handle's own segment name is looked at, whatever
        // the environment says now.
        auto again = std::make_unique<dragon_pool>();
        std::memcpy(again->runtime_id, pool->runtime_id, sizeof again->runtime_id);
        std::memcpy(again->name, pool->name, sizeof again->name);
        std::memcpy(again->segment, pool->segment, sizeof again->segment);
        again->node_id = pool->node_id;
        again->keyed = pool->keyed;
        dragon_pool_t *found = nullptr;
        dragon_status_t st = open_segment(std::move(again), &found);
        std::unique_ptr<dragon_pool> current(found);
        if (st == DRAGON_PERMISSION_DENIED) {
            return st; // a segment not to be trusted, named by open_segment: left alone
        }
        if (st != DRAGON_SUCCESS || current->uid != pool->uid) {
            return fail(DRAGON_NOT_FOUND, "destroy pool '%s': already destroyed", pool->name);
        }
        if (shm_unlink(pool->segment) != 0) {
            return fail_errno(status_from_errno(errno), errno, "destroy pool '%s': shm_unlink %s",
                              pool->name, pool->segment);
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_pool_name(const dragon_pool_t *pool, const char **name) {
    if (pool == nullptr || name == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_name: NULL argument");
    }
    *name = pool->name;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_pool_segment_name(const dragon_pool_t *pool,
                                                    const char **segment) {
    if (pool == nullptr || segment == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_segment_name: NULL argument");
    }
    *segment = pool->segment;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_pool_stats(dragon_pool_t *pool, dragon_pool_stats_t *stats) {
    if (pool == nullptr || stats == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_stats: NULL argument");
    }
    if (stats->struct_size < sizeof(size_t)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_pool_stats: set stats->struct_size = sizeof(dragon_pool_stats_t)");
    }
    dp::Stats s{};
    pool->heap.cache_flush(dp::thread_cache(&pool->heap, pool->serial));
    if (dragon_status_t st = pool->heap.stats(&s); st != DRAGON_SUCCESS) {
        return fail(st, "pool '%s': stats: %s", pool->name, dragon_strerror(st));
    }
    dragon_pool_stats_t full{};
    full.struct_size = stats->struct_size;
    full.total_bytes = s.total_bytes;
    full.free_bytes = s.free_bytes;
    full.used_bytes = s.total_bytes - s.free_bytes;
    full.utilization_pct =
        100.0 * static_cast<double>(full.used_bytes) / static_cast<double>(s.total_bytes);
    full.allocation_count = s.live_blocks;
    full.largest_free_block = s.largest_free;
    full.min_block = 1ULL << pool->heap.min_order();
    full.cached_bytes = s.cached_bytes;
    std::memcpy(stats, &full, std::min(stats->struct_size, sizeof full));
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_pool_alloc_timeout(dragon_pool_t *pool, size_t size,
                                                     dragon_timeout_t timeout, void **ptr) {
    if (pool == nullptr || ptr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_alloc: NULL argument");
    }
    *ptr = nullptr;
    unsigned order = pool->heap.order_for(size);
    if (order == 0) {
        if (size == 0) {
            return fail(DRAGON_INVALID_ARGUMENT, "pool '%s': cannot allocate 0 bytes", pool->name);
        }
        return fail(DRAGON_INVALID_ARGUMENT,
                    "pool '%s': %zu bytes is more than its largest block (%llu of %" PRIu64
                    " bytes in all)",
                    pool->name, size, 1ULL << pool->heap.max_order(), pool->heap.heap_size());
    }
    uint64_t off = 0;
    uint32_t tag = dragon::detail::self_tag();
    dp::Magazine *m = dp::thread_cache(&pool->heap, pool->serial);
    dragon_status_t st = m->orders != 0 ? pool->heap.alloc_cached(m, order, &off)
                                        : pool->heap.alloc(order, tag, &off);
    if (st == DRAGON_NO_SPACE && timeout != 0) {
        st = pool->heap.alloc_wait(order, tag, timeout, &off);
    }
    if (st == DRAGON_SUCCESS) {
        *ptr = pool->heap.heap_base() + off;
        return DRAGON_SUCCESS;
    }
    if (st == DRAGON_NO_SPACE) {
        return fail(st, "pool '%s': no free block of %llu bytes for %zu bytes", pool->name,
                    1ULL << order, size);
    }
    if (st == DRAGON_TIMEOUT) {
        return fail(st, "pool '%s': no block of %llu bytes became free within %" PRId64 " ns",
                    pool->name, 1ULL << order, timeout);
    }
    return fail(st, "pool '%s': allocation failed: %s", pool->name, dragon_strerror(st));
}

// The thread's cache, inline and without a stack frame of its own; everything else (a first
// call, an empty or full cache, errors) in the full functions.
DRAGON_API dragon_status_t dragon_pool_alloc(dragon_pool_t *pool, size_t size, void **ptr) {
    if (__builtin_expect(pool != nullptr && ptr != nullptr, 1)) {
        dp::Magazine *m = dp::find_thread_cache(pool->serial);
        uint64_t off = 0;
        unsigned order = pool->heap.order_for(size);
        if (m != nullptr && order != 0 && pool->heap.mag_pop(m, order, &off)) {
            *ptr = pool->heap.heap_base() + off;
            return DRAGON_SUCCESS;
        }
    }
    return dragon_pool_alloc_timeout(pool, size, 0, ptr);
}

namespace {

[[gnu::noinline]] dragon_status_t free_full(dragon_pool_t *pool, void *ptr) {
    if (pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_free: pool is NULL");
    }
    uint64_t off = 0;
    if (dragon_status_t st = offset_of(pool, ptr, &off); st != DRAGON_SUCCESS) {
        return st;
    }
    dp::Magazine *m = dp::thread_cache(&pool->heap, pool->serial);
    dragon_status_t st = m->orders != 0 ? pool->heap.free_cached(m, off)
                                        : pool->heap.free(off, dragon::detail::self_tag());
    if (st != DRAGON_SUCCESS) {
        return not_live(pool, ptr);
    }
    return DRAGON_SUCCESS;
}

} // namespace

DRAGON_API dragon_status_t dragon_pool_free(dragon_pool_t *pool, void *ptr) {
    if (__builtin_expect(pool != nullptr, 1)) {
        dp::Magazine *m = dp::find_thread_cache(pool->serial);
        auto off =
            reinterpret_cast<uintptr_t>(ptr) - reinterpret_cast<uintptr_t>(pool->heap.heap_base());
        if (m != nullptr && off < pool->heap.heap_size() &&
            (off & ((1ULL << pool->heap.min_order()) - 1)) == 0 && pool->heap.mag_push(m, off)) {
            return DRAGON_SUCCESS;
        }
    }
    return free_full(pool, ptr);
}

namespace {

dragon_status_t set_owner(dragon_pool_t *pool, void *ptr, uint32_t tag, const char *what) {
    if (pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "%s: pool is NULL", what);
    }
    uint64_t off = 0;
    if (dragon_status_t st = offset_of(pool, ptr, &off); st != DRAGON_SUCCESS) {
        return st;
    }
    if (pool->heap.set_owner(off, tag) != DRAGON_SUCCESS) {
        return not_live(pool, ptr);
    }
    return DRAGON_SUCCESS;
}

} // namespace

DRAGON_API dragon_status_t dragon_pool_adopt(dragon_pool_t *pool, void *ptr) {
    return set_owner(pool, ptr, dragon::detail::self_tag(), "dragon_pool_adopt");
}

DRAGON_API dragon_status_t dragon_pool_disown(dragon_pool_t *pool, void *ptr) {
    return set_owner(pool, ptr, dp::kOwnerNone, "dragon_pool_disown");
}

DRAGON_API dragon_status_t dragon_pool_reclaim(dragon_pool_t *pool, pid_t pid,
                                               dragon_pool_reclaimed_t *result) {
    return guarded("dragon_pool_reclaim", [&]() -> dragon_status_t {
        if (pool == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_reclaim: pool is NULL");
        }
        if (result != nullptr && result->struct_size < sizeof(size_t)) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_reclaim: set result->struct_size = "
                                                 "sizeof(dragon_pool_reclaimed_t)");
        }
        if (pid < 0 || static_cast<uint32_t>(pid) > dragon::detail::kPidMask) {
            return fail(DRAGON_INVALID_ARGUMENT, "pool '%s': reclaim: %d is not a pid", pool->name,
                        static_cast<int>(pid));
        }
        auto want = static_cast<uint32_t>(pid);
        if (want != 0 && !dragon::detail::pid_dead(want)) {
            return fail(DRAGON_INVALID_ARGUMENT,
                        "pool '%s': reclaim: process %d is alive; only what dead processes "
                        "held can be reclaimed",
                        pool->name, static_cast<int>(pid));
        }
        // One /proc look-up per owner, however many blocks it holds.
        std::unordered_map<uint32_t, bool> known;
        auto dead = [&](uint32_t tag) {
            if (want != 0 && dragon::detail::tag_pid(tag) != want) {
                return false;
            }
            uint32_t who = tag & ~dragon::detail::kTagKindMask;
            auto it = known.find(who);
            if (it == known.end()) {
                it = known.emplace(who, dragon::detail::tag_dead(who)).first;
            }
            return it->second;
        };
        uint8_t *heap = pool->heap.heap_base();
        uint64_t heap_size = pool->heap.heap_size();
        uint64_t waiters = 0;
        dp::ReclaimPlan plan;
        plan.dead = dead;
        plan.object = [&](uint64_t off, uint64_t size, std::vector<uint64_t> *held) {
            waiters += dragon::obj::scan_for_reclaim(heap, heap_size, off, size, plan.dead, held);
        };
        dp::ReclaimResult r;
        if (dragon_status_t st = pool->heap.reclaim(plan, &r); st != DRAGON_SUCCESS) {
            return fail(st, "pool '%s': reclaim: %s", pool->name, dragon_strerror(st));
        }
        if (result != nullptr) {
            dragon_pool_reclaimed_t full{};
            full.struct_size = result->struct_size;
            full.blocks = r.blocks;
            full.bytes = r.bytes;
            full.waiters = r.waiters + waiters;
            full.cached_blocks = r.cached_blocks;
            std::memcpy(result, &full, std::min(result->struct_size, sizeof full));
        }
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_pool_block_size(const dragon_pool_t *pool, const void *ptr,
                                                  size_t *size) {
    if (pool == nullptr || size == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_block_size: NULL argument");
    }
    uint64_t off = 0;
    if (dragon_status_t st = offset_of(pool, ptr, &off); st != DRAGON_SUCCESS) {
        return st;
    }
    uint64_t block = pool->heap.live_block_size(off);
    if (block == 0) {
        return not_live(pool, ptr);
    }
    *size = block;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_pool_mem_serialize(const dragon_pool_t *pool, const void *ptr,
                                                     size_t size, void *buf, size_t cap,
                                                     size_t *len) {
    if (pool == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_mem_serialize: pool is NULL");
    }
    uint64_t off = 0;
    if (dragon_status_t st = offset_of(pool, ptr, &off); st != DRAGON_SUCCESS) {
        return st;
    }
    uint64_t block = pool->heap.live_block_size(off);
    if (block == 0) {
        return not_live(pool, ptr);
    }
    if (size > block) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "pool '%s': %zu bytes is more than the %" PRIu64 "-byte allocation at %p",
                    pool->name, size, block, ptr);
    }
    dp::Descriptor d = pool_descriptor(pool);
    d.kind = dp::DescriptorKind::kMemory;
    d.offset = off;
    d.size = size;
    return write_descriptor(d, buf, cap, len);
}

DRAGON_API dragon_status_t dragon_pool_mem_attach(const dragon_pool_t *pool, const void *bytes,
                                                  size_t len, void **ptr, size_t *size) {
    if (pool == nullptr || ptr == nullptr || size == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_pool_mem_attach: NULL argument");
    }
    dp::Descriptor d{};
    if (dragon_status_t st = dp::decode(bytes, len, &d); st != DRAGON_SUCCESS) {
        return st;
    }
    if (d.kind != dp::DescriptorKind::kMemory) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "dragon_pool_mem_attach: a pool descriptor, not a memory descriptor");
    }
    if (d.uid != pool->uid) {
        return fail(DRAGON_POOL_MISMATCH,
                    "memory descriptor names pool '%s' (runtime '%s', node %" PRIu64
                    "), not pool '%s'",
                    d.name, d.runtime_id, d.node_id, pool->name);
    }
    if (d.heap_size != pool->heap.heap_size() ||
        (d.offset & ((1ULL << pool->heap.min_order()) - 1)) != 0) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "memory descriptor for pool '%s' does not fit its layout", pool->name);
    }
    uint64_t block = pool->heap.live_block_size(d.offset);
    if (block == 0) {
        return fail(DRAGON_NOT_ALLOCATED,
                    "memory descriptor for pool '%s' names offset %" PRIu64
                    ", which is not a live allocation (freed?)",
                    pool->name, d.offset);
    }
    if (d.size > block) {
        return fail(DRAGON_BAD_DESCRIPTOR,
                    "memory descriptor for pool '%s' claims %" PRIu64 " bytes of a %" PRIu64
                    "-byte block",
                    pool->name, d.size, block);
    }
    *ptr = pool->heap.heap_base() + d.offset;
    *size = static_cast<size_t>(d.size);
    return DRAGON_SUCCESS;
}

} // extern "C"

namespace dragon::pool {

uint8_t *heap_base_of(const dragon_pool_t *pool) {
    return pool->heap.heap_base();
}

uint64_t heap_size_of(const dragon_pool_t *pool) {
    return pool->heap.heap_size();
}

std::atomic<uint32_t> &owner_of(const dragon_pool_t *pool, uint64_t offset) {
    return pool->heap.owner_at(offset);
}

} // namespace dragon::pool
