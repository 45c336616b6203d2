import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Brings a private dev cluster up around the whole suite it is attached to,
/// and always takes it down afterwards.
struct PrivateClusterScope: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let (cluster, took) = try timed { try PrivateCluster() }
        print("private cluster up in \(secs(took)) s at \(cluster.directory)")
        PrivateClusterHolder.set(cluster)
        defer {
            PrivateClusterHolder.set(nil)
            let (_, down) = timed { cluster.down() }
            print("private cluster down in \(secs(down)) s")
        }
        try await function()
    }
}

enum PrivateClusterHolder {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cluster: PrivateCluster?
    static func set(_ c: PrivateCluster?) { lock.withLock { cluster = c } }
    static var current: PrivateCluster? { lock.withLock { cluster } }
}

/// Admin handles on a private cluster, closed (with a time limit) when released.
final class PrivateAdmin: @unchecked Sendable {
    let cluster: RadosCluster
    let fs: CephFSMount
    init(_ pc: PrivateCluster) throws {
        cluster = try pc.connect()
        fs = try pc.mount(cluster: cluster)
    }
    var checker: InvariantChecker { InvariantChecker(fs: fs, cluster: cluster) }
    func close() {
        let (fs, cluster) = (fs, cluster)
        _ = runWithTimeout(20) {
            fs.close()
            cluster.shutdown()
        }
    }
}

extension FaultTests {
    /// Faults of the cluster itself (mon outage, MDS failover, an MDS rank that
    /// cannot become active) on a private cluster, so the shared dev cluster
    /// other tests use is never disturbed. One cluster serves the three
    /// suites; each test restores the daemons it stopped.
    @Suite("Private cluster faults", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"), PrivateClusterScope())
    struct PrivateClusterFaults {}
}

extension FaultTests.PrivateClusterFaults {
    static func cluster() throws -> PrivateCluster {
        try #require(PrivateClusterHolder.current, "the private cluster is not up")
    }

    @Suite("Mon outage", .serialized)
    struct MonOutageTests {
        @Test("mon down: ClusterTimeout within the request timeout, ping stays instant, recovery without restart")
        func monOutage() throws {
            let pc = try FaultTests.PrivateClusterFaults.cluster()
            #expect(pc.waitForMDS(timeout: 60) != nil, "cluster healthy before the test")
            let run = tag()
            let daemon = try VolumedProcess(
                conf: pc.confPath, instance: "fault-mon-\(run)", extraArguments: ["--cluster-timeout", "3", "--request-timeout", "8"])
            let pid = daemon.pid
            let s = try RPCSession(socket: daemon.socketPath, timeout: 60)
            let vol = VolumeRef(nil, "monvol-\(run)")
            let id = "monid-\(run)"
            try s.require("create_volume", ["volume_path": vp(vol)])

            try pc.stopDaemon("mon.a")
            var monStarted = false
            defer { if !monStarted { try? pc.startDaemon("mon.a") } }

            // Ping from another connection while the mon-dependent call is stuck.
            let pingLatency = LockedValue<TimeInterval?>(nil)
            let pinger = Thread {
                usleep(1_000_000)
                guard let p = try? RPCSession(socket: daemon.socketPath, timeout: 10) else { return }
                let (o, t) = timed { try? p.call("ping") }
                if o?.result == "pong" { pingLatency.set(t) }
            }
            pinger.start()
            let (outcome, latency) = timed { Result { try s.call("authorize", authorizeParams(vol, id)) } }
            usleep(200_000)
            let outageOutcome: RPCOutcome? = try? outcome.get()
            #expect(outageOutcome?.errorType == "ClusterTimeout", "authorize during the mon outage: \(outcome)")
            #expect(latency <= 8 + 2, "ClusterTimeout after \(secs(latency)) s; request timeout 8 s")
            let (pong, pongAfter) = timed { try? s.call("ping") }
            #expect(
                pong?.result == "pong" && pongAfter < 1, "ping during the outage: \(pong.map { "\($0)" } ?? "none") in \(secs(pongAfter)) s"
            )
            let concurrentPing = pingLatency.value
            #expect(
                concurrentPing != nil && concurrentPing! < 1, "ping while authorize was stuck: \(concurrentPing.map(secs) ?? "no answer")")

            try pc.startDaemon("mon.a")
            monStarted = true
            let quorum = pc.waitForQuorum(timeout: 60)
            #expect(quorum != nil, "mon.a back in quorum")

            // The same call succeeds, with no daemon restart.
            let retryStart = Date()
            var last: String = ""
            var succeeded = false
            while Date().timeIntervalSince(retryStart) < 30 {
                if let o = try? s.call("authorize", authorizeParams(vol, id)) {
                    last = "\(o)"
                    if o.ok {
                        succeeded = true
                        break
                    }
                } else {
                    last = "connection dropped"
                    break
                }
                usleep(500_000)
            }
            let recoveredAfter = Date().timeIntervalSince(retryStart)
            #expect(succeeded, "authorize after the mon returned: \(last)\n\(daemon.logTail())")
            #expect(daemon.isRunning && daemon.pid == pid, "the daemon never restarted or crashed")
            #expect(try s.require("recover") == .null)
            let admin = try PrivateAdmin(pc)
            defer { admin.close() }
            expectNoViolations(admin.checker.check(authIDs: [id], volumes: [vol]), "after the mon outage", daemon: daemon)
            #expect(admin.checker.grants(authIDs: [id], volumes: [vol]) == [Grant(id, vol): "rw"])
            print(
                "mon outage: authorize → \(outageOutcome?.errorType ?? "?") after \(secs(latency)) s (cluster timeout 3 s, request timeout 8 s); ping during outage \(concurrentPing.map(secs) ?? "-") s / \(secs(pongAfter)) s; quorum back \(quorum.map(secs) ?? "never") s after restart; call succeeded \(secs(recoveredAfter)) s later, same daemon pid"
            )
            #expect(daemon.stop()?.status == 0)
        }
    }

    @Suite("MDS failover", .serialized)
    struct MDSFailoverTests {
        @Test("active MDS stops under load: clean replies, calls succeed after the standby takes over")
        func mdsFailover() throws {
            let pc = try FaultTests.PrivateClusterFaults.cluster()
            #expect(pc.waitForMDS(timeout: 60) != nil, "cluster healthy before the test")
            let run = tag()
            let daemon = try VolumedProcess(conf: pc.confPath, instance: "fault-mds-\(run)", extraArguments: ["--request-timeout", "45"])
            let setup = try RPCSession(socket: daemon.socketPath, timeout: 60)
            let ids = (0..<2).map { "mdsid\($0)-\(run)" }
            let volumes = (0..<2).map { VolumeRef(nil, "mdsvol\($0)-\(run)") }
            for v in volumes { try setup.require("create_volume", ["volume_path": vp(v)]) }

            let stop = StopFlag()
            let tally = LoadTally()
            let created = LockedValue<[VolumeRef]>([])
            let socket = daemon.socketPath
            let loadDone = DispatchGroup()
            loadDone.enter()
            Thread {
                runThreads(2, timeout: 300) { t in
                    guard let s = try? RPCSession(socket: socket, timeout: 120) else { return }
                    var n = 0
                    while !stop.isSet {
                        n += 1
                        let id = ids.randomElement()!
                        let v = volumes.randomElement()!
                        let (method, params): (String, JSONValue)
                        switch Int.random(in: 0..<3) {
                        case 0: (method, params) = ("authorize", authorizeParams(v, id, readonly: Bool.random()))
                        case 1: (method, params) = ("deauthorize", deauthorizeParams(v, id))
                        default:
                            (method, params) = ("create_volume", ["volume_path": vp(VolumeRef(nil, "mdsnew\(t)-\(n)-\(run)"))])
                        }
                        do {
                            let o = try s.call(method, params)
                            tally.record(method, o)
                            if method == "create_volume" && o.ok {
                                created.update { $0.append(VolumeRef(nil, "mdsnew\(t)-\(n)-\(run)")) }
                            }
                        } catch {
                            tally.record(method, error)
                            return
                        }
                    }
                }
                loadDone.leave()
            }.start()

            usleep(1_500_000)
            let before = try pc.mdsMap()
            let victim = try #require(before.holder(rank: 0), "rank 0 holder: \(before.summary)")
            let stoppedAt = Date()
            try pc.stopDaemon("mds.\(victim.name)")
            let stopTook = Date().timeIntervalSince(stoppedAt)
            // Tell the mons at once, as an orchestrator that saw the daemon die
            // would; otherwise they wait for missed beacons (about 45 s here).
            _ = try? pc.ceph(["mds", "fail", victim.name])
            var restarted = false
            defer { if !restarted { try? pc.startDaemon("mds.\(victim.name)") } }
            var takeover: TimeInterval?
            var after = before
            var timeline: [String] = [
                "0.0 s: stopping mds.\(victim.name) (rank 0)",
                "\(secs(stopTook)) s: mds.\(victim.name) process gone; ceph mds fail \(victim.name)",
            ]
            var lastState = ""
            while Date().timeIntervalSince(stoppedAt) < 120 {
                if let m = try? pc.mdsMap() {
                    let h = m.holder(rank: 0)
                    let state = h.map { "rank 0: mds.\($0.name) \($0.state)\($0.laggy ? " (laggy)" : "")" } ?? "rank 0: failed"
                    if state != lastState {
                        timeline.append("\(secs(Date().timeIntervalSince(stoppedAt))) s: \(state)")
                        lastState = state
                    }
                    if let h, h.name != victim.name, h.state == "up:active" {
                        takeover = Date().timeIntervalSince(stoppedAt)
                        after = m
                        break
                    }
                }
                usleep(250_000)
            }
            print("MDS failover timeline:\n  " + timeline.joined(separator: "\n  "))
            #expect(takeover != nil, "a standby took rank 0 over within 120 s")
            let takeoverAt = Date()
            usleep(2_000_000)  // some load after the takeover
            stop.set()
            #expect(loadDone.wait(timeout: .now() + 120) == .success, "load threads ended")
            #expect(
                tally.malformed.isEmpty && tally.dropped == 0, "every in-flight call got a valid reply: \(tally.summary) \(tally.malformed)"
            )

            // Calls after the failover succeed (retrying until 60 s after the stop).
            let s = try RPCSession(socket: daemon.socketPath, timeout: 90)
            let probe = VolumeRef(nil, "mdsprobe-\(run)")
            var lastError = ""
            var firstSuccess: TimeInterval?
            while Date().timeIntervalSince(takeoverAt) < 60 {
                let a = try s.call("authorize", authorizeParams(volumes[0], ids[0]))
                let c = try s.call("create_volume", ["volume_path": vp(probe)])
                if a.ok && c.ok {
                    firstSuccess = Date().timeIntervalSince(stoppedAt)
                    break
                }
                lastError = "authorize: \(a); create_volume: \(c)"
                usleep(500_000)
            }
            #expect(firstSuccess != nil, "calls within 60 s after the takeover: \(lastError)")
            #expect(try s.require("recover") == .null)
            let admin = try PrivateAdmin(pc)
            defer { admin.close() }
            expectNoViolations(admin.checker.check(authIDs: ids, volumes: volumes), "after the MDS failover", daemon: daemon)
            #expect(admin.checker.grants(authIDs: [ids[0]], volumes: [volumes[0]]) == [Grant(ids[0], volumes[0]): "rw"])
            // Every create that reported success left a complete volume.
            for v in created.value + [probe] {
                let ns = (try? admin.fs.getxattrString(v.path(), "ceph.dir.layout.pool_namespace")) ?? nil
                #expect(ns == "fsvolumens_\(v.volume)", "\(v): created volume has its namespace")
                #expect(((try? admin.fs.statIfExists(v.metadataPath())) ?? nil) != nil, "\(v): created volume has its metadata file")
            }
            #expect(daemon.isRunning, "the daemon survived the failover")

            try pc.startDaemon("mds.\(victim.name)")
            restarted = true
            let restored = pc.waitForMDS(timeout: 90)
            #expect(restored != nil, "2 active ranks + 1 standby again")
            print(
                "MDS failover: stopped mds.\(victim.name) (rank 0); mds.\(after.holder(rank: 0)?.name ?? "?") active after \(takeover.map(secs) ?? "never") s; in-flight load \(tally.summary); first successful calls \(firstSuccess.map(secs) ?? "never") s after the stop"
            )
            #expect(daemon.stop()?.status == 0)
        }
    }

    @Suite("Evict timeout", .serialized)
    struct EvictTimeoutTests {
        @Test("evict while a rank cannot become active: ClusterTimeout within the call's timeout")
        func evictTimesOut() throws {
            let pc = try FaultTests.PrivateClusterFaults.cluster()
            #expect(pc.waitForMDS(timeout: 60) != nil, "cluster healthy before the test")
            let run = tag()
            let daemon = try VolumedProcess(
                conf: pc.confPath, instance: "fault-evict-\(run)", extraArguments: ["--cluster-timeout", "5", "--request-timeout", "60"])
            let s = try RPCSession(socket: daemon.socketPath, timeout: 60)
            let admin = try PrivateAdmin(pc)
            defer { admin.close() }
            let nobody = "evictid-\(run)"

            // A fresh connection per probe, so a late reply never answers the next call.
            func probe(_ timeout: Int) -> (outcome: RPCOutcome?, latency: TimeInterval, error: String?) {
                guard let c = try? RPCSession(socket: daemon.socketPath, timeout: 120) else { return (nil, 0, "cannot connect") }
                let start = Date()
                do {
                    let o = try c.call("evict", ["auth_id": .string(nobody), "timeout": .int(timeout)])
                    return (o, Date().timeIntervalSince(start), nil)
                } catch {
                    return (nil, Date().timeIntervalSince(start), "\(error)")
                }
            }
            func describe(_ p: (outcome: RPCOutcome?, latency: TimeInterval, error: String?)) -> String {
                "\(p.outcome.map { $0.errorType ?? ($0.ok ? "success" : "\($0)") } ?? p.error ?? "nothing") after \(secs(p.latency)) s"
            }
            func rank1State() -> String {
                guard let m = try? pc.mdsMap() else { return "?" }
                guard let h = m.holder(rank: 1) else { return m.failed.contains(1) ? "failed" : "not up" }
                return "mds.\(h.name) \(h.state)\(h.laggy ? " laggy" : "")"
            }

            // No standby, so nothing replaces what we break on rank 1.
            let map0 = try pc.mdsMap()
            let standby = try #require(map0.standbyNames.first, "a standby: \(map0.summary)")
            let rank1 = try #require(map0.holder(rank: 1), "rank 1: \(map0.summary)")
            let rank1PID = try #require(pc.daemonPID("mds.\(rank1.name)"))
            try pc.stopDaemon("mds.\(standby)")
            var standbyStopped = true
            var rank1Frozen = false
            defer {
                if rank1Frozen { kill(rank1PID, SIGCONT) }
                if standbyStopped { try? pc.startDaemon("mds.\(standby)") }
            }

            // 1. Rank 1's daemon hangs (SIGSTOP): still up:active in the map until
            //    the mons miss its beacons and mark it laggy; it answers nothing.
            kill(rank1PID, SIGSTOP)
            rank1Frozen = true
            let frozenBefore = rank1State()
            let hung = probe(3)
            let frozenAfter = rank1State()
            #expect(
                hung.outcome?.errorType == "ClusterTimeout" && hung.latency < 7,
                "evict(timeout 3) with rank 1's daemon hung (\(frozenBefore) → \(frozenAfter)): \(describe(hung)); \(hung.outcome.map { "\($0)" } ?? "")"
            )

            // 2. The hung daemon is failed by hand: rank 1 is failed (in, not up).
            _ = try pc.ceph(["mds", "fail", rank1.name])
            _ = waitUntil(timeout: 15, interval: 0.25) { (try? pc.mdsMap())?.holder(rank: 1) == nil }
            let failedState = rank1State()
            let failed = probe(3)
            #expect(
                failed.outcome?.errorType == "ClusterTimeout" && failed.latency >= 2.5 && failed.latency < 7,
                "evict(timeout 3) with rank 1 \(failedState): \(describe(failed)); \(failed.outcome.map { "\($0)" } ?? "")")

            kill(rank1PID, SIGCONT)  // it finds itself failed and respawns as a standby
            rank1Frozen = false
            try pc.startDaemon("mds.\(standby)")
            standbyStopped = false
            #expect(pc.waitForMDS(timeout: 90) != nil, "restored after the rank 1 cases: \((try? pc.mdsMap())?.summary ?? "?")")

            // 2. A rank held by a daemon stuck in up:reconnect: its replacement
            //    waits for a frozen client (SIGSTOP) to reconnect.
            _ = try pc.ceph(["config", "set", "mds", "mds_reconnect_timeout", "20"])
            defer { _ = try? pc.ceph(["config", "rm", "mds", "mds_reconnect_timeout"]) }
            let frozen = try VolumedProcess(conf: pc.confPath, instance: "fault-frozen-\(run)")
            let map1 = try pc.mdsMap()
            let frozenSessions = try volumedSessions(admin.fs, map: map1, instance: frozen.instance)
            #expect(frozenSessions[0] != nil, "the frozen client has a session on rank 0: \(frozenSessions)")
            frozen.signal(SIGSTOP)
            let victim = try #require(map1.holder(rank: 0))
            try pc.stopDaemon("mds.\(victim.name)")
            _ = try? pc.ceph(["mds", "fail", victim.name])  // no wait for missed beacons
            var restarted = false
            defer {
                frozen.kill9()
                if !restarted { try? pc.startDaemon("mds.\(victim.name)") }
            }
            var stuck: MDSMapView.Daemon?
            _ = waitUntil(timeout: 30, interval: 0.1) {
                if let m = try? pc.mdsMap(), let h = m.holder(rank: 0), h.name != victim.name, h.state != "up:active" {
                    stuck = h
                    return h.state == "up:reconnect"
                }
                return false
            }
            let stuckState = stuck?.state ?? "none"
            #expect(stuck != nil, "rank 0 taken over but not active yet")
            let stuckProbe = probe(3)
            let (outcome, latency) = (stuckProbe.outcome, stuckProbe.latency)
            let stateAfter = (try? pc.mdsMap())?.holder(rank: 0)?.state ?? "?"
            #expect(stateAfter != "up:active", "rank 0 stayed not active during the evict (now \(stateAfter)); inconclusive otherwise")
            #expect(outcome?.errorType == "ClusterTimeout", "evict with rank 0 in \(stuckState): \(outcome.map { "\($0)" } ?? "no reply")")
            #expect(latency >= 2.5 && latency < 7, "evict answered after \(secs(latency)) s; timeout 3 s")

            // Restore: the frozen client dies, its session is dropped at the
            // reconnect timeout, the stopped MDS comes back as standby.
            frozen.kill9()
            try pc.startDaemon("mds.\(victim.name)")
            restarted = true
            let restored = pc.waitForMDS(timeout: 90)
            #expect(restored != nil, "2 active ranks + 1 standby again")
            if let m = restored {
                for (_, gid) in m.up {
                    _ = try? admin.fs.mdsCommand(
                        String(gid),
                        ["prefix": "session evict", "filters": [.string("client_metadata.volumed_instance=\(frozen.instance)")]])
                }
            }
            #expect(try s.require("evict", ["auth_id": .string(nobody), "timeout": 10]) == .null, "evict works again")
            #expect(daemon.isRunning)
            print(
                "evict(timeout 3): rank 1 daemon hung (\(frozenBefore) → \(frozenAfter)): \(describe(hung)); rank 1 \(failedState): \(describe(failed)); rank 0 in \(stuckState) (frozen client): \(outcome?.errorType ?? outcome.map { "\($0)" } ?? "nothing") after \(secs(latency)) s"
            )
            #expect(daemon.stop()?.status == 0)
        }
    }
}

/// A value shared between threads.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.withLock { v } }
    func set(_ new: T) { lock.withLock { v = new } }
    func update(_ f: (inout T) -> Void) { lock.withLock { f(&v) } }
}
