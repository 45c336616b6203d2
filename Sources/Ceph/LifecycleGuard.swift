#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes a C handle safe to share between threads: calls run under a shared
/// lock, and teardown takes it exclusively, so a handle is never released
/// while a call on it is still running, and calls after teardown fail cleanly.
final class LifecycleGuard: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var closed = false  // guarded by lock

    init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` unless the handle was closed, in which case it throws ESHUTDOWN.
    @discardableResult
    func use<T>(_ operation: String, _ body: () throws(CephError) -> T) throws(CephError) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if closed { throw CephError(errno: .ESHUTDOWN, operation: operation, detail: "handle is closed") }
        return try body()
    }

    /// Runs `body` once, after every call in flight has finished. Returns false if already closed.
    @discardableResult
    func close(_ body: () -> Void) -> Bool {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if closed { return false }
        closed = true
        body()
        return true
    }

    var isClosed: Bool {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return closed
    }
}

/// A C handle (descriptor, inode, file or directory handle) that belongs to
/// one libcephfs client. Calls run on that client, never on the one a
/// remount made after it, and the release waits for calls in flight.
final class ClientBound<Handle>: @unchecked Sendable {
    let mount: CephFSMount
    let client: CephClient
    private let handle: Handle
    private let guard_ = LifecycleGuard()
    private let releaseName: String
    private let release: (OpaquePointer, Handle) -> Void

    /// `release` runs once, on `close()`; client-side bookkeeping without an
    /// MDS round trip is named with `counted` false.
    init(
        mount: CephFSMount, client: CephClient, handle: Handle, release name: String,
        _ release: @escaping (OpaquePointer, Handle) -> Void
    ) {
        self.mount = mount
        self.client = client
        self.handle = handle
        releaseName = name
        self.release = release
    }

    func close(counted: Bool = true) {
        guard_.close { _ = try? mount.run(on: client, releaseName, counted: counted) { m in release(m, handle) } }
    }

    @discardableResult
    func run<T>(_ operation: String, counted: Bool = true, _ body: (OpaquePointer, Handle) throws(CephError) -> T) throws(CephError) -> T {
        try guard_.use(operation) { () throws(CephError) -> T in
            try mount.run(on: client, operation, counted: counted) { m throws(CephError) in try body(m, handle) }
        }
    }
}
