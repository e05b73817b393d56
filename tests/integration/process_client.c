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
    return 0;
}
