import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

extension FaultTests {
    /// For every crash point of the engine (VOLUMED_CRASH_AT with
    /// --enable-crash-points, in a debug build): the daemon dies
    /// by SIGKILL at that step, a daemon restarted under the same instance
    /// name answers and takes the same locks again within the time budget, the
    /// interrupted call succeeds when repeated, `recover` converges, and the
    /// invariants hold with the intended final state.
    @Suite("Crash points", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    struct CrashPointTests {
        /// Every crash point, with the call that reaches it.
        static let crashPoints: [String] = [
            "authorize.auth_meta_dirty", "authorize.volume_meta_dirty", "authorize.caps_updated",
            "authorize.volume_meta_clean", "deauthorize.auth_meta_dirty", "deauthorize.volume_meta_dirty",
            "deauthorize.caps_updated", "deauthorize.volume_meta_removed", "create_volume.directory_made",
            "create_volume.layout_set", "delete_volume.trashed",
        ]

        /// The restart budget (the target is 5 s).
        static let restartLimit: TimeInterval = 10

        /// The crash points the engine declares, read from its source, so a
        /// new one cannot go untested.
        static func declaredCrashPoints() -> Set<String>? {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            guard let text = try? String(contentsOf: root.appendingPathComponent("Sources/VolumeEngine/CrashPoints.swift"), encoding: .utf8)
            else { return nil }
            var out = Set<String>()
            for line in text.split(separator: "\n") where line.contains("case ") && line.contains("= \"") {
                let parts = line.split(separator: "\"")
                if parts.count >= 2 { out.insert(String(parts[1])) }
            }
            return out
        }

        struct Row {
            let step: String
            let ping: TimeInterval
            let firstCalls: TimeInterval
            let total: TimeInterval
            let outcome: String
        }

        @Test("every crash point: SIGKILL, restart under the same instance, repeat, recover, invariants")
        func everyCrashPointRecovers() throws {
            if let declared = Self.declaredCrashPoints() {
                #expect(declared == Set(Self.crashPoints), "crash points in the engine: \(declared.sorted())")
            }
            let run = tag()
            let scratch = Scratch()
            let group = "fault-g-\(run)"
            scratch.group(group)
            let prepDir = WorkDir("prep")
            let prep = try VolumedProcess(instance: "fault-prep-\(run)", socketPath: prepDir.socket, extraArguments: crashPrefixArguments)
            let setup = try RPCSession(socket: prep.socketPath)
            try setup.require("create_group", ["group_id": .string(group)])
            let checker = sharedChecker(prefix: crashPrefix)
            var rows: [Row] = []

            for (i, step) in Self.crashPoints.enumerated() {
                let g: String? = i % 2 == 0 ? nil : group
                let vol = VolumeRef(g, "fault-cp\(i)-\(run)")
                let vol2 = VolumeRef(g, "fault-cp\(i)b-\(run)")
                let id = "fault-cp\(i)-\(run)"
                scratch.volume(g, vol.volume)
                scratch.volume(g, vol2.volume)
                scratch.authID(id)
                // Odd cases give the ID a second volume first, so the call
                // edits an existing entity instead of creating or deleting it.
                let second = i % 2 == 1
                let kind = String(step.split(separator: ".")[0])

                let caseStart = Date()
                func progress(_ what: String) {
                    if ProcessInfo.processInfo.environment["FAULT_VERBOSE"] != nil {
                        print("  [\(step)] +\(secs(Date().timeIntervalSince(caseStart))) s \(what)")
                    }
                }
                // Arrange the precondition with the preparing daemon.
                switch kind {
                case "authorize":
                    try setup.require("create_volume", ["volume_path": vp(vol)])
                    if second {
                        try setup.require("create_volume", ["volume_path": vp(vol2)])
                        try setup.require("authorize", authorizeParams(vol2, id))
                    }
                case "deauthorize":
                    try setup.require("create_volume", ["volume_path": vp(vol)])
                    try setup.require("authorize", authorizeParams(vol, id))
                    if second {
                        try setup.require("create_volume", ["volume_path": vp(vol2)])
                        try setup.require("authorize", authorizeParams(vol2, id))
                    }
                case "delete_volume":
                    try setup.require("create_volume", ["volume_path": vp(vol)])
                    try setup.require("authorize", authorizeParams(vol, id))
                default:
                    break
                }
                let (method, params): (String, JSONValue) =
                    switch kind {
                    case "authorize": ("authorize", authorizeParams(vol, id))
                    case "deauthorize": ("deauthorize", deauthorizeParams(vol, id))
                    case "create_volume": ("create_volume", ["volume_path": vp(vol)])
                    default: ("delete_volume", ["volume_path": vp(vol)])
                    }

                progress("precondition done")
                // The crashing daemon.
                let dir = WorkDir("cp\(i)")
                let instance = "fault-cp\(i)-\(run)"
                let crashing = try VolumedProcess(
                    instance: instance, socketPath: dir.socket, extraArguments: crashPrefixArguments, crashAt: step)
                let session = try RPCSession(socket: crashing.socketPath, timeout: 60)
                do {
                    let o = try session.call(method, params)
                    Issue.record("\(step): \(method) answered \(o); the daemon should have died at this step\n\(crashing.logTail())")
                } catch RPCSessionError.dropped {
                    // Expected: the daemon died mid-call.
                }
                progress("call dropped")
                let exit = crashing.waitForExit(timeout: 30)
                #expect(exit?.killedBySIGKILL == true, "\(step): daemon ended with \(exit.map { "\($0)" } ?? "still running")")
                if exit == nil { crashing.kill9() }

                // Restart under the same instance name and socket; time the first calls.
                let restarted = try VolumedProcess(
                    instance: instance, socketPath: dir.socket, extraArguments: crashPrefixArguments, waitReady: false)
                let ping = try restarted.waitUntilReady(timeout: 90)
                let s = try RPCSession(socket: restarted.socketPath, timeout: 90)
                var outcome = "ok"
                do {
                    try s.require("get_authorized_ids", ["volume_path": vp(vol)])
                    try s.require(method, params)
                } catch {
                    outcome = "FAILED: \(error)"
                    Issue.record("\(step): first calls after restart failed: \(error)\n\(restarted.logTail())")
                }
                let total = Date().timeIntervalSince(restarted.launchedAt)
                rows.append(Row(step: step, ping: ping, firstCalls: total - ping, total: total, outcome: outcome))
                #expect(total < Self.restartLimit, "\(step): restart to first lock-taking call took \(secs(total)) s")

                progress("restarted, calls done")
                let recovered = try s.call("recover")
                #expect(recovered.ok, "\(step): recover: \(recovered)")

                // Finish what a client would do next, then check the final state.
                switch kind {
                case "create_volume":
                    try s.require("authorize", authorizeParams(vol, id))
                case "delete_volume":
                    // Grants of a deleted volume are taken back by deauthorize.
                    try s.require("deauthorize", deauthorizeParams(vol, id))
                default:
                    break
                }
                let volumes = second ? [vol, vol2] : [vol]
                expectNoViolations(checker.check(authIDs: [id], volumes: volumes), step, daemon: restarted)
                let grants = checker.grants(authIDs: [id], volumes: volumes)
                let admin = ClusterAdmin.shared
                switch kind {
                case "authorize", "create_volume":
                    var want: [Grant: String] = [Grant(id, vol): "rw"]
                    if second && kind == "authorize" { want[Grant(id, vol2)] = "rw" }
                    #expect(grants == want, "\(step): final grants")
                    let ids = try s.require("get_authorized_ids", ["volume_path": vp(vol)])
                    #expect(ids == [[.string(id), "rw"]], "\(step): get_authorized_ids")
                    if kind == "create_volume" {
                        #expect(
                            admin.xattr(vol.path(prefix: crashPrefix), "ceph.dir.layout.pool_namespace") == "fsvolumens_\(vol.volume)",
                            "\(step): namespace")
                        #expect(admin.exists(vol.metadataPath(prefix: crashPrefix)), "\(step): volume metadata file")
                    }
                case "deauthorize":
                    var want: [Grant: String] = [:]
                    if second { want[Grant(id, vol2)] = "rw" }
                    #expect(grants == want, "\(step): final grants")
                    if !second {
                        #expect(try admin.authGet(id) == nil, "\(step): the entity is deleted with its last volume")
                        #expect(!admin.exists("\(crashPrefix)/$\(id).meta"), "\(step): auth metadata removed")
                    }
                default:  // delete_volume
                    #expect(!admin.exists(vol.path(prefix: crashPrefix)), "\(step): volume directory gone")
                    #expect(admin.exists("\(crashPrefix)/_deleting/\(vol.volume)"), "\(step): volume in the trash")
                    #expect(!admin.exists(vol.metadataPath(prefix: crashPrefix)), "\(step): volume metadata removed")
                    #expect(try admin.authGet(id) == nil, "\(step): entity deleted")
                    #expect(grants.isEmpty, "\(step): final grants \(grants)")
                }
                // The client's next step after a delete: purge the trash (bounded wait).
                var wedged = false
                if kind == "delete_volume" {
                    let purge = try RPCSession(socket: restarted.socketPath, timeout: 15)
                    do {
                        let o = try purge.call("purge_volume", ["volume_path": vp(vol)])
                        #expect(o.ok, "\(step): purge_volume: \(o)")
                    } catch {
                        wedged = true
                        Issue.record(
                            "\(step): purge_volume after the repeated delete_volume did not answer within 15 s (\(error)); see deleteTwiceThenPurge"
                        )
                    }
                }
                progress("checked")
                if wedged {
                    // A wedged daemon cannot shut down; kill it and let a restart evict its session.
                    killAndEvict(restarted, socket: dir.socket)
                } else {
                    let stopped = restarted.stop()
                    #expect(stopped?.reason == .exit && stopped?.status == 0, "\(step): clean shutdown: \(stopped.map { "\($0)" } ?? "?")")
                }
                withExtendedLifetime(crashing) {}
            }
            prep.stop()

            // The table for the closing note.
            print("")
            print("Crash points: restart (same --instance) → ping → get_authorized_ids + repeated call")
            print(col("crash point", 34) + col("ping s", 9) + col("calls s", 9) + col("total s", 9) + "outcome")
            for r in rows {
                print(col(r.step, 34) + col(secs(r.ping), 9) + col(secs(r.firstCalls), 9) + col(secs(r.total), 9) + r.outcome)
            }
            let worst = rows.max { $0.total < $1.total }
            print(
                "crash points covered: \(rows.count)/\(Self.crashPoints.count); worst restart to first lock-taking call: \(worst.map { "\(secs($0.total)) s (\($0.step))" } ?? "-"); budget \(Int(Self.restartLimit)) s, target 5 s"
            )
        }

        /// A crash point needs the daemon's hidden `--enable-crash-points` flag
        /// (and a debug build) besides the variable: the environment alone,
        /// set on a host by accident or inherited, must never kill a daemon.
        @Test("VOLUMED_CRASH_AT alone arms nothing")
        func environmentAloneArmsNothing() throws {
            let run = tag()
            let scratch = Scratch()
            let vol = VolumeRef(nil, "fault-env-\(run)")
            scratch.volume(nil, vol.volume)
            let daemon = try VolumedProcess(
                instance: "fault-env-\(run)", environment: ["VOLUMED_CRASH_AT": "create_volume.directory_made"])
            let s = try RPCSession(socket: daemon.socketPath, timeout: 60)
            do {
                let o = try s.call("create_volume", ["volume_path": vp(vol)])
                #expect(o.ok, "create_volume: \(o)")
            } catch {
                Issue.record(
                    "create_volume with only VOLUMED_CRASH_AT set: \(error); daemon: \(daemon.waitForExit(timeout: 5).map { "\($0)" } ?? "running")"
                )
            }
            #expect(daemon.isRunning)
            if daemon.isRunning { #expect(daemon.stop()?.status == 0) }
        }

        /// The flag arms only a step that exists, and says so in one line.
        @Test("--enable-crash-points needs VOLUMED_CRASH_AT naming a step")
        func enablingNeedsAKnownStep() throws {
            let dir = WorkDir("arm")
            let argv =
                VolumedProcess.arguments(
                    conf: TestCluster.environment!.confPath, socket: dir.socket, instance: "fault-arm-\(tag())") + ["--enable-crash-points"]
            for (value, message) in [(nil, "VOLUMED_CRASH_AT is not set"), ("no.such_step", "names no crash point: 'no.such_step'")] {
                var env = ProcessInfo.processInfo.environment
                env["VOLUMED_CRASH_AT"] = value
                let r = try runProcess(BuiltProducts.path("cephfs-volumed"), argv, timeout: 60, environment: env)
                #expect(r.status != 0)
                let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
                #expect(errors.count == 1 && errors[0].contains(message), "\(r.stderr)")
            }
        }

        /// Retrying delete_volume is what a client does after a crash at
        /// delete_volume.trashed (or after a lost reply); purge_volume must
        /// still work afterwards. No crash is needed to show it.
        @Test("delete_volume repeated, then purge_volume answers")
        func deleteTwiceThenPurge() throws {
            let run = tag()
            let scratch = Scratch()
            let vol = VolumeRef(nil, "fault-dd-\(run)")
            scratch.volume(nil, vol.volume)
            let dir = WorkDir("dd")
            let daemon = try VolumedProcess(instance: "fault-dd-\(run)", socketPath: dir.socket)
            let s = try RPCSession(socket: daemon.socketPath, timeout: 15)
            try s.require("create_volume", ["volume_path": vp(vol)])
            try s.require("delete_volume", ["volume_path": vp(vol)])
            try s.require("delete_volume", ["volume_path": vp(vol)])  // idempotent: the volume is already in the trash
            let (outcome, took) = timed { Result { try s.call("purge_volume", ["volume_path": vp(vol)]) } }
            let answered = (try? outcome.get())?.ok == true
            #expect(answered, "purge_volume after a repeated delete_volume: \(outcome) after \(secs(took)) s")
            if answered {
                #expect(!ClusterAdmin.shared.exists("/volumes/_deleting/\(vol.volume)"), "the trash entry is purged")
                #expect(daemon.stop()?.status == 0)
            } else {
                // The wedged call also keeps the daemon from shutting down on SIGTERM (see report).
                let (exit, stopTook) = timed { daemon.stop(timeout: 35) }
                #expect(exit?.reason == .exit, "SIGTERM with a wedged call: \(exit.map { "\($0)" } ?? "?") after \(secs(stopTook)) s")
                killAndEvict(daemon, socket: dir.socket)
            }
        }
    }
}
