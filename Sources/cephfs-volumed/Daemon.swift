import ArgumentParser
import Ceph
import Dispatch
import Foundation
import Logging
import VolumeEngine
import VolumeServer

@main
struct Daemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cephfs-volumed",
        abstract: "Serve CephFS volume management as line-delimited JSON-RPC 2.0 on a Unix socket.",
        version: VolumedVersion.string
    )

    @Option(help: "Path of the Unix socket to listen on.")
    var socket: String

    @Option(help: "Ceph configuration file.")
    var conf: String

    @Option(help: "cephx name of the service, without 'client.'.")
    var id: String

    @Option(help: "Ceph cluster name.")
    var cluster: String = "ceph"

    @Option(name: .customLong("fs-name"), help: "CephFS file system to manage (the cluster's default when absent).")
    var fsName: String?

    @Option(name: .customLong("volume-prefix"), help: "Directory of the volumes inside the file system.")
    var volumePrefix: String = EngineConfiguration.defaultVolumePrefix

    @Option(name: .customLong("namespace-prefix"), help: "Prefix of the RADOS namespaces of volumes.")
    var namespacePrefix: String = EngineConfiguration.defaultNamespacePrefix

    func run() throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = ProcessInfo.processInfo.environment["VOLUMED_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return h
        }
        let logger = Logger(label: "cephfs-volumed")
        signal(SIGPIPE, SIG_IGN)

        let instance = ProcessInfo.processInfo.hostName
        let engineConfig = EngineConfiguration(
            cluster: ClusterOptions(confPath: conf, id: id, clusterName: cluster),
            fsName: fsName, volumePrefix: volumePrefix, namespacePrefix: namespacePrefix,
            instanceName: instance)

        let engine: VolumeEngine
        do {
            engine = try VolumeEngine.connect(engineConfig, logger: logger)
        } catch {
            throw Fatal("cannot reach the cluster: \(error)")
        }
        let dispatcher = RPCDispatcher(methods: EngineMethods.handlers(engine: engine), logger: logger)
        let server: VolumeServer
        do {
            server = try VolumeServer(config: ServerConfiguration(socketPath: socket), dispatcher: dispatcher, logger: logger)
        } catch {
            engine.shutdown()
            throw Fatal("cannot listen: \(error)")
        }
        logger.info("listening on \(socket) as client.\(id)")

        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stop.signal() }
            s.resume()
            sources.append(s)
        }
        stop.wait()
        logger.info("shutting down")
        server.shutdown()
        engine.shutdown()
        logger.info("stopped")
    }
}

/// A startup failure: one clear line on stderr and a non-zero exit.
struct Fatal: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

enum VolumedVersion {
    static let string = "0.1.0"
}
