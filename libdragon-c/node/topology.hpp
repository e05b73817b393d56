// This machine's hwloc topology as XML (I/O devices that matter kept, as the machine module
// loads it), discovered once per process: what the PMIx server hands MPI ranks, and what the
// launcher gives the daemons of the many-daemons mode so that N daemons on one machine do
// not discover it N times (docs/multinode.md). "" when hwloc fails.
#pragma once

#include <string>

namespace dragon::node {

const std::string &topology_xml();

} // namespace dragon::node
