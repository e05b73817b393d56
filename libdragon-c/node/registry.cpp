#include "registry.hpp"

#include <vector>

namespace dragon::node {

namespace pr = dragon::protocol;

bool Registry::start() {
    Router &r = node_.control.router();
    r.add("register", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        on_register(c, std::get<pr::Register>(req.body));
    });
    r.add("lookup", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        on_lookup(c, std::get<pr::Lookup>(req.body));
    });
    r.add("unregister", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        on_unregister(c, std::get<pr::Unregister>(req.body));
    });
    return true;
}

void Registry::on_register(const Call &c, pr::Register &req) {
    const std::string &name = req.name;
    auto it = entries_.find(name);
    if (it != entries_.end() && !req.replace) {
        node_.control.reply(c, DRAGON_ALREADY_EXISTS, {},
                            "registry: '" + name + "' is registered already");
        return;
    }
    if (it == entries_.end() && entries_.size() >= kMaxEntries) {
        node_.control.reply(c, DRAGON_NO_SPACE, {},
                            "registry: full (" + std::to_string(kMaxEntries) + " names)");
        return;
    }
    size_t old_bytes = it == entries_.end() ? 0 : name.size() + it->second.value.size();
    size_t new_bytes = name.size() + req.value.size();
    if (bytes_ - old_bytes + new_bytes > kMaxBytes) {
        node_.control.reply(c, DRAGON_NO_SPACE, {},
                            "registry: full (its names and values may take " +
                                std::to_string(kMaxBytes >> 20) + " MiB in all, " +
                                std::to_string(bytes_) +
                                " bytes are taken); unregister names no longer needed");
        return;
    }
    bytes_ = bytes_ - old_bytes + new_bytes;
    entries_[name] = Entry{req.kind, std::move(req.value)};
    node_.control.reply(c, DRAGON_SUCCESS);
    // The lookups parked on this name are answered now.
    std::vector<uint64_t> found;
    for (auto [at, end] = lookups_by_name_.equal_range(name); at != end; ++at) {
        found.push_back(at->second);
    }
    for (uint64_t id : found) {
        answer(id, DRAGON_SUCCESS);
    }
}

void Registry::on_lookup(const Call &c, pr::Lookup &req) {
    if (auto it = entries_.find(req.name); it != entries_.end()) {
        node_.control.reply(c, DRAGON_SUCCESS, pr::LookupReply{it->second.kind, it->second.value});
        return;
    }
    if (req.timeout_ns == 0) {
        node_.control.reply(c, DRAGON_NOT_FOUND, {}, "registry: no name '" + req.name + "'");
        return;
    }
    uint64_t id = next_lookup_++;
    Lookup l;
    l.call = c;
    l.name = req.name;
    l.parked = node_.control.park(c, [this, id] { drop(id); });
    if (l.parked == 0) {
        return; // answered NO_SPACE
    }
    if (req.timeout_ns > 0) {
        l.timer = node_.reactor.after(req.timeout_ns, [this, id] { answer(id, DRAGON_TIMEOUT); });
    }
    lookups_by_name_.emplace(l.name, id);
    lookups_.emplace(id, std::move(l));
}

void Registry::answer(uint64_t id, dragon_status_t st) {
    auto it = lookups_.find(id);
    if (it == lookups_.end()) {
        return;
    }
    const Lookup &l = it->second;
    if (st == DRAGON_SUCCESS) {
        const Entry &e = entries_.at(l.name);
        node_.control.reply(l.call, DRAGON_SUCCESS, pr::LookupReply{e.kind, e.value});
    } else {
        node_.control.reply(l.call, st, {}, "registry: no name '" + l.name + "'");
    }
    node_.control.unpark(l.parked);
    drop(id);
}

void Registry::drop(uint64_t id) {
    auto it = lookups_.find(id);
    if (it == lookups_.end()) {
        return;
    }
    node_.reactor.cancel(it->second.timer);
    for (auto [at, end] = lookups_by_name_.equal_range(it->second.name); at != end; ++at) {
        if (at->second == id) {
            lookups_by_name_.erase(at);
            break;
        }
    }
    lookups_.erase(it);
}

void Registry::on_unregister(const Call &c, pr::Unregister &req) {
    auto it = entries_.find(req.name);
    if (it == entries_.end()) {
        node_.control.reply(c, DRAGON_NOT_FOUND, {}, "registry: no name '" + req.name + "'");
        return;
    }
    bytes_ -= req.name.size() + it->second.value.size();
    entries_.erase(it);
    node_.control.reply(c, DRAGON_SUCCESS);
}

} // namespace dragon::node
