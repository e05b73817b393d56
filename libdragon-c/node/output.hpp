// The node daemon's output (docs/runtime.md, "Flow control"): its stdout and stderr as
// non-blocking sinks, the managed processes' relayed pipes feeding them line by line, and
// the daemon's log. A sink that fills up pauses the relays feeding it (their producers then
// block on their own pipes, never the daemon) until it has drained.
#pragma once

#include "line_relay.hpp"
#include "reactor.hpp"
#include "sink.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace dragon::node {

class Output {
  public:
    static constexpr std::size_t kHigh = 1 << 20;  // queued: stop reading producers
    static constexpr std::size_t kLow = 256 << 10; // ... and read them again

    enum Stream { kOut = 0, kErr = 1 };

    explicit Output(Reactor &reactor);
    ~Output();
    Output(const Output &) = delete;
    Output &operator=(const Output &) = delete;

    // Write the daemon's stdout and stderr through descriptors of our own (Sink::open); the
    // log goes to stderr from then on.
    void open();

    // Relay a pipe (taken) into a stream until its end of file; the relay's id. A label
    // (`--label`) goes in front of every line.
    uint64_t add_relay(int fd, Stream to, std::string label = {});
    // Prefix the daemon's own log lines with this (`--label`).
    void set_log_label(std::string label) { log_label_ = std::move(label); }
    // Read what the relay's pipe holds now (written before its process ended) into its
    // sink, without waiting; the relay stays until its end of file.
    void drain(uint64_t relay);
    // Teardown, every writer gone: what the pipes hold goes out, and they close.
    void close_relays();
    bool relaying() const { return !relays_.empty(); }

    // Teardown: write out what is queued while the reader takes it; give up (and drop it)
    // once `give_up()` says so. Runs reactor rounds meanwhile.
    template <typename GiveUp>
    void flush(GiveUp give_up) {
        update();
        while (queued() && !give_up()) {
            reactor_.run_once(100);
        }
        drop();
    }
    bool queued() const { return out_.queued() > 0 || err_.queued() > 0; }
    bool pollable() const { return out_.pollable() || err_.pollable(); }
    int64_t last_progress() const;
    void drop();
    // Give shared descriptions their flags back (Sink::restore).
    void restore();

    Sink &sink(Stream s) { return s == kOut ? out_ : err_; }

    // A line for the daemon's log (stderr); printf-style, the newline is added.
    static void log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

  private:
    struct Relay {
        int fd = -1;
        Stream to = kOut;
        uint64_t watch = 0; // 0 while paused
        std::unique_ptr<LineRelay> lines;
    };
    void pump(uint64_t relay, bool drain);
    void close_relay(uint64_t relay);
    // After each round: watch sinks with a queue for room, resume relays of drained ones.
    void update();

    Reactor &reactor_;
    std::string log_label_;
    Sink out_;
    Sink err_;
    uint64_t sink_watch_[2] = {0, 0};
    std::map<uint64_t, Relay> relays_;
    uint64_t next_relay_ = 1;
};

} // namespace dragon::node
