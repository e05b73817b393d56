/* libdragon — synchronisation objects between any processes of the runtime, with
 * Python multiprocessing's semantics: Queue, Lock (and recursive), Semaphore (and bounded),
 * Event, Barrier.
 *
 * Each lives in a pool, is created by one process and attached by others through its
 * descriptor (dragon_*_serialize / dragon_*_attach, at most DRAGON_OBJECT_DESCRIPTOR_MAX
 * bytes). Blocking calls take a dragon_timeout_t and wait in the handle's wait mode
 * (dragon_channel_attr_t's; NULL attr: the process's default, dragon/wait.h). Destroy
 * wakes every waiter with DRAGON_CLOSED. What happens when a process dies holding or
 * waiting on one: docs/sync.md.
 */
#ifndef DRAGON_SYNC_H
#define DRAGON_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/channel.h>
#include <dragon/pool.h>
#include <dragon/status.h>
#include <dragon/wait.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Queue: a channel plus task accounting (task_done / join). ---- */

typedef struct dragon_queue dragon_queue_t;

/* maxsize 0 means DRAGON_QUEUE_DEFAULT_MAXSIZE (a queue in shared memory is bounded). */
#define DRAGON_QUEUE_DEFAULT_MAXSIZE 4096

/* item_size: bytes an item may have and still be copied into a slot; larger items travel
 * as pool allocations (0: 256). */
DRAGON_API dragon_status_t dragon_queue_create(dragon_pool_t *pool, size_t maxsize,
                                               size_t item_size, const dragon_channel_attr_t *attr,
                                               dragon_queue_t **queue);
DRAGON_API dragon_status_t dragon_queue_attach(const void *bytes, size_t len,
                                               const dragon_channel_attr_t *attr,
                                               dragon_queue_t **queue);
/* A queue of fixed-size items of one type: every put must carry exactly item_size bytes
 * (> 0), so a get never takes an item it cannot return. type_tag names the item type (0:
 * untyped, any type of that size); the C++ Queue<T> uses a tag derived from T.
 * dragon_queue_attach_typed refuses (DRAGON_INVALID_ARGUMENT, consuming nothing) a queue whose
 * items are not fixed at item_size bytes, or whose tag and type_tag are both set and differ. */
DRAGON_API dragon_status_t dragon_queue_create_typed(dragon_pool_t *pool, size_t maxsize,
                                                     size_t item_size, uint64_t type_tag,
                                                     const dragon_channel_attr_t *attr,
                                                     dragon_queue_t **queue);
DRAGON_API dragon_status_t dragon_queue_attach_typed(const void *bytes, size_t len,
                                                     size_t item_size, uint64_t type_tag,
                                                     const dragon_channel_attr_t *attr,
                                                     dragon_queue_t **queue);
/* The queue's item type: *item_size the fixed item size (0: items of any length, as
 * dragon_queue_create makes them), *type_tag its tag (0: untyped). Either may be NULL. */
DRAGON_API dragon_status_t dragon_queue_item_type(const dragon_queue_t *queue, size_t *item_size,
                                                  uint64_t *type_tag);
DRAGON_API dragon_status_t dragon_queue_serialize(const dragon_queue_t *queue, void *buf,
                                                  size_t cap, size_t *len);
DRAGON_API dragon_status_t dragon_queue_detach(dragon_queue_t *queue);
DRAGON_API dragon_status_t dragon_queue_destroy(dragon_queue_t *queue);

/* put: DRAGON_TIMEOUT when the queue stayed full; DRAGON_INVALID_ARGUMENT for an item whose
 * length is not a fixed-size queue's item size. get: DRAGON_TIMEOUT when it stayed empty;
 * DRAGON_BUFFER_TOO_SMALL (with *len = the length needed) leaves the item queued. */
DRAGON_API dragon_status_t dragon_queue_put(dragon_queue_t *queue, const void *buf, size_t len,
                                            dragon_timeout_t timeout);
DRAGON_API dragon_status_t dragon_queue_get(dragon_queue_t *queue, void *buf, size_t cap,
                                            size_t *len, dragon_timeout_t timeout);
/* Mark one item got earlier as processed; DRAGON_INVALID_ARGUMENT if called more times than
 * items were put. */
DRAGON_API dragon_status_t dragon_queue_task_done(dragon_queue_t *queue);
/* Wait until every item put has been marked done. */
DRAGON_API dragon_status_t dragon_queue_join(dragon_queue_t *queue, dragon_timeout_t timeout);
/* Items queued now (a snapshot), and the queue's maxsize. */
DRAGON_API dragon_status_t dragon_queue_size(const dragon_queue_t *queue, size_t *size,
                                             size_t *maxsize);

/* ---- Lock ---- */

typedef struct dragon_lock dragon_lock_t;

/* recursive != 0: the holding thread may acquire again and must release as many times. */
DRAGON_API dragon_status_t dragon_lock_create(dragon_pool_t *pool, int recursive,
                                              const dragon_channel_attr_t *attr,
                                              dragon_lock_t **lock);
DRAGON_API dragon_status_t dragon_lock_attach(const void *bytes, size_t len,
                                              const dragon_channel_attr_t *attr,
                                              dragon_lock_t **lock);
DRAGON_API dragon_status_t dragon_lock_serialize(const dragon_lock_t *lock, void *buf, size_t cap,
                                                 size_t *len);
DRAGON_API dragon_status_t dragon_lock_detach(dragon_lock_t *lock);
DRAGON_API dragon_status_t dragon_lock_destroy(dragon_lock_t *lock);

/* DRAGON_SUCCESS: acquired. DRAGON_OWNER_DIED: acquired, but the previous holder died
 * holding it (what it protected may be half-updated). DRAGON_TIMEOUT: not acquired. */
DRAGON_API dragon_status_t dragon_lock_acquire(dragon_lock_t *lock, dragon_timeout_t timeout);
/* A plain lock may be released by any thread of any process (as in multiprocessing); a
 * recursive one only by its holder. DRAGON_INVALID_ARGUMENT when not held. */
DRAGON_API dragon_status_t dragon_lock_release(dragon_lock_t *lock);
/* *locked: 1 if some thread holds it now (a snapshot). */
DRAGON_API dragon_status_t dragon_lock_locked(const dragon_lock_t *lock, int *locked);

/* ---- Semaphore ---- */

typedef struct dragon_semaphore dragon_semaphore_t;

/* bounded != 0: releasing beyond `value` fails with DRAGON_INVALID_ARGUMENT. */
DRAGON_API dragon_status_t dragon_semaphore_create(dragon_pool_t *pool, uint32_t value, int bounded,
                                                   const dragon_channel_attr_t *attr,
                                                   dragon_semaphore_t **sem);
DRAGON_API dragon_status_t dragon_semaphore_attach(const void *bytes, size_t len,
                                                   const dragon_channel_attr_t *attr,
                                                   dragon_semaphore_t **sem);
DRAGON_API dragon_status_t dragon_semaphore_serialize(const dragon_semaphore_t *sem, void *buf,
                                                      size_t cap, size_t *len);
DRAGON_API dragon_status_t dragon_semaphore_detach(dragon_semaphore_t *sem);
DRAGON_API dragon_status_t dragon_semaphore_destroy(dragon_semaphore_t *sem);
DRAGON_API dragon_status_t dragon_semaphore_acquire(dragon_semaphore_t *sem,
                                                    dragon_timeout_t timeout);
DRAGON_API dragon_status_t dragon_semaphore_release(dragon_semaphore_t *sem);
DRAGON_API dragon_status_t dragon_semaphore_value(const dragon_semaphore_t *sem, uint32_t *value);

/* ---- Event ---- */

typedef struct dragon_event dragon_event_t;

DRAGON_API dragon_status_t dragon_event_create(dragon_pool_t *pool,
                                               const dragon_channel_attr_t *attr,
                                               dragon_event_t **event);
DRAGON_API dragon_status_t dragon_event_attach(const void *bytes, size_t len,
                                               const dragon_channel_attr_t *attr,
                                               dragon_event_t **event);
DRAGON_API dragon_status_t dragon_event_serialize(const dragon_event_t *event, void *buf,
                                                  size_t cap, size_t *len);
DRAGON_API dragon_status_t dragon_event_detach(dragon_event_t *event);
DRAGON_API dragon_status_t dragon_event_destroy(dragon_event_t *event);
DRAGON_API dragon_status_t dragon_event_set(dragon_event_t *event);
DRAGON_API dragon_status_t dragon_event_clear(dragon_event_t *event);
DRAGON_API dragon_status_t dragon_event_is_set(const dragon_event_t *event, int *set);
/* DRAGON_SUCCESS once the event is set; DRAGON_TIMEOUT if it stayed clear. */
DRAGON_API dragon_status_t dragon_event_wait(dragon_event_t *event, dragon_timeout_t timeout);

/* ---- Barrier ---- */

typedef struct dragon_barrier dragon_barrier_t;

DRAGON_API dragon_status_t dragon_barrier_create(dragon_pool_t *pool, uint32_t parties,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_barrier_t **barrier);
DRAGON_API dragon_status_t dragon_barrier_attach(const void *bytes, size_t len,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_barrier_t **barrier);
DRAGON_API dragon_status_t dragon_barrier_serialize(const dragon_barrier_t *barrier, void *buf,
                                                    size_t cap, size_t *len);
DRAGON_API dragon_status_t dragon_barrier_detach(dragon_barrier_t *barrier);
DRAGON_API dragon_status_t dragon_barrier_destroy(dragon_barrier_t *barrier);
/* Wait for all parties. *index (may be NULL) receives 0..parties-1, distinct per caller of
 * one round. A timeout breaks the barrier: this caller gets DRAGON_TIMEOUT, the others (and
 * later callers, until reset) DRAGON_BROKEN. */
DRAGON_API dragon_status_t dragon_barrier_wait(dragon_barrier_t *barrier, dragon_timeout_t timeout,
                                               uint32_t *index);
/* Break the barrier: every waiter and later caller gets DRAGON_BROKEN until reset. */
DRAGON_API dragon_status_t dragon_barrier_abort(dragon_barrier_t *barrier);
/* Back to the empty, unbroken state (current waiters get DRAGON_BROKEN). */
DRAGON_API dragon_status_t dragon_barrier_reset(dragon_barrier_t *barrier);
DRAGON_API dragon_status_t dragon_barrier_info(const dragon_barrier_t *barrier, uint32_t *parties,
                                               uint32_t *waiting, int *broken);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_SYNC_H */
