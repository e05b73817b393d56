// dragon-cleanup: remove what a runtime left behind (today: its shared-memory segments).
// Only the invoking user's segments are ever touched.
#include <dragon/dragon.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr const char *kShmDir = "/dev/shm";

void usage(FILE *to) {
    std::fprintf(to,
                 "Usage: dragon-cleanup [--runtime-id ID | --all] [--dry-run] [--verbose]\n"
                 "\n"
                 "Remove the shared-memory segments a libdragon runtime left behind, e.g.\n"
                 "after its launcher was killed with SIGKILL. Only segments owned by you are\n"
                 "removed.\n"
                 "\n"
                 "  -r, --runtime-id ID  the runtime to clean up (default: $DRAGON_RUNTIME_ID,\n"
                 "                       or u<uid>, the id of pools made outside a runtime)\n"
                 "  -a, --all            every libdragon segment you own, of any runtime\n"
                 "  -n, --dry-run        list what would be removed, remove nothing\n"
                 "  -v, --verbose        name each segment removed\n"
                 "  -h, --help           this text\n"
                 "\n"
                 "Exit status: 0 when nothing of the runtime is left, 1 when something could\n"
                 "not be removed, 2 on a usage error.\n");
}

} // namespace

int main(int argc, char **argv) {
    std::string runtime;
    bool all = false;
    bool dry_run = false;
    bool verbose = false;
    static const option opts[] = {{"runtime-id", required_argument, nullptr, 'r'},
                                  {"all", no_argument, nullptr, 'a'},
                                  {"dry-run", no_argument, nullptr, 'n'},
                                  {"verbose", no_argument, nullptr, 'v'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "r:anvh", opts, nullptr)) != -1) {
        switch (c) {
        case 'r':
            runtime = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        std::fprintf(stderr, "dragon-cleanup: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (all && !runtime.empty()) {
        std::fprintf(stderr, "dragon-cleanup: give --runtime-id or --all, not both\n");
        return 2;
    }
    if (!all && runtime.empty()) {
        const char *env = std::getenv("DRAGON_RUNTIME_ID");
        runtime = env != nullptr && *env != '\0' ? env : "u" + std::to_string(geteuid());
    }
    if (runtime.find_first_of("./") != std::string::npos) {
        std::fprintf(stderr, "dragon-cleanup: '%s' is not a runtime id\n", runtime.c_str());
        return 2;
    }
    std::string prefix = all ? "dragon." : "dragon." + runtime + ".";

    DIR *dir = opendir(kShmDir);
    if (dir == nullptr) {
        std::fprintf(stderr, "dragon-cleanup: cannot read %s: %s\n", kShmDir, std::strerror(errno));
        return 1;
    }
    int failed = 0;
    int removed = 0;
    while (dirent *e = readdir(dir)) {
        if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) {
            continue;
        }
        struct stat st {};
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            st.st_uid != geteuid()) {
            continue;
        }
        if (dry_run) {
            std::printf("would remove %s/%s\n", kShmDir, e->d_name);
            continue;
        }
        std::string name = std::string("/") + e->d_name;
        if (shm_unlink(name.c_str()) != 0 && errno != ENOENT) {
            std::fprintf(stderr, "dragon-cleanup: cannot remove %s/%s: %s\n", kShmDir, e->d_name,
                         std::strerror(errno));
            ++failed;
            continue;
        }
        ++removed;
        if (verbose) {
            std::printf("removed %s/%s\n", kShmDir, e->d_name);
        }
    }
    closedir(dir);
    if (verbose || removed != 0) {
        std::printf("dragon-cleanup: removed %d segment%s\n", removed, removed == 1 ? "" : "s");
    }
    return failed == 0 ? 0 : 1;
}
