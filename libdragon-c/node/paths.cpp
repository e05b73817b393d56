#include "paths.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <cerrno>

#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dragon::runtime {

std::string runtime_base() {
    const char *xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg != nullptr && *xdg == '/') {
        return std::string(xdg) + "/dragon";
    }
    return "/tmp/dragon-" + std::to_string(geteuid());
}

bool private_dir(const std::string &dir, const char *what, std::string *why) {
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0) {
        *why = std::string("cannot examine the ") + what + " " + dir + ": " + std::strerror(errno);
        return false;
    }
    std::string fix = " Remove it (as its owner, or root) or set XDG_RUNTIME_DIR to a private "
                      "directory of yours.";
    if (!S_ISDIR(st.st_mode)) {
        *why = std::string("the ") + what + " " + dir + " is not a directory (a link?)." + fix;
        return false;
    }
    if (st.st_uid != geteuid()) {
        *why = std::string("the ") + what + " " + dir + " belongs to uid " +
               std::to_string(st.st_uid) + ", not to you (uid " + std::to_string(geteuid()) +
               "): another user may have made it to take over your runtime." + fix;
        return false;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        *why = std::string("the ") + what + " " + dir + " is writable by others (mode " + mode +
               "): anyone could replace your runtime's socket. Run `chmod 700 " + dir +
               "`, or remove it.";
        return false;
    }
    return true;
}

bool make_private_base(std::string *why) {
    std::string base = runtime_base();
    if (mkdir(base.c_str(), 0700) != 0 && errno != EEXIST) {
        *why = "cannot create the runtime base directory " + base + ": " + std::strerror(errno);
        return false;
    }
    return private_dir(base, "runtime base directory", why);
}

std::string new_runtime_token() {
    char hex[pool::kTokenHexLen + 1] = {};
    return pool::new_token(hex) ? std::string(hex) : std::string();
}

bool remove_runtime_dir(const std::string &runtime_id) {
    std::string dir = runtime_dir(runtime_id);
    if (DIR *d = opendir(dir.c_str())) {
        while (struct dirent *e = readdir(d)) {
            std::string name = e->d_name;
            bool sock = name.rfind("node-", 0) == 0 && name.size() > 10 &&
                        name.compare(name.size() - 5, 5, ".sock") == 0;
            if (sock || name == "daemon" || name == "topology.xml" || name.rfind("pmix-", 0) == 0) {
                std::error_code ec;
                std::filesystem::remove_all(dir + "/" + name, ec);
            }
        }
        closedir(d);
    }
    return rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

int remove_segments(const std::string &runtime_id, long node_id) {
    std::string prefix =
        "dragon." + runtime_id + "." + (node_id >= 0 ? std::to_string(node_id) + "." : "");
    DIR *dir = opendir("/dev/shm");
    if (dir == nullptr) {
        return 0;
    }
    int left = 0;
    while (struct dirent *e = readdir(dir)) {
        if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) {
            continue;
        }
        std::string path = std::string("/dev/shm/") + e->d_name;
        struct stat st {};
        if (lstat(path.c_str(), &st) != 0 || st.st_uid != geteuid()) {
            continue;
        }
        // A directory is an MPI job's shared-memory directory (pmix_server.cpp).
        bool gone = false;
        if (S_ISDIR(st.st_mode)) {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
            gone = !ec;
        } else {
            gone = unlink(path.c_str()) == 0;
        }
        if (!gone) {
            ++left;
        }
    }
    closedir(dir);
    return left;
}

} // namespace dragon::runtime
