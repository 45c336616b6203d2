/// The methods the server answers, by their wire names (the seed's own).
public enum Method {
    public static let ping = "ping"
    public static let createGroup = "create_group"
    public static let destroyGroup = "destroy_group"
    public static let createVolume = "create_volume"
    public static let deleteVolume = "delete_volume"
    public static let purgeVolume = "purge_volume"
    public static let authorize = "authorize"
    public static let deauthorize = "deauthorize"
    public static let getAuthorizedIDs = "get_authorized_ids"
    public static let evict = "evict"
    public static let getUsedBytes = "get_used_bytes"
    public static let setMaxBytes = "set_max_bytes"
    public static let createSnapshotVolume = "create_snapshot_volume"
    public static let destroySnapshotVolume = "destroy_snapshot_volume"
    public static let createSnapshotGroup = "create_snapshot_group"
    public static let destroySnapshotGroup = "destroy_snapshot_group"
    public static let cloneVolumeToExisting = "clone_volume_to_existing"
    public static let putObject = "put_object"
    public static let getObject = "get_object"
    public static let deleteObject = "delete_object"
    public static let putObjectVersioned = "put_object_versioned"
    public static let getObjectAndVersion = "get_object_and_version"
    public static let getMonAddrs = "get_mon_addrs"
    public static let recover = "recover"
    public static let serverInfo = "server_info"
}

/// The version of the wire contract (protocol/openrpc.json).
public enum ProtocolVersion {
    public static let current = "1.0.0"
}
