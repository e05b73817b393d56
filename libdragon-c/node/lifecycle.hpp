// The lifecycle service: the "shutdown" op and the launcher's life pipe (its end means the
// launcher is gone, or hurries the teardown); either starts the teardown.
#pragma once

#include "service.hpp"

namespace dragon::node {

class Lifecycle : public Service {
  public:
    Lifecycle(NodeContext &node, int life_fd) : Service(node), life_fd_(life_fd) {}
    ~Lifecycle() override;
    const char *name() const override { return "lifecycle"; }
    bool start() override;

  private:
    int life_fd_;
    uint64_t life_watch_ = 0;
};

} // namespace dragon::node
