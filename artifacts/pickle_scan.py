"""List the globals a pickle would import, without unpickling it: a symbolic walk over the
opcodes (``pickletools.genops``) of plain pickles (protocols 0-5), joblib files (plain
and compressed) and the pickles inside PyTorch zips. Pure, no Django.

Why not only picklescan: picklescan lists globals by reading the opcodes as one flat
stream, and joblib writes each numpy array's raw bytes *between* the opcodes of its
pickle (``joblib.numpy_pickle.NumpyArrayWrapper``: after the wrapper's BUILD, the
loader reads the array's bytes from the file and then resumes the pickle). A flat reader
trips on the first array ("opcode b'\\r' unknown") and never sees what comes after it,
which is where a payload would sit. Here the walk keeps a symbolic stack (no object is
ever created, no callable ever called), so at a wrapper's BUILD it knows the array's
shape, dtype and alignment and skips exactly its bytes, as joblib's loader would read
them, or walks the nested pickle joblib writes for arrays of Python objects. picklescan
still decides which globals are dangerous (its maintained lists): see inspection.py.

# SECURITY: nothing here imports a module named in the file or calls anything; values on
# the symbolic stack are plain data (str, int, tuples, lists, dicts) or ``Ref`` records.
# A file the walk cannot follow (an unknown opcode, a stack underflow, an array header it
# cannot size) raises ``Unscannable``: the caller shows "not scanned", never "safe".
"""

from __future__ import annotations

import ast
import bz2
import contextlib
import gzip
import io
import lzma
import pickletools
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

# joblib's compressors, by the first bytes of the file (joblib/compressor.py).
ZLIB_PREFIX = b"\x78"
GZIP_PREFIX = b"\x1f\x8b"
BZ2_PREFIX = b"BZh"
XZ_PREFIX = b"\xfd7zXZ"
LZMA_PREFIX = b"\x5d\x00\x00"
LZ4_PREFIX = b"\x04\x22\x4d\x18"
COMPRESSIONS = (
    (ZLIB_PREFIX, "zlib"),
    (GZIP_PREFIX, "gzip"),
    (BZ2_PREFIX, "bz2"),
    (XZ_PREFIX, "xz"),
    (LZMA_PREFIX, "lzma"),
    (LZ4_PREFIX, "lz4"),
)
NUMPY_MAGIC = b"\x93NUMPY"
SKIP_CHUNK = 1024 * 1024
MAX_KEPT_STRING = 1_000  # longer str/bytes values stay on the stack as an opaque marker
MAX_NESTING = 16  # joblib object arrays nest pickles; deeper than this is refused


class Unscannable(Exception):
    """The walk cannot follow the file; the message says why, for "not scanned: <reason>"."""


class TooLarge(Unscannable):
    """Reading on would pass the byte cap."""


@dataclass
class Ref:
    """A symbolic value: a global (``module``, ``name``), or what calling or instantiating
    ``target`` with ``args`` would make (``kind`` "call" or "object"); ``state`` is what a
    BUILD would give it."""

    kind: str
    module: str = ""
    name: str = ""
    target: Any = None
    args: Any = None
    state: Any = None


OPAQUE = Ref("opaque")
_MARK = object()


@dataclass
class WalkResult:
    globals: set[tuple[str, str]] = field(default_factory=set)
    pickles: int = 0
    joblib_arrays: int = 0
    trailing_bytes: bool = False


class CappedReader(io.RawIOBase):
    """A read-only stream over another that refuses to read past ``limit`` bytes (the
    uncompressed size the scanner may read), so a decompression bomb or an opcode
    claiming a 2**60-byte argument stops with ``TooLarge`` instead of filling memory."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        super().__init__()
        self._raw = raw
        self._limit = limit
        self._pushback = b""
        self.position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._pushback and size != 0:
            take = len(self._pushback) if size is None or size < 0 else min(size, len(self._pushback))
            head, self._pushback = self._pushback[:take], self._pushback[take:]
            self.position += take
            if size is None or size < 0:
                return head + self.read(-1)
            return head if take == size else head + self.read(size - take)
        if size is None or size < 0:
            size = self._limit - self.position + 1
        if self.position + size > self._limit:
            # Read what is there up to the cap: a short file ends normally, a longer one is refused.
            allowed = max(self._limit - self.position, 0)
            data = self._raw.read(allowed + 1)
            if len(data) > allowed:
                raise TooLarge(f"the pickle is over the {self._limit}-byte scanning limit")
            self.position += len(data)
            return data
        data = self._raw.read(size)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self.position

    def skip(self, count: int) -> None:
        """Read and drop ``count`` bytes (raw array data); a short read is a truncated file."""
        while count > 0:
            chunk = self.read(min(count, SKIP_CHUNK))
            if not chunk:
                raise Unscannable("the file ends inside a joblib array")
            count -= len(chunk)

    def unread(self, data: bytes) -> None:
        """Put back bytes just read (one probe byte), for the next read."""
        self._pushback = data + self._pushback
        self.position -= len(data)


class _ZlibReader(io.RawIOBase):
    """joblib's ``.z`` files: one zlib stream, decompressed as it is read."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._inflate = zlib.decompressobj()
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size >= 0 else 1 << 62
        while len(self._buffer) < want and not self._inflate.eof:
            data = self._inflate.unconsumed_tail or self._raw.read(SKIP_CHUNK)
            if not data:
                break
            self._buffer += self._inflate.decompress(data, min(want - len(self._buffer), SKIP_CHUNK * 16))
        out, self._buffer = self._buffer[:want], self._buffer[want:]
        return out


def compression_of(head: bytes) -> str | None:
    """joblib's compression of a file from its first bytes, or None (a plain pickle).
    A plain pickle starts with PROTO (0x80) or a protocol 0/1 opcode, none of these."""
    for prefix, name in COMPRESSIONS:
        if head.startswith(prefix):
            return name
    return None


@contextlib.contextmanager
def open_decompressed(path: Path, limit: int) -> Iterator[tuple[CappedReader, str | None]]:
    """The file's pickle bytes (decompressed when joblib compressed it), capped at ``limit``."""
    with open(path, "rb") as handle:
        compression = compression_of(handle.read(8))
        handle.seek(0)
        stream: Any  # a binary stream: the file, or a decompressor over it
        if compression is None:
            stream = handle
        elif compression == "zlib":
            stream = _ZlibReader(handle)
        elif compression == "gzip":
            stream = gzip.GzipFile(fileobj=handle, mode="rb")
        elif compression == "bz2":
            stream = bz2.BZ2File(handle, "rb")
        elif compression in ("xz", "lzma"):
            fmt = lzma.FORMAT_XZ if compression == "xz" else lzma.FORMAT_ALONE
            stream = lzma.LZMAFile(handle, "rb", format=fmt)  # noqa: SIM115 - ``handle``'s with closes the file
        else:
            try:
                import lz4.frame  # type: ignore[import-not-found]  # optional, as for joblib
            except ImportError:
                raise Unscannable("lz4-compressed joblib file, and the lz4 package is not installed") from None
            stream = lz4.frame.open(handle, "rb")
        yield CappedReader(stream, limit), compression


# --- the symbolic walk -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, (str, bytes, bytearray)) and len(value) > MAX_KEPT_STRING:
        return OPAQUE
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _is_wrapper_class(value: Any) -> bool:
    return (
        isinstance(value, Ref)
        and value.kind == "global"
        and value.name == "NumpyArrayWrapper"
        and value.module.endswith("numpy_pickle")
    )


def _is_joblib_wrapper(obj: Any) -> bool:
    """An object joblib's loader would read array bytes after: NEWOBJ/OBJ/INST of
    NumpyArrayWrapper (protocols 2+), or copyreg._reconstructor(NumpyArrayWrapper, ...)
    (protocols 0 and 1)."""
    if not isinstance(obj, Ref):
        return False
    if obj.kind == "object" and _is_wrapper_class(obj.target):
        return True
    if obj.kind == "call" and isinstance(obj.target, Ref) and obj.target.name == "_reconstructor":
        args = obj.args
        return isinstance(args, tuple) and bool(args) and _is_wrapper_class(args[0])
    return False


def _dtype_size(dtype: Any) -> tuple[int, bool]:
    """(item size in bytes, holds Python objects) of a pickled ``numpy.dtype``: its REDUCE
    arguments ("f8", False, True) and its BUILD state (version, byte order, subarray,
    names, fields, element size, alignment, flags)."""
    if not (isinstance(dtype, Ref) and dtype.kind == "call" and isinstance(dtype.args, tuple) and dtype.args):
        raise Unscannable("a joblib array's dtype is not a numpy dtype")
    code = dtype.args[0]
    if not isinstance(code, str):
        raise Unscannable("a joblib array's dtype has no type code")
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
    has_object = code.startswith("O") or bool(flags & 1)
    size = state[5] if len(state) > 5 and isinstance(state[5], int) and state[5] > 0 else None
    if size is None:
        match = re.fullmatch(r"[<>|=]?[a-zA-Z?](\d+)", code)
        if match is None:
            raise Unscannable(f"cannot size the joblib array dtype {code[:20]!r}")
        size = int(match.group(1))
    return size, has_object


def _skip_joblib_array(wrapper: Ref, stream: CappedReader, result: WalkResult, depth: int) -> None:
    """Move past one array's bytes exactly as ``NumpyArrayWrapper.read_array`` reads them."""
    state = wrapper.state
    if not isinstance(state, dict):
        raise Unscannable("a joblib array wrapper has no state")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise Unscannable("a joblib array's shape is not a tuple of sizes")
    size, has_object = _dtype_size(state.get("dtype"))
    result.joblib_arrays += 1
    if has_object:
        # Arrays of Python objects are a nested pickle, read by a fresh unpickler.
        _walk_one(stream, result, depth=depth + 1)
        return
    if state.get("numpy_array_alignment_bytes") is not None:  # joblib >= 1.2 pads to 16 bytes
        padding = stream.read(1)
        if not padding:
            raise Unscannable("the file ends inside a joblib array")
        stream.skip(padding[0])
    count = 1
    for dim in shape:
        count *= dim
    stream.skip(count * size)


def _walk_one(stream: CappedReader, result: WalkResult, *, depth: int = 0) -> bool:
    """Walk one pickle to its STOP; return False when the stream was already at its end.
    Raise Unscannable when the bytes are not a pickle this walk can follow."""
    if depth > MAX_NESTING:
        raise Unscannable("joblib arrays nested too deep")
    stack: list[Any] = []
    marks: list[list[Any]] = []
    memo: dict[int, Any] = {}
    started = False

    def pop() -> Any:
        if not stack:
            raise Unscannable("stack underflow")
        return stack.pop()

    def pop_mark() -> list[Any]:
        nonlocal stack
        if not marks:
            raise Unscannable("no MARK on the stack")
        items = stack
        stack = marks.pop()
        return items

    def record(module: Any, name: Any) -> Ref:
        if isinstance(module, str) and isinstance(name, str):
            result.globals.add((module, name))
            return Ref("global", module=module, name=name)
        result.globals.add(("unknown", "unknown"))  # picklescan classifies it dangerous
        return Ref("global", module="unknown", name="unknown")

    try:
        for opcode, arg, position in pickletools.genops(cast(IO[bytes], stream)):
            started = True
            op = opcode.name
            if op in ("PROTO", "FRAME", "READONLY_BUFFER"):
                continue
            if op == "STOP":
                result.pickles += 1
                return True
            if op == "MARK":
                marks.append(stack)
                stack = []
            elif op == "POP":
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif op == "POP_MARK":
                pop_mark()
            elif op == "DUP":
                stack.append(stack[-1] if stack else OPAQUE)
            elif op in ("NONE", "NEWTRUE", "NEWFALSE"):
                stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[op])
            elif op in ("EMPTY_LIST",):
                stack.append([])
            elif op == "EMPTY_TUPLE":
                stack.append(())
            elif op == "EMPTY_DICT":
                stack.append({})
            elif op == "EMPTY_SET":
                stack.append(set())
            elif op == "NEXT_BUFFER":
                stack.append(OPAQUE)
            elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
                count = int(op[-1])
                items = [pop() for _ in range(count)]
                stack.append(tuple(reversed(items)))
            elif op == "TUPLE":
                items = pop_mark()
                stack.append(tuple(items))
            elif op == "LIST":
                items = pop_mark()
                stack.append(items)
            elif op == "DICT":
                items = pop_mark()
                stack.append({k: v for k, v in zip(items[::2], items[1::2], strict=False) if _hashable(k)})
            elif op == "FROZENSET":
                items = pop_mark()
                stack.append(frozenset(v for v in items if _hashable(v)))
            elif op == "APPEND":
                value = pop()
                if stack and isinstance(stack[-1], list):
                    stack[-1].append(value)
            elif op == "APPENDS":
                items = pop_mark()
                if stack and isinstance(stack[-1], list):
                    stack[-1].extend(items)
            elif op == "SETITEM":
                value, key = pop(), pop()
                if stack and isinstance(stack[-1], dict) and _hashable(key):
                    stack[-1][key] = value
            elif op == "SETITEMS":
                items = pop_mark()
                if stack and isinstance(stack[-1], dict):
                    stack[-1].update({k: v for k, v in zip(items[::2], items[1::2], strict=False) if _hashable(k)})
            elif op == "ADDITEMS":
                items = pop_mark()
                if stack and isinstance(stack[-1], set):
                    stack[-1].update(v for v in items if _hashable(v))
            elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[cast(int, arg)] = stack[-1] if stack else OPAQUE
            elif op == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else OPAQUE
            elif op in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(cast(int, arg), OPAQUE))
            elif op in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                ref = record(module, name)
                if op == "INST":
                    items = pop_mark()  # before naming ``stack``: pop_mark rebinds it
                    stack.append(Ref("object", target=ref, args=tuple(items)))
                else:
                    stack.append(ref)
            elif op == "STACK_GLOBAL":
                name, module = pop(), pop()
                stack.append(record(module, name))
            elif op == "OBJ":
                items = pop_mark()
                if not items:
                    raise Unscannable("OBJ without a class")
                stack.append(Ref("object", target=items[0], args=tuple(items[1:])))
            elif op == "NEWOBJ":
                args, cls = pop(), pop()
                stack.append(Ref("object", target=cls, args=args))
            elif op == "NEWOBJ_EX":
                _kwargs, args, cls = pop(), pop(), pop()
                stack.append(Ref("object", target=cls, args=args))
            elif op == "REDUCE":
                args, func = pop(), pop()
                stack.append(Ref("call", target=func, args=args))
            elif op == "BUILD":
                state = pop()
                if not stack:
                    raise Unscannable("stack underflow")
                target = stack[-1]
                if isinstance(target, Ref) and target is not OPAQUE:
                    target.state = state
                    if _is_joblib_wrapper(target):
                        _skip_joblib_array(target, stream, result, depth)
            elif op in ("EXT1", "EXT2", "EXT4"):
                # copyreg's extension registry names a global by number: unknown here.
                stack.append(record(None, None))
            elif op == "PERSID":
                stack.append(OPAQUE)
            elif op == "BINPERSID":
                pop()
                stack.append(OPAQUE)
            elif arg is not None or op in ("INT", "LONG"):
                stack.append(_plain(arg))  # a constant: numbers, strings, bytes, floats
            else:
                raise Unscannable(f"opcode {op} at byte {position} is not understood")
    except Unscannable:
        raise
    except (ValueError, struct.error, EOFError, IndexError, UnicodeDecodeError) as exc:
        if not started:
            return False
        raise Unscannable(f"not a pickle this scanner can read: {str(exc)[:200]}") from None
    if not started:
        return False
    raise Unscannable("the pickle ends without STOP")


def walk(stream: CappedReader, result: WalkResult | None = None) -> WalkResult:
    """Walk every pickle of a stream: the first must parse; more pickles may follow it (a
    file written by several ``pickle.dump`` calls, PyTorch's legacy format). Bytes after
    the last pickle that do not start a protocol 2+ pickle (legacy PyTorch's raw storages)
    end the walk and are noted in ``trailing_bytes``: loaders read pickles one by one and
    none reads one out of raw data. Globals found before a failure stay in ``result``."""
    result = result if result is not None else WalkResult()
    if not _walk_one(stream, result):
        raise Unscannable("the file is empty")
    while True:
        probe = stream.read(1)
        if not probe:
            return result
        if probe[0] != 0x80:  # not PROTO
            result.trailing_bytes = True
            return result
        stream.unread(probe)
        _walk_one(stream, result)


def numpy_object_offset(head: bytes) -> int | None:
    """For a ``.npy`` file: the offset of the pickle that follows its header when the
    array holds Python objects (numpy pickles those), else None (raw numbers only)."""
    if not head.startswith(NUMPY_MAGIC) or len(head) < 10:
        raise Unscannable("not a .npy file")
    major = head[6]
    if major == 1:
        (length,) = struct.unpack("<H", head[8:10])
        start = 10
    else:
        (length,) = struct.unpack("<I", head[8:12])
        start = 12
    text = head[start : start + length]
    if len(text) < length:
        raise Unscannable("the .npy header is cut")
    try:
        header = ast.literal_eval(text.decode("latin1"))
    except (ValueError, SyntaxError) as exc:
        raise Unscannable(f"the .npy header does not parse: {exc}") from None
    if not isinstance(header, dict) or "descr" not in header:
        raise Unscannable("the .npy header has no descr")
    return start + length if "O" in str(header["descr"]) else None
