#include "error.hpp"

#include <dragon/version.h>

#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace dragon::detail {
namespace {

// One message buffer per thread: no allocation on the failure path.
thread_local char last_error_message[1024] = "";

constexpr size_t kMessageMax = sizeof last_error_message;

// Format into a buffer of our own, then copy: an argument may point into the message buffer
// (a caller quoting dragon_last_error()), and a format must never read what it writes.
// tail (may be null): appended as ": <tail>".
void vrecord(const char *fmt, va_list ap, const char *tail) {
    char out[kMessageMax];
    int n = std::vsnprintf(out, sizeof out, fmt, ap);
    if (tail != nullptr && n >= 0 && static_cast<size_t>(n) < sizeof out) {
        std::snprintf(out + n, sizeof out - static_cast<size_t>(n), ": %s", tail);
    }
    std::memcpy(last_error_message, out, sizeof out);
}

constexpr std::array<const char *, DRAGON_STATUS_COUNT_> kNames = {
    "success",
    "invalid argument",
    "out of process memory",
    "no space left (in a pool, the registry or /dev/shm: see the message)",
    "timed out",
    "not found",
    "already exists",
    "permission denied",
    "malformed descriptor",
    "descriptor of another pool",
    "pointer not in pool",
    "not a live allocation",
    "buffer too small",
    "shared state corrupted",
    "closed",
    "owner died",
    "not supported",
    "system call failed",
    "internal error",
    "barrier broken",
    "malformed message",
    "protocol version mismatch",
    "not inside a dragon runtime",
    "task failed",
    "cancelled",
    "worker died",
};

} // namespace

dragon_status_t fail(dragon_status_t status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vrecord(fmt, ap, nullptr);
    va_end(ap);
    return status;
}

dragon_status_t fail_errno(dragon_status_t status, int err, const char *fmt, ...) {
    char buf[128];
    // GNU strerror_r returns the message pointer, which may not be buf.
    const char *msg = err != 0 ? strerror_r(err, buf, sizeof buf) : nullptr;
    va_list ap;
    va_start(ap, fmt);
    vrecord(fmt, ap, msg);
    va_end(ap);
    return status;
}

dragon_status_t wrap(dragon_status_t status, const char *fmt, ...) {
    char inner[kMessageMax];
    std::memcpy(inner, last_error_message, sizeof inner);
    va_list ap;
    va_start(ap, fmt);
    vrecord(fmt, ap, inner[0] != '\0' ? inner : dragon_strerror(status));
    va_end(ap);
    return status;
}

dragon_status_t status_from_errno(int err) {
    switch (err) {
    case ENOENT:
        return DRAGON_NOT_FOUND;
    case EEXIST:
        return DRAGON_ALREADY_EXISTS;
    case EACCES:
    case EPERM:
        return DRAGON_PERMISSION_DENIED;
    case ENOMEM:
        return DRAGON_NO_MEMORY;
    case ENOSPC:
    case EFBIG:
        return DRAGON_NO_SPACE;
    case EINVAL:
    case ENAMETOOLONG:
        return DRAGON_INVALID_ARGUMENT;
    case ETIMEDOUT:
        return DRAGON_TIMEOUT;
    default:
        return DRAGON_SYSTEM_ERROR;
    }
}

} // namespace dragon::detail

extern "C" {

DRAGON_API const char *dragon_strerror(dragon_status_t status) {
    auto i = static_cast<unsigned>(status);
    if (i >= dragon::detail::kNames.size()) {
        return "unknown status";
    }
    return dragon::detail::kNames[i];
}

DRAGON_API const char *dragon_last_error(void) {
    return dragon::detail::last_error_message;
}

DRAGON_API const char *dragon_version(void) {
    return DRAGON_VERSION_STRING;
}

DRAGON_API dragon_status_t dragon_version_numbers(int *major, int *minor, int *patch) {
    if (major != nullptr) {
        *major = DRAGON_VERSION_MAJOR;
    }
    if (minor != nullptr) {
        *minor = DRAGON_VERSION_MINOR;
    }
    if (patch != nullptr) {
        *patch = DRAGON_VERSION_PATCH;
    }
    return DRAGON_SUCCESS;
}

} // extern "C"
