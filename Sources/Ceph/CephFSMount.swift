import CCephFS
import JSONValue

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The subset of `struct statx` the service uses.
public struct FileStat: Sendable, Equatable {
    public let inode: UInt64
    public let mode: UInt32
    public let linkCount: UInt32
    public let uid: UInt32
    public let gid: UInt32
    public let size: UInt64

    init(_ s: vd_stat) {
        inode = s.ino
        mode = s.mode
        linkCount = s.nlink
        uid = s.uid
        gid = s.gid
        size = s.size
    }

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isRegularFile: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
    public var isSymlink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
    /// Permission bits, without the file type.
    public var permissions: UInt32 { mode & 0o7777 }
}

/// One entry of a directory listing.
public struct DirectoryEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case directory, file, symlink, other }
    public let name: String
    public let kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// A CephFS client session sharing a `RadosCluster`'s connection.
///
/// Thread safety: libcephfs serialises inside its client, so every method may
/// be called from any thread. `close()` waits for calls in flight, then
/// unmounts and releases the handle; later calls fail with `ESHUTDOWN`.
/// Files and directory streams keep their mount alive.
public final class CephFSMount: @unchecked Sendable {
    public let cluster: RadosCluster
    private let cmount: OpaquePointer
    private let guard_ = LifecycleGuard()

    /// Creates and initialises a client without mounting it, so MDS commands
    /// such as a pre-mount eviction can run before `mount`.
    ///
    /// The client shares the cluster handle's configuration, which is frozen
    /// once it is connected: set `client_metadata` and the like in
    /// `ClusterOptions.extraConfig`.
    public init(cluster: RadosCluster) throws(CephError) {
        self.cluster = cluster
        cmount = try cluster.use("ceph_create_from_rados") { h throws(CephError) in
            var m: OpaquePointer?
            try check(vd_create_from_rados(&m, h), "ceph_create_from_rados")
            return m!
        }
        do throws(CephError) {
            try check(vd_init(cmount), "ceph_init")
        } catch {
            // All properties are set, so deinit runs too; close() makes that a no-op.
            close()
            throw error
        }
    }

    deinit { close() }

    /// Mounts `root` of the file system `fsName` (the default file system when nil).
    public func mount(root: String = "/", fsName: String? = nil) throws(CephError) {
        try run("mount") { m throws(CephError) in
            if let fsName { try check(vd_select_filesystem(m, fsName), "select file system", fsName) }
            try check(vd_mount(m, root), "mount", root)
        }
    }

    /// Unmounts and releases the client. Waits for calls in flight; safe to call twice.
    public func close() {
        let m = cmount
        guard_.close { vd_shutdown(m) }
    }

    /// Tears the session down without a clean unmount, as a crashed client
    /// would leave it. For tests of eviction and recovery.
    public func abort() {
        let m = cmount
        guard_.close {
            _ = vd_abort_conn(m)
            _ = vd_release(m)
        }
    }

    @discardableResult
    /// `counted` is false for calls served in batches from the client's cache (readdir).
    func run<T>(_ operation: String, counted: Bool = true, _ body: (OpaquePointer) throws(CephError) -> T) throws(CephError) -> T {
        let m = cmount
        guard counted else { return try guard_.use(operation) { () throws(CephError) -> T in try body(m) } }
        return try CallCounter.timed(\.fs, operation) { () throws(CephError) -> T in
            try guard_.use(operation) { () throws(CephError) -> T in try body(m) }
        }
    }

    /// The global id of this client's session, as MDS session listings show it.
    public func instanceID() throws(CephError) -> UInt64 {
        try run("get_instance_id") { m in vd_get_instance_id(m) }
    }

    public func confGet(_ option: String) throws(CephError) -> String {
        try run("conf_get") { m throws(CephError) in
            var buf = [CChar](repeating: 0, count: 4096)
            try check(vd_conf_get(m, option, &buf, buf.count), "conf_get", option)
            return String(decoding: buf.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
        }
    }

    // MARK: Paths

    public func stat(_ path: String, followSymlinks: Bool = true) throws(CephError) -> FileStat {
        try run("stat") { m throws(CephError) in
            var s = vd_stat()
            try check(vd_stat_path(m, path, &s, followSymlinks ? 0 : 1), "stat", path)
            return FileStat(s)
        }
    }

    /// Like `stat`, but nil when the path does not exist.
    public func statIfExists(_ path: String, followSymlinks: Bool = true) throws(CephError) -> FileStat? {
        do {
            return try stat(path, followSymlinks: followSymlinks)
        } catch Errno.ENOENT {
            return nil
        }
    }

    public func mkdir(_ path: String, mode: UInt32 = 0o755) throws(CephError) {
        try run("mkdir") { m throws(CephError) in try check(vd_mkdir(m, path, mode), "mkdir", path) }
    }

    public func rmdir(_ path: String) throws(CephError) {
        try run("rmdir") { m throws(CephError) in try check(vd_rmdir(m, path), "rmdir", path) }
    }

    public func rename(_ from: String, to: String) throws(CephError) {
        try run("rename") { m throws(CephError) in try check(vd_rename(m, from, to), "rename", "\(from) -> \(to)") }
    }

    public func unlink(_ path: String) throws(CephError) {
        try run("unlink") { m throws(CephError) in try check(vd_unlink(m, path), "unlink", path) }
    }

    public func symlink(target: String, at path: String) throws(CephError) {
        try run("symlink") { m throws(CephError) in try check(vd_symlink(m, target, path), "symlink", path) }
    }

    public func readlink(_ path: String) throws(CephError) -> String {
        try run("readlink") { m throws(CephError) in
            var buf = [CChar](repeating: 0, count: 4096)
            let n = try check(vd_readlink(m, path, &buf, Int64(buf.count)), "readlink", path)
            return String(decoding: buf[0..<Int(n)].map(UInt8.init(bitPattern:)), as: UTF8.self)
        }
    }

    public func chmod(_ path: String, mode: UInt32) throws(CephError) {
        try run("chmod") { m throws(CephError) in try check(vd_chmod(m, path, mode), "chmod", path) }
    }

    // MARK: Extended attributes

    /// The attribute's raw value. CephFS answers some virtual attributes with
    /// an empty value instead of ENODATA; that comes back as an empty array.
    public func getxattr(_ path: String, _ name: String) throws(CephError) -> [UInt8] {
        try run("getxattr") { m throws(CephError) in
            var size = 256
            while true {
                var buf = [UInt8](repeating: 0, count: size)
                let n = vd_getxattr(m, path, name, &buf, buf.count)
                if n == -Errno.ERANGE.rawValue, size < 1 << 20 {
                    size *= 8
                    continue
                }
                try check(n, "getxattr \(name)", path)
                return Array(buf[0..<Int(n)])
            }
        }
    }

    /// The attribute as text, or nil when absent or empty.
    public func getxattrString(_ path: String, _ name: String) throws(CephError) -> String? {
        do {
            let bytes = try getxattr(path, name)
            return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
        } catch Errno.ENODATA {
            return nil
        }
    }

    public func setxattr(_ path: String, _ name: String, _ value: String, flags: Int32 = 0) throws(CephError) {
        try run("setxattr") { m throws(CephError) in
            let bytes = Array(value.utf8)
            try check(vd_setxattr(m, path, name, bytes, bytes.count, flags), "setxattr \(name)", path)
        }
    }

    public func removexattr(_ path: String, _ name: String) throws(CephError) {
        try run("removexattr") { m throws(CephError) in
            try check(vd_removexattr(m, path, name), "removexattr \(name)", path)
        }
    }

    // MARK: Files and directories

    /// Opens a file; `flags` are the POSIX `O_*` flags.
    public func open(_ path: String, flags: Int32, mode: UInt32 = 0o644) throws(CephError) -> CephFile {
        let fd = try run("open") { m throws(CephError) in try check(vd_open(m, path, flags, mode), "open", path) }
        return CephFile(mount: self, fd: fd, path: path)
    }

    public func openDirectory(_ path: String) throws(CephError) -> DirectoryStream {
        let dir = try run("opendir") { m throws(CephError) in
            var d: OpaquePointer?
            try check(vd_opendir(m, path, &d), "opendir", path)
            return d!
        }
        return DirectoryStream(mount: self, dir: dir, path: path)
    }

    /// The names in a directory, without `.` and `..`.
    public func listDirectory(_ path: String) throws(CephError) -> [DirectoryEntry] {
        let stream = try openDirectory(path)
        defer { stream.close() }
        return try CallCounter.traced("readdir") { () throws(CephError) -> [DirectoryEntry] in
            var entries: [DirectoryEntry] = []
            while case let batch = try stream.nextBatch(), !batch.isEmpty {
                entries += batch.lazy.filter { $0.name != "." && $0.name != ".." }
            }
            return entries
        }
    }

    // MARK: MDS commands

    /// Sends a command to one MDS daemon, named by gid or `mds.<name>`.
    public func mdsCommand(_ target: String, _ args: [String: JSONValue]) throws(CephError) -> CommandOutput {
        let prefix = args["prefix"]?.stringValue ?? "?"
        let cmd = encodeCommand(args)
        return try CallCounter.timed(\.mds, "mds \(prefix)") { () throws(CephError) -> CommandOutput in try run("mds command", counted: false) { m throws(CephError) in
            var outbuf: UnsafeMutablePointer<CChar>?
            var outlen = 0
            var outs: UnsafeMutablePointer<CChar>?
            var outslen = 0
            let r: Int32 = cmd.withCString { c in
                var cmds: [UnsafePointer<CChar>?] = [c]
                return vd_mds_command(m, target, &cmds, 1, nil, 0, &outbuf, &outlen, &outs, &outslen)
            }
            let data = takeBuffer(outbuf, outlen, free: vd_buffer_free)
            let status = String(decoding: takeBuffer(outs, outslen, free: vd_buffer_free), as: UTF8.self)
            if r < 0 {
                throw CephError(errno: Errno(rawValue: -r), operation: "mds command '\(prefix)'", target: "mds \(target)", detail: status)
            }
            return CommandOutput(data: data, status: status)
        } }
    }
}
