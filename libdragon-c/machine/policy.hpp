// What policy.cpp and runtime/system.cpp share about dragon_policy_t.
#pragma once

#include <dragon/policy.h>

#include <cstddef>
#include <cstdint>

namespace dragon::policy {

// dragon_policy_t as ABI 0 published it ended after wait_mode. Fields are only ever
// appended, so no caller was built with a smaller one: a smaller element size is a mistake.
constexpr size_t kMinSize = offsetof(dragon_policy_t, wait_mode) + sizeof(dragon_wait_mode_t);

#if SIZE_MAX == UINT64_MAX
// The ABI 0 layout on LP64: a field inserted before wait_mode would move it.
static_assert(kMinSize == 4644, "dragon_policy_t: append new fields after wait_mode");
#endif

} // namespace dragon::policy
