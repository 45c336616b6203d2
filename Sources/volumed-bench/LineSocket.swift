import Histogram
import POSIXSupport

#if canImport(Glibc)
import Glibc
#endif

/// A bare blocking line-delimited JSON-RPC client for the RPC-overhead and
/// memory workloads. It does as little as possible per request (a
/// preformatted request line, a byte scan of the reply for its id), so the
/// figures are dominated by the server, and both servers get the very same
/// client. (The Ceph workloads use `VolumeClient.RPCConnection`.)
final class LineSocket: @unchecked Sendable {  // used by one thread at a time
    let fd: Int32
    private var buffer: UnsafeMutableRawPointer
    private var capacity = 64 * 1024
    private var start = 0
    private var end = 0

    init(path: String, connectTimeout: Double = 10) throws {
        guard let addr = UnixSocketAddress(path: path) else { throw BenchError("socket path too long: \(path)") }
        let deadline = nowNanos() + UInt64(connectTimeout * 1e9)
        var fd: Int32 = -1
        while true {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw BenchError("socket(): \(String(cString: strerror(errno)))") }
            let r = addr.withSockaddr { connect(fd, $0, $1) }
            if r == 0 { break }
            let e = errno
            close(fd)
            // A full listen backlog: wait for the server to accept.
            guard e == EAGAIN || e == EINTR, nowNanos() < deadline else {
                throw BenchError("connect \(path): \(String(cString: strerror(e)))")
            }
            usleep(1000)
        }
        self.fd = fd
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = retryingOnInterrupt { send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                throw BenchError("send: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Whether a complete line is already buffered.
    var hasBufferedLine: Bool {
        end > start && memchr(buffer + start, 0x0A, end - start) != nil
    }

    /// The next line (without its newline), valid until the next call.
    func readLine() throws -> UnsafeRawBufferPointer {
        while true {
            if end > start, let nl = memchr(buffer + start, 0x0A, end - start) {
                let lineStart = start
                let len = buffer.distance(to: nl) - lineStart
                start = lineStart + len + 1
                return UnsafeRawBufferPointer(start: buffer + lineStart, count: len)
            }
            if start > 0 {
                if end > start { memmove(buffer, buffer + start, end - start) }
                end -= start
                start = 0
            }
            if end == capacity {
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 8)
                bigger.copyMemory(from: buffer, byteCount: end)
                buffer.deallocate()
                buffer = bigger
                capacity *= 2
            }
            let n = retryingOnInterrupt { read(fd, buffer + end, capacity - end) }
            if n < 0 {
                throw BenchError("read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw BenchError("the server closed the connection") }
            end += n
        }
    }

    /// One ping round trip; returns the reply's id.
    @discardableResult
    func ping(id: Int) throws -> Int {
        var out: [UInt8] = []
        appendPing(id: id, to: &out)
        try write(out)
        return try Self.pongID(try readLine())
    }

    // MARK: Wire helpers

    private static let pingHead = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let pingTail = Array(#","method":"ping"}"#.utf8) + [0x0A]

    func appendPing(id: Int, to out: inout [UInt8]) {
        out.append(contentsOf: Self.pingHead)
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = id
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(48 + v % 10)
                v /= 10
                n += 1
            } while v > 0
            for i in stride(from: n - 1, through: 0, by: -1) { out.append(d[i]) }
        }
        out.append(contentsOf: Self.pingTail)
    }

    private static let idKey = Array(#""id":"#.utf8)
    private static let pong = Array(#""pong""#.utf8)

    /// The id of a `"pong"` reply; throws on anything else (an error reply).
    static func pongID(_ line: UnsafeRawBufferPointer) throws -> Int {
        guard let at = find(idKey, in: line) else { throw BenchError("reply without id: \(String(decoding: line, as: UTF8.self))") }
        var i = at + idKey.count
        while i < line.count, line[i] == 0x20 { i += 1 }
        var id = 0
        var digits = 0
        while i < line.count, line[i] >= 48, line[i] <= 57 {
            id = id * 10 + Int(line[i] - 48)
            i += 1
            digits += 1
        }
        guard digits > 0, find(pong, in: line) != nil else {
            throw BenchError("not a pong reply: \(String(decoding: line, as: UTF8.self))")
        }
        return id
    }

    private static func find(_ needle: [UInt8], in hay: UnsafeRawBufferPointer) -> Int? {
        guard hay.count >= needle.count else { return nil }
        let first = needle[0]
        var i = 0
        while i <= hay.count - needle.count {
            if hay[i] == first {
                var j = 1
                while j < needle.count, hay[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

/// The outcome of a run of pings on one connection.
struct PingRun: Sendable {
    var histogram = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    var count = 0
    var elapsedNanos: UInt64 = 0
}

extension LineSocket {
    /// Sends `count` pings keeping up to `window` outstanding (1: strictly
    /// sequential), and records each round trip (send to reply) in ns. Ids
    /// run from `firstID`.
    func pingRun(count: Int, window: Int, firstID: Int = 1) throws -> PingRun {
        var run = PingRun()
        guard count > 0 else { return run }
        var sendTimes = [UInt64](repeating: 0, count: count)
        var out: [UInt8] = []
        out.reserveCapacity(64 * max(1, window))
        var sent = 0
        var received = 0
        let start = nowNanos()
        while sent < min(window, count) {
            appendPing(id: firstID + sent, to: &out)
            sent += 1
        }
        var unstamped = 0
        func flush() throws {
            let t = nowNanos()
            while unstamped < sent {
                sendTimes[unstamped] = t
                unstamped += 1
            }
            try write(out)
            out.removeAll(keepingCapacity: true)
        }
        try flush()
        while received < count {
            let id = try Self.pongID(try readLine())
            let t = nowNanos()
            let k = id - firstID
            guard k >= 0, k < count else { throw BenchError("reply to an unknown id \(id)") }
            _ = run.histogram.record(t - sendTimes[k])
            received += 1
            if sent < count {
                appendPing(id: firstID + sent, to: &out)
                sent += 1
            }
            if !out.isEmpty, window == 1 || !hasBufferedLine || out.count >= 16 * 1024 {
                try flush()
            }
        }
        run.count = count
        run.elapsedNanos = nowNanos() - start
        return run
    }
}
