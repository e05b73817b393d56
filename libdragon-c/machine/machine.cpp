// The node as hwloc sees it (docs/machine.md). The topology is read once at load and copied
// into plain vectors; no hwloc object outlives dragon_machine_load.
#include "machine.hpp"

#include "../common/error.hpp"

#include <dragon/machine.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <hwloc.h>
#include <sched.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::guarded;

namespace {

struct Topology {
    hwloc_topology_t t = nullptr;
    ~Topology() {
        if (t != nullptr) {
            hwloc_topology_destroy(t);
        }
    }
};

struct Bitmap {
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    ~Bitmap() { hwloc_bitmap_free(b); }
};

std::vector<uint32_t> ids_of(hwloc_const_bitmap_t set) {
    std::vector<uint32_t> out;
    for (int i = hwloc_bitmap_first(set); i >= 0; i = hwloc_bitmap_next(set, i)) {
        out.push_back(static_cast<uint32_t>(i));
    }
    return out;
}

dragon_gpu_vendor_t gpu_vendor(const hwloc_obj_t o) {
    unsigned cls = o->attr->pcidev.class_id >> 8; // 0x03 display, 0x12 processing accelerator
    if (cls != 0x03 && cls != 0x12) {
        return DRAGON_GPU_VENDOR_NONE;
    }
    switch (o->attr->pcidev.vendor_id) {
    case 0x10de:
        return DRAGON_GPU_VENDOR_NVIDIA;
    case 0x1002:
        return DRAGON_GPU_VENDOR_AMD;
    case 0x8086:
        return DRAGON_GPU_VENDOR_INTEL;
    default:
        return DRAGON_GPU_VENDOR_NONE;
    }
}

// The logical index of the NUMA domain nearest to an I/O object, or -1.
int32_t numa_of(hwloc_topology_t t, hwloc_obj_t o) {
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, o);
    if (anc == nullptr || anc->nodeset == nullptr) {
        return -1;
    }
    int os = hwloc_bitmap_first(anc->nodeset);
    if (os < 0 || hwloc_bitmap_weight(anc->nodeset) != 1) {
        return -1; // attached above several domains (the machine itself): no single one
    }
    hwloc_obj_t numa = hwloc_get_numanode_obj_by_os_index(t, static_cast<unsigned>(os));
    return numa != nullptr ? static_cast<int32_t>(numa->logical_index) : -1;
}

dragon_status_t load(const char *xml_path, dragon_machine *m) {
    Topology topo;
    if (hwloc_topology_init(&topo.t) != 0) {
        return dragon::detail::fail_errno(DRAGON_SYSTEM_ERROR, errno, "hwloc_topology_init");
    }
    hwloc_topology_set_io_types_filter(topo.t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    const char *xml = xml_path != nullptr ? xml_path : std::getenv("DRAGON_TOPOLOGY_XML");
    if (xml != nullptr && *xml != '\0') {
        if (hwloc_topology_set_xml(topo.t, xml) != 0) {
            int err = errno;
            return dragon::detail::fail_errno(err == ENOENT ? DRAGON_NOT_FOUND
                                                            : DRAGON_INVALID_ARGUMENT,
                                              err, "topology XML '%s' cannot be read", xml);
        }
    }
    if (hwloc_topology_load(topo.t) != 0) {
        return dragon::detail::fail_errno(
            DRAGON_INVALID_ARGUMENT, errno, "hwloc cannot load the topology%s%s",
            xml != nullptr ? " from " : "", xml != nullptr ? xml : "");
    }
    hwloc_topology_t t = topo.t;
    bool this_system = hwloc_topology_is_thissystem(t) != 0;

    // The CPUs this process was granted: the topology's allowed set (cgroup), and on the real
    // machine also this process's affinity mask.
    Bitmap allowed;
    hwloc_bitmap_copy(allowed.b, hwloc_topology_get_allowed_cpuset(t));
    if (this_system) {
        Bitmap bound;
        if (hwloc_get_cpubind(t, bound.b, HWLOC_CPUBIND_PROCESS) == 0 &&
            !hwloc_bitmap_iszero(bound.b)) {
            hwloc_bitmap_and(allowed.b, allowed.b, bound.b);
        }
    }
    m->cpus = ids_of(allowed.b);

    int numas = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    for (int i = 0; i < numas; ++i) {
        hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
        Bitmap set;
        hwloc_bitmap_and(set.b, n->cpuset, allowed.b);
        m->numa_cpus.push_back(ids_of(set.b));
    }

    if (this_system) {
        char name[DRAGON_HOST_NAME_MAX + 1] = {};
        if (gethostname(name, sizeof name - 1) == 0) {
            m->host_name = name;
        }
    }
    if (m->host_name.empty()) {
        const char *hn = hwloc_obj_get_info_by_name(hwloc_get_root_obj(t), "HostName");
        m->host_name = hn != nullptr ? hn : "unknown";
    }

    struct Found {
        hwloc_obj_t obj;
        dragon_gpu_vendor_t vendor;
    };
    std::vector<Found> found;
    for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_pcidev(t, o)) != nullptr;) {
        dragon_gpu_vendor_t v = gpu_vendor(o);
        if (v != DRAGON_GPU_VENDOR_NONE) {
            found.push_back({o, v});
        }
    }
    auto bus_key = [](hwloc_obj_t o) {
        const auto &p = o->attr->pcidev;
        return (static_cast<uint64_t>(p.domain) << 24) | (static_cast<uint64_t>(p.bus) << 16) |
               (static_cast<uint64_t>(p.dev) << 8) | p.func;
    };
    std::sort(found.begin(), found.end(),
              [&](const Found &a, const Found &b) { return bus_key(a.obj) < bus_key(b.obj); });
    uint32_t per_vendor[4] = {0, 0, 0, 0};
    for (const Found &f : found) {
        dragon_gpu_info_t g{};
        g.struct_size = sizeof g;
        g.vendor = f.vendor;
        g.vendor_index = per_vendor[f.vendor]++;
        g.numa_node = numa_of(t, f.obj);
        const auto &p = f.obj->attr->pcidev;
        g.pci_vendor_id = p.vendor_id;
        g.pci_device_id = p.device_id;
        std::snprintf(g.pci_bus_id, sizeof g.pci_bus_id, "%04x:%02x:%02x.%x", p.domain, p.bus,
                      p.dev, p.func);
        m->gpus.push_back(g);
    }
    return DRAGON_SUCCESS;
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_machine_load(const char *xml_path, dragon_machine_t **machine) {
    return guarded("dragon_machine_load", [&]() -> dragon_status_t {
        if (machine == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_machine_load: machine is NULL");
        }
        *machine = nullptr;
        auto m = std::make_unique<dragon_machine>();
        if (dragon_status_t st = load(xml_path, m.get()); st != DRAGON_SUCCESS) {
            return st;
        }
        *machine = m.release();
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_machine_free(dragon_machine_t *machine) {
    delete machine;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_machine_info(const dragon_machine_t *machine,
                                               dragon_node_info_t *info) {
    if (machine == nullptr || info == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_machine_info: NULL argument");
    }
    if (info->struct_size < sizeof(size_t)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_machine_info: set info->struct_size = sizeof(dragon_node_info_t)");
    }
    dragon_node_info_t full{};
    full.struct_size = info->struct_size;
    std::snprintf(full.host_name, sizeof full.host_name, "%s", machine->host_name.c_str());
    full.cpu_count = static_cast<uint32_t>(machine->cpus.size());
    full.numa_count = static_cast<uint32_t>(machine->numa_cpus.size());
    full.gpu_count = static_cast<uint32_t>(machine->gpus.size());
    std::memcpy(info, &full, std::min(info->struct_size, sizeof full));
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_machine_gpu(const dragon_machine_t *machine, uint32_t index,
                                              dragon_gpu_info_t *gpu) {
    if (machine == nullptr || gpu == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_machine_gpu: NULL argument");
    }
    if (gpu->struct_size < sizeof(size_t)) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "dragon_machine_gpu: set gpu->struct_size = sizeof(dragon_gpu_info_t)");
    }
    if (index >= machine->gpus.size()) {
        return fail(DRAGON_NOT_FOUND, "node '%s' has %zu GPU(s); GPU %u does not exist",
                    machine->host_name.c_str(), machine->gpus.size(), index);
    }
    dragon_gpu_info_t full = machine->gpus[index];
    full.struct_size = gpu->struct_size;
    std::memcpy(gpu, &full, std::min(gpu->struct_size, sizeof full));
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_machine_cpus(const dragon_machine_t *machine, int32_t numa,
                                               uint32_t *cpus, size_t cap, size_t *count) {
    if (machine == nullptr || count == nullptr || (cpus == nullptr && cap != 0)) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_machine_cpus: NULL argument");
    }
    if (numa >= 0 && static_cast<size_t>(numa) >= machine->numa_cpus.size()) {
        return fail(DRAGON_NOT_FOUND, "node '%s' has %zu NUMA domain(s); domain %d does not exist",
                    machine->host_name.c_str(), machine->numa_cpus.size(), numa);
    }
    const std::vector<uint32_t> &v =
        numa < 0 ? machine->cpus : machine->numa_cpus[static_cast<size_t>(numa)];
    *count = v.size();
    std::copy_n(v.begin(), std::min(cap, v.size()), cpus);
    return DRAGON_SUCCESS;
}

DRAGON_API const char *dragon_gpu_vendor_name(dragon_gpu_vendor_t vendor) {
    switch (static_cast<int>(vendor)) {
    case DRAGON_GPU_VENDOR_NVIDIA:
        return "nvidia";
    case DRAGON_GPU_VENDOR_AMD:
        return "amd";
    case DRAGON_GPU_VENDOR_INTEL:
        return "intel";
    default:
        return "none";
    }
}

DRAGON_API const char *dragon_gpu_visibility_variable(dragon_gpu_vendor_t vendor) {
    switch (static_cast<int>(vendor)) {
    case DRAGON_GPU_VENDOR_NVIDIA:
        return "CUDA_VISIBLE_DEVICES";
    case DRAGON_GPU_VENDOR_AMD:
        return "ROCR_VISIBLE_DEVICES";
    case DRAGON_GPU_VENDOR_INTEL:
        return "ZE_AFFINITY_MASK";
    default:
        return nullptr;
    }
}

} // extern "C"
