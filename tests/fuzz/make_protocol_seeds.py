#!/usr/bin/python3
"""Write the fuzz-protocol seed corpus (tests/fuzz/corpus/protocol): one well-formed message
of each kind the control protocol has (docs/protocol.md), in CBOR as any peer would send it;
and fuzz-link's (tests/fuzz/corpus/link): one message of each kind daemons send each other
on their links (docs/multinode.md).
Run it again when the protocol changes: /usr/bin/python3 tests/fuzz/make_protocol_seeds.py"""
import os

import cbor2

V = 2
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "protocol")
link_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "link")


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


NODE = {"node_id": 0, "host_name": "n0", "cpu_count": 8, "numa_count": 2,
        "gpus": [{"vendor": 1, "vendor_index": 0, "numa": 0, "pci_bus_id": "0000:3b:00.0"}],
        "gpu_policies": [{"cpus": [0, 1, 2, 3], "gpus": [0]}]}

seeds = {
    "hello": req("hello", 1, role="library"),
    "spawn": req("spawn", 2, program="/bin/sh", args=["-c", "exit 3"], env=["A=1"], cwd="/tmp",
                 cpus=[0, 1], gpus=[0], stdin="fd", stdout="relay", stderr="devnull", count=4,
                 restart=2, host_name="n0", host_id=0, wait_mode="adaptive"),
    "spawn-pipe": req("spawn", 14, program="cat", stdin="fd", stdout="pipe", stderr="inherit"),
    "spawn-pmi": req("spawn", 15, program="./mpi-rank", count=2, group_first=0, group_size=2,
                     pmi="dragon.rt.1.0"),
    "spawn-stride": req("spawn", 16, program="/bin/true", count=3, group_first=1, group_size=9,
                        group_stride=3, host_id=1),
    "nodes": req("nodes", 17),
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
    "reply-nodes": rep("nodes", 17, nodes=[NODE, dict(NODE, node_id=1, host_name="n1")]),
    "event-proc-ended": {"v": V, "event": "proc_ended", "puid": 10, "exit_code": 0},
    "event-node-lost": {"v": V, "event": "node_lost", "node_id": 2, "host_name": "n2",
                        "why": "its daemon's link closed"},
}


def link(kind, **body):
    return {"v": V, "link": kind, **body}


links = {
    "boot": link("boot", runtime_id="r1", node_id=1, hosts=["n0", "n1", "n2"], names=[],
                 launch=["ssh", "-o", "BatchMode=yes"], wlm="ssh", node_exe="/usr/bin/dragon-node",
                 fanout=8, label=True, boot_timeout_ms=60000, env=["DRAGON_RUNTIME_TOKEN=ab"]),
    "joined": link("joined", nodes=[NODE]),
    "book": link("book", nodes=[NODE, dict(NODE, node_id=1, host_name="n1")]),
    "forward": link("forward", to=2, **{"from": 0}, tag=7, is_reply=False,
                    bytes=cbor2.dumps(seeds["join"])),
    "forward-reply": link("forward", to=0, **{"from": 2}, tag=7, is_reply=True,
                          bytes=cbor2.dumps(seeds["reply-join"])),
    "output": link("output", stream=1, bytes=b"a line\n"),
    "lost": link("lost", node_id=3, host="n3", why="did not join within 60 s", booting=True),
    "teardown": link("teardown", now=True),
}

for where, messages in ((here, seeds), (link_dir, links)):
    os.makedirs(where, exist_ok=True)
    for old in os.listdir(where):
        os.unlink(os.path.join(where, old))
    for name, message in messages.items():
        with open(os.path.join(where, name), "wb") as f:
            f.write(cbor2.dumps(message))
