// The runtime client: the process ABI over the node daemon's control socket
// (DRAGON_NODE_SOCKET). One connection per call: calls are rare next to their cost, and a
// connection of its own makes every call thread-safe and fork-safe.
#include "attr.hpp"
#include "protocol.hpp"

#include "../common/clock.hpp"
#include "../common/error.hpp"

#include <dragon/process.h>

#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::guarded;
namespace rt = dragon::runtime;
using json = nlohmann::json;

namespace {

class Connection {
  public:
    ~Connection() {
        if (fd_ >= 0) {
            close(fd_);
        }
    }
    dragon_status_t open() {
        const char *path = std::getenv("DRAGON_NODE_SOCKET");
        if (path == nullptr || *path == '\0') {
            return fail(DRAGON_CLOSED,
                        "not inside a dragon runtime: DRAGON_NODE_SOCKET is not set (start the "
                        "program with `dragon`)");
        }
        struct sockaddr_un addr {};
        if (std::strlen(path) >= sizeof addr.sun_path) {
            return fail(DRAGON_INVALID_ARGUMENT, "DRAGON_NODE_SOCKET is too long");
        }
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path, std::strlen(path) + 1); // length checked above
        fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd_ < 0 || connect(fd_, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) != 0) {
            return dragon::detail::fail_errno(DRAGON_CLOSED, errno,
                                              "cannot reach the node daemon at %s", path);
        }
        return DRAGON_SUCCESS;
    }

    // Send a request and wait (at most wait_ms, -1: no limit) for its reply.
    dragon_status_t call(json request, int wait_ms, json *reply) {
        request["id"] = 1;
        std::string bytes = rt::encode(request);
        if (send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) {
            return dragon::detail::fail_errno(DRAGON_CLOSED, errno, "node daemon: send");
        }
        struct pollfd p = {fd_, POLLIN, 0};
        int rc;
        do {
            rc = poll(&p, 1, wait_ms);
        } while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            return fail(DRAGON_TIMEOUT, "node daemon: no reply within %d ms", wait_ms);
        }
        std::string buf(rt::kMaxMessage, '\0');
        ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
        if (n <= 0) {
            return fail(DRAGON_CLOSED, "node daemon: connection closed");
        }
        buf.resize(static_cast<size_t>(n));
        *reply = json::parse(buf, nullptr, false);
        if (!reply->is_object() || !reply->contains("status") ||
            !(*reply)["status"].is_number_integer()) {
            return fail(DRAGON_CORRUPTED, "node daemon: malformed reply");
        }
        int st = (*reply)["status"].get<int>();
        if (st < 0 || st >= DRAGON_STATUS_COUNT_) {
            return fail(DRAGON_CORRUPTED, "node daemon: reply with status %d", st);
        }
        if (st != DRAGON_SUCCESS) {
            std::string err = reply->value(
                "error", std::string(dragon_strerror(static_cast<dragon_status_t>(st))));
            return fail(static_cast<dragon_status_t>(st), "%s", err.c_str());
        }
        return DRAGON_SUCCESS;
    }

  private:
    int fd_ = -1;
};

constexpr int kCallMs = 30000; // a daemon that does not answer a quick request in 30 s is gone

const char *stdio_name(dragon_stdio_t m) {
    int raw = 0;
    std::memcpy(&raw, &m, sizeof raw);
    switch (raw) {
    case DRAGON_STDIO_INHERIT:
        return "inherit";
    case DRAGON_STDIO_DEVNULL:
        return "devnull";
    case DRAGON_STDIO_RELAY:
        return "pipe";
    default:
        return nullptr;
    }
}

} // namespace

extern "C" {

DRAGON_API dragon_status_t dragon_process_attr_init(dragon_process_attr_t *attr) {
    if (attr == nullptr) {
        return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_attr_init: attr is NULL");
    }
    std::memset(attr, 0, sizeof *attr);
    attr->struct_size = sizeof *attr;
    attr->out_mode = DRAGON_STDIO_RELAY;
    attr->err_mode = DRAGON_STDIO_RELAY;
    return DRAGON_SUCCESS;
}

DRAGON_API dragon_status_t dragon_process_create(const char *const *argv,
                                                 const dragon_process_attr_t *attr,
                                                 uint64_t *puid) {
    return guarded("dragon_process_create", [&]() -> dragon_status_t {
        if (argv == nullptr || argv[0] == nullptr || argv[0][0] == '\0' || puid == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_create: no program");
        }
        dragon_process_attr_t a;
        if (dragon_status_t st = dragon::runtime::widen_attr(attr, &a); st != DRAGON_SUCCESS) {
            return st;
        }
        const char *out = stdio_name(a.out_mode);
        const char *err = stdio_name(a.err_mode);
        if (out == nullptr || err == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "process attributes: unknown stdio mode");
        }
        json req = {{"op", "spawn"},
                    {"program", argv[0]},
                    {"stdin", "devnull"},
                    {"stdout", out},
                    {"stderr", err}};
        json args = json::array();
        for (const char *const *p = argv + 1; *p != nullptr; ++p) {
            args.push_back(*p);
        }
        req["args"] = args;
        json env = json::array();
        for (const char *const *e = a.env != nullptr ? a.env : environ; *e != nullptr; ++e) {
            env.push_back(*e);
        }
        req["env"] = env;
        if (a.cwd != nullptr) {
            req["cwd"] = a.cwd;
        }
        if (a.policy != nullptr) {
            dragon_policy_t merged;
            const dragon_policy_t *levels[] = {a.policy};
            merged.struct_size = sizeof merged;
            if (dragon_status_t st = dragon_policy_merge(levels, 1, &merged);
                st != DRAGON_SUCCESS) {
                return st;
            }
            if (merged.cpu_count != 0) {
                req["cpus"] = std::vector<uint32_t>(merged.cpus, merged.cpus + merged.cpu_count);
            }
            if (merged.gpu_count != 0) {
                req["gpus"] = std::vector<uint32_t>(merged.gpus, merged.gpus + merged.gpu_count);
            }
        }
        Connection c;
        if (dragon_status_t st = c.open(); st != DRAGON_SUCCESS) {
            return st;
        }
        json reply;
        if (dragon_status_t st = c.call(req, kCallMs, &reply); st != DRAGON_SUCCESS) {
            return st;
        }
        *puid = reply.value("puid", uint64_t{0});
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_join(uint64_t puid, dragon_timeout_t timeout,
                                               int *exit_code) {
    return guarded("dragon_process_join", [&]() -> dragon_status_t {
        if (exit_code == nullptr) {
            return fail(DRAGON_INVALID_ARGUMENT, "dragon_process_join: exit_code is NULL");
        }
        Connection c;
        if (dragon_status_t st = c.open(); st != DRAGON_SUCCESS) {
            return st;
        }
        json req = {{"op", "join"}, {"puid", puid}};
        if (timeout >= 0) {
            req["timeout_ns"] = timeout;
        }
        // The daemon answers at the timeout; allow it some slack before giving up on it.
        int wait_ms =
            timeout < 0
                ? -1
                : static_cast<int>(std::min<int64_t>(timeout / 1000000 + kCallMs, INT32_MAX));
        json reply;
        if (dragon_status_t st = c.call(req, wait_ms, &reply); st != DRAGON_SUCCESS) {
            return st;
        }
        *exit_code = reply.value("exit_code", -1);
        return DRAGON_SUCCESS;
    });
}

DRAGON_API dragon_status_t dragon_process_signal(uint64_t puid, int signal) {
    return guarded("dragon_process_signal", [&]() -> dragon_status_t {
        Connection c;
        if (dragon_status_t st = c.open(); st != DRAGON_SUCCESS) {
            return st;
        }
        json reply;
        return c.call({{"op", "signal"}, {"puid", puid}, {"signal", signal}}, kCallMs, &reply);
    });
}

} // extern "C"
