"""The drop-in CephFSVolumeClient and the low-level Client against a live
daemon: the main scenarios of the Swift end-to-end tests, through Python."""

import os
import signal
import threading
import time

import pytest

import cephfs_volumed
from cephfs_volumed import (
    CallTimeout,
    CephFSVolumeClientError,
    ClusterError,
    ConnectionLost,
    DaemonUnavailable,
    InvalidParams,
    ObjectNotFound,
    VolumePath,
)


class Tracker:
    """What a test created; removed at teardown, best effort."""

    def __init__(self, vc):
        self.vc = vc
        self.groups = []
        self.volumes = []
        self.grants = []
        self.objects = []

    def group(self, g):
        self.groups.append(g)
        return g

    def volume(self, vp):
        self.volumes.append(vp)
        return vp

    def grant(self, vp, auth_id):
        self.grants.append((vp, auth_id))
        return auth_id

    def obj(self, pool, name):
        self.objects.append((pool, name))
        return name

    def cleanup(self):
        vc = self.vc
        for vp, auth_id in self.grants:
            _quietly(vc.deauthorize, vp, auth_id)
        for vp in self.volumes:
            # Only delete what is still there: delete_volume of a volume that
            # is already gone wedges the daemon's later purge of it (see
            # test_delete_twice_then_purge).
            try:
                vc.get_used_bytes(vp)
            except ObjectNotFound:
                pass
            except Exception:
                continue
            else:
                _quietly(vc.delete_volume, vp)
            _quietly(vc.purge_volume, vp)
        for g in self.groups:
            _quietly(vc.destroy_group, g)
        for pool, name in self.objects:
            _quietly(vc.delete_object, pool, name)


def _stop(pid):
    """SIGSTOP ``pid`` and wait until every thread has stopped. kill()
    returns before that: one thread must first be scheduled to start the
    group stop, and meanwhile the others may still answer a request."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = []
        for tid in os.listdir("/proc/{0}/task".format(pid)):
            try:
                with open("/proc/{0}/task/{1}/stat".format(pid, tid)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        if states and all(st in ("T", "t") for st in states):
            return
        time.sleep(0.005)
    raise AssertionError("cephfs-volumed did not stop within 10 s")


def _quietly(fn, *args):
    try:
        fn(*args)
    except Exception:
        pass


@pytest.fixture
def track(socket_path):
    # A client of its own, so cleanup works even if the test broke the other.
    vc = cephfs_volumed.CephFSVolumeClient(socket_path=socket_path, call_timeout=120)
    t = Tracker(vc)
    yield t
    try:
        vc.connect()
        t.cleanup()
    finally:
        vc.disconnect()


# --------------------------------------------------------------------------
# Lifecycle


def test_lifecycle(vc, track, unique):
    g = track.group(unique("pyg"))
    vid = unique("pyv")
    vp = track.volume(VolumePath(g, vid))
    alice, bob = unique("alice"), unique("bob")

    assert vc.connected
    assert vc.create_group(g) is None
    r = vc.create_volume(vp, size=10 * 1024 * 1024)
    assert r == {"mount_path": "/volumes/{}/{}".format(g, vid)}
    assert vc.get_used_bytes(vp) == 0
    assert vc.get_authorized_ids(vp) is None

    track.grant(vp, alice)
    r = vc.authorize(vp, alice, tenant_id="tenant1")
    assert set(r) == {"auth_key"}
    key = r["auth_key"]
    assert isinstance(key, str) and len(key) > 20
    assert vc.get_authorized_ids(vp) == [(alice, "rw")]

    track.grant(vp, bob)
    assert vc.authorize(vp, bob, readonly=True) == {"auth_key": None}
    ids = vc.get_authorized_ids(vp)
    assert all(isinstance(t, tuple) for t in ids)
    assert sorted(ids) == sorted([(alice, "rw"), (bob, "r")])

    vc.set_max_bytes(vp, 1 << 20)
    vc.set_max_bytes(vp, None)

    assert vc.deauthorize(vp, alice) is None
    assert vc.get_authorized_ids(vp) == [(bob, "r")]
    vc.deauthorize(vp, bob)
    assert vc.get_authorized_ids(vp) is None

    assert vc.delete_volume(vp) is None
    with pytest.raises(ObjectNotFound):
        vc.get_used_bytes(vp)
    assert vc.purge_volume(vp) is None
    assert vc.destroy_group(g) is None


def test_volume_without_group_and_defaults(vc, track, unique):
    vid = unique("pynog")
    vp = track.volume(VolumePath(None, vid))
    assert vc.create_volume(vp) == {"mount_path": "/volumes/_nogroup/{}".format(vid)}
    assert vc.create_volume(vp, None, False, False, 0o700) == {"mount_path": "/volumes/_nogroup/{}".format(vid)}
    assert vc.get_authorized_ids(VolumePath(None, unique("never"))) is None
    vc.delete_volume(vp)
    vc.purge_volume(vp)


def test_every_mutating_call_is_idempotent(vc, track, unique, data_pool):
    g = track.group(unique("idg"))
    vp = track.volume(VolumePath(g, unique("idv")))
    auth = track.grant(vp, unique("idauth"))
    obj = track.obj(data_pool, unique("idobj"))

    vc.create_group(g)
    vc.create_group(g)
    m1 = vc.create_volume(vp, size=1 << 20)
    m2 = vc.create_volume(vp, size=1 << 20)
    assert m1 == m2
    k1 = vc.authorize(vp, auth, tenant_id="tenantA")["auth_key"]
    k2 = vc.authorize(vp, auth, tenant_id="tenantA")["auth_key"]
    assert k1 == k2 and k1
    assert vc.get_authorized_ids(vp) == [(auth, "rw")]
    vc.set_max_bytes(vp, 4096)
    vc.set_max_bytes(vp, 4096)
    vc.put_object(data_pool, obj, b"same")
    vc.put_object(data_pool, obj, b"same")
    snap = unique("idsnap")
    vc.create_snapshot_volume(vp, snap)
    vc.destroy_snapshot_volume(vp, snap)
    vc.destroy_snapshot_volume(vp, snap)
    vc.deauthorize(vp, auth)
    vc.deauthorize(vp, auth)
    vc.evict(auth)
    vc.evict(auth)
    # delete_volume of a deleted volume is test_delete_twice_then_purge.
    vc.delete_volume(vp)
    vc.purge_volume(vp)
    vc.purge_volume(vp)
    vc.destroy_group(g)
    vc.destroy_group(g)
    vc.delete_object(data_pool, obj)
    vc.delete_object(data_pool, obj)
    vc.recover()
    vc.recover()


# --------------------------------------------------------------------------
# Errors


def test_tenant_mismatch_is_a_volume_client_error(vc, track, unique):
    v1 = track.volume(VolumePath(None, unique("tm1")))
    v2 = track.volume(VolumePath(None, unique("tm2")))
    vc.create_volume(v1)
    vc.create_volume(v2)
    auth = track.grant(v1, unique("tmid"))
    track.grant(v2, auth)
    vc.authorize(v1, auth, tenant_id="alpha")
    for other in ["beta", None]:
        with pytest.raises(CephFSVolumeClientError) as ei:
            vc.authorize(v2, auth, tenant_id=other)
        assert str(ei.value) == "auth ID: {} is already in use".format(auth)
        assert ei.value.code == -32000
        assert ei.value.data["type"] == "VolumeClientError"
    assert vc.get_authorized_ids(v2) is None
    assert vc.authorize(v2, auth, tenant_id="alpha")["auth_key"]


def test_errors_are_raised_as_the_library_classes(vc, track, unique, data_pool, cluster_env):
    with pytest.raises(ObjectNotFound) as ei:
        vc.get_object(data_pool, unique("missing"))
    assert (ei.value.errno, ei.value.errno_name) == (2, "ENOENT")
    with pytest.raises(ObjectNotFound):
        vc.get_object_and_version(data_pool, unique("missing"))
    with pytest.raises(ObjectNotFound):
        vc.get_object(unique("nopool"), "x")
    with pytest.raises(ObjectNotFound):
        vc.get_used_bytes(VolumePath(None, unique("nosuchvol")))

    # Bad identifiers: ValueError, as the library raised for bad names.
    for call in [lambda: vc.create_group("_bad"),
                 lambda: vc.create_group("a/b"),
                 lambda: vc.create_group("g.meta"),
                 lambda: vc.create_volume(VolumePath(None, "../escape")),
                 lambda: vc.authorize(VolumePath(None, "v"), "bad id")]:
        with pytest.raises(ValueError) as ei:
            call()
        assert isinstance(ei.value, InvalidParams)
        assert ei.value.code == -32602

    # A non-empty group.
    g = track.group(unique("neg"))
    vp = track.volume(VolumePath(g, unique("nev")))
    vc.create_group(g)
    vc.create_volume(vp)
    with pytest.raises(CephFSVolumeClientError):
        vc.destroy_group(g)

    # The service's own ID.
    with pytest.raises(CephFSVolumeClientError):
        vc.authorize(vp, cluster_env.id)

    # Checked locally, as the library does.
    with pytest.raises(RuntimeError):
        vc.create_snapshot_group(None, "s")
    with pytest.raises(RuntimeError):
        vc.destroy_snapshot_group(g, None)
    with pytest.raises(TypeError):
        vc.put_object(data_pool, "x", "not bytes")
    with pytest.raises(NotImplementedError):
        vc.get_mds_map()


def test_unknown_method_is_an_rpc_error(client):
    with pytest.raises(cephfs_volumed.MethodNotFound) as ei:
        client.call("no_such_method")
    assert ei.value.code == -32601
    with pytest.raises(InvalidParams):
        client.call("ping", unexpected=1)


# --------------------------------------------------------------------------
# Objects


def test_objects_bytes_in_and_out(vc, track, unique, data_pool):
    name = track.obj(data_pool, unique("pyobj"))
    data = bytes(range(256)) * 300 + b"\x00\n\r\"\\"
    assert vc.put_object(data_pool, name, data) is None
    got = vc.get_object(data_pool, name)
    assert isinstance(got, bytes) and got == data
    vc.put_object(data_pool, name, bytearray(b"\x00"))
    assert vc.get_object(data_pool, name) == b"\x00"
    vc.put_object(data_pool, name, b"")
    assert vc.get_object(data_pool, name) == b""
    d, ver = vc.get_object_and_version(data_pool, name)
    assert d == b"" and isinstance(ver, int) and ver > 0
    vc.delete_object(data_pool, name)
    with pytest.raises(ObjectNotFound):
        vc.get_object(data_pool, name)


def test_versioned_put(vc, track, unique, data_pool):
    name = track.obj(data_pool, unique("pyver"))
    vc.put_object(data_pool, name, b"v1")
    data, version = vc.get_object_and_version(data_pool, name)
    assert data == b"v1"
    vc.put_object_versioned(data_pool, name, b"v2", version=version)
    data2, version2 = vc.get_object_and_version(data_pool, name)
    assert data2 == b"v2" and version2 > version
    with pytest.raises(ClusterError) as ei:
        vc.put_object_versioned(data_pool, name, b"v3", version)
    assert ei.value.errno_name in ("ERANGE", "EOVERFLOW"), ei.value.data
    assert vc.get_object(data_pool, name) == b"v2"
    vc.put_object_versioned(data_pool, name, b"v4")
    assert vc.get_object(data_pool, name) == b"v4"


# --------------------------------------------------------------------------
# Snapshots and clones


def test_snapshots_and_clone(vc, track, unique):
    g = track.group(unique("sng"))
    src = track.volume(VolumePath(g, unique("snsrc")))
    dst = track.volume(VolumePath(g, unique("sndst")))
    vc.create_group(g)
    vc.create_volume(src)
    vc.create_volume(dst)

    snap = unique("snap")
    vc.create_snapshot_volume(src, snap)
    with pytest.raises(ClusterError) as ei:
        vc.create_snapshot_volume(src, snap)
    assert ei.value.errno == 17
    vc.create_snapshot_volume(src, unique("snapm"), mode=0o750)
    vc.clone_volume_to_existing(dst, src, snap)
    with pytest.raises(ObjectNotFound):
        vc.clone_volume_to_existing(dst, src, unique("nosnap"))
    vc.destroy_snapshot_volume(src, snap)
    vc.destroy_snapshot_volume(src, snap)
    with pytest.raises(ObjectNotFound):
        vc.create_snapshot_volume(VolumePath(g, unique("novol")), "s")

    gsnap = unique("gsnap")
    vc.create_snapshot_group(g, gsnap)
    vc.destroy_snapshot_group(g, gsnap)
    vc.destroy_snapshot_group(g, gsnap)
    with pytest.raises(ObjectNotFound):
        vc.create_snapshot_group(unique("nogroup"), "s")


# --------------------------------------------------------------------------
# Cluster-level calls


def test_get_mon_addrs(vc, cluster_env):
    addrs = vc.get_mon_addrs()
    assert isinstance(addrs, list) and addrs
    for a in addrs:
        host, _, port = a.rpartition(":")
        assert host and port.isdigit(), a


def test_evict_of_an_id_without_sessions(vc, track, unique):
    vc.evict(unique("nosessions"))
    vp = track.volume(VolumePath(None, unique("evv")))
    vc.create_volume(vp)
    vc.evict(unique("nosessions"), timeout=5, volume_path=vp)


def test_server_info_and_constructor_args_are_ignored(socket_path, cluster_env):
    with cephfs_volumed.CephFSVolumeClient("someone-else", "/nonexistent/ceph.conf", "othercluster",
                                           volume_prefix="/elsewhere", pool_ns_prefix="ns_",
                                           fs_name="otherfs", socket_path=socket_path) as vc:
        assert vc.connected
        info = vc.server_info()
        assert info["protocol_version"].split(".")[0] == "1"
        assert vc.volume_prefix == "/elsewhere" and vc.fs_name == "otherfs"
        assert vc.get_mon_addrs()
    assert not vc.connected
    vc2 = cephfs_volumed.CephFSVolumeClient(socket_path=socket_path)
    vc2.connect(premount_evict="manila")
    assert vc2.get_mon_addrs()
    vc2.disconnect()


# --------------------------------------------------------------------------
# Transport: concurrency, reconnection, timeouts


def test_twenty_threads_share_one_client(vc, track, unique, data_pool):
    names = [track.obj(data_pool, unique("conc")) for _ in range(20)]
    for i, n in enumerate(names):
        vc.put_object(data_pool, n, ("payload-%d-" % i).encode() * (i + 1))
    vp = track.volume(VolumePath(None, unique("concv")))
    vc.create_volume(vp)
    conn_before = vc._client._conn
    errors = []
    barrier = threading.Barrier(20)

    def worker(i):
        try:
            barrier.wait()
            for _ in range(15):
                assert vc._client.call("ping") == "pong"
                assert vc.get_used_bytes(vp) == 0
                assert vc.get_object(data_pool, names[i]) == ("payload-%d-" % i).encode() * (i + 1)
        except BaseException as e:  # noqa: B902
            errors.append((i, e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert vc._client._conn is conn_before, "one socket for all threads"


def test_low_level_client_pipelines_on_one_socket(socket_path):
    with cephfs_volumed.Client(socket_path) as probe:
        before = probe.server_info()["connections"]
    with cephfs_volumed.Client(socket_path, call_timeout=60) as c:
        results = []
        lock = threading.Lock()

        def worker():
            for _ in range(50):
                r = c.call("ping")
                with lock:
                    results.append(r)

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == ["pong"] * 1000
        # The probe client above was closed; this one adds exactly one.
        info = c.server_info()
        assert info["connections"] <= before + 1


def test_daemon_unavailable(tmp_path):
    c = cephfs_volumed.Client(str(tmp_path / "nothing.sock"), connect_timeout=1)
    with pytest.raises(DaemonUnavailable) as ei:
        c.call("ping")
    assert isinstance(ei.value, ConnectionError)
    assert isinstance(ei.value.__cause__, OSError)


def test_reconnect_after_the_daemon_restarts(daemon, vc):
    assert vc.get_mon_addrs()
    low = cephfs_volumed.Client(daemon.socket, call_timeout=60)
    assert low.call("ping") == "pong"
    old_conn = vc._client._conn

    daemon.kill()
    assert os.path.exists(daemon.socket), "a crashed daemon leaves its socket"
    # While the daemon is down, calls fail as connection errors.
    with pytest.raises(ConnectionError):
        vc.get_mon_addrs()
    daemon.restart()

    # Same client objects, next call works.
    assert vc.get_mon_addrs()
    assert vc._client._conn is not old_conn
    assert low.call("ping") == "pong"
    low.close()


def test_call_timeout_when_the_daemon_is_stopped(daemon):
    c = cephfs_volumed.Client(daemon.socket, call_timeout=1.0)
    assert c.call("ping") == "pong"
    _stop(daemon.proc.pid)
    try:
        t0 = time.monotonic()
        with pytest.raises(CallTimeout) as ei:
            c.call("ping")
        elapsed = time.monotonic() - t0
        assert 0.9 <= elapsed < 3.0, elapsed
        assert isinstance(ei.value, TimeoutError)
        assert not isinstance(ei.value, cephfs_volumed.ClusterTimeout)
        # Per-call override.
        t0 = time.monotonic()
        with pytest.raises(CallTimeout):
            c.request("ping", timeout=0.3)
        assert time.monotonic() - t0 < 2.0
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    # The connection survived; the late replies are dropped.
    assert c.call("ping") == "pong"
    assert c.call("server_info")["instance"] == daemon.instance
    c.close()


def test_read_timeout_declares_a_silent_connection_dead(daemon):
    c = cephfs_volumed.Client(daemon.socket, read_timeout=1.0)
    assert c.call("ping") == "pong"
    time.sleep(1.5)  # idle longer than read_timeout: nothing is waiting, so that is fine
    assert c.call("ping") == "pong"
    _stop(daemon.proc.pid)
    try:
        t0 = time.monotonic()
        with pytest.raises(CallTimeout):
            c.call("ping")
        assert time.monotonic() - t0 < 3.0
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert c.call("ping") == "pong"  # on a new connection
    c.close()


def test_close_wakes_waiting_calls(daemon):
    c = cephfs_volumed.Client(daemon.socket)
    assert c.call("ping") == "pong"
    _stop(daemon.proc.pid)
    box = []
    try:
        def waiter():
            try:
                box.append(c.call("ping"))
            except BaseException as e:  # noqa: B902
                box.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.3)
        c.close()
        t.join(5)
        assert not t.is_alive()
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert len(box) == 1 and isinstance(box[0], ConnectionLost), box
    assert c.call("ping") == "pong"  # reopens
    c.close()


def test_delete_twice_then_purge(make_daemon, unique):
    """delete_volume, delete_volume, purge_volume: each is idempotent, so the
    sequence must work (a share driver retrying a delete does exactly this).

    Run on a throwaway daemon: with cephfs-volumed 0.1.0 the second
    delete_volume calls rename(<volume dir>, <trash entry>) although the
    volume dir is gone; the rename fails with ENOENT, and libcephfs (16.2)
    then hangs every later operation on the trash path in that mount, so
    purge_volume never returns (and SIGTERM cannot stop the daemon). The
    Python library stats the trash entry first and never makes that rename.
    On a hang the throwaway daemon is killed and restarted under the same
    instance name, which evicts the wedged session.
    """
    d = make_daemon()
    d.start()
    wedged = False
    vp = VolumePath(None, unique("twice"))
    try:
        vc = cephfs_volumed.CephFSVolumeClient(socket_path=d.socket, call_timeout=20)
        vc.connect()
        vc.create_volume(vp)
        vc.delete_volume(vp)
        vc.delete_volume(vp)
        try:
            vc.purge_volume(vp)
        except CallTimeout:
            wedged = True
        vc.disconnect()
    finally:
        if wedged:
            d.kill()
            d.restart()  # evicts the old session (same --instance)
            c = cephfs_volumed.CephFSVolumeClient(socket_path=d.socket, call_timeout=60)
            c.connect()
            _quietly(c.purge_volume, vp)
            c.disconnect()
        assert d.stop() == 0, d.log_text()
    # Regression: a rename of a missing path used to wedge libcephfs here.
    assert not wedged, "purge_volume hung after delete_volume of an already deleted volume"
