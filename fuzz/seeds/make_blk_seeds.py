#!/usr/bin/env python3
"""Writes the seed inputs of the `blk_file` fuzz target into fuzz/seeds/blk_file/.

Each seed is one input of the target: a first byte that picks the layout (even: a plain block
file follows; odd: an 8-byte XOR key follows, then the file obfuscated with it, as Bitcoin Core
28+ writes `blk*.dat` with `xor.dat`), then `blk*.dat` records (regtest magic, u32 length,
block). The blocks are the real regtest genesis block and three child blocks with one coinbase
each; one seed stores them out of height order, as Bitcoin Core does.

    python3 fuzz/seeds/make_blk_seeds.py
    mkdir -p fuzz/corpus/blk_file
    RUSTC_BOOTSTRAP=1 cargo fuzz run blk_file fuzz/corpus/blk_file fuzz/seeds/blk_file
"""
import hashlib
import os
import struct

MAGIC = bytes.fromhex("fabfb5da")  # regtest
GENESIS_TX = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff"
    "001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e"
    "6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104"
    "678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51e"
    "c112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
)


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def header(prev: bytes, merkle: bytes, time: int, nonce: int) -> bytes:
    return struct.pack("<I", 1) + prev + merkle + struct.pack("<III", time, 0x207FFFFF, nonce)


def record(block: bytes) -> bytes:
    return MAGIC + struct.pack("<I", len(block)) + block


def main() -> None:
    assert dsha(GENESIS_TX)[::-1].hex() == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    genesis = header(b"\0" * 32, dsha(GENESIS_TX), 1296688602, 2)
    assert dsha(genesis)[::-1].hex() == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    blocks = [genesis + b"\x01" + GENESIS_TX]
    prev = dsha(genesis)
    script_pubkey = bytes.fromhex("0014") + bytes(range(20))  # P2WPKH
    for height in range(1, 4):
        script_sig = bytes([1, height, 0])  # BIP34 height push, padded to Core's 2-byte minimum
        coinbase = (
            struct.pack("<I", 1) + b"\x01" + b"\0" * 32 + b"\xff\xff\xff\xff"
            + bytes([len(script_sig)]) + script_sig + b"\xff\xff\xff\xff"
            + b"\x01" + struct.pack("<Q", 50 * 10**8) + bytes([len(script_pubkey)]) + script_pubkey
            + b"\0\0\0\0"
        )
        head = header(prev, dsha(coinbase), 1296688602 + 600 * height, 0)
        blocks.append(head + b"\x01" + coinbase)
        prev = dsha(head)
    chain = b"".join(record(b) for b in blocks)
    key = bytes.fromhex("a1b2c3d4e5f60718")
    seeds = {
        "genesis": b"\0" + record(blocks[0]),
        "chain4": b"\0" + chain,
        "chain4_reordered": b"\0" + b"".join(record(blocks[i]) for i in (2, 0, 3, 1)),
        "chain4_xor": b"\x01" + key + bytes(c ^ key[i % 8] for i, c in enumerate(chain)),
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "blk_file")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
