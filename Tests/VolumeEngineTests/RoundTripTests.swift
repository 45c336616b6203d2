import Ceph
import Logging
import TestSupport
import Testing

@testable import VolumeEngine

/// The cluster calls each operation makes, pinned so that a change that adds
/// round trips shows up here. README lists the same figures.
@Suite("Round trips per operation", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
final class RoundTripTests {
    let engine: VolumeEngine

    init() throws {
        engine = try connectTestEngine("rt")
    }

    deinit { engine.shutdown() }

    @Test func countsForTheMainOperations() throws {
        let v = try VolumePath(groupID: "rt", volumeID: TestCluster.uniqueName("rtvol"))
        let id = TestCluster.uniqueName("rtid")
        // A fresh cluster has no /volumes yet: no groups.
        func groupCount() -> Int {
            ((try? engine.fs.listDirectory("/volumes")) ?? []).filter {
                $0.kind == .directory && ($0.name == "_nogroup" || !$0.name.hasPrefix("_"))
            }.count
        }
        // The first volume of a group may also make the prefix and the group,
        // list the groups and read the inherited pool; the next is the steady state.
        let (_, first) = try CallCounter.measure {
            try engine.createVolume(try VolumePath(groupID: "rt", volumeID: TestCluster.uniqueName("rtfirst")), size: 1 << 20)
        }
        // Other tests may be making groups meanwhile: then the listing is
        // read again (opendir, closedir).
        let groups = groupCount()
        let (_, create) = try CallCounter.measure { try engine.createVolume(v, size: 1 << 20) }
        let (_, createAgain) = try CallCounter.measure { try engine.createVolume(v, size: 1 << 20) }
        let (_, authorize) = try CallCounter.measure { try engine.authorize(v, authID: id, tenantID: "t") }
        let (_, again) = try CallCounter.measure { try engine.authorize(v, authID: id, tenantID: "t") }
        let (_, list) = try CallCounter.measure { try engine.getAuthorizedIDs(v) }
        let (_, deauthorize) = try CallCounter.measure { try engine.deauthorize(v, authID: id) }
        let (_, delete) = try CallCounter.measure { try engine.deleteVolume(v) }
        let (_, purge) = try CallCounter.measure { try engine.purgeVolume(v) }
        print(
            "round trips: create_volume (first in its group) \(first); create_volume \(create) (\(groups) groups); create_volume (again) \(createAgain); authorize (new ID) \(authorize); authorize (again) \(again); get_authorized_ids \(list); deauthorize \(deauthorize); delete_volume \(delete); purge_volume \(purge)"
        )

        // One mon write per authorize; the key comes from it, not a second `auth get`.
        #expect(authorize.mon == 2, "auth get + auth get-or-create")
        #expect(again.mon == 1, "an unchanged grant is not rewritten")
        // Bounds for the case where a metadata file's kept descriptor is not
        // back yet from the previous call's background unlock (then a lock
        // opens the file afresh: one or three calls more).
        #expect(authorize.fs <= 21)
        #expect(again.fs <= 20)
        // The volume_id check stats the volume's name in each other group.
        // A new directory also costs one `auth ls` (grants left on its path), overlapped.
        #expect(first.mon == 1 && first.fs <= 20 + groups, "\(groups) groups")
        #expect(create.mon == 1 && create.fs <= 9 + 2 + groups, "\(groups) groups")
        #expect(createAgain.mon == 0 && createAgain.fs <= 7)
        #expect(list.mon == 0 && list.fs <= 8)
        #expect(deauthorize.mon == 2, "auth get + auth del")
        #expect(deauthorize.fs <= 20)
        #expect(delete.mon == 0 && purge.mon == 0)
    }

    /// The group listing is cached, but a group another client makes (here a
    /// second mount) is seen at once: the volume_id check still refuses.
    @Test func volumeIDCheckSeesGroupsMadeByOtherClients() throws {
        let other = try connectTestEngine("rt2")
        defer { other.shutdown() }
        let name = TestCluster.uniqueName("rtdup")
        _ = try engine.createVolume(try VolumePath(groupID: "rt", volumeID: TestCluster.uniqueName("rtfill")))
        _ = try other.createVolume(try VolumePath(groupID: TestCluster.uniqueName("rtg"), volumeID: name))
        #expect(throws: VolumeError.self) {
            _ = try self.engine.createVolume(try VolumePath(groupID: "rt", volumeID: name))
        }
    }
}
