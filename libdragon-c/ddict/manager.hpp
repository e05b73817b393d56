// dragon-ddict-manager (docs/ddict.md): the manager process's main, in the library's
// internals so that the executable is a one-line wrapper and tests can reach it.
#pragma once

namespace dragon::ddict {

int manager_main(int argc, char **argv);

} // namespace dragon::ddict
