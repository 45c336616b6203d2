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

/// Grants across a volume's life (issue 12): deleting a volume revokes its
/// grants, a tenant string never matches a missing tenant, and an entity the
/// service did not create gets back exactly the caps it had.
@Suite("grant lifecycle", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct GrantLifecycleTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    var admin: ClusterAdmin { ClusterAdmin.shared }
    let scratch = Scratch()

    @discardableResult
    func volume(_ vol: String) async throws -> String {
        scratch.volume(nil, vol)
        let r = try await v.call("create_volume", ["volume_path": vpath(nil, vol)])
        return try #require(r["mount_path"]?.stringValue)
    }

    func authID(_ prefix: String) -> String {
        let id = unique(prefix)
        scratch.authID(id)
        return id
    }

    /// Authorizes with a tenant and writes the keyring; returns the key.
    @discardableResult
    func authorize(_ vol: String, _ id: String, tenant: String = "t1", allowExisting: Bool = false) async throws -> String {
        let r = try await v.call(
            "authorize",
            [
                "volume_path": vpath(nil, vol), "auth_id": .string(id), "tenant_id": .string(tenant),
                "allow_existing_id": .bool(allowExisting),
            ])
        let key = try #require(r["auth_key"]?.stringValue)
        try GuestMount.writeKeyring(id: id, key: key)
        return key
    }

    static func mds(_ path: String, _ level: String = "rw") -> String { "allow \(level) path=\(path)" }
    static func osd(_ vol: String, _ level: String = "rw") -> String {
        "allow \(level) pool=cephfs_data namespace=fsvolumens_\(vol)"
    }

    /// Mounts `root` as `id` and reads `file`; the errno of the first failing step, or nil when the read worked.
    static func readAs(_ id: String, root: String, file: String) -> (errno: Errno?, bytes: [UInt8]) {
        let guest: GuestMount
        do {
            guest = try GuestMount(id: id, root: root)
        } catch let e as CephError {
            return (e.errno, [])
        } catch {
            return (.EIO, [])
        }
        defer { guest.dispose() }
        do {
            let f = try guest.fs.open("/" + file, flags: O_RDONLY)
            defer { f.close() }
            return (nil, try f.readAll())
        } catch {
            return (error.errno, [])
        }
    }

    // MARK: Item 2: grants do not outlive their volume

    @Test func deleteRevokesGrantsSoAReusedNameIsNotReadable() async throws {
        let vol = unique("reuse")
        let keep = unique("keep")
        let path = try await volume(vol)
        let keepPath = try await volume(keep)
        let oldTenant = authID("oldt")
        // Two volumes: the entity outlives the deleted one, so the old
        // tenant can still authenticate and try the reused path.
        try await authorize(vol, oldTenant, tenant: "old")
        try await authorize(keep, oldTenant, tenant: "old")
        #expect(Self.readAs(oldTenant, root: path, file: "missing").errno == .ENOENT, "the grant works before the delete")

        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        #expect(
            try admin.authGet(oldTenant)?.caps == ["mds": Self.mds(keepPath), "osd": Self.osd(keep), "mon": "allow r"],
            "delete_volume revoked the deleted volume's grant and nothing else")
        let meta = try admin.readJSON(VolumeLayout.authMeta(oldTenant))
        #expect(meta["subvolumes"]?.objectValue?.keys.sorted() == ["None/\(keep)"])
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])

        // A new owner gets the same name and writes a file.
        #expect(try await volume(vol) == path)
        #expect(try await v.call("get_authorized_ids", ["volume_path": vpath(nil, vol)]) == .null)
        let newOwner = authID("newo")
        try await authorize(vol, newOwner, tenant: "new")
        let secret = Array("new owner's data".utf8)
        try admin.writeFile(path + "/secret", secret)
        #expect(Self.readAs(newOwner, root: path, file: "secret").bytes == secret)

        let old = Self.readAs(oldTenant, root: path, file: "secret")
        #expect(old.bytes.isEmpty, "the old tenant read the new owner's file")
        #expect(old.errno == .EACCES || old.errno == .EPERM, "\(String(describing: old.errno))")
        #expect(try await v.call("get_authorized_ids", ["volume_path": vpath(nil, vol)]) == [[.string(newOwner), "rw"]])
    }

    @Test func deleteRemovesAnEntityWhoseOnlyGrantWasTheVolume() async throws {
        let vol = unique("only")
        try await volume(vol)
        let a = authID("onlya")
        let b = authID("onlyb")
        try await authorize(vol, a)
        try await authorize(vol, b, tenant: "t2")
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        #expect(try admin.authGet(a) == nil)
        #expect(try admin.authGet(b) == nil)
        #expect(!admin.exists(VolumeLayout.authMeta(a)))
        #expect(!admin.exists(VolumeLayout.authMeta(b)))
        #expect(!admin.exists(VolumeLayout.volumeMeta(nil, vol)))
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])
    }

    /// delete_volume revokes auth IDs whose server keys it does not hold:
    /// authorize calls of the same ID for other volumes run meanwhile, and
    /// all finish with consistent grants (no deadlock, no lost update).
    @Test func deleteRacesAuthorizeOfTheSameIDElsewhere() async throws {
        let doomed = unique("doom")
        let doomedPath = try await volume(doomed)
        let others = (0..<4).map { _ in unique("side") }
        for o in others { try await volume(o) }
        let id = authID("racer")
        try await authorize(doomed, id)
        let client = v.client
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await client.call("delete_volume", params: ["volume_path": vpath(nil, doomed)]) }
            for o in others {
                group.addTask {
                    _ = try await client.call(
                        "authorize", params: ["volume_path": vpath(nil, o), "auth_id": .string(id), "tenant_id": "t1"])
                }
            }
            try await group.waitForAll()
        }
        let e = try #require(try admin.authGet(id))
        #expect(!e.tokens("mds").contains(Self.mds(doomedPath)))
        #expect(Set(e.tokens("mds")) == Set(others.map { Self.mds(VolumeLayout.volumePath(nil, $0)) }))
        #expect(Set(e.tokens("osd")) == Set(others.map { Self.osd($0) }))
        let meta = try admin.readJSON(VolumeLayout.authMeta(id))
        #expect(Set(meta["subvolumes"]?.objectValue?.keys.map { $0 } ?? []) == Set(others.map { "None/\($0)" }))
        #expect(meta["dirty"] == false)
        try await v.call("purge_volume", ["volume_path": vpath(nil, doomed)])
    }

    /// Another process deletes the volume while authorize waits for the
    /// volume metadata flock (the test plays that process: it holds the
    /// flock, renames the volume away and unlinks the file, as delete_volume
    /// does). authorize must then fail, not grant the deleted path.
    @Test func authorizeWaitingForADeleteGrantsNothing() async throws {
        let vol = unique("race")
        let path = try await volume(vol)
        let id = authID("race")
        let metaPath = VolumeLayout.volumeMeta(nil, vol)
        let file = try admin.fs.open(metaPath, flags: O_RDWR)
        let owner = UInt64.random(in: 1...UInt64.max)
        try file.flock(.exclusive, owner: owner)
        var unlocked = false
        defer {
            if !unlocked { try? file.flock(.unlock, owner: owner) }
            file.close()
        }

        let client = v.client
        let call = Task { () -> Result<JSONValue, any Error> in
            do {
                return .success(try await client.call("authorize", params: ["volume_path": vpath(nil, vol), "auth_id": .string(id)]))
            } catch {
                return .failure(error)
            }
        }
        // The auth entry is written (dirty) before the volume lock is asked for.
        // Generous: in CI's full run this once took over 30 s (the whole suite is under load there).
        let dirty = waitUntil(timeout: 120) {
            admin.exists(VolumeLayout.authMeta(id)) && (try? admin.readJSON(VolumeLayout.authMeta(id)))?["dirty"] == true
        }
        #expect(dirty, "auth metadata never became dirty: \(String(describing: try? admin.readJSON(VolumeLayout.authMeta(id))))")
        try await Task.sleep(for: .milliseconds(500))
        _ = try? admin.fs.mkdir(VolumeLayout.prefix + "/_deleting", mode: 0o755)
        try admin.fs.rename(path, to: VolumeLayout.trashPath(vol))
        try admin.fs.unlink(metaPath)
        try file.flock(.unlock, owner: owner)
        unlocked = true

        let outcome = await call.value
        if case .failure(let e as RPCError) = outcome {
            #expect(e.errno == 2, "\(e)")
        } else {
            Issue.record("authorize of a volume deleted meanwhile: \(outcome)")
        }
        let caps = try admin.authGet(id)
        #expect(caps?.tokens("mds").contains(Self.mds(path)) != true, "the deleted path was granted: \(caps?.caps ?? [:])")
        #expect(!admin.exists(VolumeLayout.authMeta(id)), "the refused grant left its auth entry")
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])
    }

    /// A volume deleted as the v6 Python client does (rename to the trash,
    /// unlink the volume metadata, grants left in place), then made again.
    @Test func createRevokesGrantsLeftByAV6Delete() async throws {
        let vol = unique("v6del")
        let keep = unique("v6keep")
        let path = try await volume(vol)
        let keepPath = try await volume(keep)
        let old = authID("v6old")
        try await authorize(vol, old, tenant: "old")
        try await authorize(keep, old, tenant: "old")
        _ = try? admin.fs.mkdir(VolumeLayout.prefix + "/_deleting", mode: 0o755)
        try admin.fs.rename(path, to: VolumeLayout.trashPath(vol))
        try admin.fs.unlink(VolumeLayout.volumeMeta(nil, vol))
        #expect(try admin.authGet(old)?.tokens("mds").contains(Self.mds(path)) == true, "the v6 delete left the grant")

        try await volume(vol)
        #expect(
            try admin.authGet(old)?.caps == ["mds": Self.mds(keepPath), "osd": Self.osd(keep), "mon": "allow r"],
            "create_volume revoked the leftover grant")
        let meta = try admin.readJSON(VolumeLayout.authMeta(old))
        #expect(meta["subvolumes"]?.objectValue?.keys.sorted() == ["None/\(keep)"])
        try admin.writeFile(path + "/secret", Array("x".utf8))
        let r = Self.readAs(old, root: path, file: "secret")
        #expect(r.errno == .EACCES || r.errno == .EPERM, "\(String(describing: r.errno))")
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])
    }

    // MARK: Documented: volumes without a namespace share the pool

    @Test func aPoolWideGrantIsLoggedAsAWarning() async throws {
        let vol = unique("nonsw")
        scratch.volume(nil, vol)
        try await v.call("create_volume", ["volume_path": vpath(nil, vol), "namespace_isolated": false])
        let id = authID("poolwide")
        try await v.call("authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)])
        #expect(try admin.authGet(id)?.caps["osd"] == "allow rw pool=cephfs_data", "the seed's semantics, unchanged")
        let logged = waitUntil(timeout: 10) {
            v.daemon.log().split(separator: "\n").contains { $0.contains("client.\(id)") && $0.contains("every object in that pool") }
        }
        #expect(logged, "no warning about client.\(id)'s pool-wide grant")
        try await v.call("deauthorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)])
    }

    /// With the service caps OPERATIONS.md lists before `auth ls` was
    /// added, create_volume still works and still revokes the leftover
    /// grant, from the auth metadata.
    @Test func createRevokesLeftoversWithoutTheAuthLsCap() async throws {
        let service = authID("minsvc")
        try admin.authCreate(
            service,
            caps: [
                "mds": "allow *", "osd": "allow rw", "mgr": "allow r",
                "mon":
                    #"allow r, allow command "auth del", allow command "auth caps", allow command "auth get", allow command "auth get-or-create""#,
            ])
        let key = try #require(try admin.authGet(service)?.key)
        try GuestMount.writeKeyring(id: service, key: key)
        let daemon = try WatchedDaemon(extraArguments: ["--id", service])
        let minimal = VolumeClient(socketPath: daemon.socketPath, callTimeout: 120)

        let vol = unique("minv")
        scratch.volume(nil, vol)
        let path = try #require(
            try await minimal.call("create_volume", params: ["volume_path": vpath(nil, vol)])["mount_path"]?.stringValue)
        let old = authID("minold")
        _ = try await minimal.call("authorize", params: ["volume_path": vpath(nil, vol), "auth_id": .string(old)])
        _ = try? admin.fs.mkdir(VolumeLayout.prefix + "/_deleting", mode: 0o755)
        try admin.fs.rename(path, to: VolumeLayout.trashPath(vol))
        try admin.fs.unlink(VolumeLayout.volumeMeta(nil, vol))

        _ = try await minimal.call("create_volume", params: ["volume_path": vpath(nil, vol)])
        #expect(try admin.authGet(old) == nil, "the leftover grant was the entity's only one")
        #expect(!admin.exists(VolumeLayout.authMeta(old)))
        #expect(daemon.log().contains("no mon cap for 'auth ls'"))
        _ = try await minimal.call("delete_volume", params: ["volume_path": vpath(nil, vol)])
        _ = try await minimal.call("purge_volume", params: ["volume_path": vpath(nil, vol)])
    }

    // MARK: Item 4: "None" is not a missing tenant

    @Test func theStringNoneDoesNotMatchAMissingTenant() async throws {
        let vol = unique("nonet")
        try await volume(vol)
        let id = authID("untenanted")
        #expect(try await v.call("authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)]) == ["auth_key": .null])
        let meta = try admin.readJSON(VolumeLayout.authMeta(id))
        #expect(meta["tenant_id"] == .null, "v6 stores a missing tenant as null")
        let before = try admin.authGet(id)

        let e = try #require(
            await v.error(
                "authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id), "tenant_id": "None"]))
        #expect(e.code == .engineError)
        #expect(e.engineType == .volumeClientError)
        #expect(e.message == "auth ID: \(id) is already in use")
        #expect(try admin.authGet(id) == before)

        // And the other way round: an ID of tenant "None" is not untenanted.
        let named = authID("namednone")
        try await authorize(vol, named, tenant: "None")
        #expect(await v.error("authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(named)]) != nil)
        try await v.call("deauthorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)])
        try await v.call("deauthorize", ["volume_path": vpath(nil, vol), "auth_id": .string(named)])
    }

    // MARK: Item 5: entities the service did not create

    @Test(arguments: ["mon-only", "volume-caps", "other-caps"])
    func deauthorizeRestoresAnExistingEntity(_ kind: String) async throws {
        let vol = unique("exist")
        let other = unique("exo")
        let path = try await volume(vol)
        let otherPath = try await volume(other)
        let id = authID("exist")
        let caps: [String: String] =
            switch kind {
            case "mon-only": ["mon": "allow r"]
            case "volume-caps": ["mds": Self.mds(path), "osd": Self.osd(vol), "mon": "allow r"]
            default: ["mds": "allow r path=/elsewhere", "osd": "allow r pool=cephfs_data namespace=elsewhere", "mon": "allow r"]
            }
        try admin.authCreate(id, caps: caps)
        let before = try #require(try admin.authGet(id))

        #expect(try await authorize(vol, id, allowExisting: true) == before.key)
        // A second volume and a level change on the first, then both go.
        try await authorize(other, id)
        _ = try await v.call(
            "authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id), "tenant_id": "t1", "readonly": true])
        try await v.call("deauthorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)])
        let mid = try #require(try admin.authGet(id), "a pre-existing entity is never deleted")
        #expect(mid.tokens("mds").contains(Self.mds(otherPath)))
        for token in before.tokens("mds") where !token.isEmpty {
            #expect(mid.tokens("mds").contains(token), "its own grant \(token) stays")
        }
        try await v.call("deauthorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)])
        try await v.call("deauthorize", ["volume_path": vpath(nil, other), "auth_id": .string(id)])
        let after = try #require(try admin.authGet(id), "a pre-existing entity is never deleted")
        #expect(after == before, "exactly the caps (and key) it had before")
        #expect(!admin.exists(VolumeLayout.authMeta(id)))
    }

    @Test func deleteVolumeRestoresAnExistingEntity() async throws {
        let vol = unique("exdel")
        let path = try await volume(vol)
        let id = authID("exdel")
        try admin.authCreate(id, caps: ["mds": Self.mds(path), "osd": Self.osd(vol), "mon": "allow r"])
        let before = try #require(try admin.authGet(id))
        try await authorize(vol, id, allowExisting: true)
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        #expect(try admin.authGet(id) == before)
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])
    }
}
