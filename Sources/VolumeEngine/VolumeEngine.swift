import Ceph
import JSONValue
import Logging

/// The port of CephFSVolumeClient: one connection to the cluster and one
/// CephFS mount, shared by every request. Thread-safe; callers serialise
/// mutations per key (see VolumeServer's KeyedSerializer).
public final class VolumeEngine: Sendable {
    public let config: EngineConfiguration
    public let cluster: RadosCluster
    public let fs: CephFSMount
    let logger: Logger
    let layout: Layout
    let store: MetadataStore

    init(config: EngineConfiguration, cluster: RadosCluster, fs: CephFSMount, logger: Logger) {
        self.config = config
        self.cluster = cluster
        self.fs = fs
        self.logger = logger
        layout = Layout(prefix: config.volumePrefix, namespacePrefix: config.namespacePrefix)
        store = MetadataStore(fs: fs)
    }

    /// Connects to the cluster and mounts the file system.
    public static func connect(_ config: EngineConfiguration, logger: Logger) throws(CephError) -> VolumeEngine {
        var options = config.cluster
        options.extraConfig.append(("client_metadata", "volumed_instance=\(config.instanceName)"))
        let cluster = try RadosCluster(options)
        do throws(CephError) {
            let fs = try CephFSMount(cluster: cluster)
            do throws(CephError) {
                try fs.mount(fsName: config.fsName)
            } catch {
                fs.close()
                throw error
            }
            return VolumeEngine(config: config, cluster: cluster, fs: fs, logger: logger)
        } catch {
            cluster.shutdown()
            throw error
        }
    }

    /// Unmounts and disconnects; in that order, as the mount shares the cluster handle.
    public func shutdown() {
        fs.close()
        cluster.shutdown()
    }

    /// The mons' legacy addresses as `ip:port`, as the seed returns them.
    public func getMonAddrs() throws(CephError) -> [String] {
        let dump = try cluster.monJSON(["prefix": "mon dump"])
        guard let mons = dump?["mons"]?.arrayValue else {
            throw CephError(errno: .EINVAL, operation: "mon dump", detail: "reply has no mons")
        }
        return mons.compactMap { mon in
            mon["addr"]?.stringValue.map { String($0.split(separator: "/", maxSplits: 1).first ?? "") }
        }
    }
}
