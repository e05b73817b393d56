// A link between two node daemons (docs/multinode.md): a byte stream each way (a pipe pair:
// the stdin/stdout of the command that started the child daemon, local or over ssh), cut
// into messages of the link codec, each a 4-byte big-endian length and its bytes. Nothing
// blocks: what the stream does not take waits in a queue, watched for room on the reactor.
// The end of the input stream (or an error, or a malformed frame) closes the link, once.
// Handlers (on_message, on_closed) may send and close, but must not destroy the link: that
// waits for the reactor's next round.
#pragma once

#include "reactor.hpp"

#include "../protocol/messages.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace dragon::node {

class Link {
  public:
    using OnMessage = std::function<void(protocol::LinkMessage &message)>;
    using OnClosed = std::function<void(const std::string &why)>;

    // Takes in_fd and out_fd (the same descriptor for a socket) and makes them non-blocking.
    Link(Reactor &reactor, int in_fd, int out_fd, OnMessage on_message, OnClosed on_closed);
    ~Link();
    Link(const Link &) = delete;
    Link &operator=(const Link &) = delete;

    // Queue a message (dropped if the link is closed).
    void send(const protocol::LinkMessage &message);
    // Bytes waiting for room in the stream.
    std::size_t queued() const { return out_buf_.size() - out_head_; }
    // Stop or start reading (flow control: the output a child sends waits in its pipe).
    void pause_reading(bool paused);
    bool closed() const { return closed_; }
    // Close now (both directions); on_closed is not called.
    void close();
    // Write what the stream takes now (teardown's last rounds).
    void flush() { write_some(); }

  private:
    void readable();
    void process();
    void write_some();
    void closed_by_peer(const std::string &why);
    void update_watches();

    Reactor &reactor_;
    int in_fd_ = -1;
    int out_fd_ = -1;
    uint64_t in_watch_ = 0;
    uint64_t out_watch_ = 0;
    bool paused_ = false;
    bool closed_ = false;
    std::string in_buf_;
    std::string out_buf_;
    std::size_t out_head_ = 0;
    OnMessage on_message_;
    OnClosed on_closed_;
};

// Read one message from a blocking descriptor within timeout_ms (a child daemon's boot
// message, before its reactor runs). DRAGON_TIMEOUT, DRAGON_CLOSED (end of input) or the
// decoder's status.
dragon_status_t read_link_message(int fd, int timeout_ms, protocol::LinkMessage *out);

} // namespace dragon::node
