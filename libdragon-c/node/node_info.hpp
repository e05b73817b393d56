// The node-info service: this node as the runtime sees it (the "node" op: id, host name,
// CPUs, NUMA domains, GPUs, one policy per GPU), and the placement and affinity checks the
// process manager applies to a spawn. The machine is loaded on first use
// (DRAGON_TOPOLOGY_XML can stand in for it).
#pragma once

#include "service.hpp"

#include "../process/spawn.hpp"
#include "../protocol/messages.hpp"

#include <dragon/machine.h>

#include <cstdint>
#include <vector>

namespace dragon::node {

class NodeInfo : public Service {
  public:
    using Service::Service;
    ~NodeInfo() override;
    const char *name() const override { return "node-info"; }
    bool start() override;
    void stop() override;

    // This node as the "node" op answers it (and the bootstrap reports it).
    dragon_status_t describe(protocol::NodeReply *out);
    // NOT_FOUND when the spawn names another node.
    dragon_status_t check_placement(const protocol::Spawn &spawn);
    // The spawn's CPUs and GPUs checked against this node and turned into a binding
    // (req->cpus, and the GPU variables in req->set_env).
    dragon_status_t bind(const protocol::Spawn &spawn, proc::SpawnRequest *req);

  private:
    dragon_status_t load();
    dragon_machine_t *machine_ = nullptr;
    std::vector<uint32_t> granted_; // the CPUs this daemon (so the job) may run on
};

} // namespace dragon::node
