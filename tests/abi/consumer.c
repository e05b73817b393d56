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
    ok = dragon_pool_destroy(pool) == DRAGON_SUCCESS && ok;
    printf("C consumer: libdragon %s (headers %s): %s\n", dragon_version(), DRAGON_VERSION_STRING,
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
