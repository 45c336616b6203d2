import JSONValue
import VolumeProtocol

/// Names a volume: a volume ID, optionally inside a group.
///
/// On the wire it is an object of group_id (string or null) and volume_id; a nil
/// group is sent as `null`, which the daemon lays out under `_nogroup`.
///
/// ```swift
/// let inGroup = VolumePath(groupID: "tenants", volumeID: "vol1")
/// let ungrouped = VolumePath("vol2")
/// ```
public struct VolumePath: Sendable, Hashable, CustomStringConvertible {
    /// The group, or nil for a volume outside any group.
    public var groupID: String?
    /// The volume's ID, unique across groups.
    public var volumeID: String

    public init(groupID: String? = nil, volumeID: String) {
        self.groupID = groupID
        self.volumeID = volumeID
    }

    /// A volume in `group` (nil: no group).
    public init(_ volumeID: String, group: String? = nil) {
        self.init(groupID: group, volumeID: volumeID)
    }

    /// The wire form, with both members present (see VolumeRef).
    public var json: JSONValue { ref.json }

    /// Reads the wire form; nil when it is not one.
    public init?(json: JSONValue) {
        guard let r = VolumeRef(wire: json) else { return nil }
        self.init(groupID: r.groupID, volumeID: r.volumeID)
    }

    /// `group/volume`, or `volume` alone without a group.
    public var description: String {
        groupID.map { "\($0)/\(volumeID)" } ?? volumeID
    }
}
