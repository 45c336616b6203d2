"""A caller written for ``ceph_volume_client`` works unchanged on the shim.

``manage_share`` below is such a caller. It is run once with Debian's
``ceph_volume_client`` (v6, librados and libcephfs in this process) and once
with ``cephfs_volumed`` (the daemon); only the module it was imported from
differs, and both runs must give the same results.
"""

import ast
import os
import subprocess
import sys
import uuid

import pytest

LIBRARY_TIMEOUT = 180


def manage_share(mod, ctor_kwargs, tag, pool):
    """A share driver's life cycle, written against ceph_volume_client's API.

    ``mod`` is the module the caller imported (``ceph_volume_client`` or
    ``cephfs_volumed``): ``from <mod> import CephFSVolumeClient, VolumePath``.
    Returns what it observed, with ``tag`` replaced by ``<tag>``.
    """
    CephFSVolumeClient = mod.CephFSVolumeClient
    VolumePath = mod.VolumePath
    CephFSVolumeClientError = mod.CephFSVolumeClientError

    seen = {}
    group = "grp-" + tag
    share = VolumePath(group, "share-" + tag)
    guest, other = "guest-" + tag, "other-" + tag

    vc = CephFSVolumeClient(**ctor_kwargs)
    vc.connect(premount_evict=None)
    try:
        seen["version"] = vc.version
        seen["mon_addrs"] = sorted(vc.get_mon_addrs())
        vc.create_group(group)
        seen["create"] = vc.create_volume(share, size=64 * 1024 * 1024, namespace_isolated=True)
        seen["create_again"] = vc.create_volume(share, size=64 * 1024 * 1024)
        seen["used_bytes"] = vc.get_used_bytes(share)
        seen["ids_before"] = vc.get_authorized_ids(share)

        auth = vc.authorize(share, guest, readonly=False, tenant_id="tenant-a")
        seen["auth_keys"] = sorted(auth)
        seen["auth_key_is_str"] = isinstance(auth["auth_key"], str) and len(auth["auth_key"]) > 0
        seen["auth_again_same_key"] = vc.authorize(share, guest, tenant_id="tenant-a") == auth
        seen["auth_no_tenant"] = vc.authorize(share, other, readonly=True)
        seen["ids"] = sorted(vc.get_authorized_ids(share))
        try:
            vc.authorize(share, guest, tenant_id="tenant-b")
            seen["tenant_mismatch"] = "no error"
        except CephFSVolumeClientError as e:
            seen["tenant_mismatch"] = str(e)

        vc.set_max_bytes(share, 128 * 1024 * 1024)

        # Snapshots. Destroyed once only: after destroy_snapshot_volume of a
        # snapshot that is already gone (rmdir fails with ENOENT), the
        # library's libcephfs (16.2) hangs in disconnect().
        snap = "snap-" + tag
        vc.create_snapshot_volume(share, snap)
        vc.destroy_snapshot_volume(share, snap)

        obj = "obj-" + tag
        vc.put_object(pool, obj, b"\x00manila\xff")
        seen["object"] = vc.get_object(pool, obj)
        data, version = vc.get_object_and_version(pool, obj)
        seen["object_and_version"] = (data, type(version).__name__)
        vc.put_object_versioned(pool, obj, b"v2", version=version)
        seen["versioned"] = vc.get_object(pool, obj)
        vc.delete_object(pool, obj)
        vc.delete_object(pool, obj)
        try:
            vc.get_object(pool, obj)
            seen["missing_object"] = "no error"
        except Exception as e:  # rados.ObjectNotFound / cephfs_volumed.ObjectNotFound
            seen["missing_object"] = type(e).__name__

        vc.deauthorize(share, guest)
        vc.deauthorize(share, other)
        vc.evict(guest)
        seen["ids_after"] = vc.get_authorized_ids(share)
        vc.delete_volume(share)
        vc.purge_volume(share)
        vc.purge_volume(share)
        vc.destroy_group(group)
    finally:
        vc.disconnect()

    def untag(v):
        if isinstance(v, str):
            return v.replace(tag, "<tag>")
        if isinstance(v, dict):
            return {untag(k): untag(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(untag(x) for x in v)
        return v

    return untag(seen)


@pytest.fixture
def library_kwargs(cluster_env):
    return dict(auth_id=cluster_env.id, conf_path=cluster_env.conf, cluster_name=cluster_env.cluster,
                fs_name=cluster_env.fs_name)


_LIBRARY_RUNNER = """
import ast, os, sys
sys.path.insert(0, os.environ["DROPIN_TESTS_DIR"])
import ceph_volume_client
import test_dropin
assert ceph_volume_client.CephFSVolumeClient.version == 6
kwargs, tag, pool = ast.literal_eval(sys.argv[1])
print("RESULT " + repr(test_dropin.manage_share(ceph_volume_client, kwargs, tag, pool)))
"""


@pytest.fixture
def library_result(library_kwargs, data_pool):
    """manage_share run with Debian's ceph_volume_client, in a child process:
    librados and libcephfs stay out of the test process, and a hang in them
    fails the test instead of stalling the suite."""
    probe = subprocess.run([sys.executable, "-c", "import ceph_volume_client"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("Debian's ceph_volume_client does not import under {} (run with /usr/bin/python3): {}".format(
            sys.executable, probe.stderr.strip().splitlines()[-1:]))
    arg = repr((library_kwargs, uuid.uuid4().hex[:10], data_pool))
    env = dict(os.environ, DROPIN_TESTS_DIR=os.path.dirname(os.path.abspath(__file__)))
    try:
        p = subprocess.run([sys.executable, "-c", _LIBRARY_RUNNER, arg], capture_output=True, text=True,
                           timeout=LIBRARY_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail("the caller did not finish within {}s with ceph_volume_client:\n{}".format(
            LIBRARY_TIMEOUT, e.stderr))
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert p.returncode == 0 and lines, "ceph_volume_client run failed ({}):\n{}\n{}".format(
        p.returncode, p.stdout[-4000:], p.stderr[-4000:])
    return ast.literal_eval(lines[-1][len("RESULT "):])


def test_same_caller_same_results_with_socket_path(library_result, library_kwargs, socket_path, data_pool):
    import cephfs_volumed
    shim = manage_share(cephfs_volumed, dict(library_kwargs, socket_path=socket_path),
                        uuid.uuid4().hex[:10], data_pool)
    assert shim == library_result


def test_same_caller_same_results_with_only_the_import_changed(library_result, library_kwargs, socket_path,
                                                               data_pool, monkeypatch):
    # The socket comes from the environment: the constructor call is the library's, verbatim.
    monkeypatch.setenv("CEPHFS_VOLUMED_SOCKET", socket_path)
    import cephfs_volumed
    shim = manage_share(cephfs_volumed, library_kwargs, uuid.uuid4().hex[:10], data_pool)
    assert shim == library_result


def test_expected_values(library_result):
    """What both produce (checked once, on the library's run)."""
    r = library_result
    assert r["version"] == 6
    assert r["create"] == {"mount_path": "/volumes/grp-<tag>/share-<tag>"}
    assert r["create_again"] == r["create"]
    assert r["used_bytes"] == 0
    assert r["ids_before"] is None
    assert r["auth_keys"] == ["auth_key"] and r["auth_key_is_str"] and r["auth_again_same_key"]
    assert r["auth_no_tenant"] == {"auth_key": None}
    assert r["ids"] == [("guest-<tag>", "rw"), ("other-<tag>", "r")]
    assert r["tenant_mismatch"] == "auth ID: guest-<tag> is already in use"
    assert r["object"] == b"\x00manila\xff"
    assert r["object_and_version"] == (b"\x00manila\xff", "int")
    assert r["versioned"] == b"v2"
    assert r["missing_object"] == "ObjectNotFound"
    assert r["ids_after"] is None
