/* Run under `dragon` (tests/integration/launcher.sh): creates processes through the runtime
 * (dragon_process_*), with a policy's CPU and GPU affinity, and prints what it observes, one
 * "key value" line per check. */
#include <dragon/dragon.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void report(const char *what, dragon_status_t st) {
    printf("%s %d\n", what, (int)st);
}

int main(void) {
    /* A child with CPU 0 and GPU 2 of the (fake) node: it prints its binding and exits 5. */
    const char *argv[] = {"sh", "-c",
                          "echo \"child cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"
                          " gpu=$CUDA_VISIBLE_DEVICES order=$CUDA_DEVICE_ORDER\"; exit 5",
                          NULL};
    dragon_policy_t policy;
    dragon_policy_init(&policy);
    policy.cpu_count = 1;
    policy.cpus[0] = 0;
    policy.gpu_count = 1;
    policy.gpus[0] = 2;
    dragon_process_attr_t attr;
    dragon_process_attr_init(&attr);
    attr.policy = &policy;
    uint64_t puid = 0;
    dragon_status_t st = dragon_process_create(argv, &attr, &puid);
    report("create", st);
    int code = -1;
    st = dragon_process_join(puid, DRAGON_TIMEOUT_FOREVER, &code);
    printf("join %d exit %d\n", (int)st, code);
    fflush(stdout);

    /* Timeouts and signals. */
    const char *sleeper[] = {"sleep", "300", NULL};
    st = dragon_process_create(sleeper, NULL, &puid);
    report("create-sleeper", st);
    report("join-timeout", dragon_process_join(puid, 0, &code));
    report("join-short-timeout", dragon_process_join(puid, 20000000, &code));
    report("signal", dragon_process_signal(puid, SIGTERM));
    st = dragon_process_join(puid, DRAGON_TIMEOUT_FOREVER, &code);
    printf("join-signalled %d exit %d\n", (int)st, code);

    /* Bad input. */
    policy.gpus[0] = 9;
    report("bad-gpu", dragon_process_create(argv, &attr, &puid));
    policy.gpu_count = 0;
    policy.cpus[0] = 100000;
    report("bad-cpu", dragon_process_create(argv, &attr, &puid));
    const char *missing[] = {"no-such-program-xyz", NULL};
    report("missing", dragon_process_create(missing, NULL, &puid));
    report("unknown-puid", dragon_process_join(12345, 0, &code));

    /* A group: the group policy (CPU 0) over the template's (GPU 1, CPU 1). */
    dragon_policy_t gpol, tpol;
    dragon_policy_init(&gpol);
    gpol.cpu_count = 1;
    gpol.cpus[0] = 0;
    dragon_policy_init(&tpol);
    tpol.cpu_count = 1;
    tpol.cpus[0] = 1;
    tpol.gpu_count = 1;
    tpol.gpus[0] = 1;
    dragon_process_group_t *g = NULL;
    report("group-create", dragon_process_group_create(&gpol, &g));
    const char *member[] = {"sh", "-c",
                            "echo \"member cpus=$(grep Cpus_allowed_list /proc/self/status | "
                            "cut -f2) gpu=$CUDA_VISIBLE_DEVICES\"; exit 2",
                            NULL};
    dragon_process_attr_t tattr;
    dragon_process_attr_init(&tattr);
    tattr.policy = &tpol;
    report("group-add", dragon_process_group_add(g, 3, member, &tattr));
    report("group-start", dragon_process_group_start(g));
    report("group-join", dragon_process_group_join(g, DRAGON_TIMEOUT_FOREVER));
    uint32_t n = 0;
    dragon_process_group_size(g, &n);
    int all_two = n == 3;
    for (uint32_t i = 0; i < n; ++i) {
        int ended = 0;
        dragon_process_group_member(g, i, &puid, &ended, &code);
        all_two = all_two && ended && code == 2 && puid != 0;
    }
    printf("group-exit-codes %d\n", all_two);
    dragon_process_group_destroy(g);

    /* A group that does not end by itself: join times out, stop ends it (SIGTERM). */
    dragon_process_group_create(NULL, &g);
    dragon_process_group_add(g, 4, sleeper, NULL);
    report("sleepers-start", dragon_process_group_start(g));
    report("sleepers-join-timeout", dragon_process_group_join(g, 20000000));
    report("sleepers-stop", dragon_process_group_stop(g, 2000000000LL));
    int all_term = 1;
    for (uint32_t i = 0; i < 4; ++i) {
        int ended = 0;
        dragon_process_group_member(g, i, NULL, &ended, &code);
        all_term = all_term && ended && code == 143;
    }
    printf("sleepers-terminated %d\n", all_term);
    dragon_process_group_destroy(g);

    /* A member that cannot start: the others are stopped, the error names it. */
    dragon_process_group_create(NULL, &g);
    dragon_process_group_add(g, 2, sleeper, NULL);
    dragon_process_group_add(g, 1, missing, NULL);
    st = dragon_process_group_start(g);
    printf("group-bad-start %d %d\n", (int)st, strstr(dragon_last_error(), "member 2") != NULL);
    int stopped = 0;
    dragon_process_group_member(g, 0, NULL, &stopped, NULL);
    printf("group-bad-start-stopped %d\n", stopped);
    dragon_process_group_destroy(g);
    return 0;
}
