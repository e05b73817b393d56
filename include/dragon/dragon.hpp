// libdragon C++ — everything. Link with `pkg-config --cflags --libs dragon-cpp`.
#ifndef DRAGON_DRAGON_HPP
#define DRAGON_DRAGON_HPP

#include <dragon/channel.hpp>
#include <dragon/ddict.hpp>
#include <dragon/dragon.h>
#include <dragon/error.hpp>
#include <dragon/machine.hpp>
#include <dragon/pool.hpp>
#include <dragon/process.hpp>
#include <dragon/registry.hpp>
#include <dragon/sync.hpp>
#include <dragon/system.hpp>
#include <dragon/taskpool.hpp>
#include <dragon/wait.hpp>

#endif // DRAGON_DRAGON_HPP
