// The cluster service (docs/multinode.md): a node daemon's place among the runtime's nodes.
//
// Daemons form a k-ary tree by node id (node i's children are i*k+1 .. i*k+k): each starts
// its children with the allocation's launch command (a local fork, ssh HOST, ...), speaks to
// each over the command's stdin/stdout (a Link), and is up once every child's subtree has
// joined; the head (node 0) then sends every node the book of all nodes. Afterwards the tree
// carries the control requests that concern another node (a spawn placed there, a join of
// its processes, the registry, which the head keeps), the output of every node's processes
// to the launcher, the news of a node that was lost, and the teardown.
#pragma once

#include "fabric.hpp"
#include "link.hpp"
#include "node_info.hpp"
#include "service.hpp"

#include "../protocol/messages.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dragon::node {

class Cluster : public Service {
  public:
    // boot: this node's part (for the head: what the launcher said; else its parent).
    // parent_in/out: the link to the parent (-1: the head).
    Cluster(NodeContext &node, NodeInfo &info, protocol::LinkBoot boot, int parent_in,
            int parent_out);
    ~Cluster() override;
    const char *name() const override { return "cluster"; }
    bool start() override;
    void stop() override;

    // Once: the runtime is up (the head) or this subtree has joined (ok), or it could not
    // start (why). On one node, at once.
    void when_up(std::function<void(bool ok, const std::string &why)> f);
    // A daemon below the head writes its output into the link to its parent.
    bool has_parent() const { return parent_ != nullptr; }
    void send_output(uint32_t stream, std::string_view bytes);
    std::size_t output_queued() const;

  private:
    struct Child {
        uint32_t node = 0;
        std::unique_ptr<Link> link;
        pid_t pid = -1;
        int pidfd = -1;
        bool joined = false;
        uint64_t timer = 0;
    };
    // A request sent in parts to several nodes (a join, signal or status over processes of
    // more than one node), answered once every part has been.
    struct Scatter;

    uint32_t count() const { return static_cast<uint32_t>(boot_.hosts.size()); }
    uint32_t parent_of(uint32_t n) const { return (n - 1) / boot_.fanout; }
    std::string host(uint32_t n) const;
    // The link a message for node `to` leaves by (nullptr: `to` is this node, or unknown).
    Link *next_hop(uint32_t to);
    void send_to(uint32_t to, const protocol::LinkMessage &m);

    bool start_child(uint32_t n);
    void on_message(Child *from, protocol::LinkMessage &m);
    void child_closed(uint32_t n, const std::string &why);
    void clean_up(uint32_t n);
    void joined_child(Child &c, protocol::LinkJoined &j);
    void subtree_joined();
    void got_book(protocol::LinkBook &b);
    void up(bool ok, const std::string &why);
    void lost(uint32_t n, const std::string &host, const std::string &why, bool booting);
    void on_forward(protocol::LinkForward &f);
    void on_fabric(uint32_t from, std::string &bytes);
    void flow_control();

    // Requests about other nodes (the router's forward hook).
    bool intercept(const Call &c, protocol::Request &req, ReceivedFds &fds);
    // Send an encoded request to node `to` (this node too, through a local client); `done`
    // gets the encoded reply.
    void request(uint32_t to, const protocol::Request &req,
                 std::function<void(const std::string &reply)> done);
    void relay_reply(const Call &c, const std::string &reply);
    bool scatter(const Call &c, protocol::Request &req, const std::vector<uint64_t> &puids);

    NodeInfo &info_;
    protocol::LinkBoot boot_;
    Fabric fabric_; // straight to any node, once up (else the tree)
    std::unique_ptr<Link> parent_;
    std::map<uint32_t, Child> children_;
    uint32_t expected_children_ = 0;
    uint32_t joined_children_ = 0;
    std::vector<protocol::NodeReply> joined_; // this subtree's nodes, as they join
    std::vector<protocol::NodeReply> book_;   // every node, by id, once up
    std::function<void(bool, const std::string &)> when_up_;
    bool up_ = false;
    bool failed_ = false;
    std::string why_failed_;
    std::map<uint64_t, std::function<void(const std::string &)>> pending_; // by tag
    uint64_t next_tag_ = 1;
    std::vector<std::unique_ptr<Link>> dead_links_; // destroyed at the end of a round
    struct Cleanup {
        int pidfd = -1;
        uint64_t watch = 0;
    };
    std::map<uint64_t, Cleanup> cleanups_; // dragon-cleanup on the hosts of lost nodes
    uint64_t next_cleanup_ = 1;
};

} // namespace dragon::node
