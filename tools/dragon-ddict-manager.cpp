// dragon-ddict-manager: one manager of a distributed dictionary (docs/ddict.md). Started by
// dragon_ddict_create through the runtime, never by hand.
#include "ddict/manager.hpp"

int main(int argc, char **argv) {
    return dragon::ddict::manager_main(argc, argv);
}
