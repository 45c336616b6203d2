import Ceph

/// Where the engine keeps volumes and how it reaches the cluster.
public struct EngineConfiguration: Sendable {
    public var cluster: ClusterOptions
    /// The CephFS file system to mount; the cluster's default when nil.
    public var fsName: String?
    /// Where volumes live inside the file system.
    public var volumePrefix: String
    /// Prefix of the RADOS namespace of a namespace-isolated volume.
    public var namespacePrefix: String
    /// A stable name of this daemon instance, carried in its CephFS client metadata.
    public var instanceName: String

    public static let defaultVolumePrefix = "/volumes"
    public static let defaultNamespacePrefix = "fsvolumens_"

    public init(
        cluster: ClusterOptions, fsName: String? = nil, volumePrefix: String? = nil,
        namespacePrefix: String? = nil, instanceName: String
    ) {
        self.cluster = cluster
        self.fsName = fsName
        self.volumePrefix = volumePrefix ?? Self.defaultVolumePrefix
        self.namespacePrefix = namespacePrefix ?? Self.defaultNamespacePrefix
        self.instanceName = instanceName
    }
}
