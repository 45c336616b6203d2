"""The shim's API matches the Python library's.

The seed ``ceph_volume_client.py`` (API v2) is parsed with ``ast`` at test
time; Debian's v6 module is checked the same way when it is installed. For
every public method of their ``CephFSVolumeClient`` the shim has the method,
and every parameter of the library is at the same position, with the same
name and the same default (the shim may add parameters after them, with
defaults). The exception classes and VolumePath exist with the same names.
A built-in copy of the seed's signatures is used when the file is absent.
"""

import ast
import inspect
import os
import warnings

import pytest

import cephfs_volumed

# <repo>/packaging/python/tests -> <repo>
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

SEED_PATH = os.path.join(os.path.dirname(REPO_ROOT), "shared", "reference", "ceph_volume_client.py")
V6_PATH = "/usr/lib/python3/dist-packages/ceph_volume_client.py"

_REQ = inspect.Parameter.empty

# The seed's (v2) public methods, for when the file is not there:
# name -> [(param, default or _REQ), ...] without self.
FALLBACK_SEED_METHODS = {
    "__init__": [("auth_id", _REQ), ("conf_path", _REQ), ("cluster_name", _REQ),
                 ("volume_prefix", None), ("pool_ns_prefix", None)],
    "recover": [],
    "evict": [("auth_id", _REQ), ("timeout", 30), ("volume_path", None)],
    "connect": [("premount_evict", None)],
    "get_mon_addrs": [],
    "disconnect": [],
    "create_group": [("group_id", _REQ)],
    "destroy_group": [("group_id", _REQ)],
    "create_volume": [("volume_path", _REQ), ("size", None), ("data_isolated", False)],
    "delete_volume": [("volume_path", _REQ), ("data_isolated", False)],
    "purge_volume": [("volume_path", _REQ), ("data_isolated", False)],
    "authorize": [("volume_path", _REQ), ("auth_id", _REQ), ("readonly", False), ("tenant_id", None)],
    "deauthorize": [("volume_path", _REQ), ("auth_id", _REQ)],
    "get_authorized_ids": [("volume_path", _REQ)],
    "get_used_bytes": [("volume_path", _REQ)],
    "set_max_bytes": [("volume_path", _REQ), ("max_bytes", _REQ)],
    "create_snapshot_volume": [("volume_path", _REQ), ("snapshot_name", _REQ)],
    "destroy_snapshot_volume": [("volume_path", _REQ), ("snapshot_name", _REQ)],
    "create_snapshot_group": [("group_id", _REQ), ("snapshot_name", _REQ)],
    "destroy_snapshot_group": [("group_id", _REQ), ("snapshot_name", _REQ)],
    "clone_volume_to_existing": [("dest_volume_path", _REQ), ("src_volume_path", _REQ),
                                 ("src_snapshot_name", _REQ)],
    "put_object": [("pool_name", _REQ), ("object_name", _REQ), ("data", _REQ)],
    "get_object": [("pool_name", _REQ), ("object_name", _REQ)],
    "delete_object": [("pool_name", _REQ), ("object_name", _REQ)],
}
FALLBACK_SEED_EXCEPTIONS = ["RadosError", "ClusterTimeout", "ClusterError", "EvictionError",
                            "CephFSVolumeClientError"]

# v6 turned the seed's required constructor arguments into optional ones
# (``rados=`` can replace them); the shim follows v6.
V6_RELAXED = {("__init__", "auth_id"), ("__init__", "conf_path"), ("__init__", "cluster_name")}

# Methods the shim and v6 have beyond the seed, that the test must find.
V6_EXTRA = ["get_mds_map", "put_object_versioned", "get_object_and_version",
            "__enter__", "__exit__", "__del__"]


def _literal(node):
    return ast.literal_eval(node)


def parse_library(path):
    """(methods, exception class names, VolumePath present) of a
    ceph_volume_client source file."""
    with open(path) as f:
        source = f.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own invalid escapes
        tree = ast.parse(source, path)
    methods = None
    exceptions = []
    has_volume_path = False
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        if "Exception" in bases:
            exceptions.append(node.name)
        if node.name == "VolumePath":
            has_volume_path = True
        if node.name == "CephFSVolumeClient":
            methods = {}
            for item in node.body:
                if not isinstance(item, ast.FunctionDef):
                    continue
                if item.name.startswith("_") and item.name != "__init__":
                    continue
                args = item.args.args[1:]  # without self
                defaults = item.args.defaults
                first_default = len(args) - len(defaults)
                params = []
                for i, a in enumerate(args):
                    params.append((a.arg, _literal(defaults[i - first_default]) if i >= first_default else _REQ))
                methods[item.name] = params
    assert methods, "no CephFSVolumeClient class in {}".format(path)
    return methods, exceptions, has_volume_path


def _sources():
    out = []
    if os.path.exists(SEED_PATH):
        out.append(("seed", SEED_PATH))
    else:
        out.append(("seed-fallback", None))
    if os.path.exists(V6_PATH):
        out.append(("debian-v6", V6_PATH))
    return out


@pytest.fixture(params=_sources(), ids=lambda s: s[0])
def library(request):
    name, path = request.param
    if path is None:
        return name, FALLBACK_SEED_METHODS, FALLBACK_SEED_EXCEPTIONS, True
    methods, exceptions, has_vp = parse_library(path)
    return name, methods, exceptions, has_vp


def test_fallback_list_matches_the_seed():
    """Keeps the built-in copy honest while the seed file is around."""
    if not os.path.exists(SEED_PATH):
        pytest.skip("{} is absent: the built-in signature list is used".format(SEED_PATH))
    methods, exceptions, has_vp = parse_library(SEED_PATH)
    assert methods == FALLBACK_SEED_METHODS
    assert exceptions == FALLBACK_SEED_EXCEPTIONS
    assert has_vp


def test_every_library_method_has_a_compatible_signature(library):
    name, methods, _, _ = library
    shim = cephfs_volumed.CephFSVolumeClient
    problems = []
    for meth, lib_params in sorted(methods.items()):
        fn = getattr(shim, meth, None)
        if fn is None or not callable(fn):
            problems.append("missing method {}".format(meth))
            continue
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())[1:]  # without self
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for i, (pname, pdefault) in enumerate(lib_params):
            if i >= len(positional):
                problems.append("{}: parameter {} #{} missing".format(meth, pname, i))
                continue
            p = positional[i]
            if p.name != pname:
                problems.append("{}: parameter #{} is {}, library has {}".format(meth, i, p.name, pname))
                continue
            if pdefault is _REQ:
                if p.default is not _REQ and (meth, pname) not in V6_RELAXED:
                    problems.append("{}: {} has a default ({!r}), library requires it".format(
                        meth, pname, p.default))
            elif p.default is _REQ or p.default != pdefault or type(p.default) is not type(pdefault):
                problems.append("{}: {} default is {!r}, library's is {!r}".format(
                    meth, pname, p.default, pdefault))
        # Anything the shim adds must be optional, so library-style calls work.
        for p in params[len(lib_params):]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.default is _REQ:
                problems.append("{}: extra parameter {} is required".format(meth, p.name))
    assert not problems, "{}: {}".format(name, "; ".join(problems))


def test_exceptions_and_volume_path_exist(library):
    name, _, exceptions, has_vp = library
    for exc in exceptions:
        cls = getattr(cephfs_volumed, exc, None)
        assert cls is not None, "{}: exception {} missing".format(name, exc)
        assert issubclass(cls, Exception)
    if has_vp:
        assert inspect.isclass(cephfs_volumed.VolumePath)


def test_v6_additions_and_version():
    shim = cephfs_volumed.CephFSVolumeClient
    assert shim.version == 6
    for meth in V6_EXTRA:
        assert callable(getattr(shim, meth, None)), meth
    sig = inspect.signature(shim.__init__)
    assert list(sig.parameters)[:8] == ["self", "auth_id", "conf_path", "cluster_name", "volume_prefix",
                                        "pool_ns_prefix", "rados", "fs_name"]
    assert sig.parameters["socket_path"].default is None
    assert sig.parameters["socket_path"].kind == inspect.Parameter.KEYWORD_ONLY
    for meth, mode_pos in [("create_group", 1), ("create_volume", 4), ("create_snapshot_volume", 2),
                           ("create_snapshot_group", 2)]:
        ps = list(inspect.signature(getattr(shim, meth)).parameters.values())[1:]
        assert ps[mode_pos].name == "mode" and ps[mode_pos].default == 0o755, meth
    ps = list(inspect.signature(shim.authorize).parameters)[1:]
    assert ps == ["volume_path", "auth_id", "readonly", "tenant_id", "allow_existing_id"]
    ps = list(inspect.signature(shim.put_object_versioned).parameters.items())[1:]
    assert [(n, p.default) for n, p in ps] == [("pool_name", _REQ), ("object_name", _REQ), ("data", _REQ),
                                              ("version", None)]


def test_seed_exception_names_map_to_the_wire_types():
    from cephfs_volumed.exceptions import error_from_reply
    cases = {
        "VolumeClientError": cephfs_volumed.CephFSVolumeClientError,
        "ObjectNotFound": cephfs_volumed.ObjectNotFound,
        "ClusterError": cephfs_volumed.ClusterError,
        "ClusterTimeout": cephfs_volumed.ClusterTimeout,
        "EvictionError": cephfs_volumed.EvictionError,
        "Internal": cephfs_volumed.CephFSVolumeClientError,
        "SomethingNew": cephfs_volumed.CephFSVolumeClientError,
    }
    for typ, cls in cases.items():
        e = error_from_reply({"code": -32000, "message": "m " + typ,
                              "data": {"type": typ, "errno": 5, "errno_name": "EIO"}})
        assert type(e) is cls or (typ in ("Internal", "SomethingNew") and isinstance(e, cls)), typ
        assert e.errno == 5 and e.errno_name == "EIO" and e.code == -32000
        assert str(e) == "m " + typ
    e = error_from_reply({"code": -32000, "message": "no errno",
                          "data": {"type": "EvictionError", "errno": None, "errno_name": None}})
    assert e.errno is None and e.errno_name is None
    e = error_from_reply({"code": -32602, "message": "invalid group_id: x"})
    assert isinstance(e, cephfs_volumed.InvalidParams)
    assert isinstance(e, ValueError) and isinstance(e, cephfs_volumed.RpcError)
    assert (e.code, e.message, e.data) == (-32602, "invalid group_id: x", None)
    assert type(error_from_reply({"code": -32003, "message": "bye"})) is cephfs_volumed.ShuttingDown
    assert type(error_from_reply({"code": -32601, "message": "?"})) is cephfs_volumed.MethodNotFound
    assert type(error_from_reply({"code": -31999, "message": "?"})) is cephfs_volumed.RpcError


def test_cluster_error_keeps_the_seed_constructor_and_str():
    e = cephfs_volumed.ClusterError("Sending evict to mds.4100", -110, "timed out")
    assert str(e) == 'Error -110 ("timed out") while Sending evict to mds.4100'
    assert (e._action, e._result_code, e._result_str) == ("Sending evict to mds.4100", -110, "timed out")
    from cephfs_volumed.exceptions import error_from_reply
    w = error_from_reply({"code": -32000, "message": "osd pool create: Operation not permitted (EPERM)",
                          "data": {"type": "ClusterError", "errno": 1, "errno_name": "EPERM"}})
    assert isinstance(w, cephfs_volumed.ClusterError)
    assert str(w) == "osd pool create: Operation not permitted (EPERM)"
    assert w._result_code == -1 and w._result_str == "EPERM" and w.errno == 1


def test_call_timeout_is_a_timeout_not_a_cluster_timeout():
    import socket
    assert issubclass(cephfs_volumed.CallTimeout, TimeoutError)
    assert issubclass(cephfs_volumed.CallTimeout, socket.timeout)
    assert not issubclass(cephfs_volumed.CallTimeout, cephfs_volumed.ClusterTimeout)
    assert issubclass(cephfs_volumed.ConnectionLost, ConnectionError)
    assert issubclass(cephfs_volumed.DaemonUnavailable, ConnectionError)


def test_volume_path_behaves_like_the_seeds():
    vp = cephfs_volumed.VolumePath("grp", "vol")
    assert str(vp) == "grp/vol"
    assert str(cephfs_volumed.VolumePath(None, "vol")) == "None/vol"
    with pytest.raises(AssertionError):
        cephfs_volumed.VolumePath("_nogroup", "vol")
    with pytest.raises(AssertionError):
        cephfs_volumed.VolumePath("grp", "")
    with pytest.raises(AssertionError):
        cephfs_volumed.VolumePath("grp", None)


def test_default_socket_and_env_override(monkeypatch):
    assert cephfs_volumed.DEFAULT_SOCKET == "/run/cephfs-volumed/volumed.sock"
    monkeypatch.delenv("CEPHFS_VOLUMED_SOCKET", raising=False)
    assert cephfs_volumed.Client().socket_path == "/run/cephfs-volumed/volumed.sock"
    monkeypatch.setenv("CEPHFS_VOLUMED_SOCKET", "/tmp/elsewhere.sock")
    assert cephfs_volumed.Client().socket_path == "/tmp/elsewhere.sock"
    assert cephfs_volumed.Client("/x.sock").socket_path == "/x.sock"


def test_not_connected_and_del_are_safe(tmp_path):
    vc = cephfs_volumed.CephFSVolumeClient(socket_path=str(tmp_path / "none.sock"))
    with pytest.raises(cephfs_volumed.CephFSVolumeClientError):
        vc.get_mon_addrs()
    with pytest.raises(cephfs_volumed.DaemonUnavailable):
        vc.connect()
    assert vc.connected is False
    vc.disconnect()
    vc.disconnect()
    del vc
    # __del__ on a half-constructed object must not raise either.
    obj = cephfs_volumed.CephFSVolumeClient.__new__(cephfs_volumed.CephFSVolumeClient)
    obj.__del__()
    with pytest.raises(NotImplementedError):
        cephfs_volumed.CephFSVolumeClient().get_mds_map()
