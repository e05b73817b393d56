/* The C side of the struct layout check (consumer.sh): every field's offset and every
 * struct's size, in the format layout.f90 prints for the Fortran module's bind(C) types. */
#include <dragon/dragon.h>

#include <stddef.h>
#include <stdio.h>

#define SIZE(type) printf("%s %zu\n", #type, sizeof(type))
#define FIELD(type, field) printf("%s.%s %zu\n", #type, #field, offsetof(type, field))

int main(void) {
    SIZE(dragon_pool_attr_t);
    FIELD(dragon_pool_attr_t, runtime_id);
    FIELD(dragon_pool_attr_t, node_id);
    FIELD(dragon_pool_attr_t, min_block);
    FIELD(dragon_pool_attr_t, flags);
    SIZE(dragon_pool_stats_t);
    FIELD(dragon_pool_stats_t, total_bytes);
    FIELD(dragon_pool_stats_t, free_bytes);
    FIELD(dragon_pool_stats_t, used_bytes);
    FIELD(dragon_pool_stats_t, utilization_pct);
    FIELD(dragon_pool_stats_t, allocation_count);
    FIELD(dragon_pool_stats_t, largest_free_block);
    FIELD(dragon_pool_stats_t, min_block);
    FIELD(dragon_pool_stats_t, cached_bytes);
    SIZE(dragon_pool_reclaimed_t);
    FIELD(dragon_pool_reclaimed_t, blocks);
    FIELD(dragon_pool_reclaimed_t, bytes);
    FIELD(dragon_pool_reclaimed_t, waiters);
    FIELD(dragon_pool_reclaimed_t, cached_blocks);
    SIZE(dragon_channel_attr_t);
    FIELD(dragon_channel_attr_t, wait_mode);
    SIZE(dragon_channel_info_t);
    FIELD(dragon_channel_info_t, capacity);
    FIELD(dragon_channel_info_t, slot_size);
    FIELD(dragon_channel_info_t, count);
    FIELD(dragon_channel_info_t, blocked_senders);
    FIELD(dragon_channel_info_t, blocked_receivers);
    SIZE(dragon_policy_t);
    FIELD(dragon_policy_t, placement);
    FIELD(dragon_policy_t, distribution);
    FIELD(dragon_policy_t, host_name);
    FIELD(dragon_policy_t, host_id);
    FIELD(dragon_policy_t, cpu_count);
    FIELD(dragon_policy_t, cpus);
    FIELD(dragon_policy_t, gpu_count);
    FIELD(dragon_policy_t, gpus);
    FIELD(dragon_policy_t, wait_mode);
    SIZE(dragon_process_attr_t);
    FIELD(dragon_process_attr_t, env);
    FIELD(dragon_process_attr_t, cwd);
    FIELD(dragon_process_attr_t, out_mode);
    FIELD(dragon_process_attr_t, err_mode);
    FIELD(dragon_process_attr_t, policy);
    FIELD(dragon_process_attr_t, in_mode);
    FIELD(dragon_process_attr_t, max_restarts);
    FIELD(dragon_process_attr_t, role);
    SIZE(dragon_process_pipes_t);
    FIELD(dragon_process_pipes_t, out_fd);
    FIELD(dragon_process_pipes_t, err_fd);
    SIZE(dragon_process_status_t);
    FIELD(dragon_process_status_t, state);
    FIELD(dragon_process_status_t, pid);
    FIELD(dragon_process_status_t, exit_code);
    FIELD(dragon_process_status_t, restarts);
    FIELD(dragon_process_status_t, node_id);
    return 0;
}
