/* libdragon — the runtime's nodes, as seen from any of its processes: how many, their ids
 * and host names, their CPUs, NUMA domains and GPUs, and one policy per GPU of every node
 * (the seed's gpu_policies()). Asked of the node daemons; docs/runtime.md, "System".
 */
#ifndef DRAGON_SYSTEM_H
#define DRAGON_SYSTEM_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/machine.h>
#include <dragon/policy.h>
#include <dragon/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dragon_system_node {
    size_t struct_size; /* set by the caller to sizeof(dragon_system_node_t) */
    uint32_t node_id;   /* the host id policies name (DRAGON_PLACEMENT_HOST_ID) */
    char host_name[DRAGON_HOST_NAME_MAX + 1];
    uint32_t cpu_count; /* CPUs the runtime may use there */
    uint32_t numa_count;
    uint32_t gpu_count;
} dragon_system_node_t;

/* Nodes of the runtime. DRAGON_NOT_IN_RUNTIME outside a runtime. */
DRAGON_API dragon_status_t dragon_system_node_count(uint32_t *count);

/* Node `index` (0 .. count-1, by node id). DRAGON_NOT_FOUND past the end. */
DRAGON_API dragon_status_t dragon_system_node(uint32_t index, dragon_system_node_t *node);

/* One policy per GPU of every node: placement HOST_NAME (and HOST_ID) on its node, that
 * GPU, and the CPUs of the GPU's NUMA domain. On a machine without GPUs there are none
 * (*count is 0): fall back, for example to one process per NUMA domain as
 * examples/process_group.cpp does. *count receives the number of GPUs; at most
 * cap policies are written (policies may be NULL when cap is 0). policy_size: pass
 * sizeof(dragon_policy_t); elements are strided by it and written as dragon_policy_per_gpu
 * says (dragon/policy.h). */
DRAGON_API dragon_status_t dragon_system_gpu_policies(dragon_policy_t *policies, size_t cap,
                                                      size_t policy_size, size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_SYSTEM_H */
