import VolumeProtocol

// The rules live in VolumeProtocol (IdentifierRules), where params are decoded.
@_exported import struct VolumeProtocol.InvalidIdentifier

/// Validation of every name that ends up in a path, a metadata file name, a
/// cephx entity or a RADOS namespace, for the engine's own inputs (its
/// instance name, names read back from metadata): the wire's params arrive
/// validated already.
public enum Identifier {
    static let maxFileName = IdentifierRules.maxFileName
    static let metaSuffix = IdentifierRules.metaSuffix

    public static func validate(_ value: String, field: String, maxLength: Int = 249) throws(InvalidIdentifier) {
        try IdentifierRules.validate(value, field: field, maxLength: maxLength)
    }

    public static func validateAuthID(_ id: String, field: String = ParamSpec.authID.name) throws(InvalidIdentifier) {
        try IdentifierRules.validateAuthID(id, field: field)
    }

    public static func validateGroupID(_ id: String, field: String = ParamSpec.groupID.name) throws(InvalidIdentifier) {
        try IdentifierRules.validateGroupID(id, field: field)
    }
}

/// A volume, named by its group (nil for none) and its id.
public struct VolumePath: Sendable, Hashable, CustomStringConvertible {
    public let groupID: String?
    public let volumeID: String

    /// Validates both parts; `field` names the parameter in errors.
    public init(groupID: String?, volumeID: String, field: String = ParamSpec.volumePath.name) throws(InvalidIdentifier) {
        try IdentifierRules.validateVolumePath(groupID: groupID, volumeID: volumeID, field: field)
        self.groupID = groupID
        self.volumeID = volumeID
    }

    /// A volume path the protocol layer validated while decoding params.
    public init(_ ref: VolumeRef) {
        self.groupID = ref.groupID
        self.volumeID = ref.volumeID
    }

    /// The key of this volume in auth metadata, as the Python client writes it: `str(VolumePath)`.
    public var description: String { "\(groupID ?? "None")/\(volumeID)" }

    /// Parses an auth metadata key back; nil when it cannot name a volume.
    ///
    /// The Python client accepts names the API refuses today (such as a
    /// leading '_'), and its metadata must still be recoverable, so this only
    /// refuses what could escape the volume directory.
    init?(metadataKey: String) {
        let parts = metadataKey.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { return nil }
        func safe(_ s: String) -> Bool { !s.isEmpty && s != "." && s != ".." && !s.contains("\0") }
        guard safe(parts[0]), safe(parts[1]) else { return nil }
        groupID = parts[0] == "None" ? nil : parts[0]
        volumeID = parts[1]
    }
}
