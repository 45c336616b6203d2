import POSIXSupport

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a second daemon that would evict this one's sessions off this host.
///
/// A daemon evicts the cluster sessions of its own instance name and cephx
/// ID on its cluster when it starts, to free the locks a crashed run left
/// behind. Two live daemons matching on all three would evict each other, so
/// that key (and no more: another cluster or cephx ID is no clash) is
/// claimed on the host first: by binding an abstract Unix socket named after
/// it, which the kernel releases when the process dies, however it dies.
package final class InstanceLock: Sendable {
    private let fd: Int32
    package let name: String

    /// Claims (`fsid`, `id`, `name`); fails with EADDRINUSE when a live
    /// process holds it.
    package init(fsid: String, id: String, name: String) throws(SocketError) {
        self.name = name
        let label = Array(Self.label(fsid: fsid, id: id, name: name).utf8)
        // The abstract namespace: no file, released with the process.
        guard let addr = UnixSocketAddress(abstractName: label) else {
            throw SocketError(operation: "claim instance name", path: name, errno: ENAMETOOLONG)
        }
        let fd = try UnixSocket.makeStreamSocket()
        let r = addr.withSockaddr { bind(fd, $0, $1) }
        if r < 0 {
            let e = errno
            Glibc.close(fd)
            throw SocketError(operation: "claim instance name", path: name, errno: e)
        }
        self.fd = fd
    }

    /// The socket's name: readable in `ss -xl` when it fits the 107 bytes of
    /// an abstract address, else the ID and instance name are hashed. Neither
    /// may contain '/' or '#', so the two forms cannot collide.
    static func label(fsid: String, id: String, name: String) -> String {
        let plain = "cephfs-volumed/\(fsid)/\(id)/\(name)"
        if plain.utf8.count <= 107 { return plain }
        let key = Array("\(id)/\(name)".utf8)
        return "cephfs-volumed/\(fsid)/#\(hex(fnv1a(key, basis: 0xcbf2_9ce4_8422_2325)))\(hex(fnv1a(key, basis: 0x6c62_272e_07bb_0142)))"
    }

    private static func fnv1a(_ bytes: [UInt8], basis: UInt64) -> UInt64 {
        var h = basis
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x100_0000_01b3
        }
        return h
    }

    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    deinit { Glibc.close(fd) }
}
