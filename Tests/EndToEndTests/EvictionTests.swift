import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#endif

/// evict with real guest mounts: the evicted session stops working, others do not.
@Suite("evict", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct EvictionTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    let scratch = Scratch()

    /// Creates a volume and authorizes `ids` on it (with a tenant, to get keys),
    /// writing each guest's keyring.
    func volumeWithGuests(_ ids: [String], group: String? = nil) async throws -> String {
        let vol = unique("ev")
        scratch.volume(group, vol)
        if let group { scratch.group(group) }
        let r = try await v.call("create_volume", ["volume_path": vpath(group, vol)])
        let path = try #require(r["mount_path"]?.stringValue)
        for id in ids {
            scratch.authID(id)
            let a = try await v.call(
                "authorize", ["volume_path": vpath(group, vol), "auth_id": .string(id), "tenant_id": "evtenant"])
            let key = try #require(a["auth_key"]?.stringValue)
            try GuestMount.writeKeyring(id: id, key: key)
        }
        return path
    }

    /// Whether the guest can still create something at the MDS. A call that
    /// does not return within `perCall` seconds counts as not working.
    static func works(_ g: GuestMount, perCall: TimeInterval = 5) -> Result<Void, any Error> {
        let name = "/probe-\(UInt32.random(in: 0...UInt32.max))"
        let fs = g.fs
        switch runWithTimeout(perCall, { try fs.mkdir(name, mode: 0o755) }) {
        case .returned: return .success(())
        case .threw(let e): return .failure(e)
        case .timedOut: return .failure(DaemonError("mkdir did not return within \(perCall) s"))
        }
    }

    static func isWorking(_ g: GuestMount) -> Bool {
        if case .success = works(g) { return true }
        return false
    }

    /// Waits up to `timeout` for the guest to stop working; returns the error it failed with.
    static func waitUntilBroken(_ g: GuestMount, timeout: TimeInterval = 15) -> (any Error)? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if case .failure(let e) = works(g) { return e }
            Thread.sleep(forTimeInterval: 0.5)
        }
        return nil
    }

    @Test func evictByAuthIDStopsOnlyThatIDsMounts() async throws {
        let a = unique("eva")
        let b = unique("evb")
        let pathA = try await volumeWithGuests([a])
        let pathB = try await volumeWithGuests([b])
        let ga = try GuestMount(id: a, root: pathA)
        defer { ga.dispose(evicted: true) }
        let gb = try GuestMount(id: b, root: pathB)
        defer { gb.dispose() }
        #expect(Self.isWorking(ga))
        #expect(Self.isWorking(gb))

        try await v.call("evict", ["auth_id": .string(a)])

        let failure = Self.waitUntilBroken(ga)
        #expect(failure != nil, "the evicted guest still works")
        if let e = failure as? CephError {
            #expect([Errno.ESHUTDOWN, .ENOTCONN, .EIO, .EACCES, .EPERM, .ECONNRESET].contains(e.errno), "\(e)")
        }
        #expect(Self.isWorking(gb), "the other guest is unharmed")
        // Its data is still readable by the other guest's own session.
        #expect(try gb.fs.stat("/").isDirectory)
    }

    @Test func evictByVolumePathOnlyEvictsSessionsMountedThere() async throws {
        let a = unique("evp")
        let group = unique("evg")
        let path1 = try await volumeWithGuests([a], group: group)
        // The same ID on a second volume.
        let vol2 = unique("ev2")
        scratch.volume(group, vol2)
        let path2 = try #require(try await v.call("create_volume", ["volume_path": vpath(group, vol2)])["mount_path"]?.stringValue)
        try await v.call("authorize", ["volume_path": vpath(group, vol2), "auth_id": .string(a), "tenant_id": "evtenant"])

        let g1 = try GuestMount(id: a, root: path1)
        defer { g1.dispose(evicted: true) }
        let g2 = try GuestMount(id: a, root: path2)
        defer { g2.dispose() }
        #expect(Self.isWorking(g1))
        #expect(Self.isWorking(g2))

        let vol1 = String(path1.split(separator: "/").last!)
        try await v.call("evict", ["auth_id": .string(a), "volume_path": vpath(group, vol1), "timeout": 20])

        #expect(Self.waitUntilBroken(g1) != nil, "the session mounted at the evicted volume still works")
        #expect(Self.isWorking(g2), "the same ID's session at another volume is unharmed")
    }

    /// Issue 12 item 3: a session of the ID that mounted a directory inside
    /// the volume is evicted too; one mounted at a sibling volume whose name
    /// only starts with the same text ("v" and "v2") is not.
    @Test func evictByVolumePathReachesSubdirectoryMountsOnly() async throws {
        let a = unique("evs")
        let group = unique("evg")
        let path = try await volumeWithGuests([a], group: group)
        let vol = String(path.split(separator: "/").last!)
        // A sibling whose path has the evicted volume's path as a string prefix.
        let sibling = vol + "2"
        scratch.volume(group, sibling)
        let siblingPath = try #require(
            try await v.call("create_volume", ["volume_path": vpath(group, sibling)])["mount_path"]?.stringValue)
        try await v.call("authorize", ["volume_path": vpath(group, sibling), "auth_id": .string(a), "tenant_id": "evtenant"])
        #expect(siblingPath.hasPrefix(path))
        try ClusterAdmin.shared.fs.mkdir(path + "/sub", mode: 0o777)
        try ClusterAdmin.shared.fs.mkdir(path + "/sub/deeper", mode: 0o777)

        let gsub = try GuestMount(id: a, root: path + "/sub")
        defer { gsub.dispose(evicted: true) }
        let gdeep = try GuestMount(id: a, root: path + "/sub/deeper")
        defer { gdeep.dispose(evicted: true) }
        let gsibling = try GuestMount(id: a, root: siblingPath)
        defer { gsibling.dispose() }
        #expect(Self.isWorking(gsub))
        #expect(Self.isWorking(gdeep))
        #expect(Self.isWorking(gsibling))

        try await v.call("deauthorize", ["volume_path": vpath(group, vol), "auth_id": .string(a)])
        try await v.call("evict", ["auth_id": .string(a), "volume_path": vpath(group, vol), "timeout": 20])

        #expect(Self.waitUntilBroken(gsub) != nil, "the session mounted at a sub-directory of the evicted volume still works")
        #expect(Self.waitUntilBroken(gdeep) != nil, "the session mounted two levels down still works")
        #expect(Self.isWorking(gsibling), "the same ID's session at the sibling volume \(sibling) was evicted")
    }

    @Test func evictWithoutSessionsSucceeds() async throws {
        let id = unique("evnone")
        _ = try await volumeWithGuests([id])
        try await v.call("evict", ["auth_id": .string(id)])
        try await v.call("evict", ["auth_id": .string(id), "timeout": 5])
        try await v.call("evict", ["auth_id": .string(id), "timeout": .number(JSONNumber(2.5)), "volume_path": vpath(nil, "nosuchvol")])
        // An ID that never existed.
        try await v.call("evict", ["auth_id": .string(unique("evnever")), "timeout": 10])
    }

    @Test func evictTimeoutParamIsChecked() async throws {
        await v.expectInvalidParams("evict", ["auth_id": "x", "timeout": "10"], naming: "timeout")
        await v.expectInvalidParams("evict", ["auth_id": "x", "timeout": -1], naming: "timeout")
        await v.expectInvalidParams("evict", ["timeout": 1], naming: "auth_id")
    }
}
