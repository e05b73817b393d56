/* libdragon — processes of the runtime: start one on this node through its daemon (with a
 * policy's CPU and GPU binding), wait for it with a timeout, signal it. Works from any
 * process the runtime started (it finds its node daemon through DRAGON_NODE_SOCKET), not
 * only from the launcher's child. docs/runtime.md.
 */
#ifndef DRAGON_PROCESS_H
#define DRAGON_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/policy.h>
#include <dragon/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dragon_stdio {
    DRAGON_STDIO_RELAY = 0,   /* relayed line by line to the launcher's stdout/stderr */
    DRAGON_STDIO_INHERIT = 1, /* the daemon's own (the launcher's terminal) */
    DRAGON_STDIO_DEVNULL = 2
} dragon_stdio_t;

typedef struct dragon_process_attr {
    size_t struct_size;            /* set by dragon_process_attr_init */
    const char *const *env;        /* NULL-terminated "NAME=value" list; NULL: the caller's */
    const char *cwd;               /* NULL: the daemon's */
    dragon_stdio_t out_mode;       /* stdout; stdin is /dev/null */
    dragon_stdio_t err_mode;       /* stderr */
    const dragon_policy_t *policy; /* NULL: none (CPU and GPU affinity are applied) */
} dragon_process_attr_t;

DRAGON_API dragon_status_t dragon_process_attr_init(dragon_process_attr_t *attr);

/* Start argv[0] (a path or a name in PATH) with argv (NULL-terminated). *puid receives the
 * process's runtime-wide id. DRAGON_NOT_FOUND: no such program; DRAGON_NOT_FOUND /
 * DRAGON_INVALID_ARGUMENT: the policy names CPUs or GPUs the node does not have;
 * DRAGON_CLOSED: not inside a runtime, or its daemon is gone. */
DRAGON_API dragon_status_t dragon_process_create(const char *const *argv,
                                                 const dragon_process_attr_t *attr, uint64_t *puid);

/* Wait for the process to end: *exit_code receives its exit status, or 128+N when signal N
 * killed it. DRAGON_TIMEOUT if it is still running after `timeout`. */
DRAGON_API dragon_status_t dragon_process_join(uint64_t puid, dragon_timeout_t timeout,
                                               int *exit_code);

/* Send a signal to the process (and the process group it leads). */
DRAGON_API dragon_status_t dragon_process_signal(uint64_t puid, int signal);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_PROCESS_H */
