"""A stress run of cephfs-volumed and the Python v6 client racing authorize and
deauthorize on one auth ID and one volume (issue 12, item 16).

Ten RPC clients of the daemon and one v6 process loop over authorize and
deauthorize of the same auth ID on the same volume, so both implementations
keep taking the CephFS flock of the same metadata files. A watchdog calls a
run hung when nobody makes progress for `stall` seconds, and then collects
what the MDSs, the sessions and the daemon's threads show.

Used by test_interop_v6_lock.py and by hand for the figures (a private
cluster is best, since a hang keeps the flock until a session goes):

    /usr/bin/python3 Tests/interop/v6_lock_stress.py --dev-dir /tmp/cvd-x --runs 7 --rounds 40
"""

import glob
import random
import json
import os
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import conftest  # noqa: E402
from conftest import RpcError  # noqa: E402

V6_SIDE = r"""
import json, sys, time
from ceph_volume_client import CephFSVolumeClient, VolumePath
conf, cid, cluster, fs_name, prefix, group, volume, auth_id, rounds = sys.argv[1:10]
vc = CephFSVolumeClient(auth_id=cid, conf_path=conf, cluster_name=cluster, fs_name=fs_name, volume_prefix=prefix)
vc.connect()
print("connected", vc.rados.get_instance_id(), flush=True)
path = VolumePath(group or None, volume)
touches = int(sys.argv[10]) if len(sys.argv) > 10 else 0
for i in range(int(rounds)):
    for op in ("authorize", "deauthorize"):
        try:
            getattr(vc, op)(path, auth_id)
            print("ok", op, i, flush=True)
        except Exception as e:
            print("err", op, i, type(e).__name__, str(e).replace("\n", " "), flush=True)
        # The v6 client's own lock-read-write cycle on the same files, without
        # the mon round trips, so that its flocks meet the daemon's more often.
        for _ in range(touches):
            with vc._auth_lock(auth_id):
                meta = vc._auth_metadata_get(auth_id)
                if meta:
                    vc._auth_metadata_set(auth_id, meta)
            with vc._volume_lock(path):
                meta = vc._volume_metadata_get(path)
                if meta:
                    vc._volume_metadata_set(path, meta)
            print("ok touch", i, flush=True)
vc.disconnect()
print("done", flush=True)
"""


INTRUDER = r"""
import fcntl, os, random, sys, time
import cephfs
conf, cid, fs_name, path = sys.argv[1:5]
fs = cephfs.LibCephFS(conffile=conf, auth_id=cid)
fs.mount(filesystem_name=fs_name.encode())
print(fs.get_instance_id(), flush=True)
# What a daemon's start-up recovery does with every auth file: open it for
# writing and wait for its lock.
fd = fs.open(path, os.O_CREAT | os.O_RDWR, 0o755)
fs.flock(fd, fcntl.LOCK_EX, random.getrandbits(62) + 1)
time.sleep(0.2)
fs.flock(fd, fcntl.LOCK_UN, 0)
print("unlocked", flush=True)
time.sleep(60)
"""


def _asoks(env):
    return sorted(glob.glob(os.path.join(env.dev_dir, "run", "*mds*.asok")))


def _admin(asok, *cmd, timeout=30):
    try:
        p = subprocess.run(["/usr/bin/ceph", "--admin-daemon", asok] + list(cmd),
                           capture_output=True, text=True, timeout=timeout)
        return p.stdout if p.returncode == 0 else "rc={} {}".format(p.returncode, p.stderr.strip())
    except subprocess.TimeoutExpired:
        return "timed out"


def diagnose(env, daemon_pid, names):
    """What the MDSs, the daemon's client and its threads show while nobody
    makes progress."""
    out = []
    for asok in _asoks(env):
        name = os.path.basename(asok)
        status = _admin(asok, "status")
        if '"up:active"' not in status:
            continue
        out.append("==== {} ops".format(name))
        out.append(_admin(asok, "dump_ops_in_flight"))
        out.append("==== {} session ls".format(name))
        try:
            sessions = json.loads(_admin(asok, "session", "ls"))
            out.append(json.dumps([{k: s.get(k) for k in ("id", "state", "num_caps", "inst")}
                                   for s in sessions], indent=1))
            out.append(json.dumps({s["id"]: {k: v for k, v in (s.get("client_metadata") or {}).items()
                                             if k in ("volumed_instance", "pid", "entity_id")}
                                   for s in sessions}))
        except (ValueError, KeyError) as e:
            out.append("session ls: {}".format(e))
        cache = os.path.join(env.dev_dir, "cache-dump-{}-{}.txt".format(name, uuid.uuid4().hex[:6]))
        _admin(asok, "dump", "cache", cache)
        try:
            with open(cache) as f:
                lines = [ln for ln in f if any(n in ln for n in names)]
            os.unlink(cache)
            out.append("==== {} cache (lines naming the files)".format(name))
            out.extend(ln.rstrip()[:4000] for ln in lines)
            for ln in lines:
                if ln.startswith("[inode 0x"):
                    ino = ln.split()[1]
                    out.append("==== {} dump inode {}".format(name, ino))
                    out.append(_admin(asok, "dump", "inode", str(int(ino, 16))))
        except OSError as e:
            out.append("cache dump: {}".format(e))
    # The daemon's own libcephfs client, when the conf gives clients an admin socket.
    for asok in glob.glob("/tmp/v6lock-asok/*.{}.asok".format(daemon_pid)) if daemon_pid else []:
        for cmd in (["status"], ["mds_requests"], ["objecter_requests"], ["mds_sessions"]):
            out.append("==== daemon client {}".format(" ".join(cmd)))
            out.append(_admin(asok, *cmd))
    if daemon_pid:
        try:
            p = subprocess.run(["gdb", "-p", str(daemon_pid), "-batch", "-ex", "thread apply all bt"],
                               capture_output=True, text=True, timeout=120)
            out.append("==== daemon threads")
            out.append(p.stdout)
        except (OSError, subprocess.TimeoutExpired) as e:
            out.append("gdb: {}".format(e))
    return "\n".join(out)


def evict_all_of(env, instance_ids):
    """Evicts the given client sessions on every active MDS, to end a hang."""
    for asok in _asoks(env):
        for cid in instance_ids:
            _admin(asok, "session", "evict", "id={}".format(cid))


def run_once(env, daemon, rounds, rpc_clients=10, stall=30.0, log=print, v6_clients=1, pin_flip=0.0, touches=0, inproc=False, intruder_every=0.0, intruder_dead=0.0):
    """One race. Returns a dict: hung, diagnosis, counts."""
    group, volume = None, "stress-" + uuid.uuid4().hex[:10]
    auth_id = "stress-" + uuid.uuid4().hex[:10]
    setup = daemon.client()
    setup.call("create_volume", volume_path=conftest.vp(group, volume))

    progress = {"t": time.monotonic(), "n": 0}
    lock = threading.Lock()
    errors = []

    def tick():
        with lock:
            progress["t"] = time.monotonic()
            progress["n"] += 1

    def rpc_side(k):
        c = daemon.client()
        c.sock.settimeout(None)
        try:
            for i in range(rounds):
                for op in ("authorize", "deauthorize"):
                    try:
                        c.call(op, volume_path=conftest.vp(group, volume), auth_id=auth_id)
                    except RpcError as e:
                        errors.append(("rpc", k, op, str(e)))
                    tick()
        except OSError as e:
            errors.append(("rpc", k, "io", str(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=rpc_side, args=(k,), daemon=True) for k in range(rpc_clients)]
    if inproc:
        from ceph_volume_client import CephFSVolumeClient, VolumePath
        vc = CephFSVolumeClient(auth_id=env.id, conf_path=env.conf, cluster_name=env.cluster,
                                fs_name=env.fs_name, volume_prefix=conftest.VOLUME_PREFIX)
        vc.connect()

        def v6_thread():
            path = VolumePath(None, volume)
            for i in range(rounds):
                for op in ("authorize", "deauthorize"):
                    try:
                        getattr(vc, op)(path, auth_id)
                    except Exception as e:  # noqa: BLE001
                        errors.append(("v6", op, str(e)))
                    tick()
        threads.append(threading.Thread(target=v6_thread, daemon=True))
    v6s = [subprocess.Popen(["/usr/bin/python3", "-c", V6_SIDE, env.conf, env.id, env.cluster, env.fs_name,
                             conftest.VOLUME_PREFIX, "", volume, auth_id, str(rounds), str(touches)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for _ in range(0 if inproc else v6_clients)]
    v6_state = {"instances": [], "lines": []}

    def v6_reader(v6):
        for line in v6.stdout:
            v6_state["lines"].append(line.rstrip())
            if line.startswith("connected"):
                v6_state["instances"].append(line.split()[1])
            elif line.startswith("err"):
                errors.append(("v6", line.rstrip()))
            tick()

    for v6 in v6s:
        threading.Thread(target=v6_reader, args=(v6,), daemon=True).start()
    for t in threads:
        t.start()

    stop_flip = threading.Event()

    def flipper():
        # Moves the metadata files' directory between the two MDS ranks, as
        # the balancer does on a busy cluster.
        r = conftest.RawFS(env)
        try:
            rank = 1
            while not stop_flip.wait(pin_flip):
                r.fs.setxattr(conftest.VOLUME_PREFIX, "ceph.dir.pin", str(rank).encode(), 0)
                rank = 1 - rank
        finally:
            r.unmount()

    if pin_flip:
        threading.Thread(target=flipper, daemon=True).start()

    def intruders():
        # Another daemon's recovery opens the auth file and waits for its lock,
        # and is then killed and evicted by its successor (as the crash tests
        # on a shared cluster do): a client with caps on the file that never
        # answers again, then a blocklist.
        meta = "{}/${}.meta".format(conftest.VOLUME_PREFIX, auth_id)
        while not stop_flip.wait(intruder_every):
            p = subprocess.Popen(["/usr/bin/python3", "-c", INTRUDER, env.conf, env.id, env.fs_name, meta],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                cid = p.stdout.readline().strip()
                time.sleep(intruder_every * random.random())
                p.kill()
                p.wait()
                # Dead, with its caps and maybe its lock request, until evicted.
                if cid:
                    threading.Timer(intruder_dead * random.random(), evict_all_of, (env, [cid])).start()
            except OSError:
                p.kill()

    if intruder_every:
        threading.Thread(target=intruders, daemon=True).start()

    result = {"hung": False, "diagnosis": "", "errors": errors, "auth_id": auth_id, "volume": volume}
    while any(t.is_alive() for t in threads) or any(v6.poll() is None for v6 in v6s):
        time.sleep(0.5)
        with lock:
            idle = time.monotonic() - progress["t"]
        if idle > stall:
            result["hung"] = True
            log("no progress for {:.0f}s after {} operations: collecting evidence".format(idle, progress["n"]))
            result["diagnosis"] = diagnose(env, daemon.proc.pid,
                                           ["${}.meta".format(auth_id), "_:{}.meta".format(volume)])
            # End the hang the way the reporter did: evict the v6 session.
            evict_all_of(env, v6_state["instances"])
            for v6 in v6s:
                v6.kill()
            break
    stop_flip.set()
    for t in threads:
        t.join(120)
    for v6 in v6s:
        if v6.poll() is None:
            v6.kill()
        v6.wait()
    result["still_blocked"] = sum(t.is_alive() for t in threads)
    result["v6_tail"] = v6_state["lines"][-5:]
    result["operations"] = progress["n"]
    if not result["hung"]:
        try:
            setup.call("deauthorize", volume_path=conftest.vp(group, volume), auth_id=auth_id)
            setup.call("delete_volume", volume_path=conftest.vp(group, volume))
            setup.call("purge_volume", volume_path=conftest.vp(group, volume))
        except (RpcError, OSError):
            pass
    setup.close()
    return result


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev-dir", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--stall", type=float, default=30.0)
    ap.add_argument("--v6", type=int, default=1)
    ap.add_argument("--intruder-every", type=float, default=0.0, help="seconds between killed-and-evicted lockers")
    ap.add_argument("--intruder-dead", type=float, default=0.0, help="at most this long dead before its eviction")
    ap.add_argument("--inproc", action="store_true", help="the v6 client in a thread of this process")
    ap.add_argument("--touches", type=int, default=0, help="v6 lock-read-write cycles per v6 operation")
    ap.add_argument("--pin-flip", type=float, default=0.0, help="seconds between export pin changes of the prefix")
    ap.add_argument("--evidence", default=None, help="file to append the diagnoses to")
    a = ap.parse_args()
    os.environ["CEPH_DEV_DIR"] = a.dev_dir
    env = conftest._cluster_env()
    d = conftest.Daemon(env)
    d.start(timeout=300)
    hung = 0
    try:
        for r in range(a.runs):
            t0 = time.monotonic()
            res = run_once(env, d, a.rounds, a.clients, a.stall, v6_clients=a.v6, pin_flip=a.pin_flip, touches=a.touches, inproc=a.inproc, intruder_every=a.intruder_every, intruder_dead=a.intruder_dead)
            hung += res["hung"]
            print("run {}: {} after {} operations in {:.0f}s, {} errors, v6 tail {}".format(
                r + 1, "HUNG" if res["hung"] else "ok", res["operations"], time.monotonic() - t0,
                len(res["errors"]), res["v6_tail"][-1:]), flush=True)
            for e in res["errors"][:3]:
                print("   ", e)
            if res["hung"] and a.evidence:
                with open(a.evidence, "a") as f:
                    f.write("#### run {} auth_id {} volume {}\n{}\n".format(
                        r + 1, res["auth_id"], res["volume"], res["diagnosis"]))
            if res["hung"] and res["still_blocked"]:
                print("    {} RPC clients still blocked after evicting v6".format(res["still_blocked"]))
    finally:
        rc = d.stop(timeout=60)
        print("daemon exit", rc, "log", d.log_path)
        if conftest.PRIVATE_PREFIX:
            r = conftest.RawFS(env)
            try:
                r.rmtree(conftest.VOLUME_PREFIX)
            finally:
                r.unmount()
    print("{} of {} runs hung".format(hung, a.runs))


if __name__ == "__main__":
    main()
