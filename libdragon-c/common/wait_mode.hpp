// The ABI's wait modes inside the library (include/dragon/wait.h): checking a caller's value
// and the one text spelling, used by $DRAGON_WAIT_MODE and the control protocol.
#pragma once

#include <dragon/wait.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string_view>

namespace dragon::detail {

// For a value read from a caller as int (a C caller may store anything in an enum).
constexpr bool valid_wait_mode(int raw) {
    return raw >= DRAGON_WAIT_DEFAULT && raw <= DRAGON_WAIT_IDLE;
}

// "adaptive", "spin" or "idle"; nullptr for DRAGON_WAIT_DEFAULT, which is never written
// (absent means default), and for values outside the enum.
constexpr const char *wait_mode_name(int mode) {
    switch (mode) {
    case DRAGON_WAIT_ADAPTIVE:
        return "adaptive";
    case DRAGON_WAIT_SPIN:
        return "spin";
    case DRAGON_WAIT_IDLE:
        return "idle";
    default:
        return nullptr;
    }
}

// The mode `name` spells, or DRAGON_WAIT_DEFAULT for any other text.
inline dragon_wait_mode_t wait_mode_from_name(std::string_view name) {
    static constexpr dragon_wait_mode_t kNamed[] = {DRAGON_WAIT_ADAPTIVE, DRAGON_WAIT_SPIN,
                                                    DRAGON_WAIT_IDLE};
    const auto *it = std::find_if(std::begin(kNamed), std::end(kNamed),
                                  [&](dragon_wait_mode_t m) { return name == wait_mode_name(m); });
    return it != std::end(kNamed) ? *it : DRAGON_WAIT_DEFAULT;
}

// The process's default wait mode: $DRAGON_WAIT_MODE (the wait mode of the policy it was
// started with), else adaptive. Read once: a process's environment does not change its
// policy.
inline dragon_wait_mode_t process_wait_mode() {
    static const dragon_wait_mode_t mode = [] {
        const char *env = std::getenv("DRAGON_WAIT_MODE");
        dragon_wait_mode_t m = env != nullptr ? wait_mode_from_name(env) : DRAGON_WAIT_DEFAULT;
        return m == DRAGON_WAIT_DEFAULT ? DRAGON_WAIT_ADAPTIVE : m;
    }();
    return mode;
}

} // namespace dragon::detail
