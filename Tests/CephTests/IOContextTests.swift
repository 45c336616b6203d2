import Ceph
import Foundation
import TestSupport
import Testing

@Suite("IOContext", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct IOContextTests {
    let cluster: RadosCluster
    let io: IOContext
    let namespace = TestCluster.uniqueName("iotest")

    init() throws {
        cluster = try TestCluster.connect()
        io = try cluster.ioContext(pool: "cephfs_data", namespace: namespace)
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

    // Issue 12, item 6: a C string ends at NUL, so "a\0b" would name "a".
    @Test func namesWithNULAreRefusedBeforeLibrados() throws {
        try io.writeFull("victim", [1])
        func expectEINVAL(_ what: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("\(what): expected EINVAL")
            } catch let error as CephError {
                #expect(error.errno == .EINVAL, "\(what)")
            } catch {
                Issue.record("\(what): \(error)")
            }
        }
        expectEINVAL("write_full") { try io.writeFull("victim\u{0}evil", [2]) }
        expectEINVAL("versioned write") { try io.writeFull("victim\u{0}", [2], assertVersion: nil) }
        expectEINVAL("remove") { try io.remove("victim\u{0}x") }
        expectEINVAL("read") { _ = try io.read("victim\u{0}x", maxLength: 16) }
        expectEINVAL("open pool") { _ = try cluster.ioContext(pool: "cephfs_data\u{0}x") }
        #expect(try io.read("victim", maxLength: 16) == [1])
        try io.remove("victim")
    }

    // Issue 12, item 12: reads are sized to the object, in chunks.
    @Test func chunkedReadsReturnExactlyTheObject() throws {
        let big = (0..<(100 * 1024 + 123)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        try io.writeFull("big", big)
        let (data, version) = try io.readWithVersion("big", maxLength: 1 << 20, chunkSize: 16 * 1024)
        #expect(data == big)
        #expect(version == (try io.version("big")))
        #expect(try io.readWithVersion("big", maxLength: 50_000, chunkSize: 16 * 1024).data == Array(big[0..<50_000]))
        #expect(try io.read("big", maxLength: 1 << 20) == big)
        try io.writeFull("empty", [])
        #expect(try io.readWithVersion("empty", maxLength: 1 << 20, chunkSize: 16 * 1024).data == [])
        try io.remove("big")
        try io.remove("empty")
    }

    /// A writer swaps the object between two contents of different sizes
    /// while it is read in chunks: every read must be one of them, whole.
    @Test func chunkedReadNeverMixesVersions() throws {
        let a = [UInt8](repeating: 1, count: 200 * 1024)
        let b = [UInt8](repeating: 2, count: 150 * 1024)
        try io.writeFull("swap", a)
        let writer = try cluster.ioContext(pool: "cephfs_data", namespace: namespace)
        defer { writer.close() }
        let stop = Flag()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var i = 0
            while !stop.isSet {
                try? writer.writeFull("swap", i % 2 == 0 ? b : a)
                i += 1
            }
            done.signal()
        }
        defer {
            stop.set()
            done.wait()
            try? io.remove("swap")
        }
        for _ in 0..<30 {
            let data = try io.readWithVersion("swap", maxLength: 1 << 20, chunkSize: 16 * 1024).data
            #expect(data == a || data == b, "a read mixed two versions (\(data.count) bytes)")
        }
    }
}

private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
