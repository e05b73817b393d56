/* libdragon — wait modes: how a call that has to block waits (channels, queues, sync
 * objects), and how a process waits by default (the wait mode of its policy).
 *
 * One enum and one spelling, everywhere:
 *   C                       text ($DRAGON_WAIT_MODE, control protocol)   C++ (dragon/wait.hpp)
 *   DRAGON_WAIT_DEFAULT     (never written: absent)                      WaitMode::process_default
 *   DRAGON_WAIT_ADAPTIVE    "adaptive"                                   WaitMode::adaptive
 *   DRAGON_WAIT_SPIN        "spin"                                       WaitMode::spin
 *   DRAGON_WAIT_IDLE        "idle"                                       WaitMode::idle
 *
 * DRAGON_WAIT_DEFAULT is the one way to say "not chosen here", and it is 0, so a zeroed
 * struct says it too:
 *   - on a handle (dragon_channel_attr_t, dragon_channel_set_wait_mode, the sync objects'
 *     attr): wait in the process's default mode, the wait mode of the policy it was started
 *     with (the runtime passes it in $DRAGON_WAIT_MODE), else ADAPTIVE;
 *   - in a policy (dragon_policy_t.wait_mode): unset, so merging takes a less specific
 *     level's mode (docs/policy.md).
 * An explicit mode wins over both. A value outside the enum is DRAGON_INVALID_ARGUMENT.
 * docs/abi.md, "Wait modes".
 */
#ifndef DRAGON_WAIT_H
#define DRAGON_WAIT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dragon_wait_mode {
    DRAGON_WAIT_DEFAULT = 0,  /* not chosen here: see above */
    DRAGON_WAIT_ADAPTIVE = 1, /* spin for about 20 us, then sleep on a futex */
    DRAGON_WAIT_SPIN = 2,     /* never sleep: lowest latency, burns a CPU while it waits */
    DRAGON_WAIT_IDLE = 3      /* sleep at once */
} dragon_wait_mode_t;

#ifdef __cplusplus
}
#endif

#endif /* DRAGON_WAIT_H */
