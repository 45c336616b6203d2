import Foundation
import JSONValue
import POSIXSupport

#if canImport(Glibc)
import Glibc
#endif

/// A scripted line-delimited server on a Unix socket, for testing the client
/// without a daemon: every request line is handed to `handler`, whose answer
/// says what to send back.
final class FakeServer: @unchecked Sendable {
    enum Action: Sendable {
        /// Send this line (a newline is added).
        case reply(String)
        /// Send this line after a delay, without holding up other requests.
        case delayed(Double, String)
        /// Send nothing.
        case ignore
        /// Close the connection.
        case close
    }

    let path: String
    private let dir: String
    private let listenFD: Int32
    private let lock = NSLock()
    private var _requests: [JSONValue] = []
    private var _connections = 0
    private var clients: [Int32] = []
    private var stopped = false
    /// Set, under `lock`, when the accept thread closed the listener: from then
    /// on its number may belong to someone else and must not be shut down.
    private var listenerClosed = false
    private let handler: @Sendable (JSONValue) -> Action
    /// Its own queue, so delayed replies are not held up by busy global queues.
    private let delays = DispatchQueue(label: "FakeServer.delays", attributes: .concurrent)

    /// Requests received, in arrival order.
    var requests: [JSONValue] { lock.withLock { _requests } }
    /// Connections accepted so far.
    var connections: Int { lock.withLock { _connections } }

    init(handler: @escaping @Sendable (JSONValue) -> Action) throws {
        self.handler = handler
        dir = NSTemporaryDirectory() + "fake-volumed-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/fake.sock"
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let r = UnixSocketAddress(path: path)!.withSockaddr { bind(listenFD, $0, $1) }
        guard r == 0, listen(listenFD, 64) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    /// Replies `{"result": result}` to every request, echoing its id.
    static func answering(_ result: @escaping @Sendable (JSONValue) -> JSONValue) throws -> FakeServer {
        try FakeServer { req in .reply(reply(to: req, result: result(req))) }
    }

    static func reply(to request: JSONValue, result: JSONValue) -> String {
        JSONValue.object(["jsonrpc": "2.0", "id": request["id"] ?? .null, "result": result]).description
    }

    struct NoSuchRequest: Error {}

    /// Waits until a request for `method` has arrived.
    func waitForRequest(_ method: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !requests.contains(where: { $0["method"]?.stringValue == method }) {
            if ContinuousClock.now > deadline { throw NoSuchRequest() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Closes every connection (the listener stays).
    func dropConnections() {
        lock.withLock {
            for fd in clients { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Stops listening and drops every connection; idempotent.
    func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            // The accept thread closes the listener when accept fails.
            if !stopped && !listenerClosed { shutdown(listenFD, Int32(SHUT_RDWR)) }
            return !stopped
        }
        guard first else { return }
        dropConnections()
        unlink(path)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func closeListener() {
        lock.withLock {
            listenerClosed = true
            close(listenFD)
        }
    }

    private func acceptLoop() {
        while true {
            let fd = retryingOnInterrupt { accept(listenFD, nil, nil) }
            if fd < 0 {
                closeListener()
                return
            }
            let ok = lock.withLock { () -> Bool in
                if stopped { return false }
                _connections += 1
                clients.append(fd)
                return true
            }
            if !ok {
                close(fd)
                closeListener()
                return
            }
            let t = Thread { [self] in serve(fd) }
            t.start()
        }
    }

    private static func send(_ fd: Int32, _ line: String) {
        let bytes = Array((line + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// A connection's descriptor, written under a lock and closed once.
    private final class Conn: @unchecked Sendable {
        let fd: Int32
        let lock = NSLock()
        var closed = false
        init(_ fd: Int32) { self.fd = fd }
    }

    private func serve(_ fd: Int32) {
        let conn = Conn(fd)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        defer {
            lock.withLock {
                clients.removeAll { $0 == fd }
                conn.lock.withLock {
                    conn.closed = true
                    close(fd)
                }
            }
        }
        while true {
            let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if n <= 0 { return }
            buffer += chunk[0..<n]
            while let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                guard let request = try? JSONValue.parse(line) else { continue }
                lock.withLock { _requests.append(request) }
                switch handler(request) {
                case .reply(let text):
                    conn.lock.withLock { Self.send(fd, text) }
                case .delayed(let seconds, let text):
                    delays.asyncAfter(deadline: .now() + seconds) {
                        conn.lock.withLock { if !conn.closed { Self.send(conn.fd, text) } }
                    }
                case .ignore:
                    break
                case .close:
                    return
                }
            }
        }
    }
}
