/* libdragon — policies: where and how a process runs (placement, distribution, CPU and GPU
 * affinity, wait mode), and how policies from several levels merge (docs/policy.md).
 *
 * Every field has an "unset" value; merging takes, field by field, the value of the most
 * specific level that sets it: explicit > process group > template > global default.
 */
#ifndef DRAGON_POLICY_H
#define DRAGON_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/machine.h>
#include <dragon/status.h>
#include <dragon/wait.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dragon_placement {
    DRAGON_PLACEMENT_UNSET = 0,
    DRAGON_PLACEMENT_ANYWHERE = 1, /* any node the runtime picks */
    DRAGON_PLACEMENT_LOCAL = 2,    /* the node of the process that starts it */
    DRAGON_PLACEMENT_HOST_NAME = 3,
    DRAGON_PLACEMENT_HOST_ID = 4
} dragon_placement_t;

typedef enum dragon_distribution {
    DRAGON_DISTRIBUTION_UNSET = 0,
    DRAGON_DISTRIBUTION_ROUNDROBIN = 1, /* members of a group go to nodes in turn */
    DRAGON_DISTRIBUTION_BLOCK = 2       /* fill a node, then the next */
} dragon_distribution_t;

#define DRAGON_POLICY_MAX_CPUS 1024
#define DRAGON_POLICY_MAX_GPUS 64

typedef struct dragon_policy {
    size_t struct_size; /* set by dragon_policy_init */
    dragon_placement_t placement;
    dragon_distribution_t distribution;
    char host_name[DRAGON_HOST_NAME_MAX + 1]; /* "" = unset */
    int64_t host_id;                          /* -1 = unset */
    uint32_t cpu_count;                       /* 0 = unset */
    uint32_t cpus[DRAGON_POLICY_MAX_CPUS];    /* logical CPU ids to bind to */
    uint32_t gpu_count;                       /* 0 = unset */
    uint32_t gpus[DRAGON_POLICY_MAX_GPUS];    /* GPU indices of the node (dragon_machine_gpu) */
    dragon_wait_mode_t wait_mode;             /* DRAGON_WAIT_DEFAULT = unset (dragon/wait.h) */
} dragon_policy_t;

/* Every field unset. */
DRAGON_API dragon_status_t dragon_policy_init(dragon_policy_t *policy);

/* Merge n levels, given from the least specific (global default) to the most specific
 * (explicit): each field of *out comes from the last level that sets it. NULL levels are
 * skipped. */
DRAGON_API dragon_status_t dragon_policy_merge(const dragon_policy_t *const *levels, size_t n,
                                               dragon_policy_t *out);

/* What a merged policy means on one node. */
typedef struct dragon_policy_binding {
    size_t struct_size; /* set by the caller */
    uint32_t cpu_count; /* 0: no binding asked for */
    uint32_t cpus[DRAGON_POLICY_MAX_CPUS];
    /* The environment variable that selects the GPUs ("" if none asked for), and its value
     * ("0,2"), and CUDA_DEVICE_ORDER=PCI_BUS_ID is to be set too when the vendor is NVIDIA. */
    char gpu_variable[32];
    char gpu_value[4 * DRAGON_POLICY_MAX_GPUS];
    dragon_gpu_vendor_t gpu_vendor;
} dragon_policy_binding_t;

/* Check the policy's CPUs and GPUs against the node and turn them into a binding. A CPU the
 * process was not granted, a GPU that does not exist, or GPUs of two vendors in one policy
 * give DRAGON_NOT_FOUND / DRAGON_INVALID_ARGUMENT with a message that names them. */
DRAGON_API dragon_status_t dragon_policy_bind(const dragon_policy_t *policy,
                                              const dragon_machine_t *machine,
                                              dragon_policy_binding_t *binding);

/* One policy per GPU of the node: placement HOST_NAME on its host, that GPU, and the
 * node's CPUs of the GPU's NUMA domain (all granted CPUs when unknown). *count receives the
 * number of GPUs; at most cap policies are written (policies may be NULL when cap is 0).
 *
 * policy_size is sizeof(dragon_policy_t) as the caller was compiled, or the size of a larger
 * element that begins with one: element i starts at (char *)policies + i * policy_size, the
 * library writes at most policy_size bytes of it (and sets its struct_size to what it
 * wrote) and never touches bytes past its own dragon_policy_t. So the struct can grow
 * without breaking callers built against an older header (docs/abi.md, "Arrays of structs
 * that grow"). A policy_size smaller than the first dragon_policy_t of this ABI is
 * DRAGON_INVALID_ARGUMENT. */
DRAGON_API dragon_status_t dragon_policy_per_gpu(const dragon_machine_t *machine,
                                                 dragon_policy_t *policies, size_t cap,
                                                 size_t policy_size, size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_POLICY_H */
