import Ceph
import Logging
import TestSupport
import Testing

@testable import VolumeEngine

/// Authorize grants from a cached layout (by directory inode) for volumes
/// create_volume made; the grant must always equal the directory's real layout.
@Suite("Volume layout cache", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
final class LayoutCacheTests {
    let engine: VolumeEngine

    init() throws {
        engine = try connectTestEngine("lc")
    }

    deinit { engine.shutdown() }

    /// The osd cap a grant of `v` must carry, from the directory's xattrs.
    func expectedOSDCap(_ v: VolumePath) throws -> String {
        let path = engine.layout.volumePath(v)
        let pool = try engine.ancestorXattr(path, "ceph.dir.layout.pool")
        let ns = try engine.fs.getxattrString(path, "ceph.dir.layout.pool_namespace")
        return ns.map { "allow rw pool=\(pool) namespace=\($0)" } ?? "allow rw pool=\(pool)"
    }

    func grantAndCheck(_ v: VolumePath) throws {
        let id = TestCluster.uniqueName("lcid")
        defer { try? engine.deauthorize(v, authID: id) }
        _ = try engine.authorize(v, authID: id, tenantID: "t")
        let entity = try #require(try engine.authGet(id))
        #expect(entity.caps["osd"] == (try expectedOSDCap(v)))
    }

    @Test func freshVolumeGrantsItsNamespace() throws {
        let v = try VolumePath(groupID: "lc", volumeID: TestCluster.uniqueName("lcv"))
        defer {
            try? engine.deleteVolume(v)
            try? engine.purgeVolume(v)
        }
        _ = try engine.createVolume(v)
        #expect(try expectedOSDCap(v).contains("namespace=fsvolumens_\(v.volumeID)"))
        try grantAndCheck(v)
    }

    /// A repeat create_volume that adds a namespace must not leave the
    /// namespace-less layout of the first call in the cache: the grant would
    /// then cover the whole pool.
    @Test func repeatCreateWithOtherSettingsIsReadAfresh() throws {
        let v = try VolumePath(groupID: "lc", volumeID: TestCluster.uniqueName("lcr"))
        defer {
            try? engine.deleteVolume(v)
            try? engine.purgeVolume(v)
        }
        _ = try engine.createVolume(v, namespaceIsolated: false)
        #expect(!(try expectedOSDCap(v)).contains("namespace="))
        _ = try engine.createVolume(v, namespaceIsolated: true)
        #expect(try expectedOSDCap(v).contains("namespace=fsvolumens_\(v.volumeID)"))
        try grantAndCheck(v)
    }

    /// Deleted and made again: a new inode, so nothing stale is used.
    @Test func recreatedVolumeIsANewEntry() throws {
        let v = try VolumePath(groupID: "lc", volumeID: TestCluster.uniqueName("lcn"))
        defer {
            try? engine.deleteVolume(v)
            try? engine.purgeVolume(v)
        }
        _ = try engine.createVolume(v, namespaceIsolated: true)
        try grantAndCheck(v)
        try engine.deleteVolume(v)
        try engine.purgeVolume(v)
        _ = try engine.createVolume(v, namespaceIsolated: false)
        try grantAndCheck(v)
    }
}
