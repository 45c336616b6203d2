import Dispatch

/// Monotonic time in nanoseconds; injected so that timeouts can be tested
/// without sleeping.
package protocol MonotonicClock: Sendable {
    func now() -> UInt64
}

/// `DispatchTime`'s uptime clock.
package struct SystemClock: MonotonicClock {
    package init() {}
    package func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}

/// A connection's state and timeouts, without sockets: it takes events and
/// returns what the connection must do (the `Connection` executes it).
///
/// States go `created → running → draining → closing → closed`. `closing`
/// writes what is queued, then shuts down our side and lingers (at most
/// `lingerTime`) reading until the peer closes too.
package struct ConnectionStateMachine {
    package enum State: Sendable { case created, running, draining, closing, closed }

    /// What a tick asks for.
    package enum TickAction: Equatable, Sendable {
        case none
        /// The peer left our replies unread for the slow-writer timeout: close now.
        case closeSlowWriter
        /// No request for the idle timeout: close gracefully.
        case closeIdle
        /// The linger after our shutdown ran out: close now.
        case closeLingerExpired
    }

    /// What reading should do after requests were started or finished.
    package enum ReadAction: Equatable, Sendable { case pause, resume, none }

    package private(set) var state = State.created
    private let clock: any MonotonicClock
    private let idleTimeout: UInt64
    private let slowWriterTimeout: UInt64
    private let lingerTime: UInt64
    private let maxInFlight: Int
    private let maxUnsentReplyBytes: Int
    private var lastActivity: UInt64
    /// Set once our side is shut down; the connection then reads to the end.
    package private(set) var lingerDeadline: UInt64?

    package init(limits: ServerLimits, clock: any MonotonicClock = SystemClock(), lingerSeconds: Double = 1) {
        self.clock = clock
        idleTimeout = UInt64(max(0, limits.idleTimeout) * 1e9)
        slowWriterTimeout = UInt64(max(0, limits.slowWriterTimeout) * 1e9)
        lingerTime = UInt64(lingerSeconds * 1e9)
        maxInFlight = limits.maxInFlightPerConnection
        maxUnsentReplyBytes = limits.maxUnsentReplyBytes
        lastActivity = clock.now()
    }

    package var now: UInt64 { clock.now() }

    package mutating func start() {
        state = .running
        lastActivity = clock.now()
    }

    /// The peer sent something.
    package mutating func activity() { lastActivity = clock.now() }

    /// False when not running (then there is nothing to drain).
    package mutating func drain() -> Bool {
        guard state == .running else { return false }
        state = .draining
        return true
    }

    /// Whether the connection may start closing; `.created` closes at once.
    package enum CloseAction: Equatable, Sendable { case none, closeNow, beginClosing }

    package mutating func beginClosing() -> CloseAction {
        switch state {
        case .closing, .closed: return .none
        case .created: return .closeNow
        case .running, .draining:
            state = .closing
            return .beginClosing
        }
    }

    /// Our side is shut down: linger for the peer's end of stream.
    package mutating func shutDownOurSide() { lingerDeadline = clock.now() + lingerTime }

    /// Returns false when already closed.
    package mutating func close() -> Bool {
        guard state != .closed else { return false }
        state = .closed
        return true
    }

    /// Nothing is left to answer and no more will be read: time to close.
    package func shouldClose(inFlight: Int, linesWaiting: Bool, peerClosedInput: Bool) -> Bool {
        (state == .draining || peerClosedInput) && state != .closing && state != .closed && inFlight == 0 && !linesWaiting
    }

    /// True while the peer's unsent replies are over the bound (back-pressure).
    package func outputBackedUp(unsentReplyBytes: Int) -> Bool { unsentReplyBytes >= maxUnsentReplyBytes }

    /// Whether another waiting line may start now.
    package func mayStart(inFlight: Int, outputBackedUp: Bool) -> Bool { inFlight < maxInFlight && !outputBackedUp }

    /// Reading pauses while lines wait, the in-flight limit is reached or
    /// replies back up; it resumes otherwise, while running and the peer's input is open.
    package func readAction(inFlight: Int, linesWaiting: Bool, outputBackedUp: Bool, peerClosedInput: Bool) -> ReadAction {
        if linesWaiting || inFlight >= maxInFlight || outputBackedUp { return .pause }
        if state == .running, !peerClosedInput { return .resume }
        return .none
    }

    /// The timer: `writeBlockedSince` is when the peer stopped taking our
    /// bytes (nil while nothing waits); `busy` is true while requests are in
    /// flight or waiting, which keeps an idle timeout from firing.
    package mutating func tick(writeBlockedSince: UInt64?, busy: Bool) -> TickAction {
        let now = clock.now()
        // A worker may set `writeBlockedSince` after `now` was read: compare, never subtract blindly.
        if let since = writeBlockedSince, now > since, now - since > slowWriterTimeout {
            return .closeSlowWriter
        }
        switch state {
        case .running:
            if idleTimeout > 0, !busy, now >= lastActivity, now - lastActivity >= idleTimeout { return .closeIdle }
        case .closing:
            if let d = lingerDeadline, now >= d { return .closeLingerExpired }
        default:
            break
        }
        return .none
    }
}
