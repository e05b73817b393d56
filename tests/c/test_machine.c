/* The machine module: the real node (CPU count from the affinity mask), and synthetic hwloc
 * topologies with NVIDIA, AMD and Intel GPUs (tests/data/topology), so that GPU discovery is
 * tested on machines without GPUs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dragon/dragon.h>

#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define OK(call) assert_int_equal((call), DRAGON_SUCCESS)

static const char *data_dir;

static dragon_machine_t *load_fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    dragon_machine_t *m = NULL;
    OK(dragon_machine_load(path, &m));
    return m;
}

static dragon_node_info_t info_of(dragon_machine_t *m) {
    dragon_node_info_t i = {.struct_size = sizeof i};
    OK(dragon_machine_info(m, &i));
    return i;
}

static dragon_gpu_info_t gpu_of(dragon_machine_t *m, uint32_t index) {
    dragon_gpu_info_t g = {.struct_size = sizeof g};
    OK(dragon_machine_gpu(m, index, &g));
    return g;
}

static void test_this_node(void **state) {
    (void)state;
    unsetenv("DRAGON_TOPOLOGY_XML");
    dragon_machine_t *m = NULL;
    OK(dragon_machine_load(NULL, &m));
    dragon_node_info_t i = info_of(m);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    assert_string_equal(i.host_name, host);
    /* Sized from what this process was granted, not from the machine. */
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(i.cpu_count, (uint32_t)CPU_COUNT(&set));
    assert_true(i.numa_count >= 1);
    uint32_t cpus[1024];
    size_t n = 0;
    OK(dragon_machine_cpus(m, -1, cpus, 1024, &n));
    assert_int_equal(n, i.cpu_count);
    for (size_t k = 0; k < n; ++k) {
        assert_true(CPU_ISSET(cpus[k], &set));
    }
    OK(dragon_machine_free(m));
}

static void test_nvidia_fixture(void **state) {
    (void)state;
    dragon_machine_t *m = load_fixture("nvidia-4gpu.xml");
    dragon_node_info_t i = info_of(m);
    assert_string_equal(i.host_name, "fake-nvidia");
    assert_int_equal(i.cpu_count, 8);
    assert_int_equal(i.numa_count, 2);
    assert_int_equal(i.gpu_count, 4);
    const char *bus[4] = {"0000:10:00.0", "0000:11:00.0", "0000:90:00.0", "0000:91:00.0"};
    for (uint32_t k = 0; k < 4; ++k) {
        dragon_gpu_info_t g = gpu_of(m, k);
        assert_int_equal(g.vendor, DRAGON_GPU_VENDOR_NVIDIA);
        assert_int_equal(g.vendor_index, k);
        assert_int_equal(g.numa_node, (int32_t)(k / 2)); /* two GPUs per package */
        assert_int_equal(g.pci_vendor_id, 0x10de);
        assert_string_equal(g.pci_bus_id, bus[k]);
    }
    uint32_t cpus[16];
    size_t n = 0;
    OK(dragon_machine_cpus(m, 1, cpus, 16, &n));
    assert_int_equal(n, 4);
    assert_int_equal(cpus[0], 4);
    assert_int_equal(cpus[3], 7);
    /* Asking for what does not exist is a clear error. */
    dragon_gpu_info_t g = {.struct_size = sizeof g};
    assert_int_equal(dragon_machine_gpu(m, 4, &g), DRAGON_NOT_FOUND);
    assert_non_null(strstr(dragon_last_error(), "4 GPU(s)"));
    assert_int_equal(dragon_machine_cpus(m, 2, cpus, 16, &n), DRAGON_NOT_FOUND);
    /* A short buffer gets what fits and the full count. */
    OK(dragon_machine_cpus(m, -1, cpus, 3, &n));
    assert_int_equal(n, 8);
    OK(dragon_machine_free(m));
}

static void test_amd_and_intel_fixtures(void **state) {
    (void)state;
    dragon_machine_t *m = load_fixture("amd-2gpu.xml");
    assert_int_equal(info_of(m).gpu_count, 2);
    assert_int_equal(gpu_of(m, 1).vendor, DRAGON_GPU_VENDOR_AMD);
    assert_int_equal(gpu_of(m, 1).vendor_index, 1);
    assert_string_equal(dragon_gpu_visibility_variable(DRAGON_GPU_VENDOR_AMD),
                        "ROCR_VISIBLE_DEVICES");
    OK(dragon_machine_free(m));

    m = load_fixture("intel-1gpu.xml");
    assert_int_equal(info_of(m).gpu_count, 1);
    assert_int_equal(gpu_of(m, 0).vendor, DRAGON_GPU_VENDOR_INTEL);
    assert_string_equal(dragon_gpu_vendor_name(DRAGON_GPU_VENDOR_INTEL), "intel");
    assert_string_equal(dragon_gpu_visibility_variable(DRAGON_GPU_VENDOR_INTEL),
                        "ZE_AFFINITY_MASK");
    OK(dragon_machine_free(m));

    m = load_fixture("cpu-only.xml");
    assert_int_equal(info_of(m).gpu_count, 0);
    assert_null(dragon_gpu_visibility_variable(DRAGON_GPU_VENDOR_NONE));
    OK(dragon_machine_free(m));
}

static void test_environment_and_bad_input(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/nvidia-4gpu.xml", data_dir);
    setenv("DRAGON_TOPOLOGY_XML", path, 1);
    dragon_machine_t *m = NULL;
    OK(dragon_machine_load(NULL, &m));
    assert_int_equal(info_of(m).gpu_count, 4);
    OK(dragon_machine_free(m));
    unsetenv("DRAGON_TOPOLOGY_XML");

    assert_int_equal(dragon_machine_load("/nonexistent/topology.xml", &m), DRAGON_NOT_FOUND);
    assert_null(m);
    char bad[] = "/tmp/dragon-bad-topoXXXXXX";
    int fd = mkstemp(bad);
    assert_true(fd >= 0);
    assert_true(write(fd, "<topology>not really</topology>", 31) == 31);
    close(fd);
    assert_int_not_equal(dragon_machine_load(bad, &m), DRAGON_SUCCESS);
    assert_null(m);
    unlink(bad);
    assert_int_equal(dragon_machine_load(NULL, NULL), DRAGON_INVALID_ARGUMENT);
}

/* ---- policies ---------------------------------------------------------------------- */

static dragon_policy_t fresh_policy(void) {
    dragon_policy_t p;
    OK(dragon_policy_init(&p));
    return p;
}

static void test_policy_merge(void **state) {
    (void)state;
    dragon_policy_t def = fresh_policy(), tmpl = fresh_policy(), group = fresh_policy(),
                    expl = fresh_policy(), out = fresh_policy();
    assert_int_equal(def.placement, DRAGON_PLACEMENT_UNSET);
    assert_int_equal(def.host_id, -1);
    assert_int_equal(def.wait_mode, DRAGON_WAIT_DEFAULT); /* unset */

    def.placement = DRAGON_PLACEMENT_ANYWHERE;
    def.wait_mode = DRAGON_WAIT_IDLE;
    def.cpu_count = 2;
    def.cpus[0] = 0;
    def.cpus[1] = 1;
    tmpl.distribution = DRAGON_DISTRIBUTION_BLOCK;
    tmpl.gpu_count = 1;
    tmpl.gpus[0] = 1;
    tmpl.placement = DRAGON_PLACEMENT_LOCAL;
    group.placement = DRAGON_PLACEMENT_HOST_NAME;
    strcpy(group.host_name, "node-a");
    expl.cpu_count = 1;
    expl.cpus[0] = 3;
    expl.host_id = 5;
    const dragon_policy_t *levels[] = {&def, &tmpl, NULL, &group, &expl};
    OK(dragon_policy_merge(levels, 5, &out));
    assert_int_equal(out.placement, DRAGON_PLACEMENT_HOST_NAME);   /* group over template */
    assert_int_equal(out.distribution, DRAGON_DISTRIBUTION_BLOCK); /* only the template */
    assert_string_equal(out.host_name, "node-a");
    assert_int_equal(out.host_id, 5);
    assert_int_equal(out.cpu_count, 1); /* explicit replaces the default's list */
    assert_int_equal(out.cpus[0], 3);
    assert_int_equal(out.gpu_count, 1);
    assert_int_equal(out.gpus[0], 1);
    assert_int_equal(out.wait_mode, DRAGON_WAIT_IDLE); /* only the default sets it */

    /* The order is the precedence: reversed, the default wins every field it sets. */
    const dragon_policy_t *reversed[] = {&expl, &group, &tmpl, &def};
    OK(dragon_policy_merge(reversed, 4, &out));
    assert_int_equal(out.placement, DRAGON_PLACEMENT_ANYWHERE);
    assert_int_equal(out.cpus[0], 0);
    assert_int_equal(out.cpu_count, 2);

    /* A caller built against an older, shorter struct: only its fields count. */
    dragon_policy_t old = fresh_policy();
    old.placement = DRAGON_PLACEMENT_LOCAL;
    old.wait_mode = DRAGON_WAIT_SPIN; /* beyond the shorter struct: not read */
    old.struct_size = offsetof(dragon_policy_t, distribution);
    const dragon_policy_t *with_old[] = {&def, &old};
    OK(dragon_policy_merge(with_old, 2, &out));
    assert_int_equal(out.placement, DRAGON_PLACEMENT_LOCAL);
    assert_int_equal(out.wait_mode, DRAGON_WAIT_IDLE);

    /* Bad values are refused, naming them. */
    dragon_policy_t bad = fresh_policy();
    bad.wait_mode = 7;
    const dragon_policy_t *with_bad[] = {&bad};
    assert_int_equal(dragon_policy_merge(with_bad, 1, &out), DRAGON_INVALID_ARGUMENT);
    bad.wait_mode = -1; /* what "unset" was before wait.h */
    assert_int_equal(dragon_policy_merge(with_bad, 1, &out), DRAGON_INVALID_ARGUMENT);
    assert_non_null(strstr(dragon_last_error(), "wait mode -1"));
    bad = fresh_policy();
    bad.cpu_count = DRAGON_POLICY_MAX_CPUS + 1;
    assert_int_equal(dragon_policy_merge(with_bad, 1, &out), DRAGON_INVALID_ARGUMENT);
}

static void test_policy_bind(void **state) {
    (void)state;
    dragon_machine_t *m = load_fixture("nvidia-4gpu.xml");
    dragon_policy_t p = fresh_policy();
    p.cpu_count = 2;
    p.cpus[0] = 4;
    p.cpus[1] = 5;
    p.gpu_count = 2;
    p.gpus[0] = 1;
    p.gpus[1] = 3;
    dragon_policy_binding_t b = {.struct_size = sizeof b};
    OK(dragon_policy_bind(&p, m, &b));
    assert_int_equal(b.cpu_count, 2);
    assert_int_equal(b.cpus[1], 5);
    assert_string_equal(b.gpu_variable, "CUDA_VISIBLE_DEVICES");
    assert_string_equal(b.gpu_value, "1,3");
    assert_int_equal(b.gpu_vendor, DRAGON_GPU_VENDOR_NVIDIA);

    p.cpus[1] = 9; /* not on this node */
    assert_int_equal(dragon_policy_bind(&p, m, &b), DRAGON_NOT_FOUND);
    assert_non_null(strstr(dragon_last_error(), "CPU 9"));
    p.cpus[1] = 5;
    p.gpus[1] = 4; /* there are 4 GPUs: 0..3 */
    assert_int_equal(dragon_policy_bind(&p, m, &b), DRAGON_NOT_FOUND);
    assert_non_null(strstr(dragon_last_error(), "GPU 4"));

    /* No affinity asked for: nothing to bind, no variable. */
    dragon_policy_t none = fresh_policy();
    OK(dragon_policy_bind(&none, m, &b));
    assert_int_equal(b.cpu_count, 0);
    assert_string_equal(b.gpu_variable, "");

    /* One policy per GPU: its host, its GPU, the CPUs of its NUMA domain. */
    dragon_policy_t per[8];
    size_t n = 0;
    OK(dragon_policy_per_gpu(m, per, 8, sizeof per[0], &n));
    assert_int_equal(n, 4);
    for (size_t k = 0; k < n; ++k) {
        assert_int_equal(per[k].placement, DRAGON_PLACEMENT_HOST_NAME);
        assert_string_equal(per[k].host_name, "fake-nvidia");
        assert_int_equal(per[k].cpu_count, 4);
        assert_int_equal(per[k].cpus[0], k < 2 ? 0 : 4);
        OK(dragon_policy_bind(&per[k], m, &b));
        char want[24];
        snprintf(want, sizeof want, "%zu", k);
        assert_string_equal(b.gpu_value, want);
    }
    OK(dragon_machine_free(m));

    m = load_fixture("amd-2gpu.xml");
    OK(dragon_policy_per_gpu(m, per, 8, sizeof per[0], &n));
    assert_int_equal(n, 2);
    OK(dragon_policy_bind(&per[1], m, &b));
    assert_string_equal(b.gpu_variable, "ROCR_VISIBLE_DEVICES");
    assert_string_equal(b.gpu_value, "1");
    assert_int_equal(per[1].cpu_count, 8);
    OK(dragon_machine_free(m));

    m = load_fixture("cpu-only.xml");
    OK(dragon_policy_per_gpu(m, per, 8, sizeof per[0], &n));
    assert_int_equal(n, 0);
    OK(dragon_machine_free(m));
}

/* A caller built against a later, larger dragon_policy_t, simulated by an element that
 * begins with today's struct: the library strides by the caller's element size, writes its
 * own struct into each element and leaves the rest of the element alone. */
struct later_policy {
    dragon_policy_t policy;
    uint64_t added[5]; /* fields a later ABI appended */
};

static int untouched(const void *p, size_t n, unsigned char fill) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; ++i) {
        if (b[i] != fill) {
            return 0;
        }
    }
    return 1;
}

static void test_policy_per_gpu_element_size(void **state) {
    (void)state;
    dragon_machine_t *m = load_fixture("nvidia-4gpu.xml");
    static struct later_policy wide[6];
    memset(wide, 0xA5, sizeof wide);
    size_t n = 0;
    OK(dragon_policy_per_gpu(m, &wide[0].policy, 5, sizeof wide[0], &n));
    assert_int_equal(n, 4);
    dragon_policy_binding_t b = {.struct_size = sizeof b};
    for (size_t k = 0; k < 4; ++k) {
        const dragon_policy_t *p = &wide[k].policy;
        assert_int_equal(p->struct_size, sizeof(dragon_policy_t)); /* what was written */
        assert_int_equal(p->placement, DRAGON_PLACEMENT_HOST_NAME);
        assert_string_equal(p->host_name, "fake-nvidia");
        assert_int_equal(p->gpu_count, 1);
        assert_int_equal(p->gpus[0], k);
        assert_int_equal(p->cpu_count, 4);
        assert_int_equal(p->cpus[0], k < 2 ? 0 : 4);
        assert_int_equal(p->wait_mode, DRAGON_WAIT_DEFAULT);
        OK(dragon_policy_bind(p, m, &b));
        char want[24];
        snprintf(want, sizeof want, "%zu", k);
        assert_string_equal(b.gpu_value, want);
        /* Everything past the library's struct (the added fields, any padding) untouched. */
        assert_true(untouched((const unsigned char *)&wide[k] + sizeof(dragon_policy_t),
                              sizeof wide[k] - sizeof(dragon_policy_t), 0xA5));
    }
    /* Room for 5, 4 GPUs: the fifth element and the one past cap are not written. */
    assert_true(untouched(&wide[4], sizeof wide[4], 0xA5));
    assert_true(untouched(&wide[5], sizeof wide[5], 0xA5));

    /* cap limits what is written; *count still says how many there are. */
    memset(wide, 0xA5, sizeof wide);
    OK(dragon_policy_per_gpu(m, &wide[0].policy, 2, sizeof wide[0], &n));
    assert_int_equal(n, 4);
    assert_int_equal(wide[1].policy.gpus[0], 1);
    assert_true(untouched(&wide[2], sizeof wide[2], 0xA5));

    /* The count alone: no array. */
    OK(dragon_policy_per_gpu(m, NULL, 0, sizeof(dragon_policy_t), &n));
    assert_int_equal(n, 4);

    /* An element size smaller than any dragon_policy_t is refused, and nothing is written:
     * one byte short of the last field, the old int-sized mistake, and 0. */
    static dragon_policy_t per[4];
    memset(per, 0xA5, sizeof per);
    const size_t too_small[] = {offsetof(dragon_policy_t, wait_mode) + sizeof per[0].wait_mode - 1,
                                sizeof(int), 0};
    for (size_t i = 0; i < sizeof too_small / sizeof too_small[0]; ++i) {
        assert_int_equal(dragon_policy_per_gpu(m, per, 4, too_small[i], &n),
                         DRAGON_INVALID_ARGUMENT);
        assert_non_null(strstr(dragon_last_error(), "policy_size"));
        assert_non_null(strstr(dragon_last_error(), "sizeof(dragon_policy_t)"));
    }
    assert_int_equal(dragon_policy_per_gpu(m, NULL, 0, 0, &n), DRAGON_INVALID_ARGUMENT);
    assert_true(untouched(per, sizeof per, 0xA5));
    /* An array that could not exist. */
    assert_int_equal(dragon_policy_per_gpu(m, per, SIZE_MAX / 2, sizeof per[0], &n),
                     DRAGON_INVALID_ARGUMENT);
    assert_true(untouched(per, sizeof per, 0xA5));
    OK(dragon_machine_free(m));
}

int main(void) {
    data_dir = getenv("DRAGON_TOPOLOGY_DIR");
    if (data_dir == NULL) {
        fprintf(stderr, "set DRAGON_TOPOLOGY_DIR to tests/data/topology\n");
        return 2;
    }
    /* hwloc would warn on stderr about the deliberately broken file. */
    setenv("HWLOC_HIDE_ERRORS", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_this_node),
        cmocka_unit_test(test_nvidia_fixture),
        cmocka_unit_test(test_amd_and_intel_fixtures),
        cmocka_unit_test(test_environment_and_bad_input),
        cmocka_unit_test(test_policy_merge),
        cmocka_unit_test(test_policy_bind),
        cmocka_unit_test(test_policy_per_gpu_element_size),
    };
    return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
