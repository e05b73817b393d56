// dragon::Node and dragon::Policy over synthetic GPU topologies and this node.
#include <dragon/dragon.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <sched.h>
#include <string>

namespace {

std::string fixture(const char *name) {
    const char *dir = std::getenv("DRAGON_TOPOLOGY_DIR");
    return std::string(dir != nullptr ? dir : "tests/data/topology") + "/" + name;
}

dragon_status_t status_of(const std::function<void()> &f) {
    try {
        f();
    } catch (const dragon::Error &e) {
        return e.status();
    }
    return DRAGON_SUCCESS;
}

TEST(Machine, ThisNodeIsSizedFromTheGrant) {
    unsetenv("DRAGON_TOPOLOGY_XML");
    auto node = dragon::Node::discover();
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    EXPECT_EQ(node.cpu_count(), static_cast<std::uint32_t>(CPU_COUNT(&set)));
    EXPECT_EQ(node.cpus().size(), node.cpu_count());
    EXPECT_FALSE(node.host_name().empty());
}

TEST(Machine, GpuPoliciesOnAFakeNvidiaNode) {
    auto node = dragon::Node::load(fixture("nvidia-4gpu.xml"));
    EXPECT_EQ(node.host_name(), "fake-nvidia");
    auto gpus = node.gpus();
    ASSERT_EQ(gpus.size(), 4U);
    EXPECT_EQ(gpus[3].vendor, dragon::GpuVendor::nvidia);
    EXPECT_EQ(gpus[3].pci_bus_id, "0000:91:00.0");
    auto policies = node.gpu_policies();
    ASSERT_EQ(policies.size(), 4U);
    for (std::size_t i = 0; i < policies.size(); ++i) {
        auto b = policies[i].bind(node);
        EXPECT_EQ(b.gpu_variable, "CUDA_VISIBLE_DEVICES");
        EXPECT_EQ(b.gpu_value, std::to_string(i));
        EXPECT_EQ(b.cpus, node.cpus(static_cast<std::int32_t>(i / 2)));
    }
    EXPECT_EQ(status_of([&] { dragon::Policy().gpu_affinity({7}).bind(node); }), DRAGON_NOT_FOUND);
    EXPECT_EQ(status_of([&] { node.cpus(5); }), DRAGON_NOT_FOUND);
    EXPECT_EQ(status_of([] { dragon::Node::load("/nonexistent.xml"); }), DRAGON_NOT_FOUND);
}

TEST(Machine, PolicyMergeFieldByField) {
    dragon::Policy global;
    global.placement(dragon::Policy::Placement::anywhere).wait_mode(dragon::WaitMode::idle);
    dragon::Policy group;
    group.placement(dragon::Policy::Placement::host_name).host_name("n1");
    dragon::Policy explicit_;
    explicit_.cpu_affinity({2, 3});
    auto merged = dragon::Policy::merge({&global, nullptr, &group, &explicit_});
    EXPECT_EQ(merged.raw().placement, DRAGON_PLACEMENT_HOST_NAME);
    EXPECT_EQ(merged.host_name(), "n1");
    EXPECT_EQ(merged.cpu_affinity(), (std::vector<std::uint32_t>{2, 3}));
    EXPECT_EQ(merged.raw().wait_mode, DRAGON_WAIT_IDLE);
    EXPECT_EQ(merged.wait_mode(), dragon::WaitMode::idle);
    EXPECT_EQ(group.wait_mode(), dragon::WaitMode::process_default); // unset
    EXPECT_TRUE(merged.gpu_affinity().empty());
}

} // namespace
