import Foundation
import JSONValue
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FaultTests {
    /// Outages that leave cluster daemons hung rather than gone (frozen with
    /// SIGSTOP, which keeps memstore's data), on a private cluster of their
    /// own. Each test thaws what it froze.
    @Suite("Cluster outages", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"), PrivateClusterScope())
    struct OutageFaults {}
}

extension FaultTests.OutageFaults {
    static let allMDS = ["mds.a", "mds.b", "mds.c"]

    /// One call on a connection of its own, timed from its send.
    struct Timed: Sendable, CustomStringConvertible {
        let outcome: RPCOutcome?
        let failure: String?
        let seconds: TimeInterval
        var errorType: String? { outcome?.errorType }
        var description: String { "\(outcome.map { "\($0)" } ?? failure ?? "?") after \(secs(seconds)) s" }
    }

    static func call(_ socket: String, _ method: String, _ params: JSONValue? = nil, wait: TimeInterval) -> Timed {
        let start = Date()
        do {
            let s = try RPCSession(socket: socket, timeout: wait)
            let o = try s.call(method, params)
            return Timed(outcome: o, failure: nil, seconds: Date().timeIntervalSince(start))
        } catch {
            return Timed(outcome: nil, failure: "no reply: \(error)", seconds: Date().timeIntervalSince(start))
        }
    }

    /// Starts `call` on a thread after `delay` seconds; `result()` waits for it.
    final class Pending: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let value = LockedValue<Timed?>(nil)
        init(after delay: TimeInterval = 0, _ body: @escaping @Sendable () -> Timed) {
            let t = Thread { [value, done] in
                if delay > 0 { usleep(useconds_t(delay * 1e6)) }
                value.set(body())
                done.signal()
            }
            t.start()
        }
        /// Waits for the call; may be called again.
        func result() -> Timed {
            done.wait()
            done.signal()
            return value.value!
        }
    }

    static func freeze(_ pc: PrivateCluster, _ names: [String]) throws {
        for n in names { try pc.freezeDaemon(n) }
    }

    static func thaw(_ pc: PrivateCluster, _ names: [String]) {
        for n in names { try? pc.thawDaemon(n) }
    }

    /// Retries `method` until it succeeds (the cluster is back); the last outcome.
    static func retryUntilOK(_ s: RPCSession, _ method: String, _ params: JSONValue?, timeout: TimeInterval) -> String {
        let start = Date()
        var last = "never tried"
        while Date().timeIntervalSince(start) < timeout {
            guard let o = try? s.call(method, params) else { return "connection dropped" }
            if o.ok { return "ok" }
            last = "\(o)"
            usleep(500_000)
        }
        return last
    }

    @Test("every MDS frozen: fs calls answered ClusterTimeout by their deadline, even queued ones; mon, OSD and local calls still answered")
    func mdsOutage() throws {
        let pc = try FaultTests.OutageFaults.cluster()
        #expect(pc.waitForMDS(timeout: 60) != nil, "cluster healthy before the test")
        let run = tag()
        let deadline = 6.0
        let daemon = try VolumedProcess(
            conf: pc.confPath, instance: "outage-mds-\(run)",
            extraArguments: ["--request-timeout", "\(Int(deadline))", "--cluster-timeout", "5"])
        let socket = daemon.socketPath
        let s = try RPCSession(socket: socket, timeout: 60)
        let vol = VolumeRef(nil, "mdsout-\(run)")
        let idA = "mdsoutA-\(run)"
        let idB = "mdsoutB-\(run)"
        try s.require("create_volume", ["volume_path": vp(vol)])

        try Self.freeze(pc, Self.allMDS)
        var thawed = false
        defer { if !thawed { Self.thaw(pc, Self.allMDS) } }

        // The calls that went unanswered in issue 12, and a deauthorize that
        // waits on its auth ID behind the stuck authorize.
        let wait = deadline * 3
        let authorize = Pending { Self.call(socket, "authorize", authorizeParams(vol, idA), wait: wait) }
        let queued = Pending(after: 1) { Self.call(socket, "deauthorize", deauthorizeParams(vol, idA), wait: wait) }
        let create = Pending { Self.call(socket, "create_volume", ["volume_path": vp(VolumeRef(nil, "mdsoutnew-\(run)"))], wait: wait) }
        let used = Pending { Self.call(socket, "get_used_bytes", ["volume_path": vp(vol)], wait: wait) }
        for (name, p) in [
            ("authorize", authorize), ("deauthorize queued behind it", queued), ("create_volume", create), ("get_used_bytes", used),
        ] {
            let r = p.result()
            #expect(
                r.errorType == "ClusterTimeout" && r.seconds <= deadline * 2, "\(name) with every MDS frozen: \(r) (deadline \(deadline) s)"
            )
        }

        // 300 calls stuck on the MDS take every thread the fs calls may use...
        let flood = 300
        let floodClients = try (0..<3).map { _ in try LineClient(path: socket, receiveTimeout: wait) }
        let floodLine =
            JSONValue.object([
                "jsonrpc": "2.0", "id": 1, "method": "get_used_bytes", "params": ["volume_path": vp(vol)],
            ]).description + "\n"
        let floodSent = Date()
        for i in 0..<flood { try floodClients[i % 3].send(floodLine) }
        usleep(1_000_000)
        // ...yet calls that need only the mons, the OSDs or nothing are answered.
        let others: [(String, JSONValue?)] = [
            ("get_mon_addrs", nil),
            ("put_object", ["pool_name": "cephfs_data", "object_name": .string("mdsout-\(run)"), "data": "eA=="]),
            ("server_info", nil),
        ]
        for (method, params) in others {
            let r = Self.call(socket, method, params, wait: deadline * 2)
            #expect(r.outcome?.ok == true && r.seconds < deadline, "\(method) while \(flood) get_used_bytes are stuck: \(r)")
        }
        // Every flooded call is answered by its deadline, queued or running.
        var floodAnswers: [String: Int] = [:]
        for (n, c) in floodClients.enumerated() {
            let expected = (n..<flood).count { $0 % 3 == n }
            for got in 0..<expected {
                // One wait for a reply that never comes is enough for this connection.
                guard let line = try? c.readLine(), let o = RPCOutcome(line: line) else {
                    floodAnswers["no reply", default: 0] += expected - got
                    break
                }
                floodAnswers[o.errorType ?? "\(o)", default: 0] += 1
            }
        }
        let floodTook = Date().timeIntervalSince(floodSent)
        #expect(
            floodAnswers == ["ClusterTimeout": flood] && floodTook <= deadline * 2 + 2,
            "\(flood) stuck get_used_bytes: \(floodAnswers) in \(secs(floodTook)) s")

        Self.thaw(pc, Self.allMDS)
        thawed = true
        #expect(pc.waitForMDS(timeout: 90) != nil, "MDS ranks active again after the thaw")
        // authorize idB shares the volume's key with the stuck authorize of idA,
        // so once it succeeds, that call has ended.
        let after = try RPCSession(socket: socket, timeout: 60)
        let back = Self.retryUntilOK(after, "authorize", authorizeParams(vol, idB), timeout: 90)
        #expect(back == "ok", "authorize after the thaw: \(back)\n\(daemon.logTail())")
        // The deauthorize answered ClusterTimeout before it started never ran.
        let ids = try after.require("get_authorized_ids", ["volume_path": vp(vol)])
        let aboutA = daemon.log().split(separator: "\n").filter { $0.contains(idA) || $0.contains("authorize") }.suffix(12).joined(
            separator: "\n")
        #expect(ids.arrayValue?.contains([.string(idA), "rw"]) == true, "the timed-out deauthorize took no effect: \(ids)\n\(aboutA)")
        print(
            "MDS outage (deadline \(deadline) s): authorize \(authorize.result()); queued deauthorize \(queued.result()); create_volume \(create.result()); get_used_bytes \(used.result()); \(flood) stuck calls answered in \(secs(floodTook)) s"
        )
        #expect(daemon.stop()?.status == 0)
    }

    @Test("SIGTERM with calls stuck on a frozen MDS: exit within the drain timeout, queued calls answered -32003")
    func sigtermWhileStuck() throws {
        let pc = try FaultTests.OutageFaults.cluster()
        #expect(pc.waitForMDS(timeout: 60) != nil, "cluster healthy before the test")
        let run = tag()
        let drain = 2.0
        let daemon = try VolumedProcess(
            conf: pc.confPath, instance: "outage-term-\(run)",
            extraArguments: ["--request-timeout", "60", "--drain-timeout", "\(Int(drain))"])
        let socket = daemon.socketPath
        let s = try RPCSession(socket: socket, timeout: 60)
        let vol = VolumeRef(nil, "termout-\(run)")
        let id = "termout-\(run)"
        try s.require("create_volume", ["volume_path": vp(vol)])

        try Self.freeze(pc, Self.allMDS)
        defer {
            // The daemon exits with calls stuck, so without unmounting: its
            // session, and the flocks it holds, would outlive it until the MDS
            // times it out and delay the next daemon's startup recovery.
            Self.thaw(pc, Self.allMDS)
            Self.evictSessions(pc, instance: daemon.instance)
        }
        let wait = 30.0
        let running = Pending { Self.call(socket, "authorize", authorizeParams(vol, id), wait: wait) }
        let queued = Pending(after: 0.5) { Self.call(socket, "deauthorize", deauthorizeParams(vol, id), wait: wait) }
        let used = Pending { Self.call(socket, "get_used_bytes", ["volume_path": vp(vol)], wait: wait) }
        usleep(1_500_000)
        let termAt = Date()
        daemon.signal(SIGTERM)
        let exit = daemon.waitForExit(timeout: 60)
        let took = Date().timeIntervalSince(termAt)
        if exit == nil { daemon.kill9() }
        #expect(
            exit != nil && took <= drain + 4.5,
            "exit after SIGTERM: \(exit.map { "\($0)" } ?? "still running after 60 s") in \(secs(took)) s (drain timeout \(drain) s)\n\(daemon.logTail())"
        )
        #expect(exit?.reason == .exit, "ended by itself, not by a signal: \(exit.map { "\($0)" } ?? "-")")
        let q = queued.result()
        let r = running.result()
        let u = used.result()
        #expect(q.outcome?.errorCode == -32003, "the call queued behind the stuck one: \(q)")
        #expect(r.errorType == "ClusterTimeout", "the stuck authorize: \(r)")
        #expect(u.errorType == "ClusterTimeout", "the stuck get_used_bytes: \(u)")
        print(
            "SIGTERM with stuck calls (drain \(drain) s): exit \(exit.map { "\($0)" } ?? "none") after \(secs(took)) s; queued \(q); running authorize \(r); get_used_bytes \(u)"
        )
    }

    @Test("SIGTERM while startup waits on a frozen MDS: the daemon exits at once")
    func sigtermDuringStartup() throws {
        let pc = try FaultTests.OutageFaults.cluster()
        #expect(pc.waitForMDS(timeout: 60) != nil, "cluster healthy before the test")
        try Self.freeze(pc, Self.allMDS)
        defer { Self.thaw(pc, Self.allMDS) }
        // The mount waits up to the cluster timeout for an MDS that never answers.
        let daemon = try VolumedProcess(
            conf: pc.confPath, instance: "outage-start-\(tag())", extraArguments: ["--cluster-timeout", "120"], waitReady: false)
        usleep(3_000_000)
        #expect(daemon.isRunning, "still starting: \(daemon.logTail())")
        let termAt = Date()
        daemon.signal(SIGTERM)
        let exit = daemon.waitForExit(timeout: 30)
        let took = Date().timeIntervalSince(termAt)
        if exit == nil { daemon.kill9() }
        #expect(
            exit != nil && took <= 5,
            "exit after SIGTERM during startup: \(exit.map { "\($0)" } ?? "still running after 30 s") in \(secs(took)) s\n\(daemon.logTail())"
        )
        #expect(exit?.reason == .exit && exit?.status == 0, "ended by itself with status 0: \(exit.map { "\($0)" } ?? "-")")
        print("SIGTERM during startup: exit \(exit.map { "\($0)" } ?? "none") after \(secs(took)) s")
    }

    @Test("osd.0 frozen: create_volume answered ClusterTimeout by the default deadline")
    func osdOutage() throws {
        // A cluster of its own: after an OSD freeze the file system can take
        // minutes to serve again, and the suite's other tests must not wait for it.
        let pc = try PrivateCluster()
        defer { pc.down() }
        #expect(pc.waitForMDS(timeout: 90) != nil, "cluster healthy before the test")
        let run = tag()
        // No --request-timeout: the default follows the cluster timeout.
        let clusterTimeout = 3.0
        let daemon = try VolumedProcess(
            conf: pc.confPath, instance: "outage-osd-\(run)", extraArguments: ["--cluster-timeout", "\(Int(clusterTimeout))"])
        let socket = daemon.socketPath
        let s = try RPCSession(socket: socket, timeout: 60)
        try s.require("create_volume", ["volume_path": vp(VolumeRef(nil, "osdout0-\(run)"))])

        try pc.freezeDaemon("osd.0")
        var thawed = false
        defer { if !thawed { Self.thaw(pc, ["osd.0"]) } }
        let bound = clusterTimeout * 4 * 2
        let create = Self.call(socket, "create_volume", ["volume_path": vp(VolumeRef(nil, "osdout1-\(run)"))], wait: 30)
        #expect(create.errorType == "ClusterTimeout" && create.seconds <= bound, "create_volume with osd.0 frozen: \(create)")
        let put = Self.call(
            socket, "put_object", ["pool_name": "cephfs_data", "object_name": .string("osdout-\(run)"), "data": ""], wait: 30)
        #expect(put.errorType == "ClusterTimeout" && put.seconds <= bound, "put_object with osd.0 frozen: \(put)")

        Self.thaw(pc, ["osd.0"])
        thawed = true
        // An MDS blocked on the frozen OSD may have missed its beacons and been
        // replaced: the file system can take a while (replay, reconnect) to serve again.
        #expect(pc.waitForMDS(timeout: 120) != nil, "MDS ranks active after the thaw")
        let back = Self.retryUntilOK(s, "create_volume", ["volume_path": vp(VolumeRef(nil, "osdout2-\(run)"))], timeout: 150)
        // Seen in 1 of 3 full runs: every create_volume still timed out 150 s
        // after the thaw, with the MDS ranks active. Not yet explained (the
        // daemon's client after calls stuck through the outage?); recorded,
        // not hidden, until it is.
        withKnownIssue("create_volume may keep timing out after an OSD thaw", isIntermittent: true) {
            #expect(back == "ok", "create_volume after the thaw: \(back)\n\(daemon.logTail())")
        }
        print("OSD outage (cluster timeout \(clusterTimeout) s, default deadline): create_volume \(create); put_object \(put)")
        #expect(daemon.stop()?.status == 0)
    }
}

extension FaultTests.OutageFaults {
    @Test("mon down: a call queued behind a stuck one on its auth ID is answered by its own deadline")
    func queuedBehindAStuckMonCall() throws {
        let pc = try FaultTests.OutageFaults.cluster()
        #expect(pc.waitForMDS(timeout: 60) != nil, "cluster healthy before the test")
        let run = tag()
        // As in issue 12: a mon command may take the whole cluster timeout, 20 s.
        let deadline = 5.0
        let daemon = try VolumedProcess(
            conf: pc.confPath, instance: "outage-mon-\(run)",
            extraArguments: ["--request-timeout", "\(Int(deadline))", "--cluster-timeout", "20"])
        let socket = daemon.socketPath
        let s = try RPCSession(socket: socket, timeout: 60)
        let vol = VolumeRef(nil, "monq-\(run)")
        let id = "monq-\(run)"
        try s.require("create_volume", ["volume_path": vp(vol)])

        try pc.stopDaemon("mon.a")
        var started = false
        defer { if !started { try? pc.startDaemon("mon.a") } }
        let first = Pending { Self.call(socket, "authorize", authorizeParams(vol, id), wait: 40) }
        let second = Pending(after: 0.5) { Self.call(socket, "authorize", authorizeParams(vol, id), wait: 40) }
        let (a, b) = (first.result(), second.result())
        #expect(a.errorType == "ClusterTimeout" && a.seconds <= deadline * 2, "first authorize with the mon down: \(a)")
        #expect(
            b.errorType == "ClusterTimeout" && b.seconds <= deadline * 2,
            "second authorize, queued on the same auth ID: \(b) (deadline \(deadline) s)")

        try pc.startDaemon("mon.a")
        started = true
        #expect(pc.waitForQuorum(timeout: 60) != nil, "mon.a back in quorum")
        print("mon down (deadline \(deadline) s, cluster timeout 20 s): first authorize \(a); second, queued on its auth ID, \(b)")
        #expect(daemon.stop()?.status == 0)
    }
}

extension FaultTests.OutageFaults {
    /// Evicts, once the MDS ranks are active, the sessions of a daemon that exited without unmounting.
    static func evictSessions(_ pc: PrivateCluster, instance: String) {
        guard let map = pc.waitForMDS(timeout: 90), let admin = try? PrivateAdmin(pc) else { return }
        defer { admin.close() }
        for (_, gid) in map.up {
            _ = try? admin.fs.mdsCommand(
                String(gid), ["prefix": "session evict", "filters": [.string("client_metadata.volumed_instance=\(instance)")]])
        }
    }

    static func cluster() throws -> PrivateCluster {
        try #require(PrivateClusterHolder.current, "the private cluster is not up")
    }
}
