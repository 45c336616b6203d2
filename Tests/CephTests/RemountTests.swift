import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A mount whose session the MDS evicted replaces its client (issue 12,
/// item 7). Evicts only its own session, by id, on the shared cluster.
@Suite("CephFSMount remount", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct CephFSMountRemountTests {
    final class Reports: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [RemountReport] = []
        func add(_ r: RemountReport) { lock.withLock { list.append(r) } }
        var all: [RemountReport] { lock.withLock { list } }
    }

    /// Evicts the session `id` from every active rank, as client.admin would.
    static func evict(_ id: UInt64) throws {
        let admin = ClusterAdmin.shared
        let dump = try #require(try admin.cluster.monJSON(["prefix": "fs dump"]))
        let map = try MDSMapView(fsDump: dump, fsName: TestCluster.environment!.fsName)
        for rank in map.activeRanks {
            _ = try admin.fs.mdsCommand(String(map.up[rank]!), ["prefix": "session evict", "filters": [.string("id=\(id)")]])
        }
    }

    @Test func evictedMountRemountsAndOldFilesStayDead() throws {
        let fs = try TestCluster.mount()
        defer {
            fs.close()
            fs.cluster.shutdown()
        }
        let reports = Reports()
        fs.enableRemount { reports.add($0) }
        let dir = "/" + TestCluster.uniqueName("remount")
        try fs.mkdir(dir, mode: 0o755)
        defer {
            try? ClusterAdmin.shared.fs.unlink(dir + "/f")
            try? ClusterAdmin.shared.fs.rmdir(dir)
        }
        let file = try fs.open(dir + "/f", flags: O_CREAT | O_RDWR)
        try file.write([1, 2, 3], offset: 0)
        try file.fsync()  // what an evicted client had not flushed is lost
        let id = try fs.instanceID()
        #expect(fs.generation == 0)

        try Self.evict(id)

        // The first call that sees the session gone fails, saying so.
        var failure: CephError?
        #expect(
            waitUntil(timeout: 30) {
                do throws(CephError) {
                    _ = try fs.stat(dir)
                    return false
                } catch {
                    failure = error
                    return true
                }
            }, "no call failed after the eviction")
        #expect(failure?.errno == .ESHUTDOWN, "\(failure.map { "\($0)" } ?? "none")")
        #expect(failure?.description.contains("replaced by a new mount") == true, "\(failure.map { "\($0)" } ?? "none")")

        // Later calls work, on a new session.
        #expect(try fs.stat(dir).isDirectory)
        #expect(fs.generation == 1)
        #expect(try fs.instanceID() != id)
        #expect(try fs.open(dir + "/f", flags: O_RDONLY).readAll() == [1, 2, 3])
        // A file of the old client is not carried over: its descriptor means nothing to the new one.
        #expect(file.isStale)
        #expect(cephErrno { () throws(CephError) in _ = try file.stat() } == .ESHUTDOWN)
        file.close()

        let all = reports.all
        #expect(all.count == 1, "\(all)")
        #expect(all.first?.failure == nil)
        #expect(all.first?.instanceID == (try fs.instanceID()))
    }

    @Test func withoutEnableRemountAnEvictedMountStaysEvicted() throws {
        let fs = try TestCluster.mount()
        defer {
            fs.abort()
            fs.cluster.shutdown()
        }
        let id = try fs.instanceID()
        try Self.evict(id)
        #expect(
            waitUntil(timeout: 30) { cephErrno { () throws(CephError) in _ = try fs.stat("/") } != nil },
            "no call failed after the eviction")
        for _ in 0..<3 {
            #expect(cephErrno { () throws(CephError) in _ = try fs.stat("/") } == .ESHUTDOWN)
        }
        #expect(fs.generation == 0)
        #expect(try fs.instanceID() == id)
    }

    @Test func aClosedMountDoesNotRemount() throws {
        let fs = try TestCluster.mount()
        let reports = Reports()
        fs.enableRemount { reports.add($0) }
        fs.close()
        #expect(cephErrno { () throws(CephError) in _ = try fs.stat("/") } == .ESHUTDOWN)
        #expect(fs.generation == 0)
        #expect(reports.all.isEmpty)
        fs.cluster.shutdown()
    }
}
