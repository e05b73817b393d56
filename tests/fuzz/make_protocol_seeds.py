#!/usr/bin/python3
"""Write the fuzz-protocol seed corpus (tests/fuzz/corpus/protocol): one well-formed message
of each kind the control protocol has (docs/protocol.md), in CBOR as any peer would send it.
Run it again when the protocol changes: /usr/bin/python3 tests/fuzz/make_protocol_seeds.py"""
import os

import cbor2

V = 2
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "protocol")


def req(op, i, **body):
    return {"v": V, "op": op, "id": i, **body}


def rep(op, i, status=0, error=None, **body):
    m = {"v": V, "id": i, "status": status}
    if error is not None:
        m["error"] = error
    if op is not None:
        m["op"] = op
    m.update(body)
    return m


seeds = {
    "hello": req("hello", 1, role="library"),
    "spawn": req("spawn", 2, program="/bin/sh", args=["-c", "exit 3"], env=["A=1"], cwd="/tmp",
                 cpus=[0, 1], gpus=[0], stdin="fd", stdout="relay", stderr="devnull", count=4,
                 restart=2, host_name="n0", host_id=0, wait_mode="adaptive"),
    "spawn-pipe": req("spawn", 14, program="cat", stdin="fd", stdout="pipe", stderr="inherit"),
    "spawn-pmi": req("spawn", 15, program="./mpi-rank", count=2, group_first=0, group_size=2,
                     pmi="dragon.rt.1.0"),
    "join": req("join", 3, puids=[1, 2, 3], timeout_ns=1000000),
    "signal": req("signal", 4, puids=[5], signal=15, final=True),
    "status": req("status", 5, puid=7),
    "register": req("register", 6, name="queue.0", kind=2, value=bytes(range(64)), replace=False),
    "lookup": req("lookup", 7, name="queue.0", timeout_ns=-1),
    "unregister": req("unregister", 8, name="queue.0"),
    "node": req("node", 9),
    "shutdown": req("shutdown", 10, now=False),
    "subscribe": req("subscribe", 11, proc_ended=True),
    "unknown-op": req("pmix_fence", 12),
    "reply-hello": rep("hello", 1, protocol=V, node_id=0),
    "reply-spawn": rep("spawn", 2, puids=[10, 11], pids=[4000, 4001]),
    "reply-join": rep("join", 3, status=10, error="timed out", exit_codes=[0, -1]),
    "reply-status": rep("status", 5, processes=[
        {"puid": 7, "exited": True, "pid": 4002, "exit_code": 137, "restarts": 1}]),
    "reply-lookup": rep("lookup", 7, kind=2, value=b"\x00\xff" * 8),
    "reply-node": rep("node", 9, node_id=0, host_name="n0", cpu_count=8, numa_count=2,
                      gpus=[{"vendor": 1, "vendor_index": 0, "numa": 0,
                             "pci_bus_id": "0000:3b:00.0"}],
                      gpu_policies=[{"cpus": [0, 1, 2, 3], "gpus": [0]}]),
    "reply-error": rep(None, 13, status=20, error="control message is not a CBOR map"),
    "event-proc-ended": {"v": V, "event": "proc_ended", "puid": 10, "exit_code": 0},
}

for old in os.listdir(here):
    os.unlink(os.path.join(here, old))
for name, message in seeds.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(cbor2.dumps(message))
