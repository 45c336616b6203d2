import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

/// Parameter validation: every bad identifier, missing or mistyped param is
/// -32602 naming the field, and nothing is created.
@Suite("param validation", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct ValidationTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    var admin: ClusterAdmin { ClusterAdmin.shared }

    /// A group and a volume in it that the refused calls would act on, and an
    /// authorized ID, so a call that slipped through would change something.
    final class Fixture: Sendable {
        let group = unique("valg")
        let volume = unique("valv")
        let snapshot = unique("vals")
        let authID = unique("valid")
        /// In every invalid name a test makes, so a wrongly accepted one is found.
        let token = unique("tok")
        let scratch = Scratch()

        init() {
            scratch.volume(group, volume)
            scratch.group(group)
            scratch.authID(authID)
        }
    }

    let f = Fixture()

    func ensureFixture() async throws {
        try await v.call("create_volume", ["volume_path": vpath(f.group, f.volume)])
        try await v.call("authorize", ["volume_path": vpath(f.group, f.volume), "auth_id": .string(f.authID)])
    }

    /// What a refused call could have touched. Other suites (and other
    /// people's tests) create and remove entries in /volumes at the same
    /// time, so only entries an invalid identifier could have produced count:
    /// those holding the fixture's unique token (in every invalid name that
    /// has room for it), and the names made from "", "." and "..".
    struct State: Equatable {
        var suspicious: Set<String>
        var group: Set<String>
        var fixtureAuth: AuthEntity?
        var fixtureIDs: JSONValue
    }

    func isSuspicious(_ name: String) -> Bool {
        if name.contains(f.token) || name.contains(String(repeating: "a", count: 50)) { return true }
        var odd: Set<String> = ["$", "_:", "_\(f.group):", "_.:\(f.volume).meta", "_..:\(f.volume).meta", "_:\(f.volume).meta", "None"]
        for bad in ["", ".", ".."] {
            odd.insert("$\(bad).meta")
            odd.insert("_:\(bad).meta")
            odd.insert("_\(f.group):\(bad).meta")
            odd.insert("_None:\(bad).meta")
        }
        return odd.contains(name)
    }

    func state() async throws -> State {
        var suspicious: Set<String> = []
        for dir in [VolumeLayout.prefix, VolumeLayout.prefix + "/_nogroup", VolumeLayout.prefix + "/_deleting"] {
            for name in admin.names(dir) where isSuspicious(name) {
                suspicious.insert(dir + "/" + name)
            }
        }
        return State(
            suspicious: suspicious,
            group: admin.names(VolumeLayout.groupPath(f.group)),
            fixtureAuth: try admin.authGet(f.authID),
            fixtureIDs: try await v.call("get_authorized_ids", ["volume_path": vpath(f.group, f.volume)]))
    }

    /// Expects -32602 naming `field`.
    func refused(
        _ method: String, _ params: JSONValue, naming field: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        await v.expectInvalidParams(method, params, naming: field, sourceLocation: sourceLocation)
    }

    /// Runs `body` (refused calls) and expects the state unchanged after it.
    func expectNothingChanges(
        sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
    ) async throws {
        try await ensureFixture()
        let before = try await state()
        try await body()
        let after = try await state()
        #expect(after == before, "refused calls changed something", sourceLocation: sourceLocation)
    }

    /// Invalid identifiers, by description; `u` makes each unique where the
    /// rule allows, so that a wrongly accepted one would be found.
    static func invalidIdentifiers(_ u: String) -> [(String, String)] {
        [
            ("empty", ""),
            ("slash", "/"),
            ("a/b", "\(u)/b"),
            ("NUL", "\(u)\u{0}x"),
            ("..", ".."),
            (".", "."),
            ("_x", "_\(u)"),
            ("$x", "$\(u)"),
            (".x", ".\(u)"),
            ("x.meta", "\(u).meta"),
            ("300 chars", String(repeating: "a", count: 300)),
            ("space", "\(u) x"),
            ("colon", "\(u):x"),
            ("non-ASCII", "\(u)é"),
        ]
    }

    static let cases = ["empty", "slash", "a/b", "NUL", "..", ".", "_x", "$x", ".x", "x.meta", "300 chars", "space", "colon", "non-ASCII"]

    @Test(arguments: cases)
    func invalidGroupID(_ which: String) async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            let bad = JSONValue.string(Self.invalidIdentifiers(u).first { $0.0 == which }!.1)
            try await refused("create_group", ["group_id": bad], naming: "group_id")
            try await refused("destroy_group", ["group_id": bad], naming: "group_id")
            try await refused("create_volume", ["volume_path": ["group_id": bad, "volume_id": .string(u)]], naming: "volume_path.group_id")
            try await refused(
                "delete_volume", ["volume_path": ["group_id": bad, "volume_id": .string(f.volume)]], naming: "volume_path.group_id")
            try await refused(
                "purge_volume", ["volume_path": ["group_id": bad, "volume_id": .string(f.volume)]], naming: "volume_path.group_id")
            try await refused(
                "authorize", ["volume_path": ["group_id": bad, "volume_id": .string(f.volume)], "auth_id": .string(f.authID)],
                naming: "volume_path.group_id")
            try await refused(
                "deauthorize", ["volume_path": ["group_id": bad, "volume_id": .string(f.volume)], "auth_id": .string(f.authID)],
                naming: "volume_path.group_id")
            try await refused("create_snapshot_group", ["group_id": bad, "snapshot_name": .string(u)], naming: "group_id")
            try await refused("destroy_snapshot_group", ["group_id": bad, "snapshot_name": .string(u)], naming: "group_id")
            try await refused(
                "clone_volume_to_existing",
                [
                    "dest_volume_path": ["group_id": bad, "volume_id": .string(u)],
                    "src_volume_path": vpath(f.group, f.volume), "src_snapshot_name": .string(f.snapshot),
                ], naming: "dest_volume_path.group_id")
        }
    }

    @Test(arguments: cases)
    func invalidVolumeID(_ which: String) async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            let bad = JSONValue.string(Self.invalidIdentifiers(u).first { $0.0 == which }!.1)
            for g: String? in [f.group, nil] {
                let path: JSONValue = ["group_id": .str(g), "volume_id": bad]
                try await refused("create_volume", ["volume_path": path, "size": 1024], naming: "volume_path.volume_id")
                try await refused("delete_volume", ["volume_path": path], naming: "volume_path.volume_id")
                try await refused("purge_volume", ["volume_path": path], naming: "volume_path.volume_id")
                try await refused("get_used_bytes", ["volume_path": path], naming: "volume_path.volume_id")
                try await refused("set_max_bytes", ["volume_path": path, "max_bytes": 10], naming: "volume_path.volume_id")
                try await refused("authorize", ["volume_path": path, "auth_id": .string(f.authID)], naming: "volume_path.volume_id")
                try await refused("deauthorize", ["volume_path": path, "auth_id": .string(f.authID)], naming: "volume_path.volume_id")
                try await refused("get_authorized_ids", ["volume_path": path], naming: "volume_path.volume_id")
                try await refused("create_snapshot_volume", ["volume_path": path, "snapshot_name": "s"], naming: "volume_path.volume_id")
                try await refused("destroy_snapshot_volume", ["volume_path": path, "snapshot_name": "s"], naming: "volume_path.volume_id")
                try await refused(
                    "clone_volume_to_existing",
                    ["dest_volume_path": vpath(f.group, f.volume), "src_volume_path": path, "src_snapshot_name": "s"],
                    naming: "src_volume_path.volume_id")
                try await refused("evict", ["auth_id": .string(f.authID), "volume_path": path], naming: "volume_path.volume_id")
            }
        }
    }

    @Test(arguments: cases)
    func invalidAuthID(_ which: String) async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            let raw = Self.invalidIdentifiers(u).first { $0.0 == which }!.1
            let bad = JSONValue.string(raw)
            try await refused("authorize", ["volume_path": vpath(f.group, f.volume), "auth_id": bad], naming: "auth_id")
            try await refused(
                "authorize", ["volume_path": vpath(f.group, f.volume), "auth_id": bad, "tenant_id": "t", "allow_existing_id": true],
                naming: "auth_id")
            try await refused("deauthorize", ["volume_path": vpath(f.group, f.volume), "auth_id": bad], naming: "auth_id")
            try await refused("evict", ["auth_id": bad], naming: "auth_id")
            if !raw.isEmpty, !raw.contains("\u{0}") {
                let entity = (try? admin.authGet(raw)) ?? nil
                #expect(entity == nil, "no entity client.\(raw)")
            }
        }
    }

    @Test(arguments: cases)
    func invalidTenantID(_ which: String) async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            let bad = JSONValue.string(Self.invalidIdentifiers(u).first { $0.0 == which }!.1)
            let id = unique("tenantguest")
            try await refused(
                "authorize", ["volume_path": vpath(f.group, f.volume), "auth_id": .string(id), "tenant_id": bad], naming: "tenant_id")
            #expect(try admin.authGet(id) == nil)
            #expect(!admin.exists(VolumeLayout.authMeta(id)))
        }
    }

    @Test(arguments: cases)
    func invalidSnapshotName(_ which: String) async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            let bad = JSONValue.string(Self.invalidIdentifiers(u).first { $0.0 == which }!.1)
            let volumeSnaps = admin.names(VolumeLayout.volumePath(f.group, f.volume) + "/.snap")
            let groupSnaps = admin.names(VolumeLayout.groupPath(f.group) + "/.snap")
            try await refused(
                "create_snapshot_volume", ["volume_path": vpath(f.group, f.volume), "snapshot_name": bad], naming: "snapshot_name")
            try await refused(
                "destroy_snapshot_volume", ["volume_path": vpath(f.group, f.volume), "snapshot_name": bad], naming: "snapshot_name")
            try await refused("create_snapshot_group", ["group_id": .string(f.group), "snapshot_name": bad], naming: "snapshot_name")
            try await refused("destroy_snapshot_group", ["group_id": .string(f.group), "snapshot_name": bad], naming: "snapshot_name")
            try await refused(
                "clone_volume_to_existing",
                ["dest_volume_path": vpath(f.group, f.volume), "src_volume_path": vpath(f.group, f.volume), "src_snapshot_name": bad],
                naming: "src_snapshot_name")
            #expect(admin.names(VolumeLayout.volumePath(f.group, f.volume) + "/.snap") == volumeSnaps)
            #expect(admin.names(VolumeLayout.groupPath(f.group) + "/.snap") == groupSnaps)
        }
    }

    @Test func groupNoneIsReserved() async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            try await refused("create_group", ["group_id": "None"], naming: "group_id")
            try await refused("create_volume", ["volume_path": ["group_id": "None", "volume_id": .string(u)]], naming: "group_id")
            try await refused(
                "authorize", ["volume_path": ["group_id": "None", "volume_id": .string(f.volume)], "auth_id": .string(f.authID)],
                naming: "group_id")
            #expect(!admin.exists(VolumeLayout.groupPath("None")))
            // Other spellings are ordinary names.
            let lower = unique("none")
            defer { ClusterAdmin.shared.removeTree(VolumeLayout.groupPath(lower)) }
            try await v.call("create_group", ["group_id": .string(lower)])
        }
    }

    @Test func missingRequiredParams() async throws {
        try await expectNothingChanges { () async throws in
            let vp = vpath(f.group, f.volume)
            let cases: [(String, JSONValue, String)] = [
                ("create_group", [:], "group_id"),
                ("destroy_group", [:], "group_id"),
                ("create_volume", [:], "volume_path"),
                ("create_volume", ["volume_path": ["group_id": .string(f.group)]], "volume_path.volume_id"),
                ("delete_volume", [:], "volume_path"),
                ("purge_volume", [:], "volume_path"),
                ("get_used_bytes", [:], "volume_path"),
                ("set_max_bytes", ["max_bytes": 1], "volume_path"),
                ("set_max_bytes", ["volume_path": vp], "max_bytes"),
                ("authorize", ["volume_path": vp], "auth_id"),
                ("authorize", ["auth_id": .string(f.authID)], "volume_path"),
                ("deauthorize", ["volume_path": vp], "auth_id"),
                ("deauthorize", ["auth_id": .string(f.authID)], "volume_path"),
                ("get_authorized_ids", [:], "volume_path"),
                ("evict", [:], "auth_id"),
                ("create_snapshot_volume", ["volume_path": vp], "snapshot_name"),
                ("create_snapshot_volume", ["snapshot_name": "s"], "volume_path"),
                ("destroy_snapshot_volume", ["volume_path": vp], "snapshot_name"),
                ("create_snapshot_group", ["group_id": .string(f.group)], "snapshot_name"),
                ("create_snapshot_group", ["snapshot_name": "s"], "group_id"),
                ("destroy_snapshot_group", ["group_id": .string(f.group)], "snapshot_name"),
                ("clone_volume_to_existing", ["src_volume_path": vp, "src_snapshot_name": "s"], "dest_volume_path"),
                ("clone_volume_to_existing", ["dest_volume_path": vp, "src_snapshot_name": "s"], "src_volume_path"),
                ("clone_volume_to_existing", ["dest_volume_path": vp, "src_volume_path": vp], "src_snapshot_name"),
                ("put_object", ["pool_name": "cephfs_data", "object_name": "o"], "data"),
                ("put_object", ["pool_name": "cephfs_data", "data": ""], "object_name"),
                ("put_object", ["object_name": "o", "data": ""], "pool_name"),
                ("put_object_versioned", ["pool_name": "cephfs_data", "object_name": "o"], "data"),
                ("get_object", ["pool_name": "cephfs_data"], "object_name"),
                ("get_object_and_version", ["object_name": "o"], "pool_name"),
                ("delete_object", ["pool_name": "cephfs_data"], "object_name"),
            ]
            for (method, params, field) in cases {
                guard let e = await v.error(method, params) else { continue }
                #expect(e.code == .invalidParams, "\(method): \(e)")
                #expect(e.message.contains("missing parameter '\(field)'"), "\(method): \(e.message)")
            }
            // Absent params altogether, for methods with required ones.
            for method in ["create_group", "create_volume", "authorize", "put_object", "evict"] {
                guard let e = await v.error(method, nil) else { continue }
                #expect(e.code == .invalidParams, "\(method): \(e)")
                #expect(e.message.contains("missing parameter"), "\(method): \(e.message)")
            }
        }
    }

    @Test func wrongTypes() async throws {
        try await expectNothingChanges { () async throws in
            let vp = vpath(f.group, f.volume)
            let u = f.token
            let nv = vpath(nil, u)
            let cases: [(String, JSONValue, String)] = [
                ("create_volume", ["volume_path": nv, "size": "1024"], "size"),
                ("create_volume", ["volume_path": nv, "size": .number(JSONNumber(1.5))], "size"),
                ("create_volume", ["volume_path": nv, "size": -1], "size"),
                ("create_volume", ["volume_path": nv, "data_isolated": "true"], "data_isolated"),
                ("create_volume", ["volume_path": nv, "namespace_isolated": 0], "namespace_isolated"),
                ("create_volume", ["volume_path": nv, "mode": "0755"], "mode"),
                ("create_volume", ["volume_path": "/volumes/_nogroup/x"], "volume_path"),
                ("create_volume", ["volume_path": ["group_id": 5, "volume_id": .string(u)]], "volume_path.group_id"),
                ("create_volume", ["volume_path": ["group_id": .null, "volume_id": 7]], "volume_path.volume_id"),
                ("create_volume", ["volume_path": ["group_id": .null, "volume_id": .string(u), "extra": 1]], "extra"),
                ("authorize", ["volume_path": vp, "auth_id": .string(f.authID), "readonly": "yes"], "readonly"),
                ("authorize", ["volume_path": vp, "auth_id": .string(f.authID), "allow_existing_id": 1], "allow_existing_id"),
                ("authorize", ["volume_path": vp, "auth_id": 42], "auth_id"),
                ("authorize", ["volume_path": vp, "auth_id": .string(f.authID), "tenant_id": 3], "tenant_id"),
                ("create_group", ["group_id": ["a"]], "group_id"),
                ("create_snapshot_volume", ["volume_path": vp, "snapshot_name": true], "snapshot_name"),
                ("set_max_bytes", ["volume_path": vp, "max_bytes": "big"], "max_bytes"),
                ("evict", ["auth_id": .string(f.authID), "timeout": "soon"], "timeout"),
                ("put_object", ["pool_name": 1, "object_name": "o", "data": ""], "pool_name"),
                ("put_object", ["pool_name": "cephfs_data", "object_name": "o", "data": 1], "data"),
            ]
            for (method, params, field) in cases {
                try await refused(method, params, naming: field)
            }
            #expect(!admin.exists(VolumeLayout.volumePath(nil, u)))
            let quota = admin.xattr(VolumeLayout.volumePath(f.group, f.volume), "ceph.quota.max_bytes")
            #expect(quota == nil || quota == "0", "no quota was set")
        }
    }

    @Test func unknownParamsAreRefused() async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            try await refused("create_volume", ["volume_path": vpath(nil, u), "sise": 10], naming: "sise")
            try await refused(
                "authorize", ["volume_path": vpath(f.group, f.volume), "auth_id": .string(u), "read_only": true], naming: "read_only")
            try await refused("create_group", ["group_id": .string(u), "group": "x"], naming: "group")
            try await refused("ping", ["x": 1], naming: "x")
            #expect(!admin.exists(VolumeLayout.volumePath(nil, u)))
            #expect(!admin.exists(VolumeLayout.groupPath(u)))
            #expect(try admin.authGet(u) == nil)
        }
    }

    @Test func positionalParamsAreRefused() async throws {
        try await expectNothingChanges { () async throws in
            let u = f.token
            for (method, params) in [
                ("create_group", [JSONValue.string(u)]),
                ("create_volume", [vpath(nil, u)]),
                ("authorize", [vpath(f.group, f.volume), .string(u)]),
                ("get_mon_addrs", []),
                ("ping", []),
            ] as [(String, [JSONValue])] {
                guard let e = await v.error(method, .array(params)) else { continue }
                #expect(e.code == .invalidParams, "\(method): \(e)")
                #expect(e.message.contains("named"), "\(method): \(e.message)")
            }
            #expect(!admin.exists(VolumeLayout.groupPath(u)))
            #expect(try admin.authGet(u) == nil)
        }
    }
}
