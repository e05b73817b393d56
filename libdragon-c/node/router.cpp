#include "router.hpp"

#include "output.hpp"

#include "../protocol/codec.hpp"

#include <dragon/status.h>

#include <unistd.h>

namespace dragon::node {

ReceivedFds::~ReceivedFds() {
    for (std::size_t i = next_; i < fds_.size(); ++i) {
        close(fds_[i]);
    }
}

void Router::add(const std::string &op, Handler handler, bool takes_fds) {
    ops_[op] = Op{std::move(handler), takes_fds};
}

void Router::route(Call call, std::string_view bytes, bool truncated, ReceivedFds &fds) {
    if (truncated) {
        Output::log("dragon-node: truncated control message (too long, or too many descriptors)");
        refuse_(call, DRAGON_BAD_DESCRIPTOR, "message or descriptors truncated");
        return;
    }
    protocol::Request req;
    dragon_status_t st = protocol::decode(bytes, &req);
    call.id = req.id;
    call.op = req.op;
    if (st != DRAGON_SUCCESS) {
        std::string why = dragon_last_error();
        Output::log("dragon-node: refused a control message from pid %d: %s",
                    static_cast<int>(call.pid), why.c_str());
        refuse_(call, st, why);
        return;
    }
    auto it = ops_.find(req.op);
    if (it == ops_.end() || req.body.index() == 0) {
        refuse_(call, DRAGON_NOT_SUPPORTED, "unknown op '" + req.op + "'");
        return;
    }
    if (!it->second.takes_fds && fds.left() != 0) {
        refuse_(call, DRAGON_BAD_DESCRIPTOR, "'" + req.op + "' takes no descriptors");
        return;
    }
    if (forward_ && forward_(call, req, fds)) {
        return; // another node serves it (docs/multinode.md)
    }
    it->second.handler(call, req, fds);
}

} // namespace dragon::node
