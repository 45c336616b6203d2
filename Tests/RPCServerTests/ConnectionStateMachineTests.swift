import Synchronization
import Testing

@testable import RPCServer

/// A clock the test moves by hand.
private final class FakeClock: MonotonicClock {
    private let time = Atomic<UInt64>(1_000_000_000)
    func now() -> UInt64 { time.load(ordering: .relaxed) }
    func advance(_ seconds: Double) { time.add(UInt64(seconds * 1e9), ordering: .relaxed) }
}

/// The connection's state machine on its own: timeouts driven by a fake
/// clock, with no sockets and no sleeping.
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    private static func machine(idle: Double = 600, slowWriter: Double = 30, clock: FakeClock) -> ConnectionStateMachine {
        var limits = ServerLimits()
        limits.idleTimeout = idle
        limits.slowWriterTimeout = slowWriter
        limits.maxInFlightPerConnection = 2
        limits.maxUnsentReplyBytes = 100
        var m = ConnectionStateMachine(limits: limits, clock: clock)
        m.start()
        return m
    }

    @Test func idleConnectionClosesAtTheIdleTimeoutAndActivityPostponesIt() {
        let clock = FakeClock()
        var m = Self.machine(idle: 10, clock: clock)
        clock.advance(9.9)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: false)
            #expect(r == .none)
        }
        m.activity()
        clock.advance(9.9)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: false)
            #expect(r == .none)
        }
        clock.advance(0.1)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: false)
            #expect(r == .closeIdle)
        }
    }

    @Test func requestsInFlightKeepAConnectionFromIdling() {
        let clock = FakeClock()
        var m = Self.machine(idle: 10, clock: clock)
        clock.advance(3600)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: true)
            #expect(r == .none)
        }
    }

    @Test func zeroIdleTimeoutNeverCloses() {
        let clock = FakeClock()
        var m = Self.machine(idle: 0, clock: clock)
        clock.advance(1e6)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: false)
            #expect(r == .none)
        }
    }

    @Test func peerThatLeavesRepliesUnreadIsClosedAfterTheSlowWriterTimeout() {
        let clock = FakeClock()
        var m = Self.machine(slowWriter: 30, clock: clock)
        let since = clock.now()
        clock.advance(30)
        do {
            let r = m.tick(writeBlockedSince: since, busy: true)
            #expect(r == .none)
        }
        clock.advance(0.001)
        do {
            let r = m.tick(writeBlockedSince: since, busy: true)
            #expect(r == .closeSlowWriter)
        }
        // Set by a worker after the tick read the clock: not a slow writer.
        do {
            let r = m.tick(writeBlockedSince: clock.now() + 5_000_000_000, busy: true)
            #expect(r == .none)
        }
    }

    @Test func closingLingersOneSecondAfterOurShutdown() {
        let clock = FakeClock()
        var m = Self.machine(clock: clock)
        do {
            let r = m.beginClosing()
            #expect(r == .beginClosing)
        }
        do {
            let r = m.beginClosing()
            #expect(r == .none)
        }
        clock.advance(100)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: false)
            #expect(r == .none, "still writing: no linger yet")
        }
        m.shutDownOurSide()
        clock.advance(0.999)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: false)
            #expect(r == .none)
        }
        clock.advance(0.001)
        do {
            let r = m.tick(writeBlockedSince: nil, busy: false)
            #expect(r == .closeLingerExpired)
        }
        do {
            let r = m.close()
            #expect(r)
        }
        do {
            let r = m.close()
            #expect(!r)
        }
    }

    @Test func backPressureAndDrain() {
        let clock = FakeClock()
        var m = Self.machine(clock: clock)
        #expect(m.mayStart(inFlight: 1, outputBackedUp: false))
        #expect(!m.mayStart(inFlight: 2, outputBackedUp: false))
        #expect(!m.outputBackedUp(unsentReplyBytes: 99))
        #expect(m.outputBackedUp(unsentReplyBytes: 100))
        #expect(m.readAction(inFlight: 2, linesWaiting: false, outputBackedUp: false, peerClosedInput: false) == .pause)
        #expect(m.readAction(inFlight: 0, linesWaiting: false, outputBackedUp: true, peerClosedInput: false) == .pause)
        #expect(m.readAction(inFlight: 0, linesWaiting: false, outputBackedUp: false, peerClosedInput: false) == .resume)
        #expect(m.readAction(inFlight: 0, linesWaiting: false, outputBackedUp: false, peerClosedInput: true) == .none)
        #expect(!m.shouldClose(inFlight: 0, linesWaiting: false, peerClosedInput: false))
        #expect(m.shouldClose(inFlight: 0, linesWaiting: false, peerClosedInput: true))
        do {
            let r = m.drain()
            #expect(r)
        }
        do {
            let r = m.drain()
            #expect(!r)
        }
        #expect(!m.shouldClose(inFlight: 1, linesWaiting: false, peerClosedInput: false))
        #expect(m.shouldClose(inFlight: 0, linesWaiting: false, peerClosedInput: false))
        do {
            let r = m.beginClosing()
            #expect(r == .beginClosing)
        }
        #expect(!m.shouldClose(inFlight: 0, linesWaiting: false, peerClosedInput: true))
    }

    @Test func aConnectionNeverStartedClosesAtOnce() {
        var m = ConnectionStateMachine(limits: ServerLimits(), clock: FakeClock())
        do {
            let r = m.beginClosing()
            #expect(r == .closeNow)
        }
    }
}
