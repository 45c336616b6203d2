import CEpoll
import Dispatch
import Foundation
import Logging
import Synchronization
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds that keep one client from hurting the others.
package struct ServerLimits: Sendable {
    package var maxLineLength = 16 * 1024 * 1024
    package var maxConnections = 1024
    /// Connections one peer uid may hold; nil means half of `maxConnections`.
    /// Root is not limited, so an administrator can always get in.
    package var maxConnectionsPerPeer: Int?
    package var maxInFlightPerConnection = 128
    /// Unsent reply bytes at which a connection's requests stop being read,
    /// until the peer reads its replies (a pipelining peer that never reads).
    package var maxUnsentReplyBytes = 1 << 20
    /// Bytes all connections together may hold for incomplete lines. A
    /// connection that grows its partial line past it (while others hold
    /// some too) gets -32002 and is closed.
    package var lineBufferBudget = 128 << 20
    /// Seconds without a request before an idle connection is closed; 0 disables.
    package var idleTimeout: Double = 600
    /// Seconds a peer may leave its replies unread before it is disconnected.
    package var slowWriterTimeout: Double = 30
    /// Microseconds an I/O thread keeps polling after answering a request
    /// itself, instead of sleeping (see `EventLoop.armBusyPoll`); 0 disables.
    package var busyPollMicroseconds = 50
    package init() {}

    /// `maxConnectionsPerPeer`, or its default.
    package var effectiveMaxConnectionsPerPeer: Int { maxConnectionsPerPeer ?? max(1, maxConnections / 2) }
}

/// Where to listen and whom to let in.
package struct ServerConfiguration: Sendable {
    package var socketPath: String
    package var socketMode: mode_t = 0o660
    /// The group that owns the socket file; the process's group when nil.
    package var socketGroup: gid_t?
    /// Peers allowed besides root and members of the socket's group.
    package var allowedUIDs: Set<uid_t> = []
    package var allowedGIDs: Set<gid_t> = []
    package var limits = ServerLimits()
    /// Seconds to finish received requests on shutdown.
    package var drainTimeout: Double = 30

    package init(socketPath: String) { self.socketPath = socketPath }
}

/// The listening half: accepts peers, checks their credentials, tracks
/// connections, and drains them on shutdown.
package final class SocketServer: @unchecked Sendable {  // all state is in `state` or immutable
    private struct State {
        var connections: [UInt64: Connection] = [:]
        /// Open connections by peer uid, root's not counted.
        var perPeer: [UInt32: Int] = [:]
        var nextID: UInt64 = 1
        var accepting = true
        var shutDown = false
        var drained: (@Sendable () -> Void)?
    }

    package let config: ServerConfiguration
    private let dispatcher: RPCDispatcher
    private let logger: Logger
    private let listenFD: Int32
    /// True when systemd passed the socket; then the file is systemd's to remove.
    private let socketActivated: Bool
    private let state = Mutex(State())
    private let effectiveGroup: gid_t
    private let loops: EventLoopGroup
    /// Watches the listening socket on the first event loop.
    private var acceptor: Acceptor!
    private let acceptErrorLog = Mutex(LogRateLimiter(intervalSeconds: 10))
    private let refusalLog = Mutex(LogRateLimiter(intervalSeconds: 1))

    /// Binds the socket (or adopts a systemd-passed one) and starts accepting.
    package init(config: ServerConfiguration, dispatcher: RPCDispatcher, logger: Logger) throws(SocketError) {
        self.config = config
        self.dispatcher = dispatcher
        self.logger = logger
        if let fd = SocketActivation.listenFD() {
            listenFD = fd
            socketActivated = true
            try UnixSocket.setNonBlocking(fd)
        } else {
            listenFD = try UnixSocket.listen(path: config.socketPath, mode: config.socketMode, group: config.socketGroup)
            socketActivated = false
        }
        effectiveGroup = config.socketGroup ?? getegid()
        do {
            loops = try EventLoopGroup(
                count: min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)),
                busyPollMicroseconds: config.limits.busyPollMicroseconds)
        } catch {
            if !socketActivated { Glibc.close(listenFD) }
            throw error
        }
        let loop = loops.loops[0]
        acceptor = Acceptor(fd: listenFD, loop: loop) { [unowned self] in acceptPending(fromLoop: true) }
        loop.execute { [acceptor] in acceptor!.start() }
    }

    package var connectionCount: Int { state.withLock { $0.connections.count } }

    /// The socket path, or a note that systemd passed the socket.
    package var listeningOn: String { socketActivated ? "a socket passed by systemd" : config.socketPath }

    private func acceptPending(fromLoop: Bool = false) {
        while true {
            do {
                guard let fd = try UnixSocket.acceptPeer(listenFD) else { return }
                admit(fd)
            } catch {
                // The peer gave up while queued: nothing is wrong with us.
                if error.errno == .ECONNABORTED { continue }
                if let dropped = acceptErrorLog.withLock({ $0.admit() }) {
                    logger.warning("\(error)\(dropped > 0 ? " (\(dropped) more since the last report)" : ""); pausing accepts for 100 ms")
                }
                // The peer stays queued, so the source fires again at once:
                // without a pause, out of descriptors (EMFILE, ENFILE) or
                // memory the loop would spin and log without end.
                if fromLoop { acceptor.pause(seconds: 0.1) }
                return
            }
        }
    }

    private func admit(_ fd: Int32) {
        let peer = UnixSocket.peerCredentials(fd)
        let decision: (Connection, RPCError?)? = state.withLock { s in
            guard s.accepting else { return nil }
            let id = s.nextID
            s.nextID += 1
            let conn = Connection(
                id: id, fd: fd, peer: peer, limits: config.limits, dispatcher: dispatcher, logger: logger,
                loop: loops.pick(), onClose: { [weak self] c in self?.connectionClosed(c) })
            if !isAllowed(peer) {
                return (conn, RPCError(code: .accessDenied, message: "access denied for \(peer.map { "uid \($0.uid)" } ?? "unknown peer")"))
            }
            if s.connections.count >= config.limits.maxConnections {
                return (conn, RPCError(code: .limitExceeded, message: "too many connections"))
            }
            // One peer must not take every slot, so others are still served.
            if let uid = peer?.uid, uid != 0 {
                if s.perPeer[uid, default: 0] >= config.limits.effectiveMaxConnectionsPerPeer {
                    return (conn, RPCError(code: .limitExceeded, message: "too many connections from uid \(uid)"))
                }
                s.perPeer[uid, default: 0] += 1
            }
            s.connections[id] = conn
            dispatcher.stats.connections.add(1, ordering: .relaxed)
            return (conn, nil)
        }
        guard let (conn, refusal) = decision else {
            Glibc.close(fd)
            return
        }
        if let refusal {
            if let dropped = refusalLog.withLock({ $0.admit() }) {
                logger.notice(
                    "refusing connection from \(peer?.description ?? "unknown peer"): \(refusal.message)\(dropped > 0 ? " (\(dropped) more refused since the last report)" : "")"
                )
            }
            conn.refuse(refusal)
        } else {
            conn.start()
        }
    }

    /// Root, the allowed uids and gids, and members of the socket's group
    /// (primary or supplementary) get in.
    func isAllowed(_ peer: PeerCredentials?) -> Bool {
        guard let peer else { return false }
        if peer.uid == 0 || config.allowedUIDs.contains(peer.uid) { return true }
        for gid in [peer.gid] + peer.groups where gid == effectiveGroup || config.allowedGIDs.contains(gid) {
            return true
        }
        return false
    }

    private func connectionClosed(_ c: Connection) {
        let drained: (@Sendable () -> Void)? = state.withLock { s in
            if s.connections.removeValue(forKey: c.id) != nil {
                dispatcher.stats.connections.subtract(1, ordering: .relaxed)
                if let uid = c.peer?.uid, uid != 0, let n = s.perPeer[uid] {
                    s.perPeer[uid] = n > 1 ? n - 1 : nil
                }
            }
            if !s.accepting, s.connections.isEmpty, let d = s.drained {
                s.drained = nil
                return d
            }
            return nil
        }
        drained?()
    }

    /// Stops accepting, answers every request already received, and closes
    /// every connection. Calls keep running (and queued ones starting) until
    /// the drain timeout; then the ones not started are answered -32003 and
    /// the ones still running `ClusterTimeout`, and the connections get a
    /// moment to send those replies. Returns within the drain timeout plus
    /// about 2 s. Safe to call more than once: only the first call closes anything.
    package func shutdown() {
        let first = state.withLock { s in
            defer { s.shutDown = true }
            return !s.shutDown
        }
        // Closing the listening descriptor twice would close whatever reused its number.
        guard first else { return }
        let stopped = DispatchSemaphore(value: 0)
        acceptor.loop.execute { [acceptor] in
            acceptor!.stop()
            stopped.signal()
        }
        stopped.wait()
        // Peers still in the listen backlog connected before the shutdown:
        // closing the socket would reset them, so they are served too.
        acceptPending()
        let done = DispatchSemaphore(value: 0)
        let connections: [Connection] = state.withLock { s in
            s.accepting = false
            s.drained = { done.signal() }
            return Array(s.connections.values)
        }
        let deadline = DispatchTime.now() + config.drainTimeout
        Glibc.close(listenFD)
        if !socketActivated { unlink(config.socketPath) }
        defer { loops.stop() }
        if connections.isEmpty {
            dispatcher.cutOffForShutdown()  // calls of peers that left need no answer, but must not start
            return
        }
        for c in connections { c.drain() }
        if done.wait(timeout: deadline) == .timedOut {
            let (queued, running) = dispatcher.cutOffForShutdown()
            logger.warning(
                "drain timeout passed: \(queued) calls not started answered -32003, \(running) still running in the cluster answered ClusterTimeout"
            )
            if done.wait(timeout: .now() + 2) == .timedOut {
                logger.warning("closing \(connectionCount) connections that did not finish")
            }
        } else {
            dispatcher.cutOffForShutdown()
        }
    }
}

/// The listening socket on an event loop: epoll reports pending peers, and
/// `onReadable` accepts them and hands each to a loop. After an accept error
/// (EMFILE, ENFILE, ENOMEM) accepting pauses, as the peer stays queued and
/// a level-triggered epoll would report it again at once.
final class Acceptor: EventHandler, @unchecked Sendable {  // state is touched on `loop` only
    let fd: Int32
    let loop: EventLoop
    /// Apart from connection ids, which count up from 1.
    let token = UInt64.max - 1
    private let onReadable: () -> Void
    private var watching = false
    private var paused = false
    private var stopped = false

    init(fd: Int32, loop: EventLoop, onReadable: @escaping () -> Void) {
        self.fd = fd
        self.loop = loop
        self.onReadable = onReadable
    }

    func start() {
        loop.register(self)
        setWatching(true)
    }

    func stop() {
        stopped = true
        setWatching(false)
        loop.deregister(self)
    }

    /// Stops watching for `seconds`; a Dispatch timer brings it back.
    func pause(seconds: Double) {
        guard !paused, !stopped else { return }
        paused = true
        setWatching(false)
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in
            loop.execute { [self] in
                paused = false
                if !stopped { setWatching(true) }
            }
        }
    }

    private func setWatching(_ on: Bool) {
        guard watching != on else { return }
        loop.watch(self, events: on ? vd_epollin : 0, was: watching ? vd_epollin : nil)
        watching = on
    }

    func handle(events: UInt32) {
        if watching { onReadable() }
    }

    func tick() {}
    func pollRead() -> Bool { false }
}
