"""The lines of a binary text file, each with its line end, every byte kept, read in chunks.

Shared by batch prediction (serving/batch_predict.py) and TextExampleGen
(components/text_example_gen.py), which decode and report bad lines each their own way. Not
GFile's own line iteration: TensorFlow's ReadLine drops every carriage return, also one inside
a quoted CSV field, which would silently change the text.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

READ_CHUNK_BYTES = 1 << 20


def raw_lines(handle: BinaryIO) -> Iterator[bytes]:
    """The lines of `handle`, each ending in b"\\n" except perhaps the last."""
    pending = b""
    while True:
        chunk = handle.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending
