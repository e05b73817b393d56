// Run under `dragon` (tests/integration/launcher.sh): dragon::Process, ProcessGroup,
// Registry and System from C++. `process-client-cpp --consumer` is the helper child: it
// attaches to the channel registered as "jobs" and prints the message it receives.
#include <dragon/dragon.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace {

using namespace std::chrono_literals;

int consumer() {
    auto ch = dragon::Registry::channel("jobs", 30s);
    auto bytes = ch.recv_bytes(30s);
    std::printf("cpp-consumer got %s\n", std::string(bytes.begin(), bytes.end()).c_str());
    return 0;
}

void processes() {
    auto p = dragon::Process::start({"sh", "-c", "exit 4"});
    std::printf("cpp-join %d\n", p.join().value_or(-1));
    dragon::Policy pol;
    pol.cpu_affinity({0});
    dragon::ProcessOptions o;
    o.policy = &pol;
    o.out = dragon::Stdio::relay;
    auto bound = dragon::Process::start(
        {"sh", "-c", "echo cpp-child $(grep Cpus_allowed_list /proc/self/status | cut -f2)"}, o);
    bound.join(10s);
    auto sleeper = dragon::Process::start({"sleep", "300"});
    std::printf("cpp-timeout %d\n", sleeper.join(10ms).has_value() ? 0 : 1);
    auto st = sleeper.status();
    std::printf("cpp-status-running %d\n", st.state == dragon::ProcessState::running);
    sleeper.signal(SIGKILL);
    std::printf("cpp-killed %d\n", sleeper.join().value_or(-1));
    st = sleeper.status();
    std::printf("cpp-status-exited %d %d\n", st.state == dragon::ProcessState::exited,
                st.exit_code);
    try {
        dragon::Process::start({"no-such-program-xyz"});
    } catch (const dragon::Error &e) {
        std::printf("cpp-missing %d\n", static_cast<int>(e.status()));
    }

    // Piped: tr upper-cases what it is sent.
    dragon::ProcessOptions po;
    po.in = dragon::Stdio::pipe;
    po.out = dragon::Stdio::pipe;
    auto piped = dragon::Process::start_piped({"tr", "a-z", "A-Z"}, po);
    const std::string msg = "shout\n";
    ssize_t w = write(piped.in.get(), msg.data(), msg.size());
    piped.in.reset();
    char buf[64] = {};
    ssize_t n = read(piped.out.get(), buf, sizeof buf - 1);
    std::printf("cpp-piped %d %s", w == static_cast<ssize_t>(msg.size()) && n > 0 ? 1 : 0, buf);
    std::printf("cpp-piped-exit %d\n", piped.process.join(10s).value_or(-1));

    // A group restarting failed members; stop() ends them for good.
    dragon::ProcessGroup g;
    g.add(2, {"sh", "-c", "exit 9"});
    g.restart_on_failure(1);
    g.start();
    bool joined = g.join(30s);
    auto m0 = g.member(0);
    std::printf("cpp-group-restart %d %d %u\n", joined ? 1 : 0, m0.exit_code,
                dragon::Process(m0.puid).status().restarts);
}

void registry_and_system(const char *self) {
    auto pool = dragon::Pool::create("cpp-client", 1 << 20);
    auto ch = dragon::Channel::create(pool, 8, 64);
    dragon::Registry::put("jobs", ch);
    auto child = dragon::Process::start({self, "--consumer"});
    const std::string msg = "hello-through-the-registry";
    ch.send(msg.data(), msg.size(), 30s);
    std::printf("cpp-consumer-exit %d\n", child.join(30s).value_or(-1));
    try {
        dragon::Registry::pool("jobs", 0s); // a channel, not a pool
    } catch (const dragon::Error &e) {
        std::printf("cpp-registry-kind %d\n", static_cast<int>(e.status()));
    }
    try {
        dragon::Registry::get("nothing-here", 10ms);
    } catch (const dragon::Error &e) {
        std::printf("cpp-registry-timeout %d\n", static_cast<int>(e.status()));
    }
    dragon::Registry::remove("jobs");
    ch.destroy();
    pool.destroy();

    auto nodes = dragon::System::nodes();
    auto policies = dragon::System::gpu_policies();
    std::printf("cpp-system %zu %u %zu %s\n", nodes.size(), nodes.at(0).gpu_count, policies.size(),
                !policies.empty() && policies[0].host_name() == nodes[0].host_name ? "same-host"
                                                                                   : "other");
}

} // namespace

int main(int argc, char **argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        if (argc == 2 && std::string(argv[1]) == "--consumer") {
            return consumer();
        }
        processes();
        registry_and_system(argv[0]);
    } catch (const dragon::Error &e) {
        std::printf("cpp-error %s\n", e.what());
        return 1;
    }
    return 0;
}
