import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

/// Runs blocking work (starting or stopping a daemon) on a thread of its own
/// rather than on the cooperative pool, which the other tests share.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

/// A daemon instance name of its own: at start-up a daemon evicts the
/// sessions of its instance name, so daemons must not share one.
func uniqueInstance() -> String { "vc-\(getpid())-\(UUID().uuidString.prefix(8))" }

/// The typed client against a real daemon on the dev cluster.
@Suite("VolumeClient (live daemon)", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct VolumeClientLiveTests {
    /// The daemon the tests share (whatever SharedDaemon starts), kept alive for the run.
    static let daemon = Result { try SharedDaemon.start() }

    let client: VolumeClient

    init() async throws {
        let path = try await offload { try Self.daemon.get().socketPath }
        client = VolumeClient(socketPath: path, callTimeout: 180)
    }
    var admin: ClusterAdmin { ClusterAdmin.shared }
    static let pool = "cephfs_data"

    func unique(_ prefix: String) -> String { TestCluster.uniqueName(prefix) }

    @Test func serviceMethods() async throws {
        #expect(try await client.ping() == "pong")

        let info = try await client.serverInfo()
        #expect(info.protocolVersion == ProtocolVersion.current)
        #expect(!info.version.isEmpty)
        #expect(info.fsid == (try admin.cluster.fsid()))
        #expect(!info.instance.isEmpty)
        #expect(info.uptimeSeconds >= 0)
        #expect(info.connections >= 1)
        #expect(info.inFlight >= 1, "server_info itself is in flight")

        let mons = try await client.getMonAddrs()
        #expect(!mons.isEmpty)
        #expect(mons.allSatisfy { $0.contains(":") && !$0.contains("/") })

        try await client.recover()
    }

    @Test func groupsVolumesQuotasAndSnapshots() async throws {
        let scratch = Scratch()
        let group = unique("vcg")
        let vol = unique("vcv")
        scratch.group(group)
        scratch.volume(group, vol)
        let v = VolumePath(groupID: group, volumeID: vol)

        try await client.createGroup(group, mode: 0o750)
        let groupStat = try admin.fs.stat(VolumeLayout.groupPath(group), followSymlinks: false)
        #expect(groupStat.mode & 0o7777 == 0o750)

        let path = try await client.createVolume(v, size: try ByteSize.parse("10MiB"))
        #expect(path == VolumeLayout.volumePath(group, vol))
        #expect(admin.xattr(path, "ceph.quota.max_bytes") == "10485760")
        #expect(admin.xattr(path, "ceph.dir.layout.pool_namespace") == "fsvolumens_\(vol)")
        #expect(try await client.getUsedBytes(v) == 0)

        try await client.setMaxBytes(v, maxBytes: 20 * 1_048_576)
        #expect(admin.settledXattr(path, "ceph.quota.max_bytes", expecting: "20971520") == "20971520")
        try await client.setMaxBytes(v, maxBytes: nil)
        let cleared = admin.settledXattr(path, "ceph.quota.max_bytes") { $0 == nil || $0 == "0" }
        #expect(cleared == nil || cleared == "0", "no quota: \(cleared ?? "nil")")

        // Not namespace-isolated, mode given.
        let plain = unique("vcplain")
        scratch.volume(nil, plain)
        let plainPath = try await client.createVolume(VolumePath(plain), namespaceIsolated: false, mode: 0o700)
        #expect(plainPath == VolumeLayout.volumePath(nil, plain))
        #expect(admin.xattr(plainPath, "ceph.dir.layout.pool_namespace") == nil)
        #expect(try admin.fs.stat(plainPath, followSymlinks: false).mode & 0o7777 == 0o700)

        // Volume snapshots.
        try await client.createSnapshotVolume(v, snapshotName: "s1")
        #expect(admin.exists(path + "/.snap/s1"))
        try await client.destroySnapshotVolume(v, snapshotName: "s1")
        #expect(!admin.exists(path + "/.snap/s1"))
        try await client.destroySnapshotVolume(v, snapshotName: "s1")  // idempotent

        // Group snapshots.
        try await client.createSnapshotGroup(group, snapshotName: "gs")
        #expect(admin.exists(VolumeLayout.groupPath(group) + "/.snap/gs"))
        try await client.destroySnapshotGroup(group, snapshotName: "gs")
        #expect(!admin.exists(VolumeLayout.groupPath(group) + "/.snap/gs"))

        // Clone a snapshot into an existing volume.
        let src = VolumePath(groupID: group, volumeID: unique("vcsrc"))
        scratch.volume(group, src.volumeID)
        let srcPath = try await client.createVolume(src)
        let content = Array("cloned content\n".utf8) + [0, 1, 2]
        try admin.writeFile(srcPath + "/hello.txt", content)
        try await client.createSnapshotVolume(src, snapshotName: "c1")
        try await client.cloneVolumeToExisting(destination: v, source: src, snapshotName: "c1")
        #expect(try admin.readFile(path + "/hello.txt") == content)
        try await client.destroySnapshotVolume(src, snapshotName: "c1")

        // A non-empty group cannot go.
        do {
            try await client.destroyGroup(group)
            Issue.record("destroyed a non-empty group")
        } catch let e as RPCError {
            #expect(e.code == .engineError)
            #expect(e.engineType == .volumeClientError)
        }

        // Tear down.
        for x in [v, src, VolumePath(plain)] {
            try await client.deleteVolume(x)
            try await client.purgeVolume(x)
            #expect(!admin.exists(VolumeLayout.volumePath(x.groupID, x.volumeID)))
            #expect(!admin.exists(VolumeLayout.trashPath(x.volumeID)))
        }
        try await client.destroyGroup(group)
        #expect(!admin.exists(VolumeLayout.groupPath(group)))
        try await client.destroyGroup(group)  // idempotent
    }

    @Test func authorization() async throws {
        let scratch = Scratch()
        let vol = unique("vcauth")
        let other = unique("vcauth2")
        let alice = unique("vcalice")
        let bob = unique("vcbob")
        scratch.volume(nil, vol)
        scratch.volume(nil, other)
        scratch.authID(alice)
        scratch.authID(bob)
        let v = VolumePath(vol)
        try await client.createVolume(v)
        try await client.createVolume(VolumePath(other))
        #expect(try await client.getAuthorizedIDs(v) == nil, "nothing authorised yet")

        // With a tenant the key comes back, and it is client.alice's.
        let key = try #require(try await client.authorize(v, authID: alice, tenantID: "tenant1"))
        #expect(!key.isEmpty)
        #expect(try admin.authGet(alice)?.key == key)

        // Without a tenant, no key.
        #expect(try await client.authorize(v, authID: bob, readonly: true) == nil)
        #expect(try admin.authGet(bob) != nil)

        let ids = try #require(try await client.getAuthorizedIDs(v))
        #expect(Set(ids) == [AuthorizedID(authID: alice, accessLevel: "rw"), AuthorizedID(authID: bob, accessLevel: "r")])

        // Another tenant may not take alice.
        do {
            try await client.authorize(VolumePath(other), authID: alice, tenantID: "tenant2")
            Issue.record("another tenant took alice")
        } catch let e as RPCError {
            #expect(e.engineType == .volumeClientError)
            #expect(e.message.contains("already in use"), "\(e.message)")
        }

        try await client.evict(authID: alice, volume: v, timeout: 10)
        try await client.deauthorize(v, authID: alice)
        try await client.deauthorize(v, authID: bob)
        #expect(try await client.getAuthorizedIDs(v) == nil)
        #expect(try admin.authGet(alice) == nil, "the ID goes with its last volume")

        for x in [v, VolumePath(other)] {
            try await client.deleteVolume(x)
            try await client.purgeVolume(x)
        }
    }

    @Test func objects() async throws {
        let name = unique("vcobj")
        defer { _ = try? admin.cluster.ioContext(pool: Self.pool).remove(name) }
        let data: [UInt8] = [0, 0, 1, 0x0A, 0x0D, 0x22, 0x5C, 255] + randomBytes(10_000) + [0]
        try await client.putObject(pool: Self.pool, object: name, data: data)
        #expect(try await client.getObject(pool: Self.pool, object: name) == data)

        let (got, version) = try await client.getObjectAndVersion(pool: Self.pool, object: name)
        #expect(got == data)
        #expect(version > 0)

        try await client.putObjectVersioned(pool: Self.pool, object: name, data: [1, 2, 3], version: version)
        let (got2, version2) = try await client.getObjectAndVersion(pool: Self.pool, object: name)
        #expect(got2 == [1, 2, 3])
        #expect(version2 > version)

        // A stale version is refused and changes nothing.
        do {
            try await client.putObjectVersioned(pool: Self.pool, object: name, data: [9], version: version)
            Issue.record("a stale versioned put succeeded")
        } catch let e as RPCError {
            #expect(e.engineType == .clusterError)
            #expect(e.errnoName == "ERANGE" || e.errnoName == "EOVERFLOW", "\(e)")
        }
        #expect(try await client.getObject(pool: Self.pool, object: name) == [1, 2, 3])

        // Unconditional, and empty.
        try await client.putObjectVersioned(pool: Self.pool, object: name, data: [])
        #expect(try await client.getObject(pool: Self.pool, object: name) == [])

        try await client.deleteObject(pool: Self.pool, object: name)
        try await client.deleteObject(pool: Self.pool, object: name)  // idempotent
        do {
            _ = try await client.getObject(pool: Self.pool, object: name)
            Issue.record("read a deleted object")
        } catch let e as RPCError {
            #expect(e.code == .engineError)
            #expect(e.engineType == .objectNotFound)
            #expect(e.errno == 2)
            #expect(e.errnoName == "ENOENT")
        }
    }

    @Test func invalidParamsAreRPCErrorsWithoutAnEngineType() async throws {
        do {
            try await client.createVolume(VolumePath(groupID: "_bad", volumeID: "v"))
            Issue.record("accepted a bad group name")
        } catch let e as RPCError {
            #expect(e.code == .invalidParams)
            #expect(e.engineType == nil)
            #expect(e.message.contains("volume_path.group_id"), "\(e.message)")
        }
        do {
            try await client.putObject(pool: "", object: "o", data: [])
            Issue.record("accepted an empty pool name")
        } catch let e as RPCError {
            #expect(e.code == .invalidParams)
        }
        do {
            _ = try await client.call("no_such_method")
            Issue.record("an unknown method answered")
        } catch let e as RPCError {
            #expect(e.code == .methodNotFound)
        }
    }

    @Test func fiftyTasksShareOneClient() async throws {
        let scratch = Scratch()
        let tag = unique("vcc")
        let count = 50
        for i in 0..<count { scratch.volume(nil, "\(tag)-\(i)") }
        defer {
            let io = try? admin.cluster.ioContext(pool: Self.pool)
            for i in 0..<count { _ = try? io?.remove("\(tag)-obj-\(i)") }
            io?.close()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                group.addTask { [client] in
                    let v = VolumePath("\(tag)-\(i)")
                    let object = "\(tag)-obj-\(i)"
                    let data = Array("object \(i) of \(tag)".utf8) + [UInt8(i)]

                    let path = try await client.createVolume(v, size: Int64(i + 1) * 1_048_576)
                    #expect(path == VolumeLayout.volumePath(nil, v.volumeID))
                    try await client.putObject(pool: Self.pool, object: object, data: data)
                    async let ping = client.ping()
                    async let used = client.getUsedBytes(v)
                    async let read = client.getObject(pool: Self.pool, object: object)
                    async let versioned = client.getObjectAndVersion(pool: Self.pool, object: object)
                    #expect(try await ping == "pong")
                    #expect(try await used == 0)
                    #expect(try await read == data)
                    #expect(try await versioned.data == data)
                    #expect(ClusterAdmin.shared.xattr(path, "ceph.quota.max_bytes") == String((i + 1) * 1_048_576))
                    try await client.deleteObject(pool: Self.pool, object: object)
                    try await client.deleteVolume(v)
                    try await client.purgeVolume(v)
                }
            }
            try await group.waitForAll()
        }
    }
}

/// A client that outlives its daemon: the next call after a restart connects again.
@Suite("VolumeClient reconnects", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct VolumeClientReconnectTests {
    @Test func theNextCallAfterADaemonRestartSucceeds() async throws {
        let instance = uniqueInstance()
        let first = try await offload { try DaemonProcess(extraArguments: ["--instance", instance]) }
        let client = VolumeClient(socketPath: first.socketPath, callTimeout: 30)
        #expect(try await client.ping() == "pong")
        #expect(client.connection.isConnected)
        let before = try await client.serverInfo()

        #expect(try await offload { first.stop() } == 0)
        // While it is down, calls fail at once with a connection error.
        do {
            try await client.ping()
            Issue.record("a call succeeded with the daemon down")
        } catch let e as ConnectionError {
            switch e {
            case .connectFailed(let path, let errno):
                #expect(path == first.socketPath)
                #expect(errno == .ENOENT || errno == .ECONNREFUSED)
            case .closed: break
            default: Issue.record("unexpected \(e)")
            }
        }

        // A new daemon on the same socket: the same client carries on.
        let second = try await offload { try first.restartOnSameSocket(extraArguments: ["--instance", instance]) }
        #expect(try await client.ping() == "pong")
        let after = try await client.serverInfo()
        #expect(after.fsid == before.fsid)
        #expect(after.connections >= 1)

        // Again, with no failed call in between: the first call after the
        // restart must not be lost on the dead connection.
        #expect(try await offload { second.stop() } == 0)
        let third = try await offload { try first.restartOnSameSocket(extraArguments: ["--instance", instance]) }
        #expect(try await client.ping() == "pong")
        #expect(try await client.getMonAddrs().isEmpty == false)

        // Concurrent calls right after a restart share one reconnect.
        #expect(try await offload { third.stop() } == 0)
        let fourth = try await offload { try first.restartOnSameSocket(extraArguments: ["--instance", instance]) }
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { try await client.ping() } }
            for try await pong in group { #expect(pong == "pong") }
        }
        // One connection for all the calls (the readiness probe's may linger briefly).
        var connections = Int.max
        for _ in 0..<40 {
            connections = try await client.serverInfo().connections
            if connections == 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(connections == 1, "one connection for all the calls")
        _ = try await offload { fourth.stop() }
    }
}
