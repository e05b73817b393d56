// The PMIx server service in a build without libpmix (meson option runtime_deps disabled,
// and no libpmix-dev): a process group with pmi set is refused, saying why.
#include "pmix_server.hpp"

#include "../common/error.hpp"

namespace dragon::node {

struct PmixServer::Job {};

PmixServer::PmixServer(NodeContext &node) : Service(node) {}
PmixServer::~PmixServer() = default;
bool PmixServer::start() {
    return true;
}
void PmixServer::stop() {}

bool PmixServer::inherited_breaks_launch(const std::string &) {
    return false;
}

dragon_status_t PmixServer::prepare(const std::string &nspace, uint32_t, uint32_t,
                                    const std::vector<std::string> &,
                                    std::vector<std::pair<std::string, std::string>> *) {
    return detail::fail(DRAGON_NOT_SUPPORTED,
                        "MPI job '%s': this dragon-node was built without libpmix (install "
                        "libpmix-dev and rebuild)",
                        nspace.c_str());
}

void PmixServer::rank_ended(const std::string &, uint32_t, int) {}

} // namespace dragon::node
