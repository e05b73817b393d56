/* libdragon — the task pool (Dragon's native Pool): worker processes the runtime starts and
 * places, that run tasks by name; map, imap and apply_async over them, with failures that
 * never hang.
 *
 * A task is a function registered by name in every process of the program (before
 * dragon_taskpool_serve_if_worker): it takes one byte buffer and returns one, or fails with a
 * message. A pool's workers are the caller's own executable (as multiprocessing's spawn: the
 * program notices it was started as a worker and serves tasks once its tasks are registered)
 * or a worker executable named by path. Idle workers pull the next task (dynamic scheduling);
 * tasks and results travel over channels in a pool of shared memory, large ones zero-copy.
 *
 * A submission (a job) is a map over an array of items, or over a callback that yields items
 * one at a time (imap: at most max_in_flight items are submitted and not yet delivered, so an
 * input of 10^8 items never sits in memory), or one item (apply_async). Its results come one
 * at a time from dragon_taskpool_job_next, in input order or as they end. Each item ends with
 * its own status: DRAGON_SUCCESS, DRAGON_TASK_FAILED (the task failed: its message),
 * DRAGON_TIMEOUT (it ran past the pool's task timeout: its worker was ended and replaced),
 * DRAGON_WORKER_DIED (its worker ended mid-task, after max_retries retries) or
 * DRAGON_CANCELLED. Design and wire format: docs/taskpool.md.
 *
 * Threads: a pool and its jobs may be used from any threads. A callback input is called only
 * from threads that call into that job (submit, next, wait). Results make progress in a
 * background thread too, so a job runs to its end while nobody waits on it.
 */
#ifndef DRAGON_TASKPOOL_H
#define DRAGON_TASKPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/policy.h>
#include <dragon/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tasks (every process of the program) ------------------------------------------------ */

typedef struct dragon_task_ctx dragon_task_ctx_t;

/* A task: reads `len` bytes at `arg` (valid during the call), and either returns its result
 * with dragon_task_return (none: an empty result) and DRAGON_SUCCESS, or fails: with
 * dragon_task_fail's message, or any other status (the item then ends DRAGON_TASK_FAILED with
 * dragon_last_error's message, or the status's name). */
typedef dragon_status_t (*dragon_task_fn_t)(const void *arg, size_t len, dragon_task_ctx_t *ctx,
                                            void *user);

/* Register `fn` as task `name` (at most 255 bytes) in this process. DRAGON_ALREADY_EXISTS if
 * the name is taken. */
DRAGON_API dragon_status_t dragon_task_register(const char *name, dragon_task_fn_t fn, void *user);

/* Set the running task's result (copied; a later call replaces it). */
DRAGON_API dragon_status_t dragon_task_return(dragon_task_ctx_t *ctx, const void *bytes,
                                              size_t len);

/* Fail the running task with this message (the task function then returns any status). */
DRAGON_API dragon_status_t dragon_task_fail(dragon_task_ctx_t *ctx, const char *message);

/* Nonzero when this process was started as a task pool's worker. */
DRAGON_API int dragon_taskpool_is_worker(void);

/* In main, after every task is registered: in a worker, serve tasks until the pool ends, then
 * exit the process (never returns); anywhere else return DRAGON_SUCCESS at once. */
DRAGON_API dragon_status_t dragon_taskpool_serve_if_worker(void);

/* ---- pools (the owner) -------------------------------------------------------------------- */

typedef struct dragon_taskpool dragon_taskpool_t;
typedef struct dragon_taskpool_job dragon_taskpool_job_t;

typedef struct dragon_taskpool_attr {
    size_t struct_size; /* set by dragon_taskpool_attr_init */
    /* How many workers, and where: `workers` (0: the CPUs granted to this job, its affinity
     * mask and cgroup CPU limit), or processes_per_policy workers (0: 1) for each of
     * n_policies policies (an array of elements of policy_size bytes: sizeof(dragon_policy_t)),
     * e.g. dragon_system_gpu_policies's. */
    uint32_t workers;
    const dragon_policy_t *policies;
    size_t n_policies;
    size_t policy_size;
    uint32_t processes_per_policy;
    /* NULL: this program (argv[0] is /proc/self/exe); else a worker executable and its
     * arguments (NULL-terminated), which registers its tasks and calls
     * dragon_taskpool_serve_if_worker. */
    const char *const *worker_argv;
    /* A task run once in each worker before it serves (NULL: none); its argument is copied
     * (at most 16 KiB). A worker whose initializer fails makes the pool's creation fail. */
    const char *initializer;
    const void *initializer_arg;
    size_t initializer_arg_len;
    uint32_t max_tasks_per_child;   /* a worker is replaced after this many items (0: never) */
    uint32_t max_retries;           /* times an item whose worker died is run again (0: none) */
    dragon_timeout_t task_timeout;  /* per chunk of items; DRAGON_TIMEOUT_FOREVER: none */
    size_t max_in_flight;           /* chunks submitted and not yet ended, whole pool (0: 4096) */
    size_t pool_bytes;              /* its shared memory (0: 64 MiB; sparse) */
    dragon_timeout_t start_timeout; /* for every worker to be ready (FOREVER/0: 60 s) */
} dragon_taskpool_attr_t;

DRAGON_API dragon_status_t dragon_taskpool_attr_init(dragon_taskpool_attr_t *attr);

/* Start the workers and wait until each is ready (its initializer done). Inside a runtime
 * only (DRAGON_NOT_IN_RUNTIME). attr may be NULL. */
DRAGON_API dragon_status_t dragon_taskpool_create(const dragon_taskpool_attr_t *attr,
                                                  dragon_taskpool_t **pool);

/* The number of worker places (a replaced worker takes its place). */
DRAGON_API dragon_status_t dragon_taskpool_workers(const dragon_taskpool_t *pool, uint32_t *n);

/* What to run a task over. */
typedef struct dragon_taskpool_input {
    size_t struct_size; /* set by dragon_taskpool_input_init */
    /* Either an array of n items (args[i], lens[i] bytes; they must stay valid until the job
     * has submitted them all: dragon_taskpool_job_progress's input_done) ... */
    const void *const *args;
    const size_t *lens;
    size_t n;
    /* ... or a callback, called for the next item until it returns 0 (its bytes must stay
     * valid until the next call). */
    int (*next)(void *user, const void **arg, size_t *len);
    void *user;
    size_t chunksize;     /* items per message to a worker (0: 1) */
    int ordered;          /* nonzero: results come in input order (map, imap) */
    size_t max_in_flight; /* items submitted and not yet delivered (0: no bound but the pool's;
                             a callback input: 0 means 64 x chunksize x workers) */
} dragon_taskpool_input_t;

DRAGON_API dragon_status_t dragon_taskpool_input_init(dragon_taskpool_input_t *input);

/* Run task `task` over `input`. Items are submitted now as far as the bounds allow, and then
 * as results come. DRAGON_CLOSED after dragon_taskpool_close or _terminate. */
DRAGON_API dragon_status_t dragon_taskpool_submit(dragon_taskpool_t *pool, const char *task,
                                                  const dragon_taskpool_input_t *input,
                                                  dragon_taskpool_job_t **job);

/* One item (copied): a job of one. */
DRAGON_API dragon_status_t dragon_taskpool_apply_async(dragon_taskpool_t *pool, const char *task,
                                                       const void *arg, size_t len,
                                                       dragon_taskpool_job_t **job);

/* The next result, waiting at most `timeout`: DRAGON_SUCCESS with *index (the item's place in
 * the input), *item_status (its own status, see above) and its bytes (the result, or for a
 * failed item its message, NUL-terminated); the bytes stay valid until the next call on this
 * job or the pool's destruction (a large result is read in place, in the pool's memory).
 * DRAGON_NOT_FOUND when every result was delivered; DRAGON_TIMEOUT. */
DRAGON_API dragon_status_t dragon_taskpool_job_next(dragon_taskpool_job_t *job,
                                                    dragon_timeout_t timeout, size_t *index,
                                                    dragon_status_t *item_status,
                                                    const void **bytes, size_t *len);

/* One result, as dragon_taskpool_job_next_many gives it. */
typedef struct dragon_taskpool_result {
    size_t struct_size; /* set by the library: the bytes of it that it wrote */
    size_t index;       /* the item's place in the input */
    dragon_status_t status;
    const void *bytes; /* valid until the next call on the job (see dragon_taskpool_job_next) */
    size_t len;
} dragon_taskpool_result_t;

/* Up to `cap` results at once, as dragon_taskpool_job_next gives them one by one (waiting at
 * most `timeout` for the first, then taking what is there): *count of them in `results`, an
 * array of elements of result_size bytes (pass sizeof(dragon_taskpool_result_t)). */
DRAGON_API dragon_status_t dragon_taskpool_job_next_many(dragon_taskpool_job_t *job,
                                                         dragon_timeout_t timeout,
                                                         dragon_taskpool_result_t *results,
                                                         size_t cap, size_t result_size,
                                                         size_t *count);

/* Wait until every item of the job has ended (results stay to be taken): DRAGON_TIMEOUT. A
 * callback input is drawn from as results free room. */
DRAGON_API dragon_status_t dragon_taskpool_job_wait(dragon_taskpool_job_t *job,
                                                    dragon_timeout_t timeout);

typedef struct dragon_taskpool_progress {
    size_t struct_size; /* set by the caller to sizeof(dragon_taskpool_progress_t) */
    uint64_t done;      /* items that ended with DRAGON_SUCCESS */
    uint64_t failed;    /* items that ended otherwise (cancelled ones included) */
    uint64_t running;   /* submitted to the workers, not ended */
    uint64_t queued;    /* not yet submitted (known for an array input only) */
    int input_done;     /* every item was submitted */
} dragon_taskpool_progress_t;

/* A job's counts, or (job NULL) the pool's over every job. */
DRAGON_API dragon_status_t dragon_taskpool_progress(dragon_taskpool_t *pool,
                                                    const dragon_taskpool_job_t *job,
                                                    dragon_taskpool_progress_t *progress);

/* Cancel what of the job has not ended: items not yet started end DRAGON_CANCELLED at once;
 * the workers running its items are ended (and replaced), those items end DRAGON_CANCELLED. */
DRAGON_API dragon_status_t dragon_taskpool_job_cancel(dragon_taskpool_job_t *job);

/* Drop the handle; what has not ended is cancelled. */
DRAGON_API dragon_status_t dragon_taskpool_job_release(dragon_taskpool_job_t *job);

/* No more submissions; the jobs there are run to their end. */
DRAGON_API dragon_status_t dragon_taskpool_close(dragon_taskpool_t *pool);

/* After close: wait until every job has ended and every worker exited. DRAGON_TIMEOUT. */
DRAGON_API dragon_status_t dragon_taskpool_join(dragon_taskpool_t *pool, dragon_timeout_t timeout);

/* End every worker now (SIGKILL); what has not ended ends DRAGON_CANCELLED. Always returns. */
DRAGON_API dragon_status_t dragon_taskpool_terminate(dragon_taskpool_t *pool);

/* Terminate (unless joined), free the shared memory, release the handle. Job handles may
 * outlive it: calls on them then return DRAGON_CLOSED (release them still). */
DRAGON_API dragon_status_t dragon_taskpool_destroy(dragon_taskpool_t *pool);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_TASKPOOL_H */
