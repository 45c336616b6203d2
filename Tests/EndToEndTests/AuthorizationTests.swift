import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

/// authorize, deauthorize and get_authorized_ids, checked against cephx.
@Suite("authorization", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct AuthorizationTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    var admin: ClusterAdmin { ClusterAdmin.shared }
    let scratch = Scratch()

    /// A fresh volume; returns its path.
    @discardableResult
    func volume(_ g: String?, _ vol: String, namespaceIsolated: Bool = true) async throws -> String {
        scratch.volume(g, vol)
        if let g { scratch.group(g) }
        let r = try await v.call("create_volume", ["volume_path": vpath(g, vol), "namespace_isolated": .bool(namespaceIsolated)])
        return try #require(r["mount_path"]?.stringValue)
    }

    func authID(_ prefix: String = "guest") -> String {
        let id = unique(prefix)
        scratch.authID(id)
        return id
    }

    @discardableResult
    func authorize(
        _ g: String?, _ vol: String, _ id: String, readonly: Bool? = nil, tenant: String? = nil, allowExisting: Bool? = nil
    ) async throws -> JSONValue {
        var p: [String: JSONValue] = ["volume_path": vpath(g, vol), "auth_id": .string(id)]
        if let readonly { p["readonly"] = .bool(readonly) }
        if let tenant { p["tenant_id"] = .string(tenant) }
        if let allowExisting { p["allow_existing_id"] = .bool(allowExisting) }
        return try await v.call("authorize", .object(p))
    }

    func deauthorize(_ g: String?, _ vol: String, _ id: String) async throws {
        #expect(try await v.call("deauthorize", ["volume_path": vpath(g, vol), "auth_id": .string(id)]) == .null)
    }

    func authorizedIDs(_ g: String?, _ vol: String) async throws -> JSONValue {
        try await v.call("get_authorized_ids", ["volume_path": vpath(g, vol)])
    }

    static func mds(_ path: String, _ level: String = "rw") -> String { "allow \(level) path=\(path)" }
    static func osd(_ vol: String, _ level: String = "rw") -> String {
        "allow \(level) pool=cephfs_data namespace=fsvolumens_\(vol)"
    }

    // MARK: Basics

    @Test func authorizeCreatesTheEntityWithVolumeCaps() async throws {
        let g = unique("ag")
        let vol = unique("av")
        let path = try await volume(g, vol)
        let id = authID()
        let r = try await authorize(g, vol, id)
        #expect(r == ["auth_key": .null], "no key without a tenant")
        let e = try #require(try admin.authGet(id))
        #expect(e.caps == ["mds": Self.mds(path), "osd": Self.osd(vol), "mon": "allow r"])
        #expect(path == "/volumes/\(g)/\(vol)")
        #expect(try await authorizedIDs(g, vol) == [[.string(id), "rw"]])

        // Idempotent: same caps, no duplicates.
        try await authorize(g, vol, id)
        #expect(try admin.authGet(id) == e)
        #expect(try await authorizedIDs(g, vol) == [[.string(id), "rw"]])

        try await deauthorize(g, vol, id)
        #expect(try admin.authGet(id) == nil, "the entity goes with its last volume")
        #expect(try await authorizedIDs(g, vol) == .null)
        try await deauthorize(g, vol, id)
        #expect(!admin.exists(VolumeLayout.authMeta(id)))
    }

    @Test func authKeyIsReturnedOnlyWithATenant() async throws {
        let vol = unique("akv")
        try await volume(nil, vol)
        let id = authID()
        let r = try await authorize(nil, vol, id, tenant: "tenant1")
        let key = try #require(r["auth_key"]?.stringValue)
        #expect(key == (try admin.authGet(id))?.key)
        // Again, same key.
        #expect(try await authorize(nil, vol, id, tenant: "tenant1")["auth_key"]?.stringValue == key)
        try await deauthorize(nil, vol, id)
    }

    @Test func getAuthorizedIDsIsNullWithoutGrants() async throws {
        let vol = unique("nov")
        try await volume(nil, vol)
        #expect(try await authorizedIDs(nil, vol) == .null)
        #expect(try await authorizedIDs(nil, unique("neverv")) == .null, "a volume that does not exist")
        let a = authID("ga")
        let b = authID("gb")
        try await authorize(nil, vol, b)
        try await authorize(nil, vol, a, readonly: true)
        let ids = try #require(try await authorizedIDs(nil, vol).arrayValue)
        #expect(Set(ids) == [[.string(a), "r"], [.string(b), "rw"]])
        try await deauthorize(nil, vol, a)
        try await deauthorize(nil, vol, b)
        #expect(try await authorizedIDs(nil, vol) == .null)
    }

    @Test func readonlyThenReadWriteReplacesTheGrant() async throws {
        let vol = unique("rov")
        let path = try await volume(nil, vol)
        let id = authID()
        try await authorize(nil, vol, id, readonly: true)
        #expect(try admin.authGet(id)?.caps == ["mds": Self.mds(path, "r"), "osd": Self.osd(vol, "r"), "mon": "allow r"])
        #expect(try await authorizedIDs(nil, vol) == [[.string(id), "r"]])

        try await authorize(nil, vol, id, readonly: false)
        #expect(try admin.authGet(id)?.caps == ["mds": Self.mds(path), "osd": Self.osd(vol), "mon": "allow r"])
        #expect(try await authorizedIDs(nil, vol) == [[.string(id), "rw"]])

        try await authorize(nil, vol, id, readonly: true)
        #expect(try admin.authGet(id)?.caps == ["mds": Self.mds(path, "r"), "osd": Self.osd(vol, "r"), "mon": "allow r"])
        try await deauthorize(nil, vol, id)
        #expect(try admin.authGet(id) == nil)
    }

    @Test func twoVolumesForOneID() async throws {
        let g = unique("twog")
        let v1 = unique("two1")
        let v2 = unique("two2")
        let p1 = try await volume(g, v1)
        let p2 = try await volume(nil, v2)
        let id = authID()
        try await authorize(g, v1, id)
        try await authorize(nil, v2, id, readonly: true)
        let e = try #require(try admin.authGet(id))
        #expect(e.caps["mds"] == "\(Self.mds(p1)),\(Self.mds(p2, "r"))")
        #expect(e.caps["osd"] == "\(Self.osd(v1)),\(Self.osd(v2, "r"))")
        #expect(e.caps["mon"] == "allow r")

        // Auth metadata lists both.
        let meta = try admin.readJSON(VolumeLayout.authMeta(id))
        #expect(Set(meta["subvolumes"]?.objectValue?.keys.map { $0 } ?? []) == ["\(g)/\(v1)", "None/\(v2)"])

        // Deauthorize one: only its caps go.
        try await deauthorize(g, v1, id)
        #expect(try admin.authGet(id)?.caps == ["mds": Self.mds(p2, "r"), "osd": Self.osd(v2, "r"), "mon": "allow r"])
        #expect(try await authorizedIDs(g, v1) == .null)
        #expect(try await authorizedIDs(nil, v2) == [[.string(id), "r"]])
        try await deauthorize(g, v1, id)  // idempotent
        #expect(try admin.authGet(id)?.caps["mds"] == Self.mds(p2, "r"))

        try await deauthorize(nil, v2, id)
        #expect(try admin.authGet(id) == nil)
        #expect(!admin.exists(VolumeLayout.authMeta(id)))
    }

    @Test func tenantMismatchIsRefused() async throws {
        let v1 = unique("tm1")
        let v2 = unique("tm2")
        try await volume(nil, v1)
        try await volume(nil, v2)
        let id = authID()
        try await authorize(nil, v1, id, tenant: "alpha")
        let before = try admin.authGet(id)

        for other: String? in ["beta", nil] {
            let e = try #require(
                await v.error(
                    "authorize", ["volume_path": vpath(nil, v2), "auth_id": .string(id), "tenant_id": .str(other)]))
            #expect(e.code == .engineError)
            #expect(e.engineType == .volumeClientError)
            #expect(e.message == "auth ID: \(id) is already in use")
        }
        #expect(try admin.authGet(id) == before, "caps untouched")
        #expect(try await authorizedIDs(nil, v2) == .null)

        // The right tenant on the second volume is fine.
        try await authorize(nil, v2, id, tenant: "alpha")
        #expect(try await authorizedIDs(nil, v2) == [[.string(id), "rw"]])
        try await deauthorize(nil, v1, id)
        try await deauthorize(nil, v2, id)
    }

    @Test func noNamespaceVolumeGetsAPoolOnlyOSDCap() async throws {
        let vol = unique("nons")
        let path = try await volume(nil, vol, namespaceIsolated: false)
        let id = authID()
        try await authorize(nil, vol, id)
        #expect(try admin.authGet(id)?.caps == ["mds": Self.mds(path), "osd": "allow rw pool=cephfs_data", "mon": "allow r"])
        try await deauthorize(nil, vol, id)
        #expect(try admin.authGet(id) == nil)
    }

    // MARK: Existing entities

    @Test func existingIDNeedsAllowExistingID() async throws {
        let vol = unique("exv")
        let path = try await volume(nil, vol)
        let id = authID("oob")
        try admin.authCreate(id, caps: ["mon": "allow r"])
        let before = try #require(try admin.authGet(id))

        let e = try #require(await v.error("authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id)]))
        // Checked first: a concurrent recover (other suites call it) deletes
        // an empty auth metadata file.
        #expect(!admin.exists(VolumeLayout.authMeta(id)), "a refused authorize leaves no auth metadata file behind")
        #expect(e.code == .engineError)
        #expect(e.engineType == .volumeClientError)
        #expect(e.message.contains(id), "\(e.message)")
        #expect(try admin.authGet(id) == before, "nothing changed")
        #expect(try await authorizedIDs(nil, vol) == .null)

        // With tenant and readonly too: still refused.
        #expect(
            await v.error("authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(id), "tenant_id": "t", "readonly": true]) != nil)
        #expect(try admin.authGet(id) == before)

        let r = try await authorize(nil, vol, id, tenant: "t", allowExisting: true)
        #expect(r["auth_key"]?.stringValue == before.key, "the existing key, not a new one")
        #expect(try admin.authGet(id)?.caps == ["mds": Self.mds(path), "osd": Self.osd(vol), "mon": "allow r"])
        #expect(try await authorizedIDs(nil, vol) == [[.string(id), "rw"]])

        // Once ours (metadata exists), later authorize calls need no flag.
        try await authorize(nil, vol, id, tenant: "t")

        try await deauthorize(nil, vol, id)
        // The entity's own caps were only mon 'allow r': it is either deleted
        // (as the Python client does) or left exactly as it was made.
        if let after = try admin.authGet(id) {
            #expect(after.caps == before.caps)
            #expect(after.key == before.key)
        }
    }

    @Test func existingIDWithMdsButNoOsdCapsGetsValidCaps() async throws {
        let vol = unique("mdsonly")
        let path = try await volume(nil, vol)
        let id = authID("oobmds")
        try admin.authCreate(id, caps: ["mds": "allow r path=/elsewhere", "mon": "allow r"])
        try await authorize(nil, vol, id, allowExisting: true)
        let e = try #require(try admin.authGet(id))
        #expect(e.caps["mds"] == "allow r path=/elsewhere,\(Self.mds(path))")
        #expect(e.caps["osd"] == Self.osd(vol), "no leading comma")
        #expect(e.caps["mon"] == "allow r")
        for service in ["mds", "osd"] {
            #expect(!e.tokens(service).contains(""), "\(service): \(e.caps[service] ?? "")")
        }
        try await deauthorize(nil, vol, id)
        let after = try #require(try admin.authGet(id), "the out-of-band mds grant keeps the entity")
        #expect(after.caps["mds"] == "allow r path=/elsewhere")
        #expect(after.caps["osd"] == nil || after.caps["osd"] == "")
        #expect(after.caps["mon"] == "allow r")
    }

    @Test func outOfBandCapsSurviveDeauthorize() async throws {
        let v1 = unique("oobv1")
        let v2 = unique("oobv2")
        let p1 = try await volume(nil, v1)
        let p2 = try await volume(nil, v2)
        let id = authID("oobx")
        try await authorize(nil, v1, id)
        // An operator adds grants of their own.
        let extraMDS = "allow r path=/shared"
        let extraOSD = "allow r pool=cephfs_data namespace=shared"
        try admin.authSetCaps(
            id,
            caps: [
                "mds": "\(Self.mds(p1)), \(extraMDS)",
                "osd": "\(Self.osd(v1)), \(extraOSD)",
                "mon": "allow rw",
                "mgr": "allow r",
            ])
        try await authorize(nil, v2, id)
        let both = try #require(try admin.authGet(id))
        #expect(Set(both.tokens("mds")) == [Self.mds(p1), extraMDS, Self.mds(p2)])
        #expect(Set(both.tokens("osd")) == [Self.osd(v1), extraOSD, Self.osd(v2)])
        #expect(both.caps["mon"] == "allow rw")
        #expect(both.caps["mgr"] == "allow r")

        try await deauthorize(nil, v1, id)
        try await deauthorize(nil, v2, id)
        let after = try #require(try admin.authGet(id), "the entity keeps its other caps")
        #expect(after.tokens("mds") == [extraMDS])
        #expect(after.tokens("osd") == [extraOSD])
        #expect(after.caps["mon"] == "allow rw", "mon caps stay exactly as they were")
        #expect(after.caps["mgr"] == "allow r")
        #expect(try await authorizedIDs(nil, v1) == .null)
        #expect(try await authorizedIDs(nil, v2) == .null)
    }

    @Test func theServicesOwnIDIsRefused() async throws {
        let vol = unique("selfv")
        try await volume(nil, vol)
        let service = TestCluster.environment!.serviceID
        let before = try #require(try admin.authGet(service))
        for allow in [false, true] {
            let e = try #require(
                await v.error(
                    "authorize", ["volume_path": vpath(nil, vol), "auth_id": .string(service), "allow_existing_id": .bool(allow)]))
            #expect(e.code == .engineError)
            #expect(e.engineType == .volumeClientError)
        }
        #expect(try admin.authGet(service) == before)
        #expect(try await authorizedIDs(nil, vol) == .null)
        #expect(!admin.exists(VolumeLayout.authMeta(service)))
    }

    // MARK: Refusals that must leave nothing behind

    @Test func volumeIDReusedInAnotherGroupIsRefused() async throws {
        let g1 = unique("reg1")
        let g2 = unique("reg2")
        let vol = unique("rev")
        try await volume(g1, vol)
        scratch.group(g2)
        for other: String? in [g2, nil] {
            let e = try #require(await v.error("create_volume", ["volume_path": vpath(other, vol)]))
            #expect(e.code == .engineError)
            #expect(e.errno == 17)
            #expect(e.errnoName == "EEXIST")
            #expect(!admin.exists(VolumeLayout.volumePath(other, vol)))
            #expect(!admin.exists(VolumeLayout.volumeMeta(other, vol)))
        }
        #expect(!admin.exists(VolumeLayout.groupPath(g2)), "not even the group directory")
        // And a guest cannot be given the name in the other group.
        let id = authID()
        #expect(await v.error("authorize", ["volume_path": vpath(g2, vol), "auth_id": .string(id)]) != nil)
        #expect(try admin.authGet(id) == nil)
    }

    @Test func authorizeOnAMissingVolumeCreatesNothing() async throws {
        let g = unique("mg")
        let vol = unique("mv")
        scratch.volume(g, vol)
        let id = authID()
        for group: String? in [g, nil] {
            let e = try #require(await v.error("authorize", ["volume_path": vpath(group, vol), "auth_id": .string(id), "tenant_id": "t"]))
            #expect(e.code == .engineError)
            #expect(e.errno == 2)
            #expect(!admin.exists(VolumeLayout.volumeMeta(group, vol)))
        }
        #expect(!admin.exists(VolumeLayout.authMeta(id)))
        #expect(!admin.exists(VolumeLayout.volumePath(g, vol)))
        #expect(!admin.exists(VolumeLayout.groupPath(g)))
        #expect(try admin.authGet(id) == nil)
        // Deauthorizing what was never authorized is fine and creates nothing either.
        try await deauthorize(g, vol, id)
        #expect(!admin.exists(VolumeLayout.authMeta(id)))
        #expect(!admin.exists(VolumeLayout.volumeMeta(g, vol)))
    }

    @Test func deauthorizeAfterTheVolumeWasDeleted() async throws {
        let vol = unique("gone")
        try await volume(nil, vol)
        let id = authID()
        let other = unique("stay")
        let otherPath = try await volume(nil, other)
        try await authorize(nil, vol, id)
        try await authorize(nil, other, id)
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        try await deauthorize(nil, vol, id)
        // The deleted volume's grants are gone, the other's stay.
        #expect(try admin.authGet(id)?.caps == ["mds": Self.mds(otherPath), "osd": Self.osd(other), "mon": "allow r"])
        try await deauthorize(nil, other, id)
        #expect(try admin.authGet(id) == nil)
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])
    }
}
