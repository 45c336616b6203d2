import Dispatch
import Synchronization
import WorkerThreads

/// Runs work that declares keys (`auth:<id>`, `volume:<group>/<vol>`, ...)
/// such that two calls sharing a key never overlap and run in arrival order,
/// while calls with disjoint keys run in parallel.
///
/// A call takes all its keys at once: it is appended to the FIFO of each of
/// its keys in one critical section, and runs when it heads every one of
/// them. Because enqueueing is atomic, the FIFOs agree with the global arrival
/// order, so the oldest waiting call always heads all of its FIFOs and
/// nothing can deadlock, whatever keys calls combine. No global lock is held
/// while work runs.
///
/// Each call names the pool it runs on, so calls on different back-ends
/// share the keys' order but not their threads.
package final class KeyedSerializer: Sendable {
    private struct Ticket {
        let keys: [String]
        let pool: WorkerPool
        let work: @Sendable () -> Void
        var running = false
    }

    private struct State {
        var fifos: [String: [UInt64]] = [:]
        var tickets: [UInt64: Ticket] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// The order keys are listed in: auth before group before volume, as the seed takes its locks.
    package static func ordered(_ keys: [String]) -> [String] {
        func rank(_ k: String) -> Int {
            for (i, p) in ["auth:", "group:", "volume:", "volume_id:", "pool:"].enumerated() where k.hasPrefix(p) { return i }
            return 9
        }
        return Array(Set(keys)).sorted { (rank($0), $0) < (rank($1), $1) }
    }

    /// Runs `work` on `pool` once all `keys` are free.
    package func submit(keys: [String], pool: WorkerPool, _ work: @escaping @Sendable () -> Void) {
        if keys.isEmpty {
            pool.submit(work)
            return
        }
        let keys = Self.ordered(keys)
        let runnable: Bool = state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            for k in keys { s.fifos[k, default: []].append(id) }
            var ticket = Ticket(keys: keys, pool: pool, work: work)
            let heads = keys.allSatisfy { s.fifos[$0]!.first == id }
            ticket.running = heads
            s.tickets[id] = ticket
            return heads
        }
        if runnable { start(work: work, keys: keys, pool: pool) }
    }

    /// The number of calls waiting for or holding keys.
    package var pendingCount: Int { state.withLock { $0.tickets.count } }

    private func start(work: @escaping @Sendable () -> Void, keys: [String], pool: WorkerPool) {
        pool.submit { [self] in
            work()
            finish(keys: keys)
        }
    }

    private func finish(keys: [String]) {
        let next: [Ticket] = state.withLock { s in
            guard let id = s.fifos[keys[0]]?.first else { return [] }
            s.tickets[id] = nil
            var candidates: [UInt64] = []
            for k in keys {
                s.fifos[k]!.removeFirst()
                if let head = s.fifos[k]!.first { candidates.append(head) } else { s.fifos[k] = nil }
            }
            var ready: [Ticket] = []
            for c in candidates {
                guard var t = s.tickets[c], !t.running else { continue }
                if t.keys.allSatisfy({ s.fifos[$0]?.first == c }) {
                    t.running = true
                    s.tickets[c] = t
                    ready.append(t)
                }
            }
            return ready
        }
        for t in next { start(work: t.work, keys: t.keys, pool: t.pool) }
    }
}
