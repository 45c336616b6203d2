#!/usr/bin/env python3
"""A minimal line-delimited JSON-RPC 2.0 server on a Unix socket: the Python
baseline that volumed-bench compares the daemon's RPC overhead with.

Standard library only, one thread per connection
(socketserver.ThreadingUnixStreamServer). Every line is decoded with
json.loads and every reply encoded with json.dumps. It answers ``ping`` with
``{"jsonrpc":"2.0","id":<id>,"result":"pong"}``; any other method gets
-32601, a line that is not JSON gets -32700, and a notification (no ``id``)
gets no reply.

Usage: baseline_server.py SOCKET_PATH

It runs until SIGTERM or SIGINT and removes the socket on the way out. Any
Python 3 interpreter will do.
"""

import json
import os
import signal
import socketserver
import sys


def reply(rid, result=None, error=None):
    msg = {"jsonrpc": "2.0", "id": rid}
    if error is not None:
        msg["error"] = error
    else:
        msg["result"] = result
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        write = self.wfile.write  # unbuffered: every reply is one send
        for line in self.rfile:
            if not line.strip():
                continue
            try:
                req = json.loads(line)
            except ValueError:
                write(reply(None, error={"code": -32700, "message": "parse error"}))
                continue
            if not isinstance(req, dict):
                write(reply(None, error={"code": -32600, "message": "invalid request"}))
                continue
            if "id" not in req:
                continue
            rid = req["id"]
            if req.get("method") == "ping":
                write(reply(rid, result="pong"))
            else:
                write(reply(rid, error={"code": -32601, "message": "method not found"}))


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: baseline_server.py SOCKET_PATH\n")
        return 2
    path = sys.argv[1]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = Server(path, Handler)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
