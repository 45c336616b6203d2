"""Python client for cephfs-volumed.

* :class:`CephFSVolumeClient` and :class:`VolumePath`: a drop-in replacement
  for Ceph's ``ceph_volume_client`` module (API v6). Change only the import::

      from cephfs_volumed import CephFSVolumeClient, VolumePath

* :class:`Client`: the low-level, thread-safe, pipelining JSON-RPC 2.0 client
  (``Client().call("get_used_bytes", volume_path={...})``).

Standard library only: no librados, no libcephfs.
"""

from .client import DEFAULT_SOCKET, SOCKET_ENV, Client, default_socket_path
from .exceptions import (
    AccessDenied,
    CallTimeout,
    CephFSVolumeClientError,
    ClusterError,
    ClusterTimeout,
    ConnectionLost,
    DaemonUnavailable,
    EvictionError,
    InternalError,
    InvalidParams,
    InvalidRequest,
    LimitExceeded,
    MethodNotFound,
    ObjectNotFound,
    ParseError,
    RadosError,
    RpcError,
    RpcInternalError,
    ShuttingDown,
)
from .volume_client import (
    CEPHFSVOLUMECLIENT_VERSION_HISTORY,
    META_FILE_EXT,
    NO_GROUP_NAME,
    CephFSVolumeClient,
    VolumePath,
)

__version__ = "0.1.0"

__all__ = [
    "CephFSVolumeClient",
    "VolumePath",
    "Client",
    "DEFAULT_SOCKET",
    "SOCKET_ENV",
    "default_socket_path",
    "NO_GROUP_NAME",
    "META_FILE_EXT",
    "CEPHFSVOLUMECLIENT_VERSION_HISTORY",
    # the seed's exceptions
    "CephFSVolumeClientError",
    "ClusterError",
    "ClusterTimeout",
    "EvictionError",
    "ObjectNotFound",
    "RadosError",
    "InternalError",
    # protocol errors
    "RpcError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "RpcInternalError",
    "AccessDenied",
    "LimitExceeded",
    "ShuttingDown",
    # transport
    "CallTimeout",
    "ConnectionLost",
    "DaemonUnavailable",
]
