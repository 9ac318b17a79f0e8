"""Reading zip members without relying on the central directory or on zipfile's codecs.

Inspect's ``.eval`` logs are zips whose members are zstd-compressed (method 93), which
``zipfile`` cannot decompress before Python 3.14, and a log that is still being written
(or whose writer crashed) may lack the central directory at the end. Members are listed
from the central directory when there is one, else recovered by scanning local headers.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

import zstandard

_LOCAL = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_DESCRIPTOR = b"PK\x07\x08"


class ZipMemberError(ValueError):
    """A member could not be read (truncated, corrupt, unknown compression)."""


@dataclass
class Member:
    name: str
    offset: int  # of the local header
    method: int
    compressed_size: int | None  # None: unknown (recovered member written with a data descriptor)
    size: int | None


class ZipReader:
    """The members of a zip file, read one at a time."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.recovered = False  # True when the central directory was missing
        self.members: list[Member] = []
        try:
            with zipfile.ZipFile(f) as z:
                for info in z.infolist():
                    self.members.append(Member(
                        info.filename, info.header_offset, info.compress_type, info.compress_size, info.file_size
                    ))
        except zipfile.BadZipFile:
            self.recovered = True
            self.members = list(self._scan())

    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def get(self, name: str) -> Member | None:
        found = None
        for m in self.members:
            if m.name == name:
                found = m  # a rewritten member appears again later: the last one wins
        return found

    def _scan(self) -> list[Member]:
        """Members recovered from local headers (a zip whose writer did not finish)."""
        self.f.seek(0)
        data = self.f.read()
        out: list[Member] = []
        pos = data.find(_LOCAL)
        while pos != -1 and pos + _LOCAL_HEADER.size <= len(data):
            (_, _, flags, method, _, _, _, csize, usize, nlen, xlen) = _LOCAL_HEADER.unpack_from(data, pos)
            name = data[pos + 30 : pos + 30 + nlen].decode("utf-8", "replace")
            start = pos + 30 + nlen + xlen
            if flags & 8 or csize in (0, 0xFFFFFFFF) and usize in (0, 0xFFFFFFFF):
                # sizes follow the data: the member ends where the next header starts
                nxt = data.find(_LOCAL, start)
                desc = data.rfind(_DESCRIPTOR, start, nxt if nxt != -1 else len(data))
                end = desc if desc != -1 else (nxt if nxt != -1 else len(data))
                out.append(Member(name, pos, method, end - start, None))
                pos = nxt
            else:
                out.append(Member(name, pos, method, csize, usize))
                pos = data.find(_LOCAL, start + csize)
        return out

    def read(self, member: Member) -> bytes:
        """The member's uncompressed bytes; raises ZipMemberError."""
        f = self.f
        f.seek(member.offset)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL:
            raise ZipMemberError("no local header where the member should start")
        nlen, xlen = struct.unpack_from("<HH", header, 26)
        f.seek(member.offset + 30 + nlen + xlen)
        size = member.compressed_size
        raw = f.read() if size is None else f.read(size)
        if size is not None and len(raw) < size:
            raise ZipMemberError(f"truncated: {len(raw)} of {size} compressed bytes present")
        try:
            if member.method == 0:
                return raw
            if member.method == 8:
                d = zlib.decompressobj(-15)
                out = d.decompress(raw) + d.flush()
                if not d.eof:
                    raise ZipMemberError("truncated deflate data")
                return out
            if member.method == 93:
                reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
                return reader.read()
        except (zlib.error, zstandard.ZstdError) as e:
            raise ZipMemberError(f"corrupt compressed data ({e})") from None
        raise ZipMemberError(f"unsupported zip compression method {member.method}")
