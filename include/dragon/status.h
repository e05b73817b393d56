/* libdragon — status codes and error reporting.
 *
 * Every call of the C ABI returns a dragon_status_t. dragon_strerror() names a status;
 * dragon_last_error() gives the detailed message of the calling thread's last failure
 * (which pool, which key, which node), valid until that thread's next failing call.
 */
#ifndef DRAGON_STATUS_H
#define DRAGON_STATUS_H

#include <stdint.h>

#if defined(_WIN32)
#error "libdragon supports POSIX systems only"
#endif

#if defined(DRAGON_BUILDING_LIBRARY)
#define DRAGON_API __attribute__((visibility("default")))
#else
#define DRAGON_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Values are part of the ABI: never renumber, only append. */
typedef enum dragon_status {
    DRAGON_SUCCESS = 0,
    DRAGON_INVALID_ARGUMENT = 1,  /* a parameter is out of range or NULL */
    DRAGON_NO_MEMORY = 2,         /* the process's own heap is exhausted */
    DRAGON_NO_SPACE = 3,          /* the pool (or /dev/shm) has no room now */
    DRAGON_TIMEOUT = 4,           /* a blocking call reached its timeout */
    DRAGON_NOT_FOUND = 5,         /* no such pool, key, process, ... */
    DRAGON_ALREADY_EXISTS = 6,    /* the name is taken */
    DRAGON_PERMISSION_DENIED = 7, /* owned by another user, or access refused */
    DRAGON_BAD_DESCRIPTOR = 8,    /* serialized bytes are malformed or of another version */
    DRAGON_POOL_MISMATCH = 9,     /* the descriptor names another pool */
    DRAGON_BAD_POINTER = 10,      /* the pointer is not inside the pool, or misaligned */
    DRAGON_NOT_ALLOCATED = 11,    /* not a live allocation (double free?) */
    DRAGON_BUFFER_TOO_SMALL = 12, /* the caller's buffer cannot hold the result */
    DRAGON_CORRUPTED = 13,        /* shared state failed a consistency check */
    DRAGON_CLOSED = 14,           /* the object was closed or destroyed */
    DRAGON_OWNER_DIED = 15,       /* a peer died while holding the object */
    DRAGON_NOT_SUPPORTED = 16,    /* this build or platform lacks the feature */
    DRAGON_SYSTEM_ERROR = 17,     /* an operating system call failed (see last_error) */
    DRAGON_INTERNAL = 18,         /* a bug in libdragon: please report it */
    DRAGON_BROKEN = 19,           /* the barrier is broken (aborted, or a wait timed out) */
    DRAGON_MALFORMED = 20,        /* a control message that cannot be decoded (see last_error) */
    DRAGON_VERSION_MISMATCH = 21, /* a peer speaks another protocol version (both are named) */
    DRAGON_NOT_IN_RUNTIME = 22,   /* a runtime call from a program not started by `dragon` */
    DRAGON_TASK_FAILED = 23,      /* a task (or a pool's initializer) failed: see its message */
    DRAGON_CANCELLED = 24,        /* cancelled (or its pool terminated) before it ended */
    DRAGON_WORKER_DIED = 25,      /* the worker running the task ended before the task did */
    DRAGON_STATUS_COUNT_          /* not a status; keeps the table honest */
} dragon_status_t;

/* A short, static, English name for a status ("timed out"). Never NULL. */
DRAGON_API const char *dragon_strerror(dragon_status_t status);

/* The detailed message of the calling thread's last failed call, or "" if none failed yet.
 * The string stays valid until the calling thread's next libdragon call that fails. */
DRAGON_API const char *dragon_last_error(void);

/* Timeouts of blocking calls, in nanoseconds. 0 tries once; DRAGON_TIMEOUT_FOREVER waits
 * until the call can complete (or the object is destroyed). */
typedef int64_t dragon_timeout_t;
#define DRAGON_TIMEOUT_FOREVER ((dragon_timeout_t)-1)
#define DRAGON_TIMEOUT_TRY ((dragon_timeout_t)0)

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_STATUS_H */
