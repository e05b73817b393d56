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

// Every kind of object through the registry (issue 12, "Registry for every object"): the
// child finds each by name, with the typed C++ lookups and the C one-call attaches.
int objects_child() {
    auto q = dragon::Registry::queue<int>("obj-queue", 30s);
    auto lock = dragon::Registry::lock("obj-lock", 30s);
    auto sem = dragon::Registry::semaphore("obj-sem", 30s);
    auto event = dragon::Registry::event("obj-event", 30s);
    auto barrier = dragon::Registry::barrier("obj-barrier", 30s);
    auto pool = dragon::Registry::pool("obj-pool", 30s);
    auto [text, size] = pool.attach_memory(dragon::Registry::memory("obj-block", 30s));
    int item = q.get(30s);
    bool locked = lock.try_lock();
    if (locked) {
        lock.unlock();
    }
    sem.release();
    event.set();
    barrier.wait(30s);
    std::printf("cpp-objects-child queue %d lock %d block %s size-ok %d\n", item, locked ? 1 : 0,
                static_cast<const char *>(text), size >= 16 ? 1 : 0);
    // C: look up and attach in one call; the wrong kind is named.
    dragon_queue_t *cq = nullptr;
    dragon_status_t st = dragon_registry_attach_queue("obj-queue", 0, nullptr, &cq);
    int v = 0;
    std::size_t n = 0;
    if (st == DRAGON_SUCCESS) {
        st = dragon_queue_get(cq, &v, sizeof v, &n, 30'000'000'000LL);
        dragon_queue_detach(cq);
    }
    dragon_lock_t *cl = nullptr;
    dragon_status_t wrong = dragon_registry_attach_lock("obj-queue", 0, nullptr, &cl);
    std::printf("c-registry-attach %d %d wrong-kind %d %d\n", static_cast<int>(st), v,
                static_cast<int>(wrong),
                std::string(dragon_last_error()).find("'obj-queue' names a queue, not a lock") !=
                    std::string::npos);
    dragon_pool_t *cp = nullptr;
    st = dragon_registry_attach_pool("obj-pool", 0, &cp);
    std::printf("c-registry-attach-pool %d\n", static_cast<int>(st));
    if (cp != nullptr) {
        dragon_pool_detach(cp);
    }
    return 0;
}

void registry_objects(const char *self) {
    auto pool = dragon::Pool::create("cpp-objects", 1 << 20);
    auto q = dragon::Queue<int>::create(pool, 4);
    auto lock = dragon::Lock::create(pool);
    auto sem = dragon::Semaphore::create(pool, 0);
    auto event = dragon::Event::create(pool);
    auto barrier = dragon::Barrier::create(pool, 2);
    auto block = pool.allocate(64);
    std::snprintf(block.as<char>(), 64, "in-place");
    dragon::Registry::put("obj-queue", q);
    dragon::Registry::put("obj-lock", lock);
    dragon::Registry::put("obj-sem", sem);
    dragon::Registry::put("obj-event", event);
    dragon::Registry::put("obj-barrier", barrier);
    dragon::Registry::put("obj-pool", pool);
    dragon::Registry::put("obj-block", block);
    q.put(41);
    q.put(42);
    auto child = dragon::Process::start({self, "--objects"});
    barrier.wait(30s);
    bool acquired = sem.acquire(30s);
    bool set = event.wait(30s);
    int code = child.join(30s).value_or(-1);
    std::printf("cpp-objects %d %d exit %d\n", acquired ? 1 : 0, set ? 1 : 0, code);
    try {
        (void)dragon::Registry::queue<double>("obj-queue", 0s); // a queue of ints
    } catch (const dragon::Error &e) {
        std::printf("cpp-registry-queue-type %d\n", static_cast<int>(e.status()));
    }
    for (const char *n : {"obj-queue", "obj-lock", "obj-sem", "obj-event", "obj-barrier",
                          "obj-pool", "obj-block"}) {
        dragon::Registry::remove(n);
    }
    block = dragon::Allocation();
    q.destroy();
    lock.destroy();
    sem.destroy();
    event.destroy();
    barrier.destroy();
    pool.destroy();
}

int main(int argc, char **argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        if (argc == 2 && std::string(argv[1]) == "--consumer") {
            return consumer();
        }
        if (argc == 2 && std::string(argv[1]) == "--objects") {
            return objects_child();
        }
        processes();
        registry_and_system(argv[0]);
        registry_objects(argv[0]);
    } catch (const dragon::Error &e) {
        std::printf("cpp-error %s\n", e.what());
        return 1;
    }
    return 0;
}
