import CEpoll
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One thread that waits on many sockets with epoll and runs their I/O.
///
/// Why not a Dispatch read source per connection: libdispatch waits for
/// events on one thread and runs handlers on another, so every request
/// crossed at least two threads before its reply was written. On a
/// virtual machine each cross-CPU wake-up costs tens of microseconds. Here
/// the thread the kernel wakes for a readable socket reads the line, answers
/// a non-blocking call (ping) itself and writes the reply, as a
/// thread-per-connection server would, while one thread still serves
/// thousands of idle connections. Calls that wait on the cluster still go to
/// the worker threads, which write their replies directly.
///
/// Everything registered with a loop is touched only on its thread, except
/// through `execute`, which wakes the loop with an eventfd.
final class EventLoop: @unchecked Sendable {  // loop-thread state is confined; `tasks` is locked
    private let epfd: Int32
    private let wakeFD: Int32
    private struct Tasks {
        var queue: [@Sendable () -> Void] = []
        var awake = false
        /// The loop has ended: tasks are dropped and the eventfd is closed.
        var ended = false
    }
    private let tasks = Mutex(Tasks())
    /// By token, never by descriptor: an event still queued for a closed
    /// socket must not reach a new one that reuses its number.
    private var handlers: [UInt64: any EventHandler] = [:]
    private var thread: pthread_t?
    private var stopped = false
    /// How often `tick` runs on every handler (timeouts), in seconds.
    let tickInterval: Double
    private static let wakeToken: UInt64 = 0

    /// Scratch space for reads, used only on the loop thread.
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// See `armBusyPoll`.
    private let busyPollNanoseconds: UInt64
    private var busyPollUntil: UInt64 = 0
    /// The handler that armed the busy-poll: polled with a plain read, one
    /// syscall fewer than an epoll round on the reply's critical path.
    private var hot: (any EventHandler)?

    init(name: String, tickInterval: Double = 0.25, busyPollMicroseconds: Int = 0) throws(SocketError) {
        self.tickInterval = tickInterval
        busyPollNanoseconds = UInt64(max(busyPollMicroseconds, 0)) * 1000
        epfd = try syscall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        do {
            wakeFD = try syscall("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
        } catch {
            Glibc.close(epfd)
            throw error
        }
        var ev = epoll_event(events: vd_epollin, data: epoll_data_t(u64: Self.wakeToken))
        _ = epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &ev)
        let started = DispatchSemaphore(value: 0)
        let t = Thread { [self] in
            thread = pthread_self()
            started.signal()
            run()
        }
        t.name = name
        t.stackSize = 1 << 20
        t.start()
        started.wait()  // `thread` is set before anyone asks `inLoop`
    }

    /// Ends the loop thread once the handlers it has are gone (tests make many servers).
    func stop() {
        execute { [self] in stopped = true }
    }

    /// True on the loop's own thread.
    var inLoop: Bool {
        guard let thread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Runs `task` on the loop thread, soon.
    func execute(_ task: @escaping @Sendable () -> Void) {
        tasks.withLock { t in
            guard !t.ended else { return }
            t.queue.append(task)
            if !t.awake {
                t.awake = true
                var one: UInt64 = 1
                _ = Glibc.write(wakeFD, &one, 8)
            }
        }
    }

    // MARK: Loop thread only

    /// After answering a request on the spot, keeps polling without sleeping
    /// for a short while. A client doing request/reply sends its next line
    /// within microseconds, and a thread that went to sleep must be woken by
    /// an inter-processor interrupt, which on a virtual machine costs more
    /// than the whole round trip. The poll reads the answered peer's socket
    /// and yields the CPU between reads: the kernel tends to wake the peer on
    /// the CPU that wrote to it, this one, and a poll that kept the CPU would
    /// make the peer wait for the poll to end. Only answers given by the loop
    /// itself arm it, so calls that wait on the cluster do not make the loop spin.
    func armBusyPoll(for handler: any EventHandler) {
        guard busyPollNanoseconds > 0 else { return }
        busyPollUntil = DispatchTime.now().uptimeNanoseconds + busyPollNanoseconds
        hot = handler
    }

    /// Delivers the handler's events and ticks; `watch` says which events.
    func register(_ handler: any EventHandler) {
        precondition(inLoop)
        handlers[handler.token] = handler
    }

    /// Sets the events epoll reports for `fd`; `was` is what it reported
    /// before (nil: not in the set). No events at all takes the descriptor
    /// out of the set, since epoll reports a hang-up even to an empty mask.
    func watch(_ handler: any EventHandler, events: UInt32, was: UInt32?) {
        precondition(inLoop)
        var ev = epoll_event(events: events, data: epoll_data_t(u64: handler.token))
        if events == 0 {
            if was != nil { _ = epoll_ctl(epfd, EPOLL_CTL_DEL, handler.fd, nil) }
        } else {
            _ = epoll_ctl(epfd, was == nil ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, handler.fd, &ev)
        }
    }

    /// Forgets the handler; its descriptor must be out of the epoll set or closed.
    func deregister(_ handler: any EventHandler) {
        precondition(inLoop)
        handlers[handler.token] = nil
        if hot === handler { hot = nil }
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 128)
        var nextTick = DispatchTime.now().uptimeNanoseconds + UInt64(tickInterval * 1e9)
        var spins = 0
        while !(stopped && handlers.isEmpty) {
            let now = DispatchTime.now().uptimeNanoseconds
            let polling = now < busyPollUntil
            if !polling { hot = nil }
            // Mostly the hot peer's socket; every few rounds everyone's.
            if polling, let h = hot, spins & 7 != 0 {
                spins += 1
                if h.pollRead() {
                    spins = 1
                } else {
                    // The peer may have been woken on this CPU: let it run now
                    // rather than when the poll ends.
                    sched_yield()
                }
                continue
            }
            spins = 1
            let timeout = polling ? 0 : handlers.isEmpty ? -1 : Int32(max(0, Int64(nextTick) - Int64(now)) / 1_000_000) + 1
            let n = events.withUnsafeMutableBufferPointer { epoll_wait(epfd, $0.baseAddress, Int32($0.count), timeout) }
            if n < 0 && errno != EINTR { fatalError("epoll_wait: \(String(cString: strerror(errno)))") }
            if n == 0 && polling { continue }
            for i in 0..<max(Int(n), 0) {
                let token = events[i].data.u64
                if token == Self.wakeToken {
                    runTasks()
                } else if let h = handlers[token] {
                    h.handle(events: events[i].events)
                }
            }
            let after = DispatchTime.now().uptimeNanoseconds
            if after >= nextTick {
                for h in Array(handlers.values) { h.tick() }
                nextTick = after + UInt64(tickInterval * 1e9)
            }
        }
        tasks.withLock { t in
            t.ended = true
            t.queue = []
            Glibc.close(wakeFD)
        }
        Glibc.close(epfd)
        readBuffer.deallocate()
    }

    private func runTasks() {
        var drained: UInt64 = 0
        _ = Glibc.read(wakeFD, &drained, 8)
        while true {
            let batch = tasks.withLock { t -> [@Sendable () -> Void] in
                let q = t.queue
                t.queue = []
                if q.isEmpty { t.awake = false }
                return q
            }
            if batch.isEmpty { return }
            for task in batch { task() }
        }
    }
}

/// A descriptor an `EventLoop` watches.
protocol EventHandler: AnyObject {
    var fd: Int32 { get }
    /// Unique for the life of the loop, and never 0.
    var token: UInt64 { get }
    /// Called on the loop thread with the epoll events that fired.
    func handle(events: UInt32)
    /// Called on the loop thread every `tickInterval`.
    func tick()
    /// Reads without waiting for epoll (busy-poll); true when bytes came.
    func pollRead() -> Bool
}

/// A few loops, one per core, that connections are spread over.
final class EventLoopGroup: Sendable {
    let loops: [EventLoop]
    private let next = Atomic<Int>(0)

    init(count: Int, busyPollMicroseconds: Int = 0) throws(SocketError) {
        var loops: [EventLoop] = []
        for i in 0..<max(count, 1) {
            loops.append(try EventLoop(name: "volumed-io-\(i)", busyPollMicroseconds: busyPollMicroseconds))
        }
        self.loops = loops
    }

    func pick() -> EventLoop {
        loops[next.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    func stop() {
        for loop in loops { loop.stop() }
    }
}
