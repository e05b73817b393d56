#!/usr/bin/env python3
"""Regenerate the GPU topology fixtures from hwloc synthetic topologies.

Usage: make-fixtures.py BASE2 BASE1 SMALL OUTDIR, where BASE2, BASE1 and SMALL are hwloc XML
exports of the synthetic topologies "pack:2 [numa] core:4 pu:1", "pack:1 [numa] core:4 pu:2"
and "pack:1 [numa] core:2 pu:1"
(hwloc_topology_set_synthetic + hwloc_topology_export_xmlbuffer). Each package gets a host
bridge with GPUs as PCI devices; nothing else in the XML is hand-written.
"""
import sys


def bridge(buses, vendor, device, pci_class, gp):
    out = [f'      <object type="Bridge" gp_index="{gp}" bridge_type="0-1" depth="0" '
           f'bridge_pci="0000:[{buses[0]:02x}-{buses[-1]:02x}]">']
    for i, bus in enumerate(buses):
        out.append(f'        <object type="PCIDev" gp_index="{gp + 1 + i}" '
                   f'pci_busid="0000:{bus:02x}:00.0" '
                   f'pci_type="{pci_class} [{vendor}:{device}] [{vendor}:0000] 01"/>')
    out.append('      </object>')
    return out


def make(base, host, per_package):
    """per_package: list (one entry per package) of lists of (bus, vendor, device, class)."""
    out, pkg = [], 0
    for line in open(base).read().split('\n'):
        if line.startswith('    </object>') and pkg < len(per_package):
            devs = per_package[pkg]
            if devs:
                # one bridge per vendor run, keeping bus order
                out += bridge([d[0] for d in devs], devs[0][1], devs[0][2], devs[0][3],
                              1000 + 100 * pkg)
            pkg += 1
        if '"Backend" value="Synthetic"' in line:
            line = f'    <info name="HostName" value="{host}"/>'
        if 'SyntheticDescription' in line or 'ProcessName' in line:
            continue
        out.append(line)
    return '\n'.join(out)


base2, base1, small, outdir = sys.argv[1:5]
nv = ('10de', '2330', '0302')
fixtures = {
    # 2 packages, 2 NUMA domains, 8 cores, 2 NVIDIA GPUs on each package
    'nvidia-4gpu.xml': make(base2, 'fake-nvidia', [
        [(0x10,) + nv, (0x11,) + nv], [(0x90,) + nv, (0x91,) + nv]]),
    # 1 package, 8 PUs, 2 AMD Instinct-class GPUs (display controller, 0380)
    'amd-2gpu.xml': make(base1, 'fake-amd', [[(0x20, '1002', '740c', '0380'),
                                              (0x21, '1002', '740c', '0380')]]),
    # 1 package, 1 Intel data-centre GPU (processing accelerator class, 1200)
    'intel-1gpu.xml': make(base1, 'fake-intel', [[(0x30, '8086', '0bd5', '1200')]]),
    # 2 CPUs (0-1, which any test machine has) and 2 NVIDIA GPUs: for running processes
    # with GPU policies for real on a machine without GPUs (the process-group example)
    'nvidia-2gpu-2cpu.xml': make(small, 'fake-small', [[(0x10,) + nv, (0x11,) + nv]]),
    # 4 GPUs on a node of 2 CPUs (one NUMA domain): 4 GPU policies that fit a 2-CPU host.
    'nvidia-4gpu-2cpu.xml': make(small, 'fake-small4',
                                 [[(0x10,) + nv, (0x11,) + nv, (0x12,) + nv, (0x13,) + nv]]),
    # no GPU at all
    'cpu-only.xml': make(base2, 'fake-cpu', [[], []]),
}
for name, text in fixtures.items():
    with open(f'{outdir}/{name}', 'w') as f:
        f.write(text)
