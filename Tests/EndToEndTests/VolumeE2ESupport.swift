import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

/// A daemon and a client of it, shared by the tests of one file.
final class Volumed: Sendable {
    let daemon: WatchedDaemon
    let client: VolumeClient

    init() {
        do {
            daemon = try WatchedDaemon()
        } catch {
            fatalError("cannot start cephfs-volumed: \(error)")
        }
        client = VolumeClient(socketPath: daemon.socketPath, callTimeout: 120)
    }

    @discardableResult
    func call(_ method: String, _ params: JSONValue? = nil) async throws -> JSONValue {
        try await client.call(method, params: params)
    }

    /// The error a call fails with; records an issue and returns nil when it succeeds.
    func error(
        _ method: String, _ params: JSONValue? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async -> RPCError? {
        do {
            let result = try await client.call(method, params: params)
            Issue.record(
                "\(method) \(params.map { "\($0)" } ?? "") succeeded with \(result); expected an error", sourceLocation: sourceLocation)
            return nil
        } catch let e as RPCError {
            return e
        } catch {
            Issue.record("\(method) failed with a transport error: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Expects -32602 whose message names `field`.
    func expectInvalidParams(
        _ method: String, _ params: JSONValue?, naming field: String?, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        guard let e = await error(method, params, sourceLocation: sourceLocation) else { return }
        #expect(e.code == .invalidParams, "\(method): \(e)", sourceLocation: sourceLocation)
        if let field {
            #expect(e.message.contains(field), "\(method): message \"\(e.message)\" should name \(field)", sourceLocation: sourceLocation)
        }
    }
}

/// `{"group_id": g, "volume_id": v}`.
func vpath(_ group: String?, _ volume: String) -> JSONValue {
    ["group_id": group.map { .string($0) } ?? .null, "volume_id": .string(volume)]
}

/// A short unique name: a prefix and a random number.
func unique(_ prefix: String) -> String { TestCluster.uniqueName(prefix) }

extension JSONValue {
    static func str(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
}
