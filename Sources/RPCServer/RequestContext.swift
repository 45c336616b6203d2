/// Who sent a request, for logging and access decisions.
package struct RequestContext: Sendable {
    package let peer: PeerCredentials?
    package let connectionID: UInt64

    package init(peer: PeerCredentials?, connectionID: UInt64) {
        self.peer = peer
        self.connectionID = connectionID
    }
}
