/* Helpers shared by the C tests: hex for passing descriptors on a command line, spawning a
 * helper process with its stdout on a pipe, and bounded waits (poll/pidfd, never sleep). */
#ifndef DRAGON_TEST_UTIL_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define DRAGON_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static inline void tu_to_hex(const void *bytes, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = (const unsigned char *)bytes;
    for (size_t i = 0; i < len; ++i) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Returns the number of bytes decoded, or -1 on a bad digit. */
static inline long tu_from_hex(const char *hex, void *out, size_t cap) {
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap) {
        return -1;
    }
    unsigned char *o = (unsigned char *)out;
    for (size_t i = 0; i < n / 2; ++i) {
        unsigned v = 0;
        for (int j = 0; j < 2; ++j) {
            char c = hex[2 * i + j];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= (unsigned)(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= (unsigned)(c - 'a' + 10);
            } else {
                return -1;
            }
        }
        o[i] = (unsigned char)v;
    }
    return (long)(n / 2);
}

static inline int64_t tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Spawn argv[0] with argv; its stdout goes to *out_fd (a pipe) when out_fd is not NULL.
 * extra_env ("NAME=value" or NULL) is added to this process's environment. */
static inline pid_t tu_spawn(char *const argv[], int *out_fd, const char *extra_env) {
    int fds[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd != NULL) {
        if (pipe2(fds, O_CLOEXEC) != 0) {
            return -1;
        }
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    }
    char **envp = environ;
    char **copy = NULL;
    if (extra_env != NULL) {
        size_t n = 0;
        while (environ[n] != NULL) {
            ++n;
        }
        copy = calloc(n + 2, sizeof *copy);
        memcpy(copy, environ, n * sizeof *copy);
        copy[n] = (char *)extra_env;
        envp = copy;
    }
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(copy);
    if (out_fd != NULL) {
        close(fds[1]);
        if (rc != 0) {
            close(fds[0]);
        } else {
            *out_fd = fds[0];
        }
    }
    return rc == 0 ? pid : -1;
}

/* Read one line from fd into buf within timeout_ms. Returns its length, or -1. */
static inline int tu_read_line(int fd, char *buf, size_t cap, int timeout_ms) {
    size_t n = 0;
    int64_t end = tu_now_ms() + timeout_ms;
    while (n + 1 < cap) {
        int64_t left = end - tu_now_ms();
        if (left <= 0) {
            return -1;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            return -1;
        }
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got <= 0) {
            return -1;
        }
        if (c == '\n') {
            break;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    return (int)n;
}

/* xorshift64: a cheap, repeatable stream of pseudo-random numbers from *state (not 0). */
static inline uint64_t tu_xorshift(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Poll a pidfd until its process has ended, or timeout_ms; 1 when it ended, 0 on timeout. */
static inline int tu_pidfd_wait(int pidfd, int timeout_ms) {
    struct pollfd p = {pidfd, POLLIN, 0};
    int64_t end = tu_now_ms() + timeout_ms;
    int rc;
    do {
        int64_t left = end - tu_now_ms();
        rc = left > 0 ? poll(&p, 1, (int)left) : 0;
    } while (rc < 0 && errno == EINTR);
    return rc != 0;
}

/* Wait for pid within timeout_ms; returns its wait status, or -1 on timeout (the child is
 * then killed and reaped, so no test leaves a process behind). */
static inline int tu_wait(pid_t pid, int timeout_ms) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd >= 0) {
        int ended = tu_pidfd_wait(pidfd, timeout_ms);
        close(pidfd);
        if (!ended) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return status;
}

/* A child of this process held by a pidfd, so that signalling it can never reach another
 * process that got its pid after it was reaped. */
typedef struct {
    pid_t pid;
    int pidfd;
    int out; /* its stdout (a pipe), or -1 */
} tu_child;

/* Spawn as tu_spawn does and open a pidfd on the child at once (it is not reaped before
 * tu_child_wait, so its pid cannot be reused meanwhile). Returns 0, or -1. */
static inline int tu_child_spawn(tu_child *c, char *const argv[], const char *extra_env) {
    c->out = -1;
    c->pidfd = -1;
    c->pid = tu_spawn(argv, &c->out, extra_env);
    if (c->pid <= 0) {
        return -1;
    }
    c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    return c->pidfd >= 0 ? 0 : -1;
}

static inline int tu_child_kill(const tu_child *c, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0);
}

/* Wait for the child within timeout_ms and reap it; returns its wait status, or -1 on
 * timeout (it is then SIGKILLed through its pidfd and reaped). Closes its descriptors. */
static inline int tu_child_wait(tu_child *c, int timeout_ms) {
    int timed_out = !tu_pidfd_wait(c->pidfd, timeout_ms);
    if (timed_out) {
        tu_child_kill(c, SIGKILL);
    }
    int status = 0;
    pid_t got = waitpid(c->pid, &status, 0);
    close(c->pidfd);
    if (c->out >= 0) {
        close(c->out);
    }
    c->pidfd = c->out = -1;
    return got == c->pid && !timed_out ? status : -1;
}

/* Wait until /proc/<pid>/stat shows the process asleep (state S) — i.e. blocked — within
 * timeout_ms. Returns 1 if it did. */
static inline int tu_wait_sleeping(pid_t pid, int timeout_ms) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int64_t end = tu_now_ms() + timeout_ms;
    while (tu_now_ms() < end) {
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            return 0;
        }
        char line[512] = "";
        char *got = fgets(line, sizeof line, f);
        fclose(f);
        const char *close_paren = got != NULL ? strrchr(line, ')') : NULL;
        if (close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'S') {
            return 1;
        }
        sched_yield();
    }
    return 0;
}

/* How many /dev/shm entries of runtime `runtime_id` exist (each is printed on stderr). */
static inline int tu_count_leftovers(const char *runtime_id) {
    DIR *dir = opendir("/dev/shm");
    if (dir == NULL) {
        return -1;
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "dragon.%s.", runtime_id);
    int left = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            fprintf(stderr, "left behind: /dev/shm/%s\n", e->d_name);
            ++left;
        }
    }
    closedir(dir);
    return left;
}

#endif /* DRAGON_TEST_UTIL_H */
