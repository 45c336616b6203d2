import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

extension FaultTests {
    /// Issue 12 item 7: the daemon's own CephFS session. Each test has a
    /// private cluster: evicting the service's ID on the shared one would
    /// evict every other daemon and test there too.
    @Suite("Self eviction", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    struct SelfEvictionTests {
        /// The session ids of `instance` by MDS daemon name, from `session ls` as client.admin.
        static func sessions(_ pc: PrivateCluster, instance: String) throws -> [String: [Int64]] {
            var out: [String: [Int64]] = [:]
            for rank in try pc.mdsMap().activeRanks {
                guard let name = try pc.mdsMap().holder(rank: rank)?.name else { continue }
                let list = try pc.cephJSON(["tell", "mds.\(name)", "session", "ls"]).arrayValue ?? []
                let ids = list.filter { $0["client_metadata"]?["volumed_instance"]?.stringValue == instance }
                    .compactMap { $0["id"]?.int64Value }
                if !ids.isEmpty { out[name] = ids }
            }
            return out
        }

        static func volume(_ v: String) -> JSONValue { ["group_id": .null, "volume_id": .string(v)] }

        @Test("evict of the service's own ID is refused; the daemon keeps its session and keeps working")
        func evictOfOwnIDIsRefused() throws {
            let pc = try PrivateCluster()
            defer { pc.down() }
            #expect(pc.waitForMDS(timeout: 90) != nil, "cluster healthy before the test")
            let daemon = try VolumedProcess(conf: pc.confPath, instance: "selfev-\(tag())")
            defer { _ = daemon.stop() }
            let s = try RPCSession(socket: daemon.socketPath, timeout: 120)
            let vol = "selfev-\(tag())"
            try s.require("create_volume", ["volume_path": Self.volume(vol)])
            let before = try Self.sessions(pc, instance: daemon.instance)
            #expect(!before.isEmpty, "the daemon has an MDS session")

            for params: JSONValue in [["auth_id": "volumed"], ["auth_id": "volumed", "volume_path": Self.volume(vol), "timeout": 10]] {
                let o = try s.call("evict", params)
                #expect(o.errorCode == -32000, "evict \(params): \(o)")
                #expect(o.errorType == "VolumeClientError", "evict \(params): \(o)")
                #expect(o.error?["data"]?["errno_name"]?.stringValue == "EPERM", "evict \(params): \(o)")
            }

            // Still the same session, and it works.
            #expect(try s.call("get_authorized_ids", ["volume_path": Self.volume(vol)]).ok)
            let other = "selfev-\(tag())"
            let created = try s.call("create_volume", ["volume_path": Self.volume(other)])
            #expect(created.ok, "\(created)")
            #expect(try Self.sessions(pc, instance: daemon.instance) == before, "the daemon's sessions were replaced")
            #expect(daemon.stop()?.status == 0)
        }

        @Test("evicted from outside, the daemon remounts by itself and logs the episode once")
        func remountsAfterEvictionFromOutside() throws {
            let pc = try PrivateCluster()
            defer { pc.down() }
            #expect(pc.waitForMDS(timeout: 90) != nil, "cluster healthy before the test")
            let daemon = try VolumedProcess(conf: pc.confPath, instance: "remount-\(tag())")
            defer { _ = daemon.stop() }
            let s = try RPCSession(socket: daemon.socketPath, timeout: 120)
            let vol = "remount-\(tag())"
            // Metadata files the daemon keeps open between calls, on the session about to go.
            try s.require("create_volume", ["volume_path": Self.volume(vol)])
            try s.require("authorize", ["volume_path": Self.volume(vol), "auth_id": .string("ra-\(tag())"), "tenant_id": "t"])

            var seen: Set<Int64> = []
            for episode in 1...3 {
                // The last time under load: calls in flight on the evicted client must fail cleanly.
                let load = episode == 3 ? Load(socket: daemon.socketPath, threads: 4, tag: "\(vol)-l") : nil
                if load != nil { Thread.sleep(forTimeInterval: 1) }
                let before = try Self.sessions(pc, instance: daemon.instance)
                #expect(!before.isEmpty, "episode \(episode): the daemon has an MDS session")
                seen.formUnion(before.values.joined())
                // As an operator would (or the MDS itself, for an unresponsive client).
                for (name, ids) in before {
                    for id in ids {
                        let r = try pc.ceph(["tell", "mds.\(name)", "client", "evict", "id=\(id)"])
                        #expect(r.status == 0, "client evict id=\(id) on mds.\(name): \(r.stderr)")
                    }
                }
                let blocklist = try pc.ceph(["osd", "blocklist", "ls"])
                #expect(
                    blocklist.stderr.contains("listed") && !blocklist.stderr.contains("listed 0"),
                    "evicted clients are blocklisted: \(blocklist.stderr)")

                if let load {
                    Thread.sleep(forTimeInterval: 2)
                    let (calls, failures) = load.stop()
                    #expect(daemon.isRunning, "the daemon survived the eviction under load")
                    #expect(calls > failures.count, "the load ran: \(calls) calls")
                    for f in failures {
                        #expect(f.errorType == "ClusterError" && f.errorMessage?.contains("evicted") == true, "a call in flight: \(f)")
                    }
                    print("self eviction under load: \(calls) calls, \(failures.count) failed: \(failures.prefix(3))")
                }
                // The call that finds the session gone may fail, with a clear error; later calls work.
                let first = try s.call("get_authorized_ids", ["volume_path": Self.volume(vol)])
                if !first.ok {
                    #expect(first.errorType == "ClusterError", "\(first)")
                    #expect(first.error?["data"]?["errno_name"]?.stringValue == "ESHUTDOWN", "\(first)")
                    #expect(first.errorMessage?.contains("evicted") == true, "\(first)")
                }
                let id = "rb-\(tag())"
                let steps: [(String, JSONValue)] = [
                    ("get_authorized_ids", ["volume_path": Self.volume(vol)]),
                    ("authorize", ["volume_path": Self.volume(vol), "auth_id": .string(id), "tenant_id": "t"]),
                    ("deauthorize", ["volume_path": Self.volume(vol), "auth_id": .string(id)]),
                    ("create_volume", ["volume_path": Self.volume("\(vol)-\(episode)")]),
                    ("delete_volume", ["volume_path": Self.volume("\(vol)-\(episode)")]),
                ]
                for (method, params) in steps {
                    let o = try s.call(method, params)
                    #expect(o.ok, "episode \(episode): \(method) after the eviction: \(o)")
                }
                let after = try Self.sessions(pc, instance: daemon.instance)
                #expect(!after.isEmpty, "episode \(episode): the daemon has a session again")
                #expect(seen.isDisjoint(with: after.values.joined()), "episode \(episode): a new session, not an evicted one")

                let reports = daemon.log().split(separator: "\n").filter { $0.contains("remounted") }
                #expect(reports.count == episode, "episode \(episode): one report per episode:\n\(daemon.logTail(40))")
            }
            print("self eviction: \(daemon.log().split(separator: "\n").filter { $0.contains("remount") }.joined(separator: "\n"))")
            #expect(daemon.stop()?.status == 0)
        }

        /// Evicts every session of `instance`, as client.admin.
        static func evictAll(_ pc: PrivateCluster, instance: String) throws -> [String: [Int64]] {
            let sessions = try Self.sessions(pc, instance: instance)
            for (name, ids) in sessions {
                for id in ids {
                    let r = try pc.ceph(["tell", "mds.\(name)", "client", "evict", "id=\(id)"])
                    #expect(r.status == 0, "client evict id=\(id) on mds.\(name): \(r.stderr)")
                }
            }
            return sessions
        }

        @Test("a remount that fails is logged, tried again by a later call, and then succeeds")
        func failedRemountIsRetried() throws {
            let pc = try PrivateCluster()
            defer { pc.down() }
            #expect(pc.waitForMDS(timeout: 90) != nil, "cluster healthy before the test")
            let daemon = try VolumedProcess(conf: pc.confPath, instance: "remountfail-\(tag())")
            defer { _ = daemon.stop() }
            let s = try RPCSession(socket: daemon.socketPath, timeout: 120)
            let vol = "remountfail-\(tag())"
            try s.require("create_volume", ["volume_path": Self.volume(vol)])
            func caps(mds: String) throws {
                let r = try pc.ceph(["auth", "caps", "client.volumed", "mds", mds, "osd", "allow rw", "mon", "allow *", "mgr", "allow *"])
                #expect(r.status == 0, "auth caps: \(r.stderr)")
            }
            func lines(_ text: String) -> Int { daemon.log().split(separator: "\n").filter { $0.contains(text) }.count }

            // A new session may no longer mount the root.
            try caps(mds: "allow * path=/nowhere")
            #expect(!(try Self.evictAll(pc, instance: daemon.instance)).isEmpty)
            let start = Date()
            for i in 1...3 {
                let o = try s.call("get_authorized_ids", ["volume_path": Self.volume(vol)])
                #expect(!o.ok, "call \(i) with the session evicted and no remount possible: \(o)")
                #expect(o.errorType == "ClusterError" && o.errorMessage?.contains("evicted or blocklisted") == true, "call \(i): \(o)")
            }
            let quick = Date().timeIntervalSince(start) < 4
            #expect(lines("remount failed") >= 1, "the failed remount is logged:\n\(daemon.logTail(20))")
            if quick { #expect(lines("remount failed") == 1, "one attempt for calls within 5 s:\n\(daemon.logTail(20))") }
            #expect(lines("remounted") == 0)

            try caps(mds: "allow *")
            let recovered = waitUntil(timeout: 60, interval: 0.5) {
                (try? s.call("get_authorized_ids", ["volume_path": Self.volume(vol)]))?.ok == true
            }
            #expect(recovered, "calls work again once a remount can succeed:\n\(daemon.logTail(20))")
            #expect(lines("remounted") == 1, "\(daemon.logTail(20))")
            #expect(try s.call("create_volume", ["volume_path": Self.volume(vol + "-2")]).ok)
            #expect(!(try Self.sessions(pc, instance: daemon.instance)).isEmpty, "the daemon has a session again")
            print("failed remount: \(daemon.log().split(separator: "\n").filter { $0.contains("remount") }.joined(separator: "\n"))")
            #expect(daemon.stop()?.status == 0)
        }

        /// Calls on several connections at once until stopped: reads, and
        /// volumes made and deleted. Records every call that failed.
        final class Load: @unchecked Sendable {
            private let stopped = LockedValue(false)
            private let outcomes = LockedValue<(calls: Int, failures: [RPCOutcome])>((0, []))
            private let done = DispatchGroup()

            init(socket: String, threads: Int, tag: String) {
                for t in 0..<threads {
                    done.enter()
                    Thread.detachNewThread { [self] in
                        defer { done.leave() }
                        guard let s = try? RPCSession(socket: socket, timeout: 120) else { return }
                        var i = 0
                        while !stopped.value {
                            i += 1
                            let v = SelfEvictionTests.volume("\(tag)\(t)-\(i)")
                            let created = record(try? s.call("create_volume", ["volume_path": v]))
                            _ = record(try? s.call("get_authorized_ids", ["volume_path": v]))
                            if created { _ = record(try? s.call("delete_volume", ["volume_path": v])) }
                        }
                    }
                }
            }

            private func record(_ o: RPCOutcome?) -> Bool {
                outcomes.update { v in
                    v.calls += 1
                    if let o, !o.ok { v.failures.append(o) }
                }
                return o?.ok == true
            }

            /// Stops the threads; the number of calls made and the failures.
            func stop() -> (Int, [RPCOutcome]) {
                stopped.set(true)
                _ = done.wait(timeout: .now() + 120)
                let v = outcomes.value
                return (v.calls, v.failures)
            }
        }
    }
}
