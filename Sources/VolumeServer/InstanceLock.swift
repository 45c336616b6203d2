#if canImport(Glibc)
import Glibc
#endif

/// Keeps a second daemon with the same instance name off this host.
///
/// A daemon evicts the cluster sessions of its own instance name when it
/// starts, to free the locks a crashed run left behind. Two live daemons
/// sharing a name would evict each other, so the name is claimed on the host
/// first: by binding an abstract Unix socket named after it, which the kernel
/// releases when the process dies, however it dies.
public final class InstanceLock: Sendable {
    private let fd: Int32
    public let name: String

    /// Claims `name`; fails with EADDRINUSE when a live process holds it.
    public init(name: String) throws(SocketError) {
        self.name = name
        let fd = try UnixSocket.makeStreamSocket()
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let label = Array("cephfs-volumed/instance/\(name)".utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard label.count + 1 < capacity else {
            Glibc.close(fd)
            throw SocketError(operation: "instance name too long", path: name, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw[0] = 0  // the abstract namespace: no file, released with the process
            for (i, b) in label.enumerated() { raw[i + 1] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + label.count)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        if r < 0 {
            let e = errno
            Glibc.close(fd)
            throw SocketError(operation: "claim instance name", path: name, errno: e)
        }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }
}
