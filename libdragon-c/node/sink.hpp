// Output the node daemon writes for others (docs/runtime.md, "Flow control"): one of its
// standard streams, through a descriptor of its own that never blocks. A pipe, FIFO or
// terminal is reopened (/proc/self/fd/N) as a new open file description with O_NONBLOCK,
// so that the launcher's and the shell's description keep their flags; one that cannot be
// reopened (another user's pipe) has O_NONBLOCK set on the shared description, and its
// flags given back by restore(); a socket is written with MSG_DONTWAIT; a regular file
// (which never blocks for long) is written as it is. What the reader does not take yet
// waits in a queue, in order: callers put whole lines, so lines stay whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace dragon::node {

class Sink {
  public:
    // Write through a descriptor of our own for std_fd (a closed std_fd drops output).
    void open(int std_fd);
    // Write into a link instead (a daemon below the head: its output goes up the bootstrap
    // tree as messages, docs/multinode.md): `put` takes whole lines, `queued` says what the
    // link holds.
    void to_link(std::function<void(std::string_view)> put, std::function<std::size_t()> queued);
    // Give a shared description its flags back (see above).
    void restore();

    int fd() const { return fd_; }
    // Whether there is somewhere to write (a descriptor, or a link).
    bool usable() const { return fd_ >= 0 || link_put_ != nullptr; }
    // Whether waiting for the reader makes sense: not for a regular file (a link drains by
    // itself, on the reactor).
    bool pollable() const { return (mode_ != kBlocking && fd_ >= 0) || link_put_ != nullptr; }
    std::size_t queued() const { return link_queued_ ? link_queued_() : buf_.size() - head_; }
    bool broken() const { return broken_; }
    // CLOCK_MONOTONIC ns of the last write that took bytes (0: none yet).
    int64_t last_progress() const { return last_progress_; }

    // Write what the reader takes now, queue the rest (after what is queued already).
    void put(std::string_view bytes);
    // Write what the reader takes now of the queue.
    void flush();
    // Forget what is queued (teardown gave up on the reader).
    void drop();

    // Producers (relay ids) that wait for this sink to drain; kept by the daemon.
    std::set<uint64_t> paused;

  private:
    std::size_t write_some(std::string_view b);

    enum Mode { kNonBlocking, kSocket, kBlocking };
    int fd_ = -1;
    Mode mode_ = kBlocking;
    std::string buf_;
    std::size_t head_ = 0;
    bool broken_ = false;
    int64_t last_progress_ = 0;
    int shared_flags_ = -1; // >= 0: the flags of a shared description we set O_NONBLOCK on
    std::function<void(std::string_view)> link_put_;
    std::function<std::size_t()> link_queued_;
};

} // namespace dragon::node
