import CCephFS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Inode-based access (libcephfs' ceph_ll_* calls), for writing into trees a
// tenant can change. A path is resolved again at every call, so a symlink
// planted anywhere along it redirects the call; a handle is not. Every call
// here names a single entry inside a directory handle the caller made or
// looked up itself, and none resolves a symlink.

extension CephFSMount {
    /// A handle on `path`. Intermediate components are resolved as by any
    /// path call, so `path` must be one tenants cannot change (the service's
    /// own directories); a symlink as the last component is returned as the
    /// link itself, not followed.
    public func inode(at path: String) throws(CephError) -> InodeHandle {
        let c = client
        return try run(on: c, "ll_walk") { m throws(CephError) in
            var inode: OpaquePointer?
            var s = vd_stat()
            try check(vd_ll_walk(m, path, &inode, &s), "ll_walk", path)
            return InodeHandle(mount: self, client: c, inode: inode!, path: path, stat: FileStat(s))
        }
    }

    /// Makes `path` a hard link to `existing`.
    public func link(_ existing: String, to path: String) throws(CephError) {
        try run("link") { m throws(CephError) in try check(vd_link(m, existing, path), "link", "\(existing) -> \(path)") }
    }
}

/// A reference this client holds on one inode, which keeps it usable whatever
/// happens to the names that led to it. Released by `close()` or, failing
/// that, in `deinit`.
///
/// Directory calls take one name, which must be a plain entry name: `.`,
/// `..`, empty names and names containing `/` or NUL are refused with EINVAL,
/// so no call leaves the directory. Creation is exclusive (EEXIST when the
/// name is taken) and lookups return whatever the name refers to, symlinks
/// included, so nothing is ever followed.
public final class InodeHandle: @unchecked Sendable {
    public var mount: CephFSMount { bound.mount }
    /// Handles do not follow a remount: they stay on the client that made them.
    private let bound: ClientBound<OpaquePointer>
    var client: CephClient { bound.client }
    /// How the handle was reached, for messages only.
    public let path: String
    /// The attributes when the handle was obtained.
    public let stat: FileStat

    init(mount: CephFSMount, client: CephClient, inode: OpaquePointer, path: String, stat: FileStat) {
        bound = ClientBound(mount: mount, client: client, handle: inode, release: "ll_put") { m, inode in vd_ll_put(m, inode) }
        self.path = path
        self.stat = stat
    }

    deinit { close() }

    // Client-side bookkeeping, no MDS round trip: not counted.
    public func close() { bound.close(counted: false) }

    @discardableResult
    private func run<T>(_ operation: String, _ body: (OpaquePointer, OpaquePointer) throws(CephError) -> T) throws(CephError) -> T {
        try bound.run(operation, body)
    }

    private func child(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    private func checkName(_ name: String, _ operation: String) throws(CephError) {
        if name.isEmpty || name == "." || name == ".." || name.utf8.contains(UInt8(ascii: "/")) || name.utf8.contains(0) {
            throw CephError(errno: .EINVAL, operation: operation, target: child(name), detail: "not a plain entry name")
        }
    }

    // MARK: This inode

    /// The current attributes.
    public func attributes() throws(CephError) -> FileStat {
        try run("ll_getattr") { m, i throws(CephError) in
            var s = vd_stat()
            try check(vd_ll_getattr(m, i, &s), "ll_getattr", path)
            return FileStat(s)
        }
    }

    /// Sets the permission bits and/or the owner of this inode (never of a
    /// link's target: a symlink handle changes the link itself).
    public func setAttributes(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil) throws(CephError) {
        var mask: Int32 = 0
        if mode != nil { mask |= 1 }
        if uid != nil { mask |= 2 }
        if gid != nil { mask |= 4 }
        guard mask != 0 else { return }
        try run("ll_setattr") { m, i throws(CephError) in
            try check(vd_ll_setattr(m, i, mask, (mode ?? 0) & 0o7777, uid ?? 0, gid ?? 0), "ll_setattr", path)
        }
    }

    /// The target of this symlink.
    public func readlink() throws(CephError) -> String {
        try run("ll_readlink") { m, i throws(CephError) in
            var buf = [CChar](repeating: 0, count: 4097)
            let n = try check(vd_ll_readlink(m, i, &buf, buf.count - 1), "ll_readlink", path)
            return String(decoding: buf[0..<Int(n)].map(UInt8.init(bitPattern:)), as: UTF8.self)
        }
    }

    /// Opens this file; `flags` are `O_*` flags without O_CREAT.
    public func open(flags: Int32) throws(CephError) -> InodeFile {
        try run("ll_open") { m, i throws(CephError) in
            var fh: OpaquePointer?
            try check(vd_ll_open(m, i, flags & ~O_CREAT, &fh), "ll_open", path)
            return InodeFile(mount: mount, client: client, fh: fh!, path: path)
        }
    }

    // MARK: Entries of this directory

    /// The entry `name`, whatever it is (a symlink is returned as such).
    public func lookup(_ name: String) throws(CephError) -> InodeHandle {
        try entry(name, "ll_lookup") { m, i, out, s in vd_ll_lookup(m, i, name, out, s) }
    }

    /// Runs `call`, an ll_* call on the single entry `name` of this
    /// directory that reports the entry's inode and attributes, and returns
    /// a handle on that inode.
    private func entry(
        _ name: String, _ operation: String,
        _ call: (OpaquePointer, OpaquePointer, UnsafeMutablePointer<OpaquePointer?>, UnsafeMutablePointer<vd_stat>) -> Int32
    ) throws(CephError) -> InodeHandle {
        try checkName(name, operation)
        return try run(operation) { m, i throws(CephError) in
            var out: OpaquePointer?
            var s = vd_stat()
            try check(call(m, i, &out, &s), operation, child(name))
            return InodeHandle(mount: mount, client: client, inode: out!, path: child(name), stat: FileStat(s))
        }
    }

    /// Like `lookup`, but nil when there is no such entry.
    public func lookupIfExists(_ name: String) throws(CephError) -> InodeHandle? {
        do {
            return try lookup(name)
        } catch Errno.ENOENT {
            return nil
        }
    }

    /// The names in this directory, without `.` and `..`.
    public func list() throws(CephError) -> [DirectoryEntry] {
        let dir = try run("ll_opendir") { m, i throws(CephError) in
            var d: OpaquePointer?
            try check(vd_ll_opendir(m, i, &d), "ll_opendir", path)
            return d!
        }
        // Its close (ceph_closedir) is what ceph_ll_releasedir does too.
        let stream = DirectoryStream(mount: mount, client: client, dir: dir, path: path)
        defer { stream.close() }
        var entries: [DirectoryEntry] = []
        while case let batch = try stream.nextBatch(), !batch.isEmpty {
            entries += batch.lazy.filter { $0.name != "." && $0.name != ".." }
        }
        return entries
    }

    /// Creates the directory `name`; EEXIST if the name is taken.
    public func makeDirectory(_ name: String, mode: UInt32) throws(CephError) -> InodeHandle {
        try entry(name, "ll_mkdir") { m, i, out, s in vd_ll_mkdir(m, i, name, mode, out, s) }
    }

    /// Creates the regular file `name` and opens it for writing (O_CREAT |
    /// O_EXCL): EEXIST if the name is taken, whatever it names.
    public func createFile(_ name: String, mode: UInt32) throws(CephError) -> (InodeHandle, InodeFile) {
        try checkName(name, "ll_create")
        return try run("ll_create") { m, i throws(CephError) in
            var out: OpaquePointer?
            var fh: OpaquePointer?
            var s = vd_stat()
            try check(vd_ll_create(m, i, name, mode, O_CREAT | O_EXCL | O_WRONLY, &out, &fh, &s), "ll_create", child(name))
            return (
                InodeHandle(mount: mount, client: client, inode: out!, path: child(name), stat: FileStat(s)),
                InodeFile(mount: mount, client: client, fh: fh!, path: child(name))
            )
        }
    }

    /// Creates the symlink `name` -> `target`; EEXIST if the name is taken.
    public func makeSymlink(_ name: String, target: String) throws(CephError) -> InodeHandle {
        try entry(name, "ll_symlink") { m, i, out, s in vd_ll_symlink(m, i, name, target, out, s) }
    }

    /// Removes the non-directory entry `name` (a symlink itself, not its target).
    public func unlink(_ name: String) throws(CephError) {
        try checkName(name, "ll_unlink")
        try run("ll_unlink") { m, i throws(CephError) in try check(vd_ll_unlink(m, i, name), "ll_unlink", child(name)) }
    }

    /// Removes the empty directory `name`.
    public func removeDirectory(_ name: String) throws(CephError) {
        try checkName(name, "ll_rmdir")
        try run("ll_rmdir") { m, i throws(CephError) in try check(vd_ll_rmdir(m, i, name), "ll_rmdir", child(name)) }
    }

    // MARK: Copy primitives
    //
    // For writing a tree into a directory someone else may change meanwhile:
    // an entry of the wrong kind at the name is unlinked (never followed, never
    // opened), then the new one is created exclusively. Should the name be
    // taken again in between, the attempt is repeated a few times, then EEXIST.

    static let replaceAttempts = 5

    /// A directory at `name`: an existing directory is reused; any other
    /// entry there is unlinked and a directory made in its place. The mode is
    /// not changed (see `setAttributes`).
    public func replacingDirectory(_ name: String, mode: UInt32) throws(CephError) -> InodeHandle {
        for _ in 0..<Self.replaceAttempts {
            if let existing = try lookupIfExists(name) {
                if existing.stat.isDirectory { return existing }
                existing.close()
                try ignoring(.ENOENT) { () throws(CephError) in try unlink(name) }
            }
            if let made = try ignoring(.EEXIST, { () throws(CephError) in try makeDirectory(name, mode: mode) }) {
                return made
            }
        }
        throw CephError(errno: .EEXIST, operation: "replace with a directory", target: child(name), detail: "the name keeps being taken")
    }

    /// A new, empty regular file at `name`, open for writing: any
    /// non-directory there is unlinked first, so nothing is written through
    /// an existing inode (a link, or a file with other hard links). An
    /// existing directory is refused with EISDIR and left as it is.
    public func replacingFile(_ name: String, mode: UInt32) throws(CephError) -> (InodeHandle, InodeFile) {
        for _ in 0..<Self.replaceAttempts {
            try removeNonDirectory(name)
            if let made = try ignoring(.EEXIST, { () throws(CephError) in try createFile(name, mode: mode) }) {
                return made
            }
        }
        throw CephError(errno: .EEXIST, operation: "replace with a file", target: child(name), detail: "the name keeps being taken")
    }

    /// A new symlink `name` -> `target`, replacing any non-directory there;
    /// an existing directory is refused with EISDIR.
    public func replacingSymlink(_ name: String, target: String) throws(CephError) -> InodeHandle {
        for _ in 0..<Self.replaceAttempts {
            try removeNonDirectory(name)
            if let made = try ignoring(.EEXIST, { () throws(CephError) in try makeSymlink(name, target: target) }) {
                return made
            }
        }
        throw CephError(errno: .EEXIST, operation: "replace with a symlink", target: child(name), detail: "the name keeps being taken")
    }

    private func removeNonDirectory(_ name: String) throws(CephError) {
        guard let existing = try lookupIfExists(name) else { return }
        defer { existing.close() }
        if existing.stat.isDirectory {
            throw CephError(
                errno: .EISDIR, operation: "replace", target: child(name), detail: "a directory is in the way; it is not replaced")
        }
        try ignoring(.ENOENT) { () throws(CephError) in try unlink(name) }
    }
}

/// A file opened through an `InodeHandle`. Closed by `close()` or, failing
/// that, in `deinit`.
public final class InodeFile: @unchecked Sendable {
    public var mount: CephFSMount { bound.mount }
    private let bound: ClientBound<OpaquePointer>
    public let path: String

    init(mount: CephFSMount, client: CephClient, fh: OpaquePointer, path: String) {
        bound = ClientBound(mount: mount, client: client, handle: fh, release: "ll_close") { m, fh in vd_ll_close(m, fh) }
        self.path = path
    }

    deinit { close() }

    public func close() { bound.close() }

    @discardableResult
    private func run<T>(_ operation: String, _ body: (OpaquePointer, OpaquePointer) throws(CephError) -> T) throws(CephError) -> T {
        try bound.run(operation, body)
    }

    /// Reads up to `count` bytes at `offset`; fewer at the end of the file.
    public func read(count: Int, offset: Int64) throws(CephError) -> [UInt8] {
        try run("ll_read") { m, fh throws(CephError) in
            var buf = [UInt8](repeating: 0, count: count)
            let n = try buf.withUnsafeMutableBufferPointer { b throws(CephError) in
                try b.withMemoryRebound(to: CChar.self) { c throws(CephError) in
                    try check(vd_ll_read(m, fh, offset, UInt64(c.count), c.baseAddress), "ll_read", path)
                }
            }
            buf.removeSubrange(Int(n)...)
            return buf
        }
    }

    /// Writes all of `data` at `offset`.
    public func write(_ data: [UInt8], offset: Int64) throws(CephError) {
        try run("ll_write") { m, fh throws(CephError) in
            var done = 0
            while done < data.count {
                let n = try data.withUnsafeBufferPointer { b throws(CephError) in
                    try b.withMemoryRebound(to: CChar.self) { c throws(CephError) in
                        try check(
                            vd_ll_write(m, fh, offset + Int64(done), UInt64(c.count - done), c.baseAddress! + done),
                            "ll_write", path)
                    }
                }
                if n == 0 { throw CephError(errno: .EIO, operation: "ll_write", target: path, detail: "short write") }
                done += Int(n)
            }
        }
    }

    public func fsync(dataOnly: Bool = false) throws(CephError) {
        try run("ll_fsync") { m, fh throws(CephError) in try check(vd_ll_fsync(m, fh, dataOnly ? 1 : 0), "ll_fsync", path) }
    }
}
