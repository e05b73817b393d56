/* A task pool worker executable named by path (dragon_taskpool_attr_t.worker_argv), written
 * against the C ABI alone: it registers "c-sum" (the sum of an array of int32) and serves. */
#include <dragon/dragon.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static dragon_status_t c_sum(const void *arg, size_t len, dragon_task_ctx_t *ctx, void *user) {
    (void)user;
    if (len % sizeof(int32_t) != 0) {
        dragon_task_fail(ctx, "c-sum: an array of int32, please");
        return DRAGON_INVALID_ARGUMENT;
    }
    int64_t sum = 0;
    for (size_t i = 0; i < len / sizeof(int32_t); ++i) {
        int32_t v;
        memcpy(&v, (const char *)arg + i * sizeof v, sizeof v);
        sum += v;
    }
    return dragon_task_return(ctx, &sum, sizeof sum);
}

int main(void) {
    if (dragon_task_register("c-sum", c_sum, NULL) != DRAGON_SUCCESS) {
        fprintf(stderr, "taskpool-worker: %s\n", dragon_last_error());
        return 1;
    }
    dragon_taskpool_serve_if_worker(); /* never returns in a worker */
    fprintf(stderr, "taskpool-worker: a task pool starts this program as its worker\n");
    return 2;
}
