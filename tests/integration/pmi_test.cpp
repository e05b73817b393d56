// MPI ranks as process groups with pmi set, served PMIx by the real dragon-node (no mpirun;
// docs/pmi.md), run by pmi.sh under the real launcher in a pid namespace of its own: Debian's
// Open MPI 4.1 ranks (mpi_rank.c) pass MPI_Init with the right rank and size, an allreduce
// and a ring, see their CPU binding; a rank that dies before or after MPI_Init, or calls
// MPI_Abort, ends the job with its code and the others within a bounded time; groups one
// after another and at once; a program that is no MPI program still runs.
#include <dragon/dragon.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::string g_rank; // the MPI rank program's path (argv[1])

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The exit codes of n ranks of `program` run as one MPI group, with these extra variables.
std::vector<int> run_job(uint32_t n, const std::vector<std::string> &env_extra = {},
                         const std::vector<dragon::Policy> &policies = {},
                         const std::string &program = g_rank) {
    std::vector<std::string> env;
    for (char **e = environ; *e != nullptr; ++e) {
        env.emplace_back(*e);
    }
    env.insert(env.end(), env_extra.begin(), env_extra.end());
    dragon::ProcessGroup g;
    if (policies.empty()) {
        dragon::ProcessOptions o;
        o.env = env;
        g.add(n, {program}, o);
    } else {
        for (const dragon::Policy &p : policies) {
            dragon::ProcessOptions o;
            o.env = env;
            o.policy = &p;
            g.add(1, {program}, o);
        }
    }
    g.set_pmi();
    g.start();
    EXPECT_TRUE(g.join(std::chrono::seconds(60))) << "the job did not end";
    std::vector<int> codes;
    for (uint32_t i = 0; i < g.size(); ++i) {
        codes.push_back(g.member(i).exit_code);
    }
    return codes;
}

} // namespace

TEST(Pmi, FourRanksInitReduceRingAndExitZero) {
    auto codes = run_job(4);
    EXPECT_EQ(codes, (std::vector<int>{0, 0, 0, 0}));
}

TEST(Pmi, RanksBoundToTheirPolicysCpuSeeThatBinding) {
    auto node = dragon::Node::discover();
    std::vector<std::uint32_t> cpus = node.cpus();
    ASSERT_FALSE(cpus.empty());
    std::vector<dragon::Policy> policies;
    std::vector<std::string> env;
    for (uint32_t r = 0; r < 4; ++r) {
        uint32_t cpu = cpus[r % cpus.size()];
        dragon::Policy p;
        p.cpu_affinity({cpu});
        policies.push_back(p);
        env.push_back("MPI_RANK_CPU_" + std::to_string(r) + "=" + std::to_string(cpu));
    }
    auto codes = run_job(4, env, policies);
    EXPECT_EQ(codes, (std::vector<int>{0, 0, 0, 0}));
}

// A job of 4 whose rank `dies` fails with `code` (set by `var`): it ends within a bounded
// time, with that code, and the other ranks are ended rather than left waiting.
static void dies(const std::string &var, size_t rank, int code) {
    auto t0 = std::chrono::steady_clock::now();
    auto codes = run_job(4, {var + "=" + std::to_string(rank)});
    EXPECT_LT(ms_since(t0), 20000.0);
    ASSERT_EQ(codes.size(), 4u);
    EXPECT_EQ(codes[rank], code);
    for (size_t r = 0; r < 4; ++r) {
        if (r != rank) {
            EXPECT_NE(codes[r], 0) << "rank " << r << " kept waiting for " << rank << "?";
        }
    }
}

TEST(Pmi, ARankThatDiesBeforeMpiInitEndsTheJobInBoundedTime) {
    dies("MPI_RANK_DIE_BEFORE", 2, 7);
}

TEST(Pmi, ARankThatDiesInTheJobEndsItInBoundedTime) {
    dies("MPI_RANK_DIE_AFTER_INIT", 1, 9);
}

TEST(Pmi, MpiAbortEndsTheGroupWithItsCode) {
    auto codes = run_job(4, {"MPI_RANK_ABORT=3"});
    ASSERT_EQ(codes.size(), 4u);
    EXPECT_EQ(codes[3], 3);
}

TEST(Pmi, GroupsOneAfterAnotherAndAtOnce) {
    EXPECT_EQ(run_job(2), (std::vector<int>{0, 0}));
    EXPECT_EQ(run_job(3), (std::vector<int>{0, 0, 0}));
    // Two at once: each its own namespace.
    dragon::ProcessGroup a, b;
    a.add(2, {g_rank});
    b.add(2, {g_rank});
    a.set_pmi();
    b.set_pmi();
    a.start();
    b.start();
    EXPECT_TRUE(a.join(std::chrono::seconds(60)));
    EXPECT_TRUE(b.join(std::chrono::seconds(60)));
    for (uint32_t i = 0; i < 2; ++i) {
        EXPECT_EQ(a.member(i).exit_code, 0);
        EXPECT_EQ(b.member(i).exit_code, 0);
    }
}

TEST(Pmi, AProgramThatIsNoMpiProgramStillRuns) {
    EXPECT_EQ(run_job(3, {}, {}, "/bin/true"), (std::vector<int>{0, 0, 0}));
    auto codes = run_job(2, {}, {}, "/bin/false");
    EXPECT_EQ(codes.at(0), 1);
    EXPECT_EQ(codes.at(1) == 1 || codes.at(1) == 143, true) << codes.at(1);
}

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: pmi-test MPI_RANK_PROGRAM [gtest options]\n");
        return 2;
    }
    g_rank = argv[1];
    return RUN_ALL_TESTS();
}
