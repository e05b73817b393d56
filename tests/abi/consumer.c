/* Built against the installed library with `pkg-config --cflags --libs dragon-c` only. */
#include <dragon/dragon.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    dragon_pool_t *pool = NULL;
    if (dragon_pool_create("consumer-c", 1 << 16, NULL, &pool) != DRAGON_SUCCESS) {
        fprintf(stderr, "create: %s\n", dragon_last_error());
        return 1;
    }
    char *p = NULL;
    int ok = dragon_pool_alloc(pool, 32, (void **)&p) == DRAGON_SUCCESS;
    if (ok) {
        strcpy(p, "from C");
        ok = strcmp(p, "from C") == 0 && dragon_pool_free(pool, p) == DRAGON_SUCCESS;
    }
    dragon_channel_t *ch = NULL;
    ok = ok && dragon_channel_create(pool, 4, 16, NULL, &ch) == DRAGON_SUCCESS;
    if (ok) {
        char msg[16] = "via a channel";
        size_t len = 0;
        ok = dragon_channel_send(ch, msg, sizeof msg, 0) == DRAGON_SUCCESS &&
             dragon_channel_recv(ch, msg, sizeof msg, &len, DRAGON_TIMEOUT_FOREVER) ==
                 DRAGON_SUCCESS &&
             len == sizeof msg && strcmp(msg, "via a channel") == 0;
        ok = dragon_channel_destroy(ch) == DRAGON_SUCCESS && ok;
    }
    ok = dragon_pool_destroy(pool) == DRAGON_SUCCESS && ok;

    /* Arrays the caller sizes: policies into elements larger than this header's struct
     * ($DRAGON_TOPOLOGY_XML: a node with 4 GPUs), strided, the added bytes untouched. */
    static struct {
        dragon_policy_t policy;
        unsigned char added[16];
    } wide[5];
    memset(wide, 0x5A, sizeof wide);
    dragon_machine_t *m = NULL;
    size_t n = 0;
    ok = ok && dragon_machine_load(NULL, &m) == DRAGON_SUCCESS &&
         dragon_policy_per_gpu(m, &wide[0].policy, 5, sizeof wide[0], &n) == DRAGON_SUCCESS &&
         n == 4 && wide[3].policy.gpus[0] == 3 && wide[3].added[15] == 0x5A &&
         wide[4].policy.struct_size != sizeof(dragon_policy_t) &&
         dragon_policy_per_gpu(m, NULL, 0, 1, &n) == DRAGON_INVALID_ARGUMENT &&
         wide[0].policy.wait_mode == DRAGON_WAIT_DEFAULT;
    if (m != NULL) {
        dragon_machine_free(m);
    }
    printf("C consumer: libdragon %s (headers %s): %s\n", dragon_version(), DRAGON_VERSION_STRING,
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
