/* pool-client: pools made by processes of a runtime, for tests/integration/launcher.sh.
 *
 *   pool-client create NAME        create pool NAME, use it, destroy it; prints
 *                                  "create STATUS SEGMENT" (the error on stderr)
 *   pool-client attach NAME        attach pool NAME and detach; prints "attach STATUS"
 *   pool-client leave NAME         create pool NAME and exit without destroying it (a
 *                                  program that ended early); prints "leave STATUS"
 *   pool-client child-attach NAME  create pool NAME, start "pool-client attach NAME" as a
 *                                  process of the runtime with an environment of its own
 *                                  (PATH only: no DRAGON_* variable), print
 *                                  "child-attach EXIT", destroy the pool
 *
 * Exit status: 0 when the job succeeded, 1 when it did not, 2 on a usage error. */
#include <dragon/dragon.h>

#include <stdio.h>
#include <string.h>

static int create(const char *name) {
    dragon_pool_t *pool = NULL;
    dragon_status_t st = dragon_pool_create(name, 1 << 20, NULL, &pool);
    if (st != DRAGON_SUCCESS) {
        printf("create %d\n", (int)st);
        fprintf(stderr, "pool-client: %s\n", dragon_last_error());
        return 1;
    }
    const char *segment = "?";
    dragon_pool_segment_name(pool, &segment);
    void *p = NULL;
    st = dragon_pool_alloc(pool, 1000, &p);
    if (st == DRAGON_SUCCESS) {
        memset(p, 1, 1000);
        st = dragon_pool_free(pool, p);
    }
    printf("create %d %s\n", (int)st, segment);
    return dragon_pool_destroy(pool) == DRAGON_SUCCESS && st == DRAGON_SUCCESS ? 0 : 1;
}

static int leave(const char *name) {
    dragon_pool_t *pool = NULL;
    dragon_status_t st = dragon_pool_create(name, 1 << 20, NULL, &pool);
    printf("leave %d\n", (int)st);
    return st == DRAGON_SUCCESS ? 0 : 1;
}

static int attach(const char *name) {
    dragon_pool_t *pool = NULL;
    dragon_status_t st = dragon_pool_attach(name, NULL, &pool);
    printf("attach %d\n", (int)st);
    if (st != DRAGON_SUCCESS) {
        fprintf(stderr, "pool-client: %s\n", dragon_last_error());
        return 1;
    }
    dragon_pool_detach(pool);
    return 0;
}

static int child_attach(const char *self, const char *name) {
    dragon_pool_t *pool = NULL;
    if (dragon_pool_create(name, 1 << 20, NULL, &pool) != DRAGON_SUCCESS) {
        fprintf(stderr, "pool-client: %s\n", dragon_last_error());
        return 1;
    }
    const char *argv[] = {self, "attach", name, NULL};
    const char *env[] = {"PATH=/usr/bin:/bin", NULL};
    dragon_process_attr_t attr;
    dragon_process_attr_init(&attr);
    attr.env = env;
    attr.out_mode = DRAGON_STDIO_INHERIT;
    attr.err_mode = DRAGON_STDIO_INHERIT;
    uint64_t puid = 0;
    int code = -1;
    dragon_status_t st = dragon_process_create(argv, &attr, &puid);
    if (st == DRAGON_SUCCESS) {
        st = dragon_process_join(puid, 30 * 1000000000LL, &code);
    }
    if (st != DRAGON_SUCCESS) {
        fprintf(stderr, "pool-client: %s\n", dragon_last_error());
    }
    printf("child-attach %d\n", code);
    dragon_pool_destroy(pool);
    return st == DRAGON_SUCCESS && code == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "create") == 0) {
        return create(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "leave") == 0) {
        return leave(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "attach") == 0) {
        return attach(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "child-attach") == 0) {
        return child_attach(argv[0], argv[2]);
    }
    fprintf(stderr, "usage: pool-client create|leave|attach|child-attach NAME\n");
    return 2;
}
