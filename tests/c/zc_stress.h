/* Shared by test_channel.c and channel-helper: the control block and message format of the
 * producer/consumer pair that the reclaim test kills again and again. The control block is an
 * allocation of the channel's pool, owned by the test. */
#ifndef DRAGON_TEST_ZC_STRESS_H
#define DRAGON_TEST_ZC_STRESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ZS_MAX_MSGS (1u << 21)
#define ZS_MAGIC 0x5a435354u
#define ZS_STOP UINT64_MAX

typedef struct {
    _Atomic uint64_t stop;                   /* producers leave their loop once set */
    _Atomic uint64_t next_seq;               /* the sequence number of the next message sent */
    _Atomic uint64_t received;               /* messages received and checked */
    _Atomic uint64_t errors;                 /* messages damaged or received twice */
    _Atomic uint64_t seen[ZS_MAX_MSGS / 64]; /* a bit per sequence number received */
} zs_ctrl;

/* Every message starts with this header; its other bytes are zs_byte(seq, i). */
typedef struct {
    uint64_t seq;
    uint32_t len;
    uint32_t magic;
} zs_head;

static inline unsigned char zs_byte(uint64_t seq, size_t i) {
    return (unsigned char)(seq * 131u + i * 7u + (i >> 8));
}

#endif /* DRAGON_TEST_ZC_STRESS_H */
