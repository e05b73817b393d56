// The PMIx server service (docs/pmi.md): MPI ranks of a process group with `pmi` set find
// their job through libpmix's server, which this service runs inside dragon-node. libpmix
// calls back on its own thread; every callback is posted to the reactor, and the service's
// state is touched on the reactor's thread only.
#pragma once

#include "service.hpp"

#include <dragon/status.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dragon::node {

class PmixServer : public Service {
  public:
    explicit PmixServer(NodeContext &node);
    ~PmixServer() override;
    const char *name() const override { return "pmix-server"; }
    bool start() override;
    void stop() override;

    // Before rank `rank` of namespace `nspace` (of `size` ranks, all on this node) starts:
    // register the namespace (on its first rank) and the rank, and add the variables the
    // rank needs to *env (`inherited` is the environment it starts with: a variable the
    // user set there is not overridden). Blocks the reactor for libpmix's registration
    // (milliseconds).
    dragon_status_t prepare(const std::string &nspace, uint32_t size, uint32_t rank,
                            const std::vector<std::string> &inherited,
                            std::vector<std::pair<std::string, std::string>> *env);
    // A rank ended with this exit code (128+N: signal N); or, from libpmix's callbacks: -3
    // it connected (MPI_Init), -1 it finalized, -2 it called MPI_Abort.
    void rank_ended(const std::string &nspace, uint32_t rank, int exit_code);
    // How the service ends the ranks of a job that failed (set by the process manager):
    // signal every live rank of the namespace but `except` (-1: none).
    void set_end_job(std::function<void(const std::string &, int64_t except)> f) {
        end_job_ = std::move(f);
    }
    // Variables of a rank's inherited environment that would break a direct launch.
    static bool inherited_breaks_launch(const std::string &name_eq_value);

    struct Job;

  private:
    dragon_status_t init_server();
    void fail_job(Job &job, const std::string &why, int64_t except);

    bool initialised_ = false;
    std::string tmpdir_;
    std::map<std::string, std::unique_ptr<Job>> jobs_;
    uint64_t jobs_made_ = 0;
    std::function<void(const std::string &, int64_t)> end_job_;
};

} // namespace dragon::node
