/* libdragon — managed-memory pools.
 *
 * A pool is one shared-memory segment holding an allocator whose whole state lives inside
 * the segment: any process attached to the pool may allocate, and may free what any other
 * process allocated. Allocations are at least 64-byte aligned. An allocation is named
 * across processes by a memory descriptor: serialize it in one process, attach it in
 * another, and both see the same bytes.
 *
 * Segments are named /dragon.<runtime id>.<node id>.pool.<name>, followed inside a runtime by
 * a keyed hash under the runtime's secret ($DRAGON_RUNTIME_TOKEN) that other users cannot
 * guess; created 0600, so pools of two runtimes (or two simulated nodes) on one machine never
 * collide. A segment another user owns, or one others may open, is refused with
 * DRAGON_PERMISSION_DENIED. A process killed while it allocates or frees never wedges the
 * pool for the others (docs/pool.md).
 */
#ifndef DRAGON_POOL_H
#define DRAGON_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <dragon/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An attached pool: a process-local handle, opaque. */
typedef struct dragon_pool dragon_pool_t;

/* The longest pool name (bytes, without the NUL); names use [A-Za-z0-9_.-]. */
#define DRAGON_POOL_NAME_MAX 64
/* The longest runtime id (bytes, without the NUL); runtime ids use [A-Za-z0-9_-]. */
#define DRAGON_RUNTIME_ID_MAX 32
/* Enough bytes for any serialized pool or memory descriptor of this ABI. */
#define DRAGON_POOL_DESCRIPTOR_MAX 160

/* Options of dragon_pool_create and dragon_pool_attach. Call dragon_pool_attr_init first:
 * it sets struct_size, so that later versions can add fields without breaking callers. */
typedef struct dragon_pool_attr {
    size_t struct_size;
    /* The runtime the pool belongs to. NULL: $DRAGON_RUNTIME_ID, or "u<uid>" outside a
     * runtime. */
    const char *runtime_id;
    /* The node the pool lives on. -1: $DRAGON_NODE_ID, or 0 outside a runtime. */
    int64_t node_id;
    /* Smallest block and alignment, a power of two of at least 64. 0: 64. */
    size_t min_block;
    /* Bitwise OR of DRAGON_POOL_* flags below. */
    uint32_t flags;
} dragon_pool_attr_t;

/* Do not reserve the segment's memory at creation. By default create reserves it
 * (fallocate), so a pool that /dev/shm cannot hold fails now with DRAGON_NO_SPACE instead of
 * a SIGBUS later. */
#define DRAGON_POOL_NO_RESERVE 0x1u

/* Fill *attr with defaults (every field "from the environment"). */
DRAGON_API dragon_status_t dragon_pool_attr_init(dragon_pool_attr_t *attr);

/* Create a pool of at least `size` usable bytes (rounded up to the block size) and attach
 * to it. attr may be NULL. Fails with DRAGON_ALREADY_EXISTS if the name is taken,
 * DRAGON_PERMISSION_DENIED if another user holds its segment name, and DRAGON_NO_SPACE if
 * /dev/shm cannot hold it. */
DRAGON_API dragon_status_t dragon_pool_create(const char *name, size_t size,
                                              const dragon_pool_attr_t *attr, dragon_pool_t **pool);

/* Attach to an existing pool by name (runtime id and node id from attr or the environment).
 */
DRAGON_API dragon_status_t dragon_pool_attach(const char *name, const dragon_pool_attr_t *attr,
                                              dragon_pool_t **pool);

/* Write the pool's descriptor into buf. *len receives its length; if buf is NULL or cap is
 * too small, nothing is written and DRAGON_BUFFER_TOO_SMALL is returned. */
DRAGON_API dragon_status_t dragon_pool_serialize(const dragon_pool_t *pool, void *buf, size_t cap,
                                                 size_t *len);

/* Attach to the pool named by a serialized pool descriptor, or by a serialized memory
 * descriptor (the pool that holds that memory). */
DRAGON_API dragon_status_t dragon_pool_attach_serialized(const void *bytes, size_t len,
                                                         dragon_pool_t **pool);

/* Drop this process's attachment. The pool and its allocations stay. */
DRAGON_API dragon_status_t dragon_pool_detach(dragon_pool_t *pool);

/* Remove the pool's segment and detach. Processes still attached keep their mapping until
 * they detach; nobody can attach any more. */
DRAGON_API dragon_status_t dragon_pool_destroy(dragon_pool_t *pool);

/* The pool's name, and the name of its shared-memory segment (both owned by the handle). */
DRAGON_API dragon_status_t dragon_pool_name(const dragon_pool_t *pool, const char **name);
DRAGON_API dragon_status_t dragon_pool_segment_name(const dragon_pool_t *pool,
                                                    const char **segment);

typedef struct dragon_pool_stats {
    size_t struct_size;          /* set by the caller to sizeof(dragon_pool_stats_t) */
    uint64_t total_bytes;        /* usable bytes of the pool */
    uint64_t free_bytes;         /* bytes in free blocks */
    uint64_t used_bytes;         /* total_bytes - free_bytes */
    double utilization_pct;      /* 100 * used_bytes / total_bytes */
    uint64_t allocation_count;   /* live allocations */
    uint64_t largest_free_block; /* the largest allocation that can succeed now */
    uint64_t min_block;          /* the smallest block (and alignment) */
    uint64_t cached_bytes;       /* of free_bytes, what other threads keep in their caches of
                                    small blocks (theirs to allocate; given back when they
                                    exit or detach, and by whoever finds them dead) */
} dragon_pool_stats_t;

/* Exact figures: this call first returns the caller's cached blocks to the allocator, and
 * those of dead processes; figures of threads that allocate meanwhile may be off by what
 * they do meanwhile. */
DRAGON_API dragon_status_t dragon_pool_stats(dragon_pool_t *pool, dragon_pool_stats_t *stats);

/* Allocate `size` bytes (> 0). Fails at once with DRAGON_NO_SPACE if the pool has no room,
 * and with DRAGON_INVALID_ARGUMENT if the size exceeds what the pool could ever hold. */
DRAGON_API dragon_status_t dragon_pool_alloc(dragon_pool_t *pool, size_t size, void **ptr);

/* Like dragon_pool_alloc, but waits up to `timeout` for another process to free space;
 * DRAGON_TIMEOUT when it did not come. */
DRAGON_API dragon_status_t dragon_pool_alloc_timeout(dragon_pool_t *pool, size_t size,
                                                     dragon_timeout_t timeout, void **ptr);

/* Free an allocation of this pool, whichever process made it. A pointer outside the pool
 * gives DRAGON_BAD_POINTER; one that is not a live allocation gives DRAGON_NOT_ALLOCATED.
 * Either way the pool is unchanged. */
DRAGON_API dragon_status_t dragon_pool_free(dragon_pool_t *pool, void *ptr);

/* The usable size of a live allocation (its block size, at least the size asked for). */
DRAGON_API dragon_status_t dragon_pool_block_size(const dragon_pool_t *pool, const void *ptr,
                                                  size_t *size);

/* Serialize a memory descriptor for `size` bytes of the live allocation at ptr. *len
 * receives its length; DRAGON_BUFFER_TOO_SMALL as for dragon_pool_serialize. */
DRAGON_API dragon_status_t dragon_pool_mem_serialize(const dragon_pool_t *pool, const void *ptr,
                                                     size_t size, void *buf, size_t cap,
                                                     size_t *len);

/* Turn a serialized memory descriptor back into this process's address of the memory and
 * its size. DRAGON_POOL_MISMATCH if it names another pool (attach that one with
 * dragon_pool_attach_serialized); DRAGON_NOT_ALLOCATED if the memory was freed. */
DRAGON_API dragon_status_t dragon_pool_mem_attach(const dragon_pool_t *pool, const void *bytes,
                                                  size_t len, void **ptr, size_t *size);

/* Ownership, and what dead processes leave behind.
 *
 * Every live allocation has an owner: the process that allocated it, until a channel takes
 * it (a zero-copy message belongs to the channel while it is queued, and to its receiver
 * after), another process adopts it, or it is disowned. dragon_pool_reclaim frees the
 * allocations of processes that died without freeing them (killed, or exited), together
 * with the waiter registrations they left in the pool and in its channels and sync
 * objects. Channels, queues and sync objects themselves belong to nobody. See docs/pool.md. */

/* Make the calling process the owner of a live allocation, e.g. one it received as a memory
 * descriptor and keeps after its allocator exits. */
DRAGON_API dragon_status_t dragon_pool_adopt(dragon_pool_t *pool, void *ptr);

/* Make a live allocation nobody's: dragon_pool_reclaim never frees it (whoever frees it
 * frees it), e.g. memory a process leaves behind on purpose for others. */
DRAGON_API dragon_status_t dragon_pool_disown(dragon_pool_t *pool, void *ptr);

typedef struct dragon_pool_reclaimed {
    size_t struct_size;     /* set by the caller to sizeof(dragon_pool_reclaimed_t) */
    uint64_t blocks;        /* allocations freed */
    uint64_t bytes;         /* their bytes (block sizes) */
    uint64_t waiters;       /* waiter registrations of dead processes removed */
    uint64_t cached_blocks; /* free blocks their thread caches held (or they had in flight)
                               given back; not allocations, not in blocks */
} dragon_pool_reclaimed_t;

/* Free what dead processes held in the pool: pid > 0 names one (it must be dead: gone, or a
 * zombie; a live one gives DRAGON_INVALID_ARGUMENT), 0 means every owner that is dead,
 * including earlier processes whose pid was reused (told apart by start time). Messages
 * queued in a channel are not touched, whoever sent them. result may be NULL. */
DRAGON_API dragon_status_t dragon_pool_reclaim(dragon_pool_t *pool, pid_t pid,
                                               dragon_pool_reclaimed_t *result);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_POOL_H */
