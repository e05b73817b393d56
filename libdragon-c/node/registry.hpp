// The registry service (docs/registry.md): names to (kind, value) for the whole runtime; on
// one node it is the head node's. Lookups may wait for a name to be registered. Its memory
// is capped (kMaxEntries names, kMaxBytes of names and values).
#pragma once

#include "service.hpp"

#include "../protocol/messages.hpp"

#include <map>
#include <string>

namespace dragon::node {

class Registry : public Service {
  public:
    static constexpr size_t kMaxEntries = 65536;
    static constexpr size_t kMaxBytes = 64 << 20;

    using Service::Service;
    const char *name() const override { return "registry"; }
    bool start() override;

  private:
    struct Entry {
        uint32_t kind;
        std::string value;
    };
    struct Lookup {
        Call call;
        std::string name;
        uint64_t timer = 0;
        uint64_t parked = 0;
    };
    void on_register(const Call &c, protocol::Register &req);
    void on_lookup(const Call &c, protocol::Lookup &req);
    void on_unregister(const Call &c, protocol::Unregister &req);
    void answer(uint64_t lookup, dragon_status_t st);
    void drop(uint64_t lookup);

    std::map<std::string, Entry> entries_;
    size_t bytes_ = 0;
    std::map<uint64_t, Lookup> lookups_;
    uint64_t next_lookup_ = 1;
    std::multimap<std::string, uint64_t> lookups_by_name_;
};

} // namespace dragon::node
