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

/* ---- Process groups ----
 * A group holds members added from templates (argv + attributes, the attributes' policy
 * being the template's), a group policy, and the members' runtime ids once started. Policies
 * merge with the group's over the template's (docs/policy.md). The group handle lives in the
 * process that made it; its members are runtime processes like any other. */
typedef struct dragon_process_group dragon_process_group_t;

/* policy: the group policy (may be NULL). */
DRAGON_API dragon_status_t dragon_process_group_create(const dragon_policy_t *policy,
                                                       dragon_process_group_t **group);
/* Add n members started from the template argv/attr (copied). Before start only. */
DRAGON_API dragon_status_t dragon_process_group_add(dragon_process_group_t *group, uint32_t n,
                                                    const char *const *argv,
                                                    const dragon_process_attr_t *attr);
/* Start every member. If one cannot start, those started are killed and the status tells
 * why (the message names the member). */
DRAGON_API dragon_status_t dragon_process_group_start(dragon_process_group_t *group);
/* Wait for every member to end; DRAGON_TIMEOUT if some still run after `timeout`. */
DRAGON_API dragon_status_t dragon_process_group_join(dragon_process_group_t *group,
                                                     dragon_timeout_t timeout);
/* SIGTERM every running member, then SIGKILL those still running after `grace`, and wait. */
DRAGON_API dragon_status_t dragon_process_group_stop(dragon_process_group_t *group,
                                                     dragon_timeout_t grace);
DRAGON_API dragon_status_t dragon_process_group_size(const dragon_process_group_t *group,
                                                     uint32_t *size);
/* Member i: its runtime id (0 before start), whether it has ended, and its exit status
 * (128+N for signal N; -1 while running). */
DRAGON_API dragon_status_t dragon_process_group_member(dragon_process_group_t *group,
                                                       uint32_t index, uint64_t *puid, int *ended,
                                                       int *exit_code);
/* Free the handle (members still running keep running until the runtime ends). */
DRAGON_API dragon_status_t dragon_process_group_destroy(dragon_process_group_t *group);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_PROCESS_H */
