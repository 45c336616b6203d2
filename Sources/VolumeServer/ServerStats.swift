import Synchronization

/// Live counters for `server_info`, updated without locks.
public final class ServerStats: Sendable {
    let connections = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
    public let startedAt = ContinuousClock.now

    public init() {}

    public var connectionCount: Int { connections.load(ordering: .relaxed) }
    public var inFlightCount: Int { inFlight.load(ordering: .relaxed) }
    public var uptimeSeconds: Double {
        let d = ContinuousClock.now - startedAt
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
