import Dispatch
import Foundation
import JSONValue
import POSIXSupport
import Synchronization
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a call did not get a JSON-RPC answer.
public enum ConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The socket could not be reached: it does not exist (`ENOENT`), nobody
    /// listens on it (`ECONNREFUSED`), access was refused (`EACCES`), or the
    /// connect timeout passed (`ETIMEDOUT`).
    case connectFailed(path: String, errno: Errno)
    /// The connection dropped (or was closed) before the reply came. The call
    /// may or may not have run on the server.
    case closed
    /// The server sent something that is not the reply the call expects.
    case invalidReply(String)
    /// No reply within the call's timeout. The call may still run on the server.
    case timedOut

    public var description: String {
        switch self {
        case .connectFailed(let path, let e): "cannot connect to \(path): \(e.message)"
        case .closed: "connection closed by the server"
        case .invalidReply(let why): "invalid reply from the server: \(why)"
        case .timedOut: "no reply within the call timeout"
        }
    }
}

/// One pipelined line-delimited JSON-RPC connection over a Unix socket.
///
/// Many calls may be outstanding at once, from any number of tasks or threads;
/// a reader thread matches replies to callers by id, and writes go through a
/// serial queue, so no caller blocks a thread of the cooperative pool.
///
/// The connection is made lazily, by the first call. When it drops (the daemon
/// restarted, or ``close()`` was called), every outstanding call fails with
/// ``ConnectionError/closed``, and the next call connects again. A call that
/// is cancelled stops waiting with `CancellationError`; one that gets no reply
/// within its timeout fails with ``ConnectionError/timedOut``. Either way the
/// connection stays usable and a late reply is ignored.
public final class RPCConnection: Sendable {
    /// A socket descriptor, closed when the last holder lets go, so that no
    /// writer or reader can ever use a descriptor number reused by another
    /// connection. Shutting it down is how it is stopped.
    private final class Socket: Sendable {
        let fd: Int32
        init(_ fd: Int32) { self.fd = fd }
        func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        deinit { Glibc.close(fd) }
    }

    private struct Link {
        let socket: Socket
        let generation: Int
        let writer: DispatchQueue
    }

    private struct Pending {
        let generation: Int
        let continuation: CheckedContinuation<RPCResponse, any Error>
    }

    private struct State {
        /// The link new calls use; nil until connected, and after a drop.
        var link: Link?
        /// Calls waiting for replies, of the current link or of a retired one
        /// still draining its replies. Ids are never reused, across links too.
        var pending: [Int64: Pending] = [:]
        var nextID: Int64 = 1
        var generation = 0
        /// The connect under way, which concurrent calls wait for together.
        var connecting: Task<Link, any Error>?
    }

    private final class Weak: Sendable {
        nonisolated(unsafe) weak var value: RPCConnection?
        init(_ value: RPCConnection) { self.value = value }
    }

    /// Fires call timeouts. A queue of its own (not a global one) gets a
    /// thread even when the host's global queues are busy with blocking work,
    /// so timeouts stay on time.
    private static let timers = DispatchQueue(label: "VolumeClient.RPCConnection.timeouts")

    public let socketPath: String
    public let maxLineLength: Int
    /// Seconds to keep retrying while the server's listen backlog is full.
    /// A missing socket or a socket nobody listens on fails at once.
    public let connectTimeout: Double
    private let state = Mutex(State())

    public init(socketPath: String, maxLineLength: Int = 64 * 1024 * 1024, connectTimeout: Double = 10) {
        self.socketPath = socketPath
        self.maxLineLength = maxLineLength
        self.connectTimeout = connectTimeout
    }

    deinit {
        // The reader thread only holds a weak reference, so this runs; it
        // stops the reader, which releases the socket.
        state.withLock { s in s.link?.socket.shutdown() }
    }

    /// Sends a request and waits for its reply. `timeout` is in seconds; nil waits for ever.
    ///
    /// - Throws: ``RPCError`` when the server answers with an error;
    ///   ``ConnectionError`` when no answer comes; `CancellationError` when the
    ///   calling task is cancelled.
    public func call(_ method: String, params: JSONValue? = nil, timeout: Double? = nil) async throws -> JSONValue {
        let response = try await send(method: method, params: params, timeout: timeout)
        switch response.outcome {
        case .success(let v): return v
        case .failure(let e): throw e
        }
    }

    /// Sends a notification; no reply comes, and failures after the connect are not reported.
    public func notify(_ method: String, params: JSONValue? = nil) async throws {
        let link = try await currentLink()
        let bytes = Self.line(RPCRequest(id: nil, method: method, params: params).json)
        link.writer.async { [weak self] in
            if !Self.write(link.socket.fd, bytes) { self?.retire(link) }
        }
    }

    /// Closes the connection; outstanding calls fail with ``ConnectionError/closed``.
    /// The next call connects again.
    public func close() {
        let link: Link? = state.withLock { s in
            defer { s.link = nil }
            return s.link
        }
        link?.socket.shutdown()
    }

    /// Whether a connection is currently established (for diagnostics and tests).
    public var isConnected: Bool { state.withLock { $0.link != nil } }

    // MARK: Calls

    private func send(method: String, params: JSONValue?, timeout: Double?) async throws -> RPCResponse {
        try Task.checkCancellation()
        let link = try await currentLink()
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        let bytes = Self.line(RPCRequest(id: .int(id), method: method, params: params).json)
        let generation = link.generation
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<RPCResponse, any Error>) in
                let registered = state.withLock { s -> Bool in
                    // A link retired between connecting and now: nothing was sent.
                    guard s.link?.generation == generation else { return false }
                    s.pending[id] = Pending(generation: generation, continuation: c)
                    return true
                }
                guard registered else {
                    c.resume(throwing: ConnectionError.closed)
                    return
                }
                // Cancellation that came before registration found nothing to take.
                if Task.isCancelled, let c = takePending(id) {
                    c.resume(throwing: CancellationError())
                    return
                }
                link.writer.async { [weak self] in
                    guard !Self.write(link.socket.fd, bytes) else { return }
                    guard let self else { return }
                    if let c = self.takePending(id) { c.resume(throwing: ConnectionError.closed) }
                    self.retire(link)
                }
                if let timeout {
                    Self.timers.asyncAfter(deadline: .now() + max(0, timeout)) { [weak self] in
                        if let c = self?.takePending(id) { c.resume(throwing: ConnectionError.timedOut) }
                    }
                }
            }
        } onCancel: {
            if let c = takePending(id) { c.resume(throwing: CancellationError()) }
        }
    }

    private func takePending(_ id: Int64) -> CheckedContinuation<RPCResponse, any Error>? {
        state.withLock { s in s.pending.removeValue(forKey: id)?.continuation }
    }

    /// Removes and returns every pending call of a link.
    private func takeAll(generation: Int) -> [CheckedContinuation<RPCResponse, any Error>] {
        state.withLock { s in
            let ids = s.pending.filter { $0.value.generation == generation }.map(\.key)
            return ids.compactMap { s.pending.removeValue(forKey: $0)?.continuation }
        }
    }

    /// Stops using a link for new calls and shuts it down; its reader fails
    /// whatever is still pending on it.
    private func retire(_ link: Link) {
        state.withLock { s in
            if s.link?.generation == link.generation { s.link = nil }
        }
        link.socket.shutdown()
    }

    // MARK: Connecting

    /// The open link, connecting first when there is none. A link whose peer
    /// has hung up (a daemon that stopped, whose end of stream the reader has
    /// not processed yet) is retired rather than used. Calls that need a
    /// connection at the same time share one connect.
    private func currentLink() async throws -> Link {
        let attempt = state.withLock { s -> Task<Link, any Error>? in
            if let link = s.link {
                if !Self.peerHungUp(link.socket.fd) { return nil }
                // Stop sending on it; its reader still drains replies already on their way.
                s.link = nil
            }
            if let pending = s.connecting { return pending }
            let t = Task { try await self.connectLink() }
            s.connecting = t
            return t
        }
        if let attempt { return try await attempt.value }
        // The fast path: an open link (read again, as the lock was released).
        if let link = state.withLock({ $0.link }) { return link }
        return try await currentLink()
    }

    /// Connects, installs the new link and starts its reader.
    private func connectLink() async throws -> Link {
        let socket: Socket
        do {
            socket = Socket(try await Self.connect(socketPath, timeout: connectTimeout))
        } catch {
            state.withLock { $0.connecting = nil }
            throw error
        }
        let link = state.withLock { s -> Link in
            s.generation += 1
            let link = Link(
                socket: socket, generation: s.generation,
                writer: DispatchQueue(label: "VolumeClient.RPCConnection.writer.\(s.generation)"))
            s.link = link
            s.connecting = nil
            return link
        }
        let owner = Weak(self)
        let maxLine = maxLineLength
        let thread = Thread { Self.readLoop(link: link, owner: owner, maxLineLength: maxLine) }
        thread.name = "VolumeClient reader"
        thread.start()
        return link
    }

    /// Linux's POLLRDHUP (peer closed its writing side), which Glibc's module
    /// does not export without _GNU_SOURCE.
    private static let pollReadHangUp: Int16 = 0x2000

    private static func peerHungUp(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: pollReadHangUp, revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        return p.revents & (pollReadHangUp | Int16(POLLHUP | POLLERR | POLLNVAL)) != 0
    }

    /// Connects a Unix stream socket. The connect itself is non-blocking: a
    /// full listen backlog (`EAGAIN`) is retried until `timeout` seconds pass;
    /// any other failure is reported at once.
    private static func connect(_ path: String, timeout: Double) async throws -> Int32 {
        guard !path.isEmpty, let addr = UnixSocketAddress(path: path) else {
            throw ConnectionError.connectFailed(path: path, errno: path.isEmpty ? .ENOENT : .ENAMETOOLONG)
        }
        let deadline = ContinuousClock.now + .milliseconds(Int64(max(0, timeout) * 1000))
        while true {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw ConnectionError.connectFailed(path: path, errno: .current) }
            let r = retryingOnInterrupt { addr.withSockaddr { Glibc.connect(fd, $0, $1) } }
            var e: Int32 = r < 0 ? errno : 0
            if e == EINPROGRESS {
                // Not what Linux does for Unix sockets, but handled for completeness.
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ms = Int32(clamping: max(0, (deadline - .now).components.seconds * 1000 + 1))
                if poll(&p, 1, ms) > 0 {
                    var soError: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                    e = soError
                } else {
                    e = ETIMEDOUT
                }
            }
            if e == 0 {
                let flags = fcntl(fd, F_GETFL)
                _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
                return fd
            }
            Glibc.close(fd)
            guard e == EAGAIN || e == EWOULDBLOCK else { throw ConnectionError.connectFailed(path: path, errno: Errno(rawValue: e)) }
            if ContinuousClock.now >= deadline { throw ConnectionError.connectFailed(path: path, errno: .ETIMEDOUT) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: Wire

    private static func line(_ value: JSONValue) -> [UInt8] {
        var bytes = value.serialized()
        bytes.append(0x0A)
        return bytes
    }

    /// Writes all of `bytes`; false when the connection is broken.
    private static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = retryingOnInterrupt {
                bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            }
            if n < 0 { return false }
            offset += n
        }
        return true
    }

    private static func readLoop(link: Link, owner: Weak, maxLineLength: Int) {
        var framer = LineFramer(maxLineLength: maxLineLength)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var failure: any Error = ConnectionError.closed
        loop: while true {
            let n = retryingOnInterrupt { buffer.withUnsafeMutableBytes { Glibc.read(link.socket.fd, $0.baseAddress, $0.count) } }
            if n <= 0 { break }
            for event in framer.feed(buffer[0..<n]) {
                guard let conn = owner.value else { break loop }
                guard case .line(let line) = event else {
                    failure = ConnectionError.invalidReply("a reply line is longer than \(maxLineLength) bytes")
                    break loop
                }
                if let error = conn.deliver(line, generation: link.generation) {
                    failure = error
                    break loop
                }
            }
        }
        link.socket.shutdown()
        guard let conn = owner.value else { return }
        conn.state.withLock { s in
            if s.link?.generation == link.generation { s.link = nil }
        }
        for c in conn.takeAll(generation: link.generation) { c.resume(throwing: failure) }
    }

    /// Hands a reply to its caller. Returns an error when the line shows the
    /// connection cannot be trusted any more (it is not a JSON-RPC reply).
    private func deliver(_ line: [UInt8], generation: Int) -> (any Error)? {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        guard let value = try? JSONValue.parse(line) else {
            return ConnectionError.invalidReply("a reply line is not JSON")
        }
        // A batch reply is not produced by this client; single replies only.
        guard let response = RPCResponse(json: value) else {
            return ConnectionError.invalidReply("a reply line is not a JSON-RPC 2.0 response")
        }
        if let id = response.id.int64Value {
            // Unknown ids are late replies of calls that timed out or were cancelled.
            if let c = takePending(id) { c.resume(returning: response) }
        } else if case .failure(let e) = response.outcome, response.id.isNull {
            // An error without an id (access denied, limit exceeded, a parse
            // error) concerns the whole connection.
            for c in takeAll(generation: generation) { c.resume(throwing: e) }
        }
        return nil
    }
}
