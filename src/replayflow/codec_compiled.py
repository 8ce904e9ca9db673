"""Compiled Avro writers and readers: for each record schema the codec writes, Python
functions generated once that write a record dict straight into a bytearray, and read
one back from bytes.

fastavro's schemaless_writer interprets the schema on every call (it looks up each
field's type, and tries each branch of a union against the value); that was ~3 us of
the ~4 the orchestrator spent on each of the dozen records a three-step workflow
produces. The generated function does only the writes, at about a third of the cost.

It covers what replayflow's schemas use: null, boolean, int, long, string, bytes,
nested records (named or referenced by name), arrays, and unions of null and one
other type. For any other schema `compile_writer` returns None and the codec keeps
fastavro. The codec calls a compiled writer first and, on any error at all, writes
the record again with fastavro, whose output or error is the answer: so a compiled
writer can only ever be faster, never accept or write anything fastavro would not
(tests/unit/test_codec_compiled.py compares the bytes of both for every schema).

Readers likewise: the codec reads with a compiled reader first (only records written
with the newest schema: no resolution) and, when it fails in any way (truncated or
corrupt bytes, a union index or boolean byte out of range, a varint past 64 bits,
bytes left over), reads again with fastavro, whose record or error stands.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Writer = Callable[[bytearray, dict[str, Any]], None]
Reader = Callable[[bytes], dict[str, Any]]

_MIN_LONG, _MAX_LONG = -(2**63), 2**63 - 1
# Zig-zag varints of 0..63 are the one byte 2n: most sequence numbers, attempts, lengths.
_SMALL = [bytes([2 * n]) for n in range(64)]


# Times repeat within a batch (every record of a batch carries its `now`): a bounded
# cache turns most of the other varints into a lookup. typed=True: 100.0 is not 100.
@functools.lru_cache(maxsize=4096, typed=True)
def _long(n: int) -> bytes:
    """The zig-zag varint of a long, as Avro writes it."""
    if not _MIN_LONG <= n <= _MAX_LONG:
        raise OverflowError(f"{n} does not fit in an Avro long")
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _Unsupported(Exception):
    """A schema the generator does not cover: fastavro writes it."""


_PRIMITIVES = ("null", "boolean", "int", "long", "string", "bytes")


class _Generator:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, dict[str, Any]] = {}
        self.count = 0

    def var(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def line(self, indent: int, text: str) -> None:
        self.lines.append(" " * indent + text)

    def write(self, schema: Any, expr: str, indent: int) -> None:
        """Lines that write the value of `expr` (an expression) as `schema`."""
        if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
            if set(schema) - {"type"}:
                raise _Unsupported(f"annotated primitive {schema}")  # a logical type, say
            schema = schema["type"]
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in self.names:
                raise _Unsupported(f"unknown named type {schema}")
            schema = self.names[schema]
        v = self.var()
        if schema in ("int", "long"):
            self.line(indent, f"{v} = {expr}")
            self.line(indent, f"b += S[{v}] if 0 <= {v} < 64 else L({v})")
        elif schema == "string":
            self.line(indent, f"{v} = {expr}.encode()")
            self.line(indent, f"b += S[len({v})] if len({v}) < 64 else L(len({v}))")
            self.line(indent, f"b += {v}")
        elif schema == "bytes":
            self.line(indent, f"{v} = {expr}")
            self.line(indent, f"if not isinstance({v}, bytes): raise TypeError('not bytes')")
            self.line(indent, f"b += L(len({v}))")
            self.line(indent, f"b += {v}")
        elif schema == "boolean":
            self.line(indent, f"b += b'\\x01' if {expr} else b'\\x00'")
        elif schema == "null":
            self.line(indent, f"if {expr} is not None: raise TypeError('not null')")
        elif isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null" or schema[1] == "null":
                raise _Unsupported(f"union {schema}")
            if isinstance(schema[1], list):
                raise _Unsupported(f"union {schema}")
            self.line(indent, f"{v} = {expr}")
            self.line(indent, f"if {v} is None:")
            self.line(indent + 4, "b += b'\\x00'")
            self.line(indent, "else:")
            self.line(indent + 4, "b += b'\\x02'")
            self.write(schema[1], v, indent + 4)
        elif isinstance(schema, dict) and schema.get("type") == "record":
            self.names[schema["name"]] = schema
            self.line(indent, f"{v} = {expr}")
            for field in schema["fields"]:
                self.write(field["type"], f"{v}[{field['name']!r}]", indent)
        elif isinstance(schema, dict) and schema.get("type") == "array":
            item = self.var()
            self.line(indent, f"{v} = {expr}")
            self.line(indent, f"if {v}:")  # a block of n items, then the empty block
            self.line(indent + 4, f"b += L(len({v}))")
            self.line(indent + 4, f"for {item} in {v}:")
            self.write(schema["items"], item, indent + 8)
            self.line(indent, "b += b'\\x00'")
        else:
            raise _Unsupported(f"type {str(schema)[:80]}")


def compile_writer(schema: dict[str, Any]) -> Writer | None:
    """A function writing a record dict of `schema` (fastavro's parsed form) into a
    bytearray; None for a schema it does not cover."""
    generator = _Generator()
    try:
        generator.write(schema, "d", 4)
    except _Unsupported:
        return None
    source = "def write(b, d):\n" + "\n".join(generator.lines) + "\n"
    namespace: dict[str, Any] = {"S": _SMALL, "L": _long}
    exec(compile(source, f"<avro writer {schema.get('name')}>", "exec"), namespace)
    writer: Writer = namespace["write"]
    return writer


def _read_long(data: bytes, p: int) -> tuple[int, int]:
    """A zig-zag varint of up to 64 bits at p: (value, position after it)."""
    n = shift = 0
    while True:
        b = data[p]
        p += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("a varint longer than 10 bytes")
    if n >> 64:
        raise ValueError("a varint past 64 bits")
    return (n >> 1) ^ -(n & 1), p


class _ReaderGenerator(_Generator):
    def read(self, schema: Any, target: str, indent: int) -> None:
        """Lines that read a value of `schema` at position p into the variable `target`."""
        if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
            if set(schema) - {"type"}:
                raise _Unsupported(f"annotated primitive {schema}")
            schema = schema["type"]
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in self.names:
                raise _Unsupported(f"unknown named type {schema}")
            schema = self.names[schema]
        line = self.line
        if schema in ("int", "long"):
            self.read_long(target, indent)
        elif schema in ("string", "bytes"):
            n = self.var()
            self.read_long(n, indent)
            line(indent, f"if {n} < 0 or p + {n} > len(data): raise EOFError('short')")
            decode = ".decode()" if schema == "string" else ""
            line(indent, f"{target} = data[p : p + {n}]{decode}")
            line(indent, f"p += {n}")
        elif schema == "boolean":
            b = self.var()
            line(indent, f"{b} = data[p]")
            line(indent, "p += 1")
            line(indent, f"if {b} > 1: raise ValueError('not a boolean')")
            line(indent, f"{target} = {b} == 1")
        elif schema == "null":
            line(indent, f"{target} = None")
        elif isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null" or schema[1] == "null":
                raise _Unsupported(f"union {schema}")
            if isinstance(schema[1], list):
                raise _Unsupported(f"union {schema}")
            b = self.var()
            line(indent, f"{b} = data[p]")
            line(indent, "p += 1")
            line(indent, f"if {b} == 0:")
            line(indent + 4, f"{target} = None")
            line(indent, f"elif {b} == 2:")
            self.read(schema[1], target, indent + 4)
            line(indent, "else:")
            line(indent + 4, "raise ValueError('union index out of range')")
        elif isinstance(schema, dict) and schema.get("type") == "record":
            self.names[schema["name"]] = schema
            fields = [(f["name"], self.var()) for f in schema["fields"]]
            for (_, v), field in zip(fields, schema["fields"], strict=True):
                self.read(field["type"], v, indent)
            line(indent, f"{target} = {{{', '.join(f'{n!r}: {v}' for n, v in fields)}}}")
        elif isinstance(schema, dict) and schema.get("type") == "array":
            count, item = self.var(), self.var()
            line(indent, f"{target} = []")
            self.read_long(count, indent)
            line(indent, f"while {count}:")
            line(indent + 4, f"if {count} < 0: raise ValueError('a sized block')")
            line(indent + 4, f"for _ in range({count}):")
            self.read(schema["items"], item, indent + 8)
            line(indent + 8, f"{target}.append({item})")
            self.read_long(count, indent + 4)
        else:
            raise _Unsupported(f"type {str(schema)[:80]}")

    def read_long(self, target: str, indent: int) -> None:
        # One byte (0..63 and -64..-1) is the common case: no call.
        b = self.var()
        self.line(indent, f"{b} = data[p]")
        self.line(indent, f"if {b} < 0x80:")
        self.line(indent + 4, f"{target} = ({b} >> 1) ^ -({b} & 1)")
        self.line(indent + 4, "p += 1")
        self.line(indent, "else:")
        self.line(indent + 4, f"{target}, p = R(data, p)")


def compile_reader(schema: dict[str, Any], start: int) -> Reader | None:
    """A function reading a record of `schema` (fastavro's parsed form) from bytes that
    hold it from position `start` to their end; None for a schema it does not cover."""
    generator = _ReaderGenerator()
    try:
        generator.read(schema, "record", 4)
    except _Unsupported:
        return None
    lines = ["def read(data):", f"    p = {start}", *generator.lines]
    lines += ["    if p != len(data): raise ValueError('bytes left over')", "    return record"]
    namespace: dict[str, Any] = {"R": _read_long}
    exec(compile("\n".join(lines) + "\n", f"<avro reader {schema.get('name')}>", "exec"), namespace)
    reader: Reader = namespace["read"]
    return reader
