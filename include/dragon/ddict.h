/* libdragon — the distributed dictionary (DDict): keys and values held by manager processes
 * that the runtime starts and places; any process of the runtime holding the dictionary's
 * descriptor (or its registered name) reads and writes them.
 *
 * A key is 1 to 65535 bytes, a value at least 1 byte; both are opaque bytes. A key lives on
 * one manager, chosen by a stable hash of its bytes (docs/ddict.md), so another language
 * finds the same manager. Values of up to about 1 KiB travel in channel slots; larger ones
 * travel as blocks of the manager's pool: a put writes the value once into the manager's
 * pool, a get copies it once out of it (docs/ddict-protocol.md).
 *
 * Every call that talks to a manager waits at most the handle's timeout (attr.timeout,
 * dragon_ddict_set_timeout). A key that is absent is DRAGON_NOT_FOUND at once. A manager that
 * died is DRAGON_OWNER_DIED, naming it, within the timeout; the other managers keep serving.
 * A full manager refuses a put with DRAGON_NO_SPACE naming it and loses nothing.
 *
 * Checkpoints: each handle has a checkpoint id (0 at first). A put belongs to the handle's
 * checkpoint; a get at checkpoint c sees the value put at c, else the key's persistent value
 * (dragon_ddict_pput). Managers keep the newest attr.checkpoint_window checkpoints (0: all);
 * older ones are dropped, and using one is DRAGON_NOT_FOUND saying so.
 *
 * Threads: a handle is used by one thread at a time. Detach and destroy never block. Calls
 * after the dictionary was destroyed (through any handle) are DRAGON_CLOSED.
 */
#ifndef DRAGON_DDICT_H
#define DRAGON_DDICT_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/policy.h>
#include <dragon/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dragon_ddict dragon_ddict_t;

/* Enough bytes for the descriptor of a dictionary of up to 64 managers (larger ones need
 * more: dragon_ddict_serialize says how much). */
#define DRAGON_DDICT_DESCRIPTOR_MAX 16384

typedef struct dragon_ddict_attr {
    size_t struct_size;         /* set by dragon_ddict_attr_init */
    uint32_t managers_per_node; /* default 1 */
    uint32_t n_nodes;           /* default: every node of the runtime */
    /* Or one manager per policy of this array (placement, CPUs), overriding the two above. */
    const dragon_policy_t *policies;
    size_t n_policies;
    size_t policy_size;         /* sizeof(dragon_policy_t) */
    size_t total_mem;           /* bytes of keys and values in all, split evenly; default 64 MiB */
    dragon_timeout_t timeout;   /* per call to a manager; default 30 s; FOREVER: no limit */
    const char *name;           /* register the dictionary under this name (kind DICT); NULL: not */
    uint64_t checkpoint_window; /* checkpoints each manager keeps; 0: all (default) */
    const char *manager_exe;    /* NULL: $DRAGON_DDICT_MANAGER_EXE, else the installed one */
} dragon_ddict_attr_t;

DRAGON_API dragon_status_t dragon_ddict_attr_init(dragon_ddict_attr_t *attr);

/* Start the managers (inside a runtime) and return a handle on the new dictionary. */
DRAGON_API dragon_status_t dragon_ddict_create(const dragon_ddict_attr_t *attr,
                                               dragon_ddict_t **dict);

/* The descriptor another process attaches to (*len receives its length;
 * DRAGON_BUFFER_TOO_SMALL with *len set if cap is too small). */
DRAGON_API dragon_status_t dragon_ddict_serialize(const dragon_ddict_t *dict, void *buf, size_t cap,
                                                  size_t *len);
DRAGON_API dragon_status_t dragon_ddict_attach(const void *bytes, size_t len,
                                               dragon_ddict_t **dict);
/* Look the name up in the registry (waiting up to timeout ns for it) and attach. */
DRAGON_API dragon_status_t dragon_ddict_attach_name(const char *name, dragon_timeout_t timeout,
                                                    dragon_ddict_t **dict);
/* Drop this handle; the dictionary stays. Never blocks. */
DRAGON_API dragon_status_t dragon_ddict_detach(dragon_ddict_t *dict);
/* End the dictionary for everybody: every manager frees its memory and exits (the creator's
 * handle also collects them), then the handle is released. Never blocks beyond the handle's
 * timeout. */
DRAGON_API dragon_status_t dragon_ddict_destroy(dragon_ddict_t *dict);

DRAGON_API dragon_status_t dragon_ddict_set_timeout(dragon_ddict_t *dict, dragon_timeout_t timeout);

/* ---- keys and values ---- */

DRAGON_API dragon_status_t dragon_ddict_put(dragon_ddict_t *dict, const void *key, size_t key_len,
                                            const void *value, size_t value_len);
/* A persistent put: the value belongs to no checkpoint (it outlives retired ones) and replaces
 * the key's value of the handle's checkpoint. */
DRAGON_API dragon_status_t dragon_ddict_pput(dragon_ddict_t *dict, const void *key, size_t key_len,
                                             const void *value, size_t value_len);
/* Copy the value into buf. *len receives its length; DRAGON_BUFFER_TOO_SMALL (*len set, nothing
 * copied) if it is longer than cap. */
DRAGON_API dragon_status_t dragon_ddict_get(dragon_ddict_t *dict, const void *key, size_t key_len,
                                            void *buf, size_t cap, size_t *len);
/* The value in a new malloc()ed buffer (*value, *len) the caller frees with free(). */
DRAGON_API dragon_status_t dragon_ddict_get_alloc(dragon_ddict_t *dict, const void *key,
                                                  size_t key_len, void **value, size_t *len);
/* Remove the key and return its value as dragon_ddict_get_alloc does (value may be NULL: the
 * value is dropped). */
DRAGON_API dragon_status_t dragon_ddict_pop(dragon_ddict_t *dict, const void *key, size_t key_len,
                                            void **value, size_t *len);
/* DRAGON_SUCCESS if present, DRAGON_NOT_FOUND if not. */
DRAGON_API dragon_status_t dragon_ddict_contains(dragon_ddict_t *dict, const void *key,
                                                 size_t key_len);
DRAGON_API dragon_status_t dragon_ddict_length(dragon_ddict_t *dict, uint64_t *length);
DRAGON_API dragon_status_t dragon_ddict_clear(dragon_ddict_t *dict);

/* Add delta to the key's value, an 8-byte little-endian integer (an absent key counts as 0),
 * atomically; *old (may be NULL) receives the value before. */
DRAGON_API dragon_status_t dragon_ddict_fetch_add(dragon_ddict_t *dict, const void *key,
                                                  size_t key_len, int64_t delta, int64_t *old);
/* Wait until the key is present (at the handle's checkpoint), at most timeout ns (<0:
 * forever): DRAGON_TIMEOUT if it did not appear. */
DRAGON_API dragon_status_t dragon_ddict_wait_for_key(dragon_ddict_t *dict, const void *key,
                                                     size_t key_len, dragon_timeout_t timeout);

/* Keys, in batches (each manager's keys in turn; each batch one round trip). */
typedef struct dragon_ddict_keys dragon_ddict_keys_t;
DRAGON_API dragon_status_t dragon_ddict_keys_begin(dragon_ddict_t *dict, dragon_ddict_keys_t **it);
/* The next key (*key valid until the next call): DRAGON_NOT_FOUND after the last. */
DRAGON_API dragon_status_t dragon_ddict_keys_next(dragon_ddict_keys_t *it, const void **key,
                                                  size_t *key_len);
DRAGON_API dragon_status_t dragon_ddict_keys_end(dragon_ddict_keys_t *it);

/* Batch puts: between start and end, puts are sent without waiting for their answers; end
 * waits for one answer per manager and returns the first failure (its message names the
 * manager), or DRAGON_SUCCESS when every put was stored. */
DRAGON_API dragon_status_t dragon_ddict_batch_start(dragon_ddict_t *dict);
DRAGON_API dragon_status_t dragon_ddict_batch_end(dragon_ddict_t *dict);

/* Broadcast: put the key on every manager; get it from the manager nearest this process. */
DRAGON_API dragon_status_t dragon_ddict_bput(dragon_ddict_t *dict, const void *key, size_t key_len,
                                             const void *value, size_t value_len);
DRAGON_API dragon_status_t dragon_ddict_bget(dragon_ddict_t *dict, const void *key, size_t key_len,
                                             void *buf, size_t cap, size_t *len);

/* Freeze: read-only for everybody (puts get DRAGON_PERMISSION_DENIED); a reader on a manager's
 * node then reads values in place. */
DRAGON_API dragon_status_t dragon_ddict_freeze(dragon_ddict_t *dict);
DRAGON_API dragon_status_t dragon_ddict_unfreeze(dragon_ddict_t *dict);
DRAGON_API dragon_status_t dragon_ddict_is_frozen(dragon_ddict_t *dict, int *frozen);
/* Frozen only: a pointer to the value where it lies in the manager's memory (no copy), valid
 * until the dictionary is unfrozen. DRAGON_NOT_SUPPORTED if the key's manager is on another
 * node; DRAGON_PERMISSION_DENIED if the dictionary is not frozen. */
DRAGON_API dragon_status_t dragon_ddict_get_view(dragon_ddict_t *dict, const void *key,
                                                 size_t key_len, const void **value, size_t *len);

/* ---- checkpoints ---- */
DRAGON_API dragon_status_t dragon_ddict_checkpoint(dragon_ddict_t *dict); /* id + 1 */
DRAGON_API dragon_status_t dragon_ddict_rollback(dragon_ddict_t *dict);   /* id - 1 (not below 0) */
/* Move to the newest checkpoint any manager has seen a put in. */
DRAGON_API dragon_status_t dragon_ddict_sync_to_newest(dragon_ddict_t *dict);
DRAGON_API dragon_status_t dragon_ddict_checkpoint_id(const dragon_ddict_t *dict, uint64_t *id);
DRAGON_API dragon_status_t dragon_ddict_set_checkpoint_id(dragon_ddict_t *dict, uint64_t id);

/* ---- managers ---- */
DRAGON_API dragon_status_t dragon_ddict_managers(const dragon_ddict_t *dict, uint32_t *count);
/* The managers on this process's node: up to cap indices into ids, *n their number. */
DRAGON_API dragon_status_t dragon_ddict_local_managers(const dragon_ddict_t *dict, uint32_t *ids,
                                                       size_t cap, size_t *n);
/* A new handle whose every call goes to manager `index` alone (its keys, its length); the
 * hash no longer decides. Detach it as any handle. */
DRAGON_API dragon_status_t dragon_ddict_select_manager(const dragon_ddict_t *dict, uint32_t index,
                                                       dragon_ddict_t **selected);

typedef struct dragon_ddict_stats {
    size_t struct_size; /* set by the caller */
    uint32_t manager;
    uint64_t keys;       /* entries of every checkpoint */
    uint64_t bytes;      /* key and value bytes held */
    uint64_t free_bytes; /* of the manager's pool */
    uint64_t total_bytes;
    uint64_t puts, gets, pops, other_ops;
    uint64_t clients;
    uint64_t newest_checkpoint;
    uint64_t malformed; /* requests refused as malformed or of another protocol version */
    int frozen;
    int32_t pid; /* the manager's process id on its node */
} dragon_ddict_stats_t;
DRAGON_API dragon_status_t dragon_ddict_stats(dragon_ddict_t *dict, uint32_t manager,
                                              dragon_ddict_stats_t *stats);

/* ---- persistence ---- */
/* Write every manager's keys and values under `dir` (one file each: temporary file, fsync,
 * rename, so a persist killed midway leaves the previous one whole). */
DRAGON_API dragon_status_t dragon_ddict_persist(dragon_ddict_t *dict, const char *dir);
/* Replace the dictionary's contents with what `dir` holds (same number of managers). A file
 * that fails its checksum is DRAGON_CORRUPTED and changes nothing on its manager. */
DRAGON_API dragon_status_t dragon_ddict_restore(dragon_ddict_t *dict, const char *dir);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_DDICT_H */
