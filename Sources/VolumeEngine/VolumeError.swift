import Ceph

/// A failure the engine itself decided on, mirroring the seed's exception classes.
public struct VolumeError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case volumeClientError = "VolumeClientError"
        case objectNotFound = "ObjectNotFound"
        case clusterError = "ClusterError"
        case clusterTimeout = "ClusterTimeout"
        case evictionError = "EvictionError"
        case `internal` = "Internal"
    }

    public let kind: Kind
    public let message: String
    public let errno: Errno?

    public init(_ kind: Kind, _ message: String, errno: Errno? = nil) {
        self.kind = kind
        self.message = message
        self.errno = errno
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

extension VolumeError {
    /// A Ceph failure seen by the engine, typed as the server maps raw Ceph errors.
    init(cephError e: CephError) {
        let kind: Kind = switch e.errno {
        case .ETIMEDOUT: .clusterTimeout
        case .ENOENT: .objectNotFound
        default: .clusterError
        }
        self.init(kind, e.description, errno: e.errno)
    }
}
