// The daemons' fabric in a build without libfabric (libfabric-dev): never open, so requests
// between nodes go along the tree (docs/multinode.md).
#include "fabric.hpp"

namespace dragon::node {

struct Fabric::Buffer {};

Fabric::Fabric(Reactor &reactor, uint32_t node_id, OnMessage on_message)
    : reactor_(reactor), node_id_(node_id), on_message_(std::move(on_message)) {}
Fabric::~Fabric() = default;
bool Fabric::open(const std::string &, std::string *why) {
    *why = "this dragon-node was built without libfabric";
    return false;
}
bool Fabric::set_peers(const std::vector<std::string> &, std::string *) {
    return true;
}
bool Fabric::reaches(uint32_t) const {
    return false;
}
void Fabric::send(uint32_t, std::string_view) {}
void Fabric::close() {}

} // namespace dragon::node
