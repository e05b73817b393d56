/* libdragon — the node this process runs on, as hwloc sees it: host name, the CPUs this
 * process was granted, NUMA domains, and GPUs with their vendor and index.
 *
 * GPUs are the PCI devices of class "display controller" or "processing accelerator" made
 * by NVIDIA, AMD or Intel, numbered per vendor in PCI bus order: the numbering that
 * CUDA_VISIBLE_DEVICES (with CUDA_DEVICE_ORDER=PCI_BUS_ID), ROCR_VISIBLE_DEVICES and
 * ZE_AFFINITY_MASK use. A saved or synthetic topology can stand in for the real machine
 * (an hwloc XML file: the xml_path argument, or $DRAGON_TOPOLOGY_XML), which is how GPU
 * placement is tested on machines without GPUs (docs/machine.md).
 */
#ifndef DRAGON_MACHINE_H
#define DRAGON_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include <dragon/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dragon_machine dragon_machine_t;

typedef enum dragon_gpu_vendor {
    DRAGON_GPU_VENDOR_NONE = 0,
    DRAGON_GPU_VENDOR_NVIDIA = 1,
    DRAGON_GPU_VENDOR_AMD = 2,
    DRAGON_GPU_VENDOR_INTEL = 3
} dragon_gpu_vendor_t;

#define DRAGON_HOST_NAME_MAX 255

typedef struct dragon_node_info {
    size_t struct_size; /* set by the caller to sizeof(dragon_node_info_t) */
    char host_name[DRAGON_HOST_NAME_MAX + 1];
    uint32_t cpu_count;  /* logical CPUs this process may run on (affinity mask, cgroup) */
    uint32_t numa_count; /* NUMA domains */
    uint32_t gpu_count;  /* GPUs of all vendors */
} dragon_node_info_t;

typedef struct dragon_gpu_info {
    size_t struct_size; /* set by the caller to sizeof(dragon_gpu_info_t) */
    dragon_gpu_vendor_t vendor;
    uint32_t vendor_index; /* index among this vendor's GPUs, PCI bus order */
    int32_t numa_node;     /* the NUMA domain it hangs off, -1 if unknown */
    uint16_t pci_vendor_id;
    uint16_t pci_device_id;
    char pci_bus_id[32]; /* "dddd:bb:dd.f" */
} dragon_gpu_info_t;

/* Discover this node (xml_path NULL and no $DRAGON_TOPOLOGY_XML), or load a topology from
 * an hwloc XML file. */
DRAGON_API dragon_status_t dragon_machine_load(const char *xml_path, dragon_machine_t **machine);
DRAGON_API dragon_status_t dragon_machine_free(dragon_machine_t *machine);

DRAGON_API dragon_status_t dragon_machine_info(const dragon_machine_t *machine,
                                               dragon_node_info_t *info);

/* GPU `index` (0 .. gpu_count-1, all vendors, PCI bus order). DRAGON_NOT_FOUND past the end. */
DRAGON_API dragon_status_t dragon_machine_gpu(const dragon_machine_t *machine, uint32_t index,
                                              dragon_gpu_info_t *gpu);

/* The logical CPU ids (ascending) this process may use: all of them (numa < 0), or those of
 * one NUMA domain. *count receives how many there are; at most cap are written.
 * DRAGON_NOT_FOUND for a NUMA domain that does not exist. */
DRAGON_API dragon_status_t dragon_machine_cpus(const dragon_machine_t *machine, int32_t numa,
                                               uint32_t *cpus, size_t cap, size_t *count);

/* The name of a vendor ("nvidia", "amd", "intel", "none") and the environment variable
 * that selects its GPUs ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
 * "ZE_AFFINITY_MASK"; NULL for none). */
DRAGON_API const char *dragon_gpu_vendor_name(dragon_gpu_vendor_t vendor);
DRAGON_API const char *dragon_gpu_visibility_variable(dragon_gpu_vendor_t vendor);

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_MACHINE_H */
