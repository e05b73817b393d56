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
    };
    return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
