#include "line_relay.hpp"

namespace dragon::node {

void LineRelay::feed(std::string_view bytes) {
    // pending_ never holds more than max_line_ bytes.
    while (!bytes.empty()) {
        std::size_t nl = bytes.find('\n');
        bool has_nl = nl != std::string_view::npos;
        std::size_t content = has_nl ? nl : bytes.size(); // bytes before the newline
        std::size_t room = max_line_ - pending_.size();
        if (has_nl && content <= room) { // the line ends here
            if (pending_.empty()) {
                sink_(bytes.substr(0, nl + 1)); // a whole line in the input: no copy
            } else {
                pending_.append(bytes.substr(0, nl + 1));
                sink_(pending_);
                pending_.clear();
            }
            bytes.remove_prefix(nl + 1);
        } else if (content > room) { // longer than max_line_: a chunk goes out as it is
            if (pending_.empty()) {
                sink_(bytes.substr(0, room));
            } else {
                pending_.append(bytes.substr(0, room));
                sink_(pending_);
                pending_.clear();
            }
            bytes.remove_prefix(room);
        } else { // no newline yet, and it fits: wait for more
            pending_.append(bytes);
            return;
        }
    }
}

void LineRelay::finish() {
    if (!pending_.empty()) {
        sink_(pending_);
        pending_.clear();
    }
}

} // namespace dragon::node
