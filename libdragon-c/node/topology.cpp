#include "topology.hpp"

#include <hwloc.h>

namespace dragon::node {

const std::string &topology_xml() {
    static const std::string xml = [] {
        std::string out;
        hwloc_topology_t t = nullptr;
        if (hwloc_topology_init(&t) != 0) {
            return out;
        }
        hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
        char *buf = nullptr;
        int len = 0;
        if (hwloc_topology_load(t) == 0 && hwloc_topology_export_xmlbuffer(t, &buf, &len, 0) == 0) {
            out.assign(buf, static_cast<size_t>(len > 0 ? len - 1 : 0));
            hwloc_free_xmlbuffer(t, buf);
        }
        hwloc_topology_destroy(t);
        return out;
    }();
    return xml;
}

} // namespace dragon::node
