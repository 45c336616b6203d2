/// Who sent a request, for logging and access decisions.
public struct RequestContext: Sendable {
    public let peer: PeerCredentials?
    public let connectionID: UInt64

    public init(peer: PeerCredentials?, connectionID: UInt64) {
        self.peer = peer
        self.connectionID = connectionID
    }
}
