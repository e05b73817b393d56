// Persisting a manager's store to a directory and restoring it (docs/ddict.md,
// "Persistence"): one file per manager, written to a temporary name, fsynced and renamed, so a
// persist killed midway leaves the previous file intact; a BLAKE2b trailer catches a torn or
// edited file before anything is restored.
#pragma once

#include "store.hpp"

#include <dragon/status.h>

#include <cstdint>
#include <string>

namespace dragon::ddict {

// The file manager `index` of `managers` writes in `dir`.
std::string persist_path(const std::string &dir, uint32_t index, uint32_t managers);
dragon_status_t persist_store(const Store &store, const std::string &dir, uint32_t index,
                              uint32_t managers, uint64_t newest);
// Replace the store's contents with the file's. The file is checked whole first: a bad one
// changes nothing.
dragon_status_t restore_store(Store *store, const std::string &dir, uint32_t index,
                              uint32_t managers, uint64_t *newest);
// Check a persisted file's bytes (fuzzed): DRAGON_SUCCESS if restore would accept them.
dragon_status_t check_persisted(const unsigned char *p, size_t len, uint32_t index,
                                uint32_t managers);

} // namespace dragon::ddict
