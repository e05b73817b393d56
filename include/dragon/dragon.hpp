// libdragon C++ — everything. Link with `pkg-config --cflags --libs dragon-cpp`.
#ifndef DRAGON_DRAGON_HPP
#define DRAGON_DRAGON_HPP

#include <dragon/dragon.h>
#include <dragon/error.hpp>
#include <dragon/pool.hpp>

#endif // DRAGON_DRAGON_HPP
