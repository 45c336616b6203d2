import Foundation

/// Threads for blocking engine calls.
///
/// A Ceph call blocks its thread for a network round trip. On Linux, Dispatch's
/// concurrent queues do not add threads for work that blocks, so calls would
/// run only about as many at a time as there are cores. This pool starts a
/// thread whenever work is waiting and none is idle, up to `maxThreads`, and
/// keeps idle threads for reuse.
///
/// Its life, as NIO's `NIOThreadPool`: made once, `start()`ed, handed to its
/// users, and `shutdown()` at the end, which releases the idle threads at once
/// and the busy ones once the queue is empty. Work submitted after shutdown is
/// refused (`submit` drops it, `submitIfIdle` returns false). Shutdown never
/// waits: a call stuck in the cluster cannot be interrupted.
package final class WorkerPool: @unchecked Sendable {  // all state is guarded by `condition`
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var idle = 0
    private var threads = 0
    private enum Phase { case made, running, shutDown }
    private var phase = Phase.made
    package let maxThreads: Int
    private let threadName: String

    /// Work beyond `maxThreads` busy threads waits in a queue: a bound keeps
    /// calls that hang (in a stuck cluster) from taking every thread.
    package init(maxThreads: Int = 256, name: String = "volumed-worker") {
        self.maxThreads = maxThreads
        threadName = name
    }

    /// Lets the pool take work; call once before the first `submit`.
    package func start() {
        condition.lock()
        defer { condition.unlock() }
        precondition(phase == .made, "WorkerPool \(threadName) started twice or after shutdown")
        phase = .running
    }

    /// Refuses later work; idle threads exit now, busy ones when no queued
    /// job is left (queued jobs still run: their submitters wait for them).
    package func shutdown() {
        condition.lock()
        defer { condition.unlock() }
        phase = .shutDown
        condition.broadcast()
    }

    /// Threads alive now (busy or idle).
    package var threadCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return threads
    }

    /// False once `shutdown` has run: the job was not taken.
    private func accepting() -> Bool {
        precondition(phase != .made, "WorkerPool \(threadName) used before start()")
        return phase == .running
    }

    /// Hands `job` to a thread only when one is idle, or while fewer than
    /// `spare` threads exist; otherwise returns false and the caller runs it
    /// itself. For work that is worth a thread hand-off only when there is
    /// spare capacity: under load, hand-offs cost wake-ups and gain nothing.
    package func submitIfIdle(spare: Int = 4, _ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard accepting() else { return false }
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

    package func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        guard accepting() else {
            condition.unlock()
            return
        }
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
                if phase == .shutDown {
                    threads -= 1
                    condition.unlock()
                    return
                }
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
