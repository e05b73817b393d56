#include "fabric.hpp"

#include "output.hpp"

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <sys/epoll.h>

namespace dragon::node {

namespace {

constexpr std::size_t kFragment = 16384; // within tcp;ofi_rxm's eager size: sent at once
constexpr std::size_t kHead = 8;         // sender's node, the message's length
constexpr int kReceives = 32;
constexpr int kSends = 32;
constexpr int64_t kProgressNs = 1000000; // while sends are in flight

void put32(char *p, uint32_t v) {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
}
uint32_t get32(const char *p) {
    auto b = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

} // namespace

// A registered buffer; the fi_context comes first so that a completion's context is the
// buffer.
struct Fabric::Buffer {
    struct fi_context ctx {};
    std::vector<char> data;
    struct fid_mr *mr = nullptr;
    void *desc = nullptr;
    bool is_send = false;
    static Buffer *of(void *context) { return reinterpret_cast<Buffer *>(context); }
};

Fabric::Fabric(Reactor &reactor, uint32_t node_id, OnMessage on_message)
    : reactor_(reactor), node_id_(node_id), on_message_(std::move(on_message)) {}

Fabric::~Fabric() {
    close();
}

bool Fabric::open(const std::string &source, std::string *why) {
    std::vector<std::string> providers = {"cxi", "verbs;ofi_rxm", "efa", "tcp;ofi_rxm"};
    if (const char *p = std::getenv("DRAGON_OFI_PROVIDER"); p != nullptr && *p != '\0') {
        providers = {p};
    }
    std::string tried;
    for (const std::string &prov : providers) {
        struct fi_info *hints = fi_allocinfo();
        if (hints == nullptr) {
            *why = "fi_allocinfo failed";
            return false;
        }
        hints->ep_attr->type = FI_EP_RDM;
        hints->caps = FI_MSG;
        hints->mode = FI_CONTEXT;
        hints->domain_attr->mr_mode =
            FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
        hints->domain_attr->threading = FI_THREAD_DOMAIN;
        hints->tx_attr->msg_order = FI_ORDER_SAS;
        hints->rx_attr->msg_order = FI_ORDER_SAS;
        hints->fabric_attr->prov_name = strdup(prov.c_str());
        int rc = fi_getinfo(FI_VERSION(1, 9), source.empty() ? nullptr : source.c_str(), nullptr,
                            source.empty() ? 0 : FI_SOURCE, hints, &info_);
        fi_freeinfo(hints);
        if (rc == 0 && info_ != nullptr) {
            provider_ = prov;
            break;
        }
        info_ = nullptr;
        tried += (tried.empty() ? "" : ", ") + prov + " (" + fi_strerror(-rc) + ")";
    }
    if (info_ == nullptr) {
        *why = "no libfabric provider for reliable datagrams" +
               (source.empty() ? std::string() : " at " + source) + ": " + tried;
        return false;
    }
    auto failed = [&](const char *what, int rc) {
        *why = std::string(what) + ": " + fi_strerror(-rc);
        close();
        return false;
    };
    if (int rc = fi_fabric(info_->fabric_attr, &fabric_, nullptr); rc != 0) {
        return failed("fi_fabric", rc);
    }
    if (int rc = fi_domain(fabric_, info_, &domain_, nullptr); rc != 0) {
        return failed("fi_domain", rc);
    }
    struct fi_cq_attr cq_attr {};
    cq_attr.format = FI_CQ_FORMAT_MSG;
    cq_attr.wait_obj = FI_WAIT_FD;
    cq_attr.size = 4 * (kReceives + kSends);
    if (fi_cq_open(domain_, &cq_attr, &cq_, nullptr) != 0) {
        cq_attr.wait_obj = FI_WAIT_NONE; // polled on a timer instead
        if (int rc = fi_cq_open(domain_, &cq_attr, &cq_, nullptr); rc != 0) {
            return failed("fi_cq_open", rc);
        }
    }
    struct fi_av_attr av_attr {};
    av_attr.type = FI_AV_TABLE;
    if (int rc = fi_av_open(domain_, &av_attr, &av_, nullptr); rc != 0) {
        return failed("fi_av_open", rc);
    }
    if (int rc = fi_endpoint(domain_, info_, &ep_, nullptr); rc != 0) {
        return failed("fi_endpoint", rc);
    }
    if (int rc = fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV); rc != 0) {
        return failed("fi_ep_bind (completion queue)", rc);
    }
    if (int rc = fi_ep_bind(ep_, &av_->fid, 0); rc != 0) {
        return failed("fi_ep_bind (address vector)", rc);
    }
    if (int rc = fi_enable(ep_); rc != 0) {
        return failed("fi_enable", rc);
    }
    char name[256];
    size_t len = sizeof name;
    if (int rc = fi_getname(&ep_->fid, name, &len); rc != 0) {
        return failed("fi_getname", rc);
    }
    address_.assign(name, len);
    need_mr_ = (info_->domain_attr->mr_mode & FI_MR_LOCAL) != 0;
    auto make = [&](bool send) -> std::unique_ptr<Buffer> {
        auto b = std::make_unique<Buffer>();
        b->data.resize(kFragment);
        b->is_send = send;
        if (need_mr_ && fi_mr_reg(domain_, b->data.data(), b->data.size(), send ? FI_SEND : FI_RECV,
                                  0, 0, 0, &b->mr, nullptr) == 0) {
            b->desc = fi_mr_desc(b->mr);
        }
        return b;
    };
    for (int i = 0; i < kReceives; ++i) {
        receives_.push_back(make(false));
        post_receive(receives_.back().get());
    }
    for (int i = 0; i < kSends; ++i) {
        sends_.push_back(make(true));
        free_sends_.push_back(sends_.back().get());
    }
    if (cq_attr.wait_obj == FI_WAIT_FD && fi_control(&cq_->fid, FI_GETWAIT, &wait_fd_) == 0 &&
        wait_fd_ >= 0) {
        watch_ = reactor_.watch(wait_fd_, EPOLLIN, [this](uint32_t) { progress(); });
    } else {
        wait_fd_ = -1;
    }
    arm_timer();
    return true;
}

bool Fabric::set_peers(const std::vector<std::string> &addresses, std::string *why) {
    peers_.assign(addresses.size(), FI_ADDR_UNSPEC);
    for (size_t n = 0; n < addresses.size(); ++n) {
        if (addresses[n].empty() || !is_open()) {
            continue;
        }
        fi_addr_t a = FI_ADDR_UNSPEC;
        if (fi_av_insert(av_, addresses[n].data(), 1, &a, 0, nullptr) != 1) {
            *why = "fi_av_insert refused node " + std::to_string(n) + "'s address";
            return false;
        }
        peers_[n] = a;
    }
    return true;
}

bool Fabric::reaches(uint32_t node) const {
    return is_open() && node < peers_.size() && node != node_id_ && peers_[node] != FI_ADDR_UNSPEC;
}

void Fabric::post_receive(Buffer *b) {
    if (ep_ == nullptr) {
        return;
    }
    if (fi_recv(ep_, b->data.data(), b->data.size(), b->desc, FI_ADDR_UNSPEC, &b->ctx) ==
        -FI_EAGAIN) {
        repost_.push_back(b); // after the next progress
    }
}

void Fabric::send(uint32_t to, std::string_view bytes) {
    if (!reaches(to)) {
        return;
    }
    auto total = static_cast<uint32_t>(bytes.size());
    std::size_t off = 0;
    do {
        std::size_t n = std::min(kFragment - kHead, bytes.size() - off);
        Fragment f{to, std::string(kHead, '\0')};
        put32(f.bytes.data(), node_id_);
        put32(f.bytes.data() + 4, total);
        f.bytes.append(bytes.substr(off, n));
        queue_.push_back(std::move(f));
        off += n;
    } while (off < bytes.size());
    drain_queue();
    arm_timer();
}

void Fabric::drain_queue() {
    while (ep_ != nullptr && !queue_.empty() && !free_sends_.empty()) {
        Fragment &f = queue_.front();
        Buffer *b = free_sends_.back();
        std::memcpy(b->data.data(), f.bytes.data(), f.bytes.size());
        ssize_t rc = fi_send(ep_, b->data.data(), f.bytes.size(), b->desc, peers_[f.to], &b->ctx);
        if (rc == -FI_EAGAIN) {
            return; // the provider's queue is full: after the next progress
        }
        free_sends_.pop_back();
        if (rc != 0) {
            Output::log("dragon-node: fabric: a send to node %u failed: %s", f.to,
                        fi_strerror(static_cast<int>(-rc)));
            free_sends_.push_back(b);
        } else {
            ++in_flight_;
        }
        queue_.pop_front();
    }
}

void Fabric::received(Buffer *b, std::size_t len) {
    if (len < kHead) {
        return;
    }
    uint32_t from = get32(b->data.data());
    uint32_t total = get32(b->data.data() + 4);
    auto it = partial_.find(from);
    if (it == partial_.end()) {
        it = partial_.emplace(from, std::string()).first;
        expected_[from] = total;
    }
    it->second.append(b->data.data() + kHead, len - kHead);
    if (it->second.size() >= expected_[from]) {
        std::string message = std::move(it->second);
        partial_.erase(it);
        expected_.erase(from);
        if (message.size() == total) {
            on_message_(from, message);
        } else {
            Output::log("dragon-node: fabric: a message from node %u came apart (%zu of %u "
                        "bytes); dropped",
                        from, message.size(), total);
        }
    }
}

void Fabric::progress() {
    if (cq_ == nullptr) {
        return;
    }
    for (int rounds = 0; rounds < 64; ++rounds) {
        struct fi_cq_msg_entry e[16];
        ssize_t n = fi_cq_read(cq_, e, 16);
        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry err {};
            if (fi_cq_readerr(cq_, &err, 0) > 0 && err.op_context != nullptr) {
                Buffer *b = Buffer::of(err.op_context);
                if (b->is_send) {
                    free_sends_.push_back(b);
                    --in_flight_;
                } else if (err.err != FI_ECANCELED) {
                    post_receive(b);
                }
            }
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; ++i) {
            Buffer *b = Buffer::of(e[i].op_context);
            if (b == nullptr) {
                continue;
            }
            if (b->is_send) {
                free_sends_.push_back(b);
                --in_flight_;
            } else {
                received(b, e[i].len);
                post_receive(b);
            }
        }
    }
    std::vector<Buffer *> again = std::move(repost_);
    repost_.clear();
    for (Buffer *b : again) {
        post_receive(b);
    }
    drain_queue();
    if (wait_fd_ >= 0) {
        struct fid *f = &cq_->fid;
        if (fi_trywait(fabric_, &f, 1) != FI_SUCCESS) {
            reactor_.post([this] { progress(); }); // more to read before sleeping
            return;
        }
    }
    arm_timer();
}

void Fabric::arm_timer() {
    if (timer_ != 0 || ep_ == nullptr || (wait_fd_ >= 0 && pending() == 0 && repost_.empty())) {
        return;
    }
    timer_ = reactor_.after(kProgressNs, [this] {
        timer_ = 0;
        progress();
    });
}

void Fabric::close() {
    reactor_.cancel(timer_);
    timer_ = 0;
    reactor_.unwatch(watch_);
    watch_ = 0;
    if (ep_ != nullptr) {
        fi_close(&ep_->fid);
        ep_ = nullptr;
    }
    if (av_ != nullptr) {
        fi_close(&av_->fid);
        av_ = nullptr;
    }
    if (cq_ != nullptr) {
        fi_close(&cq_->fid);
        cq_ = nullptr;
    }
    for (auto *list : {&receives_, &sends_}) {
        for (auto &b : *list) {
            if (b->mr != nullptr) {
                fi_close(&b->mr->fid);
            }
        }
        list->clear();
    }
    free_sends_.clear();
    repost_.clear();
    queue_.clear();
    in_flight_ = 0;
    if (domain_ != nullptr) {
        fi_close(&domain_->fid);
        domain_ = nullptr;
    }
    if (fabric_ != nullptr) {
        fi_close(&fabric_->fid);
        fabric_ = nullptr;
    }
    if (info_ != nullptr) {
        fi_freeinfo(info_);
        info_ = nullptr;
    }
    peers_.clear();
}

} // namespace dragon::node
