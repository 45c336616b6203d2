import Dispatch
import Synchronization

/// Every call received and not yet answered, with its deadline.
///
/// A call is registered when it is received, so its deadline counts the time
/// it waits for its keys and for a thread, not only its run: a call queued
/// behind one stuck in the cluster is answered when its own deadline passes.
/// The entry then goes, and a call whose entry is gone when its turn comes
/// never starts (`start` returns false).
///
/// One timer sweeps all calls, rather than a timer per request: per-request
/// timers stay allocated until their (long) deadline even when the call ended
/// at once, which grows memory with the request rate.
final class DeadlineSweeper: @unchecked Sendable {  // the timer is only configured in init
    /// Why a call is answered before it ends.
    enum Cutoff: Sendable {
        /// Its deadline passed.
        case deadline
        /// The server is shutting down and the call never started.
        case shutdownQueued
        /// The server is shutting down and the call is still running in the cluster.
        case shutdownRunning
    }

    private struct Entry {
        let deadline: DispatchTime?
        var started = false
        let cutOff: @Sendable (Cutoff) -> Void
    }

    private let entries = Mutex<(next: UInt64, items: [UInt64: Entry])>((0, [:]))
    private let timer: DispatchSourceTimer?
    private let queue = DispatchQueue(label: "volumed.deadlines")
    /// Seconds from receipt to the deadline; 0 for none.
    let timeout: Double

    init(timeout: Double) {
        self.timeout = timeout
        guard timeout > 0 else {
            timer = nil
            return
        }
        let resolution = min(0.25, timeout / 4)
        let timer = DispatchSource.makeTimerSource(queue: queue)
        self.timer = timer
        timer.schedule(deadline: .now() + resolution, repeating: resolution, leeway: .milliseconds(20))
        timer.setEventHandler { [weak self] in self?.sweep() }
        timer.resume()
    }

    deinit { timer?.cancel() }

    private func sweep() {
        let now = DispatchTime.now()
        let expired: [@Sendable (Cutoff) -> Void] = entries.withLock { e in
            let due = e.items.filter { $0.value.deadline.map { $0 <= now } ?? false }
            for key in due.keys { e.items[key] = nil }
            return due.values.map(\.cutOff)
        }
        for cutOff in expired { cutOff(.deadline) }
    }

    /// Registers a call just received, whose deadline is `extraTime` seconds
    /// later than others'; `cutOff` answers it if it is cut off (by its
    /// deadline or a shutdown) before it ends.
    func add(extraTime: Double = 0, _ cutOff: @escaping @Sendable (Cutoff) -> Void) -> UInt64 {
        let deadline = timeout > 0 ? DispatchTime.now() + timeout + extraTime : nil
        return entries.withLock { e in
            let id = e.next
            e.next += 1
            e.items[id] = Entry(deadline: deadline, cutOff: cutOff)
            return id
        }
    }

    /// Marks the call as started; false when it was already answered (cut
    /// off), and must then not run.
    func start(_ id: UInt64) -> Bool {
        entries.withLock { e in
            guard e.items[id] != nil else { return false }
            e.items[id]!.started = true
            return true
        }
    }

    /// The call ended and answers for itself.
    func remove(_ id: UInt64) {
        _ = entries.withLock { $0.items.removeValue(forKey: id) }
    }

    /// Answers every call not yet answered: those not started with
    /// `shutdownQueued`, the others with `shutdownRunning`. Returns how many of each.
    func cutOffAll() -> (queued: Int, running: Int) {
        let all = entries.withLock { e in
            defer { e.items.removeAll() }
            return Array(e.items.values)
        }
        var queued = 0
        for entry in all {
            if entry.started {
                entry.cutOff(.shutdownRunning)
            } else {
                queued += 1
                entry.cutOff(.shutdownQueued)
            }
        }
        return (queued, all.count - queued)
    }
}
