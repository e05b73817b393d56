// The machine handle, shared by machine.cpp and policy.cpp.
#pragma once

#include <dragon/machine.h>

#include <cstdint>
#include <string>
#include <vector>

struct dragon_machine {
    std::string host_name;
    std::vector<uint32_t> cpus;                   // allowed logical CPUs (OS indices)
    std::vector<std::vector<uint32_t>> numa_cpus; // per NUMA domain, allowed CPUs
    std::vector<dragon_gpu_info_t> gpus;          // PCI bus order
};
