/* libdragon — channels: bounded, FIFO, many-producer many-consumer message queues that live
 * in a pool and connect any processes attached to it.
 *
 * A channel has a capacity (messages) and a slot size (bytes). A message of at most the slot
 * size is copied into a slot; a larger one travels as an allocation of the channel's pool
 * whose ownership moves with the message (zero-copy: dragon_channel_send_mem hands over an
 * allocation the sender filled in place; dragon_channel_recv_mem hands it to the receiver).
 *
 * Send and receive never take a lock and make no system call unless they must sleep. Every
 * call that can block takes a timeout: DRAGON_TIMEOUT_TRY (0) tries once, a positive value
 * waits that many nanoseconds, DRAGON_TIMEOUT_FOREVER waits until the call can complete or
 * the channel is destroyed (DRAGON_CLOSED). Memory layout and the behaviour when a process
 * dies mid-call: docs/channel.md.
 */
#ifndef DRAGON_CHANNEL_H
#define DRAGON_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/pool.h>
#include <dragon/status.h>
#include <dragon/wait.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dragon_channel dragon_channel_t;

/* Enough bytes for any serialized channel or sync-object descriptor of this ABI. */
#define DRAGON_OBJECT_DESCRIPTOR_MAX 192

typedef struct dragon_channel_attr {
    size_t struct_size;           /* set by dragon_channel_attr_init */
    dragon_wait_mode_t wait_mode; /* how this handle's blocking calls wait (dragon/wait.h) */
} dragon_channel_attr_t;

/* wait_mode DRAGON_WAIT_DEFAULT: the process's default wait mode (dragon/wait.h). */
DRAGON_API dragon_status_t dragon_channel_attr_init(dragon_channel_attr_t *attr);

/* Create a channel of `capacity` messages (>= 1) with `slot_size`-byte slots (>= 1; rounded
 * up to a multiple of 8, at least 16) in `pool`. The channel borrows `pool`: keep it
 * attached while the channel handle lives. attr may be NULL. */
DRAGON_API dragon_status_t dragon_channel_create(dragon_pool_t *pool, size_t capacity,
                                                 size_t slot_size,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_channel_t **channel);

/* The channel's descriptor, for another process to attach (same conventions as
 * dragon_pool_serialize; at most DRAGON_OBJECT_DESCRIPTOR_MAX bytes). */
DRAGON_API dragon_status_t dragon_channel_serialize(const dragon_channel_t *channel, void *buf,
                                                    size_t cap, size_t *len);

/* Attach to a channel by its descriptor (attaching its pool as needed). */
DRAGON_API dragon_status_t dragon_channel_attach(const void *bytes, size_t len,
                                                 const dragon_channel_attr_t *attr,
                                                 dragon_channel_t **channel);

/* Drop this process's handle; the channel stays. */
DRAGON_API dragon_status_t dragon_channel_detach(dragon_channel_t *channel);

/* Destroy the channel for everybody: every blocked call returns DRAGON_CLOSED, messages
 * still queued are dropped (their pool allocations freed), the memory returns to the pool,
 * and the handle is released. Later calls through other handles return DRAGON_CLOSED. */
DRAGON_API dragon_status_t dragon_channel_destroy(dragon_channel_t *channel);

/* How this handle's blocking calls wait from now on (DRAGON_WAIT_DEFAULT: the process's). */
DRAGON_API dragon_status_t dragon_channel_set_wait_mode(dragon_channel_t *channel,
                                                        dragon_wait_mode_t mode);

/* The pool the channel lives in (owned by the handle or borrowed from the creator). Large
 * messages are allocated there; free what dragon_channel_recv_mem returns with it. */
DRAGON_API dragon_status_t dragon_channel_pool(const dragon_channel_t *channel,
                                               dragon_pool_t **pool);

/* Send `len` bytes (len may be 0). Up to the slot size they are copied into a slot; a larger
 * message is copied once into a new allocation of the channel's pool, which then travels
 * zero-copy. DRAGON_TIMEOUT if the channel stayed full (or the pool had no room). */
DRAGON_API dragon_status_t dragon_channel_send(dragon_channel_t *channel, const void *buf,
                                               size_t len, dragon_timeout_t timeout);

/* Send an allocation of the channel's pool without copying it: `ptr` must be a live
 * allocation of that pool and `len` at most its size. On success its ownership moves to the
 * receiver (do not touch or free it); on failure it stays the caller's. */
DRAGON_API dragon_status_t dragon_channel_send_mem(dragon_channel_t *channel, void *ptr, size_t len,
                                                   dragon_timeout_t timeout);

/* Receive the oldest message into buf. *len receives its length. If it is longer than cap,
 * DRAGON_BUFFER_TOO_SMALL is returned, *len holds the length needed and the message stays in
 * the channel. A zero-copy message is copied out and its allocation freed. */
DRAGON_API dragon_status_t dragon_channel_recv(dragon_channel_t *channel, void *buf, size_t cap,
                                               size_t *len, dragon_timeout_t timeout);

/* Receive the oldest message as an allocation of the channel's pool that the caller now owns
 * (free it with dragon_pool_free on dragon_channel_pool's pool). A zero-copy message is
 * handed over as is; a slot message is copied into a new allocation. */
DRAGON_API dragon_status_t dragon_channel_recv_mem(dragon_channel_t *channel, void **ptr,
                                                   size_t *len, dragon_timeout_t timeout);

typedef struct dragon_channel_info {
    size_t struct_size;         /* set by the caller to sizeof(dragon_channel_info_t) */
    uint64_t capacity;          /* messages */
    uint64_t slot_size;         /* bytes a message may have and still travel in a slot */
    uint64_t count;             /* messages queued now (a snapshot) */
    uint32_t blocked_senders;   /* calls blocked in send now (once they have waited ~1 us) */
    uint32_t blocked_receivers; /* calls blocked in recv now (likewise) */
} dragon_channel_info_t;

DRAGON_API dragon_status_t dragon_channel_info(const dragon_channel_t *channel,
                                               dragon_channel_info_t *info);

/* Channel sets: wait until any of `n` channels is ready. events: what to wait for. */
#define DRAGON_CHANNEL_READABLE 0x1u /* a message can be received */
#define DRAGON_CHANNEL_WRITABLE 0x2u /* a message can be sent */
#define DRAGON_CHANNEL_CLOSED 0x4u   /* the channel was destroyed (reported, never asked) */

/* Wait until at least one channel is ready for `events`, at most `timeout`. On success
 * revents[i] (an array of n) holds what channel i is ready for, 0 for those not ready;
 * DRAGON_TIMEOUT if none became ready. Readiness is a snapshot: another process may take the
 * message first, so receive with a timeout of 0 and expect DRAGON_TIMEOUT now and then. */
DRAGON_API dragon_status_t dragon_channel_poll(dragon_channel_t *const *channels, size_t n,
                                               uint32_t events, uint32_t *revents,
                                               dragon_timeout_t timeout);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_CHANNEL_H */
