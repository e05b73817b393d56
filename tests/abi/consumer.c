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
    printf("C consumer: libdragon %s (headers %s): %s\n", dragon_version(), DRAGON_VERSION_STRING,
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
