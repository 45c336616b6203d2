import Dispatch
import Synchronization

/// Fires the expiry action of calls that run past their deadline.
///
/// One timer sweeps all calls in flight, rather than a timer per request:
/// per-request timers stay allocated until their (long) deadline even when
/// the call ended at once, which grows memory with the request rate.
final class DeadlineSweeper: @unchecked Sendable {  // the timer is only configured in init
    private struct Entry {
        let deadline: DispatchTime
        let expire: @Sendable () -> Void
    }

    private let entries = Mutex<(next: UInt64, items: [UInt64: Entry])>((0, [:]))
    private let timer: DispatchSourceTimer
    private let queue = DispatchQueue(label: "volumed.deadlines")

    init(resolution: Double) {
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + resolution, repeating: resolution, leeway: .milliseconds(20))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            let now = DispatchTime.now()
            let expired: [@Sendable () -> Void] = entries.withLock { e in
                let due = e.items.filter { $0.value.deadline <= now }
                for key in due.keys { e.items[key] = nil }
                return due.values.map(\.expire)
            }
            for expire in expired { expire() }
        }
        timer.resume()
    }

    deinit { timer.cancel() }

    /// Registers `expire` to run `seconds` from now unless removed first.
    func add(after seconds: Double, _ expire: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = DispatchTime.now() + seconds
        return entries.withLock { e in
            let id = e.next
            e.next += 1
            e.items[id] = Entry(deadline: deadline, expire: expire)
            return id
        }
    }

    func remove(_ id: UInt64) {
        _ = entries.withLock { $0.items.removeValue(forKey: id) }
    }
}
