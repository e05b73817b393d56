/* pool-helper: "another process" for the pool tests. It attaches to a pool by its serialized
 * descriptor (hex on the command line) and does one job:
 *
 *   pool-helper verify-free POOL MEM BYTE   check every byte of MEM is BYTE, then free it
 *   pool-helper publish POOL SIZE BYTE      allocate SIZE bytes, fill with BYTE, print the
 *                                           memory descriptor (hex) and exit without freeing
 *   pool-helper alloc-wait POOL SIZE MS     print "waiting", allocate with a timeout of MS
 *                                           ms, print the status name
 *   pool-helper stress POOL ITERS SEED      random alloc/free with ownership patterns checked
 *                                           before every free; frees everything at the end
 *   pool-helper churn POOL MAXLIVE MAXSIZE  like stress, forever (up to 20 s); used to be
 *                                           killed. It first prints "ledger HEX": the memory
 *                                           descriptor of a uint64 in the pool where it keeps
 *                                           the bytes of the blocks it holds, so whoever
 *                                           outlives it knows what it leaked; then "running"
 *                                           once the loop is under way
 *   pool-helper cache POOL N hold|exit      allocate N blocks of 64 bytes and free them (so
 *                                           they sit in this thread's cache), print
 *                                           "cached"; then wait up to 20 s to be killed
 *                                           (hold) or detach and exit (exit)
 *   pool-helper segment POOL                print the pool's segment name as this process
 *                                           derives it (from its own environment)
 *
 * Exit status: 0 on success, 1 on a failed check, 2 on usage errors. */
#include "test_util.h"

#include <dragon/dragon.h>

#include <inttypes.h>

static dragon_pool_t *attach_hex(const char *hex) {
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    long n = tu_from_hex(hex, d, sizeof d);
    dragon_pool_t *pool = NULL;
    if (n < 0 || dragon_pool_attach_serialized(d, (size_t)n, &pool) != DRAGON_SUCCESS) {
        fprintf(stderr, "pool-helper: attach: %s\n", dragon_last_error());
        exit(1);
    }
    return pool;
}

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t rng_state;
static uint64_t rnd(void) {
    return tu_xorshift(&rng_state);
}

struct slot {
    unsigned char *p;
    size_t size;
    size_t block;
    uint32_t tag;
};

/* Fill an allocation with a tag that is unique to (process, allocation), so that two live
 * allocations sharing memory would be caught when the first is checked. */
static void fill(struct slot *s) {
    uint32_t *w = (uint32_t *)s->p;
    for (size_t i = 0; i < s->size / 4; ++i) {
        w[i] = s->tag;
    }
}
static int intact(const struct slot *s) {
    const uint32_t *w = (const uint32_t *)s->p;
    for (size_t i = 0; i < s->size / 4; ++i) {
        if (w[i] != s->tag) {
            return 0;
        }
    }
    return 1;
}

static size_t random_size(size_t max) {
    /* Mostly small, sometimes large: exercises many orders, splits and merges. */
    size_t r = (size_t)rnd();
    size_t cap = (r & 7) == 0 ? max : (max < 512 ? max : 512);
    return 4 + (r >> 8) % (cap - 3);
}

/* The ledger is updated after an allocation and before a free, so a process killed at any
 * point leaks between *ledger bytes and *ledger plus one block. */
static int run_random(dragon_pool_t *pool, long iters, size_t maxlive, size_t maxsize,
                      volatile uint64_t *ledger) {
    struct slot *live = calloc(maxlive, sizeof *live);
    uint32_t next_tag = (uint32_t)getpid() << 12;
    int64_t deadline = tu_now_ms() + 20000;
    int ok = 1;
    for (long i = 0; iters < 0 || i < iters; ++i) {
        if (iters < 0 && (i & 1023) == 0 && tu_now_ms() > deadline) {
            break;
        }
        if (ledger != NULL && i == 200) {
            printf("running\n");
            fflush(stdout);
        }
        struct slot *s = &live[rnd() % maxlive];
        if (s->p != NULL) {
            if (!intact(s)) {
                fprintf(stderr, "pool-helper: allocation %p was overwritten\n", (void *)s->p);
                ok = 0;
                break;
            }
            if (ledger != NULL) {
                *ledger -= s->block;
            }
            if (dragon_pool_free(pool, s->p) != DRAGON_SUCCESS) {
                fprintf(stderr, "pool-helper: free: %s\n", dragon_last_error());
                ok = 0;
                break;
            }
            s->p = NULL;
            continue;
        }
        size_t size = random_size(maxsize) & ~(size_t)3;
        void *p = NULL;
        dragon_status_t st = dragon_pool_alloc(pool, size, &p);
        if (st == DRAGON_NO_SPACE) {
            continue;
        }
        if (st != DRAGON_SUCCESS) {
            fprintf(stderr, "pool-helper: alloc: %s\n", dragon_last_error());
            ok = 0;
            break;
        }
        if (dragon_pool_block_size(pool, p, &s->block) != DRAGON_SUCCESS) {
            ok = 0;
            break;
        }
        if (ledger != NULL) {
            *ledger += s->block;
        }
        s->p = p;
        s->size = size;
        s->tag = next_tag++;
        fill(s);
    }
    for (size_t i = 0; i < maxlive; ++i) {
        if (live[i].p != NULL) {
            if (!intact(&live[i])) {
                fprintf(stderr, "pool-helper: allocation %p was overwritten\n", (void *)live[i].p);
                ok = 0;
            }
            if (dragon_pool_free(pool, live[i].p) != DRAGON_SUCCESS) {
                ok = 0;
            }
        }
    }
    free(live);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: pool-helper JOB POOL ARGS...\n");
        return 2;
    }
    const char *job = argv[1];
    dragon_pool_t *pool = attach_hex(argv[2]);
    int ok = 1;
    if (strcmp(job, "segment") == 0 && argc == 3) {
        const char *segment = NULL;
        ok = dragon_pool_segment_name(pool, &segment) == DRAGON_SUCCESS;
        printf("%s\n", ok ? segment : "?");
    } else if (strcmp(job, "verify-free") == 0 && argc == 5) {
        unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
        long n = tu_from_hex(argv[3], d, sizeof d);
        void *p = NULL;
        size_t size = 0;
        if (n < 0 || dragon_pool_mem_attach(pool, d, (size_t)n, &p, &size) != DRAGON_SUCCESS) {
            fprintf(stderr, "pool-helper: mem attach: %s\n", dragon_last_error());
            return 1;
        }
        int byte = atoi(argv[4]);
        for (size_t i = 0; i < size; ++i) {
            if (((unsigned char *)p)[i] != byte) {
                fprintf(stderr, "pool-helper: byte %zu differs\n", i);
                return 1;
            }
        }
        ok = dragon_pool_free(pool, p) == DRAGON_SUCCESS;
    } else if (strcmp(job, "publish") == 0 && argc == 5) {
        size_t size = (size_t)strtoull(argv[3], NULL, 10);
        void *p = NULL;
        if (dragon_pool_alloc(pool, size, &p) != DRAGON_SUCCESS) {
            fprintf(stderr, "pool-helper: alloc: %s\n", dragon_last_error());
            return 1;
        }
        memset(p, atoi(argv[4]), size);
        unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
        size_t len = 0;
        if (dragon_pool_mem_serialize(pool, p, size, d, sizeof d, &len) != DRAGON_SUCCESS) {
            return 1;
        }
        char hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
        tu_to_hex(d, len, hex);
        printf("%s\n", hex);
    } else if (strcmp(job, "alloc-wait") == 0 && argc == 5) {
        size_t size = (size_t)strtoull(argv[3], NULL, 10);
        dragon_timeout_t timeout = (dragon_timeout_t)atoll(argv[4]) * 1000000;
        printf("waiting\n");
        fflush(stdout);
        void *p = NULL;
        dragon_status_t st = dragon_pool_alloc_timeout(pool, size, timeout, &p);
        printf("%s\n", dragon_strerror(st));
        ok = st == DRAGON_SUCCESS && dragon_pool_free(pool, p) == DRAGON_SUCCESS;
    } else if (strcmp(job, "cache") == 0 && argc == 5) {
        long n = atol(argv[3]);
        void **ptrs = calloc((size_t)n, sizeof *ptrs);
        for (long i = 0; ok && i < n; ++i) {
            ok = dragon_pool_alloc(pool, 64, &ptrs[i]) == DRAGON_SUCCESS;
        }
        for (long i = 0; ok && i < n; ++i) {
            ok = dragon_pool_free(pool, ptrs[i]) == DRAGON_SUCCESS;
        }
        free(ptrs);
        printf("%s\n", ok ? "cached" : "failed");
        fflush(stdout);
        if (strcmp(argv[4], "hold") == 0) {
            for (int64_t end = tu_now_ms() + 20000; tu_now_ms() < end;) {
                pause_ms(100); /* waiting to be killed, not for anything to happen */
            }
        }
    } else if (strcmp(job, "stress") == 0 && argc == 5) {
        rng_state = strtoull(argv[4], NULL, 10) * 2654435761ULL + 1;
        ok = run_random(pool, atol(argv[3]), 64, 8192, NULL);
    } else if (strcmp(job, "churn") == 0 && argc == 5) {
        rng_state = (uint64_t)getpid() * 2654435761ULL + 7;
        uint64_t *ledger = NULL;
        if (dragon_pool_alloc(pool, sizeof *ledger, (void **)&ledger) != DRAGON_SUCCESS) {
            fprintf(stderr, "pool-helper: alloc ledger: %s\n", dragon_last_error());
            return 1;
        }
        *ledger = 0;
        unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
        size_t len = 0;
        if (dragon_pool_mem_serialize(pool, ledger, sizeof *ledger, d, sizeof d, &len) !=
            DRAGON_SUCCESS) {
            return 1;
        }
        char hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
        tu_to_hex(d, len, hex);
        printf("ledger %s\n", hex);
        fflush(stdout);
        ok = run_random(pool, -1, (size_t)atol(argv[3]), (size_t)atol(argv[4]), ledger);
        ok = ok && dragon_pool_free(pool, ledger) == DRAGON_SUCCESS;
    } else {
        fprintf(stderr, "pool-helper: bad job or arguments\n");
        return 2;
    }
    dragon_pool_detach(pool);
    return ok ? 0 : 1;
}
