import POSIXSupport

#if canImport(Glibc)
import Glibc
#endif

/// A failed socket system call.
package struct SocketError: Error, Sendable, CustomStringConvertible {
    package let operation: String
    package let path: String?
    package let errno: Errno

    /// `errno` as the C library set it.
    package init(operation: String, path: String?, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = Errno(rawValue: errno)
    }

    package var description: String {
        let what = path.map { "\(operation) \($0)" } ?? operation
        return "\(what): \(errno.message)"
    }
}

extension SocketError: ErrnoCarrying {}

/// Runs a system call, retrying on EINTR; a negative result becomes a SocketError.
@discardableResult
func syscall<T: SignedInteger>(_ operation: String, _ path: String? = nil, _ body: () -> T) throws(SocketError) -> T {
    let r = valueOrErrno(body)
    if r.value < 0 { throw SocketError(operation: operation, path: path, errno: r.errno) }
    return r.value
}

/// The credentials of a connected peer (SO_PEERCRED).
package struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    package let pid: Int32
    package let uid: UInt32
    package let gid: UInt32
    /// Supplementary groups (SO_PEERGROUPS), so group membership counts, not only the primary group.
    package var groups: [UInt32] = []
    package var description: String { "pid=\(pid) uid=\(uid) gid=\(gid)" }
}

enum UnixSocket {
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws(SocketError) -> T {
        guard let addr = UnixSocketAddress(path: path) else {
            throw SocketError(operation: "socket path too long", path: path, errno: ENAMETOOLONG)
        }
        return addr.withSockaddr(body)
    }

    static func makeStreamSocket() throws(SocketError) -> Int32 {
        #if canImport(Glibc)
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        return try syscall("socket") { socket(AF_UNIX, type, 0) }
    }

    /// Connects to `path`; blocking.
    static func connect(path: String) throws(SocketError) -> Int32 {
        let fd = try makeStreamSocket()
        do throws(SocketError) {
            let r = try withAddress(path) { a, l in Glibc.connect(fd, a, l) }
            if r < 0 { throw SocketError(operation: "connect", path: path, errno: errno) }
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Binds and listens on `path`. A socket file nobody answers on is stale
    /// and removed; one a live server answers on is refused with EADDRINUSE.
    static func listen(path: String, mode: mode_t, group: gid_t?, backlog: Int32 = 512) throws(SocketError) -> Int32 {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw SocketError(operation: "refusing to replace non-socket", path: path, errno: EEXIST)
            }
            if let probe = try? connect(path: path) {
                Glibc.close(probe)
                throw SocketError(operation: "a live server already listens on", path: path, errno: EADDRINUSE)
            }
            try syscall("remove stale socket", path) { unlink(path) }
        }
        let fd = try makeStreamSocket()
        do throws(SocketError) {
            // The socket file takes the socket's own mode (less the umask) at
            // bind, so it is never briefly world-accessible. Not a umask
            // change: that is process-wide, and would race with every other
            // thread creating files (tests run many servers at once).
            try syscall("fchmod", path) { fchmod(fd, 0o600) }
            let r = try withAddress(path) { a, l in bind(fd, a, l) }
            if r < 0 { throw SocketError(operation: "bind", path: path, errno: errno) }
            if let group { try syscall("chown", path) { chown(path, uid_t.max, group) } }
            try syscall("chmod", path) { chmod(path, mode) }
            try syscall("listen", path) { Glibc.listen(fd, backlog) }
            try setNonBlocking(fd)
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    static func setNonBlocking(_ fd: Int32) throws(SocketError) {
        let flags = try syscall("fcntl") { fcntl(fd, F_GETFL) }
        try syscall("fcntl") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    static func peerCredentials(_ fd: Int32) -> PeerCredentials? {
        #if os(Linux)
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }: Glibc hides it behind _GNU_SOURCE.
        var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
        var len = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { return nil }
        var peer = PeerCredentials(pid: cred.0, uid: cred.1, gid: cred.2)
        // SO_PEERGROUPS (Linux 4.13+): the peer's supplementary groups at connect time.
        let soPeerGroups: Int32 = 59
        var groups = [UInt32](repeating: 0, count: 256)
        var glen = socklen_t(groups.count * MemoryLayout<UInt32>.size)
        if getsockopt(fd, SOL_SOCKET, soPeerGroups, &groups, &glen) == 0 {
            peer.groups = Array(groups.prefix(Int(glen) / MemoryLayout<UInt32>.size))
        }
        return peer
        #else
        return nil
        #endif
    }

    /// Accepts one pending peer as a non-blocking, close-on-exec socket; nil when none is pending.
    static func acceptPeer(_ listenFD: Int32) throws(SocketError) -> Int32? {
        let fd = retryingOnInterrupt { accept(listenFD, nil, nil) }
        if fd >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            do {
                try setNonBlocking(fd)
            } catch {
                Glibc.close(fd)
                throw error
            }
            return fd
        }
        switch errno {
        case EAGAIN, EWOULDBLOCK: return nil
        default: throw SocketError(operation: "accept", path: nil, errno: errno)
        }
    }
}
