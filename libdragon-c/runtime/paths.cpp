#include "paths.hpp"

#include <cstdlib>
#include <cstring>

#include <dirent.h>
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

int remove_segments(const std::string &runtime_id) {
    std::string prefix = "dragon." + runtime_id + ".";
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
        if (unlink(path.c_str()) != 0) {
            ++left;
        }
    }
    closedir(dir);
    return left;
}

} // namespace dragon::runtime
