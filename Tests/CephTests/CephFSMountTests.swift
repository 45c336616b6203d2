import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

@Suite("CephFSMount", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
final class CephFSMountTests {
    let fs: CephFSMount
    let root: String

    init() throws {
        fs = try TestCluster.mount()
        root = "/" + TestCluster.uniqueName("cephtests")
        try fs.mkdir(root, mode: 0o755)
    }

    deinit {
        fs.close()
        fs.cluster.shutdown()
    }

    @Test func directoriesAndErrnoMapping() throws {
        let dir = root + "/d"
        try fs.mkdir(dir, mode: 0o750)
        let st = try fs.stat(dir)
        #expect(st.isDirectory)
        #expect(st.permissions == 0o750)

        do {
            try fs.mkdir(dir)
            Issue.record("expected EEXIST")
        } catch { #expect(error.errno == .EEXIST) }
        do {
            _ = try fs.stat(root + "/missing")
            Issue.record("expected ENOENT")
        } catch {
            #expect(error.errno == .ENOENT)
            #expect(error.description.contains("/missing"))
        }
        #expect(try fs.statIfExists(root + "/missing") == nil)

        try fs.mkdir(dir + "/child")
        do {
            try fs.rmdir(dir)
            Issue.record("expected ENOTEMPTY")
        } catch { #expect(error.errno == .ENOTEMPTY) }
        try fs.rmdir(dir + "/child")
        try fs.rmdir(dir)
        #expect(try fs.statIfExists(dir) == nil)
    }

    @Test func filesReadWriteFsyncRenameUnlink() throws {
        let path = root + "/f"
        let f = try fs.open(path, flags: O_CREAT | O_RDWR, mode: 0o640)
        try f.write(Array("0123456789".utf8), offset: 0)
        try f.write(Array("AB".utf8), offset: 3)
        try f.fsync()
        #expect(try f.read(count: 100, offset: 0) == Array("012AB56789".utf8))
        #expect(try f.read(count: 4, offset: 8) == Array("89".utf8))
        #expect(try f.stat().size == 10)
        try f.truncate(to: 4)
        #expect(try f.readAll(chunk: 3) == Array("012A".utf8))
        let inode = try f.stat().inode
        f.close()
        #expect(try fs.stat(path).permissions == 0o640)

        try fs.rename(path, to: root + "/g")
        #expect(try fs.stat(root + "/g").inode == inode)
        try fs.unlink(root + "/g")
        do {
            try fs.unlink(root + "/g")
            Issue.record("expected ENOENT")
        } catch { #expect(error.errno == .ENOENT) }
        do {
            _ = try fs.open(root + "/nope", flags: O_RDONLY)
            Issue.record("expected ENOENT")
        } catch {
            #expect(error.errno == .ENOENT)
        }
    }

    @Test func symlinksAndChmod() throws {
        try fs.symlink(target: "some/where", at: root + "/link")
        #expect(try fs.readlink(root + "/link") == "some/where")
        #expect(try fs.stat(root + "/link", followSymlinks: false).isSymlink)
        try fs.mkdir(root + "/m", mode: 0o700)
        try fs.chmod(root + "/m", mode: 0o711)
        #expect(try fs.stat(root + "/m").permissions == 0o711)
    }

    @Test func extendedAttributes() throws {
        let dir = root + "/quota"
        try fs.mkdir(dir)
        try fs.setxattr(dir, "ceph.quota.max_bytes", "1048576")
        #expect(try fs.getxattrString(dir, "ceph.quota.max_bytes") == "1048576")
        try fs.setxattr(dir, "user.note", "hi")
        #expect(try fs.getxattr(dir, "user.note") == Array("hi".utf8))
        try fs.removexattr(dir, "user.note")
        #expect(try fs.getxattrString(dir, "user.note") == nil)
        #expect(try fs.getxattrString("/", "ceph.dir.layout.pool") == "cephfs_data")
        #expect(Int(try fs.getxattrString(dir, "ceph.dir.rbytes") ?? "") == 0)
    }

    @Test func listsDirectories() throws {
        let dir = root + "/list"
        try fs.mkdir(dir)
        try fs.mkdir(dir + "/sub")
        try fs.open(dir + "/file", flags: O_CREAT | O_WRONLY).close()
        try fs.symlink(target: "file", at: dir + "/ln")
        let entries = try fs.listDirectory(dir).sorted { $0.name < $1.name }
        #expect(
            entries == [
                DirectoryEntry(name: "file", kind: .file),
                DirectoryEntry(name: "ln", kind: .symlink),
                DirectoryEntry(name: "sub", kind: .directory),
            ])
        do {
            _ = try fs.openDirectory(dir + "/missing")
            Issue.record("expected ENOENT")
        } catch {
            #expect(error.errno == .ENOENT)
        }
    }

    @Test func flockExcludesAcrossMounts() throws {
        let path = root + "/lockfile"
        let other = try TestCluster.mount()
        defer {
            other.close()
            other.cluster.shutdown()
        }
        let a = try fs.open(path, flags: O_CREAT | O_RDWR)
        let b = try other.open(path, flags: O_RDWR)
        try a.flock(.exclusive, owner: 1)
        do {
            try b.flock([.exclusive, .nonBlocking], owner: 2)
            Issue.record("second mount took a held lock")
        } catch {
            #expect(error.errno == .EAGAIN)
        }
        // A blocking waiter gets the lock once it is released.
        let acquired = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            if (try? b.flock(.exclusive, owner: 2)) != nil { acquired.signal() }
        }
        #expect(acquired.wait(timeout: .now() + 0.5) == .timedOut)
        try a.flock(.unlock, owner: 1)
        #expect(acquired.wait(timeout: .now() + 20) == .success)
        try b.flock(.unlock, owner: 2)
        a.close()
        b.close()
    }

    @Test func mdsCommandListsSessions() throws {
        let dump = try #require(try fs.cluster.monJSON(["prefix": "fs dump"]))
        let fsEntry = try #require(dump["filesystems"]?.arrayValue?.first)
        let info = try #require(fsEntry["mdsmap"]?["info"]?.objectValue)
        let active = info.values.filter { $0["state"]?.stringValue == "up:active" }
        #expect(active.count == 2)
        let gid = try #require(active.first?["gid"]?.int64Value)
        let sessions = try #require(try fs.mdsCommand(String(gid), ["prefix": "session ls"]).json())
        #expect(sessions.arrayValue != nil)
        do {
            _ = try fs.mdsCommand(String(gid), ["prefix": "no such command"])
            Issue.record("expected a failure")
        } catch {
            #expect(error.errno == .EINVAL)
        }
    }

    @Test func closedMountRefusesCalls() throws {
        let m = try TestCluster.mount()
        let id = try m.instanceID()
        #expect(id > 0)
        m.close()
        m.close()
        do {
            _ = try m.stat("/")
            Issue.record("expected ESHUTDOWN")
        } catch { #expect(error.errno == .ESHUTDOWN) }
        m.cluster.shutdown()
    }
}
