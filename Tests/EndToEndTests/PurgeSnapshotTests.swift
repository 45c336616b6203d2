import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

/// purge_volume of volumes with snapshots, and deletes after a failed purge (issue 12, item 15).
@Suite("purge with snapshots", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct PurgeSnapshotTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    var admin: ClusterAdmin { ClusterAdmin.shared }
    let scratch = Scratch()

    @discardableResult
    func volume(_ g: String?, _ vol: String) async throws -> String {
        scratch.volume(g, vol)
        if let g { scratch.group(g) }
        let r = try await v.call("create_volume", ["volume_path": vpath(g, vol)])
        return try #require(r["mount_path"]?.stringValue)
    }

    /// The trash entries of `vol` (its own name or a unique one beginning with it).
    func trashEntries(_ vol: String) -> [String] {
        admin.names(VolumeLayout.prefix + "/_deleting").filter { $0 == vol || $0.hasPrefix(vol + "@") }.sorted()
    }

    func deleteAndPurge(_ g: String?, _ vol: String) async throws {
        try await v.call("delete_volume", ["volume_path": vpath(g, vol)])
        try await v.call("purge_volume", ["volume_path": vpath(g, vol)])
    }

    @Test func purgeRemovesTheVolumesSnapshots() async throws {
        let vol = unique("psnap")
        let path = try await volume(nil, vol)
        try admin.fs.mkdir(path + "/sub", mode: 0o755)
        try admin.writeFile(path + "/sub/f", Array("data".utf8))
        try await v.call("create_snapshot_volume", ["volume_path": vpath(nil, vol), "snapshot_name": "s1"])
        try admin.fs.mkdir(path + "/sub/.snap/inner", mode: 0o755)  // a tenant's snapshot of a subdirectory

        try await deleteAndPurge(nil, vol)
        #expect(trashEntries(vol).isEmpty, "the trash entry stayed")

        // The name can be used, deleted and purged again.
        try await volume(nil, vol)
        try await v.call("create_snapshot_volume", ["volume_path": vpath(nil, vol), "snapshot_name": "s2"])
        try await deleteAndPurge(nil, vol)
        #expect(trashEntries(vol).isEmpty)
        #expect(!admin.exists(path))
    }

    @Test func purgeUnderAGroupSnapshotKeepsTheGroupSnapshot() async throws {
        let g = unique("pgs")
        let vol = unique("pgv")
        let path = try await volume(g, vol)
        try admin.writeFile(path + "/f", Array("data".utf8))
        try await v.call("create_snapshot_group", ["group_id": .string(g), "snapshot_name": "gs"])
        try await v.call("create_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": "vs"])
        try await deleteAndPurge(g, vol)
        #expect(trashEntries(vol).isEmpty)
        #expect(admin.names(VolumeLayout.groupPath(g) + "/.snap").contains("gs"), "the group's snapshot is not the purge's to remove")
        try await v.call("destroy_snapshot_group", ["group_id": .string(g), "snapshot_name": "gs"])
    }

    /// A trash entry a purge could not remove (here: one the admin client
    /// fills behind the daemon's back) must not block deleting the name again.
    @Test func aFailedPurgeDoesNotBlockTheNextDelete() async throws {
        let vol = unique("pfail")
        let path = try await volume(nil, vol)
        try admin.writeFile(path + "/f", Array("first".utf8))
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        // The stale entry: as left by a purge that failed before this fix.
        #expect(trashEntries(vol) == [vol])

        try await volume(nil, vol)
        try admin.writeFile(path + "/f", Array("second".utf8))
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        #expect(!admin.exists(path))
        #expect(trashEntries(vol).count == 2, "\(trashEntries(vol))")

        // Once more, then one purge takes every entry of the name.
        try await volume(nil, vol)
        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        #expect(trashEntries(vol).count == 3, "\(trashEntries(vol))")
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])
        #expect(trashEntries(vol).isEmpty, "\(trashEntries(vol))")
        try await v.call("purge_volume", ["volume_path": vpath(nil, vol)])  // idempotent
    }
}
