// A manager's store on disk (persist.hpp). File layout, little-endian:
//   "DDPERSIS", u32 format (1), u32 index, u32 managers, u32 0, u64 newest, u64 entries,
//   entries: u64 checkpoint, u32 key_len, u32 flags, u64 value_len, key, value,
//   32 bytes: BLAKE2b-256 of everything before it.
#include "persist.hpp"

#include "wire.hpp"

#include "../common/error.hpp"

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using dragon::detail::fail;
using dragon::detail::fail_errno;

namespace dragon::ddict {

namespace {

constexpr char kMagic[8] = {'D', 'D', 'P', 'E', 'R', 'S', 'I', 'S'};
constexpr uint32_t kFormat = 1;
constexpr size_t kHead = 8 + 4 * 4 + 8 + 8;
constexpr size_t kEntryHead = 8 + 4 + 4 + 8;
constexpr size_t kTrailer = 32;

dragon_status_t write_all(int fd, const unsigned char *p, size_t n, const std::string &path) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return fail_errno(DRAGON_SYSTEM_ERROR, errno, "ddict persist: writing %s",
                              path.c_str());
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return DRAGON_SUCCESS;
}

} // namespace

std::string persist_path(const std::string &dir, uint32_t index, uint32_t managers) {
    return dir + "/manager-" + std::to_string(index) + "-of-" + std::to_string(managers) + ".ddict";
}

dragon_status_t persist_store(const Store &store, const std::string &dir, uint32_t index,
                              uint32_t managers, uint64_t newest) {
    if (dir.empty()) {
        return fail(DRAGON_INVALID_ARGUMENT, "ddict persist: an empty directory name");
    }
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return fail_errno(DRAGON_SYSTEM_ERROR, errno, "ddict persist: mkdir %s", dir.c_str());
    }
    std::string path = persist_path(dir, index, managers);
    std::string tmp = path + ".tmp." + std::to_string(getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return fail_errno(DRAGON_SYSTEM_ERROR, errno, "ddict persist: creating %s", tmp.c_str());
    }
    static const bool ready = sodium_init() >= 0;
    (void)ready;
    crypto_generichash_state h;
    crypto_generichash_init(&h, nullptr, 0, kTrailer);
    std::vector<unsigned char> buf;
    buf.reserve(1 << 20);
    dragon_status_t st = DRAGON_SUCCESS;
    auto flush = [&]() {
        if (st == DRAGON_SUCCESS && !buf.empty()) {
            crypto_generichash_update(&h, buf.data(), buf.size());
            st = write_all(fd, buf.data(), buf.size(), tmp);
        }
        buf.clear();
    };
    auto add = [&](const void *p, size_t n) {
        const auto *b = static_cast<const unsigned char *>(p);
        if (n >= (1 << 20)) {
            flush();
            if (st == DRAGON_SUCCESS) {
                crypto_generichash_update(&h, b, n);
                st = write_all(fd, b, n, tmp);
            }
            return;
        }
        buf.insert(buf.end(), b, b + n);
        if (buf.size() >= (1 << 20)) {
            flush();
        }
    };
    unsigned char head[kHead] = {};
    std::memcpy(head, kMagic, 8);
    wire::put_u32(head + 8, kFormat);
    wire::put_u32(head + 12, index);
    wire::put_u32(head + 16, managers);
    wire::put_u64(head + 24, newest);
    wire::put_u64(head + 32, store.size());
    add(head, sizeof head);
    store.for_each([&](const Entry &e) {
        unsigned char eh[kEntryHead];
        wire::put_u64(eh, e.checkpoint);
        wire::put_u32(eh + 8, static_cast<uint32_t>(e.key_len));
        wire::put_u32(eh + 12, e.flags & kEntryCopy);
        wire::put_u64(eh + 16, e.value_len);
        add(eh, sizeof eh);
        add(e.key(), e.key_len);
        add(e.value(), e.value_len);
    });
    flush();
    unsigned char sum[kTrailer];
    crypto_generichash_final(&h, sum, sizeof sum);
    if (st == DRAGON_SUCCESS) {
        st = write_all(fd, sum, sizeof sum, tmp);
    }
    if (st == DRAGON_SUCCESS && ::fsync(fd) != 0) {
        st = fail_errno(DRAGON_SYSTEM_ERROR, errno, "ddict persist: fsync %s", tmp.c_str());
    }
    ::close(fd);
    if (st == DRAGON_SUCCESS && ::rename(tmp.c_str(), path.c_str()) != 0) {
        st = fail_errno(DRAGON_SYSTEM_ERROR, errno, "ddict persist: rename to %s", path.c_str());
    }
    if (st != DRAGON_SUCCESS) {
        ::unlink(tmp.c_str());
        return st;
    }
    // The rename itself is durable once the directory is.
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    // What an earlier persist of this manager left when it was killed midway.
    std::string stale = path.substr(dir.size() + 1) + ".tmp.";
    if (DIR *d = ::opendir(dir.c_str()); d != nullptr) {
        while (struct dirent *e = ::readdir(d)) {
            if (std::strncmp(e->d_name, stale.c_str(), stale.size()) == 0) {
                ::unlinkat(::dirfd(d), e->d_name, 0);
            }
        }
        ::closedir(d);
    }
    return DRAGON_SUCCESS;
}

dragon_status_t check_persisted(const unsigned char *p, size_t len, uint32_t index,
                                uint32_t managers) {
    static const bool ready = sodium_init() >= 0; // once; libsodium wants it first
    (void)ready;
    if (len < kHead + kTrailer || std::memcmp(p, kMagic, 8) != 0) {
        return fail(DRAGON_CORRUPTED, "not a persisted ddict manager file");
    }
    unsigned char sum[kTrailer];
    crypto_generichash(sum, sizeof sum, p, len - kTrailer, nullptr, 0);
    if (sodium_memcmp(sum, p + len - kTrailer, kTrailer) != 0) {
        return fail(DRAGON_CORRUPTED, "its checksum does not match (torn or edited)");
    }
    if (wire::get_u32(p + 8) != kFormat) {
        return fail(DRAGON_VERSION_MISMATCH, "file format %u (this build reads %u)",
                    wire::get_u32(p + 8), kFormat);
    }
    if (wire::get_u32(p + 12) != index || wire::get_u32(p + 16) != managers) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "it was persisted by manager %u of %u, not manager %u of %u",
                    wire::get_u32(p + 12), wire::get_u32(p + 16), index, managers);
    }
    uint64_t n = wire::get_u64(p + 32);
    size_t at = kHead;
    size_t end = len - kTrailer;
    for (uint64_t i = 0; i < n; ++i) {
        if (end - at < kEntryHead) {
            return fail(DRAGON_CORRUPTED, "entry %llu is truncated",
                        static_cast<unsigned long long>(i));
        }
        uint32_t k = wire::get_u32(p + at + 8);
        uint32_t f = wire::get_u32(p + at + 12);
        uint64_t v = wire::get_u64(p + at + 16);
        at += kEntryHead;
        if ((f & ~kEntryCopy) != 0) {
            return fail(DRAGON_CORRUPTED, "entry %llu has unknown flags 0x%x",
                        static_cast<unsigned long long>(i), f);
        }
        if (k == 0 || k > wire::kMaxKey || k > end - at || v == 0 || v > end - at - k) {
            return fail(DRAGON_CORRUPTED, "entry %llu has impossible lengths",
                        static_cast<unsigned long long>(i));
        }
        at += k + v;
    }
    if (at != end) {
        return fail(DRAGON_CORRUPTED, "%zu bytes follow the last entry", end - at);
    }
    return DRAGON_SUCCESS;
}

dragon_status_t restore_store(Store *store, const std::string &dir, uint32_t index,
                              uint32_t managers, uint64_t *newest) {
    std::string path = persist_path(dir, index, managers);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail_errno(errno == ENOENT ? DRAGON_NOT_FOUND : DRAGON_SYSTEM_ERROR, errno,
                          "ddict restore: %s", path.c_str());
    }
    std::vector<unsigned char> data;
    struct stat sb {};
    if (::fstat(fd, &sb) == 0 && sb.st_size > 0) {
        data.resize(static_cast<size_t>(sb.st_size));
        size_t got = 0;
        while (got < data.size()) {
            ssize_t r = ::read(fd, data.data() + got, data.size() - got);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                break;
            }
            got += static_cast<size_t>(r);
        }
        data.resize(got);
    }
    ::close(fd);
    if (dragon_status_t st = check_persisted(data.data(), data.size(), index, managers);
        st != DRAGON_SUCCESS) {
        return detail::wrap(st, "ddict restore: %s", path.c_str());
    }
    store->clear();
    store->sweep(); // what readers gave back is room for the restored entries
    const unsigned char *p = data.data();
    *newest = wire::get_u64(p + 24);
    uint64_t n = wire::get_u64(p + 32);
    size_t at = kHead;
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t c = wire::get_u64(p + at);
        uint32_t k = wire::get_u32(p + at + 8);
        uint32_t f = wire::get_u32(p + at + 12);
        uint64_t v = wire::get_u64(p + at + 16);
        at += kEntryHead;
        if (dragon_status_t st = store->put(p + at, k, p + at + k, v, c, f); st != DRAGON_SUCCESS) {
            return detail::wrap(st, "ddict restore: %s: entry %llu of %llu", path.c_str(),
                                static_cast<unsigned long long>(i),
                                static_cast<unsigned long long>(n));
        }
        at += k + v;
    }
    return DRAGON_SUCCESS;
}

} // namespace dragon::ddict
