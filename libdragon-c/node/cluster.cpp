#include "cluster.hpp"

#include "output.hpp"

#include "../common/error.hpp"
#include "../process/spawn.hpp"
#include "../protocol/codec.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <set>

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace dragon::node {

namespace pr = dragon::protocol;
namespace dp = dragon::proc;

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int64_t kTeardownWait = 15 * kSecond; // children to end their subtrees
constexpr int64_t kHurriedWait = 3 * kSecond;

// A word for a POSIX shell (the command ssh runs on the other side).
std::string quoted(const std::string &s) {
    std::string out = "'";
    for (char ch : s) {
        out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    }
    return out + "'";
}

std::vector<uint64_t> *puids_of(pr::RequestBody &body) {
    if (auto *j = std::get_if<pr::Join>(&body)) {
        return &j->puids;
    }
    if (auto *s = std::get_if<pr::Signal>(&body)) {
        return &s->puids;
    }
    if (auto *s = std::get_if<pr::Status>(&body)) {
        return &s->puids;
    }
    return nullptr;
}

} // namespace

struct Cluster::Scatter {
    Call call;
    std::vector<uint64_t> puids; // the request's, in its order
    size_t parts = 0;
    size_t answered = 0;
    dragon_status_t status = DRAGON_SUCCESS; // the first failure but a timeout
    std::string error;
    bool timed_out = false;
    std::map<uint64_t, int> codes;               // join
    std::map<uint64_t, pr::ProcessState> states; // status
};

Cluster::Cluster(NodeContext &node, NodeInfo &info, pr::LinkBoot boot, int parent_in,
                 int parent_out)
    : Service(node), info_(info), boot_(std::move(boot)),
      fabric_(node.reactor, node.node_id,
              [this](uint32_t from, std::string &bytes) { on_fabric(from, bytes); }) {
    if (boot_.hosts.empty()) {
        boot_.hosts = {""};
    }
    boot_.fanout = std::max<uint32_t>(boot_.fanout, 1);
    if (parent_in >= 0) {
        parent_ = std::make_unique<Link>(
            node_.reactor, parent_in, parent_out,
            [this](pr::LinkMessage &m) { on_message(nullptr, m); },
            [this](const std::string &why) {
                // The parent is gone, as a launcher that left: everything here ends now.
                node_.hurry = true;
                if (!node_.stopping) {
                    Output::log("dragon-node: node %u: the link to its parent closed (%s); "
                                "tearing down",
                                node_.node_id, why.c_str());
                    node_.stop(true);
                }
            });
        node_.have_launcher = true;
    }
}

Cluster::~Cluster() {
    for (auto &[n, c] : children_) {
        if (c.pidfd >= 0) {
            close(c.pidfd);
        }
    }
}

std::string Cluster::host(uint32_t n) const {
    if (n < book_.size() && !book_[n].host_name.empty()) {
        return book_[n].host_name;
    }
    if (n < boot_.names.size() && !boot_.names[n].empty()) {
        return boot_.names[n];
    }
    return n < boot_.hosts.size() && !boot_.hosts[n].empty() ? boot_.hosts[n]
                                                             : "node " + std::to_string(n);
}

bool Cluster::start() {
    Router &r = node_.control.router();
    r.add("nodes", [this](const Call &c, pr::Request &, ReceivedFds &) {
        node_.control.reply(c, DRAGON_SUCCESS, pr::NodesReply{book_});
    });
    r.set_forward([this](const Call &c, pr::Request &req, ReceivedFds &fds) {
        return intercept(c, req, fds);
    });
    node_.reactor.each_round([this] {
        dead_links_.clear();
        flow_control();
    });
    pr::NodeReply me;
    if (dragon_status_t st = info_.describe(&me); st != DRAGON_SUCCESS) {
        Output::log("dragon-node: node %u cannot describe itself: %s", node_.node_id,
                    dragon_last_error());
        return false;
    }
    if (count() > 1) {
        // The test mode's nodes are all here; elsewhere a node is bound to the address it
        // is reached by.
        std::string source = boot_.wlm == "test" ? "127.0.0.1" : boot_.hosts[node_.node_id];
        std::string why;
        if (fabric_.open(source, &why)) {
            me.fabric_addr = fabric_.address();
        } else if (const char *req = std::getenv("DRAGON_FABRIC_REQUIRED");
                   req != nullptr && std::strcmp(req, "1") == 0) {
            Output::log("dragon-node: node %u: %s (DRAGON_FABRIC_REQUIRED=1)", node_.node_id,
                        why.c_str());
            return false;
        }
    }
    joined_.push_back(std::move(me));
    if (parent_) {
        node_.output.sink(Output::kOut)
            .to_link([this](std::string_view b) { send_output(0, b); },
                     [this] { return output_queued(); });
        node_.output.sink(Output::kErr)
            .to_link([this](std::string_view b) { send_output(1, b); },
                     [this] { return output_queued(); });
    }
    uint64_t first = static_cast<uint64_t>(node_.node_id) * boot_.fanout + 1;
    for (uint64_t n = first; n < first + boot_.fanout && n < count(); ++n) {
        ++expected_children_;
        start_child(static_cast<uint32_t>(n));
    }
    if (expected_children_ == 0 && !failed_) {
        subtree_joined();
    }
    return true;
}

bool Cluster::start_child(uint32_t n) {
    std::string id = std::to_string(n);
    std::vector<std::string> argv;
    if (boot_.launch.empty()) {
        argv = {boot_.node_exe, "--link", "--node-id", id};
    } else {
        argv = boot_.launch;
        argv.push_back(boot_.hosts[n]);
        argv.push_back("exec " + quoted(boot_.node_exe) + " --link --node-id " + id);
    }
    dp::SpawnRequest req;
    req.program = argv[0];
    req.args.assign(argv.begin() + 1, argv.end());
    req.in = req.out = req.err = dp::Stdio::kPipe;
    req.die_with_parent = true;
    dp::Spawned sp;
    if (dp::spawn(req, &sp) != DRAGON_SUCCESS) {
        lost(n, host(n), dragon_last_error(), true);
        return false;
    }
    Child &c = children_[n];
    c.node = n;
    c.pid = sp.pid;
    c.pidfd = sp.pidfd;
    // What the command says before the link is up (ssh's own errors, a shell's "not found").
    node_.output.add_relay(sp.err_fd, Output::kErr, boot_.label ? "[" + host(n) + "] " : "");
    c.link = std::make_unique<Link>(
        node_.reactor, sp.out_fd, sp.in_fd,
        [this, n](pr::LinkMessage &m) { on_message(&children_.at(n), m); },
        [this, n](const std::string &why) { child_closed(n, why); });
    pr::LinkBoot b = boot_;
    b.node_id = n;
    c.link->send(b);
    c.timer = node_.reactor.after(static_cast<int64_t>(boot_.boot_timeout_ms) * kMs, [this, n] {
        Child &ch = children_.at(n);
        ch.timer = 0;
        if (!ch.joined) {
            lost(n, host(n),
                 "did not join within " + std::to_string(boot_.boot_timeout_ms / 1000) + " s",
                 true);
        }
    });
    return true;
}

void Cluster::when_up(std::function<void(bool ok, const std::string &why)> f) {
    when_up_ = std::move(f);
    if (up_ || failed_) {
        when_up_(up_, failed_ ? why_failed_ : std::string());
    }
}

void Cluster::up(bool ok, const std::string &why) {
    if (up_ || failed_) {
        return;
    }
    up_ = ok;
    failed_ = !ok;
    why_failed_ = why;
    if (when_up_) {
        when_up_(ok, why);
    }
}

void Cluster::on_message(Child *from, pr::LinkMessage &m) {
    if (auto *j = std::get_if<pr::LinkJoined>(&m); j != nullptr && from != nullptr) {
        joined_child(*from, *j);
    } else if (auto *b = std::get_if<pr::LinkBook>(&m); b != nullptr && from == nullptr) {
        got_book(*b);
    } else if (auto *f = std::get_if<pr::LinkForward>(&m)) {
        on_forward(*f);
    } else if (auto *o = std::get_if<pr::LinkOutput>(&m); o != nullptr && from != nullptr) {
        node_.output.sink(o->stream == 0 ? Output::kOut : Output::kErr).put(o->bytes);
    } else if (auto *l = std::get_if<pr::LinkLost>(&m); l != nullptr && from != nullptr) {
        lost(l->node_id, l->host, l->why, l->booting);
    } else if (auto *t = std::get_if<pr::LinkTeardown>(&m); t != nullptr && from == nullptr) {
        node_.stop(t->now);
    } else {
        Output::log("dragon-node: node %u: an unexpected link message (kind %zu) from %s",
                    node_.node_id, m.index(),
                    from != nullptr ? ("node " + std::to_string(from->node)).c_str()
                                    : "its parent");
    }
}

void Cluster::joined_child(Child &c, pr::LinkJoined &j) {
    if (c.joined) {
        return;
    }
    c.joined = true;
    node_.reactor.cancel(c.timer);
    c.timer = 0;
    for (pr::NodeReply &n : j.nodes) {
        joined_.push_back(std::move(n));
    }
    if (++joined_children_ == expected_children_) {
        subtree_joined();
    }
}

void Cluster::subtree_joined() {
    if (failed_) {
        return;
    }
    if (parent_) {
        parent_->send(pr::LinkJoined{joined_});
        return;
    }
    // The head: everyone is here.
    std::vector<pr::NodeReply> all(count());
    std::vector<bool> seen(count(), false);
    for (pr::NodeReply &n : joined_) {
        if (n.node_id < count() && !seen[n.node_id]) {
            seen[n.node_id] = true;
            all[n.node_id] = std::move(n);
        }
    }
    joined_.clear();
    if (std::find(seen.begin(), seen.end(), false) != seen.end()) {
        up(false, "a node joined twice or not at all");
        return;
    }
    pr::LinkBook b{std::move(all)};
    got_book(b);
}

void Cluster::got_book(pr::LinkBook &b) {
    book_ = b.nodes;
    std::vector<std::string> addresses;
    size_t without = 0;
    for (const pr::NodeReply &n : book_) {
        addresses.push_back(n.fabric_addr);
        without += n.fabric_addr.empty() ? 1 : 0;
    }
    if (std::string why; fabric_.is_open() && !fabric_.set_peers(addresses, &why)) {
        Output::log("dragon-node: node %u: fabric: %s; requests go along the tree", node_.node_id,
                    why.c_str());
        fabric_.close();
    }
    if (!parent_ && without > 0 && count() > 1) {
        Output::log("dragon-node: %zu of %u nodes have no fabric endpoint: requests to them go "
                    "along the tree",
                    without, count());
    }
    for (auto &[n, c] : children_) {
        if (c.link && !c.link->closed()) {
            c.link->send(b);
        }
    }
    up(true, "");
}

void Cluster::lost(uint32_t n, const std::string &host_name, const std::string &why, bool booting) {
    if (node_.stopping) {
        return; // children end with the teardown
    }
    if (parent_) {
        parent_->send(pr::LinkLost{n, host_name, why, booting});
        if (booting) {
            failed_ = true; // this subtree cannot join; the head ends the start
        }
        return;
    }
    std::string what = "node " + std::to_string(n) + " (" + host_name + ")";
    if (!up_) {
        up(false, what + " did not start: " + why); // run_daemon says so
        return;
    }
    Output::log("dragon-node: %s was lost: %s; ending the runtime", what.c_str(), why.c_str());
    node_.control.publish(pr::Event{pr::NodeLost{n, host_name, why}});
    node_.stop(false);
}

void Cluster::child_closed(uint32_t n, const std::string &why) {
    Child &c = children_.at(n);
    node_.reactor.cancel(c.timer);
    c.timer = 0;
    dead_links_.push_back(std::move(c.link));
    if (!node_.stopping && !boot_.launch.empty()) {
        clean_up(n);
    }
    lost(n, host(n), "its daemon's link closed (" + why + ")", !c.joined);
}

// A daemon that died could not remove what it made on its host: dragon-cleanup does, run
// there through the launch command (bounded: teardown waits for it, then kills it).
void Cluster::clean_up(uint32_t n) {
    std::string dir = boot_.node_exe.substr(0, boot_.node_exe.rfind('/') + 1);
    std::vector<std::string> argv = boot_.launch;
    argv.push_back(boot_.hosts[n]);
    argv.push_back("exec " + quoted(dir + "dragon-cleanup") + " --runtime-id " +
                   quoted(node_.runtime_id));
    dp::SpawnRequest req;
    req.program = argv[0];
    req.args.assign(argv.begin() + 1, argv.end());
    req.in = req.out = dp::Stdio::kDevNull;
    req.err = dp::Stdio::kPipe;
    req.die_with_parent = true;
    dp::Spawned sp;
    if (dp::spawn(req, &sp) != DRAGON_SUCCESS) {
        return;
    }
    node_.output.add_relay(sp.err_fd, Output::kErr);
    int pidfd = sp.pidfd;
    uint64_t id = next_cleanup_++;
    cleanups_[id].pidfd = pidfd;
    // A pidfd is readable once its process has ended (the process manager reaps it).
    cleanups_[id].watch = node_.reactor.watch(pidfd, EPOLLIN, [this, id](uint32_t) {
        auto it = cleanups_.find(id);
        if (it != cleanups_.end()) {
            node_.reactor.unwatch(it->second.watch);
            close(it->second.pidfd);
            cleanups_.erase(it);
        }
    });
}

Link *Cluster::next_hop(uint32_t to) {
    uint32_t me = node_.node_id;
    if (to == me || to >= count()) {
        return nullptr;
    }
    uint32_t j = to;
    while (j != 0 && parent_of(j) != me) {
        j = parent_of(j);
    }
    if (j != 0) {
        auto it = children_.find(j);
        return it != children_.end() && it->second.link && !it->second.link->closed()
                   ? it->second.link.get()
                   : nullptr;
    }
    return parent_ && !parent_->closed() ? parent_.get() : nullptr;
}

void Cluster::send_to(uint32_t to, const pr::LinkMessage &m) {
    if (std::holds_alternative<pr::LinkForward>(m) && fabric_.reaches(to)) {
        fabric_.send(to, pr::encode(m)); // one hop, straight there
        return;
    }
    if (Link *l = next_hop(to)) {
        l->send(m);
        return;
    }
    // No way there: a request is answered here, so that its caller is not left waiting.
    const auto *f = std::get_if<pr::LinkForward>(&m);
    if (f != nullptr && !f->is_reply) {
        pr::Request req;
        pr::decode(f->bytes, &req);
        pr::Reply r;
        r.id = req.id;
        r.status = DRAGON_CLOSED;
        r.error = "node " + std::to_string(to) + " (" + host(to) + ") cannot be reached";
        pr::LinkForward back;
        back.to = f->from;
        back.from = node_.node_id;
        back.tag = f->tag;
        back.is_reply = true;
        back.bytes = pr::encode(r, "");
        if (back.to == node_.node_id) {
            on_forward(back);
        } else {
            send_to(back.to, back);
        }
    }
}

void Cluster::on_fabric(uint32_t from, std::string &bytes) {
    pr::LinkMessage m;
    if (pr::decode(bytes, &m) != DRAGON_SUCCESS) {
        Output::log("dragon-node: node %u: a malformed message from node %u on the fabric: %s",
                    node_.node_id, from, dragon_last_error());
        return;
    }
    if (auto *f = std::get_if<pr::LinkForward>(&m)) {
        on_forward(*f);
    }
}

void Cluster::on_forward(pr::LinkForward &f) {
    if (f.to != node_.node_id) {
        send_to(f.to, f);
        return;
    }
    if (f.is_reply) {
        auto it = pending_.find(f.tag);
        if (it != pending_.end()) {
            auto done = std::move(it->second);
            pending_.erase(it);
            done(f.bytes);
        }
        return;
    }
    // A request from another node, served here as any client's; its answer goes back.
    auto client = std::make_shared<uint64_t>(0);
    uint32_t from = f.from;
    uint64_t tag = f.tag;
    *client = node_.control.add_local_client([this, client, from, tag](std::string reply) {
        pr::LinkForward back;
        back.to = from;
        back.from = node_.node_id;
        back.tag = tag;
        back.is_reply = true;
        back.bytes = std::move(reply);
        send_to(from, back);
        node_.control.remove_local_client(*client);
    });
    node_.control.route_local(*client, f.bytes);
}

void Cluster::request(uint32_t to, const pr::Request &req,
                      std::function<void(const std::string &reply)> done) {
    std::string bytes = pr::encode(req);
    if (to == node_.node_id) {
        auto client = std::make_shared<uint64_t>(0);
        *client = node_.control.add_local_client(
            [this, client, done = std::move(done)](std::string reply) {
                node_.control.remove_local_client(*client);
                done(reply);
            });
        node_.control.route_local(*client, bytes);
        return;
    }
    uint64_t tag = next_tag_++;
    pending_.emplace(tag, std::move(done));
    pr::LinkForward f;
    f.to = to;
    f.from = node_.node_id;
    f.tag = tag;
    f.bytes = std::move(bytes);
    send_to(to, f);
}

void Cluster::relay_reply(const Call &c, const std::string &bytes) {
    pr::Incoming in;
    dragon_status_t st = pr::decode(bytes, &in);
    auto *r = std::get_if<pr::Reply>(&in);
    if (r == nullptr) {
        node_.control.reply(c, st != DRAGON_SUCCESS ? st : DRAGON_MALFORMED, {},
                            std::string("another node's reply: ") + dragon_last_error());
        return;
    }
    node_.control.reply(c, r->status, std::move(r->body), r->error);
}

bool Cluster::intercept(const Call &c, pr::Request &req, ReceivedFds &fds) {
    if (count() <= 1) {
        return false;
    }
    uint32_t me = node_.node_id;
    if (auto *sp = std::get_if<pr::Spawn>(&req.body)) {
        int64_t target = me;
        if (sp->host_id >= 0) {
            if (sp->host_id >= static_cast<int64_t>(count())) {
                node_.control.reply(c, DRAGON_NOT_FOUND, {},
                                    "placement: no node with host id " +
                                        std::to_string(sp->host_id) + " (the runtime has " +
                                        std::to_string(count()) + " nodes, ids 0 to " +
                                        std::to_string(count() - 1) + ")");
                return true;
            }
            target = sp->host_id;
        } else if (!sp->host_name.empty()) {
            auto it = std::find_if(book_.begin(), book_.end(), [&](const pr::NodeReply &n) {
                return n.host_name == sp->host_name;
            });
            if (it == book_.end()) {
                std::string names;
                for (size_t i = 0; i < book_.size() && i < 8; ++i) {
                    names += (i != 0 ? ", " : "") + book_[i].host_name;
                }
                node_.control.reply(c, DRAGON_NOT_FOUND, {},
                                    "placement: no node named '" + sp->host_name +
                                        "' in this runtime (it has " + names +
                                        (book_.size() > 8 ? ", ..." : "") + ")");
                return true;
            }
            target = it->node_id;
        }
        if (target == me) {
            return false;
        }
        for (pr::Stream s : sp->streams) {
            if (s == pr::Stream::kPipe || s == pr::Stream::kFd) {
                node_.control.reply(c, DRAGON_NOT_SUPPORTED, {},
                                    "spawn on node " + std::to_string(target) + " (" +
                                        host(static_cast<uint32_t>(target)) +
                                        "): a PIPE or descriptor stream cannot reach another "
                                        "node (use RELAY or DEVNULL)");
                return true;
            }
        }
        (void)fds;
        request(static_cast<uint32_t>(target), req,
                [this, c](const std::string &reply) { relay_reply(c, reply); });
        return true;
    }
    if (std::vector<uint64_t> *puids = puids_of(req.body)) {
        return scatter(c, req, *puids);
    }
    bool head_only = std::holds_alternative<pr::Register>(req.body) ||
                     std::holds_alternative<pr::Lookup>(req.body) ||
                     std::holds_alternative<pr::Unregister>(req.body) ||
                     std::holds_alternative<pr::Shutdown>(req.body);
    if (head_only && me != 0) {
        request(0, req, [this, c](const std::string &reply) { relay_reply(c, reply); });
        return true;
    }
    return false;
}

bool Cluster::scatter(const Call &c, pr::Request &req, const std::vector<uint64_t> &puids) {
    std::map<uint32_t, std::vector<uint64_t>> by_node;
    for (uint64_t puid : puids) {
        uint64_t n = puid >> 32;
        if (n >= count()) {
            node_.control.reply(c, DRAGON_NOT_FOUND, {},
                                "no such process: " + std::to_string(puid));
            return true;
        }
        by_node[static_cast<uint32_t>(n)].push_back(puid);
    }
    if (by_node.size() == 1 && by_node.begin()->first == node_.node_id) {
        return false; // all of them here
    }
    auto s = std::make_shared<Scatter>();
    s->call = c;
    s->puids = puids;
    s->parts = by_node.size();
    bool is_join = std::holds_alternative<pr::Join>(req.body);
    bool is_status = std::holds_alternative<pr::Status>(req.body);
    for (auto &[n, list] : by_node) {
        pr::Request part = req;
        *puids_of(part.body) = list;
        request(n, part, [this, s, list = list, is_join, is_status](const std::string &bytes) {
            pr::Incoming in;
            pr::decode(bytes, &in);
            pr::Reply r;
            if (auto *got = std::get_if<pr::Reply>(&in)) {
                r = std::move(*got);
            } else {
                r.status = DRAGON_MALFORMED;
                r.error = "another node's reply is not a reply";
            }
            ++s->answered;
            if (r.status == DRAGON_TIMEOUT && is_join) {
                s->timed_out = true;
            } else if (r.status != DRAGON_SUCCESS && s->status == DRAGON_SUCCESS) {
                s->status = r.status;
                s->error = r.error;
            }
            if (const auto *j = std::get_if<pr::JoinReply>(&r.body)) {
                for (size_t i = 0; i < list.size() && i < j->exit_codes.size(); ++i) {
                    s->codes[list[i]] = j->exit_codes[i];
                }
            }
            if (const auto *st = std::get_if<pr::StatusReply>(&r.body)) {
                for (const pr::ProcessState &p : st->processes) {
                    s->states[p.puid] = p;
                }
            }
            if (s->answered < s->parts) {
                return;
            }
            if (s->status != DRAGON_SUCCESS) {
                node_.control.reply(s->call, s->status, {}, s->error);
            } else if (is_join) {
                pr::JoinReply out;
                for (uint64_t p : s->puids) {
                    auto it = s->codes.find(p);
                    out.exit_codes.push_back(it != s->codes.end() ? it->second : -1);
                }
                node_.control.reply(s->call, s->timed_out ? DRAGON_TIMEOUT : DRAGON_SUCCESS,
                                    std::move(out), s->timed_out ? "still running" : "");
            } else if (is_status) {
                pr::StatusReply out;
                for (uint64_t p : s->puids) {
                    out.processes.push_back(s->states[p]);
                }
                node_.control.reply(s->call, DRAGON_SUCCESS, std::move(out));
            } else {
                node_.control.reply(s->call, DRAGON_SUCCESS);
            }
        });
    }
    return true;
}

void Cluster::send_output(uint32_t stream, std::string_view bytes) {
    if (parent_) {
        parent_->send(pr::LinkOutput{stream, std::string(bytes)});
    }
}

std::size_t Cluster::output_queued() const {
    return parent_ ? parent_->queued() : 0;
}

// Output a child sends waits in its pipe while this node's own output is backed up.
void Cluster::flow_control() {
    std::size_t q = std::max(node_.output.sink(Output::kOut).queued(),
                             node_.output.sink(Output::kErr).queued());
    if (q >= Output::kHigh || q < Output::kLow) {
        for (auto &[n, c] : children_) {
            if (c.link && !c.link->closed()) {
                c.link->pause_reading(q >= Output::kHigh);
            }
        }
    }
}

void Cluster::stop() {
    bool now = node_.stop_now || node_.hurry;
    auto open_children = [this] {
        size_t open = 0;
        for (auto &[n, c] : children_) {
            open += c.link && !c.link->closed() ? 1 : 0;
        }
        return open;
    };
    for (auto &[n, c] : children_) {
        if (c.link && !c.link->closed()) {
            c.link->pause_reading(false);
            c.link->send(pr::LinkTeardown{now});
        }
    }
    int64_t deadline = Reactor::now_ns() + (now ? kHurriedWait : kTeardownWait);
    bool hurried = now;
    while ((open_children() > 0 || !cleanups_.empty()) && Reactor::now_ns() < deadline) {
        if (node_.hurry && !hurried) {
            hurried = true;
            for (auto &[n, c] : children_) {
                if (c.link && !c.link->closed()) {
                    c.link->send(pr::LinkTeardown{true});
                }
            }
            deadline = std::min(deadline, Reactor::now_ns() + kHurriedWait);
        }
        node_.reactor.run_once(10);
        dead_links_.clear();
    }
    for (auto &[n, c] : children_) {
        if (c.link && !c.link->closed()) {
            Output::log("dragon-node: node %u (%s) did not end its part in time; killing its "
                        "launch command",
                        n, host(n).c_str());
            c.link->close();
        }
        if (c.pidfd >= 0) {
            syscall(SYS_pidfd_send_signal, c.pidfd, SIGKILL, nullptr, 0);
            close(c.pidfd);
            c.pidfd = -1;
        }
    }
    for (auto &[id, cl] : cleanups_) {
        node_.reactor.unwatch(cl.watch);
        syscall(SYS_pidfd_send_signal, cl.pidfd, SIGKILL, nullptr, 0);
        close(cl.pidfd);
    }
    cleanups_.clear();
    fabric_.close();
}

} // namespace dragon::node
