/* libdragon — the runtime's registry: a name for a pool, channel or dictionary descriptor,
 * set by one process of the runtime and looked up by any other (docs/registry.md). Names
 * live until they are unregistered or the runtime ends.
 */
#ifndef DRAGON_REGISTRY_H
#define DRAGON_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/channel.h>
#include <dragon/pool.h>
#include <dragon/status.h>
#include <dragon/sync.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dragon_registry_kind {
    DRAGON_REGISTRY_BYTES = 0,   /* anything */
    DRAGON_REGISTRY_POOL = 1,    /* a serialized pool descriptor (dragon_pool_serialize) */
    DRAGON_REGISTRY_CHANNEL = 2, /* a serialized channel (dragon_channel_serialize) */
    DRAGON_REGISTRY_DICT = 3,    /* a distributed dictionary's descriptor */
    DRAGON_REGISTRY_QUEUE = 4,   /* dragon_queue_serialize */
    DRAGON_REGISTRY_LOCK = 5,    /* dragon_lock_serialize */
    DRAGON_REGISTRY_SEMAPHORE = 6,
    DRAGON_REGISTRY_EVENT = 7,
    DRAGON_REGISTRY_BARRIER = 8,
    DRAGON_REGISTRY_MEMORY =
        9 /* a pool allocation's memory descriptor (dragon_pool_mem_serialize) */
} dragon_registry_kind_t;

#define DRAGON_REGISTRY_NAME_MAX 255    /* bytes of printable ASCII, no spaces */
#define DRAGON_REGISTRY_VALUE_MAX 65536 /* bytes */

/* Register `name` -> (kind, value). DRAGON_ALREADY_EXISTS if the name is taken, unless
 * replace is non-zero; DRAGON_INVALID_ARGUMENT for a bad name or a value too long;
 * DRAGON_NOT_IN_RUNTIME outside a runtime. */
DRAGON_API dragon_status_t dragon_registry_register(const char *name, dragon_registry_kind_t kind,
                                                    const void *value, size_t len, int replace);

/* Look `name` up, waiting up to `timeout` for it to be registered (0: do not wait).
 * *kind (may be NULL) and the value (into buf, cap bytes; *len receives its length) come
 * back. DRAGON_NOT_FOUND (timeout 0) or DRAGON_TIMEOUT if the name is not there;
 * DRAGON_BUFFER_TOO_SMALL with *len set if cap is too small. */
DRAGON_API dragon_status_t dragon_registry_lookup(const char *name, dragon_timeout_t timeout,
                                                  dragon_registry_kind_t *kind, void *buf,
                                                  size_t cap, size_t *len);

/* Remove `name`. DRAGON_NOT_FOUND if it is not registered. */
DRAGON_API dragon_status_t dragon_registry_unregister(const char *name);

/* Look `name` up (waiting up to `timeout`, as dragon_registry_lookup) and attach to what it
 * names, in one call. DRAGON_INVALID_ARGUMENT when the name is registered with another kind
 * (the message says which); the attach's own status otherwise. attr: the handle's wait mode
 * (NULL: the process's default). */
DRAGON_API dragon_status_t dragon_registry_attach_pool(const char *name, dragon_timeout_t timeout,
                                                       dragon_pool_t **pool);
DRAGON_API dragon_status_t dragon_registry_attach_channel(const char *name,
                                                          dragon_timeout_t timeout,
                                                          const dragon_channel_attr_t *attr,
                                                          dragon_channel_t **channel);
DRAGON_API dragon_status_t dragon_registry_attach_queue(const char *name, dragon_timeout_t timeout,
                                                        const dragon_channel_attr_t *attr,
                                                        dragon_queue_t **queue);
DRAGON_API dragon_status_t dragon_registry_attach_lock(const char *name, dragon_timeout_t timeout,
                                                       const dragon_channel_attr_t *attr,
                                                       dragon_lock_t **lock);
DRAGON_API dragon_status_t dragon_registry_attach_semaphore(const char *name,
                                                            dragon_timeout_t timeout,
                                                            const dragon_channel_attr_t *attr,
                                                            dragon_semaphore_t **sem);
DRAGON_API dragon_status_t dragon_registry_attach_event(const char *name, dragon_timeout_t timeout,
                                                        const dragon_channel_attr_t *attr,
                                                        dragon_event_t **event);
DRAGON_API dragon_status_t dragon_registry_attach_barrier(const char *name,
                                                          dragon_timeout_t timeout,
                                                          const dragon_channel_attr_t *attr,
                                                          dragon_barrier_t **barrier);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_REGISTRY_H */
