import JSONValue

// The contract, one type per method (protocol/openrpc.json is its
// description; Tests/VolumeProtocolTests/RegistryTests.swift compares them).
// Every param's wire name is written here and nowhere else.

/// The params shared by several methods.
extension ParamSpec {
    public static let volumePath = ParamSpec("volume_path", .volumePath, required: true)
    public static let groupID = ParamSpec(VolumeRef.groupIDMember, .groupID, required: true)
    public static let authID = ParamSpec("auth_id", .identifier, required: true)
    public static let snapshotName = ParamSpec("snapshot_name", .identifier, required: true)
    public static let mode = ParamSpec("mode", .integer(min: 0, max: 0o7777), default: .int(0o755))
    public static let dataIsolated = ParamSpec("data_isolated", .boolean, default: false)
    public static let poolName = ParamSpec("pool_name", .nonEmptyString, required: true)
    public static let objectName = ParamSpec("object_name", .nonEmptyString, required: true)
    public static let data = ParamSpec("data", .base64, required: true)
    static let byteCount = ParamType.nullable(.integer(min: 0, max: Int64.max))
}

extension VolumeRef {
    public static let groupIDMember = "group_id"
    public static let volumeIDMember = "volume_id"

    /// The wire form: `{"group_id": ..., "volume_id": ...}`, with both members present.
    public var json: JSONValue {
        [Self.groupIDMember: groupID.map { .string($0) } ?? .null, Self.volumeIDMember: .string(volumeID)]
    }

    /// Reads the wire form, unvalidated; nil when it is not one.
    package init?(wire: JSONValue) {
        guard let o = wire.objectValue, let v = o[Self.volumeIDMember]?.stringValue else { return nil }
        let g = o[Self.groupIDMember] ?? .null
        if g.isNull {
            self.init(unchecked: nil, volumeID: v)
        } else if let s = g.stringValue {
            self.init(unchecked: s, volumeID: v)
        } else {
            return nil
        }
    }
}

extension ValidatedIdentifier {
    public var json: JSONValue { .string(rawValue) }
}

extension Optional where Wrapped == String {
    var json: JSONValue { map { .string($0) } ?? .null }
}

enum Decode {
    static func bad(_ what: String, _ value: JSONValue) -> InvalidResult {
        InvalidResult("expected \(what), got \(value.typeName)")
    }

    static func string(_ v: JSONValue) throws(InvalidResult) -> String {
        guard let s = v.stringValue else { throw bad("a string", v) }
        return s
    }

    static func base64(_ v: JSONValue) throws(InvalidResult) -> [UInt8] {
        guard let s = v.stringValue else { throw bad("a base64 string", v) }
        guard let data = Base64.decode(s) else { throw InvalidResult("the data is not valid base64") }
        return data
    }
}

// MARK: Results

/// What `server_info` reports about the daemon.
public struct ServerInfo: Sendable, Equatable {
    /// The daemon's version.
    public var version: String
    /// The wire contract's version (`ProtocolVersion.current` of the daemon).
    public var protocolVersion: String
    /// The Ceph cluster's fsid.
    public var fsid: String
    /// The daemon's instance name.
    public var instance: String
    /// Seconds since the daemon started.
    public var uptimeSeconds: Double
    /// Client connections open now, this one included.
    public var connections: Int
    /// Requests being handled now, this one included.
    public var inFlight: Int

    public init(
        version: String, protocolVersion: String, fsid: String, instance: String,
        uptimeSeconds: Double, connections: Int, inFlight: Int
    ) {
        self.version = version
        self.protocolVersion = protocolVersion
        self.fsid = fsid
        self.instance = instance
        self.uptimeSeconds = uptimeSeconds
        self.connections = connections
        self.inFlight = inFlight
    }
}

/// An auth ID authorised on a volume, with its access level.
public struct AuthorizedID: Sendable, Hashable, CustomStringConvertible {
    public var authID: String
    /// `"rw"` or `"r"`.
    public var accessLevel: String

    public init(authID: String, accessLevel: String) {
        self.authID = authID
        self.accessLevel = accessLevel
    }

    /// `alice rw`.
    public var description: String { "\(authID) \(accessLevel)" }
}

/// An object's data and its RADOS version.
public struct ObjectAndVersion: Sendable, Equatable {
    public var data: [UInt8]
    public var version: UInt64

    public init(data: [UInt8], version: UInt64) {
        self.data = data
        self.version = version
    }
}

// MARK: Service

public struct PingRequest: RPCMethod {
    public typealias Result = String
    public static let name = "ping"
    public static let inline = true
    public static let params: [ParamSpec] = []
    public static let resultSchema: JSONValue = ["const": "pong", "type": "string"]

    public init() {}
    public init(params p: Params) throws(RPCError) { try Self.allowOnlyKnown(p) }
    public var encodedParams: [String: JSONValue] { [:] }
    public static func encodeResult(_ result: String) -> JSONValue { .string(result) }
    public static func decodeResult(_ value: JSONValue) throws(InvalidResult) -> String { try Decode.string(value) }
}

public struct ServerInfoRequest: RPCMethod {
    public typealias Result = ServerInfo
    public static let name = "server_info"
    public static let backend = Backend.local
    public static let params: [ParamSpec] = []
    static let members = (
        version: "version", protocolVersion: "protocol_version", fsid: "fsid", instance: "instance",
        uptime: "uptime_seconds", connections: "connections", inFlight: "in_flight"
    )
    public static let resultSchema: JSONValue = [
        "type": "object",
        "properties": [
            "version": ["type": "string"], "protocol_version": ["type": "string"], "fsid": ["type": "string"],
            "uptime_seconds": ["type": "number", "minimum": 0], "connections": ["type": "integer", "minimum": 0],
            "in_flight": ["type": "integer", "minimum": 0], "instance": ["type": "string"],
        ],
        "required": ["version", "protocol_version", "fsid", "uptime_seconds", "connections", "in_flight", "instance"],
        "additionalProperties": false,
    ]

    public init() {}
    public init(params p: Params) throws(RPCError) { try Self.allowOnlyKnown(p) }
    public var encodedParams: [String: JSONValue] { [:] }

    public static func encodeResult(_ r: ServerInfo) -> JSONValue {
        let m = members
        return [
            m.version: .string(r.version),
            m.protocolVersion: .string(r.protocolVersion),
            m.fsid: .string(r.fsid),
            m.instance: .string(r.instance),
            m.uptime: .number(JSONNumber((r.uptimeSeconds * 1000).rounded() / 1000)),
            m.connections: .int(r.connections),
            m.inFlight: .int(r.inFlight),
        ]
    }

    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> ServerInfo {
        guard v.objectValue != nil else { throw Decode.bad("an object", v) }
        func str(_ k: String) throws(InvalidResult) -> String {
            guard let s = v[k]?.stringValue else { throw InvalidResult("server_info: '\(k)' is not a string") }
            return s
        }
        func int(_ k: String) throws(InvalidResult) -> Int {
            guard let i = v[k]?.int64Value, let n = Int(exactly: i) else {
                throw InvalidResult("server_info: '\(k)' is not an integer")
            }
            return n
        }
        let m = members
        guard case .number(let up)? = v[m.uptime], let uptime = up.doubleValue else {
            throw InvalidResult("server_info: '\(m.uptime)' is not a number")
        }
        return ServerInfo(
            version: try str(m.version), protocolVersion: try str(m.protocolVersion), fsid: try str(m.fsid),
            instance: try str(m.instance), uptimeSeconds: uptime, connections: try int(m.connections),
            inFlight: try int(m.inFlight))
    }
}

public struct GetMonAddrsRequest: RPCMethod {
    public typealias Result = [String]
    public static let name = "get_mon_addrs"
    public static let backend = Backend.mon
    public static let params: [ParamSpec] = []
    public static let resultSchema: JSONValue = ["type": "array", "items": ["type": "string", "minLength": 1]]

    public init() {}
    public init(params p: Params) throws(RPCError) { try Self.allowOnlyKnown(p) }
    public var encodedParams: [String: JSONValue] { [:] }
    public static func encodeResult(_ r: [String]) -> JSONValue { .array(r.map { .string($0) }) }
    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> [String] {
        guard let a = v.arrayValue else { throw Decode.bad("an array of strings", v) }
        var out: [String] = []
        for e in a {
            guard let s = e.stringValue else { throw Decode.bad("an array of strings", e) }
            out.append(s)
        }
        return out
    }
}

public struct RecoverRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "recover"
    public static let mutating = true
    public static let params: [ParamSpec] = []

    public init() {}
    public init(params p: Params) throws(RPCError) { try Self.allowOnlyKnown(p) }
    public var encodedParams: [String: JSONValue] { [:] }
}

// MARK: Groups

public struct CreateGroupRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "create_group"
    public static let mutating = true
    public static let params: [ParamSpec] = [.groupID, .mode]
    public static let keySpecs: [KeySpec] = [.group(.groupID)]

    public var groupID: GroupID
    public var mode: UInt32

    public init(groupID: GroupID, mode: UInt32) {
        self.groupID = groupID
        self.mode = mode
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        groupID = try p.identifier(.groupID)
        mode = UInt32(try p.int(.mode))
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.groupID.name: groupID.json, ParamSpec.mode.name: .int(mode)]
    }
}

public struct DestroyGroupRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "destroy_group"
    public static let mutating = true
    public static let params: [ParamSpec] = [.groupID]
    public static let keySpecs: [KeySpec] = [.group(.groupID)]

    public var groupID: GroupID

    public init(groupID: GroupID) { self.groupID = groupID }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        groupID = try p.identifier(.groupID)
    }

    public var encodedParams: [String: JSONValue] { [ParamSpec.groupID.name: groupID.json] }
}

// MARK: Volumes

public struct CreateVolumeRequest: RPCMethod {
    public typealias Result = String
    public static let name = "create_volume"
    public static let mutating = true
    static let size = ParamSpec("size", ParamSpec.byteCount, default: .null)
    static let namespaceIsolated = ParamSpec("namespace_isolated", .boolean, default: true)
    static let mountPath = "mount_path"
    public static let params: [ParamSpec] = [.volumePath, size, .dataIsolated, namespaceIsolated, .mode]
    /// Create, delete and purge also own the volume_id, which names the trash
    /// entry, the pool and the namespace in every group.
    public static let keySpecs: [KeySpec] = [.volume(.volumePath), .volumeID(.volumePath)]
    public static let resultSchema: JSONValue = [
        "type": "object", "properties": [.init(mountPath): ["type": "string", "minLength": 1]],
        "required": [.string(mountPath)], "additionalProperties": false,
    ]

    public var volume: VolumeRef
    public var size: Int64?
    public var dataIsolated: Bool
    public var namespaceIsolated: Bool
    public var mode: UInt32

    public init(volume: VolumeRef, size: Int64?, dataIsolated: Bool, namespaceIsolated: Bool, mode: UInt32) {
        self.volume = volume
        self.size = size
        self.dataIsolated = dataIsolated
        self.namespaceIsolated = namespaceIsolated
        self.mode = mode
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
        size = try p.optionalInt(Self.size)
        dataIsolated = try p.bool(.dataIsolated)
        namespaceIsolated = try p.bool(Self.namespaceIsolated)
        mode = UInt32(try p.int(.mode))
    }

    public var encodedParams: [String: JSONValue] {
        [
            ParamSpec.volumePath.name: volume.json, Self.size.name: size.map { .int($0) } ?? .null,
            ParamSpec.dataIsolated.name: .bool(dataIsolated), Self.namespaceIsolated.name: .bool(namespaceIsolated),
            ParamSpec.mode.name: .int(mode),
        ]
    }

    public static func encodeResult(_ path: String) -> JSONValue { [mountPath: .string(path)] }
    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> String {
        guard let p = v[mountPath]?.stringValue else { throw InvalidResult("\(name): no '\(mountPath)' string") }
        return p
    }
}

/// delete_volume and purge_volume: a volume and whether it has its own pool.
public protocol VolumeRemovalRequest: RPCMethod where Result == Void {
    var volume: VolumeRef { get }
    var dataIsolated: Bool { get }
    init(volume: VolumeRef, dataIsolated: Bool)
}

extension VolumeRemovalRequest {
    public static var mutating: Bool { true }
    public static var params: [ParamSpec] { [.volumePath, .dataIsolated] }
    public static var keySpecs: [KeySpec] { [.volume(.volumePath), .volumeID(.volumePath)] }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        self.init(volume: try p.volumeRef(.volumePath), dataIsolated: try p.bool(.dataIsolated))
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.volumePath.name: volume.json, ParamSpec.dataIsolated.name: .bool(dataIsolated)]
    }
}

public struct DeleteVolumeRequest: VolumeRemovalRequest {
    public typealias Result = Void
    public static let name = "delete_volume"
    public var volume: VolumeRef
    public var dataIsolated: Bool
    public init(volume: VolumeRef, dataIsolated: Bool) {
        self.volume = volume
        self.dataIsolated = dataIsolated
    }
}

public struct PurgeVolumeRequest: VolumeRemovalRequest {
    public typealias Result = Void
    public static let name = "purge_volume"
    public var volume: VolumeRef
    public var dataIsolated: Bool
    public init(volume: VolumeRef, dataIsolated: Bool) {
        self.volume = volume
        self.dataIsolated = dataIsolated
    }
}

public struct GetUsedBytesRequest: RPCMethod {
    public typealias Result = Int64
    public static let name = "get_used_bytes"
    public static let params: [ParamSpec] = [.volumePath]
    public static let resultSchema: JSONValue = ["type": "integer", "minimum": 0]

    public var volume: VolumeRef

    public init(volume: VolumeRef) { self.volume = volume }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
    }

    public var encodedParams: [String: JSONValue] { [ParamSpec.volumePath.name: volume.json] }
    public static func encodeResult(_ n: Int64) -> JSONValue { .int(n) }
    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> Int64 {
        guard let n = v.int64Value, n >= 0 else { throw Decode.bad("a non-negative integer", v) }
        return n
    }
}

public struct SetMaxBytesRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "set_max_bytes"
    public static let mutating = true
    /// Required: null (no quota) is said explicitly.
    static let maxBytes = ParamSpec("max_bytes", ParamSpec.byteCount, required: true)
    public static let params: [ParamSpec] = [.volumePath, maxBytes]
    public static let keySpecs: [KeySpec] = [.volume(.volumePath)]

    public var volume: VolumeRef
    public var maxBytes: Int64?

    public init(volume: VolumeRef, maxBytes: Int64?) {
        self.volume = volume
        self.maxBytes = maxBytes
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
        guard p.members[Self.maxBytes.name] != nil else { throw RPCError.invalidParams("missing parameter '\(Self.maxBytes.name)'") }
        maxBytes = try p.optionalInt(Self.maxBytes)
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.volumePath.name: volume.json, Self.maxBytes.name: maxBytes.map { .int($0) } ?? .null]
    }
}

// MARK: Authorization

public struct AuthorizeRequest: RPCMethod {
    public typealias Result = String?
    public static let name = "authorize"
    public static let mutating = true
    static let readonly = ParamSpec("readonly", .boolean, default: false)
    static let tenantID = ParamSpec("tenant_id", .nullable(.identifier), default: .null)
    static let allowExistingID = ParamSpec("allow_existing_id", .boolean, default: false)
    static let authKey = "auth_key"
    public static let params: [ParamSpec] = [.volumePath, .authID, readonly, tenantID, allowExistingID]
    public static let keySpecs: [KeySpec] = [.auth(.authID), .volume(.volumePath)]
    public static let resultSchema: JSONValue = [
        "type": "object", "properties": [.init(authKey): ["type": ["string", "null"]]],
        "required": [.string(authKey)], "additionalProperties": false,
    ]

    public var volume: VolumeRef
    public var authID: AuthID
    public var readonly: Bool
    public var tenantID: TenantID?
    public var allowExistingID: Bool

    public init(volume: VolumeRef, authID: AuthID, readonly: Bool, tenantID: TenantID?, allowExistingID: Bool) {
        self.volume = volume
        self.authID = authID
        self.readonly = readonly
        self.tenantID = tenantID
        self.allowExistingID = allowExistingID
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
        authID = try p.identifier(.authID)
        readonly = try p.bool(Self.readonly)
        tenantID = try p.optionalIdentifier(Self.tenantID)
        allowExistingID = try p.bool(Self.allowExistingID)
    }

    public var encodedParams: [String: JSONValue] {
        [
            ParamSpec.volumePath.name: volume.json, ParamSpec.authID.name: authID.json,
            Self.readonly.name: .bool(readonly), Self.tenantID.name: tenantID?.json ?? .null,
            Self.allowExistingID.name: .bool(allowExistingID),
        ]
    }

    public static func encodeResult(_ key: String?) -> JSONValue { [authKey: key.json] }
    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> String? {
        guard let k = v[authKey] else { throw InvalidResult("\(name): no '\(authKey)' member") }
        if k.isNull { return nil }
        guard let s = k.stringValue else { throw InvalidResult("\(name): '\(authKey)' is \(k.typeName)") }
        return s
    }
}

public struct DeauthorizeRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "deauthorize"
    public static let mutating = true
    public static let params: [ParamSpec] = [.volumePath, .authID]
    public static let keySpecs: [KeySpec] = [.auth(.authID), .volume(.volumePath)]

    public var volume: VolumeRef
    public var authID: AuthID

    public init(volume: VolumeRef, authID: AuthID) {
        self.volume = volume
        self.authID = authID
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
        authID = try p.identifier(.authID)
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.volumePath.name: volume.json, ParamSpec.authID.name: authID.json]
    }
}

public struct GetAuthorizedIDsRequest: RPCMethod {
    /// nil when the volume has no auth metadata at all.
    public typealias Result = [AuthorizedID]?
    public static let name = "get_authorized_ids"
    public static let params: [ParamSpec] = [.volumePath]
    public static let resultSchema: JSONValue = [
        "anyOf": [["type": "array", "items": ParamType.ref("AuthorizedId")], ["type": "null"]]
    ]

    public var volume: VolumeRef

    public init(volume: VolumeRef) { self.volume = volume }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
    }

    public var encodedParams: [String: JSONValue] { [ParamSpec.volumePath.name: volume.json] }

    public static func encodeResult(_ ids: [AuthorizedID]?) -> JSONValue {
        guard let ids else { return .null }
        return .array(ids.map { [.string($0.authID), .string($0.accessLevel)] })
    }

    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> [AuthorizedID]? {
        if v.isNull { return nil }
        guard let a = v.arrayValue else { throw Decode.bad("an array of [auth_id, access_level] pairs or null", v) }
        var out: [AuthorizedID] = []
        for pair in a {
            guard let p = pair.arrayValue, p.count == 2, let id = p[0].stringValue, let level = p[1].stringValue else {
                throw InvalidResult("\(name): an entry is not an [auth_id, access_level] pair")
            }
            out.append(AuthorizedID(authID: id, accessLevel: level))
        }
        return out
    }
}

public struct EvictRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "evict"
    public static let mutating = true
    static let volumePath = ParamSpec(ParamSpec.volumePath.name, .nullable(.volumePath), default: .null)
    static let timeout = ParamSpec("timeout", .number(min: 0, max: 86_400), default: 30)
    public static let params: [ParamSpec] = [.authID, volumePath, timeout]
    public static let keySpecs: [KeySpec] = [.auth(.authID)]

    public var authID: AuthID
    public var volume: VolumeRef?
    public var timeout: Double

    public init(authID: AuthID, volume: VolumeRef?, timeout: Double) {
        self.authID = authID
        self.volume = volume
        self.timeout = timeout
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        authID = try p.identifier(.authID)
        volume = try p.optionalVolumeRef(Self.volumePath)
        timeout = try p.seconds(Self.timeout)
    }

    public var encodedParams: [String: JSONValue] {
        [
            ParamSpec.authID.name: authID.json, Self.volumePath.name: volume?.json ?? .null,
            Self.timeout.name: .number(JSONNumber(timeout)),
        ]
    }

    /// It may wait `timeout` for the MDS on purpose: that is not the cluster hanging.
    public var extraTime: Double { timeout }
    public static let hasOwnTimeout = true
}

// MARK: Snapshots and clones

public struct CreateSnapshotVolumeRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "create_snapshot_volume"
    public static let mutating = true
    public static let params: [ParamSpec] = [.volumePath, .snapshotName, .mode]
    public static let keySpecs: [KeySpec] = [.volume(.volumePath)]

    public var volume: VolumeRef
    public var snapshotName: SnapshotName
    public var mode: UInt32

    public init(volume: VolumeRef, snapshotName: SnapshotName, mode: UInt32) {
        self.volume = volume
        self.snapshotName = snapshotName
        self.mode = mode
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
        snapshotName = try p.identifier(.snapshotName)
        mode = UInt32(try p.int(.mode))
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.volumePath.name: volume.json, ParamSpec.snapshotName.name: snapshotName.json, ParamSpec.mode.name: .int(mode)]
    }
}

public struct DestroySnapshotVolumeRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "destroy_snapshot_volume"
    public static let mutating = true
    public static let params: [ParamSpec] = [.volumePath, .snapshotName]
    public static let keySpecs: [KeySpec] = [.volume(.volumePath)]

    public var volume: VolumeRef
    public var snapshotName: SnapshotName

    public init(volume: VolumeRef, snapshotName: SnapshotName) {
        self.volume = volume
        self.snapshotName = snapshotName
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        volume = try p.volumeRef(.volumePath)
        snapshotName = try p.identifier(.snapshotName)
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.volumePath.name: volume.json, ParamSpec.snapshotName.name: snapshotName.json]
    }
}

public struct CreateSnapshotGroupRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "create_snapshot_group"
    public static let mutating = true
    public static let params: [ParamSpec] = [.groupID, .snapshotName, .mode]
    public static let keySpecs: [KeySpec] = [.group(.groupID)]

    public var groupID: GroupID
    public var snapshotName: SnapshotName
    public var mode: UInt32

    public init(groupID: GroupID, snapshotName: SnapshotName, mode: UInt32) {
        self.groupID = groupID
        self.snapshotName = snapshotName
        self.mode = mode
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        groupID = try p.identifier(.groupID)
        snapshotName = try p.identifier(.snapshotName)
        mode = UInt32(try p.int(.mode))
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.groupID.name: groupID.json, ParamSpec.snapshotName.name: snapshotName.json, ParamSpec.mode.name: .int(mode)]
    }
}

public struct DestroySnapshotGroupRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "destroy_snapshot_group"
    public static let mutating = true
    public static let params: [ParamSpec] = [.groupID, .snapshotName]
    public static let keySpecs: [KeySpec] = [.group(.groupID)]

    public var groupID: GroupID
    public var snapshotName: SnapshotName

    public init(groupID: GroupID, snapshotName: SnapshotName) {
        self.groupID = groupID
        self.snapshotName = snapshotName
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        groupID = try p.identifier(.groupID)
        snapshotName = try p.identifier(.snapshotName)
    }

    public var encodedParams: [String: JSONValue] {
        [ParamSpec.groupID.name: groupID.json, ParamSpec.snapshotName.name: snapshotName.json]
    }
}

public struct CloneVolumeToExistingRequest: RPCMethod {
    public typealias Result = Void
    public static let name = "clone_volume_to_existing"
    public static let mutating = true
    static let destination = ParamSpec("dest_volume_path", .volumePath, required: true)
    static let source = ParamSpec("src_volume_path", .volumePath, required: true)
    static let snapshotName = ParamSpec("src_snapshot_name", .identifier, required: true)
    public static let params: [ParamSpec] = [destination, source, snapshotName]
    public static let keySpecs: [KeySpec] = [.volume(destination), .volume(source)]

    public var destination: VolumeRef
    public var source: VolumeRef
    public var snapshotName: SnapshotName

    public init(destination: VolumeRef, source: VolumeRef, snapshotName: SnapshotName) {
        self.destination = destination
        self.source = source
        self.snapshotName = snapshotName
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        destination = try p.volumeRef(Self.destination)
        source = try p.volumeRef(Self.source)
        snapshotName = try p.identifier(Self.snapshotName)
    }

    public var encodedParams: [String: JSONValue] {
        [Self.destination.name: destination.json, Self.source.name: source.json, Self.snapshotName.name: snapshotName.json]
    }
}

// MARK: RADOS objects

/// The methods on one RADOS object, named by pool and object name.
public protocol ObjectRequest: RPCMethod {
    var pool: String { get }
    var object: String { get }
}

extension ObjectRequest {
    public static var backend: Backend { .osd }
    static var objectParams: [ParamSpec] { [.poolName, .objectName] }

    /// Both names read, then both checked, as the server always has.
    static func objectNames(_ p: Params) throws(RPCError) -> (pool: String, object: String) {
        let pool = try p.string(ParamSpec.poolName.name)
        let object = try p.string(ParamSpec.objectName.name)
        try Params.requireNonEmpty(pool, .poolName)
        try Params.requireNonEmpty(object, .objectName)
        // librados takes C strings: a name with NUL would stand for its prefix.
        for (value, spec) in [(pool, ParamSpec.poolName), (object, .objectName)] where value.utf8.contains(0) {
            throw .invalidParams("invalid \(spec.name): must not contain NUL")
        }
        return (pool, object)
    }

    var objectParams: [String: JSONValue] { [ParamSpec.poolName.name: .string(pool), ParamSpec.objectName.name: .string(object)] }
}

public struct PutObjectRequest: ObjectRequest {
    public typealias Result = Void
    public static let name = "put_object"
    public static let mutating = true
    public static let params: [ParamSpec] = objectParams + [.data]
    public static let keySpecs: [KeySpec] = [.pool(.poolName)]

    public var pool: String
    public var object: String
    public var data: [UInt8]

    public init(pool: String, object: String, data: [UInt8]) {
        self.pool = pool
        self.object = object
        self.data = data
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        (pool, object) = try Self.objectNames(p)
        data = try p.base64(.data)
    }

    public var encodedParams: [String: JSONValue] {
        objectParams.merging([ParamSpec.data.name: .string(Base64.encode(data))]) { a, _ in a }
    }
}

public struct PutObjectVersionedRequest: ObjectRequest {
    public typealias Result = Void
    public static let name = "put_object_versioned"
    public static let mutating = true
    static let version = ParamSpec("version", ParamSpec.byteCount, default: .null)
    public static let params: [ParamSpec] = objectParams + [.data, version]
    public static let keySpecs: [KeySpec] = [.pool(.poolName)]

    public var pool: String
    public var object: String
    public var data: [UInt8]
    public var version: UInt64?

    public init(pool: String, object: String, data: [UInt8], version: UInt64?) {
        self.pool = pool
        self.object = object
        self.data = data
        self.version = version
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        (pool, object) = try Self.objectNames(p)
        data = try p.base64(.data)
        version = try p.optionalInt(Self.version).map { UInt64($0) }
    }

    public var encodedParams: [String: JSONValue] {
        objectParams.merging([
            ParamSpec.data.name: .string(Base64.encode(data)), Self.version.name: version.map { .int($0) } ?? .null,
        ]) { a, _ in a }
    }
}

public struct GetObjectRequest: ObjectRequest {
    public typealias Result = [UInt8]
    public static let name = "get_object"
    public static let params: [ParamSpec] = objectParams
    public static let resultSchema: JSONValue = ParamType.ref("Base64")

    public var pool: String
    public var object: String

    public init(pool: String, object: String) {
        self.pool = pool
        self.object = object
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        (pool, object) = try Self.objectNames(p)
    }

    public var encodedParams: [String: JSONValue] { objectParams }
    public static func encodeResult(_ data: [UInt8]) -> JSONValue { .string(Base64.encode(data)) }
    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> [UInt8] { try Decode.base64(v) }
}

public struct GetObjectAndVersionRequest: ObjectRequest {
    public typealias Result = ObjectAndVersion
    public static let name = "get_object_and_version"
    public static let params: [ParamSpec] = objectParams
    static let members = (data: "data", version: "version")
    public static let resultSchema: JSONValue = [
        "type": "object",
        "properties": ["data": ParamType.ref("Base64"), "version": ["type": "integer", "minimum": 0]],
        "required": ["data", "version"], "additionalProperties": false,
    ]

    public var pool: String
    public var object: String

    public init(pool: String, object: String) {
        self.pool = pool
        self.object = object
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        (pool, object) = try Self.objectNames(p)
    }

    public var encodedParams: [String: JSONValue] { objectParams }

    public static func encodeResult(_ r: ObjectAndVersion) -> JSONValue {
        [members.data: .string(Base64.encode(r.data)), members.version: .int(r.version)]
    }

    public static func decodeResult(_ v: JSONValue) throws(InvalidResult) -> ObjectAndVersion {
        guard v.objectValue != nil, let d = v[members.data] else { throw Decode.bad("an object with data and version", v) }
        guard case .number(let n)? = v[members.version], let version = UInt64(n.text) else {
            throw InvalidResult("\(name): '\(members.version)' is not a non-negative integer")
        }
        return ObjectAndVersion(data: try Decode.base64(d), version: version)
    }
}

public struct DeleteObjectRequest: ObjectRequest {
    public typealias Result = Void
    public static let name = "delete_object"
    public static let mutating = true
    public static let params: [ParamSpec] = objectParams
    public static let keySpecs: [KeySpec] = [.pool(.poolName)]

    public var pool: String
    public var object: String

    public init(pool: String, object: String) {
        self.pool = pool
        self.object = object
    }

    public init(params p: Params) throws(RPCError) {
        try Self.allowOnlyKnown(p)
        (pool, object) = try Self.objectNames(p)
    }

    public var encodedParams: [String: JSONValue] { objectParams }
}

// MARK: Registry

/// Every method of the contract, in the order of protocol/openrpc.json.
public enum MethodRegistry {
    public static let all: [any RPCMethod.Type] = [
        PingRequest.self, CreateGroupRequest.self, DestroyGroupRequest.self, CreateVolumeRequest.self,
        DeleteVolumeRequest.self, PurgeVolumeRequest.self, AuthorizeRequest.self, DeauthorizeRequest.self,
        GetAuthorizedIDsRequest.self, EvictRequest.self, GetUsedBytesRequest.self, SetMaxBytesRequest.self,
        CreateSnapshotVolumeRequest.self, DestroySnapshotVolumeRequest.self, CreateSnapshotGroupRequest.self,
        DestroySnapshotGroupRequest.self, CloneVolumeToExistingRequest.self, PutObjectRequest.self,
        GetObjectRequest.self, DeleteObjectRequest.self, PutObjectVersionedRequest.self,
        GetObjectAndVersionRequest.self, GetMonAddrsRequest.self, RecoverRequest.self, ServerInfoRequest.self,
    ]
}

/// The methods the server answers, by their wire names.
public enum Method {
    public static let ping = PingRequest.name
    public static let createGroup = CreateGroupRequest.name
    public static let destroyGroup = DestroyGroupRequest.name
    public static let createVolume = CreateVolumeRequest.name
    public static let deleteVolume = DeleteVolumeRequest.name
    public static let purgeVolume = PurgeVolumeRequest.name
    public static let authorize = AuthorizeRequest.name
    public static let deauthorize = DeauthorizeRequest.name
    public static let getAuthorizedIDs = GetAuthorizedIDsRequest.name
    public static let evict = EvictRequest.name
    public static let getUsedBytes = GetUsedBytesRequest.name
    public static let setMaxBytes = SetMaxBytesRequest.name
    public static let createSnapshotVolume = CreateSnapshotVolumeRequest.name
    public static let destroySnapshotVolume = DestroySnapshotVolumeRequest.name
    public static let createSnapshotGroup = CreateSnapshotGroupRequest.name
    public static let destroySnapshotGroup = DestroySnapshotGroupRequest.name
    public static let cloneVolumeToExisting = CloneVolumeToExistingRequest.name
    public static let putObject = PutObjectRequest.name
    public static let getObject = GetObjectRequest.name
    public static let deleteObject = DeleteObjectRequest.name
    public static let putObjectVersioned = PutObjectVersionedRequest.name
    public static let getObjectAndVersion = GetObjectAndVersionRequest.name
    public static let getMonAddrs = GetMonAddrsRequest.name
    public static let recover = RecoverRequest.name
    public static let serverInfo = ServerInfoRequest.name
}

/// The version of the wire contract (protocol/openrpc.json).
public enum ProtocolVersion {
    public static let current = "1.0.0"
}
