import Dispatch
import Synchronization

/// Live counters for `server_info`, updated without locks.
package final class ServerStats: Sendable {
    let connections = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
    /// Bytes every connection holds for lines not yet complete (buffer
    /// capacity), checked against `ServerLimits.lineBufferBudget`.
    let bufferedLineBytes = Atomic<Int>(0)
    package let startedAt = ContinuousClock.now

    package init() {}

    package var connectionCount: Int { connections.load(ordering: .relaxed) }
    package var inFlightCount: Int { inFlight.load(ordering: .relaxed) }
    package var bufferedLineByteCount: Int { bufferedLineBytes.load(ordering: .relaxed) }
    package var uptimeSeconds: Double {
        let d = ContinuousClock.now - startedAt
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Lets a repeated log line through at most once per interval, so a
/// condition that recurs thousands of times a second (descriptor exhaustion,
/// a flood of refused peers) does not flood the journal.
struct LogRateLimiter: Sendable {
    let intervalNanoseconds: UInt64
    private var lastAt: UInt64?
    private var suppressed = 0

    init(intervalSeconds: Double) { intervalNanoseconds = UInt64(intervalSeconds * 1e9) }

    /// nil when the line is to be dropped; else how many were dropped since the last one let through.
    mutating func admit(now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int? {
        if let last = lastAt, now >= last, now - last < intervalNanoseconds {
            suppressed += 1
            return nil
        }
        lastAt = now
        defer { suppressed = 0 }
        return suppressed
    }
}
