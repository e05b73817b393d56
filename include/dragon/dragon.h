/* libdragon — the whole C ABI. Link with `pkg-config --cflags --libs dragon-c`. */
#ifndef DRAGON_DRAGON_H
#define DRAGON_DRAGON_H

#include <dragon/channel.h>
#include <dragon/ddict.h>
#include <dragon/machine.h>
#include <dragon/policy.h>
#include <dragon/pool.h>
#include <dragon/process.h>
#include <dragon/registry.h>
#include <dragon/status.h>
#include <dragon/sync.h>
#include <dragon/system.h>
#include <dragon/taskpool.h>
#include <dragon/version.h>
#include <dragon/wait.h>

#endif /* DRAGON_DRAGON_H */
