// Relaying managed processes' output line by line (docs/runtime.md): bytes read from each
// source are cut at newlines and every complete line goes out in one write(), so lines of
// two processes never interleave inside a line. A partial line waits for its newline, for
// the source's end (then it is written with a newline added), or for the limit of max_line
// bytes before its newline (then what fits is written with a newline, and the rest follows
// as a new line).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace dragon::runtime {

class LineRelay {
  public:
    using Sink = std::function<void(std::string_view line)>; // one call per whole line

    explicit LineRelay(Sink sink, std::size_t max_line = 65536)
        : sink_(std::move(sink)), max_line_(max_line > 0 ? max_line : 1) {}

    // Feed bytes read from the source.
    void feed(std::string_view bytes);
    // The source ended: flush a pending partial line (a newline is added).
    void finish();

  private:
    Sink sink_;
    std::size_t max_line_;
    std::string pending_;
};

} // namespace dragon::runtime
