"""Fixtures for the cephfs_volumed (Python shim) tests.

Run from the repository root with the system interpreter (Debian's
``ceph_volume_client`` only imports there; the shim itself needs nothing but
the standard library):

    /usr/bin/python3 -m pytest -q packaging/python/tests

The package is imported from the source tree (``packaging/python`` is put on
``sys.path``); nothing needs to be installed.

Environment:
- ``CEPH_DEV_DIR``: the dev cluster (default /tmp/cephfs-volumed-dev). Its
  ``env`` file supplies CEPH_CONF, CEPH_ID, CEPH_CLUSTER and CEPH_FS_NAME
  unless they are set in the environment.
- ``VOLUMED_BIN_DIR``: where ``cephfs-volumed`` is (default ``<repo>/.build/debug``).
- ``CI``: when set, a missing cluster fails the tests instead of skipping them.

One daemon is started per session, with ``--instance pyshim-<random>`` on a
socket in a temporary directory, and stopped with SIGTERM at the end (its
exit status must be 0).
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(TESTS_DIR)                          # packaging/python
REPO_ROOT = os.path.dirname(os.path.dirname(PACKAGE_ROOT))         # the repository
if PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, PACKAGE_ROOT)

import cephfs_volumed  # noqa: E402

DEFAULT_DEV_DIR = "/tmp/cephfs-volumed-dev"


# --------------------------------------------------------------------------
# Cluster environment


@dataclass(frozen=True)
class ClusterEnv:
    dev_dir: str
    conf: str
    id: str
    cluster: str
    fs_name: str


def _read_env_file(path):
    """The ``export NAME='value'`` lines of the dev cluster's env file."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if line.startswith("export "):
                    line = line[len("export "):]
                name, sep, value = line.partition("=")
                if not sep:
                    continue
                try:
                    parts = shlex.split(value)
                except ValueError:
                    continue
                out[name.strip()] = parts[0] if parts else ""
    except OSError:
        pass
    return out


def cluster_env_from_environment():
    dev_dir = os.environ.get("CEPH_DEV_DIR") or DEFAULT_DEV_DIR
    file_env = _read_env_file(os.path.join(dev_dir, "env"))

    def get(name, default):
        return os.environ.get(name) or file_env.get(name) or default

    return ClusterEnv(
        dev_dir=dev_dir,
        conf=get("CEPH_CONF", os.path.join(dev_dir, "ceph.conf")),
        id=get("CEPH_ID", "volumed"),
        cluster=get("CEPH_CLUSTER", "ceph"),
        fs_name=get("CEPH_FS_NAME", "cephfs"),
    )


def _no_cluster(reason):
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cluster_env():
    env = cluster_env_from_environment()
    if not os.path.exists(env.conf):
        _no_cluster("no dev cluster: {} does not exist (set CEPH_DEV_DIR or CEPH_CONF)".format(env.conf))
    return env


def ceph_cli(env, *args, check=True, timeout=60):
    cmd = [shutil.which("ceph") or "/usr/bin/ceph", "-c", env.conf, "--id", env.id, "--cluster", env.cluster, "-f", "json"] + list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        if check:
            raise RuntimeError("{} failed ({}): {}".format(" ".join(cmd), p.returncode, p.stderr.strip()))
        return None
    out = p.stdout.strip()
    return json.loads(out) if out else None


@pytest.fixture(scope="session")
def data_pool(cluster_env):
    """The file system's first data pool, for the object tests."""
    try:
        for fs in ceph_cli(cluster_env, "fs", "ls") or []:
            if fs.get("name") == cluster_env.fs_name and fs.get("data_pools"):
                return fs["data_pools"][0]
    except (OSError, RuntimeError, ValueError):
        pass
    return "cephfs_data"


# --------------------------------------------------------------------------
# The daemon


def volumed_bin():
    d = os.environ.get("VOLUMED_BIN_DIR") or os.path.join(REPO_ROOT, ".build", "debug")
    return os.path.join(d, "cephfs-volumed")


class VolumedDaemon:
    """A cephfs-volumed process on a private socket. ``restart()`` starts a new
    process on the same socket with the same instance name."""

    def __init__(self, env):
        self.env = env
        self.workdir = tempfile.mkdtemp(prefix="pyshim-")
        self.socket = os.path.join(self.workdir, "s.sock")
        self.instance = "pyshim-" + uuid.uuid4().hex[:8]
        self.log_path = os.path.join(self.workdir, "daemon.log")
        self.proc = None
        self._log = None

    def start(self, timeout=90):
        exe = volumed_bin()
        if not os.access(exe, os.X_OK):
            pytest.fail("{} is not built (run `swift build` or set VOLUMED_BIN_DIR)".format(exe))
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [exe, "--socket", self.socket, "--conf", self.env.conf, "--id", self.env.id,
             "--cluster", self.env.cluster, "--fs-name", self.env.fs_name, "--instance", self.instance],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("cephfs-volumed exited with {} during start-up:\n{}".format(
                    self.proc.returncode, self.log_text()))
            if os.path.exists(self.socket):
                c = cephfs_volumed.Client(self.socket, connect_timeout=2, call_timeout=10)
                try:
                    if c.call("ping") == "pong":
                        return
                except (OSError, cephfs_volumed.RpcError) as e:
                    last = e
                finally:
                    c.close()
            time.sleep(0.1)
        self.proc.kill()
        self.proc.wait()
        pytest.fail("cephfs-volumed did not answer ping within {}s ({}):\n{}".format(
            timeout, last, self.log_text()))

    def stop(self, timeout=60):
        """SIGTERM, and the exit status. A daemon that does not exit is
        killed and its CephFS sessions evicted, so that its caps do not hold
        up other clients of the shared cluster."""
        try:
            os.kill(self.proc.pid, signal.SIGCONT)  # in case a test left it stopped
        except OSError:
            pass
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("cephfs-volumed did not exit within {}s of SIGTERM:\n{}".format(
                timeout, self.log_text()))
        finally:
            self._log.close()

    def kill(self, evict=True):
        """SIGKILL: the socket file stays behind, as after a crash. With
        ``evict``, the dead daemon's sessions are evicted (restart() does that
        too, as the daemon evicts its own instance's sessions)."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        if evict:
            self.evict_sessions()

    def evict_sessions(self):
        for rank in range(3):
            try:
                subprocess.run(
                    [shutil.which("ceph") or "/usr/bin/ceph", "-c", self.env.conf, "--id", self.env.id,
                     "--cluster", self.env.cluster, "tell", "mds.{}:{}".format(self.env.fs_name, rank),
                     "session", "evict", "client_metadata.volumed_instance=" + self.instance],
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                pass

    def restart(self):
        self.start()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-8000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def daemon(cluster_env):
    d = VolumedDaemon(cluster_env)
    d.start()
    yield d
    if d.proc.poll() is None:
        rc = d.stop()
        assert rc == 0, "cephfs-volumed exited with {} after SIGTERM:\n{}".format(rc, d.log_text())


@pytest.fixture(scope="session")
def make_daemon(cluster_env):
    """make_daemon() -> a VolumedDaemon of its own (not started), for tests
    that must not disturb the session's daemon."""
    return lambda: VolumedDaemon(cluster_env)


@pytest.fixture(scope="session")
def socket_path(daemon):
    return daemon.socket


@pytest.fixture
def vc(socket_path, cluster_env):
    """A connected drop-in CephFSVolumeClient, constructed as a v6 caller would."""
    c = cephfs_volumed.CephFSVolumeClient(
        auth_id=cluster_env.id, conf_path=cluster_env.conf, cluster_name=cluster_env.cluster,
        fs_name=cluster_env.fs_name, socket_path=socket_path, call_timeout=120)
    c.connect()
    yield c
    c.disconnect()


@pytest.fixture
def client(socket_path):
    c = cephfs_volumed.Client(socket_path, call_timeout=120)
    yield c
    c.close()


@pytest.fixture
def unique():
    """unique("vol") -> "vol-<10 hex digits>", different on every call."""
    def make(prefix):
        return "{}-{}".format(prefix, uuid.uuid4().hex[:10])
    return make
