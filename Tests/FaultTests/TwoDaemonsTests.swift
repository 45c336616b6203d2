import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

extension FaultTests {
    /// Two daemons (different --instance, different sockets) on the shared
    /// cluster, hammering the same auth IDs and volumes: the metadata flocks
    /// must serialise them, so no update is lost; and one instance's start-up
    /// eviction must never touch the other's session.
    @Suite("Two daemons", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    struct TwoDaemonsTests {
        @Test("concurrent daemons lose no update and keep the invariants")
        func twoDaemonsHammerTheSamePairs() throws {
            let run = tag()
            let scratch = Scratch()
            let ids = (0..<2).map { "fault-two\($0)-\(run)" }
            let volumes = (0..<2).map { VolumeRef(nil, "fault-two\($0)-\(run)") }
            for id in ids { scratch.authID(id) }
            for v in volumes { scratch.volume(nil, v.volume) }
            let dirA = WorkDir("A")
            let dirB = WorkDir("B")
            let instanceA = "fault-A-\(run)"
            let instanceB = "fault-B-\(run)"
            var a = try VolumedProcess(instance: instanceA, socketPath: dirA.socket)
            let b = try VolumedProcess(instance: instanceB, socketPath: dirB.socket)
            let sa = try RPCSession(socket: a.socketPath)
            for v in volumes { try sa.require("create_volume", ["volume_path": vp(v)]) }

            // 2 threads per daemon, 40 calls each.
            let tally = LoadTally()
            let sockets = [a.socketPath, a.socketPath, b.socketPath, b.socketPath]
            let done = runThreads(4, timeout: 240) { t in
                var rng = SystemRandomNumberGenerator()
                guard let s = try? RPCSession(socket: sockets[t], timeout: 120) else {
                    tally.record("connect", RPCSessionError.malformed("cannot connect to \(sockets[t])"))
                    return
                }
                for _ in 0..<40 {
                    let id = ids.randomElement(using: &rng)!
                    let v = volumes.randomElement(using: &rng)!
                    let (method, params): (String, JSONValue) =
                        switch Int.random(in: 0..<3, using: &rng) {
                        case 0: ("authorize", authorizeParams(v, id, readonly: false))
                        case 1: ("authorize", authorizeParams(v, id, readonly: true))
                        default: ("deauthorize", deauthorizeParams(v, id))
                        }
                    do {
                        tally.record(method, try s.call(method, params))
                    } catch {
                        tally.record(method, error)
                        return
                    }
                }
            }
            #expect(done, "load threads did not finish")
            print("two daemons: 160 calls, \(tally.summary)")
            #expect(tally.malformed.isEmpty && tally.dropped == 0, "\(tally.summary) \(tally.malformed)")
            #expect(tally.errorCount == 0, "calls failed: \(tally.summary)\n--- A ---\n\(a.logTail())\n--- B ---\n\(b.logTail())")

            // Quiescent: metadata and caps agree, nothing dirty.
            let checker = sharedChecker()
            expectNoViolations(checker.check(authIDs: ids, volumes: volumes), "after concurrent load", daemon: b)

            // A deterministic pass whose outcome is known exactly.
            for id in ids { for v in volumes { try sa.require("authorize", authorizeParams(v, id)) } }
            let sb = try RPCSession(socket: b.socketPath)
            try sb.require("deauthorize", deauthorizeParams(volumes[0], ids[0]))
            try sb.require("authorize", authorizeParams(volumes[1], ids[1], readonly: true))
            expectNoViolations(checker.check(authIDs: ids, volumes: volumes), "after the deterministic pass")
            let want: [Grant: String] = [
                Grant(ids[0], volumes[1]): "rw", Grant(ids[1], volumes[0]): "rw", Grant(ids[1], volumes[1]): "r",
            ]
            #expect(checker.grants(authIDs: ids, volumes: volumes) == want)
            #expect(
                try sa.require("get_authorized_ids", ["volume_path": vp(volumes[1])]) == [
                    [.string(ids[0]), "rw"], [.string(ids[1]), "r"],
                ])

            // Restarting instance A evicts A's stale session, never B's.
            let admin = ClusterAdmin.shared
            func mdsMap() throws -> MDSMapView {
                try MDSMapView(
                    fsDump: try #require(try admin.cluster.monJSON(["prefix": "fs dump"])), fsName: TestCluster.environment!.fsName)
            }
            let bBefore = try volumedSessions(admin.fs, map: try mdsMap(), instance: instanceB)
            let aBefore = try volumedSessions(admin.fs, map: try mdsMap(), instance: instanceA)
            #expect(!bBefore.isEmpty, "B's session is listed by session ls")
            #expect(!aBefore.isEmpty, "A's session is listed by session ls")
            let killed = a.kill9()
            #expect(killed?.killedBySIGKILL == true)
            a = try VolumedProcess(instance: instanceA, socketPath: dirA.socket)
            let map = try mdsMap()
            let bAfter = try volumedSessions(admin.fs, map: map, instance: instanceB)
            let aAfter = try volumedSessions(admin.fs, map: map, instance: instanceA)
            for (rank, sessions) in bBefore {
                #expect(
                    Set(sessions).isSubset(of: Set(bAfter[rank] ?? [])),
                    "B's session on rank \(rank) survived A's restart: before \(sessions), after \(bAfter[rank] ?? [])")
            }
            let staleA = Set(aBefore.values.flatMap { $0 }).intersection(Set(aAfter.values.flatMap { $0 }))
            #expect(staleA.isEmpty, "A's previous session \(staleA) was evicted by A's restart")
            // B still works, taking the locks A's dead session held.
            let sb2 = try RPCSession(socket: b.socketPath)
            let (_, took) = try timed { try sb2.require("authorize", authorizeParams(volumes[0], ids[0])) }
            #expect(took < 10, "B's call after A's restart took \(secs(took)) s")
            let sa2 = try RPCSession(socket: a.socketPath)
            try sa2.require("deauthorize", deauthorizeParams(volumes[0], ids[0]))
            expectNoViolations(checker.check(authIDs: ids, volumes: volumes), "after A's restart")
            print("two daemons: B sessions before \(bBefore), after A's restart \(bAfter); A sessions before \(aBefore), after \(aAfter)")
            #expect(a.stop()?.status == 0)
            #expect(b.stop()?.status == 0)
        }
    }
}
