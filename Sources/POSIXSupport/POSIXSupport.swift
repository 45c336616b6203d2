#if canImport(Glibc)
import Glibc
#endif

/// Calls `body` again while it fails with EINTR, and returns its result. A
/// negative result leaves the failure's code in `errno`.
@inlinable
public func retryingOnInterrupt<T: SignedInteger>(_ body: () throws -> T) rethrows -> T {
    while true {
        let r = try body()
        if r < 0 && errno == EINTR { continue }
        return r
    }
}

/// The result of a system call that sets `errno` on failure: the value, or
/// the errno of a failure. EINTR is retried.
@inlinable
public func valueOrErrno<T: SignedInteger>(_ body: () throws -> T) rethrows -> (value: T, errno: Int32) {
    let r = try retryingOnInterrupt(body)
    return r < 0 ? (r, errno) : (r, 0)
}

/// An AF_UNIX socket address: a path, or a name in Linux's abstract namespace.
public struct UnixSocketAddress {
    @usableFromInline var storage = sockaddr_un()
    public let length: socklen_t

    /// The longest path that fits, without its terminating NUL.
    public static var maxPathLength: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1 }

    /// nil when `path` does not fit.
    public init?(path: String) {
        let bytes = Array(path.utf8)
        guard bytes.count <= Self.maxPathLength else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        length = socklen_t(MemoryLayout<sockaddr_un>.size)
    }

    /// A name in the abstract namespace (no file; the kernel releases it with
    /// the socket). nil when `name` does not fit.
    public init?(abstractName name: [UInt8]) {
        guard name.count <= Self.maxPathLength else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw[0] = 0
            for (i, b) in name.enumerated() { raw[i + 1] = b }
        }
        length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
    }

    @inlinable
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try withUnsafePointer(to: storage) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }
}
