import Ceph
import VolumeProtocol

/// The one error the engine's public methods throw, mirroring the seed's
/// exception classes. Its kind is the wire's `data.type` itself, so there is
/// no second enum to keep in step.
public struct VolumeError: Error, Sendable, CustomStringConvertible {
    public typealias Kind = EngineErrorType

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
    /// A Ceph failure as the engine reports it: timeouts and missing objects
    /// get their own kinds, anything else is a cluster error.
    public init(cephError e: CephError) {
        let kind: Kind =
            switch e.errno {
            case .ETIMEDOUT: .clusterTimeout
            case .ENOENT: .objectNotFound
            default: .clusterError
            }
        self.init(kind, e.description, errno: e.errno)
    }

    /// Any failure inside the engine, as the one typed error: Ceph failures
    /// are mapped, VolumeErrors pass through, anything else is internal (with
    /// the message the server has always sent for it).
    public init(_ error: any Error) {
        switch error {
        case let e as VolumeError: self = e
        case let e as CephError: self.init(cephError: e)
        default: self.init(.internal, "internal error: \(error)")
        }
    }
}

/// Runs an engine entry point's body, so the public method throws only
/// `VolumeError` while its internals throw what they throw.
@inline(__always)
func engineCall<T>(_ body: () throws -> T) throws(VolumeError) -> T {
    do {
        return try body()
    } catch {
        throw VolumeError(error)
    }
}
