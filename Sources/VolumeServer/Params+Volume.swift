import JSONValue
import VolumeEngine
import VolumeProtocol

extension Params {
    /// A `{"group_id": string|null, "volume_id": string}` param, validated.
    func volumePath(_ name: String) throws(RPCError) -> VolumePath {
        let o = try object(name)
        try o.allowOnly(["group_id", "volume_id"])
        let group = try o.optionalString("group_id", field: "\(name).group_id")
        let volume = try o.string("volume_id", field: "\(name).volume_id")
        do {
            return try VolumePath(groupID: group, volumeID: volume, field: name)
        } catch {
            throw .invalidParams(error.description)
        }
    }

    func optionalVolumePath(_ name: String) throws(RPCError) -> VolumePath? {
        guard let v = members[name], !v.isNull else { return nil }
        return try volumePath(name)
    }

    /// A required string param that must be a valid identifier.
    func identifier(_ name: String, validate: (String) throws(InvalidIdentifier) -> Void) throws(RPCError) -> String {
        let value = try string(name)
        do {
            try validate(value)
        } catch {
            throw .invalidParams(error.description)
        }
        return value
    }

    func mode(_ name: String = "mode") throws(RPCError) -> UInt32 {
        UInt32(try optionalInt(name, in: 0...0o7777) ?? 0o755)
    }

    /// Base64 data, as binary travels on the wire.
    func base64(_ name: String) throws(RPCError) -> [UInt8] {
        guard let bytes = Base64.decode(try string(name)) else {
            throw .invalidParams("parameter '\(name)' must be base64")
        }
        return bytes
    }
}
