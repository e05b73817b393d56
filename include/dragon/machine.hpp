// libdragon C++ — the node (dragon::Node, dragon::Gpu) and policies (dragon::Policy).
// Header-only over dragon/machine.h and dragon/policy.h; failures throw dragon::Error.
#ifndef DRAGON_MACHINE_HPP
#define DRAGON_MACHINE_HPP

#include <dragon/error.hpp>
#include <dragon/machine.h>
#include <dragon/policy.h>
#include <dragon/wait.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace dragon {

enum class GpuVendor {
    none = DRAGON_GPU_VENDOR_NONE,
    nvidia = DRAGON_GPU_VENDOR_NVIDIA,
    amd = DRAGON_GPU_VENDOR_AMD,
    intel = DRAGON_GPU_VENDOR_INTEL,
};

struct Gpu {
    std::uint32_t index; // among all of the node's GPUs
    GpuVendor vendor;
    std::uint32_t vendor_index; // what CUDA_VISIBLE_DEVICES & co. take
    std::int32_t numa_node;     // -1 if unknown
    std::string pci_bus_id;
};

class Policy;

// This node (or a saved/synthetic topology): host name, granted CPUs, NUMA domains, GPUs.
class Node {
  public:
    static Node discover() { return Node(nullptr); }
    static Node load(const std::string &xml_path) { return Node(xml_path.c_str()); }

    dragon_machine_t *handle() const noexcept { return m_.get(); }

    std::string host_name() const { return info().host_name; }
    std::uint32_t cpu_count() const { return info().cpu_count; }
    std::uint32_t numa_count() const { return info().numa_count; }

    // Granted CPUs, of the whole node (numa < 0) or of one NUMA domain.
    std::vector<std::uint32_t> cpus(std::int32_t numa = -1) const {
        std::size_t n = 0;
        detail::check(dragon_machine_cpus(m_.get(), numa, nullptr, 0, &n));
        std::vector<std::uint32_t> v(n);
        detail::check(dragon_machine_cpus(m_.get(), numa, v.data(), v.size(), &n));
        return v;
    }

    std::vector<Gpu> gpus() const {
        std::vector<Gpu> out;
        for (std::uint32_t i = 0; i < info().gpu_count; ++i) {
            dragon_gpu_info_t g{};
            g.struct_size = sizeof g;
            detail::check(dragon_machine_gpu(m_.get(), i, &g));
            out.push_back(Gpu{i, static_cast<GpuVendor>(g.vendor), g.vendor_index, g.numa_node,
                              g.pci_bus_id});
        }
        return out;
    }

    // One policy per GPU: this host, that GPU, the CPUs of its NUMA domain.
    inline std::vector<Policy> gpu_policies() const;

  private:
    explicit Node(const char *xml) {
        dragon_machine_t *m = nullptr;
        detail::check(dragon_machine_load(xml, &m));
        m_.reset(m);
    }
    dragon_node_info_t info() const {
        dragon_node_info_t i{};
        i.struct_size = sizeof i;
        detail::check(dragon_machine_info(m_.get(), &i));
        return i;
    }
    struct Free {
        void operator()(dragon_machine_t *m) const noexcept { dragon_machine_free(m); }
    };
    std::unique_ptr<dragon_machine_t, Free> m_;
};

// A policy: set what matters, leave the rest unset; merge levels with Policy::merge.
class Policy {
  public:
    enum class Placement {
        unset = DRAGON_PLACEMENT_UNSET,
        anywhere = DRAGON_PLACEMENT_ANYWHERE,
        local = DRAGON_PLACEMENT_LOCAL,
        host_name = DRAGON_PLACEMENT_HOST_NAME,
        host_id = DRAGON_PLACEMENT_HOST_ID,
    };
    enum class Distribution {
        unset = DRAGON_DISTRIBUTION_UNSET,
        roundrobin = DRAGON_DISTRIBUTION_ROUNDROBIN,
        block = DRAGON_DISTRIBUTION_BLOCK,
    };

    // What a policy means on one node: CPUs to bind to, GPU variable to set.
    struct Binding {
        std::vector<std::uint32_t> cpus;
        std::string gpu_variable; // empty: no GPU asked for
        std::string gpu_value;
        GpuVendor gpu_vendor;
    };

    Policy() { dragon_policy_init(p_.get()); }
    explicit Policy(const dragon_policy_t &raw) { *p_ = raw; }
    Policy(const Policy &o) : Policy(*o.p_) {}
    Policy &operator=(const Policy &o) {
        *p_ = *o.p_;
        return *this;
    }
    Policy(Policy &&) noexcept = default;
    Policy &operator=(Policy &&) noexcept = default;

    const dragon_policy_t &raw() const noexcept { return *p_; }

    Policy &placement(Placement v) {
        p_->placement = static_cast<dragon_placement_t>(v);
        return *this;
    }
    Policy &distribution(Distribution v) {
        p_->distribution = static_cast<dragon_distribution_t>(v);
        return *this;
    }
    Policy &host_name(const std::string &name) {
        if (name.size() > DRAGON_HOST_NAME_MAX) {
            throw Error(DRAGON_INVALID_ARGUMENT, "Policy::host_name: too long");
        }
        name.copy(p_->host_name, name.size());
        p_->host_name[name.size()] = '\0';
        return *this;
    }
    Policy &host_id(std::int64_t id) {
        p_->host_id = id;
        return *this;
    }
    Policy &cpu_affinity(const std::vector<std::uint32_t> &cpus) {
        if (cpus.size() > DRAGON_POLICY_MAX_CPUS) {
            throw Error(DRAGON_INVALID_ARGUMENT, "Policy::cpu_affinity: too many CPUs");
        }
        p_->cpu_count = static_cast<std::uint32_t>(cpus.size());
        std::copy(cpus.begin(), cpus.end(), p_->cpus);
        return *this;
    }
    Policy &gpu_affinity(const std::vector<std::uint32_t> &gpus) {
        if (gpus.size() > DRAGON_POLICY_MAX_GPUS) {
            throw Error(DRAGON_INVALID_ARGUMENT, "Policy::gpu_affinity: too many GPUs");
        }
        p_->gpu_count = static_cast<std::uint32_t>(gpus.size());
        std::copy(gpus.begin(), gpus.end(), p_->gpus);
        return *this;
    }
    // WaitMode::process_default leaves it unset (a less specific level's mode applies).
    Policy &wait_mode(WaitMode m) {
        p_->wait_mode = static_cast<dragon_wait_mode_t>(m);
        return *this;
    }

    std::string host_name() const { return p_->host_name; }
    WaitMode wait_mode() const { return static_cast<WaitMode>(p_->wait_mode); }
    std::vector<std::uint32_t> cpu_affinity() const {
        return std::vector<std::uint32_t>(p_->cpus, p_->cpus + p_->cpu_count);
    }
    std::vector<std::uint32_t> gpu_affinity() const {
        return std::vector<std::uint32_t>(p_->gpus, p_->gpus + p_->gpu_count);
    }

    // Levels from the least specific (global default) to the most specific (explicit);
    // null pointers are skipped.
    static Policy merge(std::initializer_list<const Policy *> levels) {
        std::vector<const dragon_policy_t *> raw;
        for (const Policy *p : levels) {
            raw.push_back(p != nullptr ? p->p_.get() : nullptr);
        }
        Policy out;
        detail::check(dragon_policy_merge(raw.data(), raw.size(), out.p_.get()));
        return out;
    }

    Binding bind(const Node &node) const {
        auto b = std::make_unique<dragon_policy_binding_t>();
        b->struct_size = sizeof *b;
        detail::check(dragon_policy_bind(p_.get(), node.handle(), b.get()));
        return Binding{std::vector<std::uint32_t>(b->cpus, b->cpus + b->cpu_count), b->gpu_variable,
                       b->gpu_value, static_cast<GpuVendor>(b->gpu_vendor)};
    }

  private:
    // The C struct is ~4.5 KiB: keep it off the caller's stack.
    std::unique_ptr<dragon_policy_t> p_ = std::make_unique<dragon_policy_t>();
};

inline std::vector<Policy> Node::gpu_policies() const {
    std::size_t n = 0;
    detail::check(dragon_policy_per_gpu(m_.get(), nullptr, 0, sizeof(dragon_policy_t), &n));
    std::vector<dragon_policy_t> raw(n);
    detail::check(
        dragon_policy_per_gpu(m_.get(), raw.data(), raw.size(), sizeof(dragon_policy_t), &n));
    return std::vector<Policy>(raw.begin(),
                               raw.begin() + static_cast<long>(std::min(n, raw.size())));
}

} // namespace dragon

#endif // DRAGON_MACHINE_HPP
