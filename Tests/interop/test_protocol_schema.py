"""Params and results of real exchanges validate against protocol/openrpc.json.

Every call below is made against the running daemon; its params are checked
against the method's param schemas and its result against the result schema,
so the document and the server cannot drift apart silently.
"""
import base64
import json
import os

import jsonschema
import pytest

from conftest import vp

DOC_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "protocol", "openrpc.json")


@pytest.fixture(scope="module")
def doc():
    with open(DOC_PATH) as f:
        return json.load(f)


class Checked:
    """Calls through `rpc`, validating both directions against the document."""

    def __init__(self, rpc, doc):
        self.rpc = rpc
        self.doc = doc
        self.methods = {m["name"]: m for m in doc["methods"]}
        self.resolver = jsonschema.RefResolver.from_schema(doc)
        self.seen = set()

    def _validate(self, instance, schema, what):
        jsonschema.Draft202012Validator(schema, resolver=self.resolver).validate(instance)

    def __call__(self, method, **params):
        m = self.methods[method]
        for p in m.get("params", []):
            if p["name"] in params:
                self._validate(params[p["name"]], p["schema"], "%s.%s" % (method, p["name"]))
            elif p.get("required"):
                raise AssertionError("%s: required param %s not given" % (method, p["name"]))
        result = self.rpc.call(method, **params)
        self._validate(result, m["result"]["schema"], method + " result")
        self.seen.add(method)
        return result


def test_results_and_params_match_their_schemas(rpc, doc, unique):
    call = Checked(rpc, doc)
    group = unique("schema-g")
    vol = vp(group, unique("schema-v"))
    auth = unique("schema-id")
    assert call("ping") == "pong"
    info = call("server_info")
    assert info["connections"] >= 1
    assert call("get_mon_addrs")
    call("create_group", group_id=group, mode=0o750)
    assert call("create_volume", volume_path=vol, size=1 << 20)["mount_path"].endswith(vol["volume_id"])
    call("set_max_bytes", volume_path=vol, max_bytes=2 << 20)
    call("set_max_bytes", volume_path=vol, max_bytes=None)
    assert isinstance(call("get_used_bytes", volume_path=vol), int)
    assert call("authorize", volume_path=vol, auth_id=auth, tenant_id="t1")["auth_key"]
    assert call("authorize", volume_path=vol, auth_id=auth, tenant_id="t1", readonly=True)["auth_key"]
    assert call("get_authorized_ids", volume_path=vol) == [[auth, "r"]]
    call("evict", auth_id=auth, volume_path=vol, timeout=10)
    call("create_snapshot_volume", volume_path=vol, snapshot_name="s1")
    other = vp(group, unique("schema-w"))
    call("create_volume", volume_path=other, namespace_isolated=False)
    call("clone_volume_to_existing", dest_volume_path=other, src_volume_path=vol, src_snapshot_name="s1")
    call("destroy_snapshot_volume", volume_path=vol, snapshot_name="s1")
    call("create_snapshot_group", group_id=group, snapshot_name="gs")
    call("destroy_snapshot_group", group_id=group, snapshot_name="gs")
    obj = unique("schema-obj")
    data = base64.b64encode(b"\x00\x01payload").decode()
    call("put_object", pool_name="cephfs_data", object_name=obj, data=data)
    assert base64.b64decode(call("get_object", pool_name="cephfs_data", object_name=obj)) == b"\x00\x01payload"
    got = call("get_object_and_version", pool_name="cephfs_data", object_name=obj)
    call("put_object_versioned", pool_name="cephfs_data", object_name=obj, data=data, version=got["version"])
    call("delete_object", pool_name="cephfs_data", object_name=obj)
    call("deauthorize", volume_path=vol, auth_id=auth)
    assert call("get_authorized_ids", volume_path=vol) is None
    call("recover")
    for v in (vol, other):
        call("delete_volume", volume_path=v)
        call("purge_volume", volume_path=v)
    call("destroy_group", group_id=group)
    assert call.seen == set(call.methods), "not exercised: %s" % sorted(set(call.methods) - call.seen)


def test_error_data_matches_its_schema(rpc, doc, unique):
    from conftest import RpcError

    resolver = jsonschema.RefResolver.from_schema(doc)
    schema = doc["components"]["schemas"]["EngineErrorData"]
    with pytest.raises(RpcError) as e:
        rpc.call("get_object", pool_name="cephfs_data", object_name=unique("missing"))
    assert e.value.code == -32000
    jsonschema.Draft202012Validator(schema, resolver=resolver).validate(e.value.data)
    assert e.value.type == "ObjectNotFound"
