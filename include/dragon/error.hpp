// libdragon C++ — the one exception type. Header-only over the C ABI (C++17 or newer).
#ifndef DRAGON_ERROR_HPP
#define DRAGON_ERROR_HPP

#include <dragon/status.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace dragon {

// A failed libdragon call: the C status and the detailed message of dragon_last_error().
class Error : public std::runtime_error {
  public:
    Error(dragon_status_t status, const std::string &message)
        : std::runtime_error(message), status_(status) {}

    dragon_status_t status() const noexcept { return status_; }

  private:
    dragon_status_t status_;
};

namespace detail {

// Throw dragon::Error for any status but success (and, where given, an accepted one).
inline void check(dragon_status_t status) {
    if (status != DRAGON_SUCCESS) {
        const char *detail = dragon_last_error();
        std::string msg = dragon_strerror(status);
        if (detail != nullptr && *detail != '\0') {
            msg += ": ";
            msg += detail;
        }
        throw Error(status, msg);
    }
}

template <typename Rep, typename Period>
dragon_timeout_t to_timeout(std::chrono::duration<Rep, Period> d) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    return ns < 0 ? 0 : static_cast<dragon_timeout_t>(ns);
}

} // namespace detail

// Wait forever, for calls that take a timeout.
struct Forever {};
inline constexpr Forever forever{};

} // namespace dragon

#endif // DRAGON_ERROR_HPP
