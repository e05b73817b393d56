/* Sync objects through the C ABI, between processes: Lock (owner death, timeouts,
 * recursion), Semaphore (bounded), Event, Barrier (abort, broken by timeout, reset), Queue
 * (maxsize, task_done/join), and destroy waking waiters. */
#include "test_util.h"

#include <dragon/dragon.h>

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static char runtime_id[32];
static const char *helper;

#define OK(call) assert_int_equal((call), DRAGON_SUCCESS)
#define MS 1000000LL
#define HEX_MAX (2 * DRAGON_OBJECT_DESCRIPTOR_MAX + 1)

static dragon_pool_t *pool;

static pid_t spawn(int *fd, const char *a0, const char *a1, const char *a2, const char *a3) {
    char *argv[] = {(char *)helper, (char *)a0, (char *)a1, (char *)a2, (char *)a3, NULL};
    pid_t pid = tu_spawn(argv, fd, NULL);
    assert_true(pid > 0);
    return pid;
}

static void expect_line(int fd, const char *want) {
    char line[256];
    assert_true(tu_read_line(fd, line, sizeof line, 30000) >= 0);
    assert_string_equal(line, want);
}

static void expect_status(int fd, dragon_status_t st) {
    char want[32];
    snprintf(want, sizeof want, "status %d", st);
    expect_line(fd, want);
}

static void reap(pid_t pid) {
    int status = tu_wait(pid, 30000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define HEX(fn, obj, hex)                                                                          \
    do {                                                                                           \
        unsigned char d_[DRAGON_OBJECT_DESCRIPTOR_MAX];                                            \
        size_t l_ = 0;                                                                             \
        OK(fn((obj), d_, sizeof d_, &l_));                                                         \
        tu_to_hex(d_, l_, (hex));                                                                  \
    } while (0)

static uint64_t live_allocations(void) {
    dragon_pool_stats_t s = {.struct_size = sizeof s};
    OK(dragon_pool_stats(pool, &s));
    return s.allocation_count;
}

/* ---- Lock ---------------------------------------------------------------------------- */

static void *release_from_thread(void *arg) {
    return (void *)(intptr_t)dragon_lock_release((dragon_lock_t *)arg);
}

static void test_lock(void **state) {
    (void)state;
    dragon_lock_t *lock = NULL;
    OK(dragon_lock_create(pool, 0, NULL, &lock));
    char hex[HEX_MAX];
    HEX(dragon_lock_serialize, lock, hex);
    int locked = -1;
    OK(dragon_lock_locked(lock, &locked));
    assert_int_equal(locked, 0);
    assert_int_equal(dragon_lock_release(lock), DRAGON_INVALID_ARGUMENT);
    OK(dragon_lock_acquire(lock, 0));
    assert_int_equal(dragon_lock_acquire(lock, 0), DRAGON_TIMEOUT); /* not recursive */
    int64_t t0 = tu_now_ms();
    assert_int_equal(dragon_lock_acquire(lock, 30 * MS), DRAGON_TIMEOUT);
    assert_true(tu_now_ms() - t0 >= 30);

    /* Another process times out, then gets it once we release. */
    int fd = -1;
    pid_t pid = spawn(&fd, "lock", hex, "ACQUIRE", "10");
    expect_status(fd, DRAGON_TIMEOUT);
    reap(pid);
    close(fd);
    pid = spawn(&fd, "lock", hex, "ACQUIRE", "-1");
    assert_true(tu_wait_sleeping(pid, 30000));
    OK(dragon_lock_release(lock));
    expect_status(fd, DRAGON_SUCCESS);
    reap(pid);
    close(fd);

    /* Like multiprocessing.Lock, another thread may release it. */
    OK(dragon_lock_acquire(lock, 0));
    pthread_t t;
    void *rc = NULL;
    pthread_create(&t, NULL, release_from_thread, lock);
    pthread_join(t, &rc);
    assert_int_equal((intptr_t)rc, DRAGON_SUCCESS);

    /* The holder dies: the next acquirer (already waiting, or later) learns it. */
    pid = spawn(&fd, "lock", hex, "HOLD", "-1");
    expect_status(fd, DRAGON_SUCCESS);
    int wfd = -1;
    pid_t waiter = spawn(&wfd, "lock", hex, "ACQUIRE", "-1");
    assert_true(tu_wait_sleeping(waiter, 30000));
    kill(pid, SIGKILL);
    tu_wait(pid, 30000);
    close(fd);
    expect_status(wfd, DRAGON_OWNER_DIED);
    reap(waiter);
    close(wfd);
    OK(dragon_lock_acquire(lock, 0)); /* the waiter released it normally */
    OK(dragon_lock_release(lock));

    pid = spawn(&fd, "lock", hex, "HOLD", "-1");
    expect_status(fd, DRAGON_SUCCESS);
    kill(pid, SIGKILL);
    tu_wait(pid, 30000);
    close(fd);
    assert_int_equal(dragon_lock_acquire(lock, 0), DRAGON_OWNER_DIED);
    OK(dragon_lock_release(lock));
    OK(dragon_lock_destroy(lock));
}

static void test_recursive_lock(void **state) {
    (void)state;
    dragon_lock_t *lock = NULL;
    OK(dragon_lock_create(pool, 1, NULL, &lock));
    char hex[HEX_MAX];
    HEX(dragon_lock_serialize, lock, hex);
    OK(dragon_lock_acquire(lock, 0));
    OK(dragon_lock_acquire(lock, 0));
    OK(dragon_lock_acquire(lock, 0));
    pthread_t t;
    void *rc = NULL;
    pthread_create(&t, NULL, release_from_thread, lock);
    pthread_join(t, &rc);
    assert_int_equal((intptr_t)rc, DRAGON_INVALID_ARGUMENT); /* only the holder releases */
    OK(dragon_lock_release(lock));
    OK(dragon_lock_release(lock));
    int fd = -1;
    pid_t pid = spawn(&fd, "lock", hex, "ACQUIRE", "10");
    expect_status(fd, DRAGON_TIMEOUT); /* still held once */
    reap(pid);
    close(fd);
    OK(dragon_lock_release(lock));
    assert_int_equal(dragon_lock_release(lock), DRAGON_INVALID_ARGUMENT);
    pid = spawn(&fd, "lock", hex, "ACQUIRE", "1000");
    expect_status(fd, DRAGON_SUCCESS);
    reap(pid);
    close(fd);
    OK(dragon_lock_destroy(lock));
}

/* ---- Semaphore, Event ------------------------------------------------------------------ */

static void test_semaphore(void **state) {
    (void)state;
    dragon_semaphore_t *sem = NULL;
    OK(dragon_semaphore_create(pool, 2, 1, NULL, &sem));
    char hex[HEX_MAX];
    HEX(dragon_semaphore_serialize, sem, hex);
    assert_int_equal(dragon_semaphore_release(sem), DRAGON_INVALID_ARGUMENT); /* bounded */
    OK(dragon_semaphore_acquire(sem, 0));
    OK(dragon_semaphore_acquire(sem, 0));
    assert_int_equal(dragon_semaphore_acquire(sem, 0), DRAGON_TIMEOUT);
    uint32_t v = 9;
    OK(dragon_semaphore_value(sem, &v));
    assert_int_equal(v, 0);
    int fd = -1;
    pid_t pid = spawn(&fd, "sem", hex, "-1", NULL);
    expect_line(fd, "ready");
    assert_true(tu_wait_sleeping(pid, 30000));
    OK(dragon_semaphore_release(sem));
    expect_status(fd, DRAGON_SUCCESS);
    reap(pid);
    close(fd);
    OK(dragon_semaphore_release(sem));
    OK(dragon_semaphore_release(sem));
    assert_int_equal(dragon_semaphore_release(sem), DRAGON_INVALID_ARGUMENT);
    OK(dragon_semaphore_destroy(sem));

    /* Unbounded: releases beyond the initial value are fine. */
    OK(dragon_semaphore_create(pool, 0, 0, NULL, &sem));
    for (int i = 0; i < 5; ++i) {
        OK(dragon_semaphore_release(sem));
    }
    OK(dragon_semaphore_value(sem, &v));
    assert_int_equal(v, 5);
    OK(dragon_semaphore_destroy(sem));
}

static void test_event(void **state) {
    (void)state;
    dragon_event_t *ev = NULL;
    OK(dragon_event_create(pool, NULL, &ev));
    char hex[HEX_MAX];
    HEX(dragon_event_serialize, ev, hex);
    int set = -1;
    OK(dragon_event_is_set(ev, &set));
    assert_int_equal(set, 0);
    assert_int_equal(dragon_event_wait(ev, 10 * MS), DRAGON_TIMEOUT);
    int fds[3];
    pid_t pids[3];
    for (int i = 0; i < 3; ++i) {
        pids[i] = spawn(&fds[i], "event", hex, "-1", NULL);
        expect_line(fds[i], "ready");
    }
    for (int i = 0; i < 3; ++i) {
        assert_true(tu_wait_sleeping(pids[i], 30000));
    }
    OK(dragon_event_set(ev));
    for (int i = 0; i < 3; ++i) {
        expect_status(fds[i], DRAGON_SUCCESS);
        reap(pids[i]);
        close(fds[i]);
    }
    OK(dragon_event_wait(ev, 0));
    OK(dragon_event_clear(ev));
    assert_int_equal(dragon_event_wait(ev, 0), DRAGON_TIMEOUT);

    /* Destroy wakes a waiter with DRAGON_CLOSED. */
    int fd = -1;
    pid_t pid = spawn(&fd, "event", hex, "-1", NULL);
    expect_line(fd, "ready");
    assert_true(tu_wait_sleeping(pid, 30000));
    OK(dragon_event_destroy(ev));
    expect_status(fd, DRAGON_CLOSED);
    reap(pid);
    close(fd);
}

/* ---- Barrier -------------------------------------------------------------------------- */

static void test_barrier(void **state) {
    (void)state;
    dragon_barrier_t *b = NULL;
    OK(dragon_barrier_create(pool, 3, NULL, &b));
    char hex[HEX_MAX];
    HEX(dragon_barrier_serialize, b, hex);
    for (int round = 0; round < 3; ++round) {
        int fds[2];
        pid_t pids[2];
        for (int i = 0; i < 2; ++i) {
            pids[i] = spawn(&fds[i], "barrier", hex, "30000", NULL);
            expect_line(fds[i], "ready");
        }
        uint32_t waiting = 0;
        int64_t end = tu_now_ms() + 30000;
        do {
            OK(dragon_barrier_info(b, NULL, &waiting, NULL));
            assert_true(tu_now_ms() < end);
        } while (waiting != 2);
        uint32_t index = 99;
        OK(dragon_barrier_wait(b, 30000 * MS, &index));
        assert_int_equal(index, 2); /* the last to arrive */
        int seen = 0;
        for (int i = 0; i < 2; ++i) {
            char line[64];
            assert_true(tu_read_line(fds[i], line, sizeof line, 30000) >= 0);
            int st = -1;
            unsigned idx = 99;
            assert_int_equal(sscanf(line, "status %d %u", &st, &idx), 2);
            assert_int_equal(st, DRAGON_SUCCESS);
            assert_true(idx < 2);
            seen |= 1 << idx;
            reap(pids[i]);
            close(fds[i]);
        }
        assert_int_equal(seen, 3); /* indices 0 and 1, one each */
    }

    /* A wait that times out breaks the barrier for everybody. */
    int fd = -1;
    pid_t pid = spawn(&fd, "barrier", hex, "-1", NULL);
    expect_line(fd, "ready");
    uint32_t waiting = 0;
    do {
        OK(dragon_barrier_info(b, NULL, &waiting, NULL));
    } while (waiting != 1);
    assert_int_equal(dragon_barrier_wait(b, 20 * MS, NULL), DRAGON_TIMEOUT);
    char want[32];
    snprintf(want, sizeof want, "status %d 0", DRAGON_BROKEN);
    expect_line(fd, want);
    reap(pid);
    close(fd);
    int broken = 0;
    OK(dragon_barrier_info(b, NULL, NULL, &broken));
    assert_int_equal(broken, 1);
    assert_int_equal(dragon_barrier_wait(b, 0, NULL), DRAGON_BROKEN);

    /* Reset mends it; abort breaks it again and wakes waiters. */
    OK(dragon_barrier_reset(b));
    OK(dragon_barrier_info(b, NULL, NULL, &broken));
    assert_int_equal(broken, 0);
    pid = spawn(&fd, "barrier", hex, "-1", NULL);
    expect_line(fd, "ready");
    do {
        OK(dragon_barrier_info(b, NULL, &waiting, NULL));
    } while (waiting != 1);
    OK(dragon_barrier_abort(b));
    expect_line(fd, want);
    reap(pid);
    close(fd);
    OK(dragon_barrier_reset(b));
    /* A waiter caught by a reset is told the round was broken. */
    pid = spawn(&fd, "barrier", hex, "-1", NULL);
    expect_line(fd, "ready");
    do {
        OK(dragon_barrier_info(b, NULL, &waiting, NULL));
    } while (waiting != 1);
    OK(dragon_barrier_reset(b));
    expect_line(fd, want);
    reap(pid);
    close(fd);
    assert_int_equal(dragon_barrier_create(pool, 0, NULL, &b), DRAGON_INVALID_ARGUMENT);
    OK(dragon_barrier_destroy(b));
}

/* ---- Queue ---------------------------------------------------------------------------- */

static void test_queue(void **state) {
    (void)state;
    dragon_queue_t *q = NULL;
    OK(dragon_queue_create(pool, 4, 0, NULL, &q));
    char hex[HEX_MAX];
    HEX(dragon_queue_serialize, q, hex);
    size_t size = 9, maxsize = 0;
    OK(dragon_queue_size(q, &size, &maxsize));
    assert_int_equal(size, 0);
    assert_int_equal(maxsize, 4);
    for (uint64_t i = 1; i <= 4; ++i) {
        OK(dragon_queue_put(q, &i, sizeof i, 0));
    }
    uint64_t v = 5;
    assert_int_equal(dragon_queue_put(q, &v, sizeof v, 10 * MS), DRAGON_TIMEOUT); /* full */
    assert_int_equal(dragon_queue_join(q, 10 * MS), DRAGON_TIMEOUT);
    size_t n = 0;
    for (uint64_t i = 1; i <= 4; ++i) {
        OK(dragon_queue_get(q, &v, sizeof v, &n, 0));
        assert_int_equal(v, i);
        OK(dragon_queue_task_done(q));
    }
    OK(dragon_queue_join(q, 0));
    assert_int_equal(dragon_queue_task_done(q), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_queue_get(q, &v, sizeof v, &n, 0), DRAGON_TIMEOUT);

    /* A queue descriptor is not a channel descriptor, and the other way round. */
    dragon_channel_t *ch = NULL;
    unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
    long len = tu_from_hex(hex, d, sizeof d);
    assert_int_equal(dragon_channel_attach(d, (size_t)len, NULL, &ch), DRAGON_INVALID_ARGUMENT);

    /* Workers in other processes: join returns once every item is done. */
    int fds[3];
    pid_t pids[3];
    for (int i = 0; i < 3; ++i) {
        pids[i] = spawn(&fds[i], "worker", hex, NULL, NULL);
    }
    uint64_t want = 0;
    for (uint64_t i = 1; i <= 3000; ++i) {
        OK(dragon_queue_put(q, &i, sizeof i, 30000 * MS));
        want += i;
    }
    for (int i = 0; i < 3; ++i) {
        OK(dragon_queue_put(q, NULL, 0, 30000 * MS)); /* one stop item per worker */
    }
    OK(dragon_queue_join(q, 60000 * MS));
    uint64_t total = 0;
    for (int i = 0; i < 3; ++i) {
        char line[64];
        assert_true(tu_read_line(fds[i], line, sizeof line, 30000) >= 0);
        unsigned long long s = 0;
        assert_int_equal(sscanf(line, "sum %llu", &s), 1);
        total += s;
        reap(pids[i]);
        close(fds[i]);
    }
    assert_int_equal(total, want);

    /* Items larger than a slot travel as pool allocations. */
    char big[5000];
    memset(big, 'q', sizeof big);
    OK(dragon_queue_put(q, big, sizeof big, 0));
    char out[5000];
    assert_int_equal(dragon_queue_get(q, out, 100, &n, 0), DRAGON_BUFFER_TOO_SMALL);
    assert_int_equal(n, sizeof big);
    OK(dragon_queue_get(q, out, sizeof out, &n, 0));
    assert_memory_equal(out, big, sizeof big);
    OK(dragon_queue_task_done(q));
    OK(dragon_queue_destroy(q));
}

/* Typed queues (issue 12, bug 2): fixed-size items, a type tag, and an attach of another
 * item type refused before anything is taken. */
static void test_typed_queue(void **state) {
    (void)state;
    dragon_queue_t *q = NULL;
    assert_int_equal(dragon_queue_create_typed(pool, 4, 0, 1, NULL, &q), DRAGON_INVALID_ARGUMENT);
    assert_null(q);
    OK(dragon_queue_create_typed(pool, 4, sizeof(uint32_t), 0xabc, NULL, &q));
    size_t fixed = 0;
    uint64_t tag = 0;
    OK(dragon_queue_item_type(q, &fixed, &tag));
    assert_int_equal(fixed, sizeof(uint32_t));
    assert_int_equal(tag, 0xabc);
    uint32_t v = 7;
    uint64_t wide = 8;
    OK(dragon_queue_put(q, &v, sizeof v, 0));
    assert_int_equal(dragon_queue_put(q, &wide, sizeof wide, 0), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "an item of 8 bytes in a queue of 4-byte items"));

    unsigned char d[DRAGON_OBJECT_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_queue_serialize(q, d, sizeof d, &len));
    dragon_queue_t *other = NULL;
    assert_int_equal(dragon_queue_attach_typed(d, len, sizeof(uint64_t), 0xabc, NULL, &other),
                     DRAGON_INVALID_ARGUMENT);
    assert_null(other);
    assert_non_null(strstr(dragon_last_error(), "its items have another size"));
    assert_int_equal(dragon_queue_attach_typed(d, len, sizeof(uint32_t), 0xdef, NULL, &other),
                     DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "its items are of another type"));
    OK(dragon_queue_attach_typed(d, len, sizeof(uint32_t), 0, NULL, &other)); /* untyped */
    OK(dragon_queue_detach(other));
    OK(dragon_queue_attach(d, len, NULL, &other)); /* plain attach: the put check still holds */
    assert_int_equal(dragon_queue_put(other, &wide, sizeof wide, 0), DRAGON_INVALID_ARGUMENT);
    size_t size = 0;
    OK(dragon_queue_size(other, &size, NULL));
    assert_int_equal(size, 1); /* the 7 is still there */
    uint32_t got = 0;
    size_t n = 0;
    OK(dragon_queue_get(other, &got, sizeof got, &n, 0));
    assert_int_equal(got, 7);
    OK(dragon_queue_task_done(other));
    OK(dragon_queue_detach(other));

    /* A queue of any-length items is not a typed one. */
    dragon_queue_t *any = NULL;
    OK(dragon_queue_create(pool, 4, 0, NULL, &any));
    OK(dragon_queue_item_type(any, &fixed, &tag));
    assert_int_equal(fixed, 0);
    assert_int_equal(tag, 0);
    OK(dragon_queue_serialize(any, d, sizeof d, &len));
    assert_int_equal(dragon_queue_attach_typed(d, len, 4, 0, NULL, &other),
                     DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "its items have any length"));
    OK(dragon_queue_destroy(any));
    OK(dragon_queue_destroy(q));
}

static void test_everything_freed(void **state) {
    (void)state;
    assert_int_equal(live_allocations(), 0);
    OK(dragon_pool_destroy(pool));
    assert_int_equal(tu_count_leftovers(runtime_id), 0);
}

int main(void) {
    snprintf(runtime_id, sizeof runtime_id, "tsync%d", (int)getpid());
    setenv("DRAGON_RUNTIME_ID", runtime_id, 1);
    unsetenv("DRAGON_NODE_ID");
    helper = getenv("DRAGON_CHANNEL_HELPER");
    if (helper == NULL) {
        fprintf(stderr, "set DRAGON_CHANNEL_HELPER to the channel-helper executable\n");
        return 2;
    }
    if (dragon_pool_create("sync", 16 << 20, NULL, &pool) != DRAGON_SUCCESS) {
        fprintf(stderr, "pool: %s\n", dragon_last_error());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock),        cmocka_unit_test(test_recursive_lock),
        cmocka_unit_test(test_semaphore),   cmocka_unit_test(test_event),
        cmocka_unit_test(test_barrier),     cmocka_unit_test(test_queue),
        cmocka_unit_test(test_typed_queue), cmocka_unit_test(test_everything_freed),
    };
    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
