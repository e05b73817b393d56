// Internal error reporting: every ABI entry point returns a status and, on failure, leaves a
// detailed message in a per-thread buffer (dragon_last_error). No exception crosses the ABI:
// entry points run their body through guarded().
#pragma once

#include <dragon/status.h>

#include <exception>
#include <new>

namespace dragon::detail {

// Record a failure for the calling thread and return its status (printf-style message).
dragon_status_t fail(dragon_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Like fail(), appending ": <strerror(err)>" to the message.
dragon_status_t fail_errno(dragon_status_t status, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Wrap the failure an inner call recorded: "<fmt...>: <its message>", and return status.
// The one way to put context in front of another error (the message buffer is never both
// read and written by one format; an argument may even be dragon_last_error()).
dragon_status_t wrap(dragon_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Map an errno from a system call to the closest status.
dragon_status_t status_from_errno(int err);

// Run an ABI entry point's body, turning any escaping exception into a status.
template <typename F>
dragon_status_t guarded(const char *where, F &&body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return fail(DRAGON_NO_MEMORY, "%s: out of process memory", where);
    } catch (const std::exception &e) {
        return fail(DRAGON_INTERNAL, "%s: unexpected exception: %s", where, e.what());
    } catch (...) {
        return fail(DRAGON_INTERNAL, "%s: unexpected exception", where);
    }
}

} // namespace dragon::detail
