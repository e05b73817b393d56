// A program for `dragon` on several nodes (tests/multinode; issue 16), test hosts or the
// many-daemons mode alike. Each check prints "ok: ..." or "FAIL: ..."; the exit status is
// the number of failures.
//
//   multinode-client          placement by host name and by host id (a process's exit code
//                             is the node it ran on), join, status and signal of processes
//                             of other nodes, the registry from a process of another node,
//                             a group spread round-robin and in blocks over the nodes
//   multinode-client hold     a sleeping process on every node; prints "holding" and joins
//                             them (the test then takes a node away)
#include <dragon/dragon.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const std::string &what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
    std::fflush(stdout);
    failures += ok ? 0 : 1;
}

// `sh -c 'exit $DRAGON_NODE_ID'`: its exit code says where it ran.
const std::vector<std::string> kWhere = {"/bin/sh", "-c", "exit $DRAGON_NODE_ID"};

dragon::Process on(const dragon::System::NodeInfo &n, bool by_name,
                   const std::vector<std::string> &argv) {
    dragon::Policy p;
    if (by_name) {
        p.placement(dragon::Policy::Placement::host_name).host_name(n.host_name);
    } else {
        p.placement(dragon::Policy::Placement::host_id).host_id(n.id);
    }
    dragon::ProcessOptions o;
    o.policy = &p;
    return dragon::Process::start(argv, o);
}

int registrar() {
    const char *node = std::getenv("DRAGON_NODE_ID");
    std::string v = std::string("from node ") + (node != nullptr ? node : "?");
    dragon::Registry::put("multinode-key", dragon::RegistryKind::bytes,
                          std::vector<std::uint8_t>(v.begin(), v.end()));
    return 0;
}

int hold(const std::vector<dragon::System::NodeInfo> &nodes) {
    std::vector<dragon::Process> sleepers;
    for (const auto &n : nodes) {
        sleepers.push_back(on(n, false, {"sleep", "1000"}));
    }
    std::printf("holding %zu processes\n", sleepers.size());
    std::fflush(stdout);
    for (const auto &p : sleepers) {
        p.join(std::chrono::seconds(120));
    }
    return 0;
}

void group_over_nodes(const std::vector<dragon::System::NodeInfo> &nodes, bool block) {
    size_t n = nodes.size();
    dragon::Policy gp;
    if (block) {
        gp.distribution(dragon::Policy::Distribution::block);
    }
    dragon::ProcessGroup group(block ? &gp : nullptr);
    uint32_t members = static_cast<uint32_t>(2 * n + 1);
    group.add(members, kWhere);
    group.start();
    check(group.join(std::chrono::seconds(60)),
          std::string(block ? "block" : "round-robin") + " group: every member ended");
    std::string where;
    bool as_expected = true;
    uint32_t cpus = nodes[0].cpu_count;
    for (uint32_t i = 0; i < members; ++i) {
        int code = group.member(i).exit_code;
        where += (i != 0 ? "," : "") + std::to_string(code);
        size_t want = block ? (i / cpus) % n : i % n;
        as_expected = as_expected && code == static_cast<int>(want);
    }
    check(as_expected, std::string(block ? "block" : "round-robin (the default)") +
                           ": member i ran on node " +
                           (block ? "(i / cpus) % nodes" : "i % nodes") + " (" + where + ")");
}

} // namespace

int main(int argc, char **argv) {
    try {
        if (dragon::this_process::role() == "register") {
            return registrar();
        }
        auto nodes = dragon::System::nodes();
        if (argc > 1 && std::strcmp(argv[1], "hold") == 0) {
            return hold(nodes);
        }
        check(nodes.size() >= 3, "System has " + std::to_string(nodes.size()) + " nodes");
        if (nodes.size() < 3) {
            return failures;
        }
        bool distinct = true;
        for (size_t i = 0; i < nodes.size(); ++i) {
            distinct = distinct && nodes[i].id == i;
            for (size_t j = 0; j < i; ++j) {
                distinct = distinct && nodes[i].host_name != nodes[j].host_name;
            }
        }
        check(distinct, "nodes have ids 0.. and distinct host names");

        // Placement and join across nodes.
        for (size_t i = 0; i < nodes.size(); ++i) {
            for (bool by_name : {true, false}) {
                dragon::Process p = on(nodes[i], by_name, kWhere);
                auto code = p.join(std::chrono::seconds(30));
                check(code && *code == static_cast<int>(i),
                      "placed by host " + std::string(by_name ? "name " : "id ") +
                          (by_name ? nodes[i].host_name : std::to_string(i)) + ", ran on node " +
                          (code ? std::to_string(*code) : "?"));
            }
        }
        // Status and signal of a process of another node.
        dragon::Process sleeper = on(nodes[2], false, {"sleep", "1000"});
        auto st = sleeper.status();
        check(st.state == dragon::ProcessState::running && st.pid > 0,
              "status of a process on node 2: running, pid " + std::to_string(st.pid));
        sleeper.signal(SIGTERM);
        auto code = sleeper.join(std::chrono::seconds(30));
        check(code && *code == 128 + SIGTERM,
              "SIGTERM to it from node 0: " + (code ? std::to_string(*code) : "still running"));
        check(sleeper.status().state == dragon::ProcessState::exited, "... and then it has exited");
        // A join that times out on another node's process.
        dragon::Process slow = on(nodes[1], true, {"sleep", "1000"});
        check(!slow.join(std::chrono::milliseconds(200)), "a join times out on node 1's process");
        slow.stop();
        check(slow.join(std::chrono::seconds(30)).has_value(), "... and ends once stopped");

        // The registry is the runtime's: a name registered on node 2 is found on node 0.
        {
            dragon::Policy p;
            p.placement(dragon::Policy::Placement::host_id).host_id(2);
            dragon::ProcessOptions o;
            o.policy = &p;
            o.role = "register";
            dragon::Process r = dragon::Process::start(dragon::this_process::command({}), o);
            auto v = dragon::Registry::get("multinode-key", std::chrono::seconds(30));
            std::string got(v.bytes.begin(), v.bytes.end());
            check(got == "from node 2",
                  "a name registered on node 2 is read on node 0 (" + got + ")");
            r.join(std::chrono::seconds(30));
        }

        // Groups spread over the nodes.
        group_over_nodes(nodes, false);
        group_over_nodes(nodes, true);

        // A node that does not exist.
        try {
            dragon::Policy p;
            p.placement(dragon::Policy::Placement::host_id).host_id(999);
            dragon::ProcessOptions o;
            o.policy = &p;
            dragon::Process::start(kWhere, o);
            check(false, "host id 999 is refused");
        } catch (const dragon::Error &e) {
            check(e.status() == DRAGON_NOT_FOUND,
                  std::string("host id 999 is refused: ") + e.what());
        }
        return failures;
    } catch (const dragon::Error &e) {
        std::printf("FAIL: %s\n", e.what());
        return failures + 1;
    }
}
