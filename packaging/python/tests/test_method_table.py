"""The shim's method table says what protocol/openrpc.json says, and the
shim sends what its table says. Needs no cluster and no daemon.

For every method: the name; each param's name, requiredness, type and
default; the result schema; ``x-mutating`` and ``x-keys``. Then each
CephFSVolumeClient method is called against a recording client: it must
send exactly the table's params, and the table's defaults when its own
optional arguments are left out.
"""

import json
import os

import pytest

from cephfs_volumed import CephFSVolumeClient, VolumePath
from cephfs_volumed.methods import METHODS, has_default, param_schema

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
with open(os.path.join(REPO_ROOT, "protocol", "openrpc.json")) as f:
    DOCUMENT = json.load(f)
DOCUMENTED = {m["name"]: m for m in DOCUMENT["methods"]}


def bare(schema, dropping=("description",)):
    """A schema without its prose (and, for a param, its default)."""
    if isinstance(schema, dict):
        return {k: bare(v) for k, v in schema.items() if k not in dropping}
    if isinstance(schema, list):
        return [bare(v) for v in schema]
    return schema


def test_table_lists_exactly_the_documented_methods():
    assert list(METHODS) == [m["name"] for m in DOCUMENT["methods"]]


@pytest.mark.parametrize("name", list(METHODS))
def test_method_matches_the_document(name):
    m, doc = METHODS[name], DOCUMENTED[name]
    assert [p.name for p in m.params] == [p["name"] for p in doc["params"]], "param names"
    for p, d in zip(m.params, doc["params"]):
        schema = d["schema"]
        assert p.required == d.get("required", False), p.name
        assert param_schema(p.type) == bare(schema, ("description", "default")), p.name
        assert has_default(p) == ("default" in schema), p.name
        if has_default(p):
            # 30 and 30.0 are the same JSON number; True is not 1.
            assert p.default == schema["default"] and type(p.default) is type(schema["default"]), p.name
    assert m.result == bare(doc["result"]["schema"]), "result schema"
    assert m.mutating is doc["x-mutating"], "x-mutating"
    assert m.keys == doc["x-keys"], "x-keys"


class Recorder:
    """Stands in for the connection: records each request, answers a result
    of the right shape."""

    RESULTS = {
        "ping": "pong", "create_volume": {"mount_path": "/volumes/g/v"}, "authorize": {"auth_key": None},
        "get_authorized_ids": None, "get_used_bytes": 0, "get_object": "", "get_mon_addrs": [],
        "get_object_and_version": {"data": "", "version": 1},
        "server_info": {"version": "x", "protocol_version": "1.0.0", "fsid": "f", "uptime_seconds": 0,
                        "connections": 1, "in_flight": 1, "instance": "i"},
    }

    def __init__(self):
        self.sent = []

    def request(self, method, params=None, timeout=None):
        self.sent.append((method, dict(params or {})))
        return self.RESULTS.get(method)


def sample(param):
    t = param.type
    if t in ("VolumePath", ("nullable", "VolumePath")):
        return VolumePath("g", "v-" + param.name)
    if t == "Base64":
        return b"hi"
    if t in ("Identifier", "GroupId", "string"):
        return "x-" + param.name
    if t[0] == "nullable" and t[1][0] == "integer":
        return 7
    raise AssertionError("no sample for required {0}".format(param.name))


def wire(value):
    if isinstance(value, VolumePath):
        return {"group_id": value.group_id, "volume_id": value.volume_id}
    if isinstance(value, bytes):
        return "aGk="
    return value


# The shim's own names for the methods it serves; ping is sent by connect().
SHIM_METHOD = {name: name for name in METHODS if name != "ping"}


@pytest.mark.parametrize("name", list(SHIM_METHOD))
def test_shim_sends_the_tables_params_and_defaults(name):
    m = METHODS[name]
    vc = CephFSVolumeClient()
    vc._client = rec = Recorder()
    required = {p.name: sample(p) for p in m.params if p.required}
    getattr(vc, SHIM_METHOD[name])(**required)
    assert len(rec.sent) == 1
    method, params = rec.sent[0]
    assert method == name
    assert sorted(params) == sorted(p.name for p in m.params), "params sent"
    for p in m.params:
        expected = wire(required[p.name]) if p.required else p.default
        assert params[p.name] == expected, p.name
