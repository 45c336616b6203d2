import Dispatch
import JSONValue
import Logging
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One accepted peer.
///
/// `queue` owns all mutable state (checked with `dispatchPrecondition`);
/// replies are written on `writeQueue`, so a slow reader never stalls request
/// intake on other connections. States go `created → running → draining → closed`.
final class Connection: @unchecked Sendable {
    enum State { case created, running, draining, closed }

    let id: UInt64
    let fd: Int32
    let peer: PeerCredentials?
    private let limits: ServerLimits
    private let dispatcher: RPCDispatcher
    private let logger: Logger
    private let queue: DispatchQueue
    private let writeQueue: DispatchQueue
    private var readSource: DispatchSourceRead?
    private var readSuspended = false
    private var framer: LineFramer
    /// Complete lines read but not yet started, because the in-flight limit
    /// was reached. Reading pauses meanwhile, so this holds at most one read.
    private var pendingLines: [[UInt8]] = []
    private var inFlight = 0
    private var peerClosedInput = false
    private(set) var state = State.created
    private let onClose: @Sendable (Connection) -> Void
    /// One timer per connection, re-armed from `lastActivity` when it fires,
    /// so reads do not create timers.
    private var idleTimer: DispatchSourceTimer?
    private var lastActivity = DispatchTime.now()

    init(
        id: UInt64, fd: Int32, peer: PeerCredentials?, limits: ServerLimits,
        dispatcher: RPCDispatcher, logger: Logger, onClose: @escaping @Sendable (Connection) -> Void
    ) {
        self.id = id
        self.fd = fd
        self.peer = peer
        self.limits = limits
        self.dispatcher = dispatcher
        self.logger = logger
        self.onClose = onClose
        self.framer = LineFramer(maxLineLength: limits.maxLineLength)
        queue = DispatchQueue(label: "volumed.conn.\(id)")
        writeQueue = DispatchQueue(label: "volumed.conn.\(id).write")
    }

    static let readSize = 32 * 1024

    func start() {
        queue.async { [self] in
            precondition(state == .created)
            state = .running
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            source.setEventHandler { [self] in readAvailable() }
            source.setCancelHandler { [self] in closeSocketAfterWrites() }
            readSource = source
            source.resume()
            armIdleTimer()
        }
    }

    /// Sends one error line and closes, as for a refused peer.
    func refuse(_ error: RPCError) {
        queue.async { [self] in
            state = .running
            send(RPCDispatcher.encode(RPCResponse(id: .null, error: error).json))
            close()
        }
    }

    /// Stops reading new data once what is already buffered in the socket is
    /// read, answers everything received, then closes.
    func drain() {
        queue.async { [self] in
            guard state == .running else { return }
            state = .draining
            idleTimer?.cancel()
            // Take in what the peer already sent; the socket is non-blocking.
            // Lines beyond the in-flight limit wait in pendingLines and start
            // as earlier ones finish.
            while state == .draining, readOnce() {}
            closeIfDrained()
        }
    }

    private func armIdleTimer() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard limits.idleTimeout > 0 else { return }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: lastActivity + limits.idleTimeout)
        t.setEventHandler { [self] in
            let idleSince = lastActivity + limits.idleTimeout
            if inFlight == 0, state == .running, DispatchTime.now() >= idleSince {
                logger.debug("connection \(id) idle, closing")
                close()
            } else {
                t.schedule(deadline: max(idleSince, .now() + 0.05))
            }
        }
        idleTimer = t
        t.resume()
    }

    /// Reads until the socket would block, the in-flight limit pauses
    /// reading, or the stream ends. Reading only once per event is not enough:
    /// libdispatch may not signal again for data, or an end of stream, that
    /// was already there when it fired.
    private func readAvailable() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard state == .running else { return }
        lastActivity = .now()
        while state == .running, !readSuspended, readOnce() {}
    }

    /// Reads one chunk and handles its lines. Returns false when nothing more can be read now.
    private func readOnce() -> Bool {
        dispatchPrecondition(condition: .onQueue(queue))
        var n = 0
        let buffer = [UInt8](unsafeUninitializedCapacity: Self.readSize) { b, count in
            n = Glibc.read(fd, b.baseAddress, b.count)
            count = max(n, 0)
        }
        if n < 0 {
            if errno == EINTR { return true }
            if errno == EAGAIN || errno == EWOULDBLOCK { return false }
            close()
            return false
        }
        if n == 0 {
            // The peer half-closed: answer what it sent, then close.
            peerClosedInput = true
            suspendReading()
            if let rest = framer.finish() { take([rest]) }
            closeIfDrained()
            return false
        }
        take(framer.feed(buffer))
        return state != .closed
    }

    private func take(_ events: [LineFramer.Event]) {
        dispatchPrecondition(condition: .onQueue(queue))
        for event in events {
            switch event {
            case .line(let line):
                pendingLines.append(line)
            case .tooLong:
                // Answer what came before the long line, refuse it, and close.
                startPendingLines(ignoringLimit: true)
                logger.notice("connection \(id): line longer than \(limits.maxLineLength) bytes, closing")
                send(RPCDispatcher.encode(RPCResponse(
                    id: .null,
                    error: RPCError(code: .limitExceeded, message: "line exceeds \(limits.maxLineLength) bytes")).json))
                close()
                return
            }
        }
        startPendingLines()
    }

    /// Starts waiting lines while the in-flight limit allows; pauses reading otherwise.
    private func startPendingLines(ignoringLimit: Bool = false) {
        dispatchPrecondition(condition: .onQueue(queue))
        var started = 0
        while started < pendingLines.count, ignoringLimit || inFlight < limits.maxInFlightPerConnection {
            process(line: pendingLines[started])
            started += 1
        }
        pendingLines.removeFirst(started)
        if !pendingLines.isEmpty || inFlight >= limits.maxInFlightPerConnection { suspendReading() }
    }

    private func process(line: [UInt8]) {
        dispatchPrecondition(condition: .onQueue(queue))
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }  // blank keep-alive lines
        inFlight += 1
        let context = RequestContext(peer: peer, connectionID: id)
        dispatcher.handle(line: line, context: context) { [self] reply in
            if let reply { send(reply) }
            queue.async { [self] in requestFinished() }
        }
    }

    private func requestFinished() {
        dispatchPrecondition(condition: .onQueue(queue))
        inFlight -= 1
        if state != .closed { startPendingLines() }
        if state == .running, !peerClosedInput, pendingLines.isEmpty, inFlight < limits.maxInFlightPerConnection {
            resumeReading()
        }
        closeIfDrained()
    }

    private func closeIfDrained() {
        dispatchPrecondition(condition: .onQueue(queue))
        if state == .draining || peerClosedInput, inFlight == 0, pendingLines.isEmpty { close() }
    }

    private func suspendReading() {
        dispatchPrecondition(condition: .onQueue(queue))
        if !readSuspended, let s = readSource {
            s.suspend()
            readSuspended = true
        }
    }

    private func resumeReading() {
        dispatchPrecondition(condition: .onQueue(queue))
        if readSuspended, let s = readSource {
            readSuspended = false
            s.resume()
        }
    }

    /// Queues bytes for the peer. A peer that does not read within the
    /// slow-writer timeout is disconnected.
    private func send(_ bytes: [UInt8]) {
        writeQueue.async { [self] in
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    offset += n
                    continue
                }
                if n < 0, errno == EINTR { continue }
                if n < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    let ms = Int32(limits.slowWriterTimeout * 1000)
                    if poll(&p, 1, ms) > 0 { continue }
                    logger.notice("connection \(id): peer does not read its replies, closing")
                }
                queue.async { [self] in close() }
                return
            }
        }
    }

    func close() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard state != .closed else { return }
        state = .closed
        idleTimer?.cancel()
        if let s = readSource {
            resumeReading()  // a suspended source must be resumed before it can be cancelled
            s.cancel()
        } else {
            closeSocketAfterWrites()
        }
    }

    /// Closes the socket once queued replies are written (or failed), with a
    /// short linger: after our end is shut down, input the peer is still
    /// sending is read and discarded until it closes too (or 1 s passes).
    /// Closing an AF_UNIX stream with unread input resets it, and the peer
    /// would lose the reply we just wrote (an error line, say).
    private func closeSocketAfterWrites() {
        writeQueue.async { [self] in
            shutdown(fd, Int32(SHUT_WR))
            let deadline = DispatchTime.now() + 1
            var scratch = [UInt8](repeating: 0, count: 16 * 1024)
            while DispatchTime.now() < deadline {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let left = Int32((deadline.uptimeNanoseconds &- DispatchTime.now().uptimeNanoseconds) / 1_000_000)
                if poll(&p, 1, max(left, 1)) <= 0 { break }
                let n = scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { break }
            }
            Glibc.close(fd)
            onClose(self)
        }
    }
}
