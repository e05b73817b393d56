/* Status codes, per-thread error messages and version reporting through the C ABI. */
#include <dragon/dragon.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_every_status_has_a_name(void **state) {
    (void)state;
    for (int s = 0; s < DRAGON_STATUS_COUNT_; ++s) {
        const char *name = dragon_strerror((dragon_status_t)s);
        assert_non_null(name);
        assert_string_not_equal(name, "unknown status");
        for (int t = 0; t < s; ++t) {
            assert_string_not_equal(name, dragon_strerror((dragon_status_t)t));
        }
    }
    assert_string_equal(dragon_strerror(DRAGON_SUCCESS), "success");
    assert_string_equal(dragon_strerror((dragon_status_t)9999), "unknown status");
    assert_string_equal(dragon_strerror((dragon_status_t)-1), "unknown status");
}

static void test_version(void **state) {
    (void)state;
    assert_string_equal(dragon_version(), DRAGON_VERSION_STRING);
    int major = -1, minor = -1, patch = -1;
    assert_int_equal(dragon_version_numbers(&major, &minor, &patch), DRAGON_SUCCESS);
    assert_int_equal(major, DRAGON_VERSION_MAJOR);
    assert_int_equal(minor, DRAGON_VERSION_MINOR);
    assert_int_equal(patch, DRAGON_VERSION_PATCH);
    assert_int_equal(dragon_version_numbers(NULL, NULL, NULL), DRAGON_SUCCESS);
    assert_true(DRAGON_VERSION >= DRAGON_VERSION_NUMBER(0, 1, 0));
}

static void *fail_in_thread(void *arg) {
    (void)arg;
    dragon_pool_t *pool = NULL;
    dragon_status_t st = dragon_pool_attach("no-such-pool-in-thread", NULL, &pool);
    return (void *)(st == DRAGON_NOT_FOUND && strstr(dragon_last_error(), "in-thread") != NULL
                        ? (void *)1
                        : NULL);
}

static void test_last_error_is_per_thread(void **state) {
    (void)state;
    dragon_pool_t *pool = NULL;
    assert_int_equal(dragon_pool_create("bad name!", 4096, NULL, &pool), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "bad name!"));
    pthread_t t;
    void *ok = NULL;
    assert_int_equal(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &ok), 0);
    assert_non_null(ok);
    /* The other thread's failure did not overwrite this thread's message. */
    assert_non_null(strstr(dragon_last_error(), "bad name!"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_has_a_name),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_last_error_is_per_thread),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
