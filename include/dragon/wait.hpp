// libdragon C++ — wait modes (dragon::WaitMode), the one C++ spelling of dragon/wait.h's
// dragon_wait_mode_t: channels, queues and sync objects take it for their handles, and
// dragon::Policy for a process's default.
#ifndef DRAGON_WAIT_HPP
#define DRAGON_WAIT_HPP

#include <dragon/wait.h>

namespace dragon {

enum class WaitMode {
    // DRAGON_WAIT_DEFAULT (`default` is a keyword): not chosen here. A handle waits in the
    // process's default mode (its policy's, else adaptive); a policy leaves it unset.
    process_default = DRAGON_WAIT_DEFAULT,
    adaptive = DRAGON_WAIT_ADAPTIVE, // spin about 20 us, then sleep
    spin = DRAGON_WAIT_SPIN,         // never sleep
    idle = DRAGON_WAIT_IDLE,         // sleep at once
};

} // namespace dragon

#endif // DRAGON_WAIT_HPP
