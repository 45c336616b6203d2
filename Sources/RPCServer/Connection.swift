import CEpoll
import Dispatch
import JSONValue
import Logging
import POSIXSupport
import Synchronization
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One accepted peer, served by an `EventLoop`.
///
/// Reading, framing and the state machine run on the loop thread only
/// (checked with `precondition(loop.inLoop)` where it matters). Replies may
/// come from any thread: calls answered at once (ping, errors) are gathered
/// while a read is handled and written with one `send`; calls that ran on a
/// worker thread are written by that thread. `output` guards the socket's
/// write side and the descriptor's life: it is closed under that lock, so a
/// late reply never writes to a reused descriptor number.
///
/// Its state and timeouts are a `ConnectionStateMachine`, which decides;
/// this class does the I/O. `closing` writes what is queued, shuts down our
/// side and reads until the peer closes too (at most 1 s), because closing an
/// AF_UNIX socket with unread input resets it and the peer would lose our last line.
final class Connection: EventHandler, @unchecked Sendable {  // see above for what each field belongs to

    let id: UInt64
    let fd: Int32
    var token: UInt64 { id }
    let peer: PeerCredentials?
    private let limits: ServerLimits
    private let dispatcher: RPCDispatcher
    private let logger: Logger
    private let loop: EventLoop
    private let onClose: @Sendable (Connection) -> Void

    // Loop thread only.
    private var machine: ConnectionStateMachine
    var state: ConnectionStateMachine.State { machine.state }
    private let clock: any MonotonicClock
    private var framer: LineFramer
    /// Lines read but not started: the in-flight limit was reached.
    private var pendingLines: [[UInt8]] = []
    private var pendingHead = 0
    private var inFlight = 0
    private var peerClosedInput = false
    private var readPaused = false
    private var watchingWrites = false
    /// What epoll watches for this socket; nil while it is out of the set.
    private var epollEvents: UInt32?
    /// Replies produced while a read is handled, sent together afterwards.
    private var batch: [UInt8] = []
    private var handling = false
    /// Reading stopped because unsent replies passed `maxUnsentReplyBytes`.
    private var outputBackedUp = false
    /// Bytes of the framer's buffer counted in `stats.bufferedLineBytes`.
    private var chargedLineBytes = 0

    private struct Output {
        var pending: [UInt8] = []
        var offset = 0
        /// When the peer stopped taking our bytes; nil while nothing waits.
        var blockedSince: UInt64?
        var fdClosed = false
        var failed = false
        var isEmpty: Bool { offset == pending.count }
    }
    private let output = Mutex(Output())

    init(
        id: UInt64, fd: Int32, peer: PeerCredentials?, limits: ServerLimits, dispatcher: RPCDispatcher,
        logger: Logger, loop: EventLoop, clock: any MonotonicClock = SystemClock(),
        onClose: @escaping @Sendable (Connection) -> Void
    ) {
        self.clock = clock
        machine = ConnectionStateMachine(limits: limits, clock: clock)
        self.id = id
        self.fd = fd
        self.peer = peer
        self.limits = limits
        self.dispatcher = dispatcher
        self.logger = logger
        self.loop = loop
        self.onClose = onClose
        self.framer = LineFramer(maxLineLength: limits.maxLineLength)
    }

    private static let readEvents = vd_epollin | vd_epollrdhup

    func start() {
        loop.execute { [self] in
            precondition(state == .created)
            machine.start()
            loop.register(self)
            updateInterest()
        }
    }

    /// Sends one error line and closes, as for a refused peer.
    func refuse(_ error: RPCError) {
        loop.execute { [self] in
            machine.start()
            loop.register(self)
            write(RPCDispatcher.encode(RPCResponse(id: .null, error: error)))
            beginClosing()
        }
    }

    /// Stops taking new requests once what the peer already sent is read,
    /// answers everything received, then closes.
    func drain() {
        loop.execute { [self] in
            guard machine.drain() else { return }
            // Take in what is already buffered in the socket; lines beyond
            // the in-flight limit wait in pendingLines.
            while state == .draining, !peerClosedInput, readOnce() {}
            pauseReading()
            closeIfDone()
        }
    }

    // MARK: Events (loop thread)

    func handle(events: UInt32) {
        let hangUp = events & (vd_epollhup | vd_epollerr) != 0
        if events & vd_epollout != 0 { flushFromLoop() }
        switch state {
        case .running:
            if events & (vd_epollin | vd_epollrdhup) != 0 || hangUp, !readPaused {
                machine.activity()
                // One read per event: epoll is level-triggered and reports the rest.
                _ = readOnce()
            }
        case .draining:
            if hangUp {
                peerClosedInput = true
                closeIfDone()
            }
        case .closing:
            if hangUp && machine.lingerDeadline == nil {
                finalClose()  // still writing, and the peer is gone: nothing more can reach it
            } else if hangUp || events & (vd_epollin | vd_epollrdhup) != 0 {
                discardInput()  // reads what is left, then closes at the end of the stream
            }
        case .created, .closed:
            break
        }
    }

    func tick() {
        let blockedSince = output.withLock { $0.blockedSince }
        switch machine.tick(writeBlockedSince: blockedSince, busy: inFlight > 0 || pendingHead < pendingLines.count) {
        case .closeSlowWriter:
            logger.notice("connection \(id): peer does not read its replies, closing")
            finalClose()
        case .closeIdle:
            logger.debug("connection \(id) idle, closing")
            beginClosing()
        case .closeLingerExpired:
            finalClose()
        case .none:
            break
        }
    }

    func pollRead() -> Bool {
        guard state == .running, !readPaused else { return false }
        guard readOnce() else { return false }
        machine.activity()
        return true
    }

    /// Reads one chunk and handles its lines. False when nothing more can be read now.
    private func readOnce() -> Bool {
        let buffer = loop.readBuffer
        let n = retryingOnInterrupt { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return false }
            finalClose()
            return false
        }
        if n == 0 {
            // The peer half-closed: answer what it sent, then close.
            peerClosedInput = true
            pauseReading()
            let rest = framer.finish()
            _ = chargeLineBuffer()  // finish() empties the buffer: a release, never refused
            if let rest { take([rest]) }
            closeIfDone()
            return false
        }
        let events = framer.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        if chargeLineBuffer() {
            take(events)
        } else {
            // Over the global budget: drop this partial line, answer the
            // complete ones before it, refuse, and close.
            framer = LineFramer(maxLineLength: limits.maxLineLength)
            _ = chargeLineBuffer()
            take(events)
            if state == .running || state == .draining {
                startPendingLines(ignoringLimit: true)
                logger.notice("connection \(id): partial lines of all peers exceed \(limits.lineBufferBudget) bytes, closing")
                write(
                    RPCDispatcher.encode(
                        RPCResponse(
                            id: .null,
                            error: RPCError(code: .limitExceeded, message: "server is buffering too many partial lines; try again later"))))
                beginClosing()
            }
        }
        return state == .running || state == .draining
    }

    /// Brings this connection's share of the global partial-line budget up
    /// to date; false when it grew and the total is over the budget while
    /// other connections hold bytes too (one line alone is always let
    /// through, up to `maxLineLength`).
    private func chargeLineBuffer() -> Bool {
        let now = framer.reservedByteCount
        let delta = now - chargedLineBytes
        if delta == 0 { return true }
        chargedLineBytes = now
        let total = dispatcher.stats.bufferedLineBytes.add(delta, ordering: .relaxed).newValue
        return delta < 0 || total <= limits.lineBufferBudget || total - now <= 0
    }

    /// Unsent reply bytes, those being gathered included.
    private var unsentReplyBytes: Int {
        batch.count + output.withLock { $0.pending.count - $0.offset }
    }

    private func take(_ events: [LineFramer.Event]) {
        for event in events {
            switch event {
            case .line(let line):
                pendingLines.append(line)
            case .tooLong:
                // Answer what came before the long line, refuse it, and close.
                startPendingLines(ignoringLimit: true)
                logger.notice("connection \(id): line longer than \(limits.maxLineLength) bytes, closing")
                write(
                    RPCDispatcher.encode(
                        RPCResponse(
                            id: .null, error: RPCError(code: .limitExceeded, message: "line exceeds \(limits.maxLineLength) bytes"))))
                beginClosing()
                return
            }
        }
        startPendingLines()
    }

    /// Starts waiting lines while the in-flight limit allows; pauses reading otherwise.
    private func startPendingLines(ignoringLimit: Bool = false) {
        handling = true
        // A peer that sends without reading would make us queue replies
        // without bound: stop starting its requests while too many wait.
        outputBackedUp = machine.outputBackedUp(unsentReplyBytes: unsentReplyBytes)
        while pendingHead < pendingLines.count,
            ignoringLimit || machine.mayStart(inFlight: inFlight, outputBackedUp: outputBackedUp)
        {
            let line = pendingLines[pendingHead]
            pendingHead += 1
            process(line: line)
            if batch.count >= limits.maxUnsentReplyBytes { outputBackedUp = machine.outputBackedUp(unsentReplyBytes: unsentReplyBytes) }
        }
        handling = false
        if pendingHead == pendingLines.count {
            pendingLines.removeAll(keepingCapacity: pendingLines.count <= 64)
            pendingHead = 0
        }
        if !batch.isEmpty {
            write(batch)
            batch.removeAll(keepingCapacity: batch.count <= 64 * 1024)
            loop.armBusyPoll(for: self)
        }
        if !outputBackedUp { outputBackedUp = machine.outputBackedUp(unsentReplyBytes: unsentReplyBytes) }
        switch machine.readAction(
            inFlight: inFlight, linesWaiting: pendingHead < pendingLines.count, outputBackedUp: outputBackedUp,
            peerClosedInput: peerClosedInput)
        {
        case .pause: pauseReading()
        case .resume: resumeReading()
        case .none: break
        }
    }

    private func process(line: [UInt8]) {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }  // blank keep-alive lines
        inFlight += 1
        let context = RequestContext(peer: peer, connectionID: id)
        dispatcher.handle(line: line, context: context) { [self] reply in
            if loop.inLoop && handling {
                // Answered at once: gathered with the others of this read.
                if let reply { batch += reply }
                inFlight -= 1
                return
            }
            if let reply { write(reply) }
            loop.execute { [self] in requestFinished() }
        }
    }

    private func requestFinished() {
        inFlight -= 1
        if state == .running || state == .draining { startPendingLines() }
        closeIfDone()
    }

    private func closeIfDone() {
        if machine.shouldClose(inFlight: inFlight, linesWaiting: pendingHead < pendingLines.count, peerClosedInput: peerClosedInput) {
            beginClosing()
        }
    }

    private func pauseReading() {
        guard !readPaused, state != .closed else { return }
        readPaused = true
        updateInterest()
    }

    private func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        updateInterest()
    }

    private func updateInterest() {
        guard state != .closed, state != .created else { return }
        var events: UInt32 = 0
        switch state {
        case .running, .draining: if !readPaused { events = Self.readEvents }
        case .closing: if machine.lingerDeadline != nil { events = Self.readEvents }
        case .created, .closed: break
        }
        if watchingWrites { events |= vd_epollout }
        guard events != (epollEvents ?? 0) else { return }
        loop.watch(self, events: events, was: epollEvents)
        epollEvents = events == 0 ? nil : events
    }

    // MARK: Writing (any thread)

    /// Queues bytes for the peer and sends what the socket takes now. A peer
    /// that takes nothing for the slow-writer timeout is disconnected (`tick`).
    private func write(_ bytes: [UInt8]) {
        let needsWatch = output.withLock { o -> Bool in
            guard !o.fdClosed, !o.failed else { return false }
            if o.isEmpty {
                o.pending = bytes
                o.offset = 0
            } else {
                o.pending += bytes
            }
            return Self.sendPending(fd, &o, clock)
        }
        if needsWatch {
            if loop.inLoop { watchWrites(true) } else { loop.execute { [self] in watchWrites(true) } }
        }
    }

    /// Sends from `o` until done or the socket is full; true when bytes wait.
    private static func sendPending(_ fd: Int32, _ o: inout Output, _ clock: any MonotonicClock) -> Bool {
        while !o.isEmpty {
            let n = retryingOnInterrupt {
                o.pending.withUnsafeBytes { b in
                    Glibc.send(fd, b.baseAddress! + o.offset, b.count - o.offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
            }
            if n > 0 {
                o.offset += n
                continue
            }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                if o.blockedSince == nil { o.blockedSince = clock.now() }
                return true
            }
            o.failed = true  // the peer is gone; the read side notices
            o.pending = []
            o.offset = 0
            return false
        }
        o.blockedSince = nil
        if o.pending.count > 64 * 1024 { o.pending = [] } else { o.pending.removeAll(keepingCapacity: true) }
        o.offset = 0
        return false
    }

    private func watchWrites(_ on: Bool) {
        guard watchingWrites != on, state != .closed else { return }
        watchingWrites = on
        updateInterest()
    }

    private func flushFromLoop() {
        let waiting = output.withLock { o in o.fdClosed ? false : Self.sendPending(fd, &o, clock) }
        if !waiting {
            watchWrites(false)
            if state == .closing, machine.lingerDeadline == nil { shutDownOurSide() }
        }
        // The peer took some replies: start what waits and read again.
        if outputBackedUp, state == .running || state == .draining,
            !machine.outputBackedUp(unsentReplyBytes: unsentReplyBytes)
        {
            startPendingLines()
            closeIfDone()
        }
    }

    // MARK: Closing (loop thread)

    /// Stops taking requests; once queued replies are out, shuts down our
    /// side and lingers (see the type's comment).
    private func beginClosing() {
        switch machine.beginClosing() {
        case .none: return
        case .closeNow:
            finalClose()
            return
        case .beginClosing: break
        }
        if output.withLock({ !$0.isEmpty && !$0.failed }) {
            watchWrites(true)  // flushFromLoop shuts our side down once written
            updateInterest()
        } else {
            shutDownOurSide()
        }
    }

    private func shutDownOurSide() {
        Glibc.shutdown(fd, Int32(SHUT_WR))
        machine.shutDownOurSide()
        updateInterest()
        discardInput()
    }

    private func discardInput() {
        guard machine.lingerDeadline != nil else { return }  // still writing
        var scratch = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = retryingOnInterrupt { scratch.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n > 0 { continue }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            break  // end of stream or error
        }
        finalClose()
    }

    private func finalClose() {
        let was = state
        guard machine.close() else { return }
        if epollEvents != nil { loop.watch(self, events: 0, was: epollEvents) }
        epollEvents = nil
        if was != .created { loop.deregister(self) }
        output.withLock { o in
            o.fdClosed = true
            o.pending = []
            o.offset = 0
            o.blockedSince = nil
            Glibc.close(fd)
        }
        pendingLines = []
        pendingHead = 0
        framer = LineFramer(maxLineLength: limits.maxLineLength)
        _ = chargeLineBuffer()
        onClose(self)
    }
}
