import Foundation

/// Threads for blocking engine calls.
///
/// A Ceph call blocks its thread for a network round trip. On Linux, Dispatch's
/// concurrent queues do not add threads for work that blocks, so calls would
/// run only about as many at a time as there are cores. This pool starts a
/// thread whenever work is waiting and none is idle, up to `maxThreads`, and
/// keeps idle threads for reuse.
public final class WorkerPool: @unchecked Sendable {  // all state is guarded by `condition`
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var idle = 0
    private var threads = 0
    public let maxThreads: Int
    private let threadName: String

    /// Work beyond `maxThreads` busy threads waits in a queue: a bound keeps
    /// calls that hang (in a stuck cluster) from taking every thread.
    public init(maxThreads: Int = 256, name: String = "volumed-worker") {
        self.maxThreads = maxThreads
        threadName = name
    }

    /// Hands `job` to a thread only when one is idle, or while fewer than
    /// `spare` threads exist; otherwise returns false and the caller runs it
    /// itself. For work that is worth a thread hand-off only when there is
    /// spare capacity: under load, hand-offs cost wake-ups and gain nothing.
    public func submitIfIdle(spare: Int = 4, _ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let waiting = jobs.count - head
        if idle > waiting {
            jobs.append(job)
            condition.signal()
            return true
        }
        guard threads < min(spare, maxThreads) else { return false }
        jobs.append(job)
        spawn()
        return true
    }

    public func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        // An idle thread that was signalled counts as idle until it wakes:
        // compare with the jobs waiting, or back-to-back jobs would queue
        // behind one that blocks (for ever, in a hung cluster).
        if jobs.count - head > idle && threads < maxThreads {
            spawn()
        } else {
            condition.signal()
        }
        condition.unlock()
    }

    /// Starts one more thread; called with `condition` locked.
    private func spawn() {
        threads += 1
        let t = Thread { [self] in work() }
        t.name = threadName
        t.start()
    }

    private func work() {
        condition.lock()
        while true {
            while head == jobs.count {
                idle += 1
                condition.wait()
                idle -= 1
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
            condition.lock()
        }
    }
}
