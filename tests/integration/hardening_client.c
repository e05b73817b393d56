/* Run by tests/integration/hardening.sh. One "key value..." line per observation.
 *   hardening-client spawn-join PROGRAM...  start PROGRAM through the runtime, join it, print
 *                                           "pid N", then wait (60 s at most) for a line or
 *                                           the end of stdin before exiting 0
 *   hardening-client lookup NAME            a registry lookup: "lookup STATUS MESSAGE"
 *   hardening-client create-inherit         start /bin/true with this process's own stdout
 *                                           (passed to the daemon): "create STATUS MESSAGE" */
#include <dragon/dragon.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int spawn_join(char **argv) {
    uint64_t puid = 0;
    dragon_status_t st = dragon_process_create((const char *const *)argv, NULL, &puid);
    if (st != DRAGON_SUCCESS) {
        printf("create %d %s\n", (int)st, dragon_last_error());
        return 1;
    }
    dragon_process_status_t ps;
    memset(&ps, 0, sizeof ps);
    ps.struct_size = sizeof ps;
    dragon_process_query(puid, &ps);
    int code = -1;
    st = dragon_process_join(puid, 30 * 1000000000LL, &code);
    printf("joined %d exit %d\npid %d\n", (int)st, code, (int)ps.pid);
    fflush(stdout);
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    poll(&p, 1, 60000);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "spawn-join") == 0) {
        return spawn_join(argv + 2);
    }
    if (argc == 3 && strcmp(argv[1], "lookup") == 0) {
        char buf[256];
        size_t len = 0;
        dragon_status_t st = dragon_registry_lookup(argv[2], 0, NULL, buf, sizeof buf, &len);
        printf("lookup %d %s\n", (int)st, st == DRAGON_SUCCESS ? "found" : dragon_last_error());
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "create-inherit") == 0) {
        const char *child[] = {"/bin/true", NULL};
        dragon_process_attr_t attr;
        dragon_process_attr_init(&attr);
        attr.out_mode = DRAGON_STDIO_INHERIT;
        uint64_t puid = 0;
        dragon_status_t st = dragon_process_create(child, &attr, &puid);
        printf("create %d %s\n", (int)st, st == DRAGON_SUCCESS ? "started" : dragon_last_error());
        return 0;
    }
    fprintf(stderr, "usage: hardening-client spawn-join PROGRAM... | lookup NAME | "
                    "create-inherit\n");
    return 2;
}
