import Foundation
import JSONValue
import POSIXSupport
import Testing
import VolumeClient
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The connection and the typed client against a scripted server: no daemon needed.
@Suite("RPCConnection (scripted server)")
struct RPCConnectionTests {
    @Test func aMissingSocketFailsFast() async throws {
        let path = NSTemporaryDirectory() + "no-such-\(UUID().uuidString).sock"
        let client = VolumeClient(socketPath: path, callTimeout: 600, connectTimeout: 300)
        let start = ContinuousClock.now
        do {
            try await client.ping()
            Issue.record("ping succeeded without a server")
        } catch ConnectionError.connectFailed(let p, let e) {
            #expect(p == path)
            #expect(e == .ENOENT)
        }
        // Generous: a busy test host can stall tasks for a while; waiting for the connect timeout would take 300 s.
        #expect(ContinuousClock.now - start < .seconds(100), "a missing socket must not wait for the connect timeout")
    }

    @Test func aSocketNobodyListensOnIsRefused() async throws {
        let server = try FakeServer { _ in .ignore }
        let path = server.path
        server.stop()
        // A stale socket file: bind it again without listening.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer {
            close(fd)
            unlink(path)
        }
        _ = UnixSocketAddress(path: path)!.withSockaddr { bind(fd, $0, $1) }
        let conn = RPCConnection(socketPath: path, connectTimeout: 30)
        await #expect(throws: ConnectionError.self) { try await conn.call("ping") }
        do {
            _ = try await conn.call("ping")
        } catch ConnectionError.connectFailed(_, let e) {
            #expect(e == .ECONNREFUSED)
        }
    }

    @Test func tooLongAPathIsRefused() async {
        let conn = RPCConnection(socketPath: "/tmp/" + String(repeating: "x", count: 200))
        do {
            _ = try await conn.call("ping")
            Issue.record("expected a connect failure")
        } catch ConnectionError.connectFailed(_, let e) {
            #expect(e == .ENAMETOOLONG)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func repliesInAnyOrderReachTheirCallers() async throws {
        // Answers echo the "n" param, later requests sooner.
        let server = try FakeServer { req in
            let n = req["params"]?["n"]?.int64Value ?? 0
            return .delayed(Double(50 - n % 50) / 1000, FakeServer.reply(to: req, result: ["n": .int(n)]))
        }
        let conn = RPCConnection(socketPath: server.path)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let r = try await conn.call("echo", params: ["n": .int(i)], timeout: 30)
                    #expect(r == ["n": .int(i)])
                }
            }
            try await group.waitForAll()
        }
        #expect(server.connections == 1, "one pipelined connection")
        let ids = server.requests.compactMap { $0["id"]?.int64Value }
        #expect(Set(ids).count == 200, "ids are unique")
    }

    @Test func serverErrorsAreThrownAsRPCError() async throws {
        let server = try FakeServer { req in
            .reply(
                JSONValue.object([
                    "jsonrpc": "2.0", "id": req["id"]!,
                    "error": RPCError.engine(.objectNotFound, "read p/o: No such file or directory", errno: 2, errnoName: "ENOENT").json,
                ]).description)
        }
        let client = VolumeClient(socketPath: server.path, callTimeout: 60)
        do {
            _ = try await client.getObject(pool: "p", object: "o")
            Issue.record("expected an error")
        } catch let e as RPCError {
            #expect(e.code == .engineError)
            #expect(e.engineType == .objectNotFound)
            #expect(e.errno == 2)
            #expect(e.errnoName == "ENOENT")
            #expect(e.message == "read p/o: No such file or directory")
        }
    }

    @Test func aReplyOfTheWrongShapeIsAnInvalidReply() async throws {
        let server = try FakeServer.answering { req in
            switch req["method"]?.stringValue {
            case "get_used_bytes": "lots"
            case "create_volume": ["path": "/x"]
            case "get_authorized_ids": [["alice"]]
            case "get_object": "%%% not base64"
            case "server_info": ["version": "1"]
            default: 42
            }
        }
        let client = VolumeClient(socketPath: server.path, callTimeout: 60)
        let v = VolumePath("v")
        await #expect(throws: ConnectionError.self) { _ = try await client.getUsedBytes(v) }
        await #expect(throws: ConnectionError.self) { _ = try await client.createVolume(v) }
        await #expect(throws: ConnectionError.self) { _ = try await client.getAuthorizedIDs(v) }
        await #expect(throws: ConnectionError.self) { _ = try await client.getObject(pool: "p", object: "o") }
        await #expect(throws: ConnectionError.self) { _ = try await client.serverInfo() }
        await #expect(throws: ConnectionError.self) { _ = try await client.ping() }
        await #expect(throws: ConnectionError.self) { _ = try await client.getMonAddrs() }
        do {
            _ = try await client.getUsedBytes(v)
        } catch let ConnectionError.invalidReply(why) {
            #expect(why.contains("integer"), "\(why)")
        }
    }

    @Test func aLineThatIsNotAReplyFailsTheConnectionsCalls() async throws {
        let server = try FakeServer { req in
            req["method"] == "garbage" ? .reply("this is not json") : .reply(FakeServer.reply(to: req, result: "pong"))
        }
        let conn = RPCConnection(socketPath: server.path)
        do {
            _ = try await conn.call("garbage", timeout: 30)
            Issue.record("expected an invalid reply")
        } catch let ConnectionError.invalidReply(why) {
            #expect(why.contains("not JSON"))
        }
        // The next call connects again.
        #expect(try await conn.call("ping", timeout: 30) == "pong")
        #expect(server.connections == 2)
    }

    @Test func aTimedOutCallLeavesTheConnectionUsable() async throws {
        let server = try FakeServer { req in
            req["method"] == "slow"
                ? .delayed(req["params"]?["delay"]?.int64Value.map(Double.init) ?? 1, FakeServer.reply(to: req, result: "late"))
                : .reply(FakeServer.reply(to: req, result: "pong"))
        }
        let conn = RPCConnection(socketPath: server.path)
        // The timeout fires long before the reply would come: the call ends with
        // .timedOut, not with the late "late" reply. (No wall-clock bound: on a
        // loaded 2-core host other tests can starve the resumption.)
        await #expect(throws: ConnectionError.timedOut) { _ = try await conn.call("slow", params: ["delay": 20], timeout: 0.2) }
        #expect(try await conn.call("ping", timeout: 30) == "pong")
        // A late reply is dropped, and later calls are unaffected.
        await #expect(throws: ConnectionError.timedOut) { _ = try await conn.call("slow", params: ["delay": 1], timeout: 0.1) }
        try await Task.sleep(for: .seconds(1.5))
        #expect(try await conn.call("ping", timeout: 30) == "pong")
        #expect(server.connections == 1)
    }

    @Test func cancellingACallStopsItsWait() async throws {
        let server = try FakeServer { _ in .ignore }
        let conn = RPCConnection(socketPath: server.path)
        let task = Task { try await conn.call("hang") }
        try await server.waitForRequest("hang")
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
    }

    @Test func aDroppedConnectionFailsOutstandingCallsAndTheNextCallReconnects() async throws {
        let server = try FakeServer { req in
            req["method"] == "hang" ? .ignore : .reply(FakeServer.reply(to: req, result: "pong"))
        }
        let conn = RPCConnection(socketPath: server.path)
        #expect(try await conn.call("ping", timeout: 30) == "pong")
        async let hanging: Void = {
            do {
                _ = try await conn.call("hang", timeout: 30)
                Issue.record("a call outlived its connection")
            } catch {
                if case ConnectionError.closed = error {} else { Issue.record("expected .closed, got \(error)") }
            }
        }()
        try await server.waitForRequest("hang")
        server.dropConnections()
        await hanging
        #expect(try await conn.call("ping", timeout: 30) == "pong")
        #expect(server.connections == 2)
    }

    @Test func closeFailsOutstandingCallsAndTheNextCallReconnects() async throws {
        let server = try FakeServer { req in
            req["method"] == "hang" ? .ignore : .reply(FakeServer.reply(to: req, result: "pong"))
        }
        let conn = RPCConnection(socketPath: server.path)
        async let hanging: (any Error)? = {
            do {
                _ = try await conn.call("hang", timeout: 30)
                return nil
            } catch {
                return error
            }
        }()
        try await server.waitForRequest("hang")
        conn.close()
        let error = await hanging
        if case ConnectionError.closed? = error as? ConnectionError {
        } else {
            Issue.record("expected .closed, got \(String(describing: error))")
        }
        #expect(!conn.isConnected)
        #expect(try await conn.call("ping", timeout: 30) == "pong")
        #expect(server.connections == 2)
    }

    @Test func aConnectionWideErrorFailsEveryPendingCall() async throws {
        let server = try FakeServer { req in
            req["method"] == "deny"
                ? .reply(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"access denied"}}"#)
                : .ignore
        }
        let conn = RPCConnection(socketPath: server.path)
        async let waiting: (any Error)? = {
            do {
                _ = try await conn.call("hang", timeout: 30)
                return nil
            } catch { return error }
        }()
        try await server.waitForRequest("hang")
        await #expect(throws: RPCError.self) { _ = try await conn.call("deny", timeout: 30) }
        #expect((await waiting as? RPCError)?.code == .accessDenied)
    }

    // MARK: What the typed methods send

    @Test func typedMethodsSendTheContractsParams() async throws {
        let server = try FakeServer.answering { req in
            switch req["method"]?.stringValue {
            case "create_volume": ["mount_path": "/volumes/_nogroup/v"]
            case "authorize": ["auth_key": .null]
            case "get_object_and_version": ["data": "AAE=", "version": .number(JSONNumber(UInt64.max))]
            default: .null
            }
        }
        let client = VolumeClient(socketPath: server.path, callTimeout: 60)
        let v = VolumePath("v")
        let g = VolumePath(groupID: "g", volumeID: "w")
        #expect(try await client.createVolume(v) == "/volumes/_nogroup/v")
        try await client.createVolume(g, size: 10_485_760, dataIsolated: true, namespaceIsolated: false, mode: 0o700)
        #expect(try await client.authorize(v, authID: "alice") == nil)
        try await client.authorize(g, authID: "bob", readonly: true, tenantID: "t", allowExistingID: true)
        try await client.setMaxBytes(v, maxBytes: nil)
        try await client.setMaxBytes(v, maxBytes: 5)
        try await client.evict(authID: "alice")
        try await client.evict(authID: "alice", volume: g, timeout: 2.5)
        try await client.createGroup("g")
        try await client.createSnapshotGroup("g", snapshotName: "s", mode: 0o750)
        try await client.cloneVolumeToExisting(destination: g, source: v, snapshotName: "s")
        try await client.putObject(pool: "p", object: "o", data: [0, 1])
        try await client.putObjectVersioned(pool: "p", object: "o", data: [], version: 7)
        try await client.putObjectVersioned(pool: "p", object: "o", data: [255])
        let (data, version) = try await client.getObjectAndVersion(pool: "p", object: "o")
        #expect(data == [0, 1])
        #expect(version == UInt64.max)
        try await client.recover()

        let params = server.requests.map { $0["params"] ?? .null }
        let methods = server.requests.compactMap { $0["method"]?.stringValue }
        #expect(
            methods == [
                "create_volume", "create_volume", "authorize", "authorize", "set_max_bytes", "set_max_bytes", "evict", "evict",
                "create_group", "create_snapshot_group", "clone_volume_to_existing", "put_object", "put_object_versioned",
                "put_object_versioned", "get_object_and_version", "recover",
            ])
        let nogroup: JSONValue = ["group_id": .null, "volume_id": "v"]
        let grouped: JSONValue = ["group_id": "g", "volume_id": "w"]
        let expected: [JSONValue] = [
            ["volume_path": nogroup, "size": .null, "data_isolated": false, "namespace_isolated": true, "mode": 493],
            ["volume_path": grouped, "size": 10_485_760, "data_isolated": true, "namespace_isolated": false, "mode": 448],
            ["volume_path": nogroup, "auth_id": "alice", "readonly": false, "tenant_id": .null, "allow_existing_id": false],
            ["volume_path": grouped, "auth_id": "bob", "readonly": true, "tenant_id": "t", "allow_existing_id": true],
            ["volume_path": nogroup, "max_bytes": .null],
            ["volume_path": nogroup, "max_bytes": 5],
            ["auth_id": "alice", "volume_path": .null, "timeout": 30],
            ["auth_id": "alice", "volume_path": grouped, "timeout": .number(JSONNumber(2.5))],
            ["group_id": "g", "mode": 493],
            ["group_id": "g", "snapshot_name": "s", "mode": 488],
            ["dest_volume_path": grouped, "src_volume_path": nogroup, "src_snapshot_name": "s"],
            ["pool_name": "p", "object_name": "o", "data": "AAE="],
            ["pool_name": "p", "object_name": "o", "data": "", "version": 7],
            ["pool_name": "p", "object_name": "o", "data": "/w==", "version": .null],
            ["pool_name": "p", "object_name": "o"],
            .null,
        ]
        #expect(params.count == expected.count)
        for (got, want) in zip(params, expected) {
            #expect(got == want)
        }
        // Every request is JSON-RPC 2.0 with an integer id.
        for r in server.requests {
            #expect(r["jsonrpc"] == "2.0")
            #expect(r["id"]?.int64Value != nil)
        }
    }

    @Test func evictWaitsAtLeastItsOwnTimeout() async throws {
        // A client timeout shorter than evict's own: the reply after 1.2 s still arrives.
        let server = try FakeServer { req in .delayed(1.2, FakeServer.reply(to: req, result: .null)) }
        let client = VolumeClient(socketPath: server.path, callTimeout: 0.5)
        try await client.evict(authID: "alice", timeout: 0)
        await #expect(throws: ConnectionError.timedOut) { try await client.recover() }
    }
}
