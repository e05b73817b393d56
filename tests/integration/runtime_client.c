/* Run under `dragon` on a fake 4-GPU node (tests/integration/launcher.sh): process state
 * queries, stdio pipes and inheritance, restart on failure (processes and groups), the
 * registry across processes, the system's nodes and GPU policies, placement by host, and
 * the policy's wait mode. Prints one "key value..." line per check.
 * `runtime-client --lookup NAME` is the helper child: it waits for NAME and prints it. */
#define _GNU_SOURCE /* mkstemp, pread, kill */
#include <dragon/dragon.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECOND 1000000000LL

static int lookup_child(const char *name) {
    char buf[64] = {0};
    size_t len = 0;
    dragon_registry_kind_t kind = DRAGON_REGISTRY_BYTES;
    dragon_status_t st =
        dragon_registry_lookup(name, 30 * SECOND, &kind, buf, sizeof buf - 1, &len);
    printf("child-lookup %d kind %d value %s\n", (int)st, (int)kind, st == 0 ? buf : "-");
    return st == DRAGON_SUCCESS ? 0 : 1;
}

static void from_a_grandchild(const char *self) {
    const char *child[] = {self, "--spawn-grandchild", NULL};
    uint64_t puid = 0;
    int code = -1;
    dragon_status_t st = dragon_process_create(child, NULL, &puid);
    dragon_process_join(puid, 30 * SECOND, &code);
    printf("grandchild %d exit %d\n", (int)st, code);
}

static void queries(void) {
    const char *sleeper[] = {"sleep", "300", NULL};
    uint64_t puid = 0;
    dragon_process_create(sleeper, NULL, &puid);
    dragon_process_status_t s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    dragon_status_t st = dragon_process_query(puid, &s);
    printf("query-running %d %d %d %d\n", (int)st, s.state == DRAGON_PROCESS_RUNNING,
           s.pid > 0 && kill(s.pid, 0) == 0, s.exit_code);
    dragon_process_signal(puid, SIGKILL);
    int code = -1;
    dragon_process_join(puid, 10 * SECOND, &code);
    st = dragon_process_query(puid, &s);
    printf("query-exited %d %d %d %u %u\n", (int)st, s.state == DRAGON_PROCESS_EXITED, s.exit_code,
           s.restarts, s.node_id);
    printf("query-unknown %d\n", (int)dragon_process_query(987654321ULL, &s));
    s.struct_size = 0;
    printf("query-bad-size %d\n", (int)dragon_process_query(puid, &s));
}

static void pipes(void) {
    /* cat: write to its stdin, read its stdout. */
    const char *cat[] = {"cat", NULL};
    dragon_process_attr_t a;
    dragon_process_attr_init(&a);
    a.in_mode = DRAGON_STDIO_PIPE;
    a.out_mode = DRAGON_STDIO_PIPE;
    uint64_t puid = 0;
    dragon_process_pipes_t p = {-1, -1, -1};
    dragon_status_t st = dragon_process_create_with_pipes(cat, &a, &puid, &p);
    printf("pipe-create %d %d %d %d\n", (int)st, p.in_fd >= 0, p.out_fd >= 0, p.err_fd);
    const char msg[] = "through the pipe\n";
    ssize_t w = write(p.in_fd, msg, sizeof msg - 1);
    close(p.in_fd);
    char buf[128] = {0};
    size_t got = 0;
    ssize_t n;
    while ((n = read(p.out_fd, buf + got, sizeof buf - 1 - got)) > 0) {
        got += (size_t)n;
    }
    close(p.out_fd);
    int code = -1;
    dragon_process_join(puid, 10 * SECOND, &code);
    printf("pipe-roundtrip %d %d exit %d\n", w == (ssize_t)(sizeof msg - 1), strcmp(buf, msg) == 0,
           code);
    /* PIPE without somewhere to put the ends is refused. */
    printf("pipe-without-ends %d\n", (int)dragon_process_create(cat, &a, &puid));

    /* INHERIT: the creator's own stdout (here a file), not the daemon's. */
    char path[] = "/tmp/dragon-inherit-XXXXXX";
    int file = mkstemp(path);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(file, STDOUT_FILENO);
    const char *echo[] = {"echo", "inherited", NULL};
    dragon_process_attr_init(&a);
    a.out_mode = DRAGON_STDIO_INHERIT;
    st = dragon_process_create(echo, &a, &puid);
    dragon_process_join(puid, 10 * SECOND, &code);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    memset(buf, 0, sizeof buf);
    n = pread(file, buf, sizeof buf - 1, 0);
    close(file);
    unlink(path);
    printf("inherit-stdout %d %d\n", (int)st, n > 0 && strcmp(buf, "inherited\n") == 0);

    /* stdin as RELAY makes no sense. */
    dragon_process_attr_init(&a);
    a.in_mode = DRAGON_STDIO_RELAY;
    printf("stdin-relay %d\n", (int)dragon_process_create(echo, &a, &puid));
}

static void restarts(void) {
    /* Fails twice, then succeeds: restarted twice, ends 0. */
    char counter[] = "/tmp/dragon-restart-XXXXXX";
    int fd = mkstemp(counter);
    close(fd);
    char script[512];
    snprintf(script, sizeof script,
             "n=$(cat %s); n=$((${n:-0}+1)); echo $n > %s; [ $n -ge 3 ] && exit 0; exit 1", counter,
             counter);
    const char *flaky[] = {"sh", "-c", script, NULL};
    dragon_process_attr_t a;
    dragon_process_attr_init(&a);
    a.max_restarts = 5;
    uint64_t puid = 0;
    dragon_process_create(flaky, &a, &puid);
    int code = -1;
    dragon_status_t st = dragon_process_join(puid, 30 * SECOND, &code);
    dragon_process_status_t s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    dragon_process_query(puid, &s);
    printf("restart-until-success %d exit %d restarts %u\n", (int)st, code, s.restarts);
    unlink(counter);

    /* Always fails: restarted max_restarts times, then its last status is final. */
    const char *bad[] = {"sh", "-c", "exit 3", NULL};
    a.max_restarts = 2;
    dragon_process_create(bad, &a, &puid);
    st = dragon_process_join(puid, 30 * SECOND, &code);
    dragon_process_query(puid, &s);
    printf("restart-gives-up %d exit %d restarts %u\n", (int)st, code, s.restarts);

    /* A signal restarts it; stop ends it for good. */
    const char *sleeper[] = {"sleep", "300", NULL};
    a.max_restarts = 10;
    dragon_process_create(sleeper, &a, &puid);
    dragon_process_signal(puid, SIGKILL);
    for (int i = 0; i < 1000; ++i) { /* at most 10 s for the restart */
        dragon_process_query(puid, &s);
        if (s.restarts == 1) {
            break;
        }
        usleep(10000);
    }
    printf("restart-after-kill %u %d\n", s.restarts, s.state == DRAGON_PROCESS_RUNNING);
    st = dragon_process_stop(puid, SIGTERM);
    int code2 = -1;
    dragon_status_t st2 = dragon_process_join(puid, 10 * SECOND, &code2);
    dragon_process_query(puid, &s);
    printf("stop-ends-for-good %d %d exit %d restarts %u\n", (int)st, (int)st2, code2, s.restarts);

    /* Stopped while it waits to restart (it fails at once, and the wait grows: 10, 20, 40 ms
     * ...): the daemon's log and its status give the same count (issue 12, bug 5). */
    a.max_restarts = 100;
    dragon_process_create(bad, &a, &puid);
    for (int i = 0; i < 1000; ++i) { /* at most 10 s for three restarts */
        dragon_process_query(puid, &s);
        if (s.restarts >= 3) {
            break;
        }
        usleep(10000);
    }
    dragon_process_stop(puid, SIGTERM);
    dragon_process_join(puid, 10 * SECOND, &code);
    dragon_process_query(puid, &s);
    printf("backoff-stop %llu restarts %u\n", (unsigned long long)puid, s.restarts);

    /* A group with restart on failure: each member fails until its third life. */
    dragon_process_group_t *g = NULL;
    dragon_process_group_create(NULL, &g);
    dragon_process_group_add(g, 3, bad, NULL);
    printf("group-set-restart %d\n", (int)dragon_process_group_set_restart(g, 2));
    dragon_process_group_start(g);
    st = dragon_process_group_join(g, 30 * SECOND);
    int all = 1;
    for (uint32_t i = 0; i < 3; ++i) {
        int ended = 0;
        dragon_process_group_member(g, i, &puid, &ended, &code);
        dragon_process_query(puid, &s);
        all = all && ended && code == 3 && s.restarts == 2;
    }
    printf("group-restart %d %d\n", (int)st, all);
    dragon_process_group_destroy(g);

    /* Stopping a restarting group ends it: no member comes back. */
    dragon_process_group_create(NULL, &g);
    dragon_process_group_add(g, 4, sleeper, NULL);
    dragon_process_group_set_restart(g, 100);
    dragon_process_group_start(g);
    st = dragon_process_group_stop(g, 5 * SECOND);
    all = 1;
    for (uint32_t i = 0; i < 4; ++i) {
        int ended = 0;
        dragon_process_group_member(g, i, &puid, &ended, &code);
        dragon_process_query(puid, &s);
        all = all && ended && code == 143 && s.restarts == 0 && s.state == DRAGON_PROCESS_EXITED;
    }
    printf("group-restart-stop %d %d\n", (int)st, all);
    dragon_process_group_destroy(g);

    /* A group of no members (the GPU pattern on a machine without GPUs) does not start
     * silently (issue 12, bug 3). */
    dragon_process_group_create(NULL, &g);
    st = dragon_process_group_start(g);
    printf("group-empty %d %d\n", (int)st, strstr(dragon_last_error(), "no members") != NULL);
    dragon_process_group_destroy(g);
}

static void registry(const char *self) {
    const char v1[] = "descriptor-bytes";
    printf("reg-register %d\n",
           (int)dragon_registry_register("demo/pool", DRAGON_REGISTRY_POOL, v1, sizeof v1, 0));
    printf("reg-taken %d\n",
           (int)dragon_registry_register("demo/pool", DRAGON_REGISTRY_POOL, v1, sizeof v1, 0));
    const char v2[] = "other";
    printf("reg-replace %d\n",
           (int)dragon_registry_register("demo/pool", DRAGON_REGISTRY_CHANNEL, v2, sizeof v2, 1));
    char buf[64];
    size_t len = 0;
    dragon_registry_kind_t kind = DRAGON_REGISTRY_BYTES;
    dragon_status_t st = dragon_registry_lookup("demo/pool", 0, &kind, buf, sizeof buf, &len);
    printf("reg-lookup %d kind %d same %d\n", (int)st, (int)kind,
           len == sizeof v2 && memcmp(buf, v2, len) == 0);
    st = dragon_registry_lookup("demo/pool", 0, NULL, buf, 2, &len);
    printf("reg-small-buffer %d len %zu\n", (int)st, len);
    printf("reg-unregister %d\n", (int)dragon_registry_unregister("demo/pool"));
    printf("reg-unregister-again %d\n", (int)dragon_registry_unregister("demo/pool"));
    printf("reg-missing %d\n", (int)dragon_registry_lookup("demo/pool", 0, NULL, buf, 64, &len));
    printf("reg-wait-timeout %d\n",
           (int)dragon_registry_lookup("demo/none", 20000000, NULL, buf, 64, &len));
    printf("reg-bad-name %d %d %d\n",
           (int)dragon_registry_register("a b", DRAGON_REGISTRY_BYTES, v1, 1, 0),
           (int)dragon_registry_register("", DRAGON_REGISTRY_BYTES, v1, 1, 0),
           (int)dragon_registry_lookup(NULL, 0, NULL, buf, 64, &len));
    static char big[DRAGON_REGISTRY_VALUE_MAX + 1];
    printf("reg-too-long %d\n",
           (int)dragon_registry_register("big", DRAGON_REGISTRY_BYTES, big, sizeof big, 0));
    printf("reg-largest %d\n", (int)dragon_registry_register("big", DRAGON_REGISTRY_BYTES, big,
                                                             DRAGON_REGISTRY_VALUE_MAX, 0));

    /* Another process waits for a name; this one registers it after the other started. */
    const char *child[] = {self, "--lookup", "late/name", NULL};
    uint64_t puid = 0;
    dragon_process_create(child, NULL, &puid);
    dragon_process_status_t s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    dragon_process_query(puid, &s);
    const char late[] = "registered-late";
    dragon_registry_register("late/name", DRAGON_REGISTRY_DICT, late, sizeof late, 0);
    int code = -1;
    st = dragon_process_join(puid, 30 * SECOND, &code);
    printf("reg-cross-process %d exit %d\n", (int)st, code);
}

static void system_and_placement(void) {
    uint32_t n = 0;
    dragon_status_t st = dragon_system_node_count(&n);
    dragon_system_node_t node;
    memset(&node, 0, sizeof node);
    node.struct_size = sizeof node;
    dragon_status_t st2 = dragon_system_node(0, &node);
    printf("system-nodes %d %u %d id %u gpus %u host-set %d\n", (int)st, n, (int)st2, node.node_id,
           node.gpu_count, node.host_name[0] != '\0');
    printf("system-no-node-1 %d\n", (int)dragon_system_node(1, &node));
    static dragon_policy_t pols[8];
    size_t count = 0;
    st = dragon_system_gpu_policies(pols, 8, sizeof pols[0], &count);
    int good = count == 4;
    for (size_t i = 0; i < count && i < 8; ++i) {
        good = good && pols[i].gpu_count == 1 && pols[i].gpus[0] == i && pols[i].cpu_count > 0 &&
               strcmp(pols[i].host_name, node.host_name) == 0 && pols[i].host_id == 0;
    }
    printf("system-gpu-policies %d %zu %d\n", (int)st, count, good);

    /* A caller built against a larger dragon_policy_t (an element that begins with today's
     * and adds bytes): strided by its size, the added bytes untouched; a smaller element
     * size is refused before the daemon is asked. */
    static struct {
        dragon_policy_t policy;
        unsigned char added[24];
    } wide[6];
    memset(wide, 0x5A, sizeof wide);
    st = dragon_system_gpu_policies(&wide[0].policy, 5, sizeof wide[0], &count);
    good = count == 4;
    for (size_t i = 0; i < 6; ++i) {
        const unsigned char *b = (const unsigned char *)&wide[i];
        size_t from = i < 4 ? sizeof(dragon_policy_t) : 0; /* only GPUs' elements written */
        for (size_t k = from; k < sizeof wide[i]; ++k) {
            good = good && b[k] == 0x5A;
        }
        good = good && (i >= 4 || (wide[i].policy.struct_size == sizeof(dragon_policy_t) &&
                                   wide[i].policy.gpus[0] == i && wide[i].policy.host_id == 0 &&
                                   strcmp(wide[i].policy.host_name, node.host_name) == 0));
    }
    printf("system-gpu-policies-wide %d %zu %d\n", (int)st, count, good);
    st = dragon_system_gpu_policies(pols, 8, sizeof(dragon_policy_t) / 2, &count);
    printf("system-gpu-policies-small %d %d\n", (int)st,
           strstr(dragon_last_error(), "sizeof(dragon_policy_t)") != NULL);

    /* A GPU policy of the system starts its process there, bound to its GPU (its CPUs are
     * those of the fake node, which this machine may not have: left out). */
    pols[3].cpu_count = 0;
    const char *show[] = {"sh", "-c", "echo placed-gpu=$CUDA_VISIBLE_DEVICES", NULL};
    dragon_process_attr_t a;
    dragon_process_attr_init(&a);
    a.policy = &pols[3];
    uint64_t puid = 0;
    int code = -1;
    st = dragon_process_create(show, &a, &puid);
    if (st != DRAGON_SUCCESS) {
        printf("placed-by-gpu-policy-error %s\n", dragon_last_error());
    }
    dragon_process_join(puid, 10 * SECOND, &code);
    printf("placed-by-gpu-policy %d exit %d\n", (int)st, code);

    static dragon_policy_t p;
    dragon_policy_init(&p);
    p.placement = DRAGON_PLACEMENT_HOST_NAME;
    a.policy = &p;
    printf("placement-name-missing %d\n", (int)dragon_process_create(show, &a, &puid));
    strcpy(p.host_name, "no-such-host");
    st = dragon_process_create(show, &a, &puid);
    printf("placement-unknown-host %d %d\n", (int)st,
           strstr(dragon_last_error(), "no-such-host") != NULL);
    dragon_policy_init(&p);
    p.placement = DRAGON_PLACEMENT_HOST_ID;
    p.host_id = 7;
    printf("placement-unknown-id %d\n", (int)dragon_process_create(show, &a, &puid));
    p.host_id = 0;
    st = dragon_process_create(show, &a, &puid);
    dragon_process_join(puid, 10 * SECOND, &code);
    printf("placement-id-0 %d exit %d\n", (int)st, code);
    dragon_policy_init(&p);
    p.placement = DRAGON_PLACEMENT_LOCAL;
    p.distribution = DRAGON_DISTRIBUTION_BLOCK;
    p.wait_mode = DRAGON_WAIT_SPIN;
    const char *wm[] = {"sh", "-c", "echo wait-mode=$DRAGON_WAIT_MODE", NULL};
    st = dragon_process_create(wm, &a, &puid);
    dragon_process_join(puid, 10 * SECOND, &code);
    printf("placement-local %d exit %d\n", (int)st, code);
}

/* A group larger than one request carries (4096 members), with relayed output: every member
 * runs and exits 0, and the members get the descriptor limit the runtime was started with. */
static int big_group(uint32_t n) {
    const char *show[] = {"sh", "-c", "ulimit -Sn > /dev/null; exit 0", NULL};
    const char *limit[] = {"sh", "-c", "echo member-nofile $(ulimit -Sn)", NULL};
    dragon_process_group_t *g = NULL;
    dragon_process_group_create(NULL, &g);
    dragon_process_group_add(g, n - 1, show, NULL);
    dragon_process_group_add(g, 1, limit, NULL);
    dragon_status_t st = dragon_process_group_start(g);
    if (st != DRAGON_SUCCESS) {
        printf("big-group-start %d %s\n", (int)st, dragon_last_error());
        return 1;
    }
    st = dragon_process_group_join(g, 300 * SECOND);
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n; ++i) {
        int ended = 0;
        int code = -1;
        dragon_process_group_member(g, i, NULL, &ended, &code);
        ok += ended && code == 0;
    }
    printf("big-group %d %u of %u\n", (int)st, ok, n);
    dragon_process_group_destroy(g);
    return 0;
}

/* Who a process is (issue 12, workers that are the same program): its puid, role and group
 * rank. `--whoami TAG` prints them; a member in role "worker" also starts a plain child of
 * itself, which must not inherit the role or the rank. */
static int whoami(const char *tag, int nest) {
    uint64_t puid = 0;
    uint32_t index = 0, size = 0;
    dragon_status_t self = dragon_process_self(&puid);
    dragon_status_t rank = dragon_process_group_rank(&index, &size);
    const char *role = dragon_process_role();
    const char *exe = dragon_process_self_exe();
    printf("whoami %s self %d puid-env-match %d role %s rank %d %u/%u exe-ok %d\n", tag, (int)self,
           getenv("DRAGON_PUID") != NULL && puid == strtoull(getenv("DRAGON_PUID"), NULL, 10),
           role != NULL ? role : "-", (int)rank, rank == DRAGON_SUCCESS ? index : 0,
           rank == DRAGON_SUCCESS ? size : 0, exe != NULL && access(exe, X_OK) == 0);
    if (nest && role != NULL && strcmp(role, "worker") == 0 && index == 0) {
        const char *child[] = {exe, "--whoami", "nested", "0", NULL};
        uint64_t c = 0;
        int code = -1;
        dragon_process_create(child, NULL, &c);
        dragon_process_join(c, 30 * SECOND, &code);
    }
    return 0;
}

static void identities(void) {
    const char *exe = dragon_process_self_exe();
    const char *worker[] = {exe, "--whoami", "member", "1", NULL};
    const char *single[] = {exe, "--whoami", "single", "0", NULL};
    dragon_process_attr_t a;
    dragon_process_attr_init(&a);
    a.role = "worker";
    dragon_process_group_t *g = NULL;
    dragon_process_group_create(NULL, &g);
    dragon_process_group_add(g, 2, worker, &a);
    dragon_process_group_add(g, 1, single, NULL); /* a member without a role: index 2 */
    dragon_status_t st = dragon_process_group_start(g);
    dragon_status_t joined = dragon_process_group_join(g, 60 * SECOND);
    printf("identity-group %d %d\n", (int)st, (int)joined);
    dragon_process_group_destroy(g);
    uint64_t puid = 0;
    int code = -1;
    a.role = "loner";
    st = dragon_process_create(single, &a, &puid);
    dragon_process_join(puid, 30 * SECOND, &code);
    printf("identity-process %d exit %d\n", (int)st, code);
    a.role = "has space";
    printf("identity-bad-role %d\n", (int)dragon_process_create(single, &a, &puid));
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--whoami") == 0) {
        return whoami(argv[2], atoi(argv[3]));
    }
    if (argc == 3 && strcmp(argv[1], "--lookup") == 0) {
        return lookup_child(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "--spawn-grandchild") == 0) {
        /* Not the launcher's child: a process the runtime started starts one of its own. */
        const char *seven[] = {"sh", "-c", "exit 7", NULL};
        uint64_t puid = 0;
        int code = -1;
        if (dragon_process_create(seven, NULL, &puid) != DRAGON_SUCCESS ||
            dragon_process_join(puid, 30 * SECOND, &code) != DRAGON_SUCCESS) {
            return 1;
        }
        return code;
    }
    if (argc == 3 && strcmp(argv[1], "--group") == 0) {
        return big_group((uint32_t)atoi(argv[2]));
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    queries();
    from_a_grandchild(argv[0]);
    pipes();
    restarts();
    registry(argv[0]);
    system_and_placement();
    identities();
    return 0;
}
