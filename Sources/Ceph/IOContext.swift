import CRados
import Synchronization

/// An I/O context on one pool (and optionally one namespace).
///
/// Thread safety: librados reports an object's version through per-context
/// state (`rados_get_last_version`), so every operation here runs under one
/// lock, which keeps a read and its version together. Use one context per
/// concurrent worker if that lock matters.
public final class IOContext: @unchecked Sendable {
    private let cluster: RadosCluster  // keeps the cluster alive
    private let io: rados_ioctx_t
    private let guard_ = LifecycleGuard()
    private let opLock = Mutex(())
    public let pool: String

    init(cluster: RadosCluster, pool: String, namespace: String?) throws(CephError) {
        try Self.checkName(pool, "open pool", "")
        if let namespace, namespace.utf8.contains(0) {
            throw CephError(errno: .EINVAL, operation: "open pool", target: pool, detail: "namespace contains NUL")
        }
        self.cluster = cluster
        self.pool = pool
        io = try cluster.use("ioctx_create") { h throws(CephError) in
            var io: rados_ioctx_t?
            try check(rados_ioctx_create(h, pool, &io), "open pool", pool)
            return io!
        }
        if let namespace { rados_ioctx_set_namespace(io, namespace) }
    }

    deinit { close() }

    /// librados takes names as C strings: one with a NUL would silently name
    /// its prefix (`a\0b` is `a`), and an empty one no object at all.
    static func checkName(_ name: String, _ operation: String, _ pool: String) throws(CephError) {
        if name.isEmpty || name.utf8.contains(0) {
            let shown = name.split(separator: "\0", omittingEmptySubsequences: false).joined(separator: "\\0")
            throw CephError(
                errno: .EINVAL, operation: operation, target: pool.isEmpty ? shown : "\(pool)/\(shown)",
                detail: name.isEmpty ? "empty name" : "name contains NUL")
        }
    }

    public func close() {
        let io = self.io
        guard_.close { rados_ioctx_destroy(io) }
    }

    @discardableResult
    private func run<T: Sendable>(_ operation: String, _ body: (rados_ioctx_t) throws(CephError) -> T) throws(CephError) -> T {
        let io = self.io
        CallCounter.count(\.rados)
        return try guard_.use(operation) { () throws(CephError) -> T in
            try opLock.withLock { _ throws(CephError) -> T in try body(io) }
        }
    }

    /// Replaces the object's whole content.
    public func writeFull(_ object: String, _ data: [UInt8]) throws(CephError) {
        try Self.checkName(object, "write_full", pool)
        try run("write_full") { io throws(CephError) in
            try data.withUnsafeBufferPointer { b throws(CephError) in
                try b.withMemoryRebound(to: CChar.self) { c throws(CephError) in
                    try check(rados_write_full(io, object, c.baseAddress, c.count), "write_full", "\(pool)/\(object)")
                }
            }
        }
    }

    /// Replaces the object's content only if its version is still `expectedVersion`
    /// (fails with ERANGE or EOVERFLOW otherwise); without a version it is a plain write_full.
    public func writeFull(_ object: String, _ data: [UInt8], assertVersion expectedVersion: UInt64?) throws(CephError) {
        try Self.checkName(object, "versioned write", pool)
        try run("versioned write") { io throws(CephError) in
            guard let op = rados_create_write_op() else { throw CephError(errno: .ENOMEM, operation: "create_write_op") }
            defer { rados_release_write_op(op) }
            if let expectedVersion { rados_write_op_assert_version(op, expectedVersion) }
            try data.withUnsafeBufferPointer { b throws(CephError) in
                try b.withMemoryRebound(to: CChar.self) { c throws(CephError) in
                    rados_write_op_write_full(op, c.baseAddress, c.count)
                    try check(rados_write_op_operate(op, io, object, nil, 0), "versioned write", "\(pool)/\(object)")
                }
            }
        }
    }

    /// Reads up to `maxLength` bytes of the object and the version they belong to.
    ///
    /// The buffer is sized to the object, not to `maxLength` (which is
    /// `osd_max_write_size`, 90 MiB by default): the first operation stats
    /// and reads up to `chunkSize` bytes at once, so a small object costs one
    /// round trip. A larger one is read in further chunks, each asserting
    /// the version the first saw; if the object changed in between, the read
    /// starts over with one operation sized to the whole object, so the
    /// bytes always belong to the version returned.
    public func readWithVersion(
        _ object: String, maxLength: Int, chunkSize: Int = 4 << 20
    ) throws(CephError) -> (data: [UInt8], version: UInt64) {
        try Self.checkName(object, "read", pool)
        return try run("read") { io throws(CephError) in
            let target = "\(pool)/\(object)"
            let chunk = max(1, chunkSize)
            var firstLength = min(maxLength, chunk, 64 * 1024)
            for _ in 0..<16 {
                // Stat and the first bytes in one operation, so they agree.
                var size: UInt64 = 0
                var failure: CephError?
                var first = [UInt8](unsafeUninitializedCapacity: firstLength) { b, count in
                    do throws(CephError) {
                        count = try readOp(
                            io, object, target, version: nil, offset: 0, into: UnsafeMutableRawBufferPointer(b), size: &size)
                    } catch {
                        failure = error
                        count = 0
                    }
                }
                if let failure { throw failure }
                let firstRead = first.count
                let version = rados_get_last_version(io)
                let total = Int(min(size, UInt64(maxLength)))
                if total <= firstRead {
                    first.removeSubrange(total...)
                    return (first, version)
                }
                // The rest straight into a buffer of the object's size, never zero-filled.
                var changed = false
                let data = [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
                    let raw = UnsafeMutableRawBufferPointer(buffer)
                    first.withUnsafeBytes { raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<firstRead])) }
                    count = firstRead
                    while count < total {
                        let part = UnsafeMutableRawBufferPointer(rebasing: raw[count..<min(total, count + chunk)])
                        do throws(CephError) {
                            let n = try readOp(io, object, target, version: version, offset: count, into: part, size: nil)
                            if n == 0 { break }  // cannot happen at an unchanged version
                            count += n
                        } catch {
                            // ERANGE/EOVERFLOW: written since the first read, so start over.
                            if error.errno == .ERANGE || error.errno == .EOVERFLOW {
                                changed = true
                            } else {
                                failure = error
                            }
                            return
                        }
                    }
                }
                if let failure { throw failure }
                if !changed { return (data, version) }
                // Written while read in chunks (a busy writer could do that
                // every time): next time read it whole, in the first operation.
                firstLength = min(maxLength, total + total / 4 + 64 * 1024)
            }
            throw CephError(errno: .EAGAIN, operation: "read", target: target, detail: "the object kept changing while it was read")
        }
    }

    /// One read operation: optionally asserts `version` and stats, then
    /// reads up to `buffer.count` bytes at `offset`; returns the bytes read.
    private func readOp(
        _ io: rados_ioctx_t, _ object: String, _ target: String, version: UInt64?, offset: Int,
        into buffer: UnsafeMutableRawBufferPointer, size: UnsafeMutablePointer<UInt64>?
    ) throws(CephError) -> Int {
        guard let op = rados_create_read_op() else { throw CephError(errno: .ENOMEM, operation: "create_read_op") }
        defer { rados_release_read_op(op) }
        if let version { rados_read_op_assert_version(op, version) }
        // librados writes these during operate: they need addresses that outlive each call.
        let results = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        let bytesRead = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        let mtime = UnsafeMutablePointer<time_t>.allocate(capacity: 1)
        results.initialize(repeating: 0, count: 2)
        bytesRead.initialize(to: 0)
        mtime.initialize(to: 0)
        defer {
            results.deallocate()
            bytesRead.deallocate()
            mtime.deallocate()
        }
        if let size { rados_read_op_stat(op, size, mtime, results) }
        rados_read_op_read(
            op, UInt64(offset), buffer.count, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), bytesRead, results + 1)
        try check(rados_read_op_operate(op, io, object, 0), "read", target)
        try check(results[0], "stat", target)
        try check(results[1], "read", target)
        return bytesRead.pointee
    }

    /// Reads up to `maxLength` bytes of the object.
    public func read(_ object: String, maxLength: Int) throws(CephError) -> [UInt8] {
        try readWithVersion(object, maxLength: maxLength).data
    }

    /// The object's size in bytes.
    public func size(_ object: String) throws(CephError) -> UInt64 {
        try Self.checkName(object, "stat", pool)
        return try run("stat") { io throws(CephError) in
            var size: UInt64 = 0
            var mtime = time_t()
            try check(rados_stat(io, object, &size, &mtime), "stat", "\(pool)/\(object)")
            return size
        }
    }

    /// The object's current version.
    public func version(_ object: String) throws(CephError) -> UInt64 {
        try Self.checkName(object, "stat", pool)
        return try run("stat") { io throws(CephError) in
            var size: UInt64 = 0
            var mtime = time_t()
            try check(rados_stat(io, object, &size, &mtime), "stat", "\(pool)/\(object)")
            return rados_get_last_version(io)
        }
    }

    public func remove(_ object: String) throws(CephError) {
        try Self.checkName(object, "remove", pool)
        try run("remove") { io throws(CephError) in
            try check(rados_remove(io, object), "remove", "\(pool)/\(object)")
        }
    }
}
