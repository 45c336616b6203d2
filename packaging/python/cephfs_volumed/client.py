"""Low-level JSON-RPC 2.0 client for cephfs-volumed.

One :class:`Client` holds one Unix socket connection to the daemon and
pipelines requests on it: any number of threads may call at once, each
request carries its own id, and a reader thread hands every reply to the
caller waiting for that id (the daemon replies in completion order).

    from cephfs_volumed import Client
    with Client() as c:
        c.call("ping")                                   # -> "pong"
        c.call("create_group", group_id="g1", mode=0o750)
        c.call("get_used_bytes", volume_path={"group_id": "g1", "volume_id": "v1"})

``call(method, **params)`` sends the keyword arguments as the by-name params
and returns the JSON-decoded ``result``. Parameter values may be bytes (sent
as base64, as the protocol's ``Base64`` fields want) and VolumePath-like
objects (anything with ``group_id`` and ``volume_id`` attributes). Results are
returned as the daemon sent them: base64 strings are not decoded here (the
drop-in :class:`~cephfs_volumed.CephFSVolumeClient` does that).

Errors: engine errors (-32000) raise the ``ceph_volume_client`` exception
classes named by ``data.type``; other JSON-RPC errors raise
:class:`~cephfs_volumed.RpcError` subclasses; see
:mod:`cephfs_volumed.exceptions`.

Timeouts:

* ``connect_timeout`` bounds opening the socket (:class:`DaemonUnavailable`).
* ``call_timeout`` bounds each call, from sending to the reply; when it
  expires the call raises :class:`CallTimeout` and the connection stays open
  for the other calls (a late reply is dropped). ``None`` waits forever,
  which is what the Python library did; the daemon has its own
  request timeout (300 s by default) after which it answers ClusterTimeout.
* ``read_timeout``: when calls are waiting and the daemon has sent nothing at
  all for this long, the connection is considered dead: it is closed and
  every waiting call raises :class:`CallTimeout`. ``None`` disables it.

Reconnection: when the connection drops (the daemon restarted, or closed an
idle connection), calls that were waiting raise :class:`ConnectionLost`, and
the next call opens a new connection. A request whose send fails because the
daemon had already closed the connection is resent once on a new one.
"""

import base64
import copy
import itertools
import json
import logging
import os
import select
import socket
import threading
import time

from .exceptions import (
    CallTimeout,
    ConnectionLost,
    DaemonUnavailable,
    RpcError,
    error_from_reply,
)

__all__ = ["Client", "DEFAULT_SOCKET", "SOCKET_ENV", "default_socket_path"]

log = logging.getLogger(__name__)

#: Where the packaged daemon listens.
DEFAULT_SOCKET = "/run/cephfs-volumed/volumed.sock"

#: Environment variable that overrides :data:`DEFAULT_SOCKET`.
SOCKET_ENV = "CEPHFS_VOLUMED_SOCKET"

_RECV_SIZE = 1 << 16


def default_socket_path():
    """``$CEPHFS_VOLUMED_SOCKET`` if set and non-empty, else :data:`DEFAULT_SOCKET`."""
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def _json_default(o):
    if isinstance(o, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(o)).decode("ascii")
    if hasattr(o, "group_id") and hasattr(o, "volume_id"):
        return {"group_id": o.group_id, "volume_id": o.volume_id}
    raise TypeError("Object of type {0} is not JSON serializable".format(type(o).__name__))


def encode_request(rid, method, params):
    """One request line (bytes, ending with a newline)."""
    req = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params:
        req["params"] = params
    # ensure_ascii keeps the line pure ASCII; JSON escapes keep newlines out.
    return json.dumps(req, default=_json_default, separators=(",", ":")).encode("ascii") + b"\n"


class _Pending(object):
    __slots__ = ("event", "reply", "error")

    def __init__(self):
        self.event = threading.Event()
        self.reply = None
        self.error = None


class _Connection(object):
    """One socket, its reader thread, and the calls waiting on it."""

    def __init__(self, path, connect_timeout, read_timeout):
        self.path = path
        self.read_timeout = read_timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise DaemonUnavailable("cannot connect to cephfs-volumed at {0}: {1}".format(path, e)) from e
        # Blocking mode; senders set a timeout while they send.
        sock.settimeout(None)
        self.sock = sock
        self.lock = threading.Lock()        # pending, dead, last_activity
        self.send_lock = threading.Lock()   # whole lines, one at a time
        self.pending = {}
        self.dead = None                    # the exception waiting calls get, once dead
        self.last_activity = time.monotonic()
        self.reader = threading.Thread(target=self._read_loop, name="cephfs-volumed-reader", daemon=True)
        self.reader.start()

    # -- callers

    def register(self, rid):
        p = _Pending()
        with self.lock:
            if self.dead is not None:
                return None
            if not self.pending:
                self.last_activity = time.monotonic()
            self.pending[rid] = p
        return p

    def unregister(self, rid):
        with self.lock:
            self.pending.pop(rid, None)

    def send(self, line, deadline):
        """Send one whole line. Raises CallTimeout when the deadline passes
        mid-send (the connection is then unusable and closed)."""
        with self.send_lock:
            if self.dead is not None:
                raise BrokenPipeError("connection already closed")
            if deadline is None:
                self.sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CallTimeout("call timed out before it was sent")
                self.sock.settimeout(remaining)
            try:
                self.sock.sendall(line)
            except socket.timeout:
                # Part of a line may be on the wire: this connection is unusable.
                self.fail(ConnectionLost("connection closed after a send timed out"))
                raise CallTimeout("timed out sending the request to cephfs-volumed")
            finally:
                try:
                    self.sock.settimeout(None)
                except OSError:
                    pass

    # -- shutting down

    def fail(self, exc):
        """Mark the connection dead, wake every waiting call with ``exc``, and
        shut the socket down (the reader thread then closes it)."""
        with self.lock:
            if self.dead is None:
                self.dead = exc
            waiting = list(self.pending.values())
            self.pending.clear()
        for p in waiting:
            if p.error is None and p.reply is None:
                p.error = exc
            p.event.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, exc):
        self.fail(exc)
        if threading.current_thread() is not self.reader:
            self.reader.join(5)

    # -- reader thread

    def _read_loop(self):
        buf = b""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        try:
            while True:
                timeout_ms = None
                if self.read_timeout is not None:
                    with self.lock:
                        if self.dead is not None:
                            return
                        if self.pending:
                            left = self.last_activity + self.read_timeout - time.monotonic()
                        else:
                            left = self.read_timeout
                    timeout_ms = max(0, int(left * 1000) + 1)
                if not poller.poll(timeout_ms):
                    with self.lock:
                        stale = bool(self.pending) and (
                            time.monotonic() - self.last_activity >= self.read_timeout)
                    if stale:
                        self.fail(CallTimeout(
                            "cephfs-volumed sent nothing for {0}s while calls were waiting".format(
                                self.read_timeout)))
                        return
                    continue
                chunk = self.sock.recv(_RECV_SIZE)
                if not chunk:
                    self.fail(ConnectionLost("cephfs-volumed closed the connection"))
                    return
                with self.lock:
                    self.last_activity = time.monotonic()
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl], buf[nl + 1:]
                    self._dispatch(line)
        except Exception as e:  # socket errors, or a bug: never leave callers hanging
            if self.dead is None:
                log.debug("cephfs-volumed reader stopped: %r", e)
            self.fail(ConnectionLost("connection to cephfs-volumed failed: {0}".format(e)))
        finally:
            # Under send_lock, so no sender is inside sendall() on this fd
            # (fail()'s shutdown has woken any blocked sender).
            with self.send_lock:
                try:
                    self.sock.close()
                except OSError:
                    pass

    def _dispatch(self, line):
        line = line.strip()
        if not line:
            return
        try:
            reply = json.loads(line.decode("utf-8"))
        except ValueError:
            self.fail(ConnectionLost("cephfs-volumed sent a line that is not JSON: {0!r}".format(line[:200])))
            return
        if isinstance(reply, list):  # a batch reply; this client sends no batches
            for r in reply:
                self._dispatch_one(r)
        else:
            self._dispatch_one(reply)

    def _dispatch_one(self, reply):
        if not isinstance(reply, dict):
            return
        rid = reply.get("id")
        if rid is None:
            # A connection-level error (access denied, limit exceeded) or an
            # error for a line the daemon could not attribute. The daemon
            # closes the connection after the former; fail every waiting call.
            err = reply.get("error")
            exc = error_from_reply(err) if err is not None else RpcError(None, "reply without an id")
            log.debug("cephfs-volumed connection-level error: %s", exc)
            # Any of these leaves some call without its reply: fail them all.
            self.fail(exc)
            return
        with self.lock:
            p = self.pending.pop(rid, None)
        if p is None:
            log.debug("dropping reply to id %r (the call timed out or was abandoned)", rid)
            return
        p.reply = reply
        p.event.set()


class Client(object):
    """A thread-safe, pipelining JSON-RPC client for one cephfs-volumed socket.

    :param socket_path: the daemon's socket; default ``$CEPHFS_VOLUMED_SOCKET``
        or :data:`DEFAULT_SOCKET`.
    :param connect_timeout: seconds to open the socket (None: no limit).
    :param read_timeout: seconds the daemon may stay silent while calls are
        waiting before the connection is declared dead (None: no limit).
    :param call_timeout: default seconds one call may take (None: no limit);
        :meth:`request` can override it per call.
    """

    def __init__(self, socket_path=None, connect_timeout=5.0, read_timeout=None, call_timeout=None):
        self.socket_path = socket_path or default_socket_path()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.call_timeout = call_timeout
        self._lock = threading.Lock()
        self._conn = None
        self._ids = itertools.count(1)

    # -- connection management

    def _connection(self):
        with self._lock:
            conn = self._conn
            if conn is None or conn.dead is not None:
                if conn is not None:
                    conn.close(conn.dead)
                conn = _Connection(self.socket_path, self.connect_timeout, self.read_timeout)
                self._conn = conn
            return conn

    def connect(self):
        """Open the connection now (calls open it on demand anyway)."""
        self._connection()
        return self

    @property
    def connected(self):
        """True while a connection is open and not known to be broken."""
        conn = self._conn
        return conn is not None and conn.dead is None

    def close(self):
        """Close the connection. Calls still waiting raise
        :class:`ConnectionLost`. A later call opens a new connection."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(ConnectionLost("the client was closed"))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()

    def __del__(self):
        try:
            conn = self.__dict__.get("_conn")
            if conn is not None:
                # The reader thread wakes up and closes the socket.
                conn.fail(ConnectionLost("the client was garbage-collected"))
        except Exception:
            pass

    # -- calls

    def call(self, method, **params):
        """Call ``method`` with by-name ``params``; return the decoded result.

        Uses the client's ``call_timeout``. Parameters whose value is None are
        sent as JSON null (the daemon treats null as "use the default", except
        ``set_max_bytes``' ``max_bytes`` where null means no quota).
        """
        return self.request(method, params)

    _DEFAULT = object()

    def request(self, method, params=None, timeout=_DEFAULT):
        """Like :meth:`call`, with params as a dict and an optional per-call
        ``timeout`` in seconds (None: wait forever; default: the client's
        ``call_timeout``)."""
        if timeout is Client._DEFAULT:
            timeout = self.call_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        rid = next(self._ids)
        line = encode_request(rid, method, params or {})

        for attempt in (1, 2):
            conn = self._connection()
            pending = conn.register(rid)
            if pending is None:  # died between _connection() and register()
                if attempt == 1:
                    continue
                raise ConnectionLost("the connection to cephfs-volumed closed")
            try:
                conn.send(line, deadline)
            except CallTimeout:
                conn.unregister(rid)
                raise
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
                # The daemon had closed the connection before reading this line.
                conn.unregister(rid)
                conn.fail(ConnectionLost("connection to cephfs-volumed broke: {0}".format(e)))
                if attempt == 1:
                    log.debug("resending %s on a new connection after %r", method, e)
                    continue
                raise ConnectionLost("cannot send {0} to cephfs-volumed: {1}".format(method, e)) from e
            except OSError as e:
                conn.unregister(rid)
                conn.fail(ConnectionLost("connection to cephfs-volumed failed: {0}".format(e)))
                raise ConnectionLost("cannot send {0} to cephfs-volumed: {1}".format(method, e)) from e
            break

        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not pending.event.wait(remaining):
            conn.unregister(rid)
            if pending.reply is None and pending.error is None:
                raise CallTimeout("{0}: no reply from cephfs-volumed within {1}s".format(method, timeout))
        if pending.error is not None:
            exc = pending.error
            if isinstance(exc, CallTimeout):
                raise CallTimeout("{0}: {1}".format(method, exc))
            if isinstance(exc, ConnectionLost):
                raise ConnectionLost("{0}: {1}".format(method, exc))
            # Shared by every call the failure woke: raise a copy of our own.
            raise copy.copy(exc)
        reply = pending.reply
        if "error" in reply:
            raise error_from_reply(reply["error"])
        if "result" not in reply:
            raise RpcError(None, "reply to {0} has neither result nor error".format(method))
        return reply["result"]

    # -- conveniences

    def ping(self):
        """``True`` when the daemon answers ``pong``."""
        return self.call("ping") == "pong"

    def server_info(self):
        """The daemon's ``server_info`` dict (version, protocol_version, fsid, ...)."""
        return self.call("server_info")
