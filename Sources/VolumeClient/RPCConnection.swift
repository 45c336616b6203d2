import Dispatch
import Foundation
import JSONValue
import Synchronization
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a call did not get a JSON-RPC answer.
public enum ConnectionError: Error, Sendable, CustomStringConvertible {
    case connectFailed(path: String, errno: Int32)
    case closed
    case invalidReply(String)
    case timedOut

    public var description: String {
        switch self {
        case .connectFailed(let path, let e): "cannot connect to \(path): \(String(cString: strerror(e)))"
        case .closed: "connection closed by the server"
        case .invalidReply(let why): "invalid reply from the server: \(why)"
        case .timedOut: "no reply within the call timeout"
        }
    }
}

/// One pipelined line-delimited JSON-RPC connection over a Unix socket.
///
/// Many calls may be outstanding; a reader thread matches replies to callers
/// by id. When the connection drops, every outstanding call fails with
/// `ConnectionError.closed` and the next call connects again.
public final class RPCConnection: Sendable {
    private struct Link {
        let fd: Int32
        var pending: [Int64: CheckedContinuation<RPCResponse, any Error>] = [:]
        var open = true
    }

    private struct State {
        var link: Link?
        var nextID: Int64 = 1
        var generation = 0
    }

    public let socketPath: String
    public let maxLineLength: Int
    private let state = Mutex(State())
    private let writeLock = Mutex(())

    public init(socketPath: String, maxLineLength: Int = 64 * 1024 * 1024) {
        self.socketPath = socketPath
        self.maxLineLength = maxLineLength
    }

    deinit {
        state.withLock { s in
            if let fd = s.link?.fd { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Sends a request and waits for its reply. `timeout` is in seconds.
    public func call(_ method: String, params: JSONValue? = nil, timeout: Double? = nil) async throws -> JSONValue {
        let response = try await send(method: method, params: params, timeout: timeout)
        switch response.outcome {
        case .success(let v): return v
        case .failure(let e): throw e
        }
    }

    /// Sends a notification; no reply comes.
    public func notify(_ method: String, params: JSONValue? = nil) throws {
        let (fd, _) = try connectedLink()
        try write(fd, RPCRequest(id: nil, method: method, params: params).json)
    }

    /// Closes the connection; outstanding calls fail with `.closed`.
    public func close() {
        let fd: Int32? = state.withLock { s in s.link?.fd }
        if let fd { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func send(method: String, params: JSONValue?, timeout: Double?) async throws -> RPCResponse {
        let (fd, id, generation) = try state.withLock { s throws -> (Int32, Int64, Int) in
            let fd = try ensureLink(&s)
            let id = s.nextID
            s.nextID += 1
            return (fd, id, s.generation)
        }
        let request = RPCRequest(id: .int(id), method: method, params: params).json
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<RPCResponse, any Error>) in
            let registered = state.withLock { s -> Bool in
                guard s.generation == generation, s.link?.open == true else { return false }
                s.link!.pending[id] = c
                return true
            }
            guard registered else {
                c.resume(throwing: ConnectionError.closed)
                return
            }
            do {
                try write(fd, request)
            } catch {
                if let c = takePending(id, generation: generation) { c.resume(throwing: error) }
                return
            }
            if let timeout {
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
                    if let c = self?.takePending(id, generation: generation) { c.resume(throwing: ConnectionError.timedOut) }
                }
            }
        }
    }

    private func takePending(_ id: Int64, generation: Int) -> CheckedContinuation<RPCResponse, any Error>? {
        state.withLock { s in
            guard s.generation == generation else { return nil }
            return s.link?.pending.removeValue(forKey: id)
        }
    }

    private func connectedLink() throws -> (Int32, Int) {
        try state.withLock { s throws -> (Int32, Int) in (try ensureLink(&s), s.generation) }
    }

    /// Connects if there is no open link. Called with the state locked.
    private func ensureLink(_ s: inout State) throws -> Int32 {
        if let link = s.link, link.open { return link.fd }
        let fd = try Self.connect(socketPath)
        s.generation += 1
        s.link = Link(fd: fd)
        let generation = s.generation
        let thread = Thread { [weak self] in self?.readLoop(fd: fd, generation: generation) }
        thread.start()
        return fd
    }

    private static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConnectionError.connectFailed(path: path, errno: errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw ConnectionError.connectFailed(path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r < 0 {
            let e = errno
            Glibc.close(fd)
            throw ConnectionError.connectFailed(path: path, errno: e)
        }
        return fd
    }

    private func write(_ fd: Int32, _ value: JSONValue) throws {
        var bytes = value.serialized()
        bytes.append(0x0A)
        try writeLock.withLock { _ throws in
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ConnectionError.closed
                }
                offset += n
            }
        }
    }

    private func readLoop(fd: Int32, generation: Int) {
        var framer = LineFramer(maxLineLength: maxLineLength)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        loop: while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            for event in framer.feed(buffer[0..<n]) {
                guard case .line(let line) = event else { break loop }
                deliver(line, generation: generation)
            }
        }
        let orphans: [CheckedContinuation<RPCResponse, any Error>] = state.withLock { s in
            guard s.generation == generation, var link = s.link else { return [] }
            link.open = false
            let waiting = Array(link.pending.values)
            s.link = nil
            return waiting
        }
        Glibc.close(fd)
        for c in orphans { c.resume(throwing: ConnectionError.closed) }
    }

    private func deliver(_ line: [UInt8], generation: Int) {
        guard let value = try? JSONValue.parse(line) else { return }
        // A batch reply is not produced by this client; single replies only.
        guard let response = RPCResponse(json: value) else { return }
        if let id = response.id.int64Value, let c = takePending(id, generation: generation) {
            c.resume(returning: response)
        } else if case .failure(let e) = response.outcome, response.id.isNull {
            // An error without an id (access denied, a parse error) concerns the whole connection.
            let all: [CheckedContinuation<RPCResponse, any Error>] = state.withLock { s in
                guard s.generation == generation, s.link != nil else { return [] }
                defer { s.link!.pending.removeAll() }
                return Array(s.link!.pending.values)
            }
            for c in all { c.resume(throwing: e) }
        }
    }
}
