import ArgumentParser
import Ceph
import Dispatch
import Foundation
import Logging
import RPCServer
import Synchronization
import VolumeEngine
import VolumeService

@main
struct Daemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cephfs-volumed",
        abstract: "Serve CephFS volume management as line-delimited JSON-RPC 2.0 on a Unix socket.",
        discussion: """
            Every option can also be set in a JSON config file (--config), under the key \
            shown in brackets; flags override the file.
            """,
        version: VolumedVersion.string
    )

    @Option(help: "JSON config file holding any of the options below.")
    var config: String?

    @Option(help: "Path of the Unix socket to listen on [socket]. Not needed under systemd socket activation.")
    var socket: String?

    @Option(help: "Ceph configuration file [conf].")
    var conf: String?

    @Option(help: "cephx name of the service, without 'client.' [id].")
    var id: String?

    @Option(help: "Ceph cluster name [cluster] (default: ceph).")
    var cluster: String?

    @Option(help: "CephFS file system to manage [fs_name] (default: the cluster's default).")
    var fsName: String?

    @Option(help: "Directory of the volumes in the file system [volume_prefix] (default: /volumes).")
    var volumePrefix: String?

    @Option(help: "Prefix of the volumes' RADOS namespaces [namespace_prefix] (default: fsvolumens_).")
    var namespacePrefix: String?

    @Option(help: "Stable name of this daemon instance, unique per host [instance] (default: the hostname).")
    var instance: String?

    @Option(help: "Group owning the socket, name or gid [socket_group] (default: the daemon's group).")
    var socketGroup: String?

    @Option(
        name: .customLong("allow-uid"),
        help: "Also admit this peer uid; repeatable [allow_uids]. Root and the socket's group are always admitted.")
    var allowUIDs: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: "Also admit this peer gid; repeatable [allow_gids].")
    var allowGIDs: [UInt32] = []

    @Option(help: "Longest request line in bytes [max_line_length] (default: 16 MiB).")
    var maxLineLength: Int?

    @Option(help: "Most concurrent connections [max_connections] (default: 1024).")
    var maxConnections: Int?

    @Option(
        help:
            "Most concurrent connections of one peer uid; root is not limited [max_connections_per_peer] (default: the larger of 1 and max_connections / 2)."
    )
    var maxConnectionsPerPeer: Int?

    @Option(
        help: "Bytes all connections together may hold for incomplete request lines [line_buffer_budget] (default: 134217728).")
    var lineBufferBudget: Int?

    @Option(help: "Most requests in progress per connection before reading pauses [max_in_flight] (default: 128).")
    var maxInFlight: Int?

    @Option(help: "Seconds before an idle connection is closed, 0 for never [idle_timeout] (default: 600).")
    var idleTimeout: Double?

    @Option(help: "Seconds a peer may leave replies unread [slow_writer_timeout] (default: 30).")
    var slowWriterTimeout: Double?

    @Option(
        help:
            "Seconds from receipt before a call is answered with ClusterTimeout, 0 for never [request_timeout] (default: the cluster timeout times 4, so 60 s)."
    )
    var requestTimeout: Double?

    @Option(
        help:
            "Seconds to finish received requests on shutdown; then what is left is answered and the daemon exits [drain_timeout] (default: 30)."
    )
    var drainTimeout: Double?

    @Option(help: "Seconds for mon commands, OSD ops and the mount [cluster_timeout] (default: 15).")
    var clusterTimeout: Int?

    @Option(
        help:
            "Microseconds an I/O thread keeps polling after answering a request itself, instead of sleeping; 0 disables [busy_poll_us] (default: 50)."
    )
    var busyPollUs: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical [log_level] (default: info).")
    var logLevel: String?

    /// Tests only: arms the crash point VOLUMED_CRASH_AT names (debug builds).
    @Flag(name: .customLong("enable-crash-points"), help: .private)
    var enableCrashPoints = false

    /// The file's settings with the flags on top.
    func merged() throws -> Configuration {
        try (config.map { try Configuration.load(path: $0) } ?? Configuration()).overlaid(with: self)
    }

    func run() throws {
        let c = try merged()
        guard let level = Logger.Level(rawValue: c.logLevel) else { throw Fatal("unknown log level '\(c.logLevel)'") }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "cephfs-volumed")
        signal(SIGPIPE, SIG_IGN)
        // Handled from the start: startup can wait a long time (a mount, or
        // recovery queued on a metadata lock a dead client holds), and the Ceph
        // libraries' threads must not decide what a SIGTERM does meanwhile.
        // Until the socket serves, there is nothing to drain: exit at once.
        let stop = DispatchSemaphore(value: 0)
        let serving = Mutex(false)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                if serving.withLock({ $0 }) {
                    stop.signal()
                } else {
                    logger.notice("signal \(sig) during startup: exiting before serving")
                    fflush(nil)
                    _exit(0)
                }
            }
            s.resume()
            sources.append(s)
        }
        defer { withExtendedLifetime(sources) {} }
        // Worker threads would each get a malloc arena (8 per core by default),
        // which grows RSS under bursts without any leak; a few arenas suffice.
        limitMallocArenas(4)

        guard let conf = c.conf else { throw Fatal("missing --conf (or \"conf\" in the config file)") }
        guard let id = c.id else { throw Fatal("missing --id (or \"id\" in the config file)") }
        let socketPath = c.socket ?? ""
        if socketPath.isEmpty && !SocketActivationProbe.isActivated {
            throw Fatal("missing --socket (or \"socket\" in the config file)")
        }
        if id.hasPrefix("client.") { throw Fatal("--id takes the cephx name without 'client.'") }
        guard c.maxLineLength > 0, c.maxConnections > 0, c.maxInFlight > 0 else {
            throw Fatal("max_line_length, max_connections and max_in_flight must be positive")
        }
        if let v = c.maxConnectionsPerPeer, v <= 0 { throw Fatal("max_connections_per_peer must be positive") }
        guard c.lineBufferBudget >= c.maxLineLength else {
            throw Fatal("line_buffer_budget must be at least max_line_length, or no long line could ever be read")
        }
        guard (0...10_000).contains(c.busyPoll) else {
            throw Fatal("busy_poll_us must be between 0 and 10000 microseconds")
        }

        var serverConfig = ServerConfiguration(socketPath: socketPath)
        serverConfig.socketGroup = try c.socketGroup.map(Configuration.resolveGroup)
        serverConfig.allowedUIDs = Set(c.allowUIDs)
        serverConfig.allowedGIDs = Set(c.allowGIDs)
        serverConfig.limits.maxLineLength = c.maxLineLength
        serverConfig.limits.maxConnections = c.maxConnections
        serverConfig.limits.maxConnectionsPerPeer = c.maxConnectionsPerPeer
        serverConfig.limits.lineBufferBudget = c.lineBufferBudget
        serverConfig.limits.maxInFlightPerConnection = c.maxInFlight
        serverConfig.limits.idleTimeout = c.idleTimeout
        serverConfig.limits.slowWriterTimeout = c.slowWriterTimeout
        serverConfig.limits.busyPollMicroseconds = c.busyPoll
        serverConfig.drainTimeout = c.drainTimeout

        if enableCrashPoints {
            do throws(CrashPoint.ArmingError) {
                try CrashPoint.armFromEnvironment()
            } catch {
                throw Fatal("--enable-crash-points: \(error)")
            }
            logger.warning(
                "crash point armed: the daemon kills itself at \(ProcessInfo.processInfo.environment["VOLUMED_CRASH_AT"] ?? "?")")
        }
        let instance = c.instance ?? ProcessInfo.processInfo.hostName
        let engineConfig = EngineConfiguration(
            cluster: ClusterOptions(
                confPath: conf, id: id, clusterName: c.cluster,
                monOpTimeout: c.clusterTimeout, osdOpTimeout: c.clusterTimeout, mountTimeout: c.clusterTimeout),
            fsName: c.fsName, volumePrefix: c.volumePrefix, namespacePrefix: c.namespacePrefix,
            instanceName: instance)

        // Keyed by what the startup eviction matches: cluster, cephx ID and
        // instance name. Taken once connected (the fsid) and before evicting.
        var instanceLock: InstanceLock?
        defer { withExtendedLifetime(instanceLock) {} }
        let engine: VolumeEngine
        do {
            engine = try VolumeEngine.connect(engineConfig, logger: logger) { cluster in
                let fsid: String
                do {
                    fsid = try cluster.fsid()
                } catch {
                    throw Fatal("cannot read the cluster's fsid: \(error)")
                }
                do throws(SocketError) {
                    instanceLock = try InstanceLock(fsid: fsid, id: id, name: instance)
                } catch {
                    if error.errno == .EADDRINUSE {
                        throw Fatal(
                            "instance '\(instance)' is already running on this host as client.\(id) of cluster \(fsid): give each daemon its own --instance"
                        )
                    }
                    throw Fatal("cannot claim instance name '\(instance)': \(error)")
                }
            }
        } catch let fatal as Fatal {
            throw fatal
        } catch {
            throw Fatal("cannot reach the cluster: \(error)")
        }
        do {
            // Never waits on a lock another client holds: see `recover`.
            try engine.recover(waitForLocks: false)
        } catch {
            logger.error("recovery at startup failed: \(error)")
        }
        let stats = ServerStats()
        let pools = BackendPools.standard()
        pools.start()
        let dispatcher = EngineService.makeDispatcher(
            engine: engine, pools: pools, logger: logger, stats: stats,
            requestTimeout: c.requestTimeout ?? Double(c.clusterTimeout) * 4)
        let server: SocketServer
        do {
            server = try SocketServer(config: serverConfig, dispatcher: dispatcher, logger: logger)
        } catch {
            pools.shutdown()
            engine.shutdown()
            throw Fatal("cannot listen: \(error)")
        }
        logger.info("listening on \(server.listeningOn) as client.\(id), instance \(instance)")

        serving.withLock { $0 = true }
        stop.wait()
        logger.info("shutting down")
        server.shutdown()
        pools.shutdown()
        // Unmounting waits for calls still inside Ceph, and for the MDS. A
        // stuck cluster must not keep the process alive past the drain timeout
        // by more than a few seconds, so the wait is bounded, and short when
        // calls are known to be stuck (the unmount waits for them).
        let stuck = dispatcher.executingCount
        let unmounted = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            engine.shutdown()
            unmounted.signal()
        }
        if unmounted.wait(timeout: .now() + (stuck > 0 ? 1 : 5)) == .timedOut {
            logger.warning(
                "the unmount did not finish (\(dispatcher.executingCount) calls still stuck in the cluster); exiting without a clean unmount"
            )
            // Returning would run exit handlers, which may wait on the same
            // locks as the stuck threads.
            fflush(nil)
            _exit(0)
        }
        logger.info("stopped")
    }
}

enum SocketActivationProbe {
    /// True when systemd passed us a listening socket.
    static var isActivated: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["LISTEN_PID"].flatMap(Int32.init) == getpid() && (env["LISTEN_FDS"].flatMap(Int.init) ?? 0) >= 1
    }
}

/// A startup failure: one clear line on stderr and a non-zero exit.
struct Fatal: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `mallopt(M_ARENA_MAX, n)`; Swift's Glibc module does not expose malloc.h.
func limitMallocArenas(_ n: Int32) {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let mArenaMax: Int32 = -8
    guard let symbol = dlsym(nil, "mallopt") else { return }
    _ = unsafeBitCast(symbol, to: Mallopt.self)(mArenaMax, n)
}
