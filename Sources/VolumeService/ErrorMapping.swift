import Ceph
import VolumeEngine
import VolumeProtocol

/// The one place where failures become wire errors.
package enum ErrorMapping {
    package static func rpcError(_ error: any Error) -> RPCError {
        switch error {
        case let e as RPCError:
            return e
        case let e as InvalidIdentifier:
            return .invalidParams(e.description)
        default:
            // The engine's kind is the wire's `data.type`; Ceph errors raised
            // outside the engine (server_info's fsid) map the same way.
            let e = VolumeError(error)
            return .engine(e.kind, e.message, errno: e.errno?.rawValue, errnoName: e.errno?.name)
        }
    }
}
