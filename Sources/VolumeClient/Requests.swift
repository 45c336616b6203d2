import JSONValue
import VolumeProtocol

@_exported import struct VolumeProtocol.AuthorizedID
// The result types live with the contract; users of this library keep them.
@_exported import struct VolumeProtocol.ServerInfo

/// A method name with its params, as the typed client and `rpc-cli` send them.
///
/// Every param is sent explicitly (optional ones that are nil as `null`,
/// which the daemon reads as the default), so what is sent never depends on
/// the daemon's defaults matching this client's.
package struct RPCCall: Sendable {
    package let method: String
    package let params: JSONValue?
    /// The least time to wait for the reply, for a call whose params give
    /// the daemon a time of its own (evict's `timeout`).
    package var minimumTimeout: Double?

    /// A call of method type `M`: the name and params come from the type.
    package init<M: RPCMethod>(_ m: M) {
        method = M.name
        params = m.wireParams
        // The daemon may take that long on purpose; wait at least that long, with a margin.
        minimumTimeout = M.hasOwnTimeout ? m.extraTime + 30 : nil
    }
}

/// The client's own values as the contract's: the client sends what it is
/// given, and the daemon validates it (-32602 naming the field).
extension VolumePath {
    package var ref: VolumeRef { VolumeRef(unchecked: groupID, volumeID: volumeID) }
}

extension ConnectionError {
    /// A result of the wrong shape.
    package init(_ e: InvalidResult) { self = .invalidReply(e.message) }
}

extension RPCMethod {
    /// Reads a result; a result of the wrong shape is ``ConnectionError/invalidReply(_:)``.
    package static func reply(_ v: JSONValue) throws(ConnectionError) -> Result {
        do {
            return try decodeResult(v)
        } catch {
            throw ConnectionError(error)
        }
    }
}
