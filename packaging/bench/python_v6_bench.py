#!/usr/bin/python3
"""The Python side of volumed-bench's sequential workload: Debian's
``ceph_volume_client`` (CephFSVolumeClient v6) doing create_volume +
authorize in-process, on the same cluster, in the same run as the daemon.

Run it under /usr/bin/python3: only Debian's interpreter can import
ceph_volume_client, rados and cephfs.

    python_v6_bench.py run --conf FILE --id NAME --cluster NAME --fs-name NAME \
        --volume-prefix PATH --name-prefix STR --tenant STR -n N [--size BYTES]
    python_v6_bench.py serve --conf FILE --id NAME --cluster NAME --fs-name NAME \
        --volume-prefix PATH
    python_v6_bench.py rmtree --conf FILE --id NAME --cluster NAME --fs-name NAME \
        --volume-prefix PATH

``run`` creates N volumes ``<name-prefix>-<i>`` (no group) and authorizes the
auth ID ``<name-prefix>-<i>`` with ``tenant_id`` on each, timing every call,
then tears everything down (deauthorize, delete_volume, purge_volume; timed
separately, and not part of the create+authorize figures). Teardown also runs
when a create or authorize fails. ``--warmup K`` (default 1) first does K
untimed pairs ``<name-prefix>-warm-<i>``: the first call on a fresh mount and
volume prefix pays one-off costs (cap recalls, directory creation) that have
nothing to do with the library.

``serve`` does the same calls one at a time on request (a JSON command per
stdin line, a JSON reply per stdout line; see serve()), which is how
volumed-bench interleaves them with the daemon's, pair by pair, so both sides
see the same load on a busy machine.

``rmtree`` removes the whole volume prefix directory (the bench's private
one) once both sides are done.

``run`` and ``rmtree`` end with the line ``RESULT {json}`` on stdout.
Timings are seconds.
"""

import argparse
import json
import sys
import time
import traceback


def client(args):
    import ceph_volume_client

    vc = ceph_volume_client.CephFSVolumeClient(
        auth_id=args.id, conf_path=args.conf, cluster_name=args.cluster,
        volume_prefix=args.volume_prefix, fs_name=args.fs_name)
    return ceph_volume_client, vc


def run(args):
    t0 = time.perf_counter()
    cvc, vc = client(args)
    vc.connect()
    connect_s = time.perf_counter() - t0
    pairs = []
    created = []
    authorized = []
    teardown = []
    errors = []
    warm = ["{}-warm-{}".format(args.name_prefix, i) for i in range(args.warmup)]
    try:
        for name in warm + ["{}-{}".format(args.name_prefix, i) for i in range(args.n)]:
            vp = cvc.VolumePath(None, name)
            t = time.perf_counter()
            vc.create_volume(vp, size=args.size)
            t1 = time.perf_counter()
            created.append((vp, name))
            r = vc.authorize(vp, name, readonly=False, tenant_id=args.tenant)
            t2 = time.perf_counter()
            authorized.append(name)
            if not r or not r.get("auth_key"):
                raise RuntimeError("authorize of {} returned no key: {!r}".format(name, r))
            if name not in warm:
                pairs.append({"create": t1 - t, "authorize": t2 - t1})
    except Exception as e:
        errors.append("{}: {}".format(type(e).__name__, e))
        traceback.print_exc(file=sys.stderr)
    finally:
        for vp, name in created:
            try:
                t = time.perf_counter()
                if name in authorized:
                    vc.deauthorize(vp, name)
                vc.delete_volume(vp)
                vc.purge_volume(vp)
                if name not in warm:
                    teardown.append(time.perf_counter() - t)
            except Exception as e:
                errors.append("teardown {}: {}: {}".format(name, type(e).__name__, e))
        vc.disconnect()
    return {"connect": connect_s, "pairs": pairs, "teardown": teardown, "errors": errors}


def serve(args):
    """Answers one JSON command per stdin line with one JSON line on stdout,
    so the bench can interleave the library's calls with the daemon's:
    {"op":"pair","name":N,"tenant":T,"size":S|null} -> {"create":s,"authorize":s}
    {"op":"teardown","name":N} -> {"deauthorize":s,"delete":s,"purge":s}
    {"op":"quit"}. Failures answer {"error":"..."}."""
    t0 = time.perf_counter()
    cvc, vc = client(args)
    vc.connect()
    out = sys.stdout

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    send({"ready": True, "connect": time.perf_counter() - t0})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "quit":
            break
        try:
            vp = cvc.VolumePath(None, req["name"])
            if op == "pair":
                t = time.perf_counter()
                vc.create_volume(vp, size=req.get("size"))
                t1 = time.perf_counter()
                r = vc.authorize(vp, req["name"], readonly=False, tenant_id=req["tenant"])
                t2 = time.perf_counter()
                if not r or not r.get("auth_key"):
                    raise RuntimeError("authorize returned no key")
                send({"create": t1 - t, "authorize": t2 - t1})
            elif op == "teardown":
                t = time.perf_counter()
                vc.deauthorize(vp, req["name"])
                t1 = time.perf_counter()
                vc.delete_volume(vp)
                t2 = time.perf_counter()
                vc.purge_volume(vp)
                t3 = time.perf_counter()
                send({"deauthorize": t1 - t, "delete": t2 - t1, "purge": t3 - t2})
            else:
                send({"error": "unknown op {!r}".format(op)})
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            send({"error": "{}: {}".format(type(e).__name__, e)})
    vc.disconnect()
    return None


def rmtree(args):
    _, vc = client(args)
    vc.connect()
    fs = vc.fs
    removed = 0

    def remove(path):
        nonlocal removed
        h = fs.opendir(path)
        try:
            d = fs.readdir(h)
            while d:
                n = d.d_name.decode("utf-8")
                if n not in (".", ".."):
                    full = "{}/{}".format(path, n)
                    if d.is_dir():
                        remove(full)
                    else:
                        fs.unlink(full)
                        removed += 1
                d = fs.readdir(h)
        finally:
            fs.closedir(h)
        fs.rmdir(path)
        removed += 1

    errors = []
    try:
        fs.stat(args.volume_prefix)
        remove(args.volume_prefix)
    except Exception as e:  # an absent prefix is fine
        if type(e).__name__ != "ObjectNotFound":
            errors.append("{}: {}".format(type(e).__name__, e))
    vc.disconnect()
    return {"removed": removed, "errors": errors}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["run", "serve", "rmtree"])
    p.add_argument("--conf", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--cluster", default="ceph")
    p.add_argument("--fs-name", default="cephfs")
    p.add_argument("--volume-prefix", required=True)
    p.add_argument("--name-prefix", default="bench-py")
    p.add_argument("--tenant", default="bench-tenant")
    p.add_argument("-n", type=int, default=40)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed pairs before the timed ones (default 1)")
    args = p.parse_args()
    if args.mode == "serve":
        serve(args)
        return 0
    result = run(args) if args.mode == "run" else rmtree(args)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
