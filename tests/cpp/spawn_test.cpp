// The spawn primitive (libdragon-c/process/spawn.*): CPU binding seen from inside the child,
// environment, stdio modes, and exec failures reported as statuses.
#include "process/spawn.hpp"

#include <dragon/dragon.h>

#include <gtest/gtest.h>

#include <poll.h>
#include <sched.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace dp = dragon::proc;

std::string read_all(int fd) {
    std::string s;
    char buf[512];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0) {
            break; // bounded: a test never hangs on a child
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        s.append(buf, static_cast<size_t>(n));
    }
    return s;
}

int reap(dp::Spawned &s) {
    struct pollfd p = {s.pidfd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 10000), 1);
    int status = 0;
    EXPECT_EQ(waitpid(s.pid, &status, 0), s.pid);
    dp::close_fds(&s);
    return status;
}

TEST(Spawn, BindsCpusSetsEnvAndPipesOutput) {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
    uint32_t last = 0;
    for (uint32_t c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &mine)) {
            last = c;
        }
    }
    dp::SpawnRequest req;
    req.program = "sh";
    req.args = {"-c",
                "grep Cpus_allowed_list /proc/self/status; echo \"gpu=$CUDA_VISIBLE_DEVICES\""};
    req.cpus = {last};
    req.set_env = {{"CUDA_VISIBLE_DEVICES", "1,3"}};
    req.out = dp::Stdio::kPipe;
    dp::Spawned s;
    ASSERT_EQ(dp::spawn(req, &s), DRAGON_SUCCESS) << dragon_last_error();
    std::string out = read_all(s.out_fd);
    int status = reap(s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_NE(out.find("Cpus_allowed_list:\t" + std::to_string(last) + "\n"), std::string::npos)
        << out;
    EXPECT_NE(out.find("gpu=1,3"), std::string::npos) << out;
}

TEST(Spawn, ExitCodesStdinAndDevNull) {
    dp::SpawnRequest req;
    req.program = "/bin/sh";
    req.args = {"-c", "read x; echo got:$x; echo err >&2; exit 7"};
    req.in = dp::Stdio::kPipe;
    req.out = dp::Stdio::kPipe;
    req.err = dp::Stdio::kDevNull;
    dp::Spawned s;
    ASSERT_EQ(dp::spawn(req, &s), DRAGON_SUCCESS) << dragon_last_error();
    ASSERT_EQ(write(s.in_fd, "hi\n", 3), 3);
    close(s.in_fd);
    s.in_fd = -1;
    EXPECT_EQ(read_all(s.out_fd), "got:hi\n");
    int status = reap(s);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 7);
}

TEST(Spawn, FailuresAreStatusesNotExit127) {
    dp::SpawnRequest req;
    req.program = "no-such-program-dragon";
    dp::Spawned s;
    EXPECT_EQ(dp::spawn(req, &s), DRAGON_NOT_FOUND);
    EXPECT_NE(std::string(dragon_last_error()).find("no-such-program-dragon"), std::string::npos);
    req.program = "/nonexistent/prog";
    EXPECT_EQ(dp::spawn(req, &s), DRAGON_NOT_FOUND);
    req.program = "/bin/true";
    req.cwd = "/nonexistent-dir";
    EXPECT_EQ(dp::spawn(req, &s), DRAGON_NOT_FOUND);
    EXPECT_NE(std::string(dragon_last_error()).find("working directory"), std::string::npos);
    req.cwd.clear();
    req.cpus = {CPU_SETSIZE - 1}; // a CPU no machine here has
    EXPECT_EQ(dp::spawn(req, &s), DRAGON_INVALID_ARGUMENT);
    EXPECT_NE(std::string(dragon_last_error()).find("bind"), std::string::npos);
    EXPECT_EQ(s.pid, -1);
    // exec itself fails (an executable file of no known format): the child says why through
    // the memory it borrows, and nothing is left running.
    req.cpus.clear();
    char path[] = "/tmp/dragon-spawn-test.XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "\x01\x02\x03\x04", 4), 4);
    close(fd);
    ASSERT_EQ(chmod(path, 0700), 0);
    req.program = path;
    dragon_status_t st = dp::spawn(req, &s);
    std::string why = dragon_last_error();
    unlink(path);
    // ENOEXEC; EACCES where /tmp is mounted noexec. Either way exec itself failed.
    EXPECT_TRUE(st == DRAGON_SYSTEM_ERROR || st == DRAGON_PERMISSION_DENIED) << why;
    EXPECT_NE(why.find("could not execute"), std::string::npos) << why;
    EXPECT_TRUE(why.find("Exec format error") != std::string::npos ||
                why.find("Permission denied") != std::string::npos)
        << why;
    EXPECT_EQ(s.pid, -1);
}

} // namespace
