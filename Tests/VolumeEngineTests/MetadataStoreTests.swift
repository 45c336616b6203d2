import Ceph
import Dispatch
import Foundation
import JSONValue
import TestSupport
import Testing

@testable import VolumeEngine

@Suite("MetadataStore", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
final class MetadataStoreTests {
    let fs: CephFSMount
    let dir: String
    let store: MetadataStore

    init() throws {
        fs = try TestCluster.mount()
        dir = "/" + TestCluster.uniqueName("metastore")
        try fs.mkdir(dir)
        store = MetadataStore(fs: fs)
    }

    deinit {
        fs.close()
        fs.cluster.shutdown()
    }

    func rawContent(_ path: String) throws -> [UInt8] {
        let f = try fs.open(path, flags: O_RDONLY)
        defer { f.close() }
        return try f.readAll()
    }

    @Test func writesPaddedJSONInPlaceAndNeverShrinks() throws {
        let path = dir + "/$a.meta"
        let lock = try #require(try store.lock(path))
        #expect(try store.read(lock) == nil, "a new file reads as no metadata")
        let inode = try fs.stat(path).inode
        let big: [String: JSONValue] = ["k": .string(String(repeating: "x", count: 5000))]
        try store.write(lock, big)
        #expect(try fs.stat(path).size == 8192)
        try store.write(lock, ["k": "small"])
        let raw = try rawContent(path)
        #expect(raw.count == 8192, "a shorter text is padded, never truncated")
        #expect(try JSONValue.parse(raw) == ["k": "small"])
        #expect(try store.read(lock) == ["k": "small"])
        #expect(try fs.stat(path).inode == inode, "the inode never changes, so flocks stay valid")
        lock.release()
    }

    @Test func lockExcludesAnotherClient() throws {
        let path = dir + "/$b.meta"
        let other = try TestCluster.mount()
        defer {
            other.close()
            other.cluster.shutdown()
        }
        let otherStore = MetadataStore(fs: other)
        let held = try #require(try store.lock(path))
        let acquired = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            if let l = try? otherStore.lock(path) {
                acquired.signal()
                l.release()
            }
        }
        #expect(acquired.wait(timeout: .now() + 1) == .timedOut)
        held.release()
        #expect(acquired.wait(timeout: .now() + 20) == .success)
    }

    @Test func twoLocksInOneProcessExcludeEachOther() throws {
        let path = dir + "/$c.meta"
        let held = try #require(try store.lock(path))
        let acquired = DispatchSemaphore(value: 0)
        let store = self.store
        DispatchQueue.global().async {
            if let l = try? store.lock(path) {
                acquired.signal()
                l.release()
            }
        }
        #expect(acquired.wait(timeout: .now() + 1) == .timedOut)
        held.release()
        #expect(acquired.wait(timeout: .now() + 20) == .success)
    }

    @Test func waiterRetriesWhenTheLockedFileIsUnlinked() throws {
        let path = dir + "/$d.meta"
        let held = try #require(try store.lock(path))
        try store.write(held, ["old": true])
        let oldInode = try fs.stat(path).inode
        let result = DispatchSemaphore(value: 0)
        let store = self.store
        nonisolated(unsafe) var newInode: UInt64 = 0
        DispatchQueue.global().async {
            if let l = try? store.lock(path) {
                newInode = (try? l.file.stat().inode) ?? 0
                l.release()
                result.signal()
            }
        }
        usleep(300_000)
        try store.unlink(held)
        held.release()
        #expect(result.wait(timeout: .now() + 20) == .success)
        #expect(newInode != 0 && newInode != oldInode, "the waiter locked the new file, not the unlinked one")
    }

    @Test func missingFileWithoutCreateIsNil() throws {
        #expect(try store.lock(dir + "/$none.meta", create: false) == nil)
        #expect(try fs.statIfExists(dir + "/$none.meta") == nil)
    }

    @Test func refusesNewerCompatVersionAndReadsOldVolumesKey() throws {
        #expect(throws: VolumeError.self) { try AuthMetadata(["compat_version": 7, "subvolumes": [:]], path: "x") }
        let old = try AuthMetadata(
            [
                "compat_version": 1, "version": 2, "dirty": false, "tenant_id": "t",
                "volumes": ["g/v": ["access_level": "rw", "dirty": false]],
            ], path: "x")
        #expect(old.subvolumes["g/v"] == AccessEntry(accessLevel: "rw", dirty: false))
        let json = old.json
        #expect(json["volumes"] == nil)
        #expect(json["subvolumes"]?["g/v"]?["access_level"] == "rw")
        #expect(json["compat_version"] == 6)
        #expect(json["version"] == 6)
        #expect(old.sameTenant("t") && !old.sameTenant(nil))
        #expect(AuthMetadata(tenantID: nil).sameTenant(nil))
    }

    @Test func corruptMetadataIsAClearError() throws {
        let path = dir + "/$e.meta"
        let f = try fs.open(path, flags: O_CREAT | O_WRONLY)
        try f.write(Array("{not json".utf8), offset: 0)
        f.close()
        let lock = try #require(try store.lock(path))
        defer { lock.release() }
        do {
            _ = try store.read(lock)
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .volumeClientError)
            #expect(error.message.contains(path))
        }
    }
}
