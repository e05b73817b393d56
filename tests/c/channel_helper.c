/* Child process for the channel and sync tests: attaches to objects by descriptor (hex on
 * the command line) and plays one role. Prints one line of result on stdout.
 *
 *   produce  CHAN PRODUCER COUNT MODE      send COUNT messages {producer, seq}
 *   consume  CHAN BITMAP NPROD PER MODE    receive until a stop message; check order and
 *                                          mark each (producer, seq) once in BITMAP
 *   recv     CHAN TIMEOUT_MS MODE          one recv; prints "got <len> <first u64>" or
 *                                          "status <n>"
 *   send     CHAN FIRST N                  send messages FIRST..FIRST+N-1 (u64 each)
 *   poll     CHAN... TIMEOUT_MS            poll the channels; prints "ready <i> <revents>"
 *   lock     LOCK HOLD|ACQUIRE TIMEOUT_MS  acquire; HOLD then waits to be killed
 *   event    EVENT TIMEOUT_MS              wait for the event
 *   sem      SEM TIMEOUT_MS                acquire the semaphore
 *   barrier  BARRIER TIMEOUT_MS            wait at the barrier; prints "status <n> <index>"
 *   worker   QUEUE                         get items until an empty one; task_done each
 *   send-zc  CHAN N SIZE                   send N zero-copy messages of SIZE bytes (send_mem;
 *                                          byte j of message i is i + j), print "sent", then
 *                                          wait to be killed
 *   zc-produce CHAN CTRL                   send messages (zc_stress.h) until CTRL says stop:
 *                                          small ones, large ones copied, large ones zero-copy
 *   zc-consume CHAN CTRL                   receive and check messages (copying or zero-copy)
 *                                          until a stop message, marking each in CTRL
 */
#include "test_util.h"
#include "zc_stress.h"

#include <dragon/dragon.h>

#include <stdatomic.h>
#include <sys/prctl.h>

#define DESC_MAX DRAGON_OBJECT_DESCRIPTOR_MAX

typedef struct {
    uint32_t producer;
    uint32_t pad;
    uint64_t seq;
} msg_t;

#define STOP_PRODUCER 0xFFFFFFFFu

static size_t unhex(const char *hex, unsigned char *out, size_t cap) {
    long n = tu_from_hex(hex, out, cap);
    if (n < 0) {
        fprintf(stderr, "bad hex argument\n");
        exit(2);
    }
    return (size_t)n;
}

/* A MODE argument: the text spelling of dragon/wait.h ("default", "adaptive", "spin",
 * "idle"). */
static dragon_wait_mode_t mode_named(const char *name) {
    static const char *const names[] = {"default", "adaptive", "spin", "idle"};
    static const dragon_wait_mode_t modes[] = {DRAGON_WAIT_DEFAULT, DRAGON_WAIT_ADAPTIVE,
                                               DRAGON_WAIT_SPIN, DRAGON_WAIT_IDLE};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
        if (strcmp(name, names[i]) == 0) {
            return modes[i];
        }
    }
    fprintf(stderr, "unknown wait mode '%s'\n", name);
    exit(2);
}

static dragon_channel_t *attach_channel(const char *hex, dragon_wait_mode_t mode) {
    unsigned char d[DESC_MAX];
    size_t len = unhex(hex, d, sizeof d);
    dragon_channel_attr_t attr;
    dragon_channel_attr_init(&attr);
    attr.wait_mode = mode;
    dragon_channel_t *ch = NULL;
    dragon_status_t st = dragon_channel_attach(d, len, &attr, &ch);
    if (st != DRAGON_SUCCESS) {
        printf("attach %d %s\n", st, dragon_last_error());
        exit(3);
    }
    return ch;
}

static int64_t ms_to_timeout(long ms) {
    return ms < 0 ? DRAGON_TIMEOUT_FOREVER : (int64_t)ms * 1000000;
}

static int produce(char **argv) {
    dragon_channel_t *ch = attach_channel(argv[0], mode_named(argv[3]));
    uint32_t producer = (uint32_t)strtoul(argv[1], NULL, 10);
    uint64_t count = strtoull(argv[2], NULL, 10);
    dragon_channel_info_t info = {.struct_size = sizeof info};
    dragon_channel_info(ch, &info);
    unsigned char big[1024];
    memset(big, 0xAB, sizeof big);
    for (uint64_t i = 0; i < count; ++i) {
        msg_t m = {producer, 0, i};
        dragon_status_t st;
        if (i % 997 == 5) {
            /* now and then a message larger than a slot: it travels zero-copy */
            size_t len = (size_t)info.slot_size + 100;
            memcpy(big, &m, sizeof m);
            st = dragon_channel_send(ch, big, len, 30000000000LL);
        } else {
            st = dragon_channel_send(ch, &m, sizeof m, 30000000000LL);
        }
        if (st != DRAGON_SUCCESS) {
            printf("send %d %s\n", st, dragon_last_error());
            return 1;
        }
    }
    printf("ok\n");
    dragon_channel_detach(ch);
    return 0;
}

static int consume(char **argv) {
    dragon_channel_t *ch = attach_channel(argv[0], mode_named(argv[4]));
    unsigned char d[DESC_MAX];
    size_t len = unhex(argv[1], d, sizeof d);
    uint32_t nprod = (uint32_t)strtoul(argv[2], NULL, 10);
    uint64_t per = strtoull(argv[3], NULL, 10);
    dragon_pool_t *pool = NULL;
    dragon_channel_pool(ch, &pool);
    void *mem = NULL;
    size_t mem_size = 0;
    if (dragon_pool_mem_attach(pool, d, len, &mem, &mem_size) != DRAGON_SUCCESS) {
        printf("bitmap %s\n", dragon_last_error());
        return 3;
    }
    _Atomic uint64_t *bits = (_Atomic uint64_t *)mem;
    int64_t *last = calloc(nprod, sizeof *last);
    for (uint32_t i = 0; i < nprod; ++i) {
        last[i] = -1;
    }
    uint64_t got = 0;
    unsigned char buf[2048];
    for (;;) {
        size_t n = 0;
        dragon_status_t st = dragon_channel_recv(ch, buf, sizeof buf, &n, 30000000000LL);
        if (st != DRAGON_SUCCESS) {
            printf("recv %d %s\n", st, dragon_last_error());
            return 1;
        }
        msg_t m;
        memcpy(&m, buf, sizeof m);
        if (m.producer == STOP_PRODUCER) {
            break;
        }
        if (m.producer >= nprod || m.seq >= per || (int64_t)m.seq <= last[m.producer]) {
            printf("order producer %u seq %llu after %lld\n", m.producer, (unsigned long long)m.seq,
                   (long long)last[m.producer]);
            return 4;
        }
        last[m.producer] = (int64_t)m.seq;
        uint64_t bit = (uint64_t)m.producer * per + m.seq;
        uint64_t old = atomic_fetch_or(&bits[bit / 64], 1ULL << (bit % 64));
        if (old & (1ULL << (bit % 64))) {
            printf("duplicate producer %u seq %llu\n", m.producer, (unsigned long long)m.seq);
            return 5;
        }
        ++got;
    }
    printf("ok %llu\n", (unsigned long long)got);
    free(last);
    dragon_channel_detach(ch);
    return 0;
}

static int recv_one(char **argv) {
    dragon_channel_t *ch = attach_channel(argv[0], mode_named(argv[2]));
    unsigned char buf[4096];
    size_t n = 0;
    printf("ready\n");
    fflush(stdout);
    dragon_status_t st = dragon_channel_recv(ch, buf, sizeof buf, &n, ms_to_timeout(atol(argv[1])));
    if (st == DRAGON_SUCCESS) {
        uint64_t first = 0;
        memcpy(&first, buf, n < 8 ? n : 8);
        printf("got %zu %llu\n", n, (unsigned long long)first);
    } else {
        printf("status %d\n", st);
    }
    dragon_channel_detach(ch);
    return 0;
}

static int send_n(char **argv) {
    dragon_channel_t *ch = attach_channel(argv[0], DRAGON_WAIT_ADAPTIVE);
    uint64_t first = strtoull(argv[1], NULL, 10);
    uint64_t n = strtoull(argv[2], NULL, 10);
    printf("ready\n");
    fflush(stdout);
    for (uint64_t i = first; i < first + n; ++i) {
        dragon_status_t st = dragon_channel_send(ch, &i, sizeof i, DRAGON_TIMEOUT_FOREVER);
        if (st != DRAGON_SUCCESS) {
            printf("status %d\n", st);
            dragon_channel_detach(ch);
            return 0;
        }
    }
    printf("sent\n");
    dragon_channel_detach(ch);
    return 0;
}

static int poll_channels(int argc, char **argv) {
    int n = argc - 1;
    dragon_channel_t *chs[16];
    uint32_t rev[16];
    for (int i = 0; i < n && i < 16; ++i) {
        chs[i] = attach_channel(argv[i], DRAGON_WAIT_IDLE);
    }
    printf("ready\n");
    fflush(stdout);
    dragon_status_t st = dragon_channel_poll(chs, (size_t)n, DRAGON_CHANNEL_READABLE, rev,
                                             ms_to_timeout(atol(argv[n])));
    if (st != DRAGON_SUCCESS) {
        printf("status %d\n", st);
    } else {
        for (int i = 0; i < n; ++i) {
            if (rev[i] != 0) {
                printf("ready %d %u\n", i, rev[i]);
                break;
            }
        }
    }
    for (int i = 0; i < n && i < 16; ++i) {
        dragon_channel_detach(chs[i]);
    }
    return 0;
}

#define ATTACH_SYNC(type, fn, hex)                                                                 \
    ({                                                                                             \
        unsigned char d_[DESC_MAX];                                                                \
        size_t l_ = unhex((hex), d_, sizeof d_);                                                   \
        type *o_ = NULL;                                                                           \
        dragon_status_t s_ = fn(d_, l_, NULL, &o_);                                                \
        if (s_ != DRAGON_SUCCESS) {                                                                \
            printf("attach %d %s\n", s_, dragon_last_error());                                     \
            exit(3);                                                                               \
        }                                                                                          \
        o_;                                                                                        \
    })

static int lock_role(char **argv) {
    dragon_lock_t *lock = ATTACH_SYNC(dragon_lock_t, dragon_lock_attach, argv[0]);
    dragon_status_t st = dragon_lock_acquire(lock, ms_to_timeout(atol(argv[2])));
    printf("status %d\n", st);
    fflush(stdout);
    if (strcmp(argv[1], "HOLD") == 0 && st == DRAGON_SUCCESS) {
        for (;;) {
            pause(); /* the test kills us while we hold the lock */
        }
    }
    if (st == DRAGON_SUCCESS || st == DRAGON_OWNER_DIED) {
        dragon_lock_release(lock);
    }
    dragon_lock_detach(lock);
    return 0;
}

static int event_role(char **argv) {
    dragon_event_t *ev = ATTACH_SYNC(dragon_event_t, dragon_event_attach, argv[0]);
    printf("ready\n");
    fflush(stdout);
    dragon_status_t st = dragon_event_wait(ev, ms_to_timeout(atol(argv[1])));
    printf("status %d\n", st);
    dragon_event_detach(ev);
    return 0;
}

static int sem_role(char **argv) {
    dragon_semaphore_t *sem = ATTACH_SYNC(dragon_semaphore_t, dragon_semaphore_attach, argv[0]);
    printf("ready\n");
    fflush(stdout);
    dragon_status_t st = dragon_semaphore_acquire(sem, ms_to_timeout(atol(argv[1])));
    printf("status %d\n", st);
    dragon_semaphore_detach(sem);
    return 0;
}

static int barrier_role(char **argv) {
    dragon_barrier_t *b = ATTACH_SYNC(dragon_barrier_t, dragon_barrier_attach, argv[0]);
    printf("ready\n");
    fflush(stdout);
    uint32_t index = 99;
    dragon_status_t st = dragon_barrier_wait(b, ms_to_timeout(atol(argv[1])), &index);
    printf("status %d %u\n", st, index);
    dragon_barrier_detach(b);
    return 0;
}

static int worker_role(char **argv) {
    dragon_queue_t *q = ATTACH_SYNC(dragon_queue_t, dragon_queue_attach, argv[0]);
    uint64_t sum = 0;
    for (;;) {
        uint64_t v = 0;
        size_t n = 0;
        dragon_status_t st = dragon_queue_get(q, &v, sizeof v, &n, 30000000000LL);
        if (st != DRAGON_SUCCESS) {
            printf("status %d\n", st);
            return 1;
        }
        if (n == 0) {
            dragon_queue_task_done(q);
            break;
        }
        sum += v;
        dragon_queue_task_done(q);
    }
    printf("sum %llu\n", (unsigned long long)sum);
    dragon_queue_detach(q);
    return 0;
}

static int send_zc(char **argv) {
    dragon_channel_t *ch = attach_channel(argv[0], DRAGON_WAIT_ADAPTIVE);
    dragon_pool_t *pool = NULL;
    dragon_channel_pool(ch, &pool);
    long n = atol(argv[1]);
    size_t size = (size_t)strtoull(argv[2], NULL, 10);
    for (long i = 0; i < n; ++i) {
        unsigned char *p = NULL;
        dragon_status_t st = dragon_pool_alloc(pool, size, (void **)&p);
        if (st == DRAGON_SUCCESS) {
            for (size_t j = 0; j < size; ++j) {
                p[j] = (unsigned char)(i + (long)j);
            }
            st = dragon_channel_send_mem(ch, p, size, 10000000000LL);
        }
        if (st != DRAGON_SUCCESS) {
            printf("status %d %s\n", st, dragon_last_error());
            return 1;
        }
    }
    printf("sent\n");
    fflush(stdout);
    for (;;) {
        pause(); /* the test kills us */
    }
}

static zs_ctrl *attach_ctrl(dragon_channel_t *ch, const char *hex) {
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = unhex(hex, d, sizeof d);
    dragon_pool_t *pool = NULL;
    dragon_channel_pool(ch, &pool);
    void *mem = NULL;
    size_t size = 0;
    if (dragon_pool_mem_attach(pool, d, len, &mem, &size) != DRAGON_SUCCESS ||
        size < sizeof(zs_ctrl)) {
        printf("ctrl %s\n", dragon_last_error());
        exit(3);
    }
    return (zs_ctrl *)mem;
}

/* The pair runs until told to stop; should the test fail first, it must not run on for ever:
 * it dies with the test, and gives up after a minute in any case. */
static int64_t pair_deadline;
static void bind_to_test(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pair_deadline = tu_now_ms() + 60000;
}

static uint64_t rng_state;
static uint64_t rnd(void) {
    return tu_xorshift(&rng_state);
}

static void zs_fill(unsigned char *p, uint64_t seq, size_t len) {
    zs_head h = {seq, (uint32_t)len, ZS_MAGIC};
    memcpy(p, &h, sizeof h);
    for (size_t i = sizeof h; i < len; ++i) {
        p[i] = zs_byte(seq, i);
    }
}

static int zc_produce(char **argv) {
    dragon_channel_t *ch = attach_channel(argv[0], DRAGON_WAIT_ADAPTIVE);
    zs_ctrl *ctrl = attach_ctrl(ch, argv[1]);
    dragon_pool_t *pool = NULL;
    dragon_channel_pool(ch, &pool);
    dragon_channel_info_t info = {.struct_size = sizeof info};
    dragon_channel_info(ch, &info);
    rng_state = (uint64_t)getpid() * 2654435761ULL + 11;
    static unsigned char buf[16384];
    bind_to_test();
    printf("ready\n");
    fflush(stdout);
    while (atomic_load(&ctrl->stop) == 0 && tu_now_ms() < pair_deadline) {
        uint64_t seq = atomic_fetch_add(&ctrl->next_seq, 1);
        if (seq >= ZS_MAX_MSGS) {
            break;
        }
        uint64_t r = rnd();
        int kind = (int)(r % 4); /* 0, 1: small; 2: large, copied; 3: large, zero-copy */
        size_t len =
            kind < 2 ? sizeof(zs_head) + (size_t)((r >> 8) % (info.slot_size - 15))
                     : info.slot_size + 1 + (size_t)((r >> 8) % (sizeof buf - info.slot_size - 1));
        unsigned char *mem = NULL;
        if (kind == 3) {
            if (dragon_pool_alloc_timeout(pool, len, 1000000000LL, (void **)&mem) !=
                DRAGON_SUCCESS) {
                printf("alloc %s\n", dragon_last_error());
                return 1;
            }
            zs_fill(mem, seq, len);
        } else {
            zs_fill(buf, seq, len);
        }
        for (;;) {
            dragon_status_t st = kind == 3 ? dragon_channel_send_mem(ch, mem, len, 50000000LL)
                                           : dragon_channel_send(ch, buf, len, 50000000LL);
            if (st == DRAGON_SUCCESS) {
                break;
            }
            if (st != DRAGON_TIMEOUT) {
                printf("send %d %s\n", st, dragon_last_error());
                return 1;
            }
            if (atomic_load(&ctrl->stop) != 0) {
                if (mem != NULL) {
                    dragon_pool_free(pool, mem);
                }
                break;
            }
        }
    }
    dragon_channel_detach(ch);
    return 0;
}

static int zc_check(zs_ctrl *ctrl, const unsigned char *p, size_t n) {
    zs_head h;
    if (n < sizeof h) {
        printf("short message of %zu bytes\n", n);
        return 0;
    }
    memcpy(&h, p, sizeof h);
    if (h.magic != ZS_MAGIC || h.len != n || h.seq >= ZS_MAX_MSGS) {
        printf("bad header: seq %llu len %u magic %x, %zu bytes\n", (unsigned long long)h.seq,
               h.len, h.magic, n);
        return 0;
    }
    for (size_t i = sizeof h; i < n; ++i) {
        if (p[i] != zs_byte(h.seq, i)) {
            printf("message %llu: byte %zu is damaged\n", (unsigned long long)h.seq, i);
            return 0;
        }
    }
    uint64_t bit = 1ULL << (h.seq % 64);
    if ((atomic_fetch_or(&ctrl->seen[h.seq / 64], bit) & bit) != 0) {
        printf("message %llu received twice\n", (unsigned long long)h.seq);
        return 0;
    }
    return 1;
}

static int zc_consume(char **argv) {
    dragon_channel_t *ch = attach_channel(argv[0], DRAGON_WAIT_ADAPTIVE);
    zs_ctrl *ctrl = attach_ctrl(ch, argv[1]);
    dragon_pool_t *pool = NULL;
    dragon_channel_pool(ch, &pool);
    rng_state = (uint64_t)getpid() * 2654435761ULL + 13;
    static unsigned char buf[16384];
    bind_to_test();
    printf("ready\n");
    fflush(stdout);
    while (tu_now_ms() < pair_deadline) {
        int as_mem = (rnd() & 1) != 0;
        unsigned char *p = buf;
        size_t n = 0;
        dragon_status_t st = as_mem ? dragon_channel_recv_mem(ch, (void **)&p, &n, 50000000LL)
                                    : dragon_channel_recv(ch, buf, sizeof buf, &n, 50000000LL);
        if (st == DRAGON_TIMEOUT) {
            continue;
        }
        if (st != DRAGON_SUCCESS) {
            printf("recv %d %s\n", st, dragon_last_error());
            return 1;
        }
        zs_head h = {0, 0, 0};
        memcpy(&h, p, n < sizeof h ? n : sizeof h);
        int stop = n == sizeof h && h.seq == ZS_STOP;
        if (!stop) {
            if (zc_check(ctrl, p, n)) {
                atomic_fetch_add(&ctrl->received, 1);
            } else {
                atomic_fetch_add(&ctrl->errors, 1);
            }
        }
        if (as_mem && dragon_pool_free(pool, p) != DRAGON_SUCCESS) {
            printf("free %s\n", dragon_last_error());
            return 1;
        }
        if (stop) {
            dragon_channel_detach(ch);
            return 0;
        }
    }
    printf("no stop message within a minute\n");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: channel-helper ROLE ARGS...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *role = argv[1];
    char **a = argv + 2;
    if (strcmp(role, "produce") == 0 && argc == 6) {
        return produce(a);
    }
    if (strcmp(role, "consume") == 0 && argc == 7) {
        return consume(a);
    }
    if (strcmp(role, "recv") == 0 && argc == 5) {
        return recv_one(a);
    }
    if (strcmp(role, "send") == 0 && argc == 5) {
        return send_n(a);
    }
    if (strcmp(role, "poll") == 0 && argc >= 4) {
        return poll_channels(argc - 2, a);
    }
    if (strcmp(role, "lock") == 0 && argc == 5) {
        return lock_role(a);
    }
    if (strcmp(role, "event") == 0 && argc == 4) {
        return event_role(a);
    }
    if (strcmp(role, "sem") == 0 && argc == 4) {
        return sem_role(a);
    }
    if (strcmp(role, "barrier") == 0 && argc == 4) {
        return barrier_role(a);
    }
    if (strcmp(role, "worker") == 0 && argc == 3) {
        return worker_role(a);
    }
    if (strcmp(role, "send-zc") == 0 && argc == 5) {
        return send_zc(a);
    }
    if (strcmp(role, "zc-produce") == 0 && argc == 4) {
        return zc_produce(a);
    }
    if (strcmp(role, "zc-consume") == 0 && argc == 4) {
        return zc_consume(a);
    }
    fprintf(stderr, "channel-helper: unknown role or arguments\n");
    return 2;
}
