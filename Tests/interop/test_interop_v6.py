"""cephfs-volumed and the Python CephFSVolumeClient v6 sharing one cluster.

Both sides use the same cephx service identity (like two manila-share
instances), the same on-disk metadata and the same CephFS flock locking.
"""

import base64
import json
import threading
import uuid

import pytest

from conftest import (
    NS_PREFIX,
    RpcError,
    auth_meta_path,
    cap_tokens,
    meta_key,
    volume_dir,
    volume_meta_path,
    vp,
)

ceph_volume_client = pytest.importorskip("ceph_volume_client")
from ceph_volume_client import CephFSVolumeClientError, VolumePath  # noqa: E402


# --------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def data_pool(ceph, cluster_env):
    for fs in ceph("fs", "ls"):
        if fs["name"] == cluster_env.fs_name:
            return fs["data_pools"][0]
    pytest.fail("file system {} not found".format(cluster_env.fs_name))


class Tracker:
    """What a test created, undone at teardown (best effort, via the Python client)."""

    def __init__(self):
        self.groups = []
        self.volumes = []
        self.auth_ids = []
        self.objects = []


@pytest.fixture
def track(vc, ceph, rawfs):
    t = Tracker()
    yield t
    for (g, v) in t.volumes:
        for auth_id in t.auth_ids:
            try:
                vc.deauthorize(VolumePath(g, v), auth_id)
            except Exception:
                pass
    for auth_id in t.auth_ids:
        ceph.auth_rm(auth_id)
        try:
            rawfs.fs.unlink(auth_meta_path(auth_id))
        except Exception:
            pass
    for (g, v) in t.volumes:
        try:
            vc.delete_volume(VolumePath(g, v))
            vc.purge_volume(VolumePath(g, v))
        except Exception:
            pass
    for g in t.groups:
        try:
            vc.destroy_group(g)
        except Exception:
            pass
    for (pool, obj) in t.objects:
        try:
            vc.delete_object(pool, obj)
        except Exception:
            pass


def want_caps(group_id, volume_id, pool, level="rw"):
    """The mds and osd caps one namespace-isolated volume grants."""
    return ("allow {} path={}".format(level, volume_dir(group_id, volume_id)),
            "allow {} pool={} namespace={}{}".format(level, pool, NS_PREFIX, volume_id))


def py_create_volume(vc, track, group_id, volume_id, **kwargs):
    if group_id is not None and group_id not in track.groups:
        vc.create_group(group_id)
        track.groups.append(group_id)
    r = vc.create_volume(VolumePath(group_id, volume_id), **kwargs)
    track.volumes.append((group_id, volume_id))
    assert r["mount_path"] == volume_dir(group_id, volume_id)


def d_create_volume(rpc, track, group_id, volume_id, **kwargs):
    if group_id is not None and group_id not in track.groups:
        assert rpc.call("create_group", group_id=group_id) is None
        track.groups.append(group_id)
    r = rpc.call("create_volume", volume_path=vp(group_id, volume_id), **kwargs)
    track.volumes.append((group_id, volume_id))
    assert r == {"mount_path": volume_dir(group_id, volume_id)}


def assert_padded_json(raw):
    """The daemon's metadata format: JSON, padded with spaces to a 4 KiB block."""
    assert raw, "metadata file is empty"
    assert len(raw) % 4096 == 0, "expected the daemon's padded format, got {} bytes".format(len(raw))
    assert raw.rstrip(b" \n").endswith(b"}")
    return json.loads(raw.decode())


# --------------------------------------------------------------------------
# 1. Python creates and authorizes; the daemon joins; both deauthorize each other's


def test_python_volume_shared_authorize_deauthorize(vc, rpc, ceph, rawfs, unique, track, data_pool):
    g, v = unique("grp"), unique("vol")
    id_py, id_d = unique("py"), unique("dm")
    tenant = unique("tenant")
    track.auth_ids += [id_py, id_d]
    py_create_volume(vc, track, g, v)
    path = VolumePath(g, v)

    r = vc.authorize(path, id_py, tenant_id=tenant)
    entity = ceph.auth_get(id_py)
    assert r["auth_key"] == entity["key"]

    # The daemon sees Python's grant.
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) == [[id_py, "rw"]]

    # The daemon adds a second, read-only ID with the same tenant.
    r = rpc.call("authorize", volume_path=vp(g, v), auth_id=id_d, readonly=True, tenant_id=tenant)
    entity_d = ceph.auth_get(id_d)
    assert entity_d is not None
    assert r == {"auth_key": entity_d["key"]}
    mds, osd = want_caps(g, v, data_pool, "r")
    assert entity_d["caps"] == {"mds": mds, "osd": osd, "mon": "allow r"}

    # Python sees both.
    assert sorted(vc.get_authorized_ids(path)) == sorted([(id_py, "rw"), (id_d, "r")])
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) == sorted([[id_py, "rw"], [id_d, "r"]])

    # Python's auth metadata of the daemon-made ID is readable by Python.
    with vc._auth_lock(id_d):
        meta = vc._auth_metadata_get(id_d)
    assert meta["subvolumes"] == {meta_key(g, v): {"access_level": "r", "dirty": False}}
    assert meta["tenant_id"] == tenant

    # Python removes the daemon's ID.
    vc.deauthorize(path, id_d)
    assert ceph.auth_get(id_d) is None
    assert not rawfs.exists(auth_meta_path(id_d))
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) == [[id_py, "rw"]]

    # The daemon removes Python's ID.
    assert rpc.call("deauthorize", volume_path=vp(g, v), auth_id=id_py) is None
    assert ceph.auth_get(id_py) is None
    assert not rawfs.exists(auth_meta_path(id_py))

    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) is None
    assert vc.get_authorized_ids(path) is None
    vol_meta = rawfs.read_json(volume_meta_path(g, v))
    assert vol_meta["auths"] == {}


# --------------------------------------------------------------------------
# 2. The daemon writes; Python reads the raw metadata and joins in


def test_daemon_metadata_read_by_python(vc, rpc, ceph, rawfs, unique, track, data_pool):
    v = unique("vol")
    id_d, id_py = unique("dm"), unique("py")
    tenant = unique("tenant")
    track.auth_ids += [id_d, id_py]
    d_create_volume(rpc, track, None, v)
    path = VolumePath(None, v)

    r = rpc.call("authorize", volume_path=vp(None, v), auth_id=id_d, tenant_id=tenant)
    entity = ceph.auth_get(id_d)
    assert r == {"auth_key": entity["key"]}
    mds, osd = want_caps(None, v, data_pool)
    assert entity["caps"] == {"mds": mds, "osd": osd, "mon": "allow r"}

    auth_meta = assert_padded_json(rawfs.read_bytes(auth_meta_path(id_d)))
    assert auth_meta == {
        "dirty": False,
        "tenant_id": tenant,
        "subvolumes": {"None/" + v: {"access_level": "rw", "dirty": False}},
        "version": 6,
        "compat_version": 6,
    }
    vol_meta = assert_padded_json(rawfs.read_bytes(volume_meta_path(None, v)))
    assert vol_meta == {
        "auths": {id_d: {"access_level": "rw", "dirty": False}},
        "version": 6,
        "compat_version": 1,
    }

    # Python's own readers (with its locks) accept the padded files.
    with vc._volume_lock(path):
        assert vc._volume_metadata_get(path) == vol_meta
    assert vc.get_authorized_ids(path) == [(id_d, "rw")]

    # Python authorizes another ID on the daemon's volume (no tenant: no key).
    assert vc.authorize(path, id_py) == {"auth_key": None}
    assert ceph.caps(id_py) == {"mds": mds, "osd": osd, "mon": "allow r"}
    assert rpc.call("get_authorized_ids", volume_path=vp(None, v)) == sorted([[id_d, "rw"], [id_py, "rw"]])

    # Python rewrote the volume metadata (truncating); the daemon updates it again.
    assert rpc.call("deauthorize", volume_path=vp(None, v), auth_id=id_py) is None
    assert ceph.auth_get(id_py) is None
    assert not rawfs.exists(auth_meta_path(id_py))
    vol_meta = rawfs.read_json(volume_meta_path(None, v))
    assert vol_meta["auths"] == {id_d: {"access_level": "rw", "dirty": False}}

    # Python deauthorizes the daemon's ID from the daemon's padded auth metadata.
    vc.deauthorize(path, id_d)
    assert ceph.auth_get(id_d) is None
    assert not rawfs.exists(auth_meta_path(id_d))
    assert rpc.call("get_authorized_ids", volume_path=vp(None, v)) is None


# --------------------------------------------------------------------------
# 3. Tenants are enforced across implementations


def test_tenant_conflict_python_first(vc, rpc, ceph, unique, track):
    g, v = unique("grp"), unique("vol")
    x = unique("x")
    tenant_a, tenant_b = unique("ta"), unique("tb")
    track.auth_ids.append(x)
    py_create_volume(vc, track, g, v)

    key = vc.authorize(VolumePath(g, v), x, tenant_id=tenant_a)["auth_key"]
    caps_before = ceph.caps(x)

    with pytest.raises(RpcError) as ei:
        rpc.call("authorize", volume_path=vp(g, v), auth_id=x, tenant_id=tenant_b)
    e = ei.value
    assert e.code == -32000
    assert e.type == "VolumeClientError"
    assert e.message == "auth ID: {} is already in use".format(x)

    # No tenant is a different tenant too.
    with pytest.raises(RpcError) as ei:
        rpc.call("authorize", volume_path=vp(g, v), auth_id=x)
    assert ei.value.type == "VolumeClientError"
    assert ei.value.message == "auth ID: {} is already in use".format(x)

    assert ceph.caps(x) == caps_before

    # The same tenant is welcome, and gets the same key.
    r = rpc.call("authorize", volume_path=vp(g, v), auth_id=x, tenant_id=tenant_a)
    assert r == {"auth_key": key}
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) == [[x, "rw"]]


def test_tenant_conflict_daemon_first(vc, rpc, ceph, unique, track):
    g, v, v2 = unique("grp"), unique("vol"), unique("vol")
    y = unique("y")
    tenant_a, tenant_b = unique("ta"), unique("tb")
    track.auth_ids.append(y)
    d_create_volume(rpc, track, g, v)
    d_create_volume(rpc, track, g, v2)

    key = rpc.call("authorize", volume_path=vp(g, v), auth_id=y, tenant_id=tenant_a)["auth_key"]
    assert key
    caps_before = ceph.caps(y)

    with pytest.raises(CephFSVolumeClientError, match="auth ID: {} is already in use".format(y)):
        vc.authorize(VolumePath(g, v), y, tenant_id=tenant_b)
    with pytest.raises(CephFSVolumeClientError, match="auth ID: {} is already in use".format(y)):
        vc.authorize(VolumePath(g, v2), y)
    assert ceph.caps(y) == caps_before

    # Same tenant through Python, on a second volume: same key, both grants.
    assert vc.authorize(VolumePath(g, v2), y, tenant_id=tenant_a) == {"auth_key": key}
    caps = ceph.caps(y)
    assert set(cap_tokens(caps["mds"])) == {"allow rw path=" + volume_dir(g, v), "allow rw path=" + volume_dir(g, v2)}
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v2)) == [[y, "rw"]]


# --------------------------------------------------------------------------
# 4. Old-style (Python v2) auth metadata with the `volumes` key


def make_old_style(rawfs, auth_id):
    meta = rawfs.read_json(auth_meta_path(auth_id))
    meta["volumes"] = meta.pop("subvolumes")
    meta["version"] = 2
    meta["compat_version"] = 1
    rawfs.write_json(auth_meta_path(auth_id), meta)
    return meta


def test_old_style_auth_metadata(vc, rpc, ceph, rawfs, unique, track, data_pool):
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    z = unique("old")
    track.auth_ids.append(z)
    py_create_volume(vc, track, g, v1)
    py_create_volume(vc, track, g, v2)

    vc.authorize(VolumePath(g, v1), z)
    old = make_old_style(rawfs, z)
    assert old["volumes"] == {meta_key(g, v1): {"access_level": "rw", "dirty": False}}

    # The daemon authorizes a second volume and rewrites the file in the v6 format.
    rpc.call("authorize", volume_path=vp(g, v2), auth_id=z)
    meta = rawfs.read_json(auth_meta_path(z))
    assert "volumes" not in meta
    assert meta["subvolumes"] == {
        meta_key(g, v1): {"access_level": "rw", "dirty": False},
        meta_key(g, v2): {"access_level": "rw", "dirty": False},
    }
    assert (meta["version"], meta["compat_version"], meta["dirty"], meta["tenant_id"]) == (6, 6, False, None)
    caps = ceph.caps(z)
    m1, o1 = want_caps(g, v1, data_pool)
    m2, o2 = want_caps(g, v2, data_pool)
    assert set(cap_tokens(caps["mds"])) == {m1, m2}
    assert set(cap_tokens(caps["osd"])) == {o1, o2}

    # Back to the old format; the daemon deauthorizes the first volume from it.
    make_old_style(rawfs, z)
    assert rpc.call("deauthorize", volume_path=vp(g, v1), auth_id=z) is None
    meta = rawfs.read_json(auth_meta_path(z))
    assert "volumes" not in meta
    assert meta["subvolumes"] == {meta_key(g, v2): {"access_level": "rw", "dirty": False}}
    assert ceph.caps(z) == {"mds": m2, "osd": o2, "mon": "allow r"}
    assert vc.get_authorized_ids(VolumePath(g, v1)) is None
    assert vc.get_authorized_ids(VolumePath(g, v2)) == [(z, "rw")]

    # Old format with the last volume: the entity and the file go.
    make_old_style(rawfs, z)
    assert rpc.call("deauthorize", volume_path=vp(g, v2), auth_id=z) is None
    assert ceph.auth_get(z) is None
    assert not rawfs.exists(auth_meta_path(z))
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v2)) is None


# --------------------------------------------------------------------------
# 5. IDs created out of band (CVE-2020-27781)


def test_existing_id_requires_allow_existing(vc, rpc, ceph, rawfs, unique, track, data_pool):
    g, v = unique("grp"), unique("vol")
    e = unique("ext")
    track.auth_ids.append(e)
    py_create_volume(vc, track, g, v)
    ceph("auth", "get-or-create", "client." + e, "mon", "allow r", "mgr", "allow r")
    before = ceph.auth_get(e)
    assert before["caps"] == {"mon": "allow r", "mgr": "allow r"}

    with pytest.raises(RpcError) as ei:
        rpc.call("authorize", volume_path=vp(g, v), auth_id=e)
    assert ei.value.code == -32000
    assert ei.value.type == "VolumeClientError"
    assert "exists and not created by ceph_volume_client" in ei.value.message
    assert ceph.auth_get(e)["caps"] == before["caps"]
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) is None
    # Python agrees.
    with pytest.raises(CephFSVolumeClientError, match="not created by ceph_volume_client"):
        vc.authorize(VolumePath(g, v), e)

    r = rpc.call("authorize", volume_path=vp(g, v), auth_id=e, allow_existing_id=True, tenant_id=unique("t"))
    assert r == {"auth_key": before["key"]}
    mds, osd = want_caps(g, v, data_pool)
    assert ceph.caps(e) == {"mon": "allow r", "mgr": "allow r", "mds": mds, "osd": osd}
    assert vc.get_authorized_ids(VolumePath(g, v)) == [(e, "rw")]

    assert rpc.call("deauthorize", volume_path=vp(g, v), auth_id=e) is None
    after = ceph.auth_get(e)
    assert after is not None, "entity with mgr caps must survive deauthorize"
    assert after["key"] == before["key"]
    assert after["caps"] == {"mon": "allow r", "mgr": "allow r"}
    assert not rawfs.exists(auth_meta_path(e))


# --------------------------------------------------------------------------
# 6. Caps added out of band survive deauthorize


def test_out_of_band_caps_survive_deauthorize(rpc, ceph, unique, track, data_pool):
    g, v = unique("grp"), unique("vol")
    a = unique("oob")
    track.auth_ids.append(a)
    d_create_volume(rpc, track, g, v)
    rpc.call("authorize", volume_path=vp(g, v), auth_id=a)
    mds, osd = want_caps(g, v, data_pool)
    assert ceph.caps(a) == {"mds": mds, "osd": osd, "mon": "allow r"}

    extra_mds = "allow r path=/other"
    extra_osd = "allow r pool={} namespace=other-ns".format(data_pool)
    ceph("auth", "caps", "client." + a,
         "mds", "{}, {}".format(mds, extra_mds),
         "osd", "{}, {}".format(osd, extra_osd),
         "mon", "allow r")

    assert rpc.call("deauthorize", volume_path=vp(g, v), auth_id=a) is None
    caps = ceph.caps(a)
    assert caps is not None
    assert cap_tokens(caps.get("mds")) == [extra_mds]
    assert cap_tokens(caps.get("osd")) == [extra_osd]
    assert caps.get("mon") == "allow r"
    assert set(caps) == {"mds", "osd", "mon"}
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) is None


# --------------------------------------------------------------------------
# 7. Concurrent updates of one volume from both implementations


def test_concurrent_authorize_same_volume(vc, daemon, rpc, ceph, rawfs, unique, track, data_pool):
    g, v = unique("grp"), unique("vol")
    py_create_volume(vc, track, g, v)
    n = 10
    py_ids = [unique("cp") for _ in range(n)]
    d_ids = [unique("cd") for _ in range(n)]
    track.auth_ids += py_ids + d_ids
    path = VolumePath(g, v)

    # Each side authorizes its IDs one by one and takes every third one away again
    # right after authorizing the next one.
    def dropped(i):
        return i % 3 == 0

    errors = []

    def python_side():
        try:
            for i, a in enumerate(py_ids):
                vc.authorize(path, a, readonly=(i % 2 == 1))
                if i > 0 and dropped(i - 1):
                    vc.deauthorize(path, py_ids[i - 1])
            if dropped(n - 1):
                vc.deauthorize(path, py_ids[n - 1])
        except Exception as e:  # noqa: BLE001
            errors.append(("python", e))

    def daemon_side():
        c = daemon.client()
        try:
            for i, a in enumerate(d_ids):
                c.call("authorize", volume_path=vp(g, v), auth_id=a, readonly=(i % 2 == 1))
                if i > 0 and dropped(i - 1):
                    c.call("deauthorize", volume_path=vp(g, v), auth_id=d_ids[i - 1])
            if dropped(n - 1):
                c.call("deauthorize", volume_path=vp(g, v), auth_id=d_ids[n - 1])
        except Exception as e:  # noqa: BLE001
            errors.append(("daemon", e))
        finally:
            c.close()

    threads = [threading.Thread(target=python_side), threading.Thread(target=daemon_side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "workers hung"
    assert not errors, errors

    expected = {}
    for ids in (py_ids, d_ids):
        for i, a in enumerate(ids):
            if not dropped(i):
                expected[a] = "r" if i % 2 == 1 else "rw"

    vol_meta = rawfs.read_json(volume_meta_path(g, v))
    assert {a: e["access_level"] for a, e in vol_meta["auths"].items()} == expected, "lost update in volume metadata"
    assert all(not e["dirty"] for e in vol_meta["auths"].values())
    assert sorted(rpc.call("get_authorized_ids", volume_path=vp(g, v))) == sorted([[a, l] for a, l in expected.items()])

    for ids in (py_ids, d_ids):
        for i, a in enumerate(ids):
            if dropped(i):
                assert ceph.auth_get(a) is None, a
                assert not rawfs.exists(auth_meta_path(a)), a
            else:
                level = expected[a]
                mds, osd = want_caps(g, v, data_pool, level)
                assert ceph.caps(a) == {"mds": mds, "osd": osd, "mon": "allow r"}, a
                meta = rawfs.read_json(auth_meta_path(a))
                assert meta["dirty"] is False
                assert meta["subvolumes"] == {meta_key(g, v): {"access_level": level, "dirty": False}}


# --------------------------------------------------------------------------
# 8. recover finishes or undoes what a crashed Python client left


def test_recover_drops_dangling_auth_entries(vc, rpc, ceph, rawfs, unique, track, data_pool):
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    a, b = unique("rca"), unique("rcb")
    track.auth_ids += [a, b]
    py_create_volume(vc, track, g, v1)
    py_create_volume(vc, track, g, v2)

    # a: clean on v1, plus an interrupted authorize of v2 that never reached v2's metadata.
    # The file is in the old (v2) format, with `volumes`, as an old client left it.
    vc.authorize(VolumePath(g, v1), a)
    caps_a = ceph.caps(a)
    meta = rawfs.read_json(auth_meta_path(a))
    meta["dirty"] = True
    meta["volumes"] = meta.pop("subvolumes")
    meta["volumes"][meta_key(g, v2)] = {"access_level": "rw", "dirty": True}
    meta["version"], meta["compat_version"] = 2, 1
    rawfs.write_json(auth_meta_path(a), meta)

    # b: only an interrupted authorize of v2, no entity.
    rawfs.write_json(auth_meta_path(b), {
        "dirty": True, "tenant_id": None,
        "subvolumes": {meta_key(g, v2): {"access_level": "r", "dirty": True}},
        "version": 6, "compat_version": 6,
    })

    assert rpc.call("recover") is None

    meta = rawfs.read_json(auth_meta_path(a))
    assert meta["dirty"] is False
    assert "volumes" not in meta
    assert meta["subvolumes"] == {meta_key(g, v1): {"access_level": "rw", "dirty": False}}
    assert (meta["version"], meta["compat_version"]) == (6, 6)
    assert ceph.caps(a) == caps_a
    assert not rawfs.exists(auth_meta_path(b)), "an auth file left with no volumes must be removed"
    assert ceph.auth_get(b) is None
    v2_meta = rawfs.read_json(volume_meta_path(g, v2))
    assert v2_meta is None or v2_meta.get("auths", {}) == {}
    assert vc.get_authorized_ids(VolumePath(g, v1)) == [(a, "rw")]
    assert vc.get_authorized_ids(VolumePath(g, v2)) is None


def _dirty_both(rawfs, auth_id, g, v):
    meta = rawfs.read_json(auth_meta_path(auth_id))
    meta["dirty"] = True
    meta["subvolumes"][meta_key(g, v)]["dirty"] = True
    rawfs.write_json(auth_meta_path(auth_id), meta)
    vmeta = rawfs.read_json(volume_meta_path(g, v))
    vmeta["auths"][auth_id]["dirty"] = True
    rawfs.write_json(volume_meta_path(g, v), vmeta)


def test_recover_finishes_interrupted_authorize(vc, rpc, ceph, rawfs, unique, track, data_pool):
    g, v = unique("grp"), unique("vol")
    a, b = unique("rfa"), unique("rfb")
    track.auth_ids += [a, b]
    py_create_volume(vc, track, g, v)
    mds, osd = want_caps(g, v, data_pool)

    # a: crashed after the Ceph update (caps present), both metadata entries dirty.
    vc.authorize(VolumePath(g, v), a)
    key_a = ceph.auth_get(a)["key"]
    _dirty_both(rawfs, a, g, v)
    # b: crashed after the volume metadata, before Ceph (no entity yet).
    vc.authorize(VolumePath(g, v), b, readonly=True)
    _dirty_both(rawfs, b, g, v)
    ceph("auth", "rm", "client." + b)

    # Dirty entries are not reported: the list is empty (not None, as the
    # volume has entries), on both sides.
    assert vc.get_authorized_ids(VolumePath(g, v)) == []
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) == []

    assert rpc.call("recover") is None

    vmeta = rawfs.read_json(volume_meta_path(g, v))
    assert vmeta["auths"] == {a: {"access_level": "rw", "dirty": False},
                              b: {"access_level": "r", "dirty": False}}
    for auth_id, level in ((a, "rw"), (b, "r")):
        meta = rawfs.read_json(auth_meta_path(auth_id))
        assert meta["dirty"] is False
        assert meta["subvolumes"] == {meta_key(g, v): {"access_level": level, "dirty": False}}
    assert ceph.auth_get(a) == {"entity": "client." + a, "key": key_a,
                                "caps": {"mds": mds, "osd": osd, "mon": "allow r"}}
    rmds, rosd = want_caps(g, v, data_pool, "r")
    assert ceph.caps(b) == {"mds": rmds, "osd": rosd, "mon": "allow r"}
    assert sorted(vc.get_authorized_ids(VolumePath(g, v))) == [(a, "rw"), (b, "r")]


# --------------------------------------------------------------------------
# 9. RADOS objects


def test_objects_shared(vc, rpc, unique, track, data_pool):
    import rados

    obj = unique("obj")
    track.objects.append((data_pool, obj))
    data1 = bytes(range(256)) * 3
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731

    assert rpc.call("put_object", pool_name=data_pool, object_name=obj, data=b64(data1)) is None
    assert vc.get_object(data_pool, obj) == data1
    assert base64.b64decode(rpc.call("get_object", pool_name=data_pool, object_name=obj)) == data1

    data2 = b"written by python\x00\xff"
    vc.put_object_versioned(data_pool, obj, data2)
    r = rpc.call("get_object_and_version", pool_name=data_pool, object_name=obj)
    assert base64.b64decode(r["data"]) == data2
    version = r["version"]
    assert isinstance(version, int) and version > 0
    py_data, py_version = vc.get_object_and_version(data_pool, obj)
    assert (py_data, py_version) == (data2, version)

    with pytest.raises(RpcError) as ei:
        rpc.call("put_object_versioned", pool_name=data_pool, object_name=obj, data=b64(b"stale"),
                 version=version - 1)
    assert ei.value.code == -32000
    assert ei.value.errno is not None
    assert ei.value.errno == 34, ei.value  # ERANGE: the object is newer than asserted
    assert vc.get_object(data_pool, obj) == data2

    data3 = b"written by the daemon"
    assert rpc.call("put_object_versioned", pool_name=data_pool, object_name=obj, data=b64(data3),
                    version=version) is None
    py_data, py_version = vc.get_object_and_version(data_pool, obj)
    assert py_data == data3
    assert py_version > version

    # Python's own versioned write with the now stale version fails as well.
    with pytest.raises(rados.Error):
        vc.put_object_versioned(data_pool, obj, b"stale", version=version)

    assert rpc.call("delete_object", pool_name=data_pool, object_name=obj) is None
    with pytest.raises(rados.ObjectNotFound):
        vc.get_object(data_pool, obj)
    with pytest.raises(RpcError) as ei:
        rpc.call("get_object", pool_name=data_pool, object_name=obj)
    assert ei.value.type == "ObjectNotFound"
    assert ei.value.errno == 2


# --------------------------------------------------------------------------
# 10. Volumes without namespace isolation share one pool-wide osd cap


def _pool_cap(pool, level="rw"):
    return "allow {} pool={}".format(level, pool)


def test_shared_pool_cap_python_deauthorizes_after_daemon_grant(vc, rpc, ceph, unique, track, data_pool):
    """Python grants v1 and the daemon grants v2 (both without namespace
    isolation, in the same pool). Deauthorizing v1 must leave v2 usable, as it
    does when Python made both grants, and deauthorizing v2 must then work."""
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    x = unique("pl")
    track.auth_ids.append(x)
    py_create_volume(vc, track, g, v1, namespace_isolated=False)
    py_create_volume(vc, track, g, v2, namespace_isolated=False)

    vc.authorize(VolumePath(g, v1), x)
    rpc.call("authorize", volume_path=vp(g, v2), auth_id=x)
    caps = ceph.caps(x)
    assert set(cap_tokens(caps["mds"])) == {"allow rw path=" + volume_dir(g, v1), "allow rw path=" + volume_dir(g, v2)}

    vc.deauthorize(VolumePath(g, v1), x)
    caps = ceph.caps(x)
    assert caps is not None
    assert cap_tokens(caps.get("mds")) == ["allow rw path=" + volume_dir(g, v2)]
    assert _pool_cap(data_pool) in cap_tokens(caps.get("osd")), \
        "v2 lost its osd cap: the daemon did not add its own pool cap next to Python's ({})".format(caps)

    vc.deauthorize(VolumePath(g, v2), x)
    assert ceph.auth_get(x) is None


def test_shared_pool_cap_daemon_only_then_python(vc, rpc, ceph, unique, track, data_pool):
    """The daemon grants two pool-only volumes; Python must be able to take
    them away one by one (it removes one pool cap per volume)."""
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    x = unique("pd")
    track.auth_ids.append(x)
    d_create_volume(rpc, track, g, v1, namespace_isolated=False)
    d_create_volume(rpc, track, g, v2, namespace_isolated=False)

    rpc.call("authorize", volume_path=vp(g, v1), auth_id=x)
    rpc.call("authorize", volume_path=vp(g, v2), auth_id=x)

    vc.deauthorize(VolumePath(g, v1), x)
    caps = ceph.caps(x)
    assert caps is not None
    assert cap_tokens(caps.get("mds")) == ["allow rw path=" + volume_dir(g, v2)]
    assert _pool_cap(data_pool) in cap_tokens(caps.get("osd")), \
        "v2 lost its osd cap after Python deauthorized v1 ({})".format(caps)
    vc.deauthorize(VolumePath(g, v2), x)
    assert ceph.auth_get(x) is None


def test_pool_cap_removed_when_other_volume_is_namespaced(rpc, ceph, unique, track, data_pool):
    """Daemon only: an ID with a pool-only volume and a namespace-isolated one.
    Deauthorizing the pool-only volume must take the pool-wide osd cap away
    (the Python client does), or the ID keeps rw on every namespace of the pool."""
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    x = unique("pn")
    track.auth_ids.append(x)
    d_create_volume(rpc, track, g, v1, namespace_isolated=False)
    d_create_volume(rpc, track, g, v2)

    rpc.call("authorize", volume_path=vp(g, v1), auth_id=x)
    rpc.call("authorize", volume_path=vp(g, v2), auth_id=x)
    m2, o2 = want_caps(g, v2, data_pool)
    assert set(cap_tokens(ceph.caps(x)["osd"])) == {_pool_cap(data_pool), o2}

    rpc.call("deauthorize", volume_path=vp(g, v1), auth_id=x)
    caps = ceph.caps(x)
    assert cap_tokens(caps.get("mds")) == [m2]
    assert cap_tokens(caps.get("osd")) == [o2], "pool-wide osd cap of the deauthorized volume was left behind"


def test_shared_pool_cap_python_only_baseline(vc, ceph, unique, track, data_pool):
    """Reference behaviour of the Python client alone: one pool cap per grant,
    one removed per revoke, so v2 keeps its osd cap when v1 goes."""
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    x = unique("pb")
    track.auth_ids.append(x)
    py_create_volume(vc, track, g, v1, namespace_isolated=False)
    py_create_volume(vc, track, g, v2, namespace_isolated=False)
    vc.authorize(VolumePath(g, v1), x)
    vc.authorize(VolumePath(g, v2), x)
    assert cap_tokens(ceph.caps(x)["osd"]) == [_pool_cap(data_pool)] * 2
    vc.deauthorize(VolumePath(g, v1), x)
    assert cap_tokens(ceph.caps(x)["osd"]) == [_pool_cap(data_pool)]
    vc.deauthorize(VolumePath(g, v2), x)
    assert ceph.auth_get(x) is None


def test_shared_pool_cap_daemon_only(rpc, ceph, unique, track, data_pool):
    """Daemon alone, two pool-only volumes: v2 keeps the pool cap when v1 goes."""
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    x = unique("po")
    track.auth_ids.append(x)
    d_create_volume(rpc, track, g, v1, namespace_isolated=False)
    d_create_volume(rpc, track, g, v2, namespace_isolated=False)
    rpc.call("authorize", volume_path=vp(g, v1), auth_id=x)
    rpc.call("authorize", volume_path=vp(g, v2), auth_id=x)
    rpc.call("deauthorize", volume_path=vp(g, v1), auth_id=x)
    caps = ceph.caps(x)
    assert cap_tokens(caps["mds"]) == ["allow rw path=" + volume_dir(g, v2)]
    assert _pool_cap(data_pool) in cap_tokens(caps["osd"])
    rpc.call("deauthorize", volume_path=vp(g, v2), auth_id=x)
    assert ceph.auth_get(x) is None


def test_shared_pool_cap_daemon_deauthorizes_python_grants(vc, rpc, ceph, unique, track, data_pool):
    """Python grants two pool-only volumes (two pool caps); the daemon takes v1
    away, then Python takes v2 away: nothing may be left of the entity."""
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    x = unique("pr")
    track.auth_ids.append(x)
    py_create_volume(vc, track, g, v1, namespace_isolated=False)
    py_create_volume(vc, track, g, v2, namespace_isolated=False)
    vc.authorize(VolumePath(g, v1), x)
    vc.authorize(VolumePath(g, v2), x)

    rpc.call("deauthorize", volume_path=vp(g, v1), auth_id=x)
    caps = ceph.caps(x)
    assert cap_tokens(caps["mds"]) == ["allow rw path=" + volume_dir(g, v2)]
    assert cap_tokens(caps["osd"]) == [_pool_cap(data_pool)], \
        "v1's pool cap was not removed ({})".format(caps)

    vc.deauthorize(VolumePath(g, v2), x)
    assert ceph.auth_get(x) is None, "a pool-wide osd cap outlived every grant ({})".format(ceph.caps(x))


def test_pool_cap_of_other_access_level_removed(rpc, ceph, unique, track, data_pool):
    """Daemon only: rw on pool-only v1, r on pool-only v2 (same pool).
    Deauthorizing v1 must drop `allow rw pool=...` (the Python client does),
    or the ID keeps write access to the whole pool with only a read grant left."""
    g, v1, v2 = unique("grp"), unique("vol"), unique("vol")
    x = unique("pa")
    track.auth_ids.append(x)
    d_create_volume(rpc, track, g, v1, namespace_isolated=False)
    d_create_volume(rpc, track, g, v2, namespace_isolated=False)
    rpc.call("authorize", volume_path=vp(g, v1), auth_id=x)
    rpc.call("authorize", volume_path=vp(g, v2), auth_id=x, readonly=True)
    rpc.call("deauthorize", volume_path=vp(g, v1), auth_id=x)
    caps = ceph.caps(x)
    assert cap_tokens(caps["mds"]) == ["allow r path=" + volume_dir(g, v2)]
    assert cap_tokens(caps["osd"]) == [_pool_cap(data_pool, "r")], \
        "write access to the pool outlived the rw grant ({})".format(caps)


def test_readonly_grant_keeps_other_volumes_pool_cap(vc, rpc, ceph, unique, track, data_pool):
    """rw on pool-only v1, then read-only on pool-only v2 (same pool). The
    second grant must not take v1's `allow rw pool=...` away: the Python client
    only drops the other access level's caps of the SAME volume (its mds path
    cap must be present). Checked for both implementations."""
    g = unique("grp")
    v1, v2, w1, w2 = (unique("vol") for _ in range(4))
    x, y = unique("rk"), unique("rk")
    track.auth_ids += [x, y]
    for v in (v1, v2, w1, w2):
        py_create_volume(vc, track, g, v, namespace_isolated=False)

    # Python alone: both pool caps are kept.
    vc.authorize(VolumePath(g, w1), y)
    vc.authorize(VolumePath(g, w2), y, readonly=True)
    assert sorted(cap_tokens(ceph.caps(y)["osd"])) == sorted([_pool_cap(data_pool), _pool_cap(data_pool, "r")])

    # The daemon.
    rpc.call("authorize", volume_path=vp(g, v1), auth_id=x)
    rpc.call("authorize", volume_path=vp(g, v2), auth_id=x, readonly=True)
    caps = ceph.caps(x)
    assert set(cap_tokens(caps["mds"])) == {"allow rw path=" + volume_dir(g, v1), "allow r path=" + volume_dir(g, v2)}
    assert _pool_cap(data_pool) in cap_tokens(caps["osd"]), \
        "v1 (rw) lost write access to its data when v2 was granted read-only ({})".format(caps)


# --------------------------------------------------------------------------
# 7b. Concurrent updates of one auth ID from both implementations


def test_concurrent_same_auth_id_many_volumes(vc, daemon, ceph, rawfs, unique, track, data_pool):
    """Both sides authorize ONE auth ID on different volumes at the same time:
    the auth metadata and the entity's caps must end with every volume."""
    g = unique("grp")
    n = 5
    py_vols = [unique("vp") for _ in range(n)]
    d_vols = [unique("vd") for _ in range(n)]
    for v in py_vols + d_vols:
        py_create_volume(vc, track, g, v)
    x = unique("same")
    track.auth_ids.append(x)
    tenant = unique("t")
    # Create the ID first, so both sides only update it.
    vc.authorize(VolumePath(g, py_vols[0]), x, tenant_id=tenant)

    errors = []

    def python_side():
        try:
            for v in py_vols[1:]:
                vc.authorize(VolumePath(g, v), x, tenant_id=tenant)
        except Exception as e:  # noqa: BLE001
            errors.append(("python", e))

    def daemon_side():
        c = daemon.client()
        try:
            for v in d_vols:
                c.call("authorize", volume_path=vp(g, v), auth_id=x, tenant_id=tenant)
        except Exception as e:  # noqa: BLE001
            errors.append(("daemon", e))
        finally:
            c.close()

    threads = [threading.Thread(target=python_side), threading.Thread(target=daemon_side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "workers hung"
    assert not errors, errors

    meta = rawfs.read_json(auth_meta_path(x))
    assert meta["dirty"] is False
    assert meta["tenant_id"] == tenant
    assert meta["subvolumes"] == {meta_key(g, v): {"access_level": "rw", "dirty": False} for v in py_vols + d_vols}
    caps = ceph.caps(x)
    assert sorted(cap_tokens(caps["mds"])) == sorted(want_caps(g, v, data_pool)[0] for v in py_vols + d_vols)
    assert sorted(cap_tokens(caps["osd"])) == sorted(want_caps(g, v, data_pool)[1] for v in py_vols + d_vols)
    for v in py_vols + d_vols:
        assert rawfs.read_json(volume_meta_path(g, v))["auths"] == {x: {"access_level": "rw", "dirty": False}}


# --------------------------------------------------------------------------
# 11. More mixed cases


def test_readonly_switch_across_implementations(vc, rpc, ceph, rawfs, unique, track, data_pool):
    g, v = unique("grp"), unique("vol")
    x = unique("ro")
    track.auth_ids.append(x)
    py_create_volume(vc, track, g, v)

    vc.authorize(VolumePath(g, v), x)
    rpc.call("authorize", volume_path=vp(g, v), auth_id=x, readonly=True)
    rmds, rosd = want_caps(g, v, data_pool, "r")
    assert ceph.caps(x) == {"mds": rmds, "osd": rosd, "mon": "allow r"}
    assert vc.get_authorized_ids(VolumePath(g, v)) == [(x, "r")]
    assert rawfs.read_json(auth_meta_path(x))["subvolumes"] == {meta_key(g, v): {"access_level": "r", "dirty": False}}

    vc.authorize(VolumePath(g, v), x)
    mds, osd = want_caps(g, v, data_pool, "rw")
    assert set(cap_tokens(ceph.caps(x)["mds"])) == {mds}
    assert set(cap_tokens(ceph.caps(x)["osd"])) == {osd}
    assert rpc.call("get_authorized_ids", volume_path=vp(g, v)) == [[x, "rw"]]

    rpc.call("deauthorize", volume_path=vp(g, v), auth_id=x)
    assert ceph.auth_get(x) is None


def test_deauthorize_after_python_deleted_volume(vc, rpc, ceph, rawfs, unique, track, data_pool):
    g, v, keep = unique("grp"), unique("vol"), unique("vol")
    x = unique("dv")
    track.auth_ids.append(x)
    py_create_volume(vc, track, g, v)
    py_create_volume(vc, track, g, keep)
    vc.authorize(VolumePath(g, v), x)
    vc.authorize(VolumePath(g, keep), x)

    vc.delete_volume(VolumePath(g, v))
    assert not rawfs.exists(volume_meta_path(g, v))

    assert rpc.call("deauthorize", volume_path=vp(g, v), auth_id=x) is None
    mds, osd = want_caps(g, keep, data_pool)
    assert ceph.caps(x) == {"mds": mds, "osd": osd, "mon": "allow r"}
    assert rawfs.read_json(auth_meta_path(x))["subvolumes"] == {meta_key(g, keep): {"access_level": "rw", "dirty": False}}
    vc.purge_volume(VolumePath(g, v))


def test_unknown_keys_survive_and_newer_compat_refused(vc, rpc, ceph, rawfs, unique, track):
    g, v = unique("grp"), unique("vol")
    x, y = unique("uk"), unique("nc")
    track.auth_ids += [x, y]
    py_create_volume(vc, track, g, v)
    vc.authorize(VolumePath(g, v), x)

    meta = rawfs.read_json(auth_meta_path(x))
    meta["x_future"] = {"a": [1, 2]}
    rawfs.write_json(auth_meta_path(x), meta)
    vmeta = rawfs.read_json(volume_meta_path(g, v))
    vmeta["x_future_vol"] = "kept"
    rawfs.write_json(volume_meta_path(g, v), vmeta)

    rpc.call("authorize", volume_path=vp(g, v), auth_id=x, readonly=True)
    assert rawfs.read_json(auth_meta_path(x))["x_future"] == {"a": [1, 2]}
    assert rawfs.read_json(volume_meta_path(g, v))["x_future_vol"] == "kept"

    # A file from a newer client (compat_version 7) is refused by both.
    rawfs.write_json(auth_meta_path(y), {
        "dirty": False, "tenant_id": None, "subvolumes": {}, "version": 7, "compat_version": 7})
    with pytest.raises(RpcError) as ei:
        rpc.call("authorize", volume_path=vp(g, v), auth_id=y)
    assert ei.value.type == "VolumeClientError"
    with pytest.raises(CephFSVolumeClientError, match="does not support the required feature"):
        vc.authorize(VolumePath(g, v), y)
    assert ceph.auth_get(y) is None


def test_data_isolated_volume_from_daemon(vc, rpc, ceph, unique, track):
    v = unique("iso")
    x = unique("di")
    pool = "fsvolume_" + v
    track.auth_ids.append(x)
    r = rpc.call("create_volume", volume_path=vp(None, v), data_isolated=True, size=1 << 20)
    assert r == {"mount_path": volume_dir(None, v)}
    try:
        assert pool in ceph("osd", "pool", "ls")
        assert vc.get_used_bytes(VolumePath(None, v)) == 0
        vc.authorize(VolumePath(None, v), x)
        assert ceph.caps(x) == {"mds": "allow rw path=" + volume_dir(None, v),
                                "osd": "allow rw pool={} namespace={}{}".format(pool, NS_PREFIX, v),
                                "mon": "allow r"}
        rpc.call("deauthorize", volume_path=vp(None, v), auth_id=x)
        assert ceph.auth_get(x) is None
    finally:
        rpc.call("delete_volume", volume_path=vp(None, v), data_isolated=True)
        rpc.call("purge_volume", volume_path=vp(None, v), data_isolated=True)
    assert pool not in ceph("osd", "pool", "ls")


def test_recover_keeps_entries_of_volumes_it_cannot_name(vc, rpc, ceph, rawfs, unique, track, data_pool):
    """The Python client accepts volume ids the daemon's identifier rules
    refuse (here one starting with '_'). When such an entry is dirty, the daemon's
    recover must not silently drop it from the auth metadata while the volume
    metadata and the cephx caps still grant access: Python's deauthorize would
    then find no entry and never revoke the caps."""
    g = unique("grp")
    odd = "_odd-" + uuid.uuid4().hex[:10]
    x = unique("odd")
    track.auth_ids.append(x)
    py_create_volume(vc, track, g, odd)
    vc.authorize(VolumePath(g, odd), x)
    _dirty_both(rawfs, x, g, odd)

    assert rpc.call("recover") is None

    meta = rawfs.read_json(auth_meta_path(x))
    vmeta = rawfs.read_json(volume_meta_path(g, odd))
    caps = ceph.caps(x)
    granted = caps is not None and ("allow rw path=" + volume_dir(g, odd)) in cap_tokens(caps.get("mds"))
    in_vmeta = x in (vmeta or {}).get("auths", {})
    in_ameta = meta is not None and meta_key(g, odd) in meta.get("subvolumes", meta.get("volumes", {}))
    assert in_ameta or not (granted or in_vmeta), (
        "recover dropped the auth metadata entry of {} but left the grant (caps={}, volume meta={})".format(
            meta_key(g, odd), caps, vmeta))

    # And Python can still take the access away.
    vc.deauthorize(VolumePath(g, odd), x)
    assert ceph.auth_get(x) is None
