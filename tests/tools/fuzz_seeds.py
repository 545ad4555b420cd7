#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets whose inputs are structured
(src/fuzz_harness/): model_config, tokenizer, tensor_unpack, gguf_header_fields.

    python3 tests/tools/fuzz_seeds.py tests/fuzz_corpus

Every seed is built here from scratch (no reference data is copied); the reference
files are read in place by the targets themselves.
"""
import hashlib
import os
import struct
import sys


def write(root, target, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rec8(op, idx, value, x=0, y=0):
    return bytes([op, idx]) + struct.pack("<I", value & 0xFFFFFFFF) + bytes([x, y])


def model_config(root):
    for arch in range(4):
        write(root, "model_config", bytes([arch]))
        # set each key to a plain u32 / f32, unset each key
        for k in range(16):
            write(root, "model_config", bytes([arch]) + rec8(0, k, 64, 0))
            write(root, "model_config", bytes([arch]) + rec8(1, k, 0x3F800000, 3))
            write(root, "model_config", bytes([arch]) + rec8(3, k, 0))
        for t in range(0, 30, 3):
            write(root, "model_config", bytes([arch]) + rec8(5, t, 256, 1, 0))
            write(root, "model_config", bytes([arch]) + rec8(6, t, 0))
            write(root, "model_config", bytes([arch]) + rec8(7, t, 0, t % 15))
            write(root, "model_config", bytes([arch]) + rec8(8, t, 0x7FC00000, 0, 0))
        write(root, "model_config", bytes([arch]) + rec8(9, 0, 64))
        write(root, "model_config", bytes([arch]) + rec8(4, 4, 0))


def tokenizer(root):
    texts = [b"Hello world", b" leading space", b"tabs\tand\nnewlines", b"caf\xc3\xa9 \xe2\x82\xac",
             b"\xff\xfe bad utf8 \xc3", b"<s> special </s>", b"1234567 numbers", b"",
             b"\xf0\x9f\x98\x80 emoji", b"   many    spaces   "]
    for i, t in enumerate(texts):
        for ref in range(4):
            write(root, "tokenizer", bytes([0x80 + ref]) + t)
        # synthetic SPM / BPE vocabularies: lines "<type byte><text>", merges "\xfd<a b>"
        toks = [b"\x02<unk>", b"\x03<s>", b"\x03</s>", b"\x01\xe2\x96\x81", b"\x01H", b"\x01e",
                b"\x01l", b"\x01o", b"\x01\xe2\x96\x81H", b"\x01He", b"\x01ll", b"\x06<0x41>",
                b"\x04<|user|>"]
        merges = [b"\xfdH e", b"\xfdl l", b"\xfd\xe2\x96\x81 H"]
        spec = b"\n".join(toks + merges)
        for kind in range(2):
            flags = bytes([kind, i % 10, 1, 2, 0xFF if i % 2 else 0x1B])
            write(root, "tokenizer", bytes([0]) + flags + spec + b"\xff\xff" + t)


def tensor_unpack(root):
    n_types = 7 + 7
    for ty in range(n_types):
        for shape in list(range(6)) + [0x7F]:
            for fill in (0, 1):
                pattern = bytes((i * 37 + ty) % 256 for i in range(64))
                write(root, "tensor_unpack", bytes([ty, shape, 0, 0, 0, fill]) + pattern)
        # raw shape: 256 columns, 2 rows
        write(root, "tensor_unpack", bytes([ty, 0x80, 0, 1, 2, 1]) + b"\x55" * 32)


def gguf_header_fields(root):
    for base in range(4):
        write(root, "gguf_header_fields", bytes([base]))
        for field in range(0, 64, 5):
            for mode in range(8):
                write(root, "gguf_header_fields",
                      bytes([base]) + struct.pack("<HB", field, mode) + struct.pack("<Q", 0x1000))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz_corpus"
    model_config(root)
    tokenizer(root)
    tensor_unpack(root)
    gguf_header_fields(root)


if __name__ == "__main__":
    main()
