import CCephFS

/// An open CephFS file. Closed by `close()` or, failing that, in `deinit`.
/// Safe to use from several threads; each call is independent.
public final class CephFile: @unchecked Sendable {
    public var mount: CephFSMount { bound.mount }
    /// Files do not follow a remount: they stay on the client that opened them.
    private let bound: ClientBound<Int32>
    public let fd: Int32
    public let path: String

    init(mount: CephFSMount, client: CephClient, fd: Int32, path: String) {
        bound = ClientBound(mount: mount, client: client, handle: fd, release: "close") { m, fd in vd_close(m, fd) }
        self.fd = fd
        self.path = path
    }

    deinit { close() }

    /// Opened on a client the mount has since replaced (see `CephFSMount`): every call fails.
    public var isStale: Bool { bound.client !== mount.client }

    public func close() { bound.close() }

    @discardableResult
    private func run<T>(_ operation: String, _ body: (OpaquePointer, Int32) throws(CephError) -> T) throws(CephError) -> T {
        try bound.run(operation, body)
    }

    /// Reads up to `count` bytes at `offset`; fewer at the end of the file.
    public func read(count: Int, offset: Int64) throws(CephError) -> [UInt8] {
        try run("read") { m, fd throws(CephError) in
            var buf = [UInt8](repeating: 0, count: count)
            let n = try buf.withUnsafeMutableBufferPointer { b throws(CephError) in
                try b.withMemoryRebound(to: CChar.self) { c throws(CephError) in
                    try check(vd_read(m, fd, c.baseAddress, Int64(c.count), offset), "read", path)
                }
            }
            buf.removeSubrange(Int(n)...)
            return buf
        }
    }

    /// Reads the whole file from `offset` on, in chunks of `chunk` bytes.
    public func readAll(chunk: Int = 1 << 20) throws(CephError) -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let part = try read(count: chunk, offset: Int64(out.count))
            out += part
            if part.count < chunk { return out }
        }
    }

    /// Writes all of `data` at `offset`.
    public func write(_ data: some Collection<UInt8>, offset: Int64) throws(CephError) {
        let bytes = Array(data)
        try run("write") { m, fd throws(CephError) in
            var done = 0
            while done < bytes.count {
                let n = try bytes.withUnsafeBufferPointer { b throws(CephError) in
                    try b.withMemoryRebound(to: CChar.self) { c throws(CephError) in
                        try check(
                            vd_write(m, fd, c.baseAddress! + done, Int64(c.count - done), offset + Int64(done)),
                            "write", path)
                    }
                }
                if n == 0 { throw CephError(errno: .EIO, operation: "write", target: path, detail: "short write") }
                done += Int(n)
            }
        }
    }

    public func fsync(dataOnly: Bool = false) throws(CephError) {
        try run(dataOnly ? "fdatasync" : "fsync") { m, fd throws(CephError) in
            try check(vd_fsync(m, fd, dataOnly ? 1 : 0), dataOnly ? "fdatasync" : "fsync", path)
        }
    }

    public func truncate(to size: Int64) throws(CephError) {
        try run("ftruncate") { m, fd throws(CephError) in try check(vd_ftruncate(m, fd, size), "ftruncate", path) }
    }

    public func stat() throws(CephError) -> FileStat {
        try run("fstat") { m, fd throws(CephError) in
            var s = vd_stat()
            try check(vd_fstat(m, fd, &s), "fstat", path)
            return FileStat(s)
        }
    }

    /// BSD flock operations, as libcephfs takes them.
    public struct LockOperation: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let shared = LockOperation(rawValue: 1)  // LOCK_SH
        public static let exclusive = LockOperation(rawValue: 2)  // LOCK_EX
        public static let nonBlocking = LockOperation(rawValue: 4)  // LOCK_NB
        public static let unlock = LockOperation(rawValue: 8)  // LOCK_UN
    }

    /// Takes or drops a CephFS flock for `owner`. Different owners exclude each
    /// other across clients; one owner does not exclude itself.
    public func flock(_ operation: LockOperation, owner: UInt64) throws(CephError) {
        try run("flock") { m, fd throws(CephError) in try check(vd_flock(m, fd, operation.rawValue, owner), "flock", path) }
    }
}

/// An open directory. Closed by `close()` or, failing that, in `deinit`.
/// Not for concurrent use: a stream has one read position.
public final class DirectoryStream: @unchecked Sendable {
    public var mount: CephFSMount { bound.mount }
    private let bound: ClientBound<OpaquePointer>
    public let path: String

    init(mount: CephFSMount, client: CephClient, dir: OpaquePointer, path: String) {
        bound = ClientBound(mount: mount, client: client, handle: dir, release: "closedir") { m, dir in vd_closedir(m, dir) }
        self.path = path
    }

    deinit { close() }

    public func close() { bound.close() }

    /// The next entries, as many as the client has at hand; empty at the end.
    public func nextBatch() throws(CephError) -> [DirectoryEntry] {
        try bound.run("readdir", counted: false) { m, dir throws(CephError) -> [DirectoryEntry] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            let r = buffer.withUnsafeMutableBytes { b in
                vd_readdir_batch(m, dir, b.baseAddress!.assumingMemoryBound(to: CChar.self), b.count)
            }
            let n = try check(r, "readdir", path)
            var entries: [DirectoryEntry] = []
            var i = 0
            while i < Int(n) {
                let type = buffer[i]
                let start = i + 1
                var end = start
                while buffer[end] != 0 { end += 1 }
                entries.append(DirectoryEntry(name: String(decoding: buffer[start..<end], as: UTF8.self), kind: .init(dType: type)))
                i = end + 1
            }
            return entries
        }
    }
}

extension DirectoryEntry.Kind {
    init(dType: UInt8) {
        self =
            switch dType {
            case 4: .directory  // DT_DIR
            case 8: .file  // DT_REG
            case 10: .symlink  // DT_LNK
            default: .other
            }
    }
}
