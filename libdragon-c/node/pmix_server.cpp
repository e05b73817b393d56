// The PMIx server service (pmix_server.hpp, docs/pmi.md).
#include "pmix_server.hpp"

#include "paths.hpp"
#include "topology.hpp"

#include "../common/error.hpp"

#include <pmix.h>
#include <pmix_server.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <sys/stat.h>
#include <unistd.h>

using dragon::detail::fail;

namespace dragon::node {

struct PmixServer::Job {
    std::string nspace;
    uint32_t size = 0;
    std::string dir;
    std::string shm_dir; // Open MPI's shared-memory segments, under /dev/shm
    std::vector<bool> registered;
    std::vector<bool> connected;
    std::vector<bool> finalized;
    std::vector<bool> ended;
    uint32_t n_ended = 0;
    bool failed = false;
};

namespace {

constexpr int64_t kFinalizeGraceNs = 1'000'000'000;
PmixServer *g_server = nullptr; // libpmix is one per process
Reactor *g_reactor = nullptr;

// A libpmix completion waited for on the reactor's thread, bounded.
struct Latch {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    pmix_status_t status = PMIX_SUCCESS;
    bool wait(std::chrono::milliseconds limit) {
        std::unique_lock<std::mutex> lk(mu);
        return cv.wait_for(lk, limit, [this] { return done; });
    }
};

// A completion that nobody waits for.
void latch_free(pmix_status_t, void *cbdata) {
    delete static_cast<Latch *>(cbdata);
}

void latch_done(pmix_status_t status, void *cbdata) {
    auto *l = static_cast<Latch *>(cbdata);
    std::lock_guard<std::mutex> lk(l->mu);
    l->status = status;
    l->done = true;
    l->cv.notify_all();
}

// The outcome of a libpmix call whose completion `l` receives, waited for at most 10 s. A
// completion that never came leaves `l` to leak (libpmix may still write it): a timeout.
pmix_status_t completed(pmix_status_t rc, Latch *l) {
    if (rc != PMIX_SUCCESS) {
        delete l; // no completion will come: done already, or refused
        return rc == PMIX_OPERATION_SUCCEEDED ? PMIX_SUCCESS : rc;
    }
    if (!l->wait(std::chrono::seconds(10))) {
        return PMIX_ERR_TIMEOUT;
    }
    pmix_status_t st = l->status;
    delete l;
    return st;
}

// pmix_info_t values, freed together.
struct Infos {
    std::vector<pmix_info_t> v;
    Infos() = default;
    Infos(const Infos &) = delete;
    Infos &operator=(const Infos &) = delete;
    ~Infos() {
        for (pmix_info_t &i : v) {
            PMIX_INFO_DESTRUCT(&i);
        }
    }
    void add(const char *key, const void *value, pmix_data_type_t type) {
        v.emplace_back();
        PMIX_INFO_CONSTRUCT(&v.back());
        PMIX_INFO_LOAD(&v.back(), key, value, type);
    }
    void str(const char *key, const std::string &s) { add(key, s.c_str(), PMIX_STRING); }
    void u32(const char *key, uint32_t x) { add(key, &x, PMIX_UINT32); }
    void u16(const char *key, uint16_t x) { add(key, &x, PMIX_UINT16); }
    void rank(const char *key, pmix_rank_t x) { add(key, &x, PMIX_PROC_RANK); }
    void flag(const char *key, bool b) { add(key, &b, PMIX_BOOL); }
    void array(const char *key, std::vector<pmix_info_t> &items) {
        pmix_data_array_t a;
        a.type = PMIX_INFO;
        a.size = items.size();
        a.array = items.data();
        add(key, &a, PMIX_DATA_ARRAY); // copied
    }
};

pmix_status_t on_connected(const pmix_proc_t *proc, void *, pmix_op_cbfunc_t cbfunc, void *cbdata) {
    std::string ns = proc->nspace;
    uint32_t rank = proc->rank;
    g_reactor->post([ns, rank] {
        if (g_server != nullptr) {
            g_server->rank_ended(ns, rank, -3); // -3: connected (MPI_Init)
        }
    });
    if (cbfunc != nullptr) {
        cbfunc(PMIX_SUCCESS, cbdata);
    }
    return PMIX_SUCCESS;
}

pmix_status_t on_finalized(const pmix_proc_t *proc, void *, pmix_op_cbfunc_t cbfunc, void *cbdata) {
    std::string ns = proc->nspace;
    uint32_t rank = proc->rank;
    g_reactor->post([ns, rank] {
        if (g_server != nullptr) {
            g_server->rank_ended(ns, rank, -1); // -1: finalized, still running
        }
    });
    if (cbfunc != nullptr) {
        cbfunc(PMIX_SUCCESS, cbdata);
    }
    return PMIX_SUCCESS;
}

pmix_status_t on_abort(const pmix_proc_t *proc, void *, int status, const char msg[], pmix_proc_t[],
                       size_t, pmix_op_cbfunc_t cbfunc, void *cbdata) {
    std::string ns = proc->nspace;
    uint32_t rank = proc->rank;
    std::string m = msg != nullptr ? msg : "";
    std::fprintf(stderr, "dragon-node: MPI job %s: rank %u called MPI_Abort(%d)%s%s\n", ns.c_str(),
                 rank, status, m.empty() ? "" : ": ", m.c_str());
    g_reactor->post([ns, rank] {
        if (g_server != nullptr) {
            g_server->rank_ended(ns, rank, -2); // -2: aborted: end the others
        }
    });
    if (cbfunc != nullptr) {
        cbfunc(PMIX_SUCCESS, cbdata);
    }
    return PMIX_SUCCESS;
}

void release_copy(void *cbdata) {
    std::free(cbdata);
}

// One node: every rank's contribution is in `data` already; the answer is the same bytes
// (with several nodes, the concatenation of every node's, through the transport).
pmix_status_t on_fence(const pmix_proc_t[], size_t, const pmix_info_t[], size_t, char *data,
                       size_t ndata, pmix_modex_cbfunc_t cbfunc, void *cbdata) {
    char *copy = nullptr;
    if (ndata != 0) {
        copy = static_cast<char *>(std::malloc(ndata));
        if (copy == nullptr) {
            return PMIX_ERR_NOMEM;
        }
        std::memcpy(copy, data, ndata);
    }
    if (cbfunc != nullptr) {
        cbfunc(PMIX_SUCCESS, copy, ndata, cbdata, release_copy, copy);
    } else {
        std::free(copy);
    }
    return PMIX_SUCCESS;
}

// Asked only for ranks another node's server hosts: none yet.
pmix_status_t on_dmodex(const pmix_proc_t *, const pmix_info_t[], size_t, pmix_modex_cbfunc_t,
                        void *) {
    return PMIX_ERR_NOT_FOUND;
}

const char *const kBadPrefixes[] = {"PMIX_",
                                    "PMI_",
                                    "OMPI_MCA_pmix",
                                    "OMPI_MCA_ess",
                                    "OMPI_MCA_schizo",
                                    "OMPI_MCA_orte_",
                                    "OMPI_COMM_WORLD",
                                    "OMPI_UNIVERSE",
                                    "ORTE_",
                                    "SLURM_",
                                    "FLUX_"};

} // namespace

PmixServer::PmixServer(NodeContext &node) : Service(node) {}

PmixServer::~PmixServer() {
    if (g_server == this) {
        g_server = nullptr;
    }
}

bool PmixServer::start() {
    g_server = this;
    g_reactor = &node_.reactor;
    return true; // libpmix starts with the first job (docs/pmi.md, "Shape")
}

bool PmixServer::inherited_breaks_launch(const std::string &kv) {
    for (const char *p : kBadPrefixes) {
        if (kv.compare(0, std::strlen(p), p) == 0) {
            return true;
        }
    }
    return false;
}

dragon_status_t PmixServer::init_server() {
    if (initialised_) {
        return DRAGON_SUCCESS;
    }
    tmpdir_ = runtime::runtime_dir(node_.runtime_id) + "/pmix-" + std::to_string(node_.node_id);
    std::error_code ec;
    std::filesystem::create_directories(tmpdir_ + "/server", ec);
    // Fences through the host's callback even when all ranks are local: one path for one
    // node and many.
    setenv("PMIX_MCA_pmix_server_fence_localonly_opt", "0", 1);
    static pmix_server_module_t module{};
    module.client_connected = on_connected;
    module.client_finalized = on_finalized;
    module.abort = on_abort;
    module.fence_nb = on_fence;
    module.direct_modex = on_dmodex;
    Infos info;
    info.str(PMIX_SERVER_TMPDIR, tmpdir_ + "/server");
    info.str(PMIX_SYSTEM_TMPDIR, tmpdir_ + "/server");
    pmix_status_t rc = PMIx_server_init(&module, info.v.data(), info.v.size());
    if (rc != PMIX_SUCCESS) {
        return fail(DRAGON_SYSTEM_ERROR, "PMIx server: PMIx_server_init: %s",
                    PMIx_Error_string(rc));
    }
    initialised_ = true;
    return DRAGON_SUCCESS;
}

dragon_status_t PmixServer::prepare(const std::string &nspace, uint32_t size, uint32_t rank,
                                    const std::vector<std::string> &inherited,
                                    std::vector<std::pair<std::string, std::string>> *env) {
    if (nspace.empty() || nspace.size() >= PMIX_MAX_NSLEN || rank >= size) {
        return fail(DRAGON_INVALID_ARGUMENT, "PMIx: namespace '%s', rank %u of %u", nspace.c_str(),
                    rank, size);
    }
    if (dragon_status_t st = init_server(); st != DRAGON_SUCCESS) {
        return st;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    auto it = jobs_.find(nspace);
    if (it == jobs_.end()) {
        auto job = std::make_unique<Job>();
        job->nspace = nspace;
        job->size = size;
        job->dir = tmpdir_ + "/" + nspace;
        job->registered.assign(size, false);
        job->connected.assign(size, false);
        job->finalized.assign(size, false);
        job->ended.assign(size, false);
        std::error_code ec;
        std::filesystem::create_directories(job->dir, ec);
        // The ranks' shared-memory transport (Open MPI's btl/vader) makes a file per rank in
        // /dev/shm and leaves it there when a rank dies: a directory of the job's own, named
        // like the runtime's segments, goes when the job ends and with the runtime.
        job->shm_dir = "/dev/shm/dragon." + node_.runtime_id + "." + std::to_string(node_.node_id) +
                       ".mpi." + std::to_string(++jobs_made_);
        if (mkdir(job->shm_dir.c_str(), 0700) != 0 && errno != EEXIST) {
            return fail(DRAGON_SYSTEM_ERROR, "PMIx: job '%s': cannot create %s: %s", nspace.c_str(),
                        job->shm_dir.c_str(), std::strerror(errno));
        }
        std::string peers;
        for (uint32_t r = 0; r < size; ++r) {
            peers += (r != 0 ? "," : "") + std::to_string(r);
        }
        char *node_map = nullptr;
        char *proc_map = nullptr;
        PMIx_generate_regex(host, &node_map);
        PMIx_generate_ppn(peers.c_str(), &proc_map);
        Infos info;
        info.u32(PMIX_UNIV_SIZE, size);
        info.u32(PMIX_JOB_SIZE, size);
        info.u32(PMIX_MAX_PROCS, size);
        info.u32(PMIX_LOCAL_SIZE, size);
        info.u32(PMIX_NODE_SIZE, size);
        info.u32(PMIX_NUM_NODES, 1);
        info.u32(PMIX_JOB_NUM_APPS, 1);
        info.str(PMIX_LOCAL_PEERS, peers);
        info.rank(PMIX_LOCALLDR, 0);
        info.str(PMIX_JOBID, nspace);
        info.str(PMIX_HOSTNAME, host);
        info.str(PMIX_NODE_LIST, host);
        info.add(PMIX_NODE_MAP, node_map, PMIX_REGEX);
        info.add(PMIX_PROC_MAP, proc_map, PMIX_REGEX);
        info.str(PMIX_TMPDIR, job->dir);
        info.str(PMIX_NSDIR, job->dir);
        info.flag(PMIX_TDIR_RMCLEAN, true);
        // The node's topology, so that the ranks do not discover it again (Open MPI 4.1
        // reads these two keys; about 35 ms of a 4-rank job here).
        if (const std::string &xml = topology_xml(); !xml.empty()) {
            info.str("pmix.ltopo", xml);
            info.str("pmix.hwlocxml2", xml);
        }
        std::free(node_map);
        std::free(proc_map);
        for (uint32_t r = 0; r < size; ++r) {
            Infos p;
            p.rank(PMIX_RANK, r);
            p.u32(PMIX_APPNUM, 0);
            p.u16(PMIX_LOCAL_RANK, static_cast<uint16_t>(r));
            p.u16(PMIX_NODE_RANK, static_cast<uint16_t>(r));
            p.u32(PMIX_NODEID, node_.node_id);
            p.str(PMIX_HOSTNAME, host);
            info.array(PMIX_PROC_INFO_ARRAY, p.v);
        }
        auto *done = new Latch;
        pmix_status_t rc = PMIx_server_register_nspace(
            nspace.c_str(), static_cast<int>(size), info.v.data(), info.v.size(), latch_done, done);
        if (pmix_status_t st = completed(rc, done); st != PMIX_SUCCESS) {
            return fail(DRAGON_SYSTEM_ERROR, "PMIx: registering job '%s': %s", nspace.c_str(),
                        PMIx_Error_string(st));
        }
        it = jobs_.emplace(nspace, std::move(job)).first;
    }
    Job &job = *it->second;
    pmix_proc_t proc;
    PMIX_PROC_LOAD(&proc, nspace.c_str(), rank);
    if (!job.registered[rank]) {
        auto *done = new Latch;
        pmix_status_t rc =
            PMIx_server_register_client(&proc, getuid(), getgid(), nullptr, latch_done, done);
        if (pmix_status_t st = completed(rc, done); st != PMIX_SUCCESS) {
            return fail(DRAGON_SYSTEM_ERROR, "PMIx: registering rank %u of '%s': %s", rank,
                        nspace.c_str(), PMIx_Error_string(st));
        }
        job.registered[rank] = true;
    }
    char **penv = nullptr;
    if (pmix_status_t rc = PMIx_server_setup_fork(&proc, &penv); rc != PMIX_SUCCESS) {
        return fail(DRAGON_SYSTEM_ERROR, "PMIx: the environment of rank %u of '%s': %s", rank,
                    nspace.c_str(), PMIx_Error_string(rc));
    }
    for (char **e = penv; e != nullptr && *e != nullptr; ++e) {
        std::string kv = *e;
        size_t eq = kv.find('=');
        if (eq != std::string::npos) {
            env->emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        }
        std::free(*e);
    }
    std::free(penv);
    // Open MPI 4.1 would otherwise take itself for a singleton (docs/pmi.md).
    env->emplace_back("OMPI_MCA_schizo", "^orte");
    env->emplace_back("OMPI_MCA_ess", "pmi");
    constexpr const char *kBacking = "OMPI_MCA_btl_vader_backing_directory";
    if (std::none_of(inherited.begin(), inherited.end(), [&](const std::string &kv) {
            return kv.compare(0, std::strlen(kBacking), kBacking) == 0 &&
                   kv.size() > std::strlen(kBacking) && kv[std::strlen(kBacking)] == '=';
        })) {
        env->emplace_back(kBacking, job.shm_dir);
    }
    return DRAGON_SUCCESS;
}

void PmixServer::fail_job(Job &job, const std::string &why, int64_t except) {
    if (job.failed) {
        return;
    }
    job.failed = true;
    std::fprintf(stderr, "dragon-node: MPI job %s: %s; ending its other ranks\n",
                 job.nspace.c_str(), why.c_str());
    if (end_job_) {
        end_job_(job.nspace, except);
    }
}

void PmixServer::rank_ended(const std::string &nspace, uint32_t rank, int exit_code) {
    auto it = jobs_.find(nspace);
    if (it == jobs_.end() || rank >= it->second->size) {
        return;
    }
    Job &job = *it->second;
    if (exit_code == -3) {
        job.connected[rank] = true;
        return;
    }
    if (exit_code == -1) {
        job.finalized[rank] = true;
        return;
    }
    if (exit_code == -2) {
        fail_job(job, "rank " + std::to_string(rank) + " called MPI_Abort", rank);
        return;
    }
    if (job.ended[rank]) {
        return;
    }
    job.ended[rank] = true;
    ++job.n_ended;
    // A rank that failed, or that joined the job (MPI_Init) and left without MPI_Finalize:
    // the others would wait for it forever. A member that never joined (not an MPI program)
    // and ended well is no failure. libpmix's news of a finalize comes through post() and
    // may arrive after the exit: a rank that exits 0 gets a second to have finalized.
    if (exit_code != 0) {
        fail_job(job,
                 "rank " + std::to_string(rank) + " ended (exit code " + std::to_string(exit_code) +
                     ")" +
                     (job.connected[rank] && !job.finalized[rank] ? " before MPI_Finalize" : ""),
                 rank);
    } else if (job.connected[rank] && !job.finalized[rank]) {
        node_.reactor.after(kFinalizeGraceNs, [this, ns = nspace, rank] {
            auto j = jobs_.find(ns);
            if (j != jobs_.end() && !j->second->finalized[rank]) {
                fail_job(*j->second, "rank " + std::to_string(rank) + " exited before MPI_Finalize",
                         rank);
            }
        });
    }
    if (job.n_ended == job.size) {
        // Not waited for: the reactor goes on, libpmix finishes it on its own thread.
        PMIx_server_deregister_nspace(nspace.c_str(), latch_free, new Latch);
        std::error_code ec;
        std::filesystem::remove_all(job.dir, ec);
        std::filesystem::remove_all(job.shm_dir, ec);
        jobs_.erase(it);
    }
}

void PmixServer::stop() {
    if (initialised_) {
        PMIx_server_finalize();
        initialised_ = false;
        std::error_code ec;
        std::filesystem::remove_all(tmpdir_, ec);
        for (const auto &[nspace, job] : jobs_) {
            std::filesystem::remove_all(job->shm_dir, ec);
        }
    }
    g_server = nullptr;
}

} // namespace dragon::node
