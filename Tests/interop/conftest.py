"""Fixtures for the interoperability tests between cephfs-volumed and Ceph's
Python ``ceph_volume_client`` (v6).

Run with Debian's interpreter (the module imports only there):

    CEPH_DEV_DIR=/tmp/cephfs-volumed-dev /usr/bin/python3 -m pytest -q Tests/interop

Environment:
- ``CEPH_DEV_DIR``: the dev cluster directory (default /tmp/cephfs-volumed-dev).
- ``CEPH_CONF``, ``CEPH_ID``, ``CEPH_CLUSTER``, ``CEPH_FS_NAME``: override what
  is derived from CEPH_DEV_DIR (``<dir>/ceph.conf``, ``volumed``, ``ceph``,
  ``cephfs``).
- ``VOLUMED_BIN_DIR``: where ``cephfs-volumed`` is (default ``<repo>/.build/debug``).
- ``VOLUMED_INTEROP_VOLUME_PREFIX``: the volume prefix both sides use (default
  /volumes); ``auto`` for a private one per run, removed at the end.
- ``VOLUMED_INTEROP_ISOLATE_INSTANCE``: 0 to start the daemon with its default
  instance name (the host name). By default it gets a unique one (``--instance``,
  or a private UTS namespace for binaries without that option as root), because
  any other cephfs-volumed started on this host with the same cephx ID and
  instance name evicts this daemon's CephFS session at its start-up.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DEV_DIR = "/tmp/cephfs-volumed-dev"

# Both implementations default to /volumes. On a cluster shared with other
# runs, VOLUMED_INTEROP_VOLUME_PREFIX=auto gives this run a private prefix
# (removed at the end), so that nobody else's `recover` (every daemon and
# every Python client runs it at start-up) repairs the dirty states the
# recover tests craft. Any other value is used as the prefix itself.
_prefix_setting = os.environ.get("VOLUMED_INTEROP_VOLUME_PREFIX") or "/volumes"
PRIVATE_PREFIX = _prefix_setting == "auto"
VOLUME_PREFIX = "/volumes-interop-" + uuid.uuid4().hex[:10] if PRIVATE_PREFIX else _prefix_setting.rstrip("/")
NS_PREFIX = "fsvolumens_"


# --------------------------------------------------------------------------
# Cluster environment


@dataclass(frozen=True)
class ClusterEnv:
    dev_dir: str
    conf: str
    id: str
    cluster: str
    fs_name: str


def _cluster_env():
    dev_dir = os.environ.get("CEPH_DEV_DIR") or DEFAULT_DEV_DIR
    return ClusterEnv(
        dev_dir=dev_dir,
        conf=os.environ.get("CEPH_CONF") or os.path.join(dev_dir, "ceph.conf"),
        id=os.environ.get("CEPH_ID") or "volumed",
        cluster=os.environ.get("CEPH_CLUSTER") or "ceph",
        fs_name=os.environ.get("CEPH_FS_NAME") or "cephfs",
    )


@pytest.fixture(scope="session")
def cluster_env():
    env = _cluster_env()
    if not os.path.exists(env.conf):
        pytest.skip("no dev cluster: {} does not exist (set CEPH_DEV_DIR or CEPH_CONF)".format(env.conf))
    return env


# --------------------------------------------------------------------------
# `ceph` command line


class CephCommandError(Exception):
    def __init__(self, args, returncode, stdout, stderr):
        super().__init__("ceph {} failed ({}): {}".format(" ".join(args), returncode, stderr.strip()))
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Ceph:
    """Runs ``/usr/bin/ceph -c $CEPH_CONF --id <service id> -f json ...``."""

    def __init__(self, env):
        self.env = env

    def __call__(self, *args, check=True, timeout=60):
        cmd = ["/usr/bin/ceph", "-c", self.env.conf, "--id", self.env.id, "--cluster", self.env.cluster,
               "-f", "json"] + list(args)
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            if check:
                raise CephCommandError(list(args), p.returncode, p.stdout, p.stderr)
            return None
        out = p.stdout.strip()
        return json.loads(out) if out else None

    def auth_get(self, auth_id):
        """The entity's caps as a dict, or None when ``client.<auth_id>`` does not exist."""
        cmd = ["/usr/bin/ceph", "-c", self.env.conf, "--id", self.env.id, "--cluster", self.env.cluster,
               "-f", "json", "auth", "get", "client." + auth_id]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            if p.returncode == 2 or "ENOENT" in p.stderr or "failed to find" in p.stderr:
                return None
            raise CephCommandError(cmd[7:], p.returncode, p.stdout, p.stderr)
        entities = json.loads(p.stdout)
        assert len(entities) == 1
        return entities[0]

    def caps(self, auth_id):
        e = self.auth_get(auth_id)
        return None if e is None else dict(e["caps"])

    def auth_rm(self, auth_id):
        self("auth", "rm", "client." + auth_id, check=False)


@pytest.fixture(scope="session")
def ceph(cluster_env):
    return Ceph(cluster_env)


def cap_tokens(s):
    """The comma-separated grants of a cap string, stripped (order kept)."""
    return [t.strip() for t in (s or "").split(",") if t.strip()]


# --------------------------------------------------------------------------
# The daemon and its JSON-RPC client


def volumed_bin():
    d = os.environ.get("VOLUMED_BIN_DIR") or os.path.join(REPO_ROOT, ".build", "debug")
    return os.path.join(d, "cephfs-volumed")


def isolate_instance():
    """Whether to give the daemon a unique instance name (see Daemon.start).
    VOLUMED_INTEROP_ISOLATE_INSTANCE=0 turns it off; on by default."""
    v = os.environ.get("VOLUMED_INTEROP_ISOLATE_INSTANCE")
    return v is None or v not in ("", "0", "false", "no")


def _supports_instance_option(exe):
    try:
        p = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--instance" in p.stdout + p.stderr


class RpcError(Exception):
    """A JSON-RPC error reply. ``type``/``errno``/``errno_name`` come from ``data``
    (engine errors, code -32000); they are None otherwise."""

    def __init__(self, method, error):
        self.method = method
        self.code = error.get("code")
        self.message = error.get("message")
        data = error.get("data") or {}
        self.data = data
        self.type = data.get("type") if isinstance(data, dict) else None
        self.errno = data.get("errno") if isinstance(data, dict) else None
        self.errno_name = data.get("errno_name") if isinstance(data, dict) else None
        super().__init__("{}: {} {} (type={}, errno={}/{})".format(
            method, self.code, self.message, self.type, self.errno, self.errno_name))


class RpcClient:
    """A tiny line-delimited JSON-RPC 2.0 client over a Unix socket. One
    request is outstanding at a time (calls from several threads are
    serialised by a lock); make one client per thread for real concurrency."""

    def __init__(self, path, timeout=120):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.lock = threading.Lock()
        self.next_id = 1

    def call(self, method, **params):
        with self.lock:
            rid = self.next_id
            self.next_id += 1
            req = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
            self.sock.sendall(json.dumps(req).encode() + b"\n")
            line = self.file.readline()
            if not line:
                raise ConnectionError("daemon closed the connection during {}".format(method))
            reply = json.loads(line)
        assert reply.get("jsonrpc") == "2.0", reply
        assert reply.get("id") == rid, reply
        if "error" in reply:
            raise RpcError(method, reply["error"])
        return reply["result"]

    def close(self):
        try:
            self.file.close()
        finally:
            self.sock.close()


class Daemon:
    def __init__(self, env):
        self.env = env
        self.workdir = tempfile.mkdtemp(prefix="volumed-interop-")
        self.socket = os.path.join(self.workdir, "s.sock")
        self.log_path = os.path.join(self.workdir, "daemon.log")
        self.proc = None

    def start(self, timeout=60):
        exe = volumed_bin()
        if not os.access(exe, os.X_OK):
            pytest.fail("{} is not built (run `swift build` or set VOLUMED_BIN_DIR)".format(exe))
        self.log = open(self.log_path, "wb")
        argv = [exe, "--socket", self.socket, "--conf", self.env.conf, "--id", self.env.id,
                "--cluster", self.env.cluster, "--fs-name", self.env.fs_name]
        if VOLUME_PREFIX != "/volumes":
            argv += ["--volume-prefix", VOLUME_PREFIX]
        self.instance = None
        if isolate_instance():
            # The daemon names its instance after the host name by default and, at
            # start-up, evicts every CephFS session of its cephx ID with that
            # instance name: any other cephfs-volumed started on this host with the
            # same ID (another test run on a shared dev cluster) would evict ours.
            # Give this one a unique instance name: with --instance when the
            # binary has it, else with a private UTS namespace and host name
            # (`unshare` execs in place, so the process and exit status are the daemon's).
            self.instance = "interop-" + uuid.uuid4().hex[:12]
            if _supports_instance_option(exe):
                argv += ["--instance", self.instance]
            elif os.geteuid() == 0 and shutil.which("unshare"):
                argv = ["unshare", "--uts", "/bin/sh", "-c", 'hostname "$0" && exec "$@"', self.instance] + argv
            else:
                self.instance = None
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("cephfs-volumed exited with {} during start-up:\n{}".format(
                    self.proc.returncode, self.log_text()))
            if os.path.exists(self.socket):
                try:
                    c = RpcClient(self.socket, timeout=10)
                    try:
                        if c.call("ping") == "pong":
                            return
                    finally:
                        c.close()
                except (OSError, RpcError, ValueError) as e:
                    last = e
            time.sleep(0.1)
        self.proc.kill()
        pytest.fail("cephfs-volumed did not answer ping within {}s ({}):\n{}".format(timeout, last, self.log_text()))

    def client(self):
        return RpcClient(self.socket)

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("cephfs-volumed did not exit within {}s of SIGTERM:\n{}".format(
                timeout, self.log_text()))
        finally:
            self.log.close()
        return rc

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-8000:]
        except OSError:
            return ""


@pytest.fixture(scope="module")
def daemon(cluster_env):
    d = Daemon(cluster_env)
    d.start()
    yield d
    rc = d.stop()
    assert rc == 0, "cephfs-volumed exited with {} after SIGTERM:\n{}".format(rc, d.log_text())
    assert not os.path.exists(d.socket), "the daemon left its socket behind"
    shutil.rmtree(d.workdir, ignore_errors=True)  # kept (with daemon.log) when the daemon misbehaved


@pytest.fixture(scope="module")
def rpc(daemon):
    c = daemon.client()
    yield c
    c.close()


# --------------------------------------------------------------------------
# The Python v6 client and a raw CephFS mount


@pytest.fixture(scope="module")
def vc(cluster_env):
    from ceph_volume_client import CephFSVolumeClient

    assert CephFSVolumeClient.version == 6
    client = CephFSVolumeClient(auth_id=cluster_env.id, conf_path=cluster_env.conf,
                                cluster_name=cluster_env.cluster, fs_name=cluster_env.fs_name,
                                volume_prefix=VOLUME_PREFIX)
    client.connect()
    yield client
    client.disconnect()


class RawFS:
    """A plain libcephfs mount to read and write metadata files directly."""

    def __init__(self, env):
        import cephfs
        self.cephfs = cephfs
        self.fs = cephfs.LibCephFS(conffile=env.conf, auth_id=env.id)
        self.fs.mount(filesystem_name=env.fs_name.encode())

    def exists(self, path):
        try:
            self.fs.stat(path)
            return True
        except self.cephfs.ObjectNotFound:
            return False

    def read_bytes(self, path):
        """The file's bytes, or None when it does not exist."""
        try:
            fd = self.fs.open(path, "r")
        except self.cephfs.ObjectNotFound:
            return None
        try:
            chunks = []
            off = 0
            while True:
                b = self.fs.read(fd, off, 1 << 20)
                if not b:
                    break
                chunks.append(b)
                off += len(b)
            return b"".join(chunks)
        finally:
            self.fs.close(fd)

    def read_json(self, path):
        """json.loads of the file, as the Python client reads it; None when the
        file is missing or empty."""
        b = self.read_bytes(path)
        if not b:
            return None
        return json.loads(b.decode())

    def write_bytes(self, path, data):
        """Truncate and write, as the Python client's _metadata_set does."""
        fd = self.fs.open(path, "w", 0o755)
        try:
            self.fs.write(fd, data, 0)
            self.fs.fsync(fd, 0)
        finally:
            self.fs.close(fd)

    def write_json(self, path, obj):
        self.write_bytes(path, json.dumps(obj).encode())

    def unmount(self):
        try:
            self.fs.unmount()
        finally:
            self.fs.shutdown()


    def rmtree(self, path):
        """Removes a tree (no snapshots inside), best effort."""
        try:
            d = self.fs.opendir(path)
        except self.cephfs.ObjectNotFound:
            return
        names = []
        try:
            while True:
                e = self.fs.readdir(d)
                if not e:
                    break
                if e.d_name not in (b".", b".."):
                    names.append((e.d_name.decode(), e.is_dir()))
        finally:
            self.fs.closedir(d)
        for name, is_dir in names:
            child = path + "/" + name
            if is_dir:
                self.rmtree(child)
            else:
                self.fs.unlink(child)
        self.fs.rmdir(path)


@pytest.fixture(scope="session", autouse=True)
def private_prefix_cleanup(cluster_env):
    """Removes the private volume prefix (VOLUMED_INTEROP_VOLUME_PREFIX=auto) at the end."""
    yield
    if PRIVATE_PREFIX:
        r = RawFS(cluster_env)
        try:
            r.rmtree(VOLUME_PREFIX)
        finally:
            r.unmount()


@pytest.fixture(scope="module")
def rawfs(cluster_env):
    r = RawFS(cluster_env)
    yield r
    r.unmount()


# --------------------------------------------------------------------------
# Names and paths


@pytest.fixture
def unique():
    """unique("vol") -> "vol-<10 hex digits>", different on every call."""
    def make(prefix):
        return "{}-{}".format(prefix, uuid.uuid4().hex[:10])
    return make


def vp(group_id, volume_id):
    """A wire volume_path."""
    return {"group_id": group_id, "volume_id": volume_id}


def volume_dir(group_id, volume_id):
    return "{}/{}/{}".format(VOLUME_PREFIX, group_id if group_id is not None else "_nogroup", volume_id)


def auth_meta_path(auth_id):
    return "{}/${}.meta".format(VOLUME_PREFIX, auth_id)


def volume_meta_path(group_id, volume_id):
    return "{}/_{}:{}.meta".format(VOLUME_PREFIX, group_id if group_id else "", volume_id)


def meta_key(group_id, volume_id):
    """How auth metadata names a volume: str(VolumePath)."""
    return "{}/{}".format(group_id, volume_id)
