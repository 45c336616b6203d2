/// Where things live, in the v6 Python client's layout:
/// volumes at `<prefix>/<group or _nogroup>/<volume>`, metadata beside them,
/// the trash at `<prefix>/_deleting`, pools `fsvolume_<vol>`, namespaces `<nsprefix><vol>`.
struct Layout: Sendable {
    static let noGroup = "_nogroup"
    static let trashName = "_deleting"
    static let poolPrefix = "fsvolume_"

    let prefix: String
    let namespacePrefix: String

    func volumePath(_ v: VolumePath) -> String { "\(prefix)/\(v.groupID ?? Self.noGroup)/\(v.volumeID)" }
    func groupPath(_ group: String) -> String { "\(prefix)/\(group)" }
    var trashPath: String { "\(prefix)/\(Self.trashName)" }
    func trashedVolumePath(_ v: VolumePath) -> String { "\(trashPath)/\(v.volumeID)" }
    func volumeMetadataPath(_ v: VolumePath) -> String { "\(prefix)/_\(v.groupID ?? ""):\(v.volumeID).meta" }
    func authMetadataPath(_ authID: String) -> String { "\(prefix)/$\(authID).meta" }
    func poolName(_ v: VolumePath) -> String { Self.poolPrefix + v.volumeID }
    func namespace(_ v: VolumePath) -> String { namespacePrefix + v.volumeID }

    /// The auth ID of an auth metadata file name (`$<id>.meta`), or nil.
    static func authID(fromFileName name: String) -> String? {
        guard name.hasPrefix("$"), name.hasSuffix(".meta"), name.count > 6 else { return nil }
        return String(name.dropFirst().dropLast(5))
    }
}
