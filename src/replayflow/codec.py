"""Avro single-object encoding of the messages in replayflow.core.messages.

Every Kafka value replayflow writes is one Avro record in the single-object encoding of
the Avro spec::

    C3 01 | 8-byte CRC-64-AVRO fingerprint of the writer schema (little-endian) | body

The fingerprint is taken over the writer schema's Parsing Canonical Form. It names the
exact schema the body was written with, so a reader needs no registry service: every
version of every schema ships in the wheel (``schemas/`` -> ``replayflow/_schemas``) and
is loaded once, keyed by fingerprint. A body written with an older version is read with
Avro schema resolution into the newest version of the same record, which fills the
fields added since with their defaults; the newest version maps field for field onto
the dataclass of the same name.

Everything that can be precomputed is, at load time: parsed schemas, fingerprints, for
each dataclass the conversion to and from the plain dicts fastavro works on, and for
each schema a writer and a reader generated for it (codec_compiled.py), which do the
common case in a fraction of fastavro's time and leave the rest to fastavro. Encode and
decode sit on the orchestrator's hot path.

The API is the module functions ``encode``, ``decode``, ``fingerprint_of`` and
``schema_for`` (backed by one ``Codec`` loaded from the package on first use), and
``Codec`` itself for code that needs its own registry, e.g. one with extra writer
schemas (``Codec.register_writer``). Every failure is a ``CodecError`` with a ``reason``.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import importlib
import importlib.resources
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from importlib.resources.abc import Traversable
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, to_parsing_canonical_form

from replayflow.codec_compiled import Reader, Writer, compile_reader, compile_writer
from replayflow.core import messages
from replayflow.core.errors import ReplayflowError

#: Modules whose dataclasses map to records by name. The core's messages, the schedules'
#: commands and facts, the DSL's deployed-document record, the stream records and the
#: replies (modules of dataclasses only, cheap to import).
MESSAGE_MODULES = (
    "replayflow.core.messages",
    "replayflow.core.schedule_messages",
    "replayflow.dsl.records",
    "replayflow.core.stream_records",
    "replayflow.core.replies",
)

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10  # 2 bytes magic + 8 bytes fingerprint
VERSION_PROPERTY = "replayflow.version"

# "StartWorkflow.v1.avsc" -> ("StartWorkflow", 1). Files without ".vN" must carry the
# version in the schema's "replayflow.version" property.
_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\.v(?P<version>\d+))?\.avsc$")

ToDict = Callable[[Any], dict[str, Any]]
FromDict = Callable[[dict[str, Any]], Any]


class CodecError(ReplayflowError):
    """Bytes that are not a replayflow record, or an object that cannot be written.

    ``reason`` says what is wrong in words fit for a dead-letter record.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fingerprint_bytes(schema: Any) -> bytes:
    """The 8 fingerprint bytes as they appear on the wire, for a schema dict or JSON."""
    # fastavro returns the CRC-64-AVRO value as the hex of its little-endian bytes (the
    # order the Avro spec puts on the wire), so the hex decodes straight to wire bytes.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


# ---------------------------------------------------------------------------------------
# dataclass <-> dict. Nested records (ErrorInfo, a schedule's spec) are dataclasses too;
# tuples are Avro arrays, enums are strings. How to convert each field is found from the
# type hints, once per class, so the per-message work is a dict copy at most.

Convert = Callable[[Any], Any]


def _field_converters(hint: Any) -> tuple[Convert, Convert] | None:
    """(to Avro, from Avro) for a field's type; None when the value passes as it is."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None):
            continue
        if dataclasses.is_dataclass(option):
            cls = typing.cast(type, option)
            return _to_dict(cls), _from_dict(cls)
        if isinstance(option, type) and issubclass(option, enum.Enum):
            return (lambda value: value.value), option
        if typing.get_origin(option) is tuple:
            items = typing.get_args(option)
            inner = _field_converters(items[0]) if items else None
            if inner is None:
                return list, tuple
            return _each(*inner)
    return None


def _each(to_item: Convert, from_item: Convert) -> tuple[Convert, Convert]:
    return (
        lambda value: [to_item(v) for v in value],
        lambda value: tuple(from_item(v) for v in value),
    )


def _converters(cls: type) -> list[tuple[str, Convert, Convert]]:
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if f.init:
            convert = _field_converters(hints[f.name])
            if convert is not None:
                found.append((f.name, *convert))
    return found


def _wire_fields(cls: type) -> list[str]:
    """The fields a record carries: those the constructor takes (init=False ones are
    worked out by the class)."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _to_dict(cls: type) -> ToDict:
    converters = _converters(cls)
    field_names = _wire_fields(cls)
    if (
        not converters
        and "__slots__" not in vars(cls)
        and len(field_names) == len(dataclasses.fields(cls))
    ):
        # A frozen dataclass keeps exactly its fields in __dict__, and fastavro only reads
        # from the dict: hand it over as is, no copy.
        return vars

    def to_dict(obj: Any) -> dict[str, Any]:
        d = {f: getattr(obj, f) for f in field_names}
        for name, convert, _ in converters:
            if d[name] is not None:
                d[name] = convert(d[name])
        return d

    return to_dict


def _from_dict(cls: type) -> FromDict:
    converters = _converters(cls)
    if not converters:
        return lambda d: cls(**d)

    def from_dict(d: dict[str, Any]) -> Any:
        for name, _, convert in converters:
            if d[name] is not None:
                d[name] = convert(d[name])
        return cls(**d)

    return from_dict


# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Schema:
    full_name: str  # e.g. "replayflow.commands.StartWorkflow"
    version: int
    raw: dict[str, Any]  # as in the file, docs and all
    parsed: Any  # fastavro's parsed form, the one to hand to reader and writer
    fingerprint: bytes


@dataclasses.dataclass(frozen=True)
class _Decoder:
    full_name: str
    writer: Any
    reader: Any  # None when the writer is the newest version: no resolution needed
    from_dict: FromDict | None  # None: the record maps to no dataclass
    compiled: Reader | None = None  # without resolution only (codec_compiled.py)


def _walk(folder: Traversable) -> Iterator[Traversable]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.name.endswith(".avsc"):
            yield entry


def _version(file_name: str, raw: dict[str, Any]) -> int:
    match = _FILE_NAME.match(file_name)
    in_name = int(match["version"]) if match and match["version"] else None
    in_file = raw.get(VERSION_PROPERTY)
    if in_name is not None and in_file is not None and in_name != in_file:
        raise CodecError(f"{file_name}: file name and {VERSION_PROPERTY} disagree")
    version = in_file if in_file is not None else in_name
    if not isinstance(version, int):
        raise CodecError(f"{file_name}: no version (name it X.vN.avsc)")
    return version


def package_schemas() -> Traversable:
    """The schemas/ folder as shipped in the package (replayflow/_schemas)."""
    return importlib.resources.files("replayflow").joinpath("_schemas")


def _full_name(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _parse(raw: dict[str, Any], version: int) -> _Schema:
    # Each file is self-contained (nested records are inlined), so each is parsed on its
    # own: a shared named-type table would reject ErrorInfo's second definition.
    return _Schema(_full_name(raw), version, raw, parse_schema(raw), fingerprint_bytes(raw))


class Codec:
    """A set of schemas: every version is a writer, the newest of each record is the reader.

    ``Codec.load()`` loads the schemas shipped in replayflow; the module-level functions
    use one such instance.
    """

    def __init__(self, schemas: Iterable[tuple[dict[str, Any], int]]) -> None:
        self._classes = {
            cls.__name__: cls
            for module in map(importlib.import_module, MESSAGE_MODULES)
            for cls in vars(module).values()
            if isinstance(cls, type)
            and dataclasses.is_dataclass(cls)
            and cls.__module__ == module.__name__
        }
        self._versions: dict[str, dict[int, _Schema]] = {}  # full name -> version -> schema
        self._short: dict[str, str] = {}  # "StartWorkflow" -> "replayflow.commands.StartWorkflow"
        self._extra_writers: list[_Schema] = []
        for raw, version in schemas:
            schema = _parse(raw, version)
            if version in self._versions.setdefault(schema.full_name, {}):
                raise CodecError(f"{schema.full_name} v{version} is defined twice")
            self._versions[schema.full_name][version] = schema
            short = schema.full_name.rsplit(".", 1)[-1]
            if self._short.setdefault(short, schema.full_name) != schema.full_name:
                raise CodecError(f"two records are named {short}: {self._short[short]}, ...")
        self._build()

    @classmethod
    def load(cls, *folders: Traversable) -> Codec:
        """Every .avsc under the folders, at any depth; the package's own schemas
        (``package_schemas()``) when no folder is given. Pass the package folder and
        another one to add versions that are not shipped."""
        loaded = []
        for folder in folders or (package_schemas(),):
            for entry in _walk(folder):
                raw = json.loads(entry.read_text(encoding="utf-8"))
                loaded.append((raw, _version(entry.name, raw)))
        return cls(loaded)

    def _build(self) -> None:
        # Precompute everything encode() and decode() look up: per dataclass the header
        # and writer, per fingerprint the writer, reader and dataclass. Built aside and
        # swapped in, so a thread encoding meanwhile never sees a half-built table.
        encoders: dict[type, tuple[bytes, Any, ToDict, Writer | None]] = {}
        decoders: dict[bytes, _Decoder] = {}
        readers: dict[str, tuple[_Schema, FromDict | None]] = {}
        for full_name, versions in self._versions.items():
            newest = versions[max(versions)]
            cls = self._classes.get(full_name.rsplit(".", 1)[-1])
            if cls is None:
                raise CodecError(f"{full_name} maps to no dataclass in {messages.__name__}")
            avro_fields = [f["name"] for f in newest.raw["fields"]]
            class_fields = _wire_fields(cls)
            if avro_fields != class_fields:
                raise CodecError(
                    f"{full_name} v{newest.version} has fields {avro_fields}, "
                    f"but {cls.__name__} has {class_fields}"
                )
            header = MAGIC + newest.fingerprint
            encoders[cls] = (header, newest.parsed, _to_dict(cls), compile_writer(newest.parsed))
            readers[full_name] = (newest, _from_dict(cls))
        writers = [s for v in self._versions.values() for s in v.values()]
        for writer in writers + self._extra_writers:
            reader, from_dict = readers.get(writer.full_name, (None, None))
            # Resolution costs time on every read: skip it when writer and reader are one.
            resolve_to = None
            if reader is not None and reader.fingerprint != writer.fingerprint:
                resolve_to = reader.parsed
            compiled = None
            if resolve_to is None and from_dict is not None:
                compiled = compile_reader(writer.parsed, HEADER_SIZE)
            decoders[writer.fingerprint] = _Decoder(
                writer.full_name, writer.parsed, resolve_to, from_dict, compiled
            )
        self._encoders, self._decoders = encoders, decoders

    def register_writer(self, schema: dict[str, Any] | str) -> bytes:
        """Accept records written with ``schema`` (e.g. an old or foreign version that is
        not in the package); they are read into the newest version of the same record
        name. Returns the schema's fingerprint bytes."""
        try:
            raw = json.loads(schema) if isinstance(schema, str) else schema
            parsed = _parse(raw, int(raw.get(VERSION_PROPERTY, 0)))
        except Exception as e:
            raise CodecError(f"not a valid Avro schema: {e}") from e
        if parsed.fingerprint not in self._decoders:
            self._extra_writers.append(parsed)
            self._build()
        return parsed.fingerprint

    # -----------------------------------------------------------------------------------

    def encode(self, obj: Any) -> bytes:
        """Single-object encoding of a message dataclass, with its newest schema."""
        try:
            header, schema, to_dict, compiled = self._encoders[type(obj)]
        except KeyError:
            raise CodecError(
                f"cannot encode {type(obj).__qualname__}: not a dataclass of {messages.__name__}"
            ) from None
        if compiled is not None:
            written = bytearray(header)
            try:
                compiled(written, to_dict(obj))
                return bytes(written)
            except Exception:  # fastavro writes it again: its bytes or its error
                pass
        out = BytesIO()
        out.write(header)
        try:
            schemaless_writer(out, schema, to_dict(obj))
        except Exception as e:  # TypeError, ValueError, OverflowError, ... from fastavro
            raise CodecError(f"cannot encode {type(obj).__name__}: {e}") from e
        return out.getvalue()

    def decode(self, data: bytes) -> Any:
        """The message dataclass a single-object encoded record holds."""
        if len(data) < HEADER_SIZE:
            raise CodecError(
                f"too short: {len(data)} bytes, a record has at least {HEADER_SIZE} "
                "(2 bytes magic C3 01, 8 bytes schema fingerprint)"
            )
        if data[0] != 0xC3 or data[1] != 0x01:
            raise CodecError(
                f"wrong magic {bytes(data[:2]).hex()}, expected c301 (Avro single-object encoding)"
            )
        fp = bytes(data[2:HEADER_SIZE])
        decoder = self._decoders.get(fp)
        if decoder is None:
            raise CodecError(
                f"unknown schema fingerprint {fp.hex()}: written with a schema "
                "this replayflow does not have"
            )
        if decoder.from_dict is None:
            raise CodecError(f"record {decoder.full_name} maps to no known dataclass")
        if decoder.compiled is not None:
            try:
                return decoder.from_dict(decoder.compiled(data))
            except Exception:  # fastavro reads it again: its record or its error
                pass
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(body, decoder.writer, decoder.reader)
        except SchemaResolutionError as e:
            raise CodecError(f"{decoder.full_name}: writer schema does not resolve: {e}") from e
        except EOFError as e:
            # fastavro reports a negative length (corrupt bytes) as an EOF too.
            what = "garbage body, negative length" if "Expected -" in str(e) else "truncated body"
            raise CodecError(f"{decoder.full_name}: {what}: {e or 'no more bytes'}") from e
        except Exception as e:  # bad union index, invalid UTF-8, ...
            if _runs_past_end(data, decoder):
                # fastavro reports a number cut short as an IndexError, not an EOF.
                raise CodecError(f"{decoder.full_name}: truncated body: {e}") from e
            raise CodecError(f"{decoder.full_name}: garbage body: {type(e).__name__}: {e}") from e
        if body.tell() != len(data):
            raise CodecError(
                f"{decoder.full_name}: {len(data) - body.tell()} trailing bytes after the record"
            )
        try:
            return decoder.from_dict(typing.cast(dict[str, Any], record))
        except (ValueError, TypeError) as e:  # ValidationError included: a bad cron, say
            raise CodecError(f"{decoder.full_name}: invalid record: {e}") from e

    # -----------------------------------------------------------------------------------

    def _schema(self, record_name: str, version: int | None) -> _Schema:
        versions = self._versions.get(self._short.get(record_name, record_name))
        if versions is None:
            raise CodecError(f"no record named {record_name}")
        if version is None:
            version = max(versions)
        if version not in versions:
            raise CodecError(f"{record_name} has no version {version}: {sorted(versions)}")
        return versions[version]

    def fingerprint_of(self, record_name: str, version: int | None = None) -> bytes:
        """The 8 fingerprint bytes of a record ("StartWorkflow" or its full name); the
        newest version unless one is given."""
        return self._schema(record_name, version).fingerprint

    def schema_for(self, record_name: str, version: int | None = None) -> dict[str, Any]:
        """The schema of a record as in its .avsc file (a copy); newest unless told."""
        return copy.deepcopy(self._schema(record_name, version).raw)

    def versions(self, record_name: str) -> list[int]:
        """The versions loaded for a record, oldest first."""
        self._schema(record_name, None)  # raises CodecError for an unknown name
        return sorted(self._versions[self._short.get(record_name, record_name)])


def _runs_past_end(data: bytes, decoder: _Decoder) -> bool:
    """Whether a body that failed to read reads once bytes are added after it: then it
    was cut short, not corrupt."""
    padded = BytesIO(data + bytes(16))
    padded.seek(HEADER_SIZE)
    try:
        schemaless_reader(padded, decoder.writer, decoder.reader)
    except Exception:
        return False
    return padded.tell() > len(data)


@functools.cache
def default_codec() -> Codec:
    """The codec of the schemas shipped in the package, loaded on first use."""
    return Codec.load()


def encode(obj: Any) -> bytes:
    return default_codec().encode(obj)


def decode(data: bytes) -> Any:
    return default_codec().decode(data)


def fingerprint_of(record_name: str, version: int | None = None) -> bytes:
    return default_codec().fingerprint_of(record_name, version)


def schema_for(record_name: str, version: int | None = None) -> dict[str, Any]:
    return default_codec().schema_for(record_name, version)
