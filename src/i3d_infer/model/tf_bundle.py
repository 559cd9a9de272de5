"""Read a TensorFlow checkpoint (the V2 "tensor bundle": ``model.ckpt.index`` + ``model.ckpt.data-*``) without
TensorFlow.

The ``.index`` file is a LevelDB-format table (``tensorflow/core/lib/io/table*``): data blocks of prefix-compressed
key/value entries, an index block pointing at them, a 48-byte footer. Each key is a variable name, each value a
``BundleEntryProto`` (dtype, shape, shard, offset, size); the empty key holds the ``BundleHeaderProto``. Tensors
are raw little-endian bytes at ``offset`` in ``<prefix>.data-<shard>-of-<shards>``. BundleWriter writes the table
uncompressed; a compressed block is refused with a reason.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..errors import CheckpointError

TABLE_MAGIC = 0xDB4775248B80FB57  # the table footer's last 8 bytes
FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the magic
BLOCK_TRAILER = 5  # compression type (1 byte) + masked crc32c (4 bytes) after every block
DT_STRING = 7
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64, 19: np.float16}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A protobuf / LevelDB base-128 varint at ``pos``: ``(value, position after it)``."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """The ``(field number, value)`` pairs of a protobuf message: varints as ints, length-delimited as bytes."""
    out, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        else:
            raise ValueError(f"protobuf wire type {wire}")
        out.append((number, value))
    return out


def _block(data: bytes, handle: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of the block a handle (varint offset, varint size) points at."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + BLOCK_TRAILER > len(data):
        raise ValueError("a block runs past the end of the file")
    if data[offset + size] != 0:
        raise ValueError(f"compressed table block (type {data[offset + size]}); BundleWriter writes none")
    block = data[offset : offset + size]
    (restarts,) = struct.unpack_from("<I", block, size - 4)
    end, pos, key, entries = size - 4 - 4 * restarts, 0, b"", []
    while pos < end:
        shared, pos = _varint(block, pos)
        own, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + own]
        pos += own
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def read_index(path: str | os.PathLike) -> dict[str, dict]:
    """Every tensor a ``.index`` file describes: name -> ``{dtype, shape, shard, offset, size}``.

    Raises:
        CheckpointError: the file is missing or is not a tensor bundle index.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        if len(data) < FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
            raise ValueError("no table footer")
        footer = data[-FOOTER_SIZE:]
        _, pos = _varint(footer, _varint(footer, 0)[1])  # skip the metaindex handle
        entries = {}
        for _, handle in _block(data, footer[pos:]):
            for key, value in _block(data, handle):
                if key:  # the empty key is the BundleHeaderProto
                    entries[key.decode()] = _entry(value)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint index ({e})") from e
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from e
    return entries


def _entry(value: bytes) -> dict:
    """A ``BundleEntryProto``: dtype (1), shape (2: repeated dim (2) with size (1)), shard_id (3), offset (4),
    size (5); slices (7) mark a partitioned variable, which DeepMind's files do not have."""
    entry = {"dtype": 1, "shape": (), "shard": 0, "offset": 0, "size": 0}
    for number, field in _fields(value):
        if number == 1:
            entry["dtype"] = field
        elif number == 2:
            dims = [v for n, v in _fields(field) if n == 2]
            entry["shape"] = tuple(next((s for n, s in _fields(d) if n == 1), 0) for d in dims)
        elif number in (3, 4, 5):
            entry[{3: "shard", 4: "offset", 5: "size"}[number]] = field
        elif number == 7:
            raise ValueError("a partitioned (sliced) variable")
    return entry


def checkpoint_prefix(path: str | os.PathLike) -> Path | None:
    """The bundle prefix a user's path means: ``.../model.ckpt`` (what TF takes), its ``.index`` or ``.data-*``
    file, or a directory holding one bundle; None when the path is none of them."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.index"))
        return found[0].with_suffix("") if len(found) == 1 else None
    if path.suffix == ".index":
        return path.with_suffix("")
    if ".data-" in path.name:
        return path.with_name(path.name.split(".data-")[0])
    return path if path.with_name(path.name + ".index").is_file() else None


def read_bundle(prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint at ``prefix`` (``.../model.ckpt``): name -> array.

    Raises:
        CheckpointError: a missing or truncated data file, an unsupported dtype (resources, complex), one line.
        String tensors (TF2's object graph) are left out.
    """
    prefix = Path(prefix)
    entries = read_index(prefix.with_name(prefix.name + ".index"))
    shards: dict[int, np.ndarray] = {}
    tensors = {}
    total = 1 + max((e["shard"] for e in entries.values()), default=0)
    for name, entry in entries.items():
        dtype = DTYPES.get(entry["dtype"])
        if entry["dtype"] == DT_STRING:  # TF2's object graph: metadata, not weights
            continue
        if dtype is None:
            raise CheckpointError(f"{prefix}: {name} has TensorFlow dtype {entry['dtype']}, not a numeric tensor")
        if entry["shard"] not in shards:
            data = prefix.with_name(f"{prefix.name}.data-{entry['shard']:05d}-of-{total:05d}")
            if not data.is_file():
                raise CheckpointError(f"{data}: the checkpoint's data file is missing")
            shards[entry["shard"]] = np.memmap(data, dtype=np.uint8, mode="r")
        count = int(np.prod(entry["shape"], dtype=np.int64))
        raw = shards[entry["shard"]][entry["offset"] : entry["offset"] + entry["size"]]
        if entry["size"] != count * np.dtype(dtype).itemsize or raw.size != entry["size"]:
            raise CheckpointError(f"{prefix}: {name} is truncated or mis-sized in the data file")
        tensors[name] = np.frombuffer(raw.tobytes(), dtype=np.dtype(dtype).newbyteorder("<")).reshape(entry["shape"])
    return tensors
