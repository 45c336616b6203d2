"""Drop-in replacement for ``ceph_volume_client.CephFSVolumeClient`` (v6).

Change only the import::

    # from ceph_volume_client import CephFSVolumeClient, VolumePath
    from cephfs_volumed import CephFSVolumeClient, VolumePath

and every call goes to the cephfs-volumed daemon over its Unix socket instead
of to librados and libcephfs in this process.

What differs from the library:

* **Identity and configuration are the daemon's.** ``auth_id``,
  ``conf_path``, ``cluster_name``, ``rados``, ``volume_prefix``,
  ``pool_ns_prefix`` and ``fs_name`` are accepted (so existing constructor
  calls keep working), stored as attributes, and otherwise ignored: the
  daemon talks to Ceph as its own ``--id`` with its own ``--conf``,
  ``--fs-name``, ``--volume-prefix`` and ``--namespace-prefix``. The daemon
  does not expose those settings, so a mismatch cannot be detected; values
  that differ from the library's defaults are logged at debug level.
* ``connect(premount_evict=...)`` opens the socket and pings the daemon.
  ``premount_evict`` is ignored: it existed so that a restarted client could
  evict the stale sessions of its previous instance, and the daemon manages
  its own sessions. The daemon also runs ``recover()`` itself at start-up.
* ``get_mds_map()`` raises :class:`NotImplementedError`: the daemon does not
  expose the MDS map (run ``ceph fs dump`` instead).
* ``clone_volume_to_existing`` is implemented by the daemon (the library
  raised NotImplementedError).
* Errors: the same exception classes (importable from this package), raised
  from the daemon's error type. Where the library let ``cephfs.ObjectNotFound``
  or ``rados.ObjectNotFound`` through, this raises
  :class:`cephfs_volumed.ObjectNotFound`; other ``cephfs.Error`` /
  ``rados.Error`` become :class:`ClusterError`. A bad identifier raises
  :class:`InvalidParams`, a :class:`ValueError`. Losing the daemon raises
  :class:`ConnectionLost` / :class:`DaemonUnavailable` (``ConnectionError``);
  a call that outlives ``call_timeout`` raises :class:`CallTimeout`.
* There is no ``fs`` or ``rados`` handle (``self.fs`` is always None, and
  ``self.rados`` is whatever was passed in, unused).
"""

import base64
import logging

from .client import Client
from .exceptions import CephFSVolumeClientError

__all__ = ["CephFSVolumeClient", "VolumePath", "NO_GROUP_NAME", "META_FILE_EXT"]

log = logging.getLogger(__name__)

# Reserved volume group name which we use in paths for volumes
# that are not assigned to a group (i.e. created with group=None)
NO_GROUP_NAME = "_nogroup"

# Filename extensions for meta files.
META_FILE_EXT = ".meta"

RADOS_TIMEOUT = 10

CEPHFSVOLUMECLIENT_VERSION_HISTORY = """

    CephFSVolumeClient Version History:

    * 1 - Initial version
    * 2 - Added get_object, put_object, delete_object methods to CephFSVolumeClient
    * 3 - Allow volumes to be created without RADOS namespace isolation
    * 4 - Added get_object_and_version, put_object_versioned method to CephFSVolumeClient
    * 5 - Disallow authorize API for users not created by CephFSVolumeClient
    * 6 - The 'volumes' key in auth-metadata-file is changed to 'subvolumes'.
"""


class VolumePath(object):
    """
    Identify a volume's path as group->volume
    The Volume ID is a unique identifier, but this is a much more
    helpful thing to pass around.
    """
    def __init__(self, group_id, volume_id):
        self.group_id = group_id
        self.volume_id = volume_id
        assert self.group_id != NO_GROUP_NAME
        assert self.volume_id != "" and self.volume_id is not None

    def __str__(self):
        return "{0}/{1}".format(self.group_id, self.volume_id)

    def __repr__(self):
        return "VolumePath({0!r}, {1!r})".format(self.group_id, self.volume_id)

    def __eq__(self, other):
        if not (hasattr(other, "group_id") and hasattr(other, "volume_id")):
            return NotImplemented
        return (self.group_id, self.volume_id) == (other.group_id, other.volume_id)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash((self.group_id, self.volume_id))


def _wire_path(volume_path):
    """A VolumePath (this module's, ceph_volume_client's, or anything with
    ``group_id`` and ``volume_id``) as the wire's VolumePath object."""
    if volume_path is None:
        return None
    if isinstance(volume_path, dict):
        return {"group_id": volume_path.get("group_id"), "volume_id": volume_path.get("volume_id")}
    try:
        return {"group_id": volume_path.group_id, "volume_id": volume_path.volume_id}
    except AttributeError:
        raise TypeError("volume_path must be a VolumePath, not {0}".format(type(volume_path).__name__))


def _bytes(data, name="data"):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(data)).decode("ascii")
    raise TypeError("{0} must be bytes, not {1}".format(name, type(data).__name__))


def _unbase64(s):
    return base64.b64decode(s.encode("ascii") if isinstance(s, str) else s, validate=True)


class CephFSVolumeClient(object):
    """
    The ``ceph_volume_client.CephFSVolumeClient`` API (v6), served by the
    cephfs-volumed daemon.

    Refer to volumes with VolumePath, which specifies the volume and group
    IDs (both strings). The group ID may be None.

    Constructor parameters are those of v6 (see the module docstring for
    which are ignored), plus, keyword-only:

    :param socket_path: the daemon's socket (default ``$CEPHFS_VOLUMED_SOCKET``
        or ``/run/cephfs-volumed/volumed.sock``).
    :param connect_timeout: seconds to open the socket.
    :param call_timeout: seconds one call may take before :class:`CallTimeout`
        (None: no limit, as with the library; ``evict`` always gets at least
        its own ``timeout`` plus a margin).
    """

    # Current version
    version = 6

    # Where shall we create our volumes? (the daemon's settings govern)
    POOL_PREFIX = "fsvolume_"
    DEFAULT_VOL_PREFIX = "/volumes"
    DEFAULT_NS_PREFIX = "fsvolumens_"

    def __init__(self, auth_id=None, conf_path=None, cluster_name=None,
                 volume_prefix=None, pool_ns_prefix=None, rados=None,
                 fs_name=None, *, socket_path=None, connect_timeout=5.0,
                 call_timeout=None):
        self.fs = None
        self.fs_name = fs_name
        self.connected = False

        self.conf_path = conf_path
        self.cluster_name = cluster_name
        self.auth_id = auth_id

        self.rados = rados
        self.own_rados = rados is None

        self.volume_prefix = volume_prefix if volume_prefix else self.DEFAULT_VOL_PREFIX
        self.pool_ns_prefix = pool_ns_prefix if pool_ns_prefix else self.DEFAULT_NS_PREFIX

        self.socket_path = socket_path
        self._client = None
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout

        ignored = []
        if auth_id is not None:
            ignored.append("auth_id={0!r}".format(auth_id))
        if conf_path is not None:
            ignored.append("conf_path={0!r}".format(conf_path))
        if cluster_name is not None:
            ignored.append("cluster_name={0!r}".format(cluster_name))
        if rados is not None:
            ignored.append("rados=<{0}>".format(type(rados).__name__))
        if volume_prefix and volume_prefix != self.DEFAULT_VOL_PREFIX:
            ignored.append("volume_prefix={0!r}".format(volume_prefix))
        if pool_ns_prefix and pool_ns_prefix != self.DEFAULT_NS_PREFIX:
            ignored.append("pool_ns_prefix={0!r}".format(pool_ns_prefix))
        if fs_name is not None:
            ignored.append("fs_name={0!r}".format(fs_name))
        if ignored:
            log.debug("CephFSVolumeClient: ignoring %s: cephfs-volumed uses its own "
                      "identity, configuration, file system and prefixes", ", ".join(ignored))

    # -- connection

    def _call(self, method, _timeout=Client._DEFAULT, **params):
        client = self._client
        if client is None:
            raise CephFSVolumeClientError("not connected to cephfs-volumed: call connect() first")
        return client.request(method, params, timeout=_timeout)

    def connect(self, premount_evict = None):
        """
        Open the daemon's socket and check that it answers.

        :param premount_evict: accepted for compatibility and ignored: the
                               daemon evicts its own stale sessions.
        """
        if premount_evict is not None:
            log.debug("connect: ignoring premount_evict=%r (cephfs-volumed manages its own sessions)",
                      premount_evict)
        if self._client is None:
            self._client = Client(self.socket_path, connect_timeout=self._connect_timeout,
                                  call_timeout=self._call_timeout)
        try:
            pong = self._client.call("ping")
        except BaseException:
            self._client.close()
            self._client = None
            raise
        if pong != "pong":
            self._client.close()
            self._client = None
            raise CephFSVolumeClientError("unexpected ping reply from cephfs-volumed: {0!r}".format(pong))
        self.socket_path = self._client.socket_path
        self.connected = True

    def disconnect(self):
        log.info("disconnect")
        client, self._client = getattr(self, "_client", None), None
        self.connected = False
        if client is not None:
            client.close()

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.disconnect()

    def __del__(self):
        try:
            self.disconnect()
        except Exception:
            pass

    # -- daemon

    def server_info(self):
        """The daemon's ``server_info`` (not in the library): version,
        protocol_version, fsid, uptime_seconds, connections, in_flight,
        instance."""
        return self._call("server_info")

    def recover(self):
        """Finish or undo interrupted auth updates. The daemon also does this
        at start-up, so ``connect()`` does not call it."""
        self._call("recover")

    def get_mds_map(self):
        """Not available through cephfs-volumed."""
        raise NotImplementedError(
            "get_mds_map is not available through cephfs-volumed: the daemon does not expose "
            "the MDS map (use `ceph fs dump`)")

    def get_mon_addrs(self):
        log.info("get_mon_addrs")
        return list(self._call("get_mon_addrs"))

    # -- groups and volumes

    def evict(self, auth_id, timeout=30, volume_path=None):
        """
        Evict all clients based on the authorization ID and optionally based on
        the volume path mounted.  Assumes that the authorization key has been
        revoked prior to calling this function.

        This operation can throw an exception if the mon cluster is unresponsive, or
        any individual MDS daemon is unresponsive for longer than the timeout passed in.
        """
        call_timeout = Client._DEFAULT
        if self._call_timeout is not None and timeout is not None:
            call_timeout = max(self._call_timeout, float(timeout) + 30.0)
        self._call("evict", _timeout=call_timeout, auth_id=auth_id,
                   volume_path=_wire_path(volume_path), timeout=timeout)

    def create_group(self, group_id, mode=0o755):
        self._call("create_group", group_id=group_id, mode=mode)

    def destroy_group(self, group_id):
        self._call("destroy_group", group_id=group_id)

    def create_volume(self, volume_path, size=None, data_isolated=False, namespace_isolated=True,
                      mode=0o755):
        """
        Set up metadata, pools and auth for a volume.

        This function is idempotent.  It is safe to call this again
        for an already-created volume, even if it is in use.

        :param volume_path: VolumePath instance
        :param size: In bytes, or None for no size limit
        :param data_isolated: If true, create a separate OSD pool for this volume
        :param namespace_isolated: If true, use separate RADOS namespace for this volume
        :return: {'mount_path': <path of the volume in the file system>}
        """
        result = self._call("create_volume", volume_path=_wire_path(volume_path), size=size,
                            data_isolated=bool(data_isolated), namespace_isolated=bool(namespace_isolated),
                            mode=mode)
        return {'mount_path': result['mount_path']}

    def delete_volume(self, volume_path, data_isolated=False):
        """
        Make a volume inaccessible to guests.  This function is
        idempotent.  This is the fast part of tearing down a volume: you must
        also later call purge_volume, which is the slow part.

        :param volume_path: Same identifier used in create_volume
        :return:
        """
        self._call("delete_volume", volume_path=_wire_path(volume_path), data_isolated=bool(data_isolated))

    def purge_volume(self, volume_path, data_isolated=False):
        """
        Finish clearing up a volume that was previously passed to delete_volume.  This
        function is idempotent.
        """
        self._call("purge_volume", volume_path=_wire_path(volume_path), data_isolated=bool(data_isolated))

    # -- auth

    def authorize(self, volume_path, auth_id, readonly=False, tenant_id=None, allow_existing_id=False):
        """
        Get-or-create a Ceph auth identity for `auth_id` and grant them access
        to
        :param volume_path:
        :param auth_id:
        :param readonly:
        :param tenant_id: Optionally provide a stringizable object to
                          restrict any created cephx IDs to other callers
                          passing the same tenant ID.
        :allow_existing_id: Optionally authorize existing auth-ids not
                            created by ceph_volume_client
        :return: {'auth_key': <the cephx key when tenant_id was given, else None>}
        """
        if tenant_id is not None and not isinstance(tenant_id, str):
            tenant_id = str(tenant_id)
        result = self._call("authorize", volume_path=_wire_path(volume_path), auth_id=auth_id,
                            readonly=bool(readonly), tenant_id=tenant_id,
                            allow_existing_id=bool(allow_existing_id))
        return {'auth_key': result.get('auth_key')}

    def deauthorize(self, volume_path, auth_id):
        self._call("deauthorize", volume_path=_wire_path(volume_path), auth_id=auth_id)

    def get_authorized_ids(self, volume_path):
        """
        Expose a list of auth IDs that have access to a volume.

        return: a list of (auth_id, access_level) tuples, where
                the access_level can be 'r' , or 'rw'.
                None if no auth ID is given access to the volume.
        """
        result = self._call("get_authorized_ids", volume_path=_wire_path(volume_path))
        if result is None:
            return None
        return [tuple(pair) for pair in result]

    # -- quotas and usage

    def get_used_bytes(self, volume_path):
        return int(self._call("get_used_bytes", volume_path=_wire_path(volume_path)))

    def set_max_bytes(self, volume_path, max_bytes):
        # The library writes 0 for any falsy max_bytes; null means the same.
        self._call("set_max_bytes", volume_path=_wire_path(volume_path),
                   max_bytes=max_bytes if max_bytes else None)

    # -- snapshots

    def create_snapshot_volume(self, volume_path, snapshot_name, mode=0o755):
        self._call("create_snapshot_volume", volume_path=_wire_path(volume_path),
                   snapshot_name=snapshot_name, mode=mode)

    def destroy_snapshot_volume(self, volume_path, snapshot_name):
        self._call("destroy_snapshot_volume", volume_path=_wire_path(volume_path),
                   snapshot_name=snapshot_name)

    def create_snapshot_group(self, group_id, snapshot_name, mode=0o755):
        if group_id is None:
            raise RuntimeError("Group ID may not be None")

        self._call("create_snapshot_group", group_id=group_id, snapshot_name=snapshot_name, mode=mode)

    def destroy_snapshot_group(self, group_id, snapshot_name):
        if group_id is None:
            raise RuntimeError("Group ID may not be None")
        if snapshot_name is None:
            raise RuntimeError("Snapshot name may not be None")

        self._call("destroy_snapshot_group", group_id=group_id, snapshot_name=snapshot_name)

    def clone_volume_to_existing(self, dest_volume_path, src_volume_path, src_snapshot_name):
        self._call("clone_volume_to_existing", dest_volume_path=_wire_path(dest_volume_path),
                   src_volume_path=_wire_path(src_volume_path), src_snapshot_name=src_snapshot_name)

    # -- RADOS objects

    def put_object(self, pool_name, object_name, data):
        """
        Synchronously write data to an object.

        :param pool_name: name of the pool
        :type pool_name: str
        :param object_name: name of the object
        :type object_name: str
        :param data: data to write
        :type data: bytes
        """
        self._call("put_object", pool_name=pool_name, object_name=object_name, data=_bytes(data))

    def put_object_versioned(self, pool_name, object_name, data, version=None):
        """
        Synchronously write data to an object only if version of the object
        version matches the expected version.

        :param pool_name: name of the pool
        :type pool_name: str
        :param object_name: name of the object
        :type object_name: str
        :param data: data to write
        :type data: bytes
        :param version: expected version of the object to write
        :type version: int
        """
        self._call("put_object_versioned", pool_name=pool_name, object_name=object_name,
                   data=_bytes(data), version=version)

    def get_object(self, pool_name, object_name):
        """
        Synchronously read data from object.

        :param pool_name: name of the pool
        :type pool_name: str
        :param object_name: name of the object
        :type object_name: str

        :returns: bytes - data read from object
        """
        return _unbase64(self._call("get_object", pool_name=pool_name, object_name=object_name))

    def get_object_and_version(self, pool_name, object_name):
        """
        Synchronously read data from object and get its version.

        :param pool_name: name of the pool
        :type pool_name: str
        :param object_name: name of the object
        :type object_name: str

        :returns: tuple of object data and version
        """
        result = self._call("get_object_and_version", pool_name=pool_name, object_name=object_name)
        return (_unbase64(result["data"]), int(result["version"]))

    def delete_object(self, pool_name, object_name):
        self._call("delete_object", pool_name=pool_name, object_name=object_name)
