// The task pool's shared state and messages (docs/taskpool.md): what the owner and its
// workers, processes of one node's program, exchange through the pool's shared memory and its
// two channels. Both sides are the same library build (the worker environment carries the
// version), so the structs are copied as they are, in host byte order.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace dragon::taskpool {

inline constexpr uint32_t kWireVersion = 1;
inline constexpr uint64_t kMagic = 0x4c4f4f504b534154ULL; // "TASKPOOL"
inline constexpr const char *kWorkerEnv = "DRAGON_TASKPOOL";
inline constexpr size_t kMaxName = 255;
inline constexpr size_t kMaxInitArg = size_t{16} * 1024;
inline constexpr size_t kSlotBytes = 256; // channel slot: larger messages travel zero-copy

// A chunk's place in the owner's table: a word each in shared memory, changed by CAS only.
//   owner:  FREE -> PENDING (before the task message is sent); PENDING -> CANCELLED (cancel
//           before it started); RUNNING -> KILLING (cancel or timeout while it runs: then the
//           worker in the word is ended);
//   worker: PENDING -> RUNNING (with its index, before it runs the chunk); RUNNING -> DONE
//           (before it sends the results). A worker that finds KILLING there exits: it was
//           being ended for this chunk, and takes no other.
// So the owner ends a worker only while it holds the chunk the owner means. A worker's end is
// handled after the results it sent were read, so a chunk still DONE then lost its results
// with its worker. The generation tells a stale message (of an earlier use of the slot) from
// the current one.
enum SlotState : uint32_t {
    kFree = 0,
    kPending = 1,
    kRunning = 2,
    kCancelled = 3,
    kDone = 4,
    kKilling = 5,
};

inline constexpr uint64_t slot_word(SlotState s, uint32_t worker, uint32_t gen) {
    return (static_cast<uint64_t>(gen) << 32) | (static_cast<uint64_t>(worker & 0xffffffu) << 8) |
           static_cast<uint64_t>(s);
}
inline constexpr SlotState word_state(uint64_t w) {
    return static_cast<SlotState>(w & 0xffu);
}
inline constexpr uint32_t word_worker(uint64_t w) {
    return static_cast<uint32_t>((w >> 8) & 0xffffffu);
}
inline constexpr uint32_t word_gen(uint64_t w) {
    return static_cast<uint32_t>(w >> 32);
}

// The block at the start of the shared state (one pool allocation):
//   Header | uint64 slot words [n_slots] | uint64 start_ns [n_slots] | Worker [n_workers]
struct Header {
    uint64_t magic;
    uint32_t version;
    uint32_t n_slots;
    uint32_t n_workers;
    uint32_t max_tasks_per_child;
    int32_t owner_pid;
    uint32_t reserved;
};
struct WorkerEntry {
    std::atomic<uint64_t> puid;  // of the incarnation in this place
    std::atomic<uint64_t> items; // items it ran
};

inline size_t shared_bytes(uint32_t n_slots, uint32_t n_workers) {
    return sizeof(Header) + 2 * sizeof(uint64_t) * n_slots + sizeof(WorkerEntry) * n_workers;
}

struct SharedView {
    Header *header = nullptr;
    std::atomic<uint64_t> *words = nullptr;
    std::atomic<uint64_t> *start_ns = nullptr;
    WorkerEntry *workers = nullptr;

    static SharedView of(void *base, uint32_t n_slots) {
        SharedView v;
        auto *p = static_cast<unsigned char *>(base);
        v.header = reinterpret_cast<Header *>(p);
        v.words = reinterpret_cast<std::atomic<uint64_t> *>(p + sizeof(Header));
        v.start_ns = v.words + n_slots;
        v.workers = reinterpret_cast<WorkerEntry *>(v.start_ns + n_slots);
        return v;
    }
};

// Owner -> workers (the task channel).
enum TaskKind : uint32_t { kTask = 1, kStop = 2 };
struct TaskHeader {
    uint32_t kind;
    uint32_t slot;
    uint32_t gen;
    uint32_t n_items;
    uint32_t name_len; // then the name, then per item: uint32 length, bytes
    uint32_t reserved;
};

// Workers (and the owner's own event handler) -> owner (the result channel).
enum ResultKind : uint32_t {
    kResult = 1,     // a chunk's results: per item int32 status, uint32 length, bytes
    kDropped = 2,    // a cancelled chunk's message, taken and not run
    kReady = 3,      // a worker serves (aux: its pid)
    kRetired = 4,    // a worker reached max_tasks_per_child and exits
    kInitFailed = 5, // a worker's initializer failed (one item: its message)
    kEnded = 6,      // a worker process ended (from the runtime's event; aux: puid, code)
    kNudge = 7,      // wake the thread that reads results (nothing else)
};
struct ResultHeader {
    uint32_t kind;
    uint32_t slot;
    uint32_t gen;
    uint32_t worker;
    uint32_t n_items;
    int32_t code;
    uint64_t aux;
};

// Append/read helpers for the packed item lists.
inline void put_u32(unsigned char *&p, uint32_t v) {
    std::memcpy(p, &v, sizeof v);
    p += sizeof v;
}
inline bool get_u32(const unsigned char *&p, const unsigned char *end, uint32_t *v) {
    if (end - p < static_cast<std::ptrdiff_t>(sizeof *v)) {
        return false;
    }
    std::memcpy(v, p, sizeof *v);
    p += sizeof *v;
    return true;
}

// Decoders of the two messages (wire.cpp; fuzzed by tests/fuzz/fuzz_taskpool.cpp). Each
// checks every length against the bytes there are and gives false for anything malformed;
// the views point into the message.
struct TaskView {
    TaskHeader header{};
    std::string_view name;
    std::vector<std::string_view> items; // kTask: header.n_items arguments
};
bool decode_task(const unsigned char *msg, size_t len, TaskView *out);

struct ResultItem {
    int32_t status = 0;
    std::string_view bytes;
};
struct ResultView {
    ResultHeader header{};
    std::vector<ResultItem> items; // kResult and kInitFailed: header.n_items of them
};
bool decode_result(const unsigned char *msg, size_t len, ResultView *out);

// Encoders, the decoders' other half.
void encode_item(std::vector<unsigned char> *body, std::string_view bytes);
void encode_result_item(std::vector<unsigned char> *body, int32_t status, std::string_view bytes);
// The same into memory of 8 + bytes.size() bytes at p; returns the end.
unsigned char *write_result_item(unsigned char *p, int32_t status, std::string_view bytes);

} // namespace dragon::taskpool
