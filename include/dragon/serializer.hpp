// libdragon C++ — how typed values become bytes and back (the task pool's arguments and
// results, the dictionary's keys and values). Trivially copyable types, std::string and
// std::vector of trivially copyable types travel as they are; another type through a
// specialisation of dragon::Serializer<T>:
//   static void put(const T &, std::string &out);   // append the bytes
//   static T get(const void *, std::size_t);         // rebuild from them
#ifndef DRAGON_SERIALIZER_HPP
#define DRAGON_SERIALIZER_HPP

#include <dragon/error.hpp>

#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace dragon {

template <typename T, typename Enable = void>
struct Serializer {
    static_assert(sizeof(T) == 0, "dragon::Serializer<T>: specialise it for this type "
                                  "(put(const T &, std::string &), get(const void *, size_t))");
};

template <typename T>
struct Serializer<T, std::enable_if_t<std::is_trivially_copyable_v<T>>> {
    static void put(const T &v, std::string &out) {
        out.append(reinterpret_cast<const char *>(&v), sizeof v);
    }
    static T get(const void *p, std::size_t len) {
        if (len != sizeof(T)) {
            throw Error(DRAGON_MALFORMED, "dragon::Serializer: " + std::to_string(len) +
                                              " bytes where a value of " +
                                              std::to_string(sizeof(T)) + " was expected");
        }
        T v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }
};

template <>
struct Serializer<std::string> {
    static void put(const std::string &v, std::string &out) { out.append(v); }
    static std::string get(const void *p, std::size_t len) {
        return std::string(static_cast<const char *>(p), len);
    }
};

template <typename T>
struct Serializer<std::vector<T>, std::enable_if_t<std::is_trivially_copyable_v<T>>> {
    static void put(const std::vector<T> &v, std::string &out) {
        out.append(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(T));
    }
    static std::vector<T> get(const void *p, std::size_t len) {
        if (len % sizeof(T) != 0) {
            throw Error(DRAGON_MALFORMED, "dragon::Serializer: " + std::to_string(len) +
                                              " bytes are no whole number of elements");
        }
        std::vector<T> v(len / sizeof(T));
        if (len != 0) {
            std::memcpy(v.data(), p, len);
        }
        return v;
    }
};

// An empty result (a task that returns void).
struct Nothing {};
template <>
struct Serializer<Nothing> {
    static void put(const Nothing &, std::string &) {}
    static Nothing get(const void *, std::size_t) { return {}; }
};

} // namespace dragon

#endif // DRAGON_SERIALIZER_HPP
