"""The wire contract's method table, as the shim knows it.

One entry per method of ``protocol/openrpc.json``: its params (name, type,
requiredness, default), its result schema, whether it mutates, and the
serialisation keys the daemon takes for it (``x-keys``). The shim's
:class:`~cephfs_volumed.CephFSVolumeClient` sends exactly these params
(``tests/test_method_table.py`` checks both against the contract).
"""

from collections import namedtuple

__all__ = ["METHODS", "Param", "Method", "param_schema"]

Param = namedtuple("Param", "name type required default")
Method = namedtuple("Method", "name params result mutating keys")

_NO_DEFAULT = object()

INT64_MAX = 2 ** 63 - 1


def _ref(name):
    return {"$ref": "#/components/schemas/" + name}


def param_schema(t):
    """The JSON Schema of a param type (without description or default)."""
    if isinstance(t, str):
        if t in ("Identifier", "GroupId", "VolumePath", "Base64"):
            return _ref(t)
        if t == "string":
            return {"type": "string", "minLength": 1}
        if t == "boolean":
            return {"type": "boolean"}
    kind = t[0]
    if kind in ("integer", "number"):
        return {"type": kind, "minimum": t[1], "maximum": t[2]}
    if kind == "nullable":
        inner = t[1]
        if not isinstance(inner, str) and inner[0] == "integer":
            return {"type": ["integer", "null"], "minimum": inner[1], "maximum": inner[2]}
        return {"anyOf": [param_schema(inner), {"type": "null"}]}
    raise ValueError("unknown param type {0!r}".format(t))


def _p(name, type_, required=False, default=_NO_DEFAULT):
    return Param(name, type_, required, default)


VOLUME_PATH = _p("volume_path", "VolumePath", required=True)
GROUP_ID = _p("group_id", "GroupId", required=True)
AUTH_ID = _p("auth_id", "Identifier", required=True)
SNAPSHOT_NAME = _p("snapshot_name", "Identifier", required=True)
MODE = _p("mode", ("integer", 0, 0o7777), default=0o755)
DATA_ISOLATED = _p("data_isolated", "boolean", default=False)
POOL_NAME = _p("pool_name", "string", required=True)
OBJECT_NAME = _p("object_name", "string", required=True)
DATA = _p("data", "Base64", required=True)
BYTES = ("nullable", ("integer", 0, INT64_MAX))

NULL = {"type": "null"}
VOLUME_KEYS = ["volume:{group_id}/{volume_id}"]
VOLUME_ID_KEYS = VOLUME_KEYS + ["volume_id:{volume_id}"]
POOL_KEYS = ["pool:{pool_name}"]


def _obj(props, required):
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


_TABLE = [
    Method("ping", [], {"const": "pong", "type": "string"}, False, []),
    Method("create_group", [GROUP_ID, MODE], NULL, True, ["group:{group_id}"]),
    Method("destroy_group", [GROUP_ID], NULL, True, ["group:{group_id}"]),
    Method("create_volume",
           [VOLUME_PATH, _p("size", BYTES, default=None), DATA_ISOLATED,
            _p("namespace_isolated", "boolean", default=True), MODE],
           _obj({"mount_path": {"type": "string", "minLength": 1}}, ["mount_path"]), True, VOLUME_ID_KEYS),
    Method("delete_volume", [VOLUME_PATH, DATA_ISOLATED], NULL, True, VOLUME_ID_KEYS),
    Method("purge_volume", [VOLUME_PATH, DATA_ISOLATED], NULL, True, VOLUME_ID_KEYS),
    Method("authorize",
           [VOLUME_PATH, AUTH_ID, _p("readonly", "boolean", default=False),
            _p("tenant_id", ("nullable", "Identifier"), default=None),
            _p("allow_existing_id", "boolean", default=False)],
           _obj({"auth_key": {"type": ["string", "null"]}}, ["auth_key"]), True,
           ["auth:{auth_id}"] + VOLUME_KEYS),
    Method("deauthorize", [VOLUME_PATH, AUTH_ID], NULL, True, ["auth:{auth_id}"] + VOLUME_KEYS),
    Method("get_authorized_ids", [VOLUME_PATH],
           {"anyOf": [{"type": "array", "items": _ref("AuthorizedId")}, NULL]}, False, []),
    Method("evict",
           [AUTH_ID, _p("volume_path", ("nullable", "VolumePath"), default=None),
            _p("timeout", ("number", 0, 86400), default=30)],
           NULL, True, ["auth:{auth_id}"]),
    Method("get_used_bytes", [VOLUME_PATH], {"type": "integer", "minimum": 0}, False, []),
    Method("set_max_bytes", [VOLUME_PATH, _p("max_bytes", BYTES, required=True)], NULL, True, VOLUME_KEYS),
    Method("create_snapshot_volume", [VOLUME_PATH, SNAPSHOT_NAME, MODE], NULL, True, VOLUME_KEYS),
    Method("destroy_snapshot_volume", [VOLUME_PATH, SNAPSHOT_NAME], NULL, True, VOLUME_KEYS),
    Method("create_snapshot_group", [GROUP_ID, SNAPSHOT_NAME, MODE], NULL, True, ["group:{group_id}"]),
    Method("destroy_snapshot_group", [GROUP_ID, SNAPSHOT_NAME], NULL, True, ["group:{group_id}"]),
    Method("clone_volume_to_existing",
           [_p("dest_volume_path", "VolumePath", required=True), _p("src_volume_path", "VolumePath", required=True),
            _p("src_snapshot_name", "Identifier", required=True)],
           NULL, True,
           ["volume:{dest_volume_path.group_id}/{dest_volume_path.volume_id}",
            "volume:{src_volume_path.group_id}/{src_volume_path.volume_id}"]),
    Method("put_object", [POOL_NAME, OBJECT_NAME, DATA], NULL, True, POOL_KEYS),
    Method("get_object", [POOL_NAME, OBJECT_NAME], _ref("Base64"), False, []),
    Method("delete_object", [POOL_NAME, OBJECT_NAME], NULL, True, POOL_KEYS),
    Method("put_object_versioned", [POOL_NAME, OBJECT_NAME, DATA, _p("version", BYTES, default=None)],
           NULL, True, POOL_KEYS),
    Method("get_object_and_version", [POOL_NAME, OBJECT_NAME],
           _obj({"data": _ref("Base64"), "version": {"type": "integer", "minimum": 0}}, ["data", "version"]),
           False, []),
    Method("get_mon_addrs", [], {"type": "array", "items": {"type": "string", "minLength": 1}}, False, []),
    Method("recover", [], NULL, True, []),
    Method("server_info", [],
           _obj({"version": {"type": "string"}, "protocol_version": {"type": "string"}, "fsid": {"type": "string"},
                 "uptime_seconds": {"type": "number", "minimum": 0},
                 "connections": {"type": "integer", "minimum": 0},
                 "in_flight": {"type": "integer", "minimum": 0}, "instance": {"type": "string"}},
                ["version", "protocol_version", "fsid", "uptime_seconds", "connections", "in_flight", "instance"]),
           False, []),
]

#: name -> :class:`Method`, in the order of protocol/openrpc.json.
METHODS = {m.name: m for m in _TABLE}


def has_default(param):
    return param.default is not _NO_DEFAULT
