#include "lifecycle.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace dragon::node {

namespace pr = dragon::protocol;

Lifecycle::~Lifecycle() {
    node_.reactor.unwatch(life_watch_);
    if (life_fd_ >= 0) {
        close(life_fd_);
    }
}

bool Lifecycle::start() {
    node_.control.router().add("shutdown", [this](const Call &c, pr::Request &req, ReceivedFds &) {
        node_.control.reply(c, DRAGON_SUCCESS);
        node_.stop(std::get<pr::Shutdown>(req.body).now);
    });
    if (life_fd_ >= 0) {
        node_.have_launcher = true;
        fcntl(life_fd_, F_SETFD, FD_CLOEXEC); // not for the processes we start
        // The launcher writes nothing: readable means its end closed (it left, or it hurries
        // a teardown under way). Seen once.
        life_watch_ = node_.reactor.watch(life_fd_, EPOLLIN, [this](uint32_t) {
            node_.reactor.unwatch(life_watch_);
            life_watch_ = 0;
            node_.hurry = true;
            if (!node_.stopping) {
                Output::log("dragon-node: the launcher is gone; tearing the runtime down");
                node_.stop(true);
            }
        });
    }
    return true;
}

} // namespace dragon::node
