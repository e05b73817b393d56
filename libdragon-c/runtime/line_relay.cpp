#include "line_relay.hpp"

namespace dragon::runtime {

void LineRelay::feed(std::string_view bytes) {
    while (!bytes.empty()) {
        std::size_t nl = bytes.find('\n');
        bool has_nl = nl != std::string_view::npos;
        std::size_t content = has_nl ? nl : bytes.size(); // bytes before the newline
        if (pending_.empty() && has_nl && content <= max_line_) {
            sink_(bytes.substr(0, nl + 1)); // a whole line in the input: no copy
            bytes.remove_prefix(nl + 1);
            continue;
        }
        std::size_t room = max_line_ - pending_.size();
        if (content > room) {
            // Over the limit (max_line bytes before the newline): emit what fits as a line
            // of its own and go on with the rest.
            pending_.append(bytes.substr(0, room));
            pending_.push_back('\n');
            sink_(pending_);
            pending_.clear();
            bytes.remove_prefix(room);
            continue;
        }
        std::size_t take = has_nl ? nl + 1 : bytes.size();
        pending_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (has_nl) {
            sink_(pending_);
            pending_.clear();
        }
    }
}

void LineRelay::finish() {
    if (!pending_.empty()) {
        pending_.push_back('\n');
        sink_(pending_);
        pending_.clear();
    }
}

} // namespace dragon::runtime
