"""Real protobuf message classes from short field lists, without protoc.

TFX pipelines build ``tfx.proto`` messages and serialize them (``MessageToJson``, text format), so
the compat layer provides genuine protobuf messages. protoc (grpcio-tools) is not a dependency;
:func:`build_file` turns a compact description — ``"repeated Split splits = 1"`` per field,
``"oneof range: StaticRange static_range = 1"`` for oneof members, dotted names for nested
messages — into a FileDescriptorProto in a private descriptor pool, so the full names
(``tfx.components.trainer.TrainArgs``) never clash with another library's registrations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "string": FDP.TYPE_STRING, "bytes": FDP.TYPE_BYTES, "bool": FDP.TYPE_BOOL,
    "int32": FDP.TYPE_INT32, "uint32": FDP.TYPE_UINT32, "int64": FDP.TYPE_INT64,
    "uint64": FDP.TYPE_UINT64, "float": FDP.TYPE_FLOAT, "double": FDP.TYPE_DOUBLE,
}  # fmt: skip
ANY = "google.protobuf.Any"

POOL = descriptor_pool.DescriptorPool()
POOL.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def build_file(
    package: str,
    file_name: str,
    messages: Mapping[str, Sequence[str]],
    enums: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, Any]:  # classes made at run time: their fields are unknown to mypy
    """Message and enum classes of one proto3 file, by (dotted) name; enums as EnumTypeWrappers."""
    enums = dict(enums or {})
    fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    protos: dict[str, descriptor_pb2.DescriptorProto] = {}
    for name in sorted(messages, key=lambda n: n.count(".")):
        parent, _, short = name.rpartition(".")
        container = protos[parent].nested_type if parent else fdp.message_type
        protos[name] = container.add(name=short)
    for name, values in enums.items():
        parent, _, short = name.rpartition(".")
        container = protos[parent].enum_type if parent else fdp.enum_type
        enum = container.add(name=short)
        for value_name, number in values.items():
            enum.value.add(name=value_name, number=number)
    for name, fields in messages.items():
        _add_fields(fdp, package, name, protos[name], fields, set(messages), set(enums))
    if any(f.type_name == "." + ANY for m in protos.values() for f in m.field):
        fdp.dependency.append(any_pb2.DESCRIPTOR.name)
    POOL.Add(fdp)
    classes: dict[str, type] = {}
    for name in messages:
        classes[name] = message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{package}.{name}"))
    for name in enums:
        from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

        classes[name] = EnumTypeWrapper(POOL.FindEnumTypeByName(f"{package}.{name}"))
    return classes


def _add_fields(fdp, package, scope, proto, fields, message_names, enum_names) -> None:  # noqa: ANN001
    oneofs: dict[str, int] = {}
    for line in fields:
        oneof = None
        if line.startswith("oneof "):
            oneof, line = (part.strip() for part in line[len("oneof ") :].split(":", 1))
        words = line.replace("=", " ").split()
        label = FDP.LABEL_OPTIONAL
        if words[0] == "repeated":
            label, words = FDP.LABEL_REPEATED, words[1:]
        type_name, field_name, number = words[0], words[1], int(words[2])
        field = proto.field.add(name=field_name, number=number, label=label, json_name=_json_name(field_name))
        if type_name in SCALARS:
            field.type = SCALARS[type_name]
        elif type_name == ANY:
            field.type, field.type_name = FDP.TYPE_MESSAGE, "." + ANY
        else:
            resolved = _resolve(scope, type_name, message_names | enum_names)
            field.type = FDP.TYPE_ENUM if resolved in enum_names else FDP.TYPE_MESSAGE
            field.type_name = f".{package}.{resolved}"
        if oneof is not None:
            if oneof not in oneofs:
                oneofs[oneof] = len(proto.oneof_decl)
                proto.oneof_decl.add(name=oneof)
            field.oneof_index = oneofs[oneof]


def _resolve(scope: str, type_name: str, known: set[str]) -> str:
    """proto's scoping: the innermost enclosing message's nested type first, then outwards."""
    parts = scope.split(".")
    for n in range(len(parts), -1, -1):
        candidate = ".".join([*parts[:n], type_name])
        if candidate in known:
            return candidate
    raise ValueError(f"{scope}: unknown type {type_name}")
