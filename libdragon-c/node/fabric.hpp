// The daemons' fabric (docs/multinode.md, "Transport"): one libfabric reliable-datagram
// endpoint per node daemon, through which it sends messages straight to any other node's
// daemon once the book of nodes (with every endpoint's address) is known. The provider comes
// from DRAGON_OFI_PROVIDER, else the first of cxi, verbs;ofi_rxm, efa and tcp;ofi_rxm that
// libfabric offers. Completions are read on the reactor (the completion queue's wait
// descriptor, and a short timer while sends are in flight: providers progress manually).
//
// A message is cut into fragments of at most kFragment bytes, each with the sender's node
// and the message's length in front; the endpoint is asked for send-after-send ordering, so
// the fragments of one sender arrive in order and are put back together per sender.
#pragma once

#include "reactor.hpp"

#include <dragon/status.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// libfabric's handles (rdma/fabric.h), declared here so that only fabric.cpp includes it.
struct fi_info;
struct fid_fabric;
struct fid_domain;
struct fid_cq;
struct fid_av;
struct fid_ep;

namespace dragon::node {

class Fabric {
  public:
    using OnMessage = std::function<void(uint32_t from, std::string &bytes)>;

    Fabric(Reactor &reactor, uint32_t node_id, OnMessage on_message);
    ~Fabric();
    Fabric(const Fabric &) = delete;
    Fabric &operator=(const Fabric &) = delete;

    // Open the endpoint, bound to `source` (a host name or address of this node; "": any).
    // False with *why when no provider offers one (the tree carries everything then).
    bool open(const std::string &source, std::string *why);
    bool is_open() const { return ep_ != nullptr; }
    // This endpoint's address (to give the other nodes) and the provider's name.
    const std::string &address() const { return address_; }
    const std::string &provider() const { return provider_; }
    // Every node's address, by node id ("" for a node without one); false with *why.
    bool set_peers(const std::vector<std::string> &addresses, std::string *why);
    bool reaches(uint32_t node) const;
    // Queue a message for node `to` (whole, in order with this node's other messages to it).
    void send(uint32_t to, std::string_view bytes);
    // Messages not yet handed to the provider, or not yet completed.
    std::size_t pending() const { return queue_.size() + in_flight_; }
    void close();

  private:
    struct Buffer;
    void progress();
    void post_receive(Buffer *b);
    void received(Buffer *b, std::size_t len);
    void drain_queue();
    void arm_timer();

    Reactor &reactor_;
    uint32_t node_id_;
    OnMessage on_message_;
    ::fi_info *info_ = nullptr;
    ::fid_fabric *fabric_ = nullptr;
    ::fid_domain *domain_ = nullptr;
    ::fid_cq *cq_ = nullptr;
    ::fid_av *av_ = nullptr;
    ::fid_ep *ep_ = nullptr;
    bool need_mr_ = false;
    int wait_fd_ = -1;
    uint64_t watch_ = 0;
    uint64_t timer_ = 0;
    std::string address_;
    std::string provider_;
    std::vector<uint64_t> peers_; // fi_addr_t by node id; FI_ADDR_UNSPEC when none
    std::vector<std::unique_ptr<Buffer>> receives_;
    std::vector<std::unique_ptr<Buffer>> sends_; // staging buffers
    std::vector<Buffer *> free_sends_;
    std::vector<Buffer *> repost_; // receives the provider could not take yet
    struct Fragment {
        uint32_t to;
        std::string bytes; // header included
    };
    std::deque<Fragment> queue_;
    std::size_t in_flight_ = 0;
    std::map<uint32_t, std::string> partial_; // by sender: a message being put together
    std::map<uint32_t, std::size_t> expected_;
};

} // namespace dragon::node
