import JSONValue

/// The part of the cluster a method needs. Each runs on a thread pool of its
/// own, so calls hung on one back-end (an MDS outage hangs libcephfs calls
/// with no time limit) cannot take the threads the others need.
public enum Backend: String, Sendable, CaseIterable {
    /// The file system: the MDS, and the OSDs through libcephfs. Also calls
    /// that need the file system and the mons.
    case fs
    /// Only the mons (librados mon commands, bounded by --cluster-timeout).
    case mon
    /// Only the OSDs (librados object calls, bounded by --cluster-timeout).
    case osd
    /// Nothing remote that can hang.
    case local
}

/// A param's JSON type, as protocol/openrpc.json states it.
public indirect enum ParamType: Sendable, Hashable {
    /// `Identifier`: group_id of a snapshot, volume_id, auth_id, tenant_id, snapshot_name.
    case identifier
    /// `GroupId`: an identifier that is not "None".
    case groupID
    case volumePath
    case base64
    case nonEmptyString
    case boolean
    case integer(min: Int64, max: Int64)
    /// A JSON number (integer or fractional).
    case number(min: Int64, max: Int64)
    case nullable(ParamType)

    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    /// The JSON Schema of the param, without description or default.
    public var schema: JSONValue {
        switch self {
        case .identifier: Self.ref("Identifier")
        case .groupID: Self.ref("GroupId")
        case .volumePath: Self.ref("VolumePath")
        case .base64: Self.ref("Base64")
        case .nonEmptyString: ["type": "string", "minLength": 1]
        case .boolean: ["type": "boolean"]
        case .integer(let lo, let hi): ["type": "integer", "minimum": .int(lo), "maximum": .int(hi)]
        case .number(let lo, let hi): ["type": "number", "minimum": .int(lo), "maximum": .int(hi)]
        case .nullable(.integer(let lo, let hi)): ["type": ["integer", "null"], "minimum": .int(lo), "maximum": .int(hi)]
        case .nullable(let t): ["anyOf": [t.schema, ["type": "null"]]]
        }
    }
}

/// One param of a method: its wire name, type, requiredness and default.
public struct ParamSpec: Sendable, Hashable {
    public let name: String
    public let type: ParamType
    public let required: Bool
    /// The value an absent (or null) param stands for; nil when it has none.
    public let defaultValue: JSONValue?

    public init(_ name: String, _ type: ParamType, required: Bool = false, default defaultValue: JSONValue? = nil) {
        self.name = name
        self.type = type
        self.required = required
        self.defaultValue = defaultValue
    }
}

/// What a serialisation key is made from: the param that names it.
public enum KeySpec: Sendable, Hashable {
    case auth(ParamSpec)
    case group(ParamSpec)
    case volume(ParamSpec)
    /// The volume_id of a volume path param, across groups.
    case volumeID(ParamSpec)
    case pool(ParamSpec)

    /// The key's template, as `x-keys` in protocol/openrpc.json writes it.
    public var template: String {
        switch self {
        case .auth(let p), .group(let p), .pool(let p): "\(SerialKey.prefix(self)){\(p.name)}"
        case .volume(let p): "volume:{\(Self.member(p, VolumeRef.groupIDMember))}/{\(Self.member(p, VolumeRef.volumeIDMember))}"
        case .volumeID(let p): "volume_id:{\(Self.member(p, VolumeRef.volumeIDMember))}"
        }
    }

    /// The only volume path param named in templates without its name is `volume_path`.
    private static func member(_ p: ParamSpec, _ m: String) -> String {
        p == .volumePath ? m : "\(p.name).\(m)"
    }

    /// The key for these (validated) params; nil for an absent optional param.
    func key(from params: [String: JSONValue]) -> SerialKey? {
        switch self {
        case .auth(let p): params[p.name]?.stringValue.map { .auth(AuthID(unchecked: $0)) }
        case .group(let p): params[p.name]?.stringValue.map { .group(GroupID(unchecked: $0)) }
        case .pool(let p): params[p.name]?.stringValue.map { .pool($0) }
        case .volume(let p): params[p.name].flatMap(VolumeRef.init(wire:)).map { .volume($0) }
        case .volumeID(let p): params[p.name].flatMap(VolumeRef.init(wire:)).map { .volumeID(VolumeID(unchecked: $0.volumeID)) }
        }
    }
}

/// A serialisation key: calls holding the same key run one at a time, in order.
public enum SerialKey: Sendable, Hashable, CustomStringConvertible {
    case auth(AuthID)
    case group(GroupID)
    case volume(VolumeRef)
    case volumeID(VolumeID)
    case pool(String)

    static func prefix(_ spec: KeySpec) -> String {
        switch spec {
        case .auth: "auth:"
        case .group: "group:"
        case .volume: "volume:"
        case .volumeID: "volume_id:"
        case .pool: "pool:"
        }
    }

    /// The key's string, as the serialiser and the log show it.
    public var description: String {
        switch self {
        case .auth(let id): "auth:\(id.rawValue)"
        case .group(let g): "group:\(g.rawValue)"
        case .volume(let v): "volume:\(v.groupID ?? "")/\(v.volumeID)"
        case .volumeID(let v): "volume_id:\(v.rawValue)"
        case .pool(let p): "pool:\(p)"
        }
    }
}

/// A result that does not have the shape the method's contract says.
public struct InvalidResult: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One method of the contract: its name, params, result, whether it mutates,
/// and the serialisation keys it holds. A value is one call's params.
///
/// The server decodes a value with `init(params:)` (every identifier
/// validated there, -32602 naming the field); a client builds one with the
/// memberwise initialiser and sends `wireParams`.
public protocol RPCMethod: Sendable {
    associatedtype Result: Sendable
    static var name: String { get }
    /// Mutating calls are logged with the peer's identity.
    static var mutating: Bool { get }
    /// Inline calls never block, so the server runs them on its event loop.
    static var inline: Bool { get }
    /// The thread pool the server runs the call on.
    static var backend: Backend { get }
    static var params: [ParamSpec] { get }
    static var keySpecs: [KeySpec] { get }
    /// The result's JSON Schema, without descriptions.
    static var resultSchema: JSONValue { get }

    init(params: Params) throws(RPCError)
    /// Every param, optional ones that are nil as `null`.
    var encodedParams: [String: JSONValue] { get }
    /// Seconds the call may take on purpose, beyond the request timeout.
    var extraTime: Double { get }
    /// True when a param gives the call a time of its own (evict's
    /// `timeout`), which clients add to the time they wait.
    static var hasOwnTimeout: Bool { get }

    static func encodeResult(_ result: Result) -> JSONValue
    static func decodeResult(_ value: JSONValue) throws(InvalidResult) -> Result
}

extension RPCMethod {
    public static var mutating: Bool { false }
    public static var inline: Bool { false }
    public static var backend: Backend { .fs }
    public static var keySpecs: [KeySpec] { [] }
    public var extraTime: Double { 0 }
    public static var hasOwnTimeout: Bool { false }

    /// The params as sent: none at all for a method that takes none.
    public var wireParams: JSONValue? { Self.params.isEmpty ? nil : .object(encodedParams) }

    /// The serialisation keys of this call.
    public var keys: [SerialKey] {
        let p = encodedParams
        return Self.keySpecs.compactMap { $0.key(from: p) }
    }
}

extension RPCMethod where Result == Void {
    public static var resultSchema: JSONValue { ["type": "null"] }
    public static func encodeResult(_ result: Void) -> JSONValue { .null }
    /// The result is not looked at.
    public static func decodeResult(_ value: JSONValue) throws(InvalidResult) {}
}

extension RPCMethod {
    /// Refuses params the method does not know.
    static func allowOnlyKnown(_ p: Params) throws(RPCError) {
        try p.allowOnly(Set(params.map(\.name)))
    }
}
