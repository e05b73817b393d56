#!/usr/bin/python3
"""Write the DDict wire test vectors (tests/data/ddict/wire/*.hex) from docs/ddict-protocol.md
alone, with no use of the C++ encoder, so that test ddict-wire checks the encoder against the
document. Also writes the fuzz seed corpus (tests/fuzz/corpus/ddict): each vector behind the
byte that picks its decoder in tests/fuzz/fuzz_ddict.cpp.
Run it again when the protocol changes: /usr/bin/python3 tests/data/ddict/wire/make_vectors.py"""
import hashlib
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "..", "..", "..", "fuzz", "corpus", "ddict")

REQ_MAGIC = 0x51444444
RESP_MAGIC = 0x52444444
VERSION = 1
FOREVER = 2**64 - 1

# Opcodes and flags, as the document's tables give them.
HELLO, PUT, GET, KEYS, FETCH_ADD, WAIT_KEY, BATCH_END, STATS, PERSIST = 1, 3, 4, 8, 10, 11, 12, 15, 18
PERSISTENT_PUT, NO_REPLY = 0x1, 0x2
ENTRY_COPY = 0x1  # a persisted entry's flag: a broadcast's copy
LEASED, FROZEN = 0x1, 0x4
NOT_FOUND, VERSION_MISMATCH, NO_SPACE = 5, 21, 3

# The fuzz harness's selector byte for each decoder.
SEL_REQUEST, SEL_RESPONSE, SEL_KEYS, SEL_STATS, SEL_PERSISTED = 0, 1, 2, 3, 4


def request(op, client=0, flags=0, request_id=0, checkpoint=0, arg=0, key=b"", value=b"",
            version=VERSION):
    head = struct.pack("<IBBHII", REQ_MAGIC, version, op, flags, client, len(key))
    head += struct.pack("<QQQQ", request_id, checkpoint, len(value), arg)
    assert len(head) == 48
    return head + key + value


def response(op, status=0, flags=0, request_id=0, arg=0, arg2=0, message=b"", value=b"",
             value_len=None, version=VERSION):
    # A leased value's length travels without its bytes.
    vlen = len(value) if value_len is None else value_len
    head = struct.pack("<IBBHII", RESP_MAGIC, version, op, status, flags, len(message))
    head += struct.pack("<QQQQ", request_id, vlen, arg, arg2)
    assert len(head) == 48
    return head + message + value


def keys_value(keys):
    return b"".join(struct.pack("<I", len(k)) + k for k in keys)


def persisted(index, managers, newest, entries):
    body = b"DDPERSIS" + struct.pack("<IIIIQQ", 1, index, managers, 0, newest, len(entries))
    for checkpoint, key, flags, value in entries:
        body += struct.pack("<QIIQ", checkpoint, len(key), flags, len(value)) + key + value
    return body + hashlib.blake2b(body, digest_size=32).digest()


# An example reply-channel descriptor: opaque bytes to the protocol.
CHANNEL_DESC = bytes(range(0x10, 0x28))
STATS_WORDS = [2, 5, 1234, 4000000, 8388608, 10, 20, 3, 7, 2, 0, 4, 1]

requests = {
    "req-hello": ("Hello from node 3, pid 4242, with a 24-byte channel descriptor",
                  request(HELLO, request_id=1,
                          value=struct.pack("<QQ", 3, 4242) + CHANNEL_DESC)),
    "req-put": ("Put key 'k1' = 'hello' at checkpoint 0 by client 1",
                request(PUT, client=1, request_id=2, key=b"k1", value=b"hello")),
    "req-put-persistent": ("Put with kPersistentPut, key 'cfg' = 'on', checkpoint 5, client 2",
                           request(PUT, client=2, flags=PERSISTENT_PUT, request_id=3,
                                   checkpoint=5, key=b"cfg", value=b"on")),
    "req-put-batch": ("Put in a batch (kNoReply), key 'b' = 00 01 02, client 1",
                      request(PUT, client=1, flags=NO_REPLY, request_id=4, key=b"b",
                              value=b"\x00\x01\x02")),
    "req-get": ("Get key 'k1' at checkpoint 7 by client 1",
                request(GET, client=1, request_id=5, checkpoint=7, key=b"k1")),
    "req-keys-cursor": ("Keys from cursor 37 at checkpoint 2, client 3",
                        request(KEYS, client=3, request_id=6, checkpoint=2, arg=37)),
    "req-fetch-add-negative": ("FetchAdd key 'n' delta -5 (arg = 2^64-5), client 1",
                               request(FETCH_ADD, client=1, request_id=7, key=b"n",
                                       arg=2**64 - 5)),
    "req-wait-key-forever": ("WaitKey key 'ready' forever (arg = 2^64-1), client 4",
                             request(WAIT_KEY, client=4, request_id=8, key=b"ready",
                                     arg=FOREVER)),
    "req-batch-end": ("BatchEnd, client 1",
                      request(BATCH_END, client=1, request_id=9)),
    "req-stats": ("Stats, client 1", request(STATS, client=1, request_id=10)),
    "req-persist": ("Persist to /tmp/dd, client 1",
                    request(PERSIST, client=1, request_id=11, value=b"/tmp/dd")),
}

responses = {
    "resp-hello": ("Hello reply: client id 1, root offset 0x100, manager pid 777, index 2",
                   response(HELLO, request_id=1, arg=1, arg2=0x100,
                            value=struct.pack("<QQ", 777, 2))),
    "resp-get-inline": ("Get success, value 'hello' inline, entry of checkpoint 7",
                        response(GET, request_id=5, arg=7, value=b"hello")),
    "resp-not-found": ("Get of an absent key: NOT_FOUND, no message",
                       response(GET, status=NOT_FOUND, request_id=5)),
    "resp-get-leased": ("Get success, leased: 4096 value bytes at entry offset 0x12340, "
                        "manager frozen",
                        response(GET, flags=LEASED | FROZEN, request_id=12, arg=0, arg2=0x12340,
                                 value_len=4096)),
    "resp-keys-3": ("Keys reply: 'a', 'bc', 'def', next cursor 0 (done), 3 keys",
                    response(KEYS, request_id=6, arg=0, arg2=3,
                             value=keys_value([b"a", b"bc", b"def"]))),
    "resp-stats": ("Stats reply: " + " ".join(str(w) for w in STATS_WORDS),
                   response(STATS, request_id=10, value=struct.pack("<13Q", *STATS_WORDS))),
    "resp-batch-end": ("BatchEnd reply: 2 stored, first failure NO_SPACE with a message",
                       response(BATCH_END, status=NO_SPACE, request_id=9, arg=2,
                                message=b"m0 is full")),
    "resp-version-mismatch": ("A version 2 Get answered with VERSION_MISMATCH in version 1",
                              response(GET, status=VERSION_MISMATCH, request_id=13,
                                       message=b"version 2; this manager speaks 1")),
}

others = {
    "persisted": ("Persisted file of manager 0 of 1, newest 3: ('a'='1' at 0), "
                  "('p'='xyz' persistent, a broadcast copy)",
                  persisted(0, 1, 3, [(0, b"a", 0, b"1"), (FOREVER, b"p", ENTRY_COPY, b"xyz")])),
}


def write_hex(name, comment, data):
    h = data.hex()
    lines = [h[i:i + 64] for i in range(0, len(h), 64)] or [""]
    with open(os.path.join(here, name + ".hex"), "w") as f:
        f.write("# " + comment + "\n" + "\n".join(lines) + "\n")


def write_seed(name, selector, data):
    with open(os.path.join(corpus, name), "wb") as f:
        f.write(bytes([selector]) + data)


def main():
    os.makedirs(corpus, exist_ok=True)
    for name, (comment, data) in requests.items():
        write_hex(name, comment, data)
        write_seed(name, SEL_REQUEST, data)
    for name, (comment, data) in responses.items():
        write_hex(name, comment, data)
        write_seed(name, SEL_RESPONSE, data)
    for name, (comment, data) in others.items():
        write_hex(name, comment, data)
        write_seed(name, SEL_PERSISTED, data)
    # The decoders of a reply's value see the value alone.
    write_seed("keys-3", SEL_KEYS, keys_value([b"a", b"bc", b"def"]))
    write_seed("stats", SEL_STATS, struct.pack("<13Q", *STATS_WORDS))
    # A version 2 request, for the mismatch path.
    write_seed("req-get-v2", SEL_REQUEST,
               request(GET, client=1, request_id=13, key=b"k1", version=2))


if __name__ == "__main__":
    main()
