// Arrays of public structs that the caller sizes (docs/abi.md, "Arrays of structs that
// grow"). The caller passes the element size it was compiled with; the library strides by
// it and writes at most that many bytes of each element, and never more than its own struct,
// so a struct may gain fields at its end without breaking callers built before or after.
#pragma once

#include "error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dragon::detail {

// A caller's array of `cap` elements of `elem_size` bytes, each beginning with a `type`:
// elem_size must be at least min_size (the struct as the first ABI that had it ended) and
// the whole array must be addressable. `where` and `arg` name the call and the argument.
inline dragon_status_t check_element_size(size_t elem_size, size_t min_size, size_t cap,
                                          const char *where, const char *arg, const char *type) {
    if (elem_size < min_size) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "%s: %s is %zu bytes, smaller than any %s (at least %zu); pass "
                    "sizeof(%s)",
                    where, arg, elem_size, type, min_size, type);
    }
    if (cap > SIZE_MAX / elem_size) {
        return fail(DRAGON_INVALID_ARGUMENT,
                    "%s: %zu elements of %zu bytes do not fit in the address space", where, cap,
                    elem_size);
    }
    return DRAGON_SUCCESS;
}

// Write `value` as element `index` of such an array (checked with check_element_size): at
// most elem_size bytes, with its struct_size set to the bytes written.
template <typename T>
void store_element(T value, void *array, size_t index, size_t elem_size) {
    size_t n = std::min(elem_size, sizeof(T));
    value.struct_size = n;
    std::memcpy(static_cast<unsigned char *>(array) + index * elem_size, &value, n);
}

} // namespace dragon::detail
