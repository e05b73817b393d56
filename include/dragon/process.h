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
    DRAGON_STDIO_RELAY = 0,   /* stdout/stderr: relayed line by line to the launcher's */
    DRAGON_STDIO_INHERIT = 1, /* the creating process's own stdin/stdout/stderr */
    DRAGON_STDIO_DEVNULL = 2,
    DRAGON_STDIO_PIPE = 3 /* a pipe whose other end the creator gets: create_with_pipes */
} dragon_stdio_t;

typedef struct dragon_process_attr {
    size_t struct_size;            /* set by dragon_process_attr_init */
    const char *const *env;        /* NULL-terminated "NAME=value" list; NULL: the caller's */
    const char *cwd;               /* NULL: the daemon's */
    dragon_stdio_t out_mode;       /* stdout (default RELAY) */
    dragon_stdio_t err_mode;       /* stderr (default RELAY) */
    const dragon_policy_t *policy; /* NULL: none. Placement, CPU and GPU affinity apply */
    dragon_stdio_t in_mode;        /* stdin: INHERIT, DEVNULL (default) or PIPE */
    /* Restart on failure: when the process ends with a non-zero status (or by a signal that
     * was not a stop request), the node daemon starts it again under the same runtime id, at
     * most max_restarts times (0: never). Quick failures back off from 10 ms to 1 s. */
    uint32_t max_restarts;
    /* The role the process is started in (NULL: none): it reads it with dragon_process_role.
     * With argv[0] = dragon_process_self_exe(), "this same program, as a worker". At most 64
     * printable characters. */
    const char *role;
} dragon_process_attr_t;

DRAGON_API dragon_status_t dragon_process_attr_init(dragon_process_attr_t *attr);

/* Start argv[0] (a path or a name in PATH) with argv (NULL-terminated). *puid receives the
 * process's runtime-wide id. DRAGON_NOT_FOUND: no such program; DRAGON_NOT_FOUND /
 * DRAGON_INVALID_ARGUMENT: the policy names CPUs or GPUs the node does not have;
 * DRAGON_NOT_IN_RUNTIME: not started by `dragon`; DRAGON_CLOSED: its daemon is gone. */
DRAGON_API dragon_status_t dragon_process_create(const char *const *argv,
                                                 const dragon_process_attr_t *attr, uint64_t *puid);

/* The creator's ends of PIPE streams (-1 for the others): write to in_fd, read from out_fd
 * and err_fd; close them when done. Close-on-exec. */
typedef struct dragon_process_pipes {
    int in_fd;
    int out_fd;
    int err_fd;
} dragon_process_pipes_t;

/* dragon_process_create, with PIPE streams allowed: *pipes receives their ends. */
DRAGON_API dragon_status_t dragon_process_create_with_pipes(const char *const *argv,
                                                            const dragon_process_attr_t *attr,
                                                            uint64_t *puid,
                                                            dragon_process_pipes_t *pipes);

/* Wait for the process to end: *exit_code receives its exit status, or 128+N when signal N
 * killed it. DRAGON_TIMEOUT if it is still running after `timeout`. */
DRAGON_API dragon_status_t dragon_process_join(uint64_t puid, dragon_timeout_t timeout,
                                               int *exit_code);

/* Send a signal to the process (and the process group it leads). A process with restarts
 * that a signal kills is restarted; dragon_process_stop is the way to end it for good. */
DRAGON_API dragon_status_t dragon_process_signal(uint64_t puid, int signal);

/* End the process for good: no more restarts, then the signal (SIGTERM usually). */
DRAGON_API dragon_status_t dragon_process_stop(uint64_t puid, int signal);

typedef enum dragon_process_state {
    DRAGON_PROCESS_RUNNING = 1, /* running, or between a failure and its restart */
    DRAGON_PROCESS_EXITED = 2   /* ended for good */
} dragon_process_state_t;

typedef struct dragon_process_status {
    size_t struct_size; /* set by the caller to sizeof(dragon_process_status_t) */
    dragon_process_state_t state;
    int32_t pid;       /* on its node; the latest incarnation's */
    int32_t exit_code; /* EXITED: exit status, 128+N for signal N; RUNNING: -1 */
    uint32_t restarts; /* times it was restarted after a failure */
    uint32_t node_id;  /* the node it runs on */
} dragon_process_status_t;

/* The process's state now, without waiting. DRAGON_NOT_FOUND: no such process. */
DRAGON_API dragon_status_t dragon_process_query(uint64_t puid, dragon_process_status_t *status);

/* ---- Process groups ----
 * A group holds members added from templates (argv + attributes, the attributes' policy
 * being the template's), a group policy, and the members' runtime ids once started. Policies
 * merge with the group's over the template's (docs/policy.md). The group handle lives in the
 * process that made it; its members are runtime processes like any other. */
typedef struct dragon_process_group dragon_process_group_t;

/* policy: the group policy (may be NULL). */
DRAGON_API dragon_status_t dragon_process_group_create(const dragon_policy_t *policy,
                                                       dragon_process_group_t **group);
/* Add n members started from the template argv/attr (copied). Before start only. Members'
 * stdio may be RELAY, INHERIT or DEVNULL (not PIPE). */
DRAGON_API dragon_status_t dragon_process_group_add(dragon_process_group_t *group, uint32_t n,
                                                    const char *const *argv,
                                                    const dragon_process_attr_t *attr);
/* Restart on failure for every member (overrides the templates' max_restarts): a member
 * that fails is restarted at most max_restarts times; join waits for the members' final
 * ends; stop ends them for good. Before start only. */
DRAGON_API dragon_status_t dragon_process_group_set_restart(dragon_process_group_t *group,
                                                            uint32_t max_restarts);
/* Start every member, all or none: every template's placement and binding is checked with
 * the node daemon before any member starts (a policy whose CPUs the job was not granted, a
 * GPU the node lacks); if one still cannot start, those started are killed. The status
 * tells why and the message names the member. A group with no members is
 * DRAGON_INVALID_ARGUMENT: starting nothing is never meant (the GPU pattern on a machine
 * without GPUs adds none). Member i (in the order added) runs with its index and the
 * group's size: dragon_process_group_rank. */
DRAGON_API dragon_status_t dragon_process_group_start(dragon_process_group_t *group);

/* Before start: make the group an MPI job (enable != 0): its members are the ranks 0..n-1 of
 * one PMIx namespace that the node daemon serves, so MPI programs start without mpirun
 * (docs/pmi.md). A member that is not an MPI program still runs. */
DRAGON_API dragon_status_t dragon_process_group_set_pmi(dragon_process_group_t *group, int enable);
/* Wait for every member to end (for good, when restarting); DRAGON_TIMEOUT if some still
 * run after `timeout`. */
DRAGON_API dragon_status_t dragon_process_group_join(dragon_process_group_t *group,
                                                     dragon_timeout_t timeout);
/* End every member for good: SIGTERM, then SIGKILL to those still running after `grace`;
 * returns when all have ended. */
DRAGON_API dragon_status_t dragon_process_group_stop(dragon_process_group_t *group,
                                                     dragon_timeout_t grace);
DRAGON_API dragon_status_t dragon_process_group_size(const dragon_process_group_t *group,
                                                     uint32_t *size);
/* Member i: its runtime id (0 before start), whether it has ended for good, and its exit
 * status (128+N for signal N; -1 while running). */
DRAGON_API dragon_status_t dragon_process_group_member(dragon_process_group_t *group,
                                                       uint32_t index, uint64_t *puid, int *ended,
                                                       int *exit_code);
/* Free the handle (members still running keep running until the runtime ends). */
DRAGON_API dragon_status_t dragon_process_group_destroy(dragon_process_group_t *group);

/* ---- The calling process ---- */

/* Its runtime-wide id. DRAGON_NOT_IN_RUNTIME: the runtime did not start it. */
DRAGON_API dragon_status_t dragon_process_self(uint64_t *puid);
/* As a member of a process group: its index in the group (0 to size-1, in the order members
 * were added, kept across restarts) and the group's size, as an MPI rank and size.
 * DRAGON_NOT_FOUND: not a group member; DRAGON_NOT_IN_RUNTIME: not in a runtime. */
DRAGON_API dragon_status_t dragon_process_group_rank(uint32_t *index, uint32_t *size);
/* The role it was started in (dragon_process_attr_t.role), or NULL. */
DRAGON_API const char *dragon_process_role(void);
/* The path of its own executable (for argv[0], to start this same program in a role), or
 * NULL (see dragon_last_error). Valid for the life of the process. */
DRAGON_API const char *dragon_process_self_exe(void);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_PROCESS_H */
