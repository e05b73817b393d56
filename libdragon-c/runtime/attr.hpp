// Process attributes as callers pass them (struct_size-prefixed, maybe from an older header),
// widened to this library's full struct. Shared by client.cpp and group.cpp.
#pragma once

#include "../common/error.hpp"

#include <dragon/process.h>

#include <algorithm>
#include <cstring>

namespace dragon::runtime {

inline dragon_status_t widen_attr(const dragon_process_attr_t *given, dragon_process_attr_t *out) {
    dragon_process_attr_init(out);
    if (given == nullptr) {
        return DRAGON_SUCCESS;
    }
    if (given->struct_size < sizeof(size_t)) {
        return detail::fail(DRAGON_INVALID_ARGUMENT,
                            "process attributes: call dragon_process_attr_init first");
    }
    std::memcpy(out, given, std::min(given->struct_size, sizeof *out));
    out->struct_size = sizeof *out;
    return DRAGON_SUCCESS;
}

} // namespace dragon::runtime
