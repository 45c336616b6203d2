import CCephFS
import Dispatch
import JSONValue
import Synchronization

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

/// One libcephfs client instance. A `CephFSMount` replaces its client when
/// the MDS evicts it; files and directory streams stay bound to the client
/// that opened them, as their descriptors mean nothing to another.
final class CephClient: @unchecked Sendable {
    let cmount: OpaquePointer
    let guard_ = LifecycleGuard()
    /// 0 for a mount's first client, one more for each replacement.
    let generation: Int

    init(cluster: RadosCluster, generation: Int) throws(CephError) {
        self.generation = generation
        cmount = try cluster.use("ceph_create_from_rados") { h throws(CephError) in
            var m: OpaquePointer?
            try check(vd_create_from_rados(&m, h), "ceph_create_from_rados")
            return m!
        }
        do throws(CephError) {
            try check(vd_init(cmount), "ceph_init")
        } catch {
            close()
            throw error
        }
    }

    /// Unmounts and releases. Waits for calls in flight; safe to call twice.
    func close() {
        let m = cmount
        guard_.close { vd_shutdown(m) }
    }

    /// Releases without a clean unmount (which an evicted client may never finish).
    func abort() {
        let m = cmount
        guard_.close {
            _ = vd_abort_conn(m)
            _ = vd_release(m)
        }
    }
}

/// What a mount did after finding its session evicted or blocklisted.
public struct RemountReport: Sendable, CustomStringConvertible {
    /// The failed call that showed the session was gone.
    public let cause: CephError
    /// How long making the new client and mounting it took.
    public let duration: Duration
    /// The new session's global id; nil when the remount failed.
    public let instanceID: UInt64?
    /// Why the remount failed; nil when the new mount is up.
    public let failure: CephError?

    public var description: String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if let failure { return "session evicted or blocklisted (\(cause)); remount failed after \(ms) ms: \(failure)" }
        return "session evicted or blocklisted (\(cause)); remounted as client.\(instanceID ?? 0) in \(ms) ms"
    }
}

/// A CephFS client session sharing a `RadosCluster`'s connection.
///
/// Thread safety: libcephfs serialises inside its client, so every method may
/// be called from any thread. `close()` waits for calls in flight, then
/// unmounts and releases the handle; later calls fail with `ESHUTDOWN`.
/// Files and directory streams keep their mount alive.
///
/// Eviction. When the MDS evicts this client (an operator's `client evict`,
/// or a session that timed out), it is blocklisted too by default, and
/// every call fails with ESHUTDOWN (EBLOCKLISTED) for good. With
/// `enableRemount`, once mounted, a call failing so makes the mount replace
/// its client: a new libcephfs
/// client from the same cluster handle (which has its own messenger, and
/// so its own, unblocklisted address; the client metadata comes from the
/// shared configuration), mounted as before. The call that found the
/// session gone still fails, with a message saying so; later calls use the
/// new client. Calls in flight on the old client fail; the old client is
/// released in the background once they are done. Files opened on the old
/// client fail from then on. One thread remounts while the others that saw
/// the same failure wait for it; a failed remount is tried again by a call
/// at least 5 s later.
public final class CephFSMount: @unchecked Sendable {
    public let cluster: RadosCluster

    private struct State {
        var client: CephClient
        /// Set by `mount`: what a new client mounts.
        var mounted: (root: String, fsName: String?)?
        var closed = false
        /// Replaced clients not yet released.
        var retired: [CephClient] = []
        /// The generation of a client known to have lost its session and not yet replaced.
        var lost: Int?
        var onRemount: (@Sendable (RemountReport) -> Void)?
    }
    private let state: Mutex<State>
    /// Held by the thread replacing a lost client. The generation and time of the last failed attempt.
    private let remounting = Mutex<(generation: Int, at: ContinuousClock.Instant)?>(nil)

    /// Creates and initialises a client without mounting it, so MDS commands
    /// such as a pre-mount eviction can run before `mount`.
    ///
    /// The client shares the cluster handle's configuration, which is frozen
    /// once it is connected: set `client_metadata` and the like in
    /// `ClusterOptions.extraConfig`.
    public init(cluster: RadosCluster) throws(CephError) {
        self.cluster = cluster
        state = Mutex(State(client: try CephClient(cluster: cluster, generation: 0)))
    }

    deinit { close() }

    /// The current client.
    var client: CephClient { state.withLock { $0.client } }

    /// How many times the client was replaced after losing its session.
    public var generation: Int { client.generation }

    /// Turns on the replacement of a lost session (off by default: a tenant's
    /// client, as tests model it, stays evicted). `handler` is called after
    /// each replacement and each failed attempt, on the thread that made it,
    /// with no lock held.
    public func enableRemount(_ handler: @escaping @Sendable (RemountReport) -> Void) {
        state.withLock { $0.onRemount = handler }
    }

    /// Mounts `root` of the file system `fsName` (the default file system when nil).
    public func mount(root: String = "/", fsName: String? = nil) throws(CephError) {
        let c = client
        try run(on: c, "mount") { m throws(CephError) in try Self.mount(m, root: root, fsName: fsName) }
        state.withLock { s in if s.client === c { s.mounted = (root, fsName) } }
    }

    private static func mount(_ m: OpaquePointer, root: String, fsName: String?) throws(CephError) {
        if let fsName { try check(vd_select_filesystem(m, fsName), "select file system", fsName) }
        try check(vd_mount(m, root), "mount", root)
    }

    /// Unmounts and releases the client. Waits for calls in flight; safe to call twice.
    public func close() {
        let (c, retired, lost) = state.withLock { s in
            s.closed = true
            return (s.client, s.retired, s.lost == s.client.generation)
        }
        // A clean unmount of a client whose session is gone can wait for ever.
        if lost { c.abort() } else { c.close() }
        for r in retired { r.abort() }  // waits for a release in progress
    }

    /// Tears the session down without a clean unmount, as a crashed client
    /// would leave it. For tests of eviction and recovery.
    public func abort() {
        let (c, retired) = state.withLock { s in
            s.closed = true
            return (s.client, s.retired)
        }
        c.abort()
        for r in retired { r.abort() }
    }

    @discardableResult
    /// `counted` is false for calls served in batches from the client's cache (readdir).
    func run<T>(_ operation: String, counted: Bool = true, _ body: (OpaquePointer) throws(CephError) -> T) throws(CephError) -> T {
        try run(on: client, operation, counted: counted, body)
    }

    /// Runs `body` on the client `c`. A failure meaning that the session is
    /// gone replaces the client (see the type's notes).
    @discardableResult
    func run<T>(
        on c: CephClient, _ operation: String, counted: Bool = true, _ body: (OpaquePointer) throws(CephError) -> T
    ) throws(CephError) -> T {
        var lost = false
        func call() throws(CephError) -> T {
            try c.guard_.use(operation) { () throws(CephError) -> T in
                do throws(CephError) {
                    return try body(c.cmount)
                } catch {
                    lost = Self.meansSessionLost(error.errno)
                    throw error
                }
            }
        }
        do throws(CephError) {
            guard counted else { return try call() }
            return try CallCounter.timed(\.fs, operation) { () throws(CephError) -> T in try call() }
        } catch {
            if lost { throw sessionLost(c, error) }
            if error.errno == .ESHUTDOWN, c.generation < generation {
                // The guard of a client already replaced.
                throw CephError(errno: .ESHUTDOWN, operation: operation, target: error.target, detail: Self.replacedDetail)
            }
            throw error
        }
    }

    /// EBLOCKLISTED is ESHUTDOWN in Ceph; ENOTCONN is a client that lost its mount.
    static func meansSessionLost(_ e: Errno) -> Bool { e == .ESHUTDOWN || e == .ENOTCONN }

    static let replacedDetail = "this client's CephFS session was evicted or blocklisted and has been replaced by a new mount; retry"

    /// Replaces `c` after a call on it failed with `error`, unless that was
    /// done already; returns the error to report for the call.
    private func sessionLost(_ c: CephClient, _ error: CephError) -> CephError {
        enum Outcome { case untouched, replaced, failed }
        var outcome = Outcome.untouched
        var report: RemountReport?
        var handler: (@Sendable (RemountReport) -> Void)?
        remounting.withLock { lastFailure in
            let (current, mounted, closed, enabled) = state.withLock { ($0.client, $0.mounted, $0.closed, $0.onRemount != nil) }
            // Not ours to replace: not asked to, never mounted, or being closed.
            guard enabled, let mounted, !closed else { return }
            if current !== c {
                outcome = .replaced  // by another thread that saw the same
                return
            }
            outcome = .failed
            state.withLock { $0.lost = c.generation }
            if let f = lastFailure, f.generation == c.generation, ContinuousClock.now - f.at < .seconds(5) { return }
            let start = ContinuousClock.now
            do throws(CephError) {
                let fresh = try CephClient(cluster: cluster, generation: c.generation + 1)
                let id: UInt64
                do throws(CephError) {
                    // Not through run(on:): a failure here must not come back to this lock.
                    id = try fresh.guard_.use("mount") { () throws(CephError) -> UInt64 in
                        try Self.mount(fresh.cmount, root: mounted.root, fsName: mounted.fsName)
                        return vd_get_instance_id(fresh.cmount)
                    }
                } catch {
                    fresh.abort()
                    throw error
                }
                let installed = state.withLock { s -> Bool in
                    guard !s.closed else { return false }
                    s.client = fresh
                    s.retired.append(c)
                    handler = s.onRemount
                    return true
                }
                guard installed else {
                    fresh.close()
                    return
                }
                lastFailure = nil
                outcome = .replaced
                report = RemountReport(cause: error, duration: ContinuousClock.now - start, instanceID: id, failure: nil)
                // Calls in flight on the old client may take a while to fail; its release waits for them.
                DispatchQueue.global().async { [self] in
                    c.abort()
                    state.withLock { s in s.retired.removeAll { $0 === c } }
                }
            } catch let failure {
                lastFailure = (c.generation, ContinuousClock.now)
                handler = state.withLock { $0.onRemount }
                report = RemountReport(cause: error, duration: ContinuousClock.now - start, instanceID: nil, failure: failure)
            }
        }
        if let report { handler?(report) }
        switch outcome {
        case .untouched:
            return error
        case .replaced:
            return CephError(errno: error.errno, operation: error.operation, target: error.target, detail: Self.replacedDetail)
        case .failed:
            return CephError(
                errno: error.errno, operation: error.operation, target: error.target,
                detail: "this client's CephFS session was evicted or blocklisted; remounting failed, a later call tries again")
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
        let c = client
        let fd = try run(on: c, "open") { m throws(CephError) in try check(vd_open(m, path, flags, mode), "open", path) }
        return CephFile(mount: self, client: c, fd: fd, path: path)
    }

    public func openDirectory(_ path: String) throws(CephError) -> DirectoryStream {
        let c = client
        let dir = try run(on: c, "opendir") { m throws(CephError) in
            var d: OpaquePointer?
            try check(vd_opendir(m, path, &d), "opendir", path)
            return d!
        }
        return DirectoryStream(mount: self, client: c, dir: dir, path: path)
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
        return try CallCounter.timed(\.mds, "mds \(prefix)") { () throws(CephError) -> CommandOutput in
            try run("mds command", counted: false) { m throws(CephError) in
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
                    throw CephError(
                        errno: Errno(rawValue: -r), operation: "mds command '\(prefix)'", target: "mds \(target)", detail: status)
                }
                return CommandOutput(data: data, status: status)
            }
        }
    }
}
