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
    public func readWithVersion(_ object: String, maxLength: Int) throws(CephError) -> (data: [UInt8], version: UInt64) {
        try run("read") { io throws(CephError) in
            var data = [UInt8](repeating: 0, count: maxLength)
            let n = try data.withUnsafeMutableBufferPointer { b throws(CephError) in
                try b.withMemoryRebound(to: CChar.self) { c throws(CephError) in
                    try check(rados_read(io, object, c.baseAddress, c.count, 0), "read", "\(pool)/\(object)")
                }
            }
            data.removeSubrange(Int(n)...)
            return (data, rados_get_last_version(io))
        }
    }

    /// Reads up to `maxLength` bytes of the object.
    public func read(_ object: String, maxLength: Int) throws(CephError) -> [UInt8] {
        try readWithVersion(object, maxLength: maxLength).data
    }

    /// The object's size in bytes.
    public func size(_ object: String) throws(CephError) -> UInt64 {
        try run("stat") { io throws(CephError) in
            var size: UInt64 = 0
            var mtime = time_t()
            try check(rados_stat(io, object, &size, &mtime), "stat", "\(pool)/\(object)")
            return size
        }
    }

    /// The object's current version.
    public func version(_ object: String) throws(CephError) -> UInt64 {
        try run("stat") { io throws(CephError) in
            var size: UInt64 = 0
            var mtime = time_t()
            try check(rados_stat(io, object, &size, &mtime), "stat", "\(pool)/\(object)")
            return rados_get_last_version(io)
        }
    }

    public func remove(_ object: String) throws(CephError) {
        try run("remove") { io throws(CephError) in
            try check(rados_remove(io, object), "remove", "\(pool)/\(object)")
        }
    }
}
