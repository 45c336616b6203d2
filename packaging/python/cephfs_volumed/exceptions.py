"""Exceptions raised by the cephfs-volumed client.

Three families:

* The exceptions of Ceph's ``ceph_volume_client`` module, under the same
  names: :class:`CephFSVolumeClientError`, :class:`ClusterError`,
  :class:`ClusterTimeout`, :class:`EvictionError`, plus
  :class:`ObjectNotFound`, which stands in for ``cephfs.ObjectNotFound`` and
  ``rados.ObjectNotFound``. They are raised for engine errors (JSON-RPC code
  -32000), picked by the error's ``data.type``.
* :class:`RpcError` and its subclasses, for the other JSON-RPC errors.
  :class:`InvalidParams` (-32602) is also a :class:`ValueError`, because the
  Python library raised ``ValueError`` for a bad group or volume name.
* Transport errors: :class:`CallTimeout` (a :class:`TimeoutError` and
  ``socket.timeout``) when no reply came in time, and :class:`ConnectionLost`
  and :class:`DaemonUnavailable` (both :class:`ConnectionError`) when the
  socket broke or could not be opened.

Every exception built from a daemon reply carries ``code`` (the JSON-RPC
code), ``rpc_message`` (the daemon's message), ``data`` (the error's
``data`` member, or None), and ``errno`` / ``errno_name`` (from ``data``
for engine errors; None when the daemon gave none).
"""

import socket

__all__ = [
    "RadosError",
    "ClusterTimeout",
    "ClusterError",
    "EvictionError",
    "CephFSVolumeClientError",
    "InternalError",
    "ObjectNotFound",
    "RpcError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "RpcInternalError",
    "AccessDenied",
    "LimitExceeded",
    "ShuttingDown",
    "CallTimeout",
    "ConnectionLost",
    "DaemonUnavailable",
    "ENGINE_ERROR_CODE",
    "error_from_reply",
]

ENGINE_ERROR_CODE = -32000


class _WireInfo(object):
    """Attributes every exception built from a daemon reply carries. They are
    class-level defaults, so exceptions raised locally have them too."""

    code = None
    rpc_message = None
    data = None
    errno = None
    errno_name = None

    def _set_wire(self, code, message, data):
        self.code = code
        self.rpc_message = message
        self.data = data
        if isinstance(data, dict):
            self.errno = data.get("errno")
            self.errno_name = data.get("errno_name")


# --------------------------------------------------------------------------
# The seed's exceptions (ceph_volume_client.py), same names and constructors.


class RadosError(_WireInfo, Exception):
    """
    Something went wrong talking to Ceph with librados.

    Exported for import compatibility with ``ceph_volume_client``; the daemon
    reports these cases as :class:`ClusterError`, so the shim never raises it.
    """


class ClusterTimeout(_WireInfo, Exception):
    """
    Exception indicating that we timed out trying to talk to the Ceph cluster,
    either to the mons, or to any individual daemon that the mons indicate ought
    to be up but isn't responding to us.

    Raised when the daemon reports ``ClusterTimeout`` (the daemon, not this
    client, timed out). A reply that does not arrive in time raises
    :class:`CallTimeout` instead.
    """


class ClusterError(_WireInfo, Exception):
    """
    Exception indicating that the cluster returned an error to a command that
    we thought should be successful based on our last knowledge of the cluster
    state.

    Constructed as in ``ceph_volume_client``: ``ClusterError(action,
    result_code, result_str)``. When it comes from the daemon, ``action`` is
    the daemon's message, ``result_code`` is ``-errno`` (librados' sign) and
    ``result_str`` is the errno's name, and ``str()`` is the daemon's message.
    """

    def __init__(self, action, result_code, result_str):
        self._action = action
        self._result_code = result_code
        self._result_str = result_str
        self._wire_message = None

    def __str__(self):
        if self._wire_message is not None:
            return self._wire_message
        return "Error {0} (\"{1}\") while {2}".format(
            self._result_code, self._result_str, self._action)


class EvictionError(_WireInfo, Exception):
    """``evict`` failed on at least one MDS rank (other than by timing out)."""


class CephFSVolumeClientError(_WireInfo, Exception):
    """
    Something went wrong talking to Ceph using CephFSVolumeClient.
    """


class InternalError(CephFSVolumeClientError):
    """The daemon reported an ``Internal`` engine error: a bug or a state it
    does not expect. A :class:`CephFSVolumeClientError`, so callers that catch
    that class catch this too."""


class ObjectNotFound(_WireInfo, Exception):
    """Something named does not exist: a volume, group, snapshot, pool or
    object. Stands in for ``cephfs.ObjectNotFound`` and
    ``rados.ObjectNotFound``; ``errno`` is 2 (ENOENT)."""


# --------------------------------------------------------------------------
# JSON-RPC protocol errors


class RpcError(_WireInfo, Exception):
    """A JSON-RPC error reply other than an engine error.

    ``code``, ``message`` and ``data`` are the reply's ``error`` members.
    """

    def __init__(self, code, message, data=None):
        super(RpcError, self).__init__(code, message, data)
        self._set_wire(code, message, data)
        self.message = message

    def __str__(self):
        return "[{0}] {1}".format(self.code, self.message)


class ParseError(RpcError):
    """-32700: the daemon could not parse a line (a bug in this client)."""


class InvalidRequest(RpcError):
    """-32600: the request object was invalid (a bug in this client)."""


class MethodNotFound(RpcError):
    """-32601: the daemon has no such method (it is older than this client)."""


class InvalidParams(RpcError, ValueError):
    """-32602: a parameter was missing, of the wrong type, out of range, or an
    identifier broke the naming rules. Also a :class:`ValueError`, as the
    Python library raised ``ValueError`` for bad names."""


class RpcInternalError(RpcError):
    """-32603: the daemon's JSON-RPC layer failed."""


class AccessDenied(RpcError):
    """-32001: the daemon refused this process's credentials (SO_PEERCRED).
    Run as root, in the socket's group, or in the daemon's allow lists."""


class LimitExceeded(RpcError):
    """-32002: a request line was too long, or the daemon has too many
    connections. The daemon closes the connection after sending it."""


class ShuttingDown(RpcError):
    """-32003: the daemon is shutting down and did not start this request."""


_RPC_CLASSES = {
    -32700: ParseError,
    -32600: InvalidRequest,
    -32601: MethodNotFound,
    -32602: InvalidParams,
    -32603: RpcInternalError,
    -32001: AccessDenied,
    -32002: LimitExceeded,
    -32003: ShuttingDown,
}


# --------------------------------------------------------------------------
# Transport errors

if socket.timeout is TimeoutError:  # Python >= 3.10
    _TIMEOUT_BASES = (TimeoutError,)
else:  # Python 3.9: socket.timeout is a separate OSError subclass
    _TIMEOUT_BASES = (socket.timeout, TimeoutError)


class CallTimeout(*_TIMEOUT_BASES):
    """No reply arrived within the call timeout (or, with ``read_timeout``, the
    daemon sent nothing for that long while calls were waiting).

    A :class:`TimeoutError` and a ``socket.timeout``, not a
    :class:`ClusterTimeout`: it says nothing about the cluster, only that this
    client stopped waiting. The request may still run to completion in the
    daemon; its late reply is discarded.
    """


class ConnectionLost(ConnectionError):
    """The connection to the daemon broke (the daemon exited or closed it)
    while this call was waiting for its reply, or the client was closed.
    Whether the call took effect is unknown; the mutating calls of the volume
    client are idempotent, so retrying them is safe. The next call opens a new
    connection."""


class DaemonUnavailable(ConnectionError):
    """The daemon's socket could not be opened (missing, refused, or the
    connect timed out). The cause is chained as ``__cause__``."""


# --------------------------------------------------------------------------
# Building an exception from an error reply


def _engine_error(message, data):
    typ = data.get("type") if isinstance(data, dict) else None
    errno_ = data.get("errno") if isinstance(data, dict) else None
    errno_name = data.get("errno_name") if isinstance(data, dict) else None
    if typ == "ClusterError":
        exc = ClusterError(message, -errno_ if isinstance(errno_, int) else None, errno_name)
        exc._wire_message = message
    elif typ == "ObjectNotFound":
        exc = ObjectNotFound(message)
    elif typ == "ClusterTimeout":
        exc = ClusterTimeout(message)
    elif typ == "EvictionError":
        exc = EvictionError(message)
    elif typ == "VolumeClientError":
        exc = CephFSVolumeClientError(message)
    else:  # "Internal", or a type this client does not know
        exc = InternalError(message)
    exc._set_wire(ENGINE_ERROR_CODE, message, data)
    return exc


def error_from_reply(error):
    """The exception for a JSON-RPC ``error`` member (a dict)."""
    if not isinstance(error, dict):
        return RpcError(None, "malformed error reply: {0!r}".format(error))
    code = error.get("code")
    message = error.get("message")
    if not isinstance(message, str):
        message = str(message)
    data = error.get("data")
    if code == ENGINE_ERROR_CODE:
        return _engine_error(message, data)
    return _RPC_CLASSES.get(code, RpcError)(code, message, data)
