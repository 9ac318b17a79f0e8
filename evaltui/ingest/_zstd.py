"""Zstandard decompression for Inspect's ``.eval`` logs (zip members with method 93).

Current inspect-ai writes its zip members zstd-compressed, which Python's ``zipfile``
reads only from Python 3.14 on. ``decompress`` uses, in order: the ``zstandard`` package,
the standard library's ``compression.zstd`` (3.14+), and else the pure-Python decoder
below (RFC 8878, decompression only, no dictionaries), so evaltui imports these logs with
no extra dependency; the pure decoder is slower (about a few MB/s), which is fine for logs
read one sample member at a time.
"""

from __future__ import annotations

from collections.abc import Callable


class ZstdError(ValueError):
    """The data is not a valid zstd stream (or uses a feature the decoder lacks)."""


def _native() -> Callable[[bytes], bytes] | None:
    try:
        import zstandard  # type: ignore[import-not-found]

        def dec(data: bytes) -> bytes:
            import io

            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
            return reader.read()

        return dec
    except ImportError:
        pass
    try:
        from compression import zstd  # type: ignore[import-not-found]

        return zstd.decompress
    except ImportError:
        return None


_NATIVE = _native()


def decompress(data: bytes) -> bytes:
    """Decompress all frames of a zstd stream; raises ZstdError on corrupt input."""
    if _NATIVE is not None:
        try:
            return _NATIVE(data)
        except Exception as e:  # noqa: BLE001 - each library has its own error type
            raise ZstdError(f"corrupt zstd data ({e})") from None
    try:
        return decompress_pure(data)
    except ZstdError:
        raise
    except (IndexError, KeyError, ValueError) as e:
        raise ZstdError(f"corrupt zstd data ({type(e).__name__}: {e})") from None


# -- pure-Python decoder ---------------------------------------------------------------

_MAGIC = 0xFD2FB528
_MAX_BLOCK = 128 * 1024

_LL_BASE = list(range(16)) + [16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
                              8192, 16384, 32768, 65536]
_LL_BITS = [0] * 16 + [1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
_ML_BASE = list(range(3, 35)) + [35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
                                 4099, 8195, 16387, 32771, 65539]
_ML_BITS = [0] * 32 + [1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]

_LL_DEFAULT = ([4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1]
               + [-1] * 4, 6)
_ML_DEFAULT = ([1, 4, 3, 2, 2, 2, 2, 2, 2] + [1] * 37 + [-1] * 7, 6)
_OF_DEFAULT = ([1, 1, 1, 1, 1, 1, 2, 2, 2] + [1] * 15 + [-1] * 5, 5)


class _Forward:
    """Little-endian bit reader, least significant bit first (FSE table descriptions)."""

    def __init__(self, data: bytes | memoryview, pos: int = 0):
        self.data = data
        self.bit = pos * 8

    def read(self, n: int) -> int:
        if n == 0:
            return 0
        start = self.bit
        lo, hi = start >> 3, (start + n + 7) >> 3
        if hi > len(self.data):
            raise ZstdError("truncated FSE table description")
        v = int.from_bytes(self.data[lo:hi], "little") >> (start & 7)
        self.bit += n
        return v & ((1 << n) - 1)

    def rewind(self, n: int) -> None:
        self.bit -= n

    def byte_pos(self) -> int:
        return (self.bit + 7) >> 3


class _Backward:
    """Bit reader for zstd's backward streams: read from the end, past a 1-bit marker."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | memoryview):
        if not data:
            raise ZstdError("empty bitstream")
        last = data[-1]
        if last == 0:
            raise ZstdError("bitstream without end marker")
        self.data = bytes(data)
        self.pos = (len(data) - 1) * 8 + last.bit_length() - 1  # bits left to read

    def read(self, n: int) -> int:
        if n == 0:
            return 0
        pos = self.pos
        start = pos - n
        self.pos = start
        if start >= 0:
            v = int.from_bytes(self.data[start >> 3 : (pos + 7) >> 3], "little") >> (start & 7)
            return v & ((1 << n) - 1)
        # past the beginning: the missing low bits read as zeros
        if pos <= 0:
            return 0
        v = int.from_bytes(self.data[: (pos + 7) >> 3], "little") & ((1 << pos) - 1)
        return v << (-start)

    def peek(self, n: int) -> int:
        v = self.read(n)
        self.pos += n
        return v


class _FSE:
    __slots__ = ("symbols", "bits", "base", "log")

    def __init__(self, counts: list[int], log: int):
        size = 1 << log
        symbols = [0] * size
        high = size
        state_desc = [0] * len(counts)
        for s, c in enumerate(counts):
            if c == -1:
                high -= 1
                symbols[high] = s
                state_desc[s] = 1
        step = (size >> 1) + (size >> 3) + 3
        mask = size - 1
        pos = 0
        for s, c in enumerate(counts):
            if c <= 0:
                continue
            state_desc[s] = c
            for _ in range(c):
                symbols[pos] = s
                pos = (pos + step) & mask
                while pos >= high:
                    pos = (pos + step) & mask
        if pos != 0:
            raise ZstdError("bad FSE distribution")
        bits = [0] * size
        base = [0] * size
        for i in range(size):
            nxt = state_desc[symbols[i]]
            state_desc[symbols[i]] = nxt + 1
            nb = log - (nxt.bit_length() - 1)
            bits[i] = nb
            base[i] = (nxt << nb) - size
        self.symbols, self.bits, self.base, self.log = symbols, bits, base, log

    @classmethod
    def rle(cls, symbol: int) -> _FSE:
        t = cls.__new__(cls)
        t.symbols, t.bits, t.base, t.log = [symbol], [0], [0], 0
        return t


def _read_fse_counts(data: bytes | memoryview, pos: int, max_log: int) -> tuple[list[int], int, int]:
    """An FSE table description at data[pos:]: (normalized counts, accuracy log, bytes used)."""
    r = _Forward(data, pos)
    log = r.read(4) + 5
    if log > max_log:
        raise ZstdError(f"FSE accuracy log {log} above the maximum {max_log}")
    remaining = 1 << log
    counts: list[int] = []
    while remaining > 0 and len(counts) < 256:
        nbits = (remaining + 1).bit_length()
        val = r.read(nbits)
        lower_mask = (1 << (nbits - 1)) - 1
        threshold = (1 << nbits) - 1 - (remaining + 1)
        if (val & lower_mask) < threshold:
            r.rewind(1)
            val &= lower_mask
        elif val > lower_mask:
            val -= threshold
        prob = val - 1
        remaining -= -prob if prob < 0 else prob
        counts.append(prob)
        if prob == 0:
            while True:
                rep = r.read(2)
                counts.extend([0] * rep)
                if rep != 3:
                    break
    if remaining != 0:
        raise ZstdError("corrupt FSE table description")
    return counts, log, r.byte_pos() - pos


class _Huffman:
    __slots__ = ("table", "max_bits")

    def __init__(self, weights: list[int]):
        total = sum(1 << (w - 1) for w in weights if w > 0)
        if total == 0:
            raise ZstdError("empty Huffman table")
        max_bits = total.bit_length()  # the implied last weight brings total to 2**max_bits
        rest = (1 << max_bits) - total
        if rest & (rest - 1):
            raise ZstdError("Huffman weights do not sum to a power of two")
        weights = [*weights, rest.bit_length()]
        if max_bits > 11:
            raise ZstdError("Huffman code longer than 11 bits")
        table: list[tuple[int, int]] = []
        for w in range(1, max_bits + 1):
            for sym, sw in enumerate(weights):
                if sw == w:
                    table.extend([(sym, max_bits + 1 - w)] * (1 << (w - 1)))
        self.table, self.max_bits = table, max_bits

    def decode(self, stream: bytes | memoryview, count: int, out: bytearray) -> None:
        r = _Backward(stream)
        table, mb = self.table, self.max_bits
        for _ in range(count):
            sym, nb = table[r.peek(mb)]
            r.pos -= nb
            out.append(sym)
        if r.pos != 0:
            raise ZstdError("Huffman stream not fully consumed")


def _read_huffman(data: bytes | memoryview, pos: int) -> tuple[_Huffman, int]:
    header = data[pos]
    if header >= 128:
        n = header - 127
        nbytes = (n + 1) // 2
        raw = data[pos + 1 : pos + 1 + nbytes]
        weights = []
        for b in raw:
            weights += [b >> 4, b & 15]
        return _Huffman(weights[:n]), 1 + nbytes
    size = header
    counts, log, used = _read_fse_counts(data, pos + 1, 6)
    table = _FSE(counts, log)
    r = _Backward(data[pos + 1 + used : pos + 1 + size])
    s1 = r.read(log)
    s2 = r.read(log)
    weights: list[int] = []
    sym, bits, base = table.symbols, table.bits, table.base
    while True:
        weights.append(sym[s1])
        s1 = base[s1] + r.read(bits[s1])
        if r.pos < 0:
            weights.append(sym[s2])
            break
        weights.append(sym[s2])
        s2 = base[s2] + r.read(bits[s2])
        if r.pos < 0:
            weights.append(sym[s1])
            break
        if len(weights) > 255:
            raise ZstdError("too many Huffman weights")
    return _Huffman(weights), 1 + size


class _FrameState:
    def __init__(self) -> None:
        self.huffman: _Huffman | None = None
        self.ll: _FSE | None = None
        self.of: _FSE | None = None
        self.ml: _FSE | None = None
        self.reps = [1, 4, 8]


def _literals(block: memoryview, st: _FrameState) -> tuple[bytes | bytearray, int]:
    b0 = block[0]
    ltype, fmt = b0 & 3, (b0 >> 2) & 3
    if ltype in (0, 1):  # raw, RLE
        if fmt in (0, 2):
            size, hsize = b0 >> 3, 1
        elif fmt == 1:
            size, hsize = (b0 >> 4) | (block[1] << 4), 2
        else:
            size, hsize = (b0 >> 4) | (block[1] << 4) | (block[2] << 12), 3
        if ltype == 0:
            lit = bytes(block[hsize : hsize + size])
            if len(lit) != size:
                raise ZstdError("truncated raw literals")
            return lit, hsize + size
        return bytes([block[hsize]]) * size, hsize + 1
    if fmt in (0, 1):
        v = int.from_bytes(block[0:3], "little")
        regen, comp, hsize = (v >> 4) & 0x3FF, (v >> 14) & 0x3FF, 3
    elif fmt == 2:
        v = int.from_bytes(block[0:4], "little")
        regen, comp, hsize = (v >> 4) & 0x3FFF, v >> 18, 4
    else:
        v = int.from_bytes(block[0:5], "little")
        regen, comp, hsize = (v >> 4) & 0x3FFFF, v >> 22, 5
    pos = hsize
    end = hsize + comp
    if end > len(block):
        raise ZstdError("truncated compressed literals")
    if ltype == 2:
        st.huffman, used = _read_huffman(block, pos)
        pos += used
    elif st.huffman is None:
        raise ZstdError("treeless literals without a previous Huffman table")
    out = bytearray()
    if fmt == 0:
        st.huffman.decode(block[pos:end], regen, out)
    else:
        s1 = block[pos] | (block[pos + 1] << 8)
        s2 = block[pos + 2] | (block[pos + 3] << 8)
        s3 = block[pos + 4] | (block[pos + 5] << 8)
        pos += 6
        seg = (regen + 3) // 4
        bounds = [pos, pos + s1, pos + s1 + s2, pos + s1 + s2 + s3, end]
        for i in range(4):
            n = seg if i < 3 else regen - 3 * seg
            st.huffman.decode(block[bounds[i] : bounds[i + 1]], n, out)
    if len(out) != regen:
        raise ZstdError("literals size mismatch")
    return out, end


def _seq_table(mode: int, block: memoryview, pos: int, default: tuple[list[int], int], max_log: int,
               prev: _FSE | None) -> tuple[_FSE, int]:
    if mode == 0:
        return _FSE(*default), 0
    if mode == 1:
        return _FSE.rle(block[pos]), 1
    if mode == 2:
        counts, log, used = _read_fse_counts(block, pos, max_log)
        return _FSE(counts, log), used
    if prev is None:
        raise ZstdError("repeat mode without a previous table")
    return prev, 0


def _block(block: memoryview, st: _FrameState, out: bytearray) -> None:
    lit, pos = _literals(block, st)
    b0 = block[pos]
    if b0 == 0:
        out += lit
        return
    if b0 < 128:
        nseq, pos = b0, pos + 1
    elif b0 < 255:
        nseq, pos = ((b0 - 128) << 8) + block[pos + 1], pos + 2
    else:
        nseq, pos = block[pos + 1] + (block[pos + 2] << 8) + 0x7F00, pos + 3
    modes = block[pos]
    pos += 1
    st.ll, used = _seq_table((modes >> 6) & 3, block, pos, _LL_DEFAULT, 9, st.ll)
    pos += used
    st.of, used = _seq_table((modes >> 4) & 3, block, pos, _OF_DEFAULT, 8, st.of)
    pos += used
    st.ml, used = _seq_table((modes >> 2) & 3, block, pos, _ML_DEFAULT, 9, st.ml)
    pos += used
    r = _Backward(block[pos:])
    ll_t, of_t, ml_t = st.ll, st.of, st.ml
    ll_s = r.read(ll_t.log)
    of_s = r.read(of_t.log)
    ml_s = r.read(ml_t.log)
    reps = st.reps
    lit_pos = 0
    read = r.read
    for i in range(nseq):
        of_code = of_t.symbols[of_s]
        ml_code = ml_t.symbols[ml_s]
        ll_code = ll_t.symbols[ll_s]
        if of_code > 31:
            raise ZstdError("offset code out of range")
        offset_value = (1 << of_code) + read(of_code)
        ml = _ML_BASE[ml_code] + read(_ML_BITS[ml_code])
        ll = _LL_BASE[ll_code] + read(_LL_BITS[ll_code])
        if offset_value > 3:
            offset = offset_value - 3
            reps[:] = [offset, reps[0], reps[1]]
        else:
            idx = offset_value - 1 + (ll == 0)
            if idx == 0:
                offset = reps[0]
            elif idx == 3:
                offset = reps[0] - 1
                reps[:] = [offset, reps[0], reps[1]]
            elif idx == 1:
                offset = reps[1]
                reps[:] = [offset, reps[0], reps[2]]
            else:
                offset = reps[2]
                reps[:] = [offset, reps[0], reps[1]]
        if i != nseq - 1:
            ll_s = ll_t.base[ll_s] + read(ll_t.bits[ll_s])
            ml_s = ml_t.base[ml_s] + read(ml_t.bits[ml_s])
            of_s = of_t.base[of_s] + read(of_t.bits[of_s])
        if lit_pos + ll > len(lit):
            raise ZstdError("sequence reads past the literals")
        out += lit[lit_pos : lit_pos + ll]
        lit_pos += ll
        if offset <= 0 or offset > len(out):
            raise ZstdError("match offset before the start of the output")
        start = len(out) - offset
        if offset >= ml:
            out += out[start : start + ml]
        else:  # overlapping copy repeats the last `offset` bytes
            chunk = out[start:]
            reps_needed, tail = divmod(ml, offset)
            out += chunk * reps_needed + chunk[:tail]
    if r.pos != 0:
        raise ZstdError("sequence bitstream not fully consumed")
    out += lit[lit_pos:]


def decompress_pure(data: bytes) -> bytes:
    """Decompress every frame in ``data`` (skippable frames are skipped)."""
    view = memoryview(data)
    out = bytearray()
    pos = 0
    n = len(data)
    if n == 0:
        raise ZstdError("empty input")
    while pos < n:
        if n - pos < 4:
            raise ZstdError("trailing bytes after the last frame")
        magic = int.from_bytes(view[pos : pos + 4], "little")
        if magic & 0xFFFFFFF0 == 0x184D2A50:
            size = int.from_bytes(view[pos + 4 : pos + 8], "little")
            pos += 8 + size
            continue
        if magic != _MAGIC:
            raise ZstdError(f"not a zstd frame at byte {pos}")
        pos += 4
        fhd = view[pos]
        pos += 1
        fcs_flag, single, checksum, dict_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        if fhd & 8:
            raise ZstdError("reserved frame header bit set")
        if not single:
            pos += 1  # window descriptor: the whole frame is kept in memory anyway
        dict_size = (0, 1, 2, 4)[dict_flag]
        if dict_size and int.from_bytes(view[pos : pos + dict_size], "little"):
            raise ZstdError("zstd dictionaries are not supported")
        pos += dict_size
        pos += (single, 2, 4, 8)[fcs_flag] if fcs_flag or single else 0
        st = _FrameState()
        while True:
            if pos + 3 > n:
                raise ZstdError("truncated block header")
            h = int.from_bytes(view[pos : pos + 3], "little")
            pos += 3
            last, btype, bsize = h & 1, (h >> 1) & 3, h >> 3
            if btype == 0:
                if pos + bsize > n:
                    raise ZstdError("truncated raw block")
                out += view[pos : pos + bsize]
                pos += bsize
            elif btype == 1:
                if pos >= n:
                    raise ZstdError("truncated RLE block")
                out += bytes([view[pos]]) * bsize
                pos += 1
            elif btype == 2:
                if bsize > _MAX_BLOCK or pos + bsize > n:
                    raise ZstdError("truncated or oversized compressed block")
                _block(view[pos : pos + bsize], st, out)
                pos += bsize
            else:
                raise ZstdError("reserved block type")
            if last:
                break
        if checksum:
            pos += 4
    return bytes(out)
