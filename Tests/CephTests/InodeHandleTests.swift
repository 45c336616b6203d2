import Ceph
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The inode-handle API (ceph_ll_*): nothing it does follows a link or
/// leaves the directory it was given.
@Suite("InodeHandle", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
final class InodeHandleTests {
    let fs: CephFSMount
    let root: String

    init() throws {
        fs = try TestCluster.mount()
        root = "/" + TestCluster.uniqueName("inodetests")
        try fs.mkdir(root, mode: 0o755)
    }

    deinit {
        removeTree(root)
        fs.close()
        fs.cluster.shutdown()
    }

    func removeTree(_ path: String) {
        guard let st = try? fs.stat(path, followSymlinks: false) else { return }
        if st.isDirectory {
            for e in (try? fs.listDirectory(path)) ?? [] { removeTree(path + "/" + e.name) }
            try? fs.rmdir(path)
        } else {
            try? fs.unlink(path)
        }
    }

    func write(_ path: String, _ text: String) throws {
        let f = try fs.open(path, flags: O_CREAT | O_WRONLY | O_TRUNC, mode: 0o644)
        defer { f.close() }
        try f.write(Array(text.utf8), offset: 0)
    }

    func read(_ path: String) throws -> String {
        let f = try fs.open(path, flags: O_RDONLY)
        defer { f.close() }
        return String(decoding: try f.readAll(), as: UTF8.self)
    }

    func failure(_ body: () throws(CephError) -> Void) -> Errno? { cephErrno(body) }

    @Test func namesMustBePlainEntries() throws {
        let dir = try fs.inode(at: root)
        defer { dir.close() }
        for name in ["", ".", "..", "a/b", "../x", "a\u{0}b"] {
            #expect(failure { () throws(CephError) in _ = try dir.lookup(name) } == .EINVAL, "lookup \(name.debugDescription)")
            #expect(failure { () throws(CephError) in _ = try dir.makeDirectory(name, mode: 0o755) } == .EINVAL)
            #expect(failure { () throws(CephError) in _ = try dir.createFile(name, mode: 0o644) } == .EINVAL)
            #expect(failure { () throws(CephError) in try dir.unlink(name) } == .EINVAL)
        }
    }

    @Test func handlesSurviveRenamesAndDoNotFollowTheLastComponent() throws {
        try fs.mkdir(root + "/d", mode: 0o755)
        try fs.symlink(target: root + "/d", at: root + "/link")
        let link = try fs.inode(at: root + "/link")
        #expect(link.stat.isSymlink)
        #expect(try link.readlink() == root + "/d")
        link.close()

        let d = try fs.inode(at: root + "/d")
        defer { d.close() }
        #expect(d.stat.isDirectory)
        try fs.rename(root + "/d", to: root + "/e")
        try d.makeDirectory("child", mode: 0o700).close()
        #expect(try fs.stat(root + "/e/child").isDirectory, "created where the inode now is")
        #expect(try d.list().map(\.name) == ["child"])
    }

    @Test func exclusiveCreateRefusesAPlantedLink() throws {
        try write(root + "/target", "untouched")
        try fs.symlink(target: root + "/target", at: root + "/f")
        let dir = try fs.inode(at: root)
        defer { dir.close() }
        #expect(failure { () throws(CephError) in _ = try dir.createFile("f", mode: 0o644) } == .EEXIST)
        #expect(failure { () throws(CephError) in _ = try dir.makeDirectory("f", mode: 0o755) } == .EEXIST)
        #expect(failure { () throws(CephError) in _ = try dir.makeSymlink("f", target: "x") } == .EEXIST)
        #expect(try read(root + "/target") == "untouched")
        #expect(try dir.lookup("f").stat.isSymlink, "lookup returns the link itself")
    }

    @Test func replacingUnlinksWhatIsInTheWayButNeverADirectory() throws {
        try fs.mkdir(root + "/victim", mode: 0o700)
        try fs.chmod(root + "/victim", mode: 0o700)
        try write(root + "/victim/secret", "secret")
        try fs.symlink(target: root + "/victim/secret", at: root + "/file")
        try fs.symlink(target: root + "/victim", at: root + "/dir")
        try fs.symlink(target: "anything", at: root + "/link")
        try fs.mkdir(root + "/busy", mode: 0o755)
        try write(root + "/busy/inside", "kept")
        let dir = try fs.inode(at: root)
        defer { dir.close() }

        let (file, out) = try dir.replacingFile("file", mode: 0o600)
        try out.write(Array("new".utf8), offset: 0)
        try out.fsync()
        out.close()
        try file.setAttributes(mode: 0o640)
        file.close()
        #expect(try fs.stat(root + "/file", followSymlinks: false).isRegularFile)
        #expect(try fs.stat(root + "/file").permissions == 0o640)
        #expect(try read(root + "/file") == "new")

        let sub = try dir.replacingDirectory("dir", mode: 0o755)
        try sub.setAttributes(mode: 0o777)
        sub.close()
        #expect(try fs.stat(root + "/dir", followSymlinks: false).isDirectory)
        #expect(try fs.stat(root + "/dir").permissions == 0o777)
        let again = try dir.replacingDirectory("dir", mode: 0o755)
        #expect(again.stat.inode == (try fs.stat(root + "/dir").inode), "an existing directory is reused")
        again.close()

        try dir.replacingSymlink("link", target: "elsewhere").close()
        #expect(try fs.readlink(root + "/link") == "elsewhere")

        #expect(failure { () throws(CephError) in _ = try dir.replacingFile("busy", mode: 0o644) } == .EISDIR)
        #expect(failure { () throws(CephError) in _ = try dir.replacingSymlink("busy", target: "x") } == .EISDIR)
        #expect(try read(root + "/busy/inside") == "kept")

        // The victim is as it was.
        #expect(try read(root + "/victim/secret") == "secret")
        #expect(try fs.stat(root + "/victim").permissions == 0o700)
    }

    @Test func filesReadAndWriteThroughHandles() throws {
        let dir = try fs.inode(at: root)
        defer { dir.close() }
        let (h, out) = try dir.createFile("data", mode: 0o644)
        let bytes = randomBytes(3 << 20)
        try out.write(bytes, offset: 0)
        try out.fsync()
        out.close()
        let input = try h.open(flags: O_RDONLY)
        #expect(try input.read(count: 4 << 20, offset: 0) == bytes)
        #expect(try input.read(count: 10, offset: Int64(bytes.count)) == [])
        input.close()
        #expect(try h.attributes().size == UInt64(bytes.count))
        h.close()
        // A closed handle refuses calls.
        #expect(failure { () throws(CephError) in _ = try h.attributes() } == .ESHUTDOWN)
        try dir.unlink("data")
        #expect(try dir.lookupIfExists("data") == nil)
    }
}
