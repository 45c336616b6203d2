import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

extension FaultTests {
    /// SIGKILL at random moments under concurrent authorize/deauthorize/evict
    /// load; after each restart (same instance) and `recover`, the invariants
    /// must hold.
    @Suite("Random crashes under load", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    struct RandomCrashTests {
        static let rounds = 25
        static let threads = 4

        @Test("random SIGKILLs under concurrent load converge after recover")
        func randomKillsConverge() throws {
            let run = tag()
            let scratch = Scratch()
            let ids = (0..<3).map { "fault-rnd\($0)-\(run)" }
            let volumes = (0..<3).map { VolumeRef(nil, "fault-rnd\($0)-\(run)") }
            for id in ids { scratch.authID(id) }
            for v in volumes { scratch.volume(nil, v.volume) }
            let dir = WorkDir("random")
            let instance = "fault-random-\(run)"
            var daemon = try VolumedProcess(instance: instance, socketPath: dir.socket, extraArguments: crashPrefixArguments)
            let setup = try RPCSession(socket: daemon.socketPath)
            for v in volumes { try setup.require("create_volume", ["volume_path": vp(v)]) }
            let checker = sharedChecker(prefix: crashPrefix)
            var restartTimes: [TimeInterval] = []
            var inconsistencies = 0
            var totalOps = 0
            let tally = LoadTally()

            for round in 1...Self.rounds {
                // Load from 4 threads until the daemon dies.
                let socket = daemon.socketPath
                let seed = UInt64.random(in: 0...UInt64.max)
                let ops = LoadCounter()
                let finished = DispatchGroup()
                finished.enter()
                let loadThread = Thread {
                    runThreads(Self.threads, timeout: 120) { t in
                        var rng = SeededGenerator(seed: seed &+ UInt64(t))
                        guard let s = try? RPCSession(socket: socket, timeout: 60) else { return }
                        while true {
                            let id = ids[Int.random(in: 0..<ids.count, using: &rng)]
                            let v = volumes[Int.random(in: 0..<volumes.count, using: &rng)]
                            let (method, params): (String, JSONValue) =
                                switch Int.random(in: 0..<10, using: &rng) {
                                case 0..<4: ("authorize", authorizeParams(v, id, readonly: Bool.random(using: &rng)))
                                case 4..<8: ("deauthorize", deauthorizeParams(v, id))
                                default: ("evict", ["auth_id": .string(id), "timeout": 5])
                                }
                            do {
                                let o = try s.call(method, params)
                                tally.record(method, o)
                                ops.add()
                            } catch {
                                tally.record(method, error)
                                return
                            }
                        }
                    }
                    finished.leave()
                }
                loadThread.start()
                let delay = Int.random(in: 50...800)
                sleepMilliseconds(delay)
                let exit = daemon.kill9()
                #expect(exit?.killedBySIGKILL == true, "round \(round): \(exit.map { "\($0)" } ?? "still running")")
                #expect(finished.wait(timeout: .now() + 120) == .success, "round \(round): load threads did not end")
                totalOps += ops.value

                // Restart under the same instance; time to ping and a lock-taking call.
                daemon = try VolumedProcess(
                    instance: instance, socketPath: dir.socket, extraArguments: crashPrefixArguments, waitReady: false)
                _ = try daemon.waitUntilReady(timeout: 90)
                let s = try RPCSession(socket: daemon.socketPath, timeout: 90)
                for v in volumes { try s.require("get_authorized_ids", ["volume_path": vp(v)]) }
                let restart = Date().timeIntervalSince(daemon.launchedAt)
                restartTimes.append(restart)
                #expect(restart < 10, "round \(round): restart to first lock-taking calls took \(secs(restart)) s")
                let r = try s.call("recover")
                #expect(r.ok, "round \(round): recover: \(r)")
                let violations = checker.check(authIDs: ids, volumes: volumes)
                inconsistencies += violations.count
                expectNoViolations(violations, "round \(round) (killed \(delay) ms in, \(ops.value) calls done)", daemon: daemon)
                print(
                    "random crash round \(round): killed \(delay) ms into the load after \(ops.value) completed calls; restart \(secs(restart)) s; violations \(violations.count)"
                )
            }
            #expect(tally.malformed.isEmpty, "malformed replies: \(tally.malformed)")
            let stopped = daemon.stop()
            #expect(stopped?.reason == .exit && stopped?.status == 0)
            let worst = restartTimes.max() ?? 0
            print(
                "random crashes: \(Self.rounds) rounds, \(Self.threads) client threads, \(totalOps) calls completed (\(tally.summary)); inconsistencies found: \(inconsistencies); worst restart to first lock-taking call: \(secs(worst)) s"
            )
        }
    }
}

/// A thread-safe counter.
final class LoadCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
