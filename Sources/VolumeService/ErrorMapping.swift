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
        case let e as VolumeError:
            return .engine(EngineErrorType(rawValue: e.kind.rawValue) ?? .internal, e.message, errno: e.errno?.rawValue, errnoName: e.errno?.name)
        case let e as CephError:
            return .engine(engineType(for: e), e.description, errno: e.errno.rawValue, errnoName: e.errno.name)
        default:
            return .engine(.internal, "internal error: \(error)")
        }
    }

    static func engineType(for e: CephError) -> EngineErrorType {
        switch e.errno {
        case .ETIMEDOUT: .clusterTimeout
        case .ENOENT: .objectNotFound
        default: .clusterError
        }
    }
}
