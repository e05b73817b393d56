// Run under `dragon` (tests/integration/launcher.sh): dragon::Process from C++.
#include <dragon/dragon.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>

int main() {
    using namespace std::chrono_literals;
    try {
        auto p = dragon::Process::start({"sh", "-c", "exit 4"});
        std::printf("cpp-join %d\n", p.join().value_or(-1));
        dragon::Policy pol;
        pol.cpu_affinity({0});
        dragon::ProcessOptions o;
        o.policy = &pol;
        o.out = dragon::Stdio::relay;
        auto bound = dragon::Process::start(
            {"sh", "-c", "echo cpp-child $(grep Cpus_allowed_list /proc/self/status | cut -f2)"},
            o);
        bound.join(10s);
        auto sleeper = dragon::Process::start({"sleep", "300"});
        std::printf("cpp-timeout %d\n", sleeper.join(10ms).has_value() ? 0 : 1);
        sleeper.signal(SIGKILL);
        std::printf("cpp-killed %d\n", sleeper.join().value_or(-1));
        try {
            dragon::Process::start({"no-such-program-xyz"});
        } catch (const dragon::Error &e) {
            std::printf("cpp-missing %d\n", static_cast<int>(e.status()));
        }
    } catch (const dragon::Error &e) {
        std::printf("cpp-error %s\n", e.what());
        return 1;
    }
    return 0;
}
