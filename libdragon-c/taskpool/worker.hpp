// The task pool's worker side, as the owner's code needs it (worker.cpp).
#pragma once

#include <cstddef>
#include <string>

namespace dragon::taskpool {

// This process was started as a task pool's worker (its environment says so).
bool is_worker();

// Serve tasks until the pool ends; exits the process.
[[noreturn]] void serve();

// Lower-case hex of n bytes (the worker environment's encoding).
std::string to_hex(const void *p, size_t n);

} // namespace dragon::taskpool
