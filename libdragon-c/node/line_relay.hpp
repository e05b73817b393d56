// Relaying managed processes' output line by line (docs/runtime.md): bytes read from each
// source are cut at newlines and every complete line goes out in one sink call, so lines of
// two processes never interleave inside a line. The relay is byte-exact: nothing is added
// and nothing removed. A partial line waits for its newline, for the source's end (then it
// goes out as it is, without a newline), or for the limit of max_line bytes before its
// newline (then those bytes go out as a chunk, and the line continues in the next chunk:
// such a long line may interleave with other processes' output at chunk boundaries, but it
// never gains a byte).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace dragon::node {

class LineRelay {
  public:
    // One call per whole line, or per max_line-byte chunk of a longer one.
    using Sink = std::function<void(std::string_view bytes)>;

    explicit LineRelay(Sink sink, std::size_t max_line = 65536)
        : sink_(std::move(sink)), max_line_(max_line > 0 ? max_line : 1) {}

    // Feed bytes read from the source.
    void feed(std::string_view bytes);
    // The source ended: pass on a pending partial line as it is.
    void finish();
    // Bytes held back waiting for a newline.
    std::size_t pending() const { return pending_.size(); }

  private:
    Sink sink_;
    std::size_t max_line_;
    std::string pending_;
};

} // namespace dragon::node
