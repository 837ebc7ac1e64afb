"""BLAKE3-256 in pure Python, for when the ``blake3`` package is absent.

Kiln addresses dataset content by BLAKE3-256 digests. The ``blake3``
package (``pip install 'kiln[data]'``) hashes at hundreds of MB/s; this
fallback, a direct transcription of the BLAKE3 reference implementation
(hash mode only), at about a megabyte per second — enough for small files.
:func:`new` returns the fast one when it is installed.
"""

from __future__ import annotations

import struct
from typing import Any, List, Tuple

Words = Tuple[int, ...]

_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERM = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START, _CHUNK_END, _PARENT, _ROOT = 1, 2, 4, 8
_BLOCK, _CHUNK = 64, 1024
_M = 0xFFFFFFFF

# The message word order of each of the 7 rounds.
_SCHEDULE: List[Words] = []
_order = tuple(range(16))
for _ in range(7):
    _SCHEDULE.append(_order)
    _order = tuple(_order[p] for p in _PERM)


def _compress(cv: Words, m: Words, counter: int, block_len: int, flags: int) -> List[int]:
    s = [cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
         _IV[0], _IV[1], _IV[2], _IV[3], counter & _M, (counter >> 32) & _M, block_len, flags]
    for o in _SCHEDULE:
        for a, b, c, d, x, y in ((0, 4, 8, 12, 0, 1), (1, 5, 9, 13, 2, 3), (2, 6, 10, 14, 4, 5),
                                 (3, 7, 11, 15, 6, 7), (0, 5, 10, 15, 8, 9), (1, 6, 11, 12, 10, 11),
                                 (2, 7, 8, 13, 12, 13), (3, 4, 9, 14, 14, 15)):
            sa = (s[a] + s[b] + m[o[x]]) & _M
            sd = s[d] ^ sa
            sd = ((sd >> 16) | (sd << 16)) & _M
            sc = (s[c] + sd) & _M
            sb = s[b] ^ sc
            sb = ((sb >> 12) | (sb << 20)) & _M
            sa = (sa + sb + m[o[y]]) & _M
            sd ^= sa
            sd = ((sd >> 8) | (sd << 24)) & _M
            sc = (sc + sd) & _M
            sb ^= sc
            s[a], s[b], s[c], s[d] = sa, ((sb >> 7) | (sb << 25)) & _M, sc, sd
    for i in range(8):
        s[i] ^= s[i + 8]
        s[i + 8] ^= cv[i]
    return s


def _words(block: bytes) -> Words:
    return struct.unpack("<16I", block.ljust(_BLOCK, b"\0"))


class _Output:
    def __init__(self, cv: Words, block: Words, counter: int, block_len: int, flags: int) -> None:
        self.cv, self.block, self.counter, self.block_len, self.flags = cv, block, counter, block_len, flags

    def chaining_value(self) -> Words:
        return tuple(_compress(self.cv, self.block, self.counter, self.block_len, self.flags)[:8])

    def root(self) -> bytes:
        s = _compress(self.cv, self.block, 0, self.block_len, self.flags | _ROOT)
        return struct.pack("<8I", *s[:8])


class _Chunk:
    def __init__(self, counter: int) -> None:
        self.cv: Words = _IV
        self.counter = counter
        self.buf = b""
        self.blocks = 0

    def __len__(self) -> int:
        return _BLOCK * self.blocks + len(self.buf)

    def _start(self) -> int:
        return _CHUNK_START if self.blocks == 0 else 0

    def update(self, data: memoryview) -> None:
        while data:
            if len(self.buf) == _BLOCK:  # a full block that is not the last one
                self.cv = tuple(_compress(self.cv, _words(self.buf), self.counter, _BLOCK, self._start())[:8])
                self.blocks += 1
                self.buf = b""
            take = min(_BLOCK - len(self.buf), len(data))
            self.buf += bytes(data[:take])
            data = data[take:]

    def output(self) -> _Output:
        return _Output(self.cv, _words(self.buf), self.counter, len(self.buf), self._start() | _CHUNK_END)


class Blake3:
    """A BLAKE3-256 hasher (update, digest, hexdigest) like hashlib's."""

    name = "blake3"
    digest_size = 32

    def __init__(self, data: bytes = b"") -> None:
        self._chunk = _Chunk(0)
        self._stack: List[Words] = []
        if data:
            self.update(data)

    def update(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            if len(self._chunk) == _CHUNK:
                cv = self._chunk.output().chaining_value()
                total = self._chunk.counter + 1
                while total & 1 == 0:
                    cv = _Output(_IV, self._stack.pop() + cv, 0, _BLOCK, _PARENT).chaining_value()
                    total >>= 1
                self._stack.append(cv)
                self._chunk = _Chunk(self._chunk.counter + 1)
            take = min(_CHUNK - len(self._chunk), len(view))
            self._chunk.update(view[:take])
            view = view[take:]

    def digest(self) -> bytes:
        out = self._chunk.output()
        for cv in reversed(self._stack):
            out = _Output(_IV, cv + out.chaining_value(), 0, _BLOCK, _PARENT)
        return out.root()

    def hexdigest(self) -> str:
        return self.digest().hex()


def fast() -> bool:
    """Whether the fast ``blake3`` package is installed."""
    try:
        import blake3  # noqa: F401
    except ImportError:
        return False
    return True


def new() -> Any:
    """A BLAKE3 hasher: the ``blake3`` package's when installed, else this module's."""
    try:
        from blake3 import blake3 as fast_blake3
    except ImportError:
        return Blake3()
    return fast_blake3()
