import Foundation
import POSIXSupport

/// A blocking, byte-exact line client for protocol tests: it sends exactly
/// what it is given and reads replies line by line.
public final class LineClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(path: String, receiveTimeout: TimeInterval = 60) throws {
        // `self.fd` is set only once connected: a throwing init of a fully
        // initialised object still runs deinit, which would close the
        // descriptor a second time, by then perhaps another thread's (a Ceph
        // messenger socket, which aborts when its socket vanishes).
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("socket: \(errno)") }
        guard let addr = UnixSocketAddress(path: path) else {
            close(fd)
            throw DaemonError("socket path too long: \(path)")
        }
        let r = addr.withSockaddr { connect(fd, $0, $1) }
        if r < 0 {
            let e = errno
            close(fd)
            throw DaemonError("connect \(path): \(String(cString: strerror(e)))")
        }
        var tv = timeval(tv_sec: Int(receiveTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw DaemonError("send failed: \(errno)") }
            offset += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// The next line without its newline, or nil at end of stream.
    public func readLine() throws -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return nil }
            if n < 0 { throw DaemonError("read failed: \(String(cString: strerror(errno)))") }
            buffer += chunk[0..<n]
        }
    }

    /// Sends one line and returns the reply line.
    public func request(_ line: String) throws -> String {
        try send(line + "\n")
        guard let reply = try readLine() else { throw DaemonError("connection closed before a reply") }
        return reply
    }

    /// Half-closes the sending side.
    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}
