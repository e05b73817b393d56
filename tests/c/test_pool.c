/* Pools through the C ABI: lifecycle, segment names and owners, allocation, descriptors, bad
 * input, several processes, and processes killed with SIGKILL in the middle of alloc/free.
 * Every test runs under a runtime id of its own (DRAGON_RUNTIME_ID=tpool<pid>) and the last
 * test checks that nothing of it is left in /dev/shm. */
#include "test_util.h"

#include <dragon/dragon.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

static char runtime_id[32];
static const char *helper_path;
static const char *cleanup_tool;

#define OK(call) assert_int_equal((call), DRAGON_SUCCESS)

static dragon_pool_t *make_pool(const char *name, size_t size) {
    dragon_pool_t *pool = NULL;
    OK(dragon_pool_create(name, size, NULL, &pool));
    assert_non_null(pool);
    return pool;
}

static dragon_pool_stats_t stats_of(dragon_pool_t *pool) {
    dragon_pool_stats_t s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    OK(dragon_pool_stats(pool, &s));
    assert_int_equal(s.used_bytes + s.free_bytes, s.total_bytes);
    return s;
}

static void assert_empty(dragon_pool_t *pool) {
    dragon_pool_stats_t s = stats_of(pool);
    assert_int_equal(s.allocation_count, 0);
    assert_int_equal(s.free_bytes, s.total_bytes);
}

static void hex_of_pool(dragon_pool_t *pool, char *hex) {
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_pool_serialize(pool, d, sizeof d, &len));
    tu_to_hex(d, len, hex);
}

static int run_helper(char *const argv[], const char *env, int timeout_ms) {
    pid_t pid = tu_spawn(argv, NULL, env);
    assert_true(pid > 0);
    return tu_wait(pid, timeout_ms);
}

static int shm_exists(const char *segment) {
    char path[256];
    snprintf(path, sizeof path, "/dev/shm%s", segment);
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void test_create_attach_destroy(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("life", 1 << 20);
    const char *seg = NULL;
    OK(dragon_pool_segment_name(pool, &seg));
    char expect[128];
    snprintf(expect, sizeof expect, "/dragon.%s.0.pool.life", runtime_id);
    assert_string_equal(seg, expect);

    char path[256];
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());

    /* A second attachment by name sees the same memory at another address. */
    dragon_pool_t *other = NULL;
    OK(dragon_pool_attach("life", NULL, &other));
    char *p = NULL;
    OK(dragon_pool_alloc(pool, 100, (void **)&p));
    strcpy(p, "shared");
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_pool_mem_serialize(pool, p, 7, d, sizeof d, &len));
    char *q = NULL;
    size_t qsize = 0;
    OK(dragon_pool_mem_attach(other, d, len, (void **)&q, &qsize));
    assert_ptr_not_equal(p, q);
    assert_int_equal(qsize, 7);
    assert_string_equal(q, "shared");
    OK(dragon_pool_free(other, q)); /* freed through the other attachment */
    assert_empty(pool);

    char name_copy[128];
    snprintf(name_copy, sizeof name_copy, "%s", seg);
    OK(dragon_pool_detach(other));
    OK(dragon_pool_destroy(pool));
    assert_false(shm_exists(name_copy));

    /* Gone for everybody. */
    assert_int_equal(dragon_pool_attach("life", NULL, &other), DRAGON_NOT_FOUND);
    assert_non_null(strstr(dragon_last_error(), "life"));
}

static void test_name_collisions_and_isolation(void **state) {
    (void)state;
    dragon_pool_t *a = make_pool("same", 4096);
    dragon_pool_t *dup = NULL;
    assert_int_equal(dragon_pool_create("same", 4096, NULL, &dup), DRAGON_ALREADY_EXISTS);
    assert_null(dup);
    assert_non_null(strstr(dragon_last_error(), "already exists"));

    /* The same name in another runtime, and on another (simulated) node, is another pool. */
    char other_rt[40];
    snprintf(other_rt, sizeof other_rt, "%sx", runtime_id);
    dragon_pool_attr_t attr;
    OK(dragon_pool_attr_init(&attr));
    attr.runtime_id = other_rt;
    dragon_pool_t *b = NULL;
    OK(dragon_pool_create("same", 4096, &attr, &b));
    OK(dragon_pool_attr_init(&attr));
    attr.node_id = 7;
    dragon_pool_t *c = NULL;
    OK(dragon_pool_create("same", 4096, &attr, &c));
    const char *sa, *sb, *sc;
    OK(dragon_pool_segment_name(a, &sa));
    OK(dragon_pool_segment_name(b, &sb));
    OK(dragon_pool_segment_name(c, &sc));
    assert_string_not_equal(sa, sb);
    assert_string_not_equal(sa, sc);
    assert_non_null(strstr(sc, ".7.pool.same"));

    /* Memory of one is not memory of another. */
    void *p = NULL;
    OK(dragon_pool_alloc(b, 64, &p));
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_pool_mem_serialize(b, p, 64, d, sizeof d, &len));
    void *q = NULL;
    size_t n = 0;
    assert_int_equal(dragon_pool_mem_attach(a, d, len, &q, &n), DRAGON_POOL_MISMATCH);
    assert_int_equal(dragon_pool_free(a, p), DRAGON_BAD_POINTER);
    OK(dragon_pool_free(b, p));

    OK(dragon_pool_destroy(a));
    OK(dragon_pool_destroy(b));
    OK(dragon_pool_destroy(c));
}

/* ---- segment names and owners ------------------------------------------------------ */

static const char token_a[] = "0123456789abcdef0123456789abcdef";
static const char token_b[] = "fedcba9876543210fedcba9876543210";

/* Inside a runtime the segment name ends in a keyed hash of the pool's identity under the
 * runtime's secret (DRAGON_RUNTIME_TOKEN): other users cannot guess the name of a pool to
 * come, while every process of the runtime derives the same one. */
static void test_segment_names_keyed_by_token(void **state) {
    (void)state;
    char plain[128];
    snprintf(plain, sizeof plain, "/dragon.%s.0.pool.keyed", runtime_id);
    const char *seg = NULL;

    /* No token (outside a runtime): the readable name alone. */
    dragon_pool_t *none = make_pool("keyed", 4096);
    OK(dragon_pool_segment_name(none, &seg));
    assert_string_equal(seg, plain);
    OK(dragon_pool_destroy(none));

    /* A token: the readable name, a dot and 16 hex digits. */
    setenv("DRAGON_RUNTIME_TOKEN", token_a, 1);
    dragon_pool_t *a = make_pool("keyed", 4096);
    OK(dragon_pool_segment_name(a, &seg));
    char seg_a[256];
    snprintf(seg_a, sizeof seg_a, "%s", seg);
    size_t n = strlen(plain);
    assert_int_equal(strlen(seg_a), n + 17);
    assert_int_equal(strncmp(seg_a, plain, n), 0);
    assert_int_equal(seg_a[n], '.');
    assert_int_equal(strspn(seg_a + n + 1, "0123456789abcdef"), 16);
    assert_true(shm_exists(seg_a));
    assert_false(shm_exists(plain));

    /* Another process with the same token finds the same segment from a descriptor. */
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(a, pool_hex);
    char *argv[] = {(char *)helper_path, "segment", pool_hex, NULL};
    int out = -1;
    pid_t pid = tu_spawn(argv, &out, NULL);
    assert_true(pid > 0);
    char line[256] = "";
    assert_true(tu_read_line(out, line, sizeof line, 10000) > 0);
    close(out);
    int status = tu_wait(pid, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_string_equal(line, seg_a);

    /* Another token, another name: the pool of token A is not found by name, and a pool of
     * the same name is another segment. A handle keeps the segment it was made with. */
    setenv("DRAGON_RUNTIME_TOKEN", token_b, 1);
    dragon_pool_t *x = NULL;
    assert_int_equal(dragon_pool_attach("keyed", NULL, &x), DRAGON_NOT_FOUND);
    dragon_pool_t *b = make_pool("keyed", 4096);
    OK(dragon_pool_segment_name(b, &seg));
    assert_string_not_equal(seg, seg_a);
    assert_int_equal(strncmp(seg, plain, n), 0);
    assert_int_equal(strlen(seg), strlen(seg_a));
    OK(dragon_pool_destroy(a));
    assert_false(shm_exists(seg_a));
    OK(dragon_pool_destroy(b));

    /* A malformed token is refused, and named. */
    setenv("DRAGON_RUNTIME_TOKEN", "not-a-token", 1);
    assert_int_equal(dragon_pool_create("keyed", 4096, NULL, &x), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "DRAGON_RUNTIME_TOKEN"));

    /* The longest runtime id, node id and pool name still make a valid segment name. */
    setenv("DRAGON_RUNTIME_TOKEN", token_a, 1);
    char long_rt[DRAGON_RUNTIME_ID_MAX + 1];
    memset(long_rt, 'r', DRAGON_RUNTIME_ID_MAX);
    memcpy(long_rt, runtime_id, strlen(runtime_id)); /* so that the last test sees leftovers */
    long_rt[DRAGON_RUNTIME_ID_MAX] = '\0';
    char long_name[DRAGON_POOL_NAME_MAX + 1];
    memset(long_name, 'n', DRAGON_POOL_NAME_MAX);
    long_name[DRAGON_POOL_NAME_MAX] = '\0';
    dragon_pool_attr_t attr;
    OK(dragon_pool_attr_init(&attr));
    attr.runtime_id = long_rt;
    attr.node_id = 2147483647;
    dragon_pool_t *longest = NULL;
    OK(dragon_pool_create(long_name, 4096, &attr, &longest));
    OK(dragon_pool_segment_name(longest, &seg));
    assert_true(shm_exists(seg));
    assert_non_null(strstr(seg, long_name));
    OK(dragon_pool_destroy(longest));
    unsetenv("DRAGON_RUNTIME_TOKEN");
}

/* A segment another user created under a pool's name (/dev/shm is writable by everyone, and
 * sticky: the victim cannot remove it) is refused by create and attach, with a message that
 * names it, its owner and what to do. Giving a file to another owner needs root. */
static void test_segment_of_another_owner_refused(void **state) {
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: making a segment of another owner (uid 65534) needs root\n");
        skip();
    }
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/dragon.%s.0.pool.squat", runtime_id);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    int chowned = fchown(fd, 65534, 65534);
    int sized = ftruncate(fd, 1 << 16); /* as large as a pool, so only the owner gives it away */
    close(fd);

    dragon_pool_t *created = NULL;
    dragon_status_t create_st = dragon_pool_create("squat", 4096, NULL, &created);
    char create_msg[512];
    snprintf(create_msg, sizeof create_msg, "%s", dragon_last_error());
    dragon_pool_t *attached = NULL;
    dragon_status_t attach_st = dragon_pool_attach("squat", NULL, &attached);
    char attach_msg[512];
    snprintf(attach_msg, sizeof attach_msg, "%s", dragon_last_error());
    assert_int_equal(unlink(path), 0); /* root can; before any assertion, so nothing is left */

    assert_int_equal(chowned, 0);
    assert_int_equal(sized, 0);
    assert_int_equal(create_st, DRAGON_PERMISSION_DENIED);
    assert_null(created);
    assert_non_null(strstr(create_msg, path));
    assert_non_null(strstr(create_msg, "uid 65534"));
    assert_non_null(strstr(create_msg, "another user"));
    assert_int_equal(attach_st, DRAGON_PERMISSION_DENIED);
    assert_null(attached);
    assert_non_null(strstr(attach_msg, "uid 65534"));
}

/* A segment of ours that others may open (its mode was widened after creation) may hold what
 * anybody wrote: attach refuses it. */
static void test_segment_open_to_others_refused(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("opened", 4096);
    const char *seg = NULL;
    OK(dragon_pool_segment_name(pool, &seg));
    char path[256];
    snprintf(path, sizeof path, "/dev/shm%s", seg);
    assert_int_equal(chmod(path, 0666), 0);
    dragon_pool_t *other = NULL;
    dragon_status_t st = dragon_pool_attach("opened", NULL, &other);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", dragon_last_error());
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(st, DRAGON_PERMISSION_DENIED);
    assert_null(other);
    assert_non_null(strstr(msg, "0666"));
    OK(dragon_pool_destroy(pool));
}

/* ---- allocation -------------------------------------------------------------------- */

static void test_alloc_alignment_and_sizes(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("align", 1 << 20);
    size_t sizes[] = {1, 63, 64, 65, 100, 4096, 4097, 65536, 300000};
    void *ptrs[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        OK(dragon_pool_alloc(pool, sizes[i], &ptrs[i]));
        assert_int_equal((uintptr_t)ptrs[i] % 64, 0);
        size_t block = 0;
        OK(dragon_pool_block_size(pool, ptrs[i], &block));
        assert_true(block >= sizes[i]);
        assert_true(block < 2 * sizes[i] || block == 64);
        memset(ptrs[i], (int)i + 1, sizes[i]);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        unsigned char *b = ptrs[i];
        assert_int_equal(b[0], i + 1);
        assert_int_equal(b[sizes[i] - 1], i + 1);
    }
    dragon_pool_stats_t s = stats_of(pool);
    assert_int_equal(s.allocation_count, sizeof sizes / sizeof sizes[0]);
    assert_true(s.utilization_pct > 0.0);
    assert_int_equal(s.min_block, 64);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        OK(dragon_pool_free(pool, ptrs[i]));
    }
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

static void test_min_block_attr(void **state) {
    (void)state;
    dragon_pool_attr_t attr;
    OK(dragon_pool_attr_init(&attr));
    attr.min_block = 4096;
    dragon_pool_t *pool = NULL;
    OK(dragon_pool_create("pages", 1 << 20, &attr, &pool));
    void *p = NULL;
    OK(dragon_pool_alloc(pool, 1, &p));
    assert_int_equal((uintptr_t)p % 4096, 0);
    OK(dragon_pool_free(pool, p));
    OK(dragon_pool_destroy(pool));

    attr.min_block = 100; /* not a power of two */
    assert_int_equal(dragon_pool_create("pages", 1 << 20, &attr, &pool), DRAGON_INVALID_ARGUMENT);
    attr.min_block = 32; /* below the 64-byte floor */
    assert_int_equal(dragon_pool_create("pages", 1 << 20, &attr, &pool), DRAGON_INVALID_ARGUMENT);
}

static void test_fill_free_coalesce(void **state) {
    (void)state;
    /* Not a power of two: the heap is covered by blocks of 64 KiB, 32 KiB and 4 KiB. */
    size_t total = 100 * 1024;
    dragon_pool_t *pool = make_pool("fill", total);
    dragon_pool_stats_t s = stats_of(pool);
    assert_int_equal(s.total_bytes, total);
    assert_int_equal(s.largest_free_block, 64 * 1024);

    size_t n = total / 64;
    void **ptrs = calloc(n, sizeof *ptrs);
    for (size_t i = 0; i < n; ++i) {
        OK(dragon_pool_alloc(pool, 64, &ptrs[i]));
        memset(ptrs[i], 0xab, 64);
    }
    void *extra = NULL;
    assert_int_equal(dragon_pool_alloc(pool, 64, &extra), DRAGON_NO_SPACE);
    assert_non_null(strstr(dragon_last_error(), "fill"));
    s = stats_of(pool);
    assert_int_equal(s.free_bytes, 0);
    assert_int_equal(s.allocation_count, n);
    assert_int_equal(s.largest_free_block, 0);

    /* Free every other block, then the rest: everything must merge back. */
    for (size_t i = 0; i < n; i += 2) {
        OK(dragon_pool_free(pool, ptrs[i]));
    }
    s = stats_of(pool);
    assert_int_equal(s.free_bytes, total / 2);
    assert_int_equal(s.largest_free_block, 64); /* no two free blocks are buddies */
    for (size_t i = 1; i < n; i += 2) {
        OK(dragon_pool_free(pool, ptrs[i]));
    }
    assert_empty(pool);
    s = stats_of(pool);
    assert_int_equal(s.largest_free_block, 64 * 1024);

    /* Cached small blocks never make a large allocation fail. */
    for (size_t i = 0; i < n; ++i) {
        OK(dragon_pool_alloc(pool, 64, &ptrs[i]));
    }
    for (size_t i = 0; i < n; ++i) {
        OK(dragon_pool_free(pool, ptrs[i]));
    }
    void *big = NULL;
    OK(dragon_pool_alloc(pool, 64 * 1024, &big));
    OK(dragon_pool_free(pool, big));
    free(ptrs);
    OK(dragon_pool_destroy(pool));
}

static void test_alloc_timeout(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("tmo", 4096);
    void *all = NULL;
    OK(dragon_pool_alloc(pool, 4096, &all));
    void *p = NULL;
    assert_int_equal(dragon_pool_alloc_timeout(pool, 64, 0, &p), DRAGON_NO_SPACE);
    int64_t t0 = tu_now_ms();
    assert_int_equal(dragon_pool_alloc_timeout(pool, 64, 50 * 1000000LL, &p), DRAGON_TIMEOUT);
    int64_t waited = tu_now_ms() - t0;
    assert_true(waited >= 49);
    assert_true(waited < 5000);
    assert_null(p);
    assert_non_null(strstr(dragon_last_error(), "tmo"));
    OK(dragon_pool_free(pool, all));
    OK(dragon_pool_alloc_timeout(pool, 64, DRAGON_TIMEOUT_FOREVER, &p));
    OK(dragon_pool_free(pool, p));
    OK(dragon_pool_destroy(pool));
}

/* ---- descriptors ------------------------------------------------------------------- */

static void test_descriptors(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("descr", 1 << 16);
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;

    /* Size query, then a too-small buffer. */
    assert_int_equal(dragon_pool_serialize(pool, NULL, 0, &len), DRAGON_BUFFER_TOO_SMALL);
    assert_true(len > 0 && len <= DRAGON_POOL_DESCRIPTOR_MAX);
    size_t need = len;
    assert_int_equal(dragon_pool_serialize(pool, d, need - 1, &len), DRAGON_BUFFER_TOO_SMALL);
    OK(dragon_pool_serialize(pool, d, sizeof d, &len));
    assert_int_equal(len, need);

    dragon_pool_t *again = NULL;
    OK(dragon_pool_attach_serialized(d, len, &again));
    const char *name = NULL;
    OK(dragon_pool_name(again, &name));
    assert_string_equal(name, "descr");

    /* A memory descriptor also attaches its pool. */
    void *p = NULL;
    OK(dragon_pool_alloc(pool, 1000, &p));
    unsigned char m[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t mlen = 0;
    OK(dragon_pool_mem_serialize(pool, p, 1000, m, sizeof m, &mlen));
    dragon_pool_t *via_mem = NULL;
    OK(dragon_pool_attach_serialized(m, mlen, &via_mem));
    void *q = NULL;
    size_t qn = 0;
    OK(dragon_pool_mem_attach(via_mem, m, mlen, &q, &qn));
    assert_int_equal(qn, 1000);
    /* A pool descriptor is not a memory descriptor. */
    assert_int_equal(dragon_pool_mem_attach(pool, d, len, &q, &qn), DRAGON_BAD_DESCRIPTOR);
    /* Asking for more than the block holds is refused. */
    assert_int_equal(dragon_pool_mem_serialize(pool, p, 4096, m, sizeof m, &mlen),
                     DRAGON_INVALID_ARGUMENT);
    OK(dragon_pool_mem_serialize(pool, p, 1000, m, sizeof m, &mlen));

    /* Once freed, the descriptor names nothing live. */
    OK(dragon_pool_free(pool, p));
    assert_int_equal(dragon_pool_mem_attach(pool, m, mlen, &q, &qn), DRAGON_NOT_ALLOCATED);
    OK(dragon_pool_detach(via_mem));
    OK(dragon_pool_detach(again));

    /* Destroyed and re-created under the same name: old descriptors are refused. */
    OK(dragon_pool_destroy(pool));
    assert_int_equal(dragon_pool_attach_serialized(d, len, &again), DRAGON_NOT_FOUND);
    pool = make_pool("descr", 1 << 16);
    assert_int_equal(dragon_pool_attach_serialized(d, len, &again), DRAGON_POOL_MISMATCH);
    assert_null(again);
    assert_int_equal(dragon_pool_mem_attach(pool, m, mlen, &q, &qn), DRAGON_POOL_MISMATCH);
    OK(dragon_pool_destroy(pool));
}

/* ---- bad input --------------------------------------------------------------------- */

static void test_bad_input_leaves_pool_usable(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("bad", 1 << 16);
    void *keep = NULL;
    OK(dragon_pool_alloc(pool, 256, &keep));
    memset(keep, 0x5a, 256);
    void *p = NULL;

    assert_int_equal(dragon_pool_alloc(pool, 0, &p), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "0 bytes"));
    assert_int_equal(dragon_pool_alloc(pool, (1 << 16) + 1, &p), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "largest block"));
    /* An impossible size fails at once even when asked to wait forever. */
    assert_int_equal(dragon_pool_alloc_timeout(pool, SIZE_MAX, DRAGON_TIMEOUT_FOREVER, &p),
                     DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_alloc(NULL, 64, &p), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_alloc(pool, 64, NULL), DRAGON_INVALID_ARGUMENT);

    /* Double free. */
    OK(dragon_pool_alloc(pool, 64, &p));
    OK(dragon_pool_free(pool, p));
    assert_int_equal(dragon_pool_free(pool, p), DRAGON_NOT_ALLOCATED);
    assert_non_null(strstr(dragon_last_error(), "already freed"));

    /* Foreign pointers: the heap, the stack, inside a block, misaligned, NULL. */
    void *heap_ptr = malloc(64);
    int on_stack = 0;
    assert_int_equal(dragon_pool_free(pool, heap_ptr), DRAGON_BAD_POINTER);
    assert_int_equal(dragon_pool_free(pool, &on_stack), DRAGON_BAD_POINTER);
    assert_int_equal(dragon_pool_free(pool, NULL), DRAGON_BAD_POINTER);
    free(heap_ptr);
    assert_int_equal(dragon_pool_free(pool, (char *)keep + 64), DRAGON_NOT_ALLOCATED);
    assert_int_equal(dragon_pool_free(pool, (char *)keep + 1), DRAGON_BAD_POINTER);
    size_t bs = 0;
    assert_int_equal(dragon_pool_block_size(pool, (char *)keep + 64, &bs), DRAGON_NOT_ALLOCATED);

    /* Malformed descriptor bytes. */
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_pool_mem_serialize(pool, keep, 256, d, sizeof d, &len));
    unsigned char bad[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t n = 0;
    dragon_pool_t *other = NULL;
    assert_int_equal(dragon_pool_mem_attach(pool, d, len - 1, &p, &n), DRAGON_BAD_DESCRIPTOR);
    assert_int_equal(dragon_pool_mem_attach(pool, d, 3, &p, &n), DRAGON_BAD_DESCRIPTOR);
    assert_int_equal(dragon_pool_mem_attach(pool, NULL, len, &p, &n), DRAGON_BAD_DESCRIPTOR);
    memcpy(bad, d, len);
    bad[0] ^= 0xff; /* magic */
    assert_int_equal(dragon_pool_mem_attach(pool, bad, len, &p, &n), DRAGON_BAD_DESCRIPTOR);
    assert_non_null(strstr(dragon_last_error(), "magic"));
    memcpy(bad, d, len);
    bad[4] = 99; /* version */
    assert_int_equal(dragon_pool_mem_attach(pool, bad, len, &p, &n), DRAGON_BAD_DESCRIPTOR);
    assert_non_null(strstr(dragon_last_error(), "version"));
    memcpy(bad, d, len);
    bad[32] = '/'; /* runtime id with a path separator */
    assert_int_equal(dragon_pool_attach_serialized(bad, len, &other), DRAGON_BAD_DESCRIPTOR);
    memcpy(bad, d, len);
    bad[len - 9] = 0x7f; /* size far past the pool */
    assert_int_equal(dragon_pool_mem_attach(pool, bad, len, &p, &n), DRAGON_BAD_DESCRIPTOR);
    memcpy(bad, d, len);
    bad[len - 16] |= 1; /* misaligned offset */
    assert_int_equal(dragon_pool_mem_attach(pool, bad, len, &p, &n), DRAGON_BAD_DESCRIPTOR);

    /* Bad names and attributes. */
    dragon_pool_t *x = NULL;
    assert_int_equal(dragon_pool_create("../etc", 4096, NULL, &x), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_create("", 4096, NULL, &x), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_create(NULL, 4096, NULL, &x), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_create("zero", 0, NULL, &x), DRAGON_INVALID_ARGUMENT);
    char longname[100];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(dragon_pool_create(longname, 4096, NULL, &x), DRAGON_INVALID_ARGUMENT);
    dragon_pool_attr_t attr;
    memset(&attr, 0, sizeof attr); /* struct_size not set */
    assert_int_equal(dragon_pool_create("noinit", 4096, &attr, &x), DRAGON_INVALID_ARGUMENT);
    OK(dragon_pool_attr_init(&attr));
    attr.runtime_id = "has space";
    assert_int_equal(dragon_pool_create("rt", 4096, &attr, &x), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_attach("missing", NULL, &x), DRAGON_NOT_FOUND);
    dragon_pool_stats_t s;
    memset(&s, 0, sizeof s); /* struct_size not set */
    assert_int_equal(dragon_pool_stats(pool, &s), DRAGON_INVALID_ARGUMENT);

    /* After all that: the pool is intact and usable. */
    for (int i = 0; i < 256; ++i) {
        assert_int_equal(((unsigned char *)keep)[i], 0x5a);
    }
    dragon_pool_stats_t st = stats_of(pool);
    assert_int_equal(st.allocation_count, 1);
    OK(dragon_pool_alloc(pool, 1024, &p));
    OK(dragon_pool_free(pool, p));
    OK(dragon_pool_free(pool, keep));
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* ---- several processes ------------------------------------------------------------- */

static void test_other_process_frees(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("xfree", 1 << 20);
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);

    /* Allocated here, checked and freed by another process. */
    void *p = NULL;
    OK(dragon_pool_alloc(pool, 5000, &p));
    memset(p, 77, 5000);
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    OK(dragon_pool_mem_serialize(pool, p, 5000, d, sizeof d, &len));
    char mem_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    tu_to_hex(d, len, mem_hex);
    char *argv1[] = {(char *)helper_path, "verify-free", pool_hex, mem_hex, "77", NULL};
    int status = run_helper(argv1, NULL, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_empty(pool);

    /* Allocated by another process (which then exits), used and freed here. */
    char *argv2[] = {(char *)helper_path, "publish", pool_hex, "3000", "42", NULL};
    int out = -1;
    pid_t pid = tu_spawn(argv2, &out, NULL);
    assert_true(pid > 0);
    char line[2 * DRAGON_POOL_DESCRIPTOR_MAX + 8];
    assert_true(tu_read_line(out, line, sizeof line, 10000) > 0);
    close(out);
    status = tu_wait(pid, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    long n = tu_from_hex(line, d, sizeof d);
    assert_true(n > 0);
    unsigned char *q = NULL;
    size_t qn = 0;
    OK(dragon_pool_mem_attach(pool, d, (size_t)n, (void **)&q, &qn));
    assert_int_equal(qn, 3000);
    for (size_t i = 0; i < qn; ++i) {
        assert_int_equal(q[i], 42);
    }
    OK(dragon_pool_free(pool, q));
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

static void test_blocked_alloc_woken_by_other_process(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("wake", 8192);
    void *all = NULL;
    OK(dragon_pool_alloc(pool, 8192, &all));
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);
    char *argv[] = {(char *)helper_path, "alloc-wait", pool_hex, "4096", "20000", NULL};
    int out = -1;
    pid_t pid = tu_spawn(argv, &out, NULL);
    assert_true(pid > 0);
    char line[64];
    assert_true(tu_read_line(out, line, sizeof line, 10000) > 0);
    assert_string_equal(line, "waiting");
    /* Free only once the helper sleeps in its wait, so the wake-up path is what is tested. */
    assert_true(tu_wait_sleeping(pid, 10000));
    int64_t t0 = tu_now_ms();
    OK(dragon_pool_free(pool, all));
    assert_true(tu_read_line(out, line, sizeof line, 10000) > 0);
    assert_string_equal(line, "success");
    assert_true(tu_now_ms() - t0 < 5000); /* woken, not timed out (20 s) */
    close(out);
    int status = tu_wait(pid, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

static void test_concurrent_processes(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("stress", 1 << 20);
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);
    enum { kProcs = 4 };
    pid_t pids[kProcs];
    for (int i = 0; i < kProcs; ++i) {
        char seed[16];
        snprintf(seed, sizeof seed, "%d", i + 1);
        char *argv[] = {(char *)helper_path, "stress", pool_hex, "100000", seed, NULL};
        pids[i] = tu_spawn(argv, NULL, NULL);
        assert_true(pids[i] > 0);
    }
    for (int i = 0; i < kProcs; ++i) {
        int status = tu_wait(pids[i], 60000);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* ---- processes killed mid-operation ------------------------------------------------ */

/* What a killed churn helper held: read its ledger (see pool-helper), then free the ledger
 * itself. A helper that died before it printed its ledger held nothing. */
static uint64_t collect_ledger(dragon_pool_t *pool, int out_fd) {
    char line[2 * DRAGON_POOL_DESCRIPTOR_MAX + 16];
    if (tu_read_line(out_fd, line, sizeof line, 10000) <= 0) {
        return 0;
    }
    assert_true(strncmp(line, "ledger ", 7) == 0);
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    long n = tu_from_hex(line + 7, d, sizeof d);
    assert_true(n > 0);
    uint64_t *ledger = NULL;
    size_t size = 0;
    OK(dragon_pool_mem_attach(pool, d, (size_t)n, (void **)&ledger, &size));
    uint64_t held = *ledger;
    OK(dragon_pool_free(pool, ledger));
    return held;
}

/* After a crash: the dead processes leaked exactly what they held, give or take the one block
 * each may have had in flight; everything else can be allocated again, without overlap. */
static void check_recovered(dragon_pool_t *pool, uint64_t held, uint64_t in_flight) {
    dragon_pool_stats_t s = stats_of(pool);
    uint64_t leaked = s.used_bytes;
    if (leaked < held || leaked > held + in_flight) {
        fail_msg("leaked %llu bytes; the dead held %llu (+%llu in flight)",
                 (unsigned long long)leaked, (unsigned long long)held,
                 (unsigned long long)in_flight);
    }
    size_t n = (size_t)(s.free_bytes / 64);
    uint32_t **ptrs = calloc(n + 1, sizeof *ptrs);
    size_t got = 0;
    while (got <= n && dragon_pool_alloc(pool, 64, (void **)&ptrs[got]) == DRAGON_SUCCESS) {
        for (int w = 0; w < 16; ++w) {
            ptrs[got][w] = (uint32_t)got;
        }
        ++got;
    }
    assert_int_equal(got, n); /* every free byte was reachable, and no more */
    for (size_t i = 0; i < got; ++i) {
        for (int w = 0; w < 16; ++w) {
            assert_int_equal(ptrs[i][w], (uint32_t)i); /* no two allocations overlap */
        }
        OK(dragon_pool_free(pool, ptrs[i]));
    }
    free(ptrs);
    s = stats_of(pool);
    assert_int_equal(s.used_bytes, leaked);
}

/* Run a churn helper that SIGKILLs itself at a crash point (holding the pool's lock); returns
 * what it held when it died. The pool is smaller than what the churn wants to hold, so it runs
 * full, and drains and coalesces often. */
static uint64_t crash_at(dragon_pool_t *pool, const char *point) {
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);
    char env[64];
    snprintf(env, sizeof env, "DRAGON_TEST_CRASH_AT=%s", point);
    char *argv[] = {(char *)helper_path, "churn", pool_hex, "128", "2048", NULL};
    int out = -1;
    pid_t pid = tu_spawn(argv, &out, env);
    assert_true(pid > 0);
    int status = tu_wait(pid, 30000);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    uint64_t held = collect_ledger(pool, out);
    close(out);
    return held;
}

static void test_killed_holding_lock(void **state) {
    (void)state;
    const char *points[] = {"split:40", "coalesce:40", "drain:40", "split:1", "coalesce:1"};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; ++i) {
        dragon_pool_t *pool = make_pool("crash", 64 * 1024);
        uint64_t held = crash_at(pool, points[i]);
        check_recovered(pool, held, 2048);
        OK(dragon_pool_destroy(pool));
    }
}

static void test_killed_while_recovering(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("crash2", 64 * 1024);
    uint64_t held = crash_at(pool, "split:30");
    /* The next locker dies in the middle of rebuilding; the one after that rebuilds again. */
    held += crash_at(pool, "rebuild:1");
    check_recovered(pool, held, 2 * 2048);
    OK(dragon_pool_destroy(pool));
}

static void random_sigkill(size_t pool_size, const char *maxlive, const char *maxsize) {
    enum { kRounds = 12 };
    for (int round = 0; round < kRounds; ++round) {
        /* Two churners contend for a pool smaller than what they want to hold (so they also
         * run the locked slow paths), and both are killed at arbitrary moments. */
        dragon_pool_t *pool = make_pool("sigkill", pool_size);
        char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
        hex_of_pool(pool, pool_hex);
        char *argv[] = {(char *)helper_path, "churn",         pool_hex,
                        (char *)maxlive,     (char *)maxsize, NULL};
        int out[2] = {-1, -1};
        pid_t pid[2];
        char ledger[2][2 * DRAGON_POOL_DESCRIPTOR_MAX + 16];
        for (int k = 0; k < 2; ++k) {
            pid[k] = tu_spawn(argv, &out[k], NULL);
            assert_true(pid[k] > 0);
            assert_true(tu_read_line(out[k], ledger[k], sizeof ledger[k], 10000) > 0);
        }
        char line[32];
        for (int k = 0; k < 2; ++k) {
            assert_true(tu_read_line(out[k], line, sizeof line, 10000) > 0);
            assert_string_equal(line, "running");
        }
        uint64_t held = 0;
        for (int k = 0; k < 2; ++k) {
            /* A varying amount of work before each kill. */
            for (volatile int spin = 0; spin < (round + k) * 150000; ++spin) {
            }
            kill(pid[k], SIGKILL);
            int status = tu_wait(pid[k], 10000);
            assert_true(WIFSIGNALED(status));
            /* Feed the ledger line back through a pipe to reuse collect_ledger. */
            int fds[2];
            assert_int_equal(pipe(fds), 0);
            dprintf(fds[1], "%s\n", ledger[k]);
            close(fds[1]);
            held += collect_ledger(pool, fds[0]);
            close(fds[0]);
            close(out[k]);
        }
        check_recovered(pool, held, 2 * (uint64_t)atol(maxsize));
        OK(dragon_pool_destroy(pool));
    }
}

static void test_random_sigkill(void **state) {
    (void)state;
    random_sigkill(16 * 1024, "16", "1024"); /* too small for thread caches */
}

/* The same with thread caches (a pool large enough to cache 64 B .. 4 KiB blocks): what the
 * dead churners' caches held comes back at the next stats (check_recovered's first step). */
static void test_random_sigkill_cached(void **state) {
    (void)state;
    random_sigkill(2 << 20, "4096", "2048");
}

/* ---- reclaiming what dead processes held --------------------------------------------- */

static dragon_pool_reclaimed_t reclaim(dragon_pool_t *pool, pid_t pid) {
    dragon_pool_reclaimed_t r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    OK(dragon_pool_reclaim(pool, pid, &r));
    return r;
}

/* Run `pool-helper publish` (it allocates, prints the descriptor, exits without freeing) and
 * attach the memory it left. Returns its pid. */
static pid_t publish(dragon_pool_t *pool, const char *pool_hex, const char *size, void **mem,
                     unsigned char *d, size_t *len) {
    char *argv[] = {(char *)helper_path, "publish", (char *)pool_hex, (char *)size, "42", NULL};
    tu_child c;
    assert_int_equal(tu_child_spawn(&c, argv, NULL), 0);
    char line[2 * DRAGON_POOL_DESCRIPTOR_MAX + 8];
    assert_true(tu_read_line(c.out, line, sizeof line, 10000) > 0);
    pid_t pid = c.pid;
    int status = tu_child_wait(&c, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    long n = tu_from_hex(line, d, DRAGON_POOL_DESCRIPTOR_MAX);
    assert_true(n > 0);
    *len = (size_t)n;
    size_t size_got = 0;
    OK(dragon_pool_mem_attach(pool, d, *len, mem, &size_got));
    return pid;
}

/* What an exited process left is its until somebody adopts or disowns it. */
static void test_reclaim_ownership(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("owners", 1 << 20);
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);
    void *mine = NULL;
    OK(dragon_pool_alloc(pool, 100, &mine));

    unsigned char d[3][DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len[3];
    void *mem[3];
    pid_t pid[3];
    for (int i = 0; i < 3; ++i) {
        pid[i] = publish(pool, pool_hex, "3000", &mem[i], d[i], &len[i]);
    }
    OK(dragon_pool_adopt(pool, mem[1]));
    OK(dragon_pool_disown(pool, mem[2]));
    assert_int_equal(dragon_pool_adopt(pool, (char *)mem[1] + 64), DRAGON_NOT_ALLOCATED);
    assert_int_equal(dragon_pool_disown(pool, &len[0]), DRAGON_BAD_POINTER);

    /* Bad arguments, and live processes (this one), are refused. */
    dragon_pool_reclaimed_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(dragon_pool_reclaim(pool, pid[0], &r), DRAGON_INVALID_ARGUMENT);
    r.struct_size = sizeof r;
    assert_int_equal(dragon_pool_reclaim(NULL, 0, &r), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_reclaim(pool, -5, &r), DRAGON_INVALID_ARGUMENT);
    assert_int_equal(dragon_pool_reclaim(pool, getpid(), &r), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "alive"));

    /* The adopted and the disowned blocks stay; the dead publisher's goes. */
    r = reclaim(pool, pid[1]);
    assert_int_equal(r.blocks, 0);
    r = reclaim(pool, pid[0]);
    assert_int_equal(r.blocks, 1);
    assert_int_equal(r.bytes, 4096);
    void *q = NULL;
    size_t qn = 0;
    assert_int_equal(dragon_pool_mem_attach(pool, d[0], len[0], &q, &qn), DRAGON_NOT_ALLOCATED);
    OK(dragon_pool_reclaim(pool, 0, NULL));
    OK(dragon_pool_mem_attach(pool, d[1], len[1], &q, &qn));
    OK(dragon_pool_mem_attach(pool, d[2], len[2], &q, &qn));
    assert_int_equal(((unsigned char *)mem[1])[2999], 42);
    assert_int_equal(stats_of(pool).allocation_count, 3);
    OK(dragon_pool_free(pool, mem[1]));
    OK(dragon_pool_free(pool, mem[2]));
    OK(dragon_pool_free(pool, mine));
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* An allocator killed while it waits for space leaves a sleeper registered, which every free
 * then pays a wake-up system call for; reclaim takes it back. */
static void test_reclaim_stale_alloc_waiter(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("staleway", 8192);
    void *all = NULL;
    OK(dragon_pool_alloc(pool, 8192, &all));
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);
    char *argv[] = {(char *)helper_path, "alloc-wait", pool_hex, "4096", "60000", NULL};
    tu_child c;
    assert_int_equal(tu_child_spawn(&c, argv, NULL), 0);
    char line[64];
    assert_true(tu_read_line(c.out, line, sizeof line, 10000) > 0);
    assert_string_equal(line, "waiting");
    assert_true(tu_wait_sleeping(c.pid, 10000));
    assert_int_equal(tu_child_kill(&c, SIGKILL), 0);
    int status = tu_child_wait(&c, 10000);
    assert_true(WIFSIGNALED(status));
    dragon_pool_reclaimed_t r = reclaim(pool, 0);
    assert_int_equal(r.waiters, 1);
    assert_int_equal(r.blocks, 0);
    assert_int_equal(reclaim(pool, 0).waiters, 0);
    OK(dragon_pool_free(pool, all));
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* Churners killed at arbitrary moments, in the middle of anything (the fast path's pops and
 * pushes included): after reclaim the pool is exactly empty again. */
static void reclaim_killed_churners(size_t pool_size, const char *maxlive, const char *maxsize) {
    enum { kRounds = 12 };
    for (int round = 0; round < kRounds; ++round) {
        dragon_pool_t *pool = make_pool("reclaim", pool_size);
        char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
        hex_of_pool(pool, pool_hex);
        char *argv[] = {(char *)helper_path, "churn",         pool_hex,
                        (char *)maxlive,     (char *)maxsize, NULL};
        tu_child c[2];
        char line[2 * DRAGON_POOL_DESCRIPTOR_MAX + 16];
        for (int k = 0; k < 2; ++k) {
            assert_int_equal(tu_child_spawn(&c[k], argv, NULL), 0);
            assert_true(tu_read_line(c[k].out, line, sizeof line, 10000) > 0); /* ledger */
        }
        for (int k = 0; k < 2; ++k) {
            assert_true(tu_read_line(c[k].out, line, sizeof line, 10000) > 0);
            assert_string_equal(line, "running");
        }
        pid_t pid[2];
        for (int k = 0; k < 2; ++k) {
            for (volatile int spin = 0; spin < (round + k) * 150000; ++spin) {
            }
            pid[k] = c[k].pid;
            assert_int_equal(tu_child_kill(&c[k], SIGKILL), 0);
            int status = tu_child_wait(&c[k], 10000);
            assert_true(WIFSIGNALED(status));
        }
        /* One by pid, then every other dead owner. */
        reclaim(pool, pid[0]);
        reclaim(pool, 0);
        assert_empty(pool);
        assert_int_equal(stats_of(pool).largest_free_block, pool_size); /* all merged back */
        OK(dragon_pool_destroy(pool));
    }
}

static void test_reclaim_killed_churners(void **state) {
    (void)state;
    reclaim_killed_churners(16 * 1024, "16", "1024");
}

static void test_reclaim_killed_churners_cached(void **state) {
    (void)state;
    reclaim_killed_churners(2 << 20, "4096", "2048");
}

/* ---- thread caches -------------------------------------------------------------------- */

/* Start `pool-helper cache POOL N MODE` and wait until its blocks sit in its cache. */
static void start_cacher(tu_child *c, const char *pool_hex, const char *n, const char *mode) {
    char *argv[] = {(char *)helper_path, "cache", (char *)pool_hex, (char *)n, (char *)mode, NULL};
    assert_int_equal(tu_child_spawn(c, argv, NULL), 0);
    char line[32];
    assert_true(tu_read_line(c->out, line, sizeof line, 10000) > 0);
    assert_string_equal(line, "cached");
}

static void kill_cacher(tu_child *c) {
    assert_int_equal(tu_child_kill(c, SIGKILL), 0);
    int status = tu_child_wait(c, 10000);
    assert_true(WIFSIGNALED(status));
}

/* Another live process's cache is free memory (counted in cached_bytes), never an
 * allocation; it comes back whole when that process detaches, and when it is killed. */
static void test_cache_counted_and_returned(void **state) {
    (void)state;
    const uint64_t total = 4 << 20;
    dragon_pool_t *pool = make_pool("caches", total);
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);

    /* Held by a live process: free, and said to be cached. */
    tu_child c;
    start_cacher(&c, pool_hex, "100", "hold");
    dragon_pool_stats_t s = stats_of(pool);
    assert_int_equal(s.allocation_count, 0);
    assert_int_equal(s.free_bytes, total);
    assert_true(s.cached_bytes >= 100 * 64 && s.cached_bytes <= 8192);
    assert_true(s.largest_free_block < total); /* the run it took is not merged back */

    /* Killed: the next stats gives its blocks back. */
    kill_cacher(&c);
    s = stats_of(pool);
    assert_int_equal(s.cached_bytes, 0);
    assert_int_equal(s.free_bytes, total);
    assert_int_equal(s.largest_free_block, total);

    /* Killed, then reclaimed by pid: reported as cached blocks, not as allocations. */
    start_cacher(&c, pool_hex, "100", "hold");
    pid_t pid = c.pid;
    kill_cacher(&c);
    dragon_pool_reclaimed_t r = reclaim(pool, pid);
    assert_int_equal(r.blocks, 0);
    assert_true(r.cached_blocks >= 100 && r.cached_blocks <= 128);
    s = stats_of(pool);
    assert_int_equal(s.cached_bytes, 0);
    assert_int_equal(s.largest_free_block, total);

    /* Detached before exit: back at once. */
    start_cacher(&c, pool_hex, "100", "exit");
    int status = tu_child_wait(&c, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s = stats_of(pool);
    assert_int_equal(s.cached_bytes, 0);
    assert_int_equal(s.largest_free_block, total);
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* The out-of-space path gives back dead processes' caches before it fails. */
static void test_cache_of_dead_process_serves_alloc(void **state) {
    (void)state;
    const uint64_t total = 4 << 20;
    dragon_pool_t *pool = make_pool("deadcache", total);
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);
    tu_child c;
    start_cacher(&c, pool_hex, "100", "hold");
    kill_cacher(&c);
    void *all = NULL;
    OK(dragon_pool_alloc(pool, total, &all)); /* the whole heap: needs the dead one's run */
    OK(dragon_pool_free(pool, all));
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* A forked child starts with no cache: the parent's cached blocks stay the parent's, and
 * what both allocate afterwards never overlaps. */
static void test_cache_after_fork(void **state) {
    (void)state;
    enum { kBlocks = 300 };
    dragon_pool_t *pool = make_pool("forked", 4 << 20);
    void *warm[kBlocks];
    for (int i = 0; i < kBlocks; ++i) {
        OK(dragon_pool_alloc(pool, 64, &warm[i]));
    }
    for (int i = 0; i < kBlocks; ++i) {
        OK(dragon_pool_free(pool, warm[i]));
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        for (int i = 0; i < kBlocks; ++i) {
            uint32_t *p = NULL;
            if (dragon_pool_alloc(pool, 64, (void **)&p) != DRAGON_SUCCESS) {
                _exit(1);
            }
            for (int w = 0; w < 16; ++w) {
                p[w] = 0xC0DE0000u + (uint32_t)i;
            }
            if (write(fds[1], &p, sizeof p) != (ssize_t)sizeof p) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    uint32_t *mine[kBlocks];
    for (int i = 0; i < kBlocks; ++i) {
        OK(dragon_pool_alloc(pool, 64, (void **)&mine[i]));
        for (int w = 0; w < 16; ++w) {
            mine[i][w] = 0xAAAA0000u + (uint32_t)i;
        }
    }
    uint32_t *theirs[kBlocks];
    for (int i = 0; i < kBlocks; ++i) {
        assert_int_equal(read(fds[0], &theirs[i], sizeof theirs[i]), (ssize_t)sizeof theirs[i]);
    }
    close(fds[0]);
    int status = tu_wait(child, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < kBlocks; ++i) {
        for (int w = 0; w < 16; ++w) {
            assert_int_equal(mine[i][w], 0xAAAA0000u + (uint32_t)i);
            assert_int_equal(theirs[i][w], 0xC0DE0000u + (uint32_t)i);
        }
    }
    for (int i = 0; i < kBlocks; ++i) {
        OK(dragon_pool_free(pool, mine[i]));
    }
    /* The child exited holding its blocks: they are its, until reclaimed. */
    dragon_pool_reclaimed_t r = reclaim(pool, child);
    assert_int_equal(r.blocks, kBlocks);
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* Sequential double frees are refused through the cache too, and leave it sound. */
static void test_cache_double_free(void **state) {
    (void)state;
    dragon_pool_t *pool = make_pool("dfree", 4 << 20);
    void *a = NULL;
    void *b = NULL;
    OK(dragon_pool_alloc(pool, 64, &a));
    OK(dragon_pool_free(pool, a));
    assert_int_equal(dragon_pool_free(pool, a), DRAGON_NOT_ALLOCATED);
    assert_non_null(strstr(dragon_last_error(), "already freed"));
    OK(dragon_pool_alloc(pool, 64, &a));
    OK(dragon_pool_alloc(pool, 64, &b));
    assert_ptr_not_equal(a, b);
    OK(dragon_pool_free(pool, a));
    OK(dragon_pool_free(pool, b));
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* The same from the command line: dragon-cleanup --reclaim POOL. */
static void test_reclaim_by_tool(void **state) {
    (void)state;
    if (cleanup_tool == NULL) {
        skip();
    }
    dragon_pool_t *pool = make_pool("bytool", 1 << 20);
    char pool_hex[2 * DRAGON_POOL_DESCRIPTOR_MAX + 1];
    hex_of_pool(pool, pool_hex);
    unsigned char d[DRAGON_POOL_DESCRIPTOR_MAX];
    size_t len = 0;
    void *mem = NULL;
    publish(pool, pool_hex, "3000", &mem, d, &len);
    char self[16];
    snprintf(self, sizeof self, "%d", (int)getpid());
    char *live[] = {(char *)cleanup_tool, "--reclaim", "bytool", "--runtime-id",
                    runtime_id,           "--pid",     self,     NULL};
    int status = run_helper(live, NULL, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1); /* this process is alive */
    char *argv[] = {(char *)cleanup_tool, "--reclaim", "bytool", "--runtime-id", runtime_id, NULL};
    tu_child c;
    assert_int_equal(tu_child_spawn(&c, argv, NULL), 0);
    char line[256];
    assert_true(tu_read_line(c.out, line, sizeof line, 10000) > 0);
    assert_non_null(strstr(line, "reclaimed 1 block (4096 bytes)"));
    status = tu_child_wait(&c, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_empty(pool);
    OK(dragon_pool_destroy(pool));
}

/* ---- nothing left behind ----------------------------------------------------------- */

static void test_nothing_left_in_dev_shm(void **state) {
    (void)state;
    assert_int_equal(tu_count_leftovers(runtime_id), 0);
}

int main(void) {
    snprintf(runtime_id, sizeof runtime_id, "tpool%d", (int)getpid());
    setenv("DRAGON_RUNTIME_ID", runtime_id, 1);
    unsetenv("DRAGON_NODE_ID");
    unsetenv("DRAGON_RUNTIME_TOKEN");
    cleanup_tool = getenv("DRAGON_CLEANUP_TOOL");
    helper_path = getenv("DRAGON_POOL_HELPER");
    if (helper_path == NULL) {
        fprintf(stderr, "set DRAGON_POOL_HELPER to the pool-helper executable\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_attach_destroy),
        cmocka_unit_test(test_name_collisions_and_isolation),
        cmocka_unit_test(test_segment_names_keyed_by_token),
        cmocka_unit_test(test_segment_of_another_owner_refused),
        cmocka_unit_test(test_segment_open_to_others_refused),
        cmocka_unit_test(test_alloc_alignment_and_sizes),
        cmocka_unit_test(test_min_block_attr),
        cmocka_unit_test(test_fill_free_coalesce),
        cmocka_unit_test(test_alloc_timeout),
        cmocka_unit_test(test_descriptors),
        cmocka_unit_test(test_bad_input_leaves_pool_usable),
        cmocka_unit_test(test_other_process_frees),
        cmocka_unit_test(test_blocked_alloc_woken_by_other_process),
        cmocka_unit_test(test_concurrent_processes),
        cmocka_unit_test(test_killed_holding_lock),
        cmocka_unit_test(test_killed_while_recovering),
        cmocka_unit_test(test_random_sigkill),
        cmocka_unit_test(test_random_sigkill_cached),
        cmocka_unit_test(test_reclaim_ownership),
        cmocka_unit_test(test_reclaim_stale_alloc_waiter),
        cmocka_unit_test(test_reclaim_killed_churners),
        cmocka_unit_test(test_reclaim_killed_churners_cached),
        cmocka_unit_test(test_cache_counted_and_returned),
        cmocka_unit_test(test_cache_of_dead_process_serves_alloc),
        cmocka_unit_test(test_cache_after_fork),
        cmocka_unit_test(test_cache_double_free),
        cmocka_unit_test(test_reclaim_by_tool),
        cmocka_unit_test(test_nothing_left_in_dev_shm),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
