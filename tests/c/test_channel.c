/* Channels through the C ABI: lifecycle, FIFO and capacity, timeouts, zero-copy ownership,
 * wait modes, channel sets, multi-process stress (exactly once, per-producer order) and
 * processes killed mid-send / mid-recv. Runs under a runtime id of its own; the last test
 * checks that nothing of it is left in /dev/shm. */
#include "test_util.h"
#include "zc_stress.h"

#include <dragon/dragon.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static char runtime_id[32];
static const char *helper;

#define OK(call) assert_int_equal((call), DRAGON_SUCCESS)
#define MS 1000000LL

static dragon_pool_t *make_pool(const char *name, size_t size) {
    dragon_pool_t *pool = NULL;
    OK(dragon_pool_create(name, size, NULL, &pool));
    return pool;
}

static uint64_t live_allocations(dragon_pool_t *pool) {
    dragon_pool_stats_t s = {.struct_size = sizeof s};
    OK(dragon_pool_stats(pool, &s));
    return s.allocation_count;
}

static dragon_channel_t *make_channel(dragon_pool_t *pool, size_t cap, size_t slot) {
    dragon_channel_t *ch = NULL;
    OK(dragon_channel_create(pool, cap, slot, NULL, &ch));
    return ch;
}

static void hex_of(dragon_channel_t *ch, char *hex) {
    unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_channel_serialize(ch, d, sizeof d, &len));
    tu_to_hex(d, len, hex);
}

static dragon_channel_info_t info_of(dragon_channel_t *ch) {
    dragon_channel_info_t i = {.struct_size = sizeof i};
    OK(dragon_channel_info(ch, &i));
    return i;
}

static void send_u64(dragon_channel_t *ch, uint64_t v) {
    OK(dragon_channel_send(ch, &v, sizeof v, 0));
}

static uint64_t recv_u64(dragon_channel_t *ch, dragon_timeout_t timeout) {
    uint64_t v = 0;
    size_t n = 0;
    OK(dragon_channel_recv(ch, &v, sizeof v, &n, timeout));
    assert_int_equal(n, sizeof v);
    return v;
}

/* Spawn the helper with a role; its stdout is on *fd. */
static pid_t spawn(int *fd, const char *env, const char *a0, const char *a1, const char *a2,
                   const char *a3, const char *a4, const char *a5) {
    char *argv[] = {(char *)helper, (char *)a0, (char *)a1, (char *)a2,
                    (char *)a3,     (char *)a4, (char *)a5, NULL};
    pid_t pid = tu_spawn(argv, fd, env);
    assert_true(pid > 0);
    return pid;
}

static void expect_line(int fd, const char *want) {
    char line[256];
    assert_true(tu_read_line(fd, line, sizeof line, 30000) >= 0);
    assert_string_equal(line, want);
}

static void reap(pid_t pid) {
    int status = tu_wait(pid, 30000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Wait (bounded) until the channel reports `n` blocked receivers (or senders). */
static void wait_blocked(dragon_channel_t *ch, uint32_t receivers, uint32_t senders) {
    int64_t end = tu_now_ms() + 30000;
    for (;;) {
        dragon_channel_info_t i = info_of(ch);
        if (i.blocked_receivers == receivers && i.blocked_senders == senders) {
            return;
        }
        assert_true(tu_now_ms() < end);
        sched_yield();
    }
}

/* ---- lifecycle and bad input --------------------------------------------------------- */

static void test_lifecycle(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("life", 1 << 20);
    dragon_channel_t *ch = make_channel(pool, 8, 100);
    dragon_channel_info_t i = info_of(ch);
    assert_int_equal(i.capacity, 8);
    assert_int_equal(i.slot_size, 104); /* rounded up to a multiple of 8 */
    assert_int_equal(i.count, 0);

    unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t len = 0;
    assert_int_equal(dragon_channel_serialize(ch, NULL, 0, &len), DRAGON_BUFFER_TOO_SMALL);
    assert_true(len > 0 && len <= sizeof d);
    OK(dragon_channel_serialize(ch, d, sizeof d, &len));

    dragon_channel_t *other = NULL;
    OK(dragon_channel_attach(d, len, NULL, &other));
    send_u64(ch, 42);
    assert_int_equal(recv_u64(other, 0), 42);
    OK(dragon_channel_detach(other));

    /* Malformed descriptors: a clear status, nothing attached. */
    unsigned char bad[DRAGON_OBJECT_DESCRIPTOR_MAX];
    memcpy(bad, d, len);
    bad[0] ^= 1;
    assert_int_equal(dragon_channel_attach(bad, len, NULL, &other), DRAGON_BAD_DESCRIPTOR);
    assert_null(other);
    assert_int_equal(dragon_channel_attach(d, len - 1, NULL, &other), DRAGON_BAD_DESCRIPTOR);
    memcpy(bad, d, len);
    bad[5] = 3; /* says "lock" */
    assert_int_equal(dragon_channel_attach(bad, len, NULL, &other), DRAGON_INVALID_ARGUMENT);
    assert_true(strlen(dragon_last_error()) > 0);

    /* Bad arguments. */
    assert_int_equal(dragon_channel_create(pool, 0, 8, NULL, &other), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_channel_create(pool, 8, 0, NULL, &other), DRAGON_INVALID_ARGUMENT);
    /* More than the pool could ever hold; then more than it holds now. */
    assert_int_equal(dragon_channel_create(pool, 1 << 20, 1024, NULL, &other),
                     DRAGON_INVALID_ARGUMENT);
    void *filler = NULL;
    OK(dragon_pool_alloc(pool, 512 << 10, &filler));
    assert_int_equal(dragon_channel_create(pool, 4096, 100, NULL, &other), DRAGON_NO_SPACE);
    OK(dragon_pool_free(pool, filler));
    dragon_channel_attr_t attr;
    OK(dragon_channel_attr_init(&attr));
    attr.wait_mode = (dragon_wait_mode_t)7;
    assert_int_equal(dragon_channel_create(pool, 8, 8, &attr, &other), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_channel_send(ch, NULL, 5, 0), DRAGON_INVALID_ARGUMENT);

    OK(dragon_channel_destroy(ch));
    /* The memory is back in the pool and the descriptor names nothing any more. */
    assert_int_equal(live_allocations(pool), 0);
    assert_int_equal(dragon_channel_attach(d, len, NULL, &other), DRAGON_NOT_FOUND);
    OK(dragon_pool_destroy(pool));
}

/* ---- FIFO, capacity, timeouts -------------------------------------------------------- */

static void test_fifo_capacity_and_timeouts(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("fifo", 1 << 20);
    /* 3 is not a power of two: positions wrap with a modulo; run many laps. */
    dragon_channel_t *ch = make_channel(pool, 3, 16);
    for (uint64_t lap = 0; lap < 1000; ++lap) {
        send_u64(ch, 3 * lap);
        send_u64(ch, 3 * lap + 1);
        send_u64(ch, 3 * lap + 2);
        assert_int_equal(info_of(ch).count, 3);
        uint64_t v = 99;
        assert_int_equal(dragon_channel_send(ch, &v, sizeof v, 0), DRAGON_TIMEOUT);
        for (uint64_t k = 0; k < 3; ++k) {
            assert_int_equal(recv_u64(ch, 0), 3 * lap + k);
        }
    }
    size_t n = 0;
    uint64_t v = 0;
    assert_int_equal(dragon_channel_recv(ch, &v, sizeof v, &n, 0), DRAGON_TIMEOUT);

    /* A short timeout waits about that long, then gives up. */
    int64_t t0 = tu_now_ms();
    assert_int_equal(dragon_channel_recv(ch, &v, sizeof v, &n, 50 * MS), DRAGON_TIMEOUT);
    int64_t waited = tu_now_ms() - t0;
    assert_true(waited >= 50);
    assert_true(waited < 5000);
    send_u64(ch, 1);
    send_u64(ch, 2);
    send_u64(ch, 3);
    t0 = tu_now_ms();
    assert_int_equal(dragon_channel_send(ch, &v, sizeof v, 30 * MS), DRAGON_TIMEOUT);
    assert_true(tu_now_ms() - t0 >= 30);

    /* Too small a buffer: the message stays queued, *len says what is needed. */
    unsigned char small[4];
    assert_int_equal(dragon_channel_recv(ch, small, sizeof small, &n, 0), DRAGON_BUFFER_TOO_SMALL);
    assert_int_equal(n, 8);
    assert_int_equal(recv_u64(ch, 0), 1);
    assert_int_equal(recv_u64(ch, 0), 2);
    assert_int_equal(recv_u64(ch, 0), 3);

    /* Zero-length messages are messages. */
    OK(dragon_channel_send(ch, NULL, 0, 0));
    n = 99;
    OK(dragon_channel_recv(ch, NULL, 0, &n, 0));
    assert_int_equal(n, 0);
    OK(dragon_channel_destroy(ch));
    OK(dragon_pool_destroy(pool));
}

/* ---- zero-copy ----------------------------------------------------------------------- */

static void test_zero_copy_ownership(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("zc", 8 << 20);
    dragon_channel_t *ch = make_channel(pool, 4, 64);
    uint64_t base = live_allocations(pool); /* the channel itself */

    /* send_mem: the very allocation arrives; nothing is copied. */
    void *mem = NULL;
    OK(dragon_pool_alloc(pool, 1 << 20, &mem));
    memset(mem, 0x5A, 1 << 20);
    OK(dragon_channel_send_mem(ch, mem, 1 << 20, 0));
    void *got = NULL;
    size_t n = 0;
    OK(dragon_channel_recv_mem(ch, &got, &n, 0));
    assert_ptr_equal(got, mem);
    assert_int_equal(n, 1 << 20);
    assert_int_equal(live_allocations(pool), base + 1);
    OK(dragon_pool_free(pool, got));
    assert_int_equal(dragon_pool_free(pool, got), DRAGON_NOT_ALLOCATED); /* freed exactly once */
    assert_int_equal(live_allocations(pool), base);

    /* A large send() travels as an allocation; a copying recv frees it. */
    unsigned char *big = malloc(100000);
    for (size_t i = 0; i < 100000; ++i) {
        big[i] = (unsigned char)(i * 7);
    }
    OK(dragon_channel_send(ch, big, 100000, 0));
    assert_int_equal(live_allocations(pool), base + 1);
    unsigned char *out = calloc(1, 100000);
    OK(dragon_channel_recv(ch, out, 100000, &n, 0));
    assert_int_equal(n, 100000);
    assert_memory_equal(out, big, 100000);
    assert_int_equal(live_allocations(pool), base);

    /* recv_mem of a slot message hands over a fresh allocation. */
    send_u64(ch, 77);
    OK(dragon_channel_recv_mem(ch, &got, &n, 0));
    assert_int_equal(n, 8);
    assert_int_equal(*(uint64_t *)got, 77);
    OK(dragon_pool_free(pool, got));
    assert_int_equal(live_allocations(pool), base);

    /* A failed send_mem leaves the allocation with the caller. */
    OK(dragon_pool_alloc(pool, 4096, &mem));
    for (int i = 0; i < 4; ++i) {
        send_u64(ch, (uint64_t)i);
    }
    assert_int_equal(dragon_channel_send_mem(ch, mem, 4096, 0), DRAGON_TIMEOUT);
    assert_int_equal(dragon_channel_send_mem(ch, mem, 8192, 0), DRAGON_INVALID_ARGUMENT);
    int stack_var = 0;
    assert_int_equal(dragon_channel_send_mem(ch, &stack_var, 4, 0), DRAGON_BAD_POINTER);
    for (int i = 0; i < 4; ++i) {
        assert_int_equal(recv_u64(ch, 0), (uint64_t)i);
    }
    /* Too small a buffer for a zero-copy message: it stays, still owned by the channel. */
    OK(dragon_channel_send_mem(ch, mem, 4096, 0));
    unsigned char small[16];
    assert_int_equal(dragon_channel_recv(ch, small, sizeof small, &n, 0), DRAGON_BUFFER_TOO_SMALL);
    assert_int_equal(n, 4096);
    /* Destroy drops queued messages and frees their allocations. */
    OK(dragon_channel_send(ch, big, 100000, 0));
    OK(dragon_channel_destroy(ch));
    assert_int_equal(live_allocations(pool), 0);
    free(big);
    free(out);
    OK(dragon_pool_destroy(pool));
}

/* ---- blocking across processes, destroy wakes waiters ------------------------------- */

static void test_forever_then_destroy(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("destroy", 1 << 20);
    dragon_channel_t *ch = make_channel(pool, 2, 16);
    char hex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(ch, hex);

    /* A receiver blocked forever gets a message sent later. */
    int fd = -1;
    pid_t pid = spawn(&fd, NULL, "recv", hex, "-1", "idle", NULL, NULL);
    expect_line(fd, "ready");
    wait_blocked(ch, 1, 0);
    send_u64(ch, 1234);
    expect_line(fd, "got 8 1234");
    reap(pid);
    close(fd);

    /* Receivers blocked forever (one per wait mode) are woken by destroy: DRAGON_CLOSED. */
    int fds[3];
    pid_t pids[3];
    const char *modes[3] = {"adaptive", "spin", "idle"};
    for (int i = 0; i < 3; ++i) {
        pids[i] = spawn(&fds[i], NULL, "recv", hex, "-1", modes[i], NULL, NULL);
        expect_line(fds[i], "ready");
    }
    wait_blocked(ch, 3, 0);
    dragon_channel_t *sender_side = NULL;
    {
        unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
        size_t len = 0;
        OK(dragon_channel_serialize(ch, d, sizeof d, &len));
        OK(dragon_channel_attach(d, len, NULL, &sender_side));
    }
    OK(dragon_channel_destroy(ch));
    char want[32];
    snprintf(want, sizeof want, "status %d", DRAGON_CLOSED);
    for (int i = 0; i < 3; ++i) {
        expect_line(fds[i], want);
        reap(pids[i]);
        close(fds[i]);
    }
    /* Other handles see it closed. */
    assert_int_equal(dragon_channel_send(sender_side, "x", 1, 0), DRAGON_CLOSED);
    OK(dragon_channel_detach(sender_side));

    /* A sender blocked forever on a full channel: destroy wakes it too. */
    ch = make_channel(pool, 1, 16);
    hex_of(ch, hex);
    send_u64(ch, 1);
    pid = spawn(&fd, NULL, "send", hex, "10", "1", NULL, NULL);
    expect_line(fd, "ready");
    wait_blocked(ch, 0, 1);
    OK(dragon_channel_destroy(ch));
    expect_line(fd, want);
    reap(pid);
    close(fd);
    assert_int_equal(live_allocations(pool), 0);
    OK(dragon_pool_destroy(pool));
}

static void test_wait_modes(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("modes", 1 << 20);
    dragon_channel_t *ch = make_channel(pool, 4, 16);
    char hex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(ch, hex);
    /* idle: asleep in the kernel at once; adaptive: asleep after its short spin. */
    const char *sleepers[2] = {"idle", "adaptive"};
    for (int i = 0; i < 2; ++i) {
        int fd = -1;
        pid_t pid = spawn(&fd, NULL, "recv", hex, "-1", sleepers[i], NULL, NULL);
        expect_line(fd, "ready");
        wait_blocked(ch, 1, 0);
        assert_true(tu_wait_sleeping(pid, 30000));
        send_u64(ch, 7);
        expect_line(fd, "got 8 7");
        reap(pid);
        close(fd);
    }
    /* spin: still works (it never sleeps; the test does not wait for a state). */
    int fd = -1;
    pid_t pid = spawn(&fd, NULL, "recv", hex, "30000", "spin", NULL, NULL);
    expect_line(fd, "ready");
    wait_blocked(ch, 1, 0);
    send_u64(ch, 8);
    expect_line(fd, "got 8 8");
    reap(pid);
    close(fd);
    /* A handle's mode can change, back to the process's default too. */
    OK(dragon_channel_set_wait_mode(ch, DRAGON_WAIT_IDLE));
    OK(dragon_channel_set_wait_mode(ch, DRAGON_WAIT_DEFAULT));
    assert_int_equal(dragon_channel_set_wait_mode(ch, (dragon_wait_mode_t)9),
                     DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "wait mode 9"));
    /* DRAGON_WAIT_DEFAULT is 0: zeroed attributes mean the process's default. */
    dragon_channel_attr_t init;
    OK(dragon_channel_attr_init(&init));
    assert_int_equal(init.wait_mode, DRAGON_WAIT_DEFAULT);
    dragon_channel_attr_t zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    zeroed.struct_size = sizeof zeroed;
    unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_channel_serialize(ch, d, sizeof d, &len));
    dragon_channel_t *again = NULL;
    OK(dragon_channel_attach(d, len, &zeroed, &again));
    OK(dragon_channel_detach(again));
    OK(dragon_channel_destroy(ch));
    OK(dragon_pool_destroy(pool));
}

/* ---- channel sets ------------------------------------------------------------------- */

static void test_channel_sets(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("sets", 1 << 20);
    dragon_channel_t *chs[3];
    char hex[3][2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    for (int i = 0; i < 3; ++i) {
        chs[i] = make_channel(pool, 1, 16);
        hex_of(chs[i], hex[i]);
    }
    uint32_t rev[3];
    assert_int_equal(dragon_channel_poll(chs, 3, DRAGON_CHANNEL_READABLE, rev, 0), DRAGON_TIMEOUT);
    assert_int_equal(dragon_channel_poll(chs, 3, DRAGON_CHANNEL_READABLE, rev, 20 * MS),
                     DRAGON_TIMEOUT);
    send_u64(chs[1], 5);
    OK(dragon_channel_poll(chs, 3, DRAGON_CHANNEL_READABLE, rev, 0));
    assert_int_equal(rev[0], 0);
    assert_int_equal(rev[1], DRAGON_CHANNEL_READABLE);
    assert_int_equal(rev[2], 0);
    /* Writable: channel 1 is full (capacity 1), the others are not. */
    OK(dragon_channel_poll(chs, 3, DRAGON_CHANNEL_WRITABLE, rev, 0));
    assert_int_equal(rev[0], DRAGON_CHANNEL_WRITABLE);
    assert_int_equal(rev[1], 0);
    assert_int_equal(rev[2], DRAGON_CHANNEL_WRITABLE);
    assert_int_equal(dragon_channel_poll(&chs[1], 1, DRAGON_CHANNEL_WRITABLE, rev, 10 * MS),
                     DRAGON_TIMEOUT);
    assert_int_equal(recv_u64(chs[1], 0), 5);

    /* Another process asleep on all three wakes when one of them gets a message. */
    for (int target = 0; target < 3; ++target) {
        int fd = -1;
        pid_t pid = spawn(&fd, NULL, "poll", hex[0], hex[1], hex[2], "30000", NULL);
        expect_line(fd, "ready");
        for (int k = 0; k < 3; ++k) {
            wait_blocked(chs[k], 1, 0);
        }
        send_u64(chs[target], 1);
        char want[32];
        snprintf(want, sizeof want, "ready %d %u", target, DRAGON_CHANNEL_READABLE);
        expect_line(fd, want);
        reap(pid);
        close(fd);
        assert_int_equal(recv_u64(chs[target], 0), 1);
    }
    /* A destroyed channel in the set is reported, not waited on. */
    int fd = -1;
    pid_t pid = spawn(&fd, NULL, "poll", hex[0], hex[1], hex[2], "-1", NULL);
    expect_line(fd, "ready");
    wait_blocked(chs[2], 1, 0);
    OK(dragon_channel_destroy(chs[2]));
    char want[32];
    snprintf(want, sizeof want, "ready 2 %u", DRAGON_CHANNEL_CLOSED);
    expect_line(fd, want);
    reap(pid);
    close(fd);
    assert_int_equal(dragon_channel_poll(chs, 0, DRAGON_CHANNEL_READABLE, rev, 0),
                     DRAGON_INVALID_ARGUMENT);
    OK(dragon_channel_destroy(chs[0]));
    OK(dragon_channel_destroy(chs[1]));
    assert_int_equal(live_allocations(pool), 0);
    OK(dragon_pool_destroy(pool));
}

/* ---- multi-process stress ------------------------------------------------------------ */

static void stress(int nprod, int ncons, uint64_t per, const char *mode) {
    dragon_pool_t *pool = make_pool("stress", 64 << 20);
    dragon_channel_t *ch = make_channel(pool, 256, 64);
    char hex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(ch, hex);
    size_t bitmap_bytes = ((size_t)nprod * per + 63) / 64 * 8;
    void *bitmap = NULL;
    OK(dragon_pool_alloc(pool, bitmap_bytes, &bitmap));
    memset(bitmap, 0, bitmap_bytes);
    unsigned char md[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t mlen = 0;
    OK(dragon_pool_mem_serialize(pool, bitmap, bitmap_bytes, md, sizeof md, &mlen));
    char mhex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    tu_to_hex(md, mlen, mhex);

    char per_s[32], nprod_s[16], id_s[16];
    snprintf(per_s, sizeof per_s, "%llu", (unsigned long long)per);
    snprintf(nprod_s, sizeof nprod_s, "%d", nprod);
    int cfd[4], pfd[4];
    pid_t cons[4], prod[4];
    for (int c = 0; c < ncons; ++c) {
        cons[c] = spawn(&cfd[c], NULL, "consume", hex, mhex, nprod_s, per_s, mode);
    }
    for (int p = 0; p < nprod; ++p) {
        snprintf(id_s, sizeof id_s, "%d", p);
        prod[p] = spawn(&pfd[p], NULL, "produce", hex, id_s, per_s, mode, NULL);
    }
    for (int p = 0; p < nprod; ++p) {
        expect_line(pfd[p], "ok");
        reap(prod[p]);
        close(pfd[p]);
    }
    /* Every producer is done: the stops queue behind all data (FIFO). */
    struct {
        uint32_t producer, pad;
        uint64_t seq;
    } stop = {0xFFFFFFFFu, 0, 0};
    for (int c = 0; c < ncons; ++c) {
        OK(dragon_channel_send(ch, &stop, sizeof stop, 30000 * MS));
    }
    uint64_t total = 0;
    for (int c = 0; c < ncons; ++c) {
        char line[128];
        assert_true(tu_read_line(cfd[c], line, sizeof line, 60000) >= 0);
        unsigned long long got = 0;
        if (sscanf(line, "ok %llu", &got) != 1) {
            fail_msg("consumer %d: %s", c, line);
        }
        total += got;
        reap(cons[c]);
        close(cfd[c]);
    }
    assert_int_equal(total, (uint64_t)nprod * per);
    const uint64_t *bits = bitmap;
    for (uint64_t b = 0; b < (uint64_t)nprod * per; ++b) {
        if ((bits[b / 64] & (1ULL << (b % 64))) == 0) {
            fail_msg("message %llu never arrived", (unsigned long long)b);
        }
    }
    assert_int_equal(info_of(ch).count, 0);
    OK(dragon_pool_free(pool, bitmap));
    OK(dragon_channel_destroy(ch));
    assert_int_equal(live_allocations(pool), 0); /* every zero-copy message freed once */
    OK(dragon_pool_destroy(pool));
}

static uint64_t scaled(uint64_t n) {
    const char *s = getenv("DRAGON_TEST_SCALE");
    double f = s != NULL ? atof(s) : 1.0;
    uint64_t v = (uint64_t)((double)n * (f > 0 ? f : 1.0));
    return v > 0 ? v : 1;
}

static void test_stress_1_1(void **state) {
    (void)state;
    stress(1, 1, scaled(1000000), "adaptive");
}
static void test_stress_2_2(void **state) {
    (void)state;
    stress(2, 2, scaled(500000), "adaptive");
}
static void test_stress_4_1(void **state) {
    (void)state;
    stress(4, 1, scaled(150000), "idle");
}
static void test_stress_1_4(void **state) {
    (void)state;
    stress(1, 4, scaled(600000), "adaptive");
}
static void test_stress_4_4(void **state) {
    (void)state;
    stress(4, 4, scaled(250000), "adaptive");
}

/* ---- processes killed mid-call ----------------------------------------------------- */

static void test_killed_mid_send(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("killsend", 1 << 20);
    dragon_channel_t *ch = make_channel(pool, 8, 16);
    char hex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(ch, hex);
    /* A receiver already blocked on the channel (it must not stay wedged). */
    int rfd = -1;
    pid_t receiver = spawn(&rfd, NULL, "recv", hex, "60000", "idle", NULL, NULL);
    expect_line(rfd, "ready");
    wait_blocked(ch, 1, 0);
    /* The sender dies after claiming the slot of its 1st message, before filling it. */
    int fd = -1;
    pid_t pid = spawn(&fd, "DRAGON_TEST_CRASH_AT=send:1", "send", hex, "100", "3", NULL, NULL);
    expect_line(fd, "ready");
    int status = tu_wait(pid, 30000);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fd);
    /* A live sender's message gets through to the blocked receiver: the dead claim is
     * skipped (its message is lost, as docs/channel.md says). */
    send_u64(ch, 555);
    expect_line(rfd, "got 8 555");
    reap(receiver);
    close(rfd);
    send_u64(ch, 556);
    assert_int_equal(recv_u64(ch, 0), 556);
    assert_int_equal(info_of(ch).count, 0);
    /* Full laps still work. */
    for (uint64_t i = 0; i < 20; ++i) {
        send_u64(ch, i);
        assert_int_equal(recv_u64(ch, 0), i);
    }
    OK(dragon_channel_destroy(ch));
    OK(dragon_pool_destroy(pool));
}

static void test_killed_mid_recv(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("killrecv", 1 << 20);
    dragon_channel_t *ch = make_channel(pool, 4, 16);
    char hex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(ch, hex);
    for (uint64_t i = 0; i < 4; ++i) {
        send_u64(ch, i);
    }
    /* The receiver dies after claiming message 0, before releasing its slot. */
    int fd = -1;
    pid_t pid =
        spawn(&fd, "DRAGON_TEST_CRASH_AT=recv:1", "recv", hex, "1000", "adaptive", NULL, NULL);
    int status = tu_wait(pid, 30000);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fd);
    /* Message 0 is lost with its receiver; 1..3 are intact. */
    for (uint64_t i = 1; i < 4; ++i) {
        assert_int_equal(recv_u64(ch, 0), i);
    }
    /* The dead reader's slot is reclaimed when a sender laps round to it. */
    for (uint64_t i = 4; i < 8; ++i) {
        OK(dragon_channel_send(ch, &i, sizeof i, 5000 * MS));
    }
    for (uint64_t i = 4; i < 8; ++i) {
        assert_int_equal(recv_u64(ch, 0), i);
    }
    OK(dragon_channel_destroy(ch));
    OK(dragon_pool_destroy(pool));
}

/* Shared memory scribbled on by a buggy or hostile process: a clear status, never a hang or a
 * read outside the pool. Offsets from docs/channel.md (slots at 448, meta at +8, payload at
 * +16); the object descriptor embeds the channel's memory descriptor at byte 16. */
static void test_corrupted_slot(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("corrupt", 1 << 20);
    dragon_channel_t *ch = make_channel(pool, 4, 64);
    unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_channel_serialize(ch, d, sizeof d, &len));
    void *base = NULL;
    size_t size = 0;
    OK(dragon_pool_mem_attach(pool, d + 16, len - 16, &base, &size));
    unsigned char *slot0 = (unsigned char *)base + 448;
    uint64_t meta = 0;

    send_u64(ch, 1);
    meta = 1000; /* longer than the 64-byte slot */
    memcpy(slot0 + 8, &meta, sizeof meta);
    unsigned char buf[2048];
    size_t n = 0;
    assert_int_equal(dragon_channel_recv(ch, buf, sizeof buf, &n, 1000 * MS), DRAGON_CORRUPTED);
    meta = 8;
    memcpy(slot0 + 8, &meta, sizeof meta);
    assert_int_equal(recv_u64(ch, 0), 1);

    /* A zero-copy message naming memory outside the pool: dropped, reported. */
    unsigned char *slot1 = slot0 + 128;
    send_u64(ch, 2);
    meta = (1ULL << 63) | 16;
    uint64_t off = 1ULL << 40;
    memcpy(slot1 + 8, &meta, sizeof meta);
    memcpy(slot1 + 16, &off, sizeof off);
    assert_int_equal(dragon_channel_recv(ch, buf, sizeof buf, &n, 0), DRAGON_CORRUPTED);
    send_u64(ch, 3);
    assert_int_equal(recv_u64(ch, 0), 3);
    OK(dragon_channel_destroy(ch));
    OK(dragon_pool_destroy(pool));
}

/* ---- what dead processes leave: dragon_pool_reclaim --------------------------------- */

static dragon_pool_stats_t pool_stats(dragon_pool_t *pool) {
    dragon_pool_stats_t s = {.struct_size = sizeof s};
    OK(dragon_pool_stats(pool, &s));
    return s;
}

static dragon_pool_reclaimed_t reclaim(dragon_pool_t *pool, pid_t pid) {
    dragon_pool_reclaimed_t r = {.struct_size = sizeof r};
    OK(dragon_pool_reclaim(pool, pid, &r));
    return r;
}

/* Start the helper with a role, held by a pidfd; its stdout is c->out. */
static void start(tu_child *c, const char *env, const char *a0, const char *a1, const char *a2,
                  const char *a3, const char *a4) {
    char *argv[] = {(char *)helper, (char *)a0, (char *)a1, (char *)a2,
                    (char *)a3,     (char *)a4, NULL};
    assert_int_equal(tu_child_spawn(c, argv, env), 0);
}

static void kill_and_reap(tu_child *c) {
    assert_int_equal(tu_child_kill(c, SIGKILL), 0);
    int status = tu_child_wait(c, 30000);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* A helper that SIGKILLs itself at a crash point. */
static pid_t run_to_crash(const char *env, const char *a0, const char *a1, const char *a2,
                          const char *a3) {
    tu_child c;
    start(&c, env, a0, a1, a2, a3, NULL);
    pid_t pid = c.pid;
    int status = tu_child_wait(&c, 30000);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    return pid;
}

static void send_pattern_mem(dragon_channel_t *ch, dragon_pool_t *pool, size_t size, int first) {
    unsigned char *p = NULL;
    OK(dragon_pool_alloc(pool, size, (void **)&p));
    for (size_t j = 0; j < size; ++j) {
        p[j] = (unsigned char)(first + (int)j);
    }
    OK(dragon_channel_send_mem(ch, p, size, 0));
}

static void recv_pattern(dragon_channel_t *ch, size_t size, int first) {
    unsigned char buf[4096];
    size_t n = 0;
    OK(dragon_channel_recv(ch, buf, sizeof buf, &n, 5000 * MS));
    assert_int_equal(n, size);
    for (size_t j = 0; j < size; ++j) {
        assert_int_equal(buf[j], (unsigned char)(first + (int)j));
    }
}

/* A zero-copy message belongs to its sender until it is queued, to the channel while queued
 * (whoever dies), and to its receiver once the receiver took it. Each hand-over point is
 * crossed by a process killed right there; reclaim then frees exactly what is lost. */
static void test_reclaim_zero_copy_handover(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("handover", 1 << 20);
    dragon_channel_t *ch = make_channel(pool, 4, 16);
    char hex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(ch, hex);
    uint64_t base = pool_stats(pool).free_bytes;

    /* A sender killed after publishing: its queued messages are the channel's. */
    tu_child c;
    start(&c, NULL, "send-zc", hex, "2", "1000", NULL);
    expect_line(c.out, "sent");
    pid_t sender = c.pid;
    kill_and_reap(&c);
    assert_true(pool_stats(pool).free_bytes < base);
    dragon_pool_reclaimed_t r = reclaim(pool, sender);
    assert_int_equal(r.blocks, 0);
    recv_pattern(ch, 1000, 0);
    recv_pattern(ch, 1000, 1);
    assert_int_equal(pool_stats(pool).free_bytes, base);

    /* Killed after its claim, and after filling the slot but before publishing: the message
     * is lost, and its memory the dead sender's. */
    const char *points[] = {"DRAGON_TEST_CRASH_AT=send:1", "DRAGON_TEST_CRASH_AT=publish:1"};
    for (int i = 0; i < 2; ++i) {
        sender = run_to_crash(points[i], "send-zc", hex, "1", "1000");
        r = reclaim(pool, sender);
        assert_int_equal(r.blocks, 1);
        assert_int_equal(r.bytes, 1024);
        size_t n = 0;
        uint64_t v = 0;
        assert_int_equal(dragon_channel_recv(ch, &v, sizeof v, &n, 0), DRAGON_TIMEOUT);
        assert_int_equal(pool_stats(pool).free_bytes, base);
    }

    /* A receiver killed after claiming the message: lost with it; its memory the receiver's. */
    send_pattern_mem(ch, pool, 1000, 7);
    pid_t receiver = run_to_crash("DRAGON_TEST_CRASH_AT=recv:1", "recv", hex, "10000", "adaptive");
    r = reclaim(pool, receiver);
    assert_int_equal(r.blocks, 1);
    assert_int_equal(pool_stats(pool).free_bytes, base);

    /* A receiver killed after taking the block but before claiming the slot: the message is
     * still queued (reclaim leaves it), and the next receiver takes it over. */
    send_pattern_mem(ch, pool, 1000, 9);
    receiver = run_to_crash("DRAGON_TEST_CRASH_AT=handover:1", "recv", hex, "10000", "adaptive");
    r = reclaim(pool, receiver);
    assert_int_equal(r.blocks, 0);
    recv_pattern(ch, 1000, 9);
    assert_int_equal(pool_stats(pool).free_bytes, base);
    assert_int_equal(info_of(ch).count, 0);

    OK(dragon_channel_destroy(ch));
    assert_int_equal(live_allocations(pool), 0);
    OK(dragon_pool_destroy(pool));
}

/* Callers killed while blocked leave their registrations behind (a stale blocked-sender
 * count, sleepers that every waker pays a system call for); reclaim takes them back. */
static void test_reclaim_stale_waiters(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("stale", 1 << 20);
    dragon_channel_t *full = make_channel(pool, 1, 16);
    dragon_channel_t *empty = make_channel(pool, 1, 16);
    dragon_semaphore_t *sem = NULL;
    OK(dragon_semaphore_create(pool, 0, 0, NULL, &sem));
    char fhex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1], ehex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    char shex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(full, fhex);
    hex_of(empty, ehex);
    {
        unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
        size_t len = 0;
        OK(dragon_semaphore_serialize(sem, d, sizeof d, &len));
        tu_to_hex(d, len, shex);
    }
    send_u64(full, 1);
    tu_child c[3];
    start(&c[0], NULL, "send", fhex, "10", "1", NULL);
    start(&c[1], NULL, "recv", ehex, "-1", "idle", NULL);
    start(&c[2], NULL, "sem", shex, "-1", NULL, NULL);
    for (int i = 0; i < 3; ++i) {
        expect_line(c[i].out, "ready");
    }
    wait_blocked(full, 0, 1);
    wait_blocked(empty, 1, 0);
    assert_true(tu_wait_sleeping(c[2].pid, 30000));

    /* Only what dead processes left can be reclaimed. */
    dragon_pool_reclaimed_t r = {.struct_size = sizeof r};
    assert_int_equal(dragon_pool_reclaim(pool, c[0].pid, &r), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "alive"));
    assert_int_equal(dragon_pool_reclaim(pool, getpid(), &r), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_reclaim(pool, -1, &r), DRAGON_INVALID_ARGUMENT);

    for (int i = 0; i < 3; ++i) {
        kill_and_reap(&c[i]);
    }
    assert_int_equal(info_of(full).blocked_senders, 1); /* stale until repaired */
    assert_int_equal(info_of(empty).blocked_receivers, 1);
    r = reclaim(pool, 0);
    assert_int_equal(r.waiters, 3);
    assert_int_equal(r.blocks, 0);
    assert_int_equal(info_of(full).blocked_senders, 0);
    assert_int_equal(info_of(empty).blocked_receivers, 0);
    assert_int_equal(reclaim(pool, 0).waiters, 0);

    assert_int_equal(recv_u64(full, 0), 1);
    OK(dragon_semaphore_destroy(sem));
    OK(dragon_channel_destroy(full));
    OK(dragon_channel_destroy(empty));
    assert_int_equal(live_allocations(pool), 0);
    OK(dragon_pool_destroy(pool));
}

static uint64_t test_rng;
static uint64_t test_rnd(void) {
    return tu_xorshift(&test_rng);
}

/* The pair the next test kills: a producer of small, large (copied) and large zero-copy
 * messages, and a consumer that receives by copy and zero-copy and checks each. */
static void start_pair_member(tu_child *c, int consumer, const char *hex, const char *ctrl) {
    start(c, NULL, consumer ? "zc-consume" : "zc-produce", hex, ctrl, NULL, NULL);
    expect_line(c->out, "ready");
}

static void test_reclaim_after_50_kills(void **state) {
    (void)state;
    enum { kKills = 50 };
    dragon_pool_t *pool = make_pool("kills", 8 << 20);
    dragon_channel_t *ch = make_channel(pool, 32, 64);
    char hex[2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1];
    hex_of(ch, hex);
    zs_ctrl *ctrl = NULL;
    OK(dragon_pool_alloc(pool, sizeof *ctrl, (void **)&ctrl));
    memset(ctrl, 0, sizeof *ctrl);
    unsigned char md[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t mlen = 0;
    OK(dragon_pool_mem_serialize(pool, ctrl, sizeof *ctrl, md, sizeof md, &mlen));
    char chex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    tu_to_hex(md, mlen, chex);
    dragon_pool_stats_t base = pool_stats(pool);

    test_rng = (uint64_t)getpid() * 2654435761ULL + 1;
    tu_child pair[2];
    start_pair_member(&pair[0], 0, hex, chex);
    start_pair_member(&pair[1], 1, hex, chex);
    int kills[2] = {0, 0};
    dragon_pool_reclaimed_t reclaimed = {.struct_size = sizeof reclaimed};
    for (int k = 0; k < kKills; ++k) {
        /* Let the pair get a random way further, then strike at a random moment. */
        uint64_t target = atomic_load(&ctrl->received) + 1 + test_rnd() % 200;
        int64_t end = tu_now_ms() + 20000;
        while (atomic_load(&ctrl->received) < target) {
            if (tu_now_ms() > end || atomic_load(&ctrl->errors) != 0) {
                fail_msg("no progress after kill %d (%llu received, %llu bad)", k,
                         (unsigned long long)atomic_load(&ctrl->received),
                         (unsigned long long)atomic_load(&ctrl->errors));
            }
            sched_yield();
        }
        for (volatile uint64_t spin = test_rnd() % 100000; spin > 0; --spin) {
        }
        int victim = (int)(test_rnd() & 1);
        pid_t dead = pair[victim].pid;
        kill_and_reap(&pair[victim]);
        kills[victim]++;
        /* While its partner runs on: what the victim held goes back, what it sent stays. */
        dragon_pool_reclaimed_t got = reclaim(pool, dead);
        reclaimed.blocks += got.blocks;
        reclaimed.bytes += got.bytes;
        reclaimed.waiters += got.waiters;
        start_pair_member(&pair[victim], victim, hex, chex);
    }
    /* Stop: the producer leaves its loop; then a stop message queues behind all data. */
    atomic_store(&ctrl->stop, 1);
    int status = tu_child_wait(&pair[0], 30000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    zs_head stop = {ZS_STOP, sizeof stop, ZS_MAGIC};
    OK(dragon_channel_send(ch, &stop, sizeof stop, 30000 * MS));
    status = tu_child_wait(&pair[1], 30000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Every message received was whole and arrived once; a kill loses at most the one
     * message its victim had in hand. */
    assert_int_equal(atomic_load(&ctrl->errors), 0);
    assert_int_equal(info_of(ch).count, 0);
    uint64_t seen = 0;
    for (size_t i = 0; i < ZS_MAX_MSGS / 64; ++i) {
        seen += (uint64_t)__builtin_popcountll(atomic_load(&ctrl->seen[i]));
    }
    uint64_t sent = atomic_load(&ctrl->next_seq);
    uint64_t received = atomic_load(&ctrl->received);
    assert_true(seen >= received && seen - received <= (uint64_t)kKills);
    assert_true(sent >= seen && sent - seen <= (uint64_t)kKills + 1);

    /* And the pool's free bytes are back where they started. */
    dragon_pool_reclaimed_t r = reclaim(pool, 0);
    dragon_pool_stats_t after = pool_stats(pool);
    print_message("%d kills (%d producer, %d consumer), %llu messages, %llu lost; reclaimed "
                  "%llu blocks (%llu bytes) and %llu waiters along the way, %llu blocks and "
                  "%llu waiters at the end\n",
                  kKills, kills[0], kills[1], (unsigned long long)seen,
                  (unsigned long long)(sent - seen), (unsigned long long)reclaimed.blocks,
                  (unsigned long long)reclaimed.bytes, (unsigned long long)reclaimed.waiters,
                  (unsigned long long)r.blocks, (unsigned long long)r.waiters);
    assert_int_equal(after.free_bytes, base.free_bytes);
    assert_int_equal(after.allocation_count, base.allocation_count);
    assert_int_equal(info_of(ch).blocked_senders, 0);
    assert_int_equal(info_of(ch).blocked_receivers, 0);

    OK(dragon_pool_free(pool, ctrl));
    OK(dragon_channel_destroy(ch));
    assert_int_equal(live_allocations(pool), 0);
    OK(dragon_pool_destroy(pool));
}

/* How often `needle` occurs in `hay`. */
static int occurrences(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        ++n;
    }
    return n;
}

/* An error that wraps another reads "<context>: <the inner message>", each part once
 * (issue 12, bug 1: the wrapping formatted into the buffer it read, and repeated itself). */
static void assert_wrapped(const char *context, const char *inner_word) {
    const char *msg = dragon_last_error();
    if (strncmp(msg, context, strlen(context)) != 0 || occurrences(msg, context) != 1 ||
        strstr(msg + strlen(context), inner_word) == NULL) {
        fail_msg("expected \"%s...%s...\" once, got: %s", context, inner_word, msg);
    }
}

static void test_wrapped_errors_read_once(void **state) {
    (void)state;
    uint8_t desc[DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t len = 0;
    dragon_channel_t *ch = NULL;

    /* Attaching a channel whose pool is gone names the pool (the registry's stale entry). */
    dragon_pool_t *gone = make_pool("wrapgone", 1 << 20);
    dragon_channel_t *c0 = make_channel(gone, 4, 64);
    OK(dragon_channel_serialize(c0, desc, sizeof desc, &len));
    OK(dragon_channel_detach(c0));
    OK(dragon_pool_destroy(gone));
    assert_int_not_equal(dragon_channel_attach(desc, len, NULL, &ch), DRAGON_SUCCESS);
    assert_wrapped("attach channel: ", "wrapgone");

    /* A damaged descriptor: its memory descriptor is named once. */
    dragon_pool_t *pool = make_pool("wrap", 1 << 20);
    dragon_channel_t *c1 = make_channel(pool, 4, 64);
    OK(dragon_channel_serialize(c1, desc, sizeof desc, &len));
    desc[len - 1] ^= 0xff;
    assert_int_not_equal(dragon_channel_attach(desc, len, NULL, &ch), DRAGON_SUCCESS);
    const char *msg = dragon_last_error();
    if (occurrences(msg, "object descriptor: ") > 1 || occurrences(msg, "memory descriptor") > 1 ||
        occurrences(msg, "attach channel: ") > 1 || strlen(msg) < 20) {
        fail_msg("a damaged descriptor's message repeats itself: %s", msg);
    }

    /* A channel too large for its pool: the pool's own words follow the context. */
    assert_int_not_equal(dragon_channel_create(pool, 256, 8192, NULL, &ch), DRAGON_SUCCESS);
    assert_wrapped("create channel: ", "'wrap'");

    /* send_mem of memory that is not the pool's. */
    char *outside = malloc(64);
    assert_int_not_equal(dragon_channel_send_mem(c1, outside, 64, 0), DRAGON_SUCCESS);
    assert_wrapped("dragon_channel_send_mem: the memory must be a live allocation of the "
                   "channel's pool: ",
                   "pool");
    free(outside);

    /* A full pool: a large message cannot be stored, and a small queued one cannot be handed
     * over as an allocation (it stays queued). */
    OK(dragon_channel_send(c1, "ten bytes", 10, 0));
    void *fill[4096];
    size_t nfill = 0;
    while (nfill < 4096 && dragon_pool_alloc(pool, 256, &fill[nfill]) == DRAGON_SUCCESS) {
        ++nfill;
    }
    assert_true(nfill < 4096);
    char big[1000] = {0};
    assert_int_equal(dragon_channel_send(c1, big, sizeof big, 0), DRAGON_NO_SPACE);
    assert_wrapped("send: no room in the pool for a 1000-byte message: ", "pool");
    void *got = NULL;
    size_t n = 0;
    assert_int_equal(dragon_channel_recv_mem(c1, &got, &n, 0), DRAGON_NO_SPACE);
    assert_wrapped("channel: no room in the pool to hand over a 10-byte message (it stays "
                   "queued): ",
                   "pool");
    for (size_t i = 0; i < nfill; ++i) {
        OK(dragon_pool_free(pool, fill[i]));
    }
    OK(dragon_channel_recv_mem(c1, &got, &n, 0));
    assert_int_equal(n, 10);
    assert_memory_equal(got, "ten bytes", 10);
    OK(dragon_pool_free(pool, got));
    OK(dragon_channel_destroy(c1));
    OK(dragon_pool_destroy(pool));
}

static void test_nothing_left_in_dev_shm(void **state) {
    (void)state;
    assert_int_equal(tu_count_leftovers(runtime_id), 0);
}

int main(void) {
    snprintf(runtime_id, sizeof runtime_id, "tchan%d", (int)getpid());
    setenv("DRAGON_RUNTIME_ID", runtime_id, 1);
    unsetenv("DRAGON_NODE_ID");
    helper = getenv("DRAGON_CHANNEL_HELPER");
    if (helper == NULL) {
        fprintf(stderr, "set DRAGON_CHANNEL_HELPER to the channel-helper executable\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_fifo_capacity_and_timeouts),
        cmocka_unit_test(test_zero_copy_ownership),
        cmocka_unit_test(test_forever_then_destroy),
        cmocka_unit_test(test_wait_modes),
        cmocka_unit_test(test_channel_sets),
        cmocka_unit_test(test_stress_1_1),
        cmocka_unit_test(test_stress_2_2),
        cmocka_unit_test(test_stress_4_1),
        cmocka_unit_test(test_stress_1_4),
        cmocka_unit_test(test_stress_4_4),
        cmocka_unit_test(test_killed_mid_send),
        cmocka_unit_test(test_killed_mid_recv),
        cmocka_unit_test(test_corrupted_slot),
        cmocka_unit_test(test_reclaim_zero_copy_handover),
        cmocka_unit_test(test_reclaim_stale_waiters),
        cmocka_unit_test(test_reclaim_after_50_kills),
        cmocka_unit_test(test_wrapped_errors_read_once),
        cmocka_unit_test(test_nothing_left_in_dev_shm),
    };
    return cmocka_run_group_tests_name("channel", tests, NULL, NULL);
}
