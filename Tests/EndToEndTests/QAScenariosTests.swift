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

/// The scenarios of Ceph's qa/tasks/cephfs/test_volume_client.py, over the socket.
@Suite("QA scenarios (test_volume_client.py)", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct QAScenariosTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    var admin: ClusterAdmin { ClusterAdmin.shared }
    let scratch = Scratch()

    @discardableResult
    func createVolume(_ g: String?, _ vol: String, _ extra: [String: JSONValue] = [:]) async throws -> String {
        scratch.volume(g, vol)
        if let g { scratch.group(g) }
        var p: [String: JSONValue] = ["volume_path": vpath(g, vol)]
        p.merge(extra) { _, new in new }
        return try #require(try await v.call("create_volume", .object(p))["mount_path"]?.stringValue)
    }

    /// Authorizes with a tenant and writes the guest's keyring; returns the key.
    @discardableResult
    func authorizeGuest(_ g: String?, _ vol: String, _ id: String, tenant: String, readonly: Bool = false) async throws -> String {
        scratch.authID(id)
        let r = try await v.call(
            "authorize",
            ["volume_path": vpath(g, vol), "auth_id": .string(id), "tenant_id": .string(tenant), "readonly": .bool(readonly)])
        let key = try #require(r["auth_key"]?.stringValue)
        try GuestMount.writeKeyring(id: id, key: key)
        return key
    }

    func write(_ fs: CephFSMount, _ path: String, _ bytes: [UInt8]) throws {
        let f = try fs.open(path, flags: O_CREAT | O_WRONLY | O_TRUNC, mode: 0o644)
        defer { f.close() }
        try f.write(bytes, offset: 0)
        try f.fsync()
    }

    func read(_ fs: CephFSMount, _ path: String) throws -> [UInt8] {
        let f = try fs.open(path, flags: O_RDONLY)
        defer { f.close() }
        return try f.readAll()
    }

    // MARK: test_lifecycle

    @Test func lifecycle() async throws {
        let g = unique("lcg")
        let vol = unique("lcv")
        let id = unique("lcguest")
        let path = try await createVolume(g, vol, ["size": .int(100 << 20)])
        try await authorizeGuest(g, vol, id, tenant: "tenant1")
        #expect(try await v.call("get_authorized_ids", ["volume_path": vpath(g, vol)]) == [[.string(id), "rw"]])

        // The guest mounts its volume and writes.
        let guest = try GuestMount(id: id, root: path)
        let data = randomBytes(2 << 20)
        do {
            defer { guest.dispose() }
            try guest.fs.mkdir("/dir", mode: 0o755)
            try write(guest.fs, "/dir/data", data)
            #expect(try read(guest.fs, "/dir/data") == data)
            // It cannot reach outside its volume.
            #expect(throws: (any Error).self) { _ = try guest.fs.stat("/../../\(g)") }
        }
        #expect(try admin.readFile(path + "/dir/data") == data, "the data is in the volume")

        // rbytes propagates lazily (across two active MDS ranks, and under CI's load, 30 s was once too short).
        var used: Int64 = 0
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            used = try #require(try await v.call("get_used_bytes", ["volume_path": vpath(g, vol)]).int64Value)
            if used >= Int64(data.count) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(used == Int64(data.count))

        try await v.call("deauthorize", ["volume_path": vpath(g, vol), "auth_id": .string(id)])
        #expect(try admin.authGet(id) == nil)
        #expect(try await v.call("get_authorized_ids", ["volume_path": vpath(g, vol)]) == .null)
        // The guest can no longer connect.
        let retry = runWithTimeout(25) { () throws -> Bool in
            let g = try GuestMount(id: id, root: path)
            g.dispose()
            return true
        }
        if case .returned = retry { Issue.record("a deauthorized guest could still mount") }

        try await v.call("delete_volume", ["volume_path": vpath(g, vol)])
        #expect(!admin.exists(path))
        try await v.call("purge_volume", ["volume_path": vpath(g, vol)])
        #expect(!admin.exists(VolumeLayout.trashPath(vol)))
        try await v.call("destroy_group", ["group_id": .string(g)])
        #expect(!admin.exists(VolumeLayout.groupPath(g)))
    }

    // MARK: test_idempotency

    @Test func everyMutatingCallCanBeRepeated() async throws {
        let g = unique("idg")
        let vol = unique("idv")
        let id = unique("idguest")
        let snap = unique("ids")
        let gsnap = unique("idgs")
        scratch.group(g)
        scratch.volume(g, vol)
        scratch.authID(id)
        let obj: JSONValue = ["pool_name": "cephfs_data", "object_name": .string(unique("idobj")), "data": "aGVsbG8="]
        let objName: JSONValue = ["pool_name": "cephfs_data", "object_name": obj["object_name"]!]
        let steps: [(String, JSONValue?)] = [
            ("create_group", ["group_id": .string(g)]),
            ("create_volume", ["volume_path": vpath(g, vol), "size": .int(1 << 30)]),
            ("authorize", ["volume_path": vpath(g, vol), "auth_id": .string(id), "tenant_id": "tenant1"]),
            ("authorize", ["volume_path": vpath(g, vol), "auth_id": .string(id), "tenant_id": "tenant1", "readonly": true]),
            ("set_max_bytes", ["volume_path": vpath(g, vol), "max_bytes": .int(2 << 30)]),
            ("set_max_bytes", ["volume_path": vpath(g, vol), "max_bytes": .null]),
            ("evict", ["auth_id": .string(id)]),
            ("evict", ["auth_id": .string(id), "volume_path": vpath(g, vol)]),
            ("recover", nil),
            ("put_object", obj),
            ("delete_object", objName),
            ("destroy_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": .string(snap)]),
            ("destroy_snapshot_group", ["group_id": .string(g), "snapshot_name": .string(gsnap)]),
            ("deauthorize", ["volume_path": vpath(g, vol), "auth_id": .string(id)]),
            ("delete_volume", ["volume_path": vpath(g, vol)]),
            ("purge_volume", ["volume_path": vpath(g, vol)]),
            ("destroy_group", ["group_id": .string(g)]),
        ]
        for (method, params) in steps {
            let first = try await v.call(method, params)
            let second = try await v.call(method, params)
            #expect(first == second, "\(method): \(first) then \(second)")
        }
        #expect(!admin.exists(VolumeLayout.groupPath(g)))
        #expect(try admin.authGet(id) == nil)
        #expect(!admin.exists(VolumeLayout.authMeta(id)))
        #expect(!admin.exists(VolumeLayout.volumeMeta(g, vol)))
    }

    // MARK: test_data_isolated

    @Test func dataIsolatedVolumeHasItsOwnPool() async throws {
        let vol = unique("disov")
        let id = unique("disoguest")
        let pool = VolumeLayout.pool(vol)
        scratch.pool(pool)
        let path = try await createVolume(nil, vol, ["data_isolated": true])
        let poolID = try #require(try admin.poolID(pool), "pool \(pool) exists")
        #expect(try admin.dataPoolIDs().contains(poolID), "a data pool of the file system")
        #expect(admin.xattr(path, "ceph.dir.layout.pool") == pool)
        #expect(admin.xattr(path, "ceph.dir.layout.pool_namespace") == VolumeLayout.namespace(vol))
        // Idempotent.
        try await v.call("create_volume", ["volume_path": vpath(nil, vol), "data_isolated": true])
        #expect(try admin.poolID(pool) == poolID)

        try await authorizeGuest(nil, vol, id, tenant: "tenant1")
        #expect(try admin.authGet(id)?.caps["osd"] == "allow rw pool=\(pool) namespace=\(VolumeLayout.namespace(vol))")

        // The guest's data goes to the volume's pool.
        let guest = try GuestMount(id: id, root: path)
        do {
            defer { guest.dispose() }
            try write(guest.fs, "/f", randomBytes(100_000))
        }
        try await v.call("deauthorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)])
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol), "data_isolated": true])
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol), "data_isolated": true])
        #expect(try admin.poolID(pool) == nil, "pool deleted")
        #expect(!(try admin.dataPoolIDs().contains(poolID)))
        #expect(!admin.exists(VolumeLayout.trashPath(vol)))
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol), "data_isolated": true])
    }

    // MARK: test_readonly_authorization

    @Test func readonlyGuestCannotWrite() async throws {
        let vol = unique("rov")
        let id = unique("roguest")
        let path = try await createVolume(nil, vol)
        try admin.writeFile(path + "/existing", Array("hello".utf8))
        try await authorizeGuest(nil, vol, id, tenant: "tenant1", readonly: true)
        #expect(try await v.call("get_authorized_ids", ["volume_path": vpath(nil, vol)]) == [[.string(id), "r"]])

        let guest = try GuestMount(id: id, root: path)
        defer { guest.dispose() }
        #expect(try read(guest.fs, "/existing") == Array("hello".utf8), "reading works")
        let denied: Set<Errno> = [.EACCES, .EPERM, .EROFS]
        let fileErr = cephErrno { () throws(CephError) in
            let f = try guest.fs.open("/new", flags: O_CREAT | O_WRONLY, mode: 0o644)
            f.close()
        }
        #expect(fileErr != nil, "a read-only guest created a file")
        if let fileErr { #expect(denied.contains(fileErr), "\(fileErr)") }
        let dirErr = cephErrno { () throws(CephError) in try guest.fs.mkdir("/newdir") }
        #expect(dirErr != nil, "a read-only guest created a directory")
        if let dirErr { #expect(denied.contains(dirErr), "\(dirErr)") }
        #expect(!admin.exists(path + "/new"))
    }

    // MARK: test_multitenant_volumes and metadata format

    @Test func multiTenantMetadata() async throws {
        let g = unique("mtg")
        let v1 = unique("mtv1")
        let v2 = unique("mtv2")
        let a = unique("mta")
        let b = unique("mtb")
        try await createVolume(g, v1)
        try await createVolume(g, v2)
        try await authorizeGuest(g, v1, a, tenant: "tenant1")
        try await authorizeGuest(g, v2, a, tenant: "tenant1", readonly: true)
        try await authorizeGuest(g, v1, b, tenant: "tenant2")

        let metaA = try admin.readJSON(VolumeLayout.authMeta(a))
        #expect(metaA == expectedAuthMeta(tenant: "tenant1", [("\(g)/\(v1)", "rw"), ("\(g)/\(v2)", "r")]), "\(metaA)")
        let metaB = try admin.readJSON(VolumeLayout.authMeta(b))
        #expect(metaB == expectedAuthMeta(tenant: "tenant2", [("\(g)/\(v1)", "rw")]), "\(metaB)")

        let vmeta = try admin.readJSON(VolumeLayout.volumeMeta(g, v1))
        #expect(vmeta["version"] == 6)
        #expect(vmeta["compat_version"] == 1)
        #expect(vmeta["auths"] == expectedAuths([(a, "rw"), (b, "rw")]), "\(vmeta)")

        // A tenant cannot take over another tenant's ID.
        let e = try #require(
            await v.error(
                "authorize", ["volume_path": vpath(g, v2), "auth_id": .string(b), "tenant_id": "tenant1"]))
        #expect(e.message == "auth ID: \(b) is already in use")
        #expect(try admin.readJSON(VolumeLayout.authMeta(b)) == metaB)

        try await v.call("deauthorize", ["volume_path": vpath(g, v1), "auth_id": .string(a)])
        #expect(try admin.readJSON(VolumeLayout.authMeta(a)) == expectedAuthMeta(tenant: "tenant1", [("\(g)/\(v2)", "r")]))
        #expect(try admin.readJSON(VolumeLayout.volumeMeta(g, v1))["auths"] == expectedAuths([(b, "rw")]))
        try await v.call("deauthorize", ["volume_path": vpath(g, v2), "auth_id": .string(a)])
        try await v.call("deauthorize", ["volume_path": vpath(g, v1), "auth_id": .string(b)])
        #expect(!admin.exists(VolumeLayout.authMeta(a)))
        #expect(!admin.exists(VolumeLayout.authMeta(b)))
    }

    func expectedAuthMeta(tenant: String?, _ volumes: [(String, String)]) -> JSONValue {
        var subvolumes: [String: JSONValue] = [:]
        for (k, level) in volumes { subvolumes[k] = ["access_level": .string(level), "dirty": false] }
        return ["version": 6, "compat_version": 6, "dirty": false, "tenant_id": .str(tenant), "subvolumes": .object(subvolumes)]
    }

    func expectedAuths(_ ids: [(String, String)]) -> JSONValue {
        var o: [String: JSONValue] = [:]
        for (id, level) in ids { o[id] = ["access_level": .string(level), "dirty": false] }
        return .object(o)
    }

    // MARK: test_update_old_style_auth_metadata_to_new_during_recover / _during_authorize

    /// Rewrites the auth metadata in the pre-v6 format (`volumes` instead of
    /// `subvolumes`), optionally marking everything dirty as an interrupted update would.
    func makeOldStyle(_ id: String, dirty: Bool) throws {
        var text = String(decoding: try admin.readFile(VolumeLayout.authMeta(id)), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        text = text.replacingOccurrences(of: "subvolumes", with: "volumes")
        if dirty { text = text.replacingOccurrences(of: "false", with: "true") }
        try admin.writeFile(VolumeLayout.authMeta(id), Array(text.utf8), mode: 0o755)
        let old = try admin.readJSON(VolumeLayout.authMeta(id))
        #expect(old["volumes"] != nil && old["subvolumes"] == nil)
    }

    @Test func oldStyleAuthMetadataIsUpgradedDuringRecover() async throws {
        let g = unique("oldg")
        let vol = unique("oldv")
        let id = unique("oldguest")
        let path = try await createVolume(g, vol)
        try await authorizeGuest(g, vol, id, tenant: "tenant1")
        let caps = try admin.authGet(id)?.caps
        try makeOldStyle(id, dirty: true)

        try await v.call("recover")
        #expect(try admin.readJSON(VolumeLayout.authMeta(id)) == expectedAuthMeta(tenant: "tenant1", [("\(g)/\(vol)", "rw")]))
        #expect(try admin.authGet(id)?.caps == caps, "recovery redid the same grant")
        #expect(caps?["mds"] == "allow rw path=\(path)")
        #expect(try await v.call("get_authorized_ids", ["volume_path": vpath(g, vol)]) == [[.string(id), "rw"]])
        try await v.call("deauthorize", ["volume_path": vpath(g, vol), "auth_id": .string(id)])
        #expect(try admin.authGet(id) == nil)
    }

    @Test func oldStyleAuthMetadataIsUpgradedDuringAuthorize() async throws {
        let g = unique("oldag")
        let v1 = unique("oldav1")
        let v2 = unique("oldav2")
        let id = unique("oldaguest")
        try await createVolume(g, v1)
        try await createVolume(g, v2)
        try await authorizeGuest(g, v1, id, tenant: "tenant1")
        try makeOldStyle(id, dirty: false)

        try await authorizeGuest(g, v2, id, tenant: "tenant1")
        #expect(
            try admin.readJSON(VolumeLayout.authMeta(id))
                == expectedAuthMeta(
                    tenant: "tenant1", [("\(g)/\(v1)", "rw"), ("\(g)/\(v2)", "rw")]))
        // Deauthorize reads the upgraded file.
        try await v.call("deauthorize", ["volume_path": vpath(g, v1), "auth_id": .string(id)])
        try await v.call("deauthorize", ["volume_path": vpath(g, v2), "auth_id": .string(id)])
        #expect(try admin.authGet(id) == nil)
        #expect(!admin.exists(VolumeLayout.authMeta(id)))
    }

    // MARK: test_volume_without_namespace_isolation

    @Test func volumeWithoutNamespaceIsolation() async throws {
        let vol = unique("nnv")
        let id = unique("nnguest")
        let path = try await createVolume(nil, vol, ["namespace_isolated": false])
        #expect(admin.xattr(path, "ceph.dir.layout.pool_namespace") == nil)
        try await authorizeGuest(nil, vol, id, tenant: "tenant1")
        #expect(try admin.authGet(id)?.caps == ["mds": "allow rw path=\(path)", "osd": "allow rw pool=cephfs_data", "mon": "allow r"])
        let guest = try GuestMount(id: id, root: path)
        do {
            defer { guest.dispose() }
            let data = randomBytes(50_000)
            try write(guest.fs, "/f", data)
            #expect(try read(guest.fs, "/f") == data)
        }
        try await v.call("deauthorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)])
        #expect(try admin.authGet(id) == nil)
    }
}
