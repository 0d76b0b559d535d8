"""Real protobuf, gRPC and MessagePack payloads for the content view tests, made with the `protobuf` and
`msgpack` packages (message classes built at run time from descriptors, as protoc's output would be)."""
from __future__ import annotations

import gzip
import struct
import zlib
from typing import Any

import msgpack
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED


def _classes() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(name="shop.proto", package="shop", syntax="proto3")
    item = fdp.message_type.add(name="Item")
    item.field.add(name="id", number=1, type=F.TYPE_INT64, label=OPT)
    item.field.add(name="label", number=2, type=F.TYPE_STRING, label=OPT)
    order = fdp.message_type.add(name="Order")
    for name, number, kind, label, type_name in (
            ("customer", 1, F.TYPE_STRING, OPT, ""), ("quantity", 2, F.TYPE_INT32, OPT, ""),
            ("item", 3, F.TYPE_MESSAGE, OPT, ".shop.Item"), ("codes", 4, F.TYPE_INT32, REP, ""),
            ("digest", 5, F.TYPE_BYTES, OPT, ""), ("price", 6, F.TYPE_DOUBLE, OPT, ""),
            ("slots", 7, F.TYPE_FIXED32, REP, ""), ("delta", 8, F.TYPE_SINT32, OPT, ""),
            ("weight", 9, F.TYPE_FLOAT, OPT, ""), ("balance", 10, F.TYPE_INT64, OPT, ""),
            ("tags", 11, F.TYPE_STRING, REP, ""), ("extras", 12, F.TYPE_MESSAGE, REP, ".shop.Item")):
        extra = {"type_name": type_name} if type_name else {}
        order.field.add(name=name, number=number, type=kind, label=label, **extra)
    node = fdp.message_type.add(name="Node")  # recursive: for nesting limits
    node.field.add(name="child", number=1, type=F.TYPE_MESSAGE, label=OPT, type_name=".shop.Node")
    node.field.add(name="depth", number=2, type=F.TYPE_INT32, label=OPT)

    legacy = descriptor_pb2.FileDescriptorProto(name="legacy.proto", package="legacy", syntax="proto2")
    msg = legacy.message_type.add(name="Legacy")
    group = msg.nested_type.add(name="Entry")
    group.field.add(name="key", number=11, type=F.TYPE_INT32, label=OPT)
    msg.field.add(name="entry", number=10, type=F.TYPE_GROUP, type_name=".legacy.Legacy.Entry", label=OPT)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    pool.Add(legacy)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
            for name in ("shop.Item", "shop.Order", "shop.Node", "legacy.Legacy")}


CLASSES = _classes()
Item, Order, Node, Legacy = (CLASSES[n] for n in ("shop.Item", "shop.Order", "shop.Node", "legacy.Legacy"))


def order(**kw: Any) -> Any:
    o = Order(customer="Ada Lovelace", quantity=150, codes=[1, 150, 3, 270], digest=bytes(range(250, 256)) + b"\x00",
              price=2.5, slots=[7, 8], delta=-3, weight=1.5, balance=-1, tags=["fast", "fragile"], **kw)
    o.item.id = 42
    o.item.label = "widget"
    o.extras.add(id=1, label="gift wrap")
    return o


def order_bytes() -> bytes:
    return order().SerializeToString()


def nested(depth: int) -> bytes:
    n = Node(depth=depth)
    for d in range(depth - 1, 0, -1):
        n = Node(child=n, depth=d)
    return n.SerializeToString()


def grpc_frame(message: bytes, compress: str | None = None, trailers: bool = False) -> bytes:
    """One gRPC length-prefixed message (flag, big-endian length, payload)."""
    flag = 0x80 if trailers else 0
    if compress == "gzip":
        message, flag = gzip.compress(message), flag | 1
    elif compress == "deflate":
        message, flag = zlib.compress(message), flag | 1
    return struct.pack(">BI", flag, len(message)) + message


def msgpack_doc() -> dict[Any, Any]:
    return {"user": "ada", "id": 7, "ratio": 0.25, "tags": ["a", "b"], "blob": b"\x00\x01\xfe",
            "when": msgpack.Timestamp(1700000000, 0), "ext": msgpack.ExtType(5, b"xy"), 3: None, "ok": True}


def msgpack_bytes() -> bytes:
    return msgpack.packb(msgpack_doc(), use_bin_type=True)
