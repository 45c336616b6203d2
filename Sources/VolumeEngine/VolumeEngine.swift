import Ceph
import JSONValue
import Logging
import Synchronization
import WorkerThreads

/// The port of CephFSVolumeClient: one connection to the cluster and one
/// CephFS mount, shared by every request. Thread-safe; callers serialise
/// mutations per key (see RPCServer's KeyedSerializer).
public final class VolumeEngine: Sendable {
    public let config: EngineConfiguration
    public let cluster: RadosCluster
    public let fs: CephFSMount
    let logger: Logger
    let layout: Layout
    let store: MetadataStore
    /// Threads for overlapped cluster calls and background unlocks; only
    /// idle ones are used (`submitIfIdle`), so a few suffice.
    let helpers = WorkerPool(maxThreads: 4)
    /// The last listing of the group directories (see `groupDirectories`).
    let groupListing = Mutex<GroupListing?>(nil)
    /// Volume layouts by directory inode (see `volumeLayout`).
    let layouts = Mutex<[UInt64: VolumeLayout]>([:])

    init(config: EngineConfiguration, cluster: RadosCluster, fs: CephFSMount, logger: Logger) {
        self.config = config
        self.cluster = cluster
        self.fs = fs
        self.logger = logger
        layout = Layout(prefix: config.volumePrefix, namespacePrefix: config.namespacePrefix)
        store = MetadataStore(fs: fs)
        helpers.start()
    }

    /// Connects to the cluster, evicts the sessions a previous run of this
    /// instance left behind, and mounts the file system.
    ///
    /// Every session of this daemon carries `volumed_instance=<name>` in its
    /// client metadata. After a crash, the dead session still holds its
    /// flocks until the MDS times it out (about a minute). Evicting the
    /// sessions of our own instance name and cephx ID first frees them at
    /// once; the new session is not open yet, and other instances (other
    /// hosts, other names) are never matched.
    ///
    /// `claim` runs once the cluster is reached, before the eviction: the
    /// daemon claims its instance there, as the claim's key has the fsid.
    public static func connect(
        _ config: EngineConfiguration, logger: Logger, evictStaleSessions: Bool = true,
        claim: (RadosCluster) throws -> Void = { _ in }
    ) throws -> VolumeEngine {
        try Identifier.validate(config.instanceName, field: "instance")
        var options = config.cluster
        options.extraConfig.append(("client_metadata", "\(instanceMetadataKey)=\(config.instanceName)"))
        options.defaultConfig += quietClientLogging
        let cluster = try RadosCluster(options)
        do {
            try claim(cluster)
        } catch {
            cluster.shutdown()
            throw error
        }
        let fs: CephFSMount
        do {
            fs = try CephFSMount(cluster: cluster)
        } catch {
            cluster.shutdown()
            throw error
        }
        let engine = VolumeEngine(config: config, cluster: cluster, fs: fs, logger: logger)
        do {
            if evictStaleSessions {
                do {
                    try engine.evictSessions(
                        filters: ["auth_name=\(config.cluster.id)", "client_metadata.\(instanceMetadataKey)=\(config.instanceName)"],
                        timeout: Double(config.cluster.monOpTimeout))
                } catch {
                    // Not fatal: locks of a dead session then free themselves when the MDS times it out.
                    logger.warning("could not evict stale sessions of instance \(config.instanceName): \(error)")
                }
            }
            try fs.mount(fsName: config.fsName)
        } catch {
            engine.shutdown()
            throw error
        }
        fs.enableRemount { [weak engine] report in engine?.remounted(report) }
        return engine
    }

    /// After the MDS evicted this daemon's session (an operator's `client
    /// evict`, or a session that timed out) the mount replaced its client
    /// (see `CephFSMount`). The metadata files kept open belong to the old
    /// client: they go. The flocks held through them are gone with the old
    /// session, so a call that held one fails at its next write, which goes
    /// through the old client.
    func remounted(_ report: RemountReport) {
        if report.failure == nil {
            store.openFiles.closeAll()
            logger.warning("CephFS \(report); later calls use the new mount")
        } else {
            logger.error("CephFS \(report); calls fail until a remount succeeds")
        }
    }

    /// The Ceph client libraries format their debug messages into an
    /// in-memory ring (levels up to the number after the slash) and a log
    /// thread drains it: measurable CPU and thread wake-ups per call in a
    /// busy daemon. Levels an operator set in ceph.conf are left alone.
    static let quietClientLogging: [(String, String, String)] = [
        ("debug_client", "0/5", "0/0"), ("debug_objectcacher", "0/5", "0/0"), ("debug_rados", "0/5", "0/0"),
        ("debug_monc", "0/10", "0/0"), ("debug_objecter", "0/1", "0/0"), ("debug_auth", "1/5", "1/1"),
    ]

    /// The client metadata key naming the daemon instance of a session.
    public static let instanceMetadataKey = "volumed_instance"

    /// Unmounts and disconnects; in that order, as the mount shares the cluster handle.
    public func shutdown() {
        helpers.shutdown()
        store.openFiles.closeAll()
        fs.close()
        cluster.shutdown()
    }

    /// The mons' legacy addresses as `ip:port`, as the seed returns them.
    public func getMonAddrs() throws(VolumeError) -> [String] {
        try engineCall {
            let dump = try cluster.monJSON(["prefix": "mon dump"])
            guard let mons = dump?["mons"]?.arrayValue else {
                throw CephError(errno: .EINVAL, operation: "mon dump", detail: "reply has no mons")
            }
            return mons.compactMap { mon in
                mon["addr"]?.stringValue.map { String($0.split(separator: "/", maxSplits: 1).first ?? "") }
            }
        }
    }
}

/// Group directory names, with what the prefix looked like when they were listed.
struct GroupListing: Sendable {
    struct Stamp: Equatable, Sendable {
        let inode: UInt64
        let linkCount: UInt32
    }
    let stamp: Stamp
    let groups: [String]
}

/// Where a volume's data goes.
struct VolumeLayout: Sendable, Equatable {
    let pool: String
    let namespace: String?
}
