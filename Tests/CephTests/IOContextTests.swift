import Ceph
import Testing
import TestSupport

@Suite("IOContext", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct IOContextTests {
    let cluster: RadosCluster
    let io: IOContext

    init() throws {
        cluster = try TestCluster.connect()
        io = try cluster.ioContext(pool: "cephfs_data", namespace: TestCluster.uniqueName("iotest"))
    }

    @Test func writeReadRemove() throws {
        let data = Array("hello\u{0}world".utf8)
        try io.writeFull("obj", data)
        #expect(try io.read("obj", maxLength: 1024) == data)
        #expect(try io.size("obj") == UInt64(data.count))
        try io.writeFull("obj", [1, 2])
        #expect(try io.read("obj", maxLength: 1024) == [1, 2])
        try io.remove("obj")
        do {
            _ = try io.read("obj", maxLength: 16)
            Issue.record("expected ENOENT")
        } catch {
            #expect(error.errno == .ENOENT)
        }
    }

    @Test func removingMissingObjectIsENOENT() {
        do {
            try io.remove("missing")
            Issue.record("expected ENOENT")
        } catch {
            #expect(error.errno == .ENOENT)
        }
    }

    @Test func versionsAdvanceAndGuardWrites() throws {
        try io.writeFull("v", [1])
        let (data, v1) = try io.readWithVersion("v", maxLength: 16)
        #expect(data == [1])
        #expect(try io.version("v") == v1)
        try io.writeFull("v", [2], assertVersion: v1)
        let (_, v2) = try io.readWithVersion("v", maxLength: 16)
        #expect(v2 > v1)
        // A stale version is refused and leaves the object as it was.
        #expect(throws: CephError.self) { try io.writeFull("v", [3], assertVersion: v1) }
        #expect(try io.read("v", maxLength: 16) == [2])
        // Without a version it is a plain write_full.
        try io.writeFull("v", [4], assertVersion: nil)
        #expect(try io.read("v", maxLength: 16) == [4])
        try io.remove("v")
    }

    @Test func openingMissingPoolFails() {
        do {
            _ = try cluster.ioContext(pool: "no-such-pool")
            Issue.record("expected ENOENT")
        } catch {
            #expect(error.errno == .ENOENT)
            #expect(error.description.contains("no-such-pool"))
        }
    }

    @Test func closedContextRefusesCalls() throws {
        let other = try cluster.ioContext(pool: "cephfs_data")
        other.close()
        #expect(throws: CephError.self) { try other.writeFull("x", [1]) }
    }
}
