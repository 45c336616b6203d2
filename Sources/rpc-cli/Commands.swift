import ArgumentParser
import Foundation
import JSONValue
import VolumeClient
import VolumeProtocol

// One subcommand per RPC. Each builds a call of the contract's method type,
// as the typed VolumeClient does, so the CLI and the library put the same
// params on the wire (and name them in one place: VolumeProtocol).

// MARK: Service

struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the daemon answers (prints pong).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = global.client()
        do {
            let result = try await client.perform(RPCCall(PingRequest()))
            print(global.json ? result.description : try PingRequest.reply(result))
        } catch {
            throw fail(error)
        }
    }
}

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Call any method with raw JSON params and print the JSON result.")
    @OptionGroup var global: GlobalOptions

    @Argument(help: "The method name, such as get_mon_addrs.")
    var method: String

    @Argument(help: "The params as a JSON object.")
    var params: String?

    func run() async throws {
        var parsed: JSONValue?
        if let params {
            do {
                parsed = try JSONValue.parse(params)
            } catch {
                throw ValidationError("params are not valid JSON: \(error)")
            }
        }
        let client = global.client()
        do {
            print(try await client.call(method, params: parsed))
        } catch {
            throw fail(error)
        }
    }
}

struct ServerInfoCommand: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "server-info", abstract: "Show the daemon's version, protocol version, cluster fsid and load.")
    @OptionGroup var global: GlobalOptions

    func request() -> ServerInfoRequest { ServerInfoRequest() }

    func printHuman(_ info: ServerInfo) throws {
        print(
            """
            version: \(info.version)
            protocol_version: \(info.protocolVersion)
            fsid: \(info.fsid)
            instance: \(info.instance)
            uptime_seconds: \(info.uptimeSeconds)
            connections: \(info.connections)
            in_flight: \(info.inFlight)
            """)
    }
}

struct GetMonAddrs: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "get-mon-addrs", abstract: "List the monitors' ip:port addresses, one per line.")
    @OptionGroup var global: GlobalOptions

    func request() -> GetMonAddrsRequest { GetMonAddrsRequest() }

    func printHuman(_ addrs: [String]) throws {
        for addr in addrs { print(addr) }
    }
}

struct Recover: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "recover", abstract: "Finish authorisation changes that a crash left half done.")
    @OptionGroup var global: GlobalOptions

    func request() -> RecoverRequest { RecoverRequest() }
}

// MARK: Groups

struct CreateGroup: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "create-group", abstract: "Create a volume group.")
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The group's name (group_id).", valueName: "group-id"))
    var group: String

    @Option(help: "The directory's mode, in octal.")
    var mode: OctalMode = .default

    func request() -> CreateGroupRequest { CreateGroupRequest(groupID: GroupID(unchecked: group), mode: mode.value) }
}

struct DestroyGroup: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "destroy-group", abstract: "Remove an empty volume group.")
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The group's name (group_id).", valueName: "group-id"))
    var group: String

    func request() -> DestroyGroupRequest { DestroyGroupRequest(groupID: GroupID(unchecked: group)) }
}

// MARK: Volumes

struct CreateVolume: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "create-volume", abstract: "Create a volume and print its mount path.",
        discussion: "Example: rpc-cli create-volume --group g --volume v --size 10GiB")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Option(
        help: ArgumentHelp("The quota: bytes, or with a unit (10GiB, 512M, 1.5T). Omit for no quota.", valueName: "size"),
        transform: parseSize)
    var size: Int64?

    @Flag(help: "Give the volume a RADOS pool of its own (data_isolated).")
    var dataIsolated = false

    @Flag(inversion: .prefixedNo, help: "Give the volume a RADOS namespace of its own (namespace_isolated).")
    var namespaceIsolated = true

    @Option(help: "The directory's mode, in octal.")
    var mode: OctalMode = .default

    func request() -> CreateVolumeRequest {
        CreateVolumeRequest(
            volume: volume.path, size: size, dataIsolated: dataIsolated, namespaceIsolated: namespaceIsolated, mode: mode.value)
    }

    func printHuman(_ mountPath: String) throws {
        print(mountPath)
    }
}

struct DeleteVolume: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "delete-volume", abstract: "Move a volume to the trash.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Flag(help: "The volume was created data-isolated.")
    var dataIsolated = false

    func request() -> DeleteVolumeRequest { DeleteVolumeRequest(volume: volume.path, dataIsolated: dataIsolated) }
}

struct PurgeVolume: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "purge-volume", abstract: "Remove a deleted volume's data.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Flag(help: "The volume was created data-isolated.")
    var dataIsolated = false

    func request() -> PurgeVolumeRequest { PurgeVolumeRequest(volume: volume.path, dataIsolated: dataIsolated) }
}

struct GetUsedBytes: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "get-used-bytes", abstract: "Show the bytes stored in a volume.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    func request() -> GetUsedBytesRequest { GetUsedBytesRequest(volume: volume.path) }

    func printHuman(_ n: Int64) throws {
        print("\(n) (\(ByteSize.format(n)))")
    }
}

struct SetMaxBytes: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "set-max-bytes", abstract: "Set or remove a volume's quota.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Option(
        help: ArgumentHelp("The quota: bytes, or with a unit (10GiB, 512M); none removes the quota.", valueName: "size|none"),
        transform: Quota.parse)
    var maxBytes: Quota

    func request() -> SetMaxBytesRequest { SetMaxBytesRequest(volume: volume.path, maxBytes: maxBytes.maxBytes) }
}

// MARK: Authorization

struct Authorize: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "authorize", abstract: "Let a cephx ID mount a volume; prints its key when a tenant is given.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Option(help: ArgumentHelp("The cephx ID, without client. (auth_id).", valueName: "id"))
    var authID: String

    @Flag(help: "Grant read-only access.")
    var readonly = false

    @Option(help: ArgumentHelp("The tenant owning the ID (tenant_id); with it the key is returned.", valueName: "id"))
    var tenantID: String?

    @Flag(help: "Allow an ID that exists but was not created by the volume client.")
    var allowExistingID = false

    func request() -> AuthorizeRequest {
        AuthorizeRequest(
            volume: volume.path, authID: AuthID(unchecked: authID), readonly: readonly,
            tenantID: tenantID.map { TenantID(unchecked: $0) }, allowExistingID: allowExistingID)
    }

    func printHuman(_ key: String?) throws {
        print(key ?? "authorized (no key: no tenant given)")
    }
}

struct Deauthorize: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "deauthorize", abstract: "Take a volume's access away from a cephx ID.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Option(help: ArgumentHelp("The cephx ID, without client. (auth_id).", valueName: "id"))
    var authID: String

    func request() -> DeauthorizeRequest { DeauthorizeRequest(volume: volume.path, authID: AuthID(unchecked: authID)) }
}

struct GetAuthorizedIDs: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "get-authorized-ids", abstract: "List the IDs authorised on a volume with their access level.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    func request() -> GetAuthorizedIDsRequest { GetAuthorizedIDsRequest(volume: volume.path) }

    func printHuman(_ result: [AuthorizedID]?) throws {
        let ids = result ?? []
        if ids.isEmpty { print("no authorized IDs") }
        for id in ids { print(id) }
    }
}

struct Evict: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "evict", abstract: "Evict a cephx ID's CephFS clients (of one volume, or all).")
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The cephx ID, without client. (auth_id).", valueName: "id"))
    var authID: String

    @Option(help: ArgumentHelp("The volume's group (group_id); omit for no group.", valueName: "group-id"))
    var group: String?

    @Option(help: ArgumentHelp("Only the clients of this volume (volume_id); omit for every client of the ID.", valueName: "volume-id"))
    var volume: String?

    @Option(help: ArgumentHelp("Seconds each MDS rank may take (the timeout param).", valueName: "seconds"))
    var timeoutSeconds: Double = 30

    func validate() throws {
        if group != nil && volume == nil { throw ValidationError("--group needs --volume") }
        guard timeoutSeconds >= 0, timeoutSeconds <= 86_400 else { throw ValidationError("--timeout-seconds must be in 0...86400") }
    }

    func request() -> EvictRequest {
        EvictRequest(
            authID: AuthID(unchecked: authID), volume: volume.map { VolumeRef(unchecked: group, volumeID: $0) },
            timeout: timeoutSeconds)
    }
}

// MARK: Snapshots and clones

struct CreateSnapshotVolume: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "create-snapshot-volume", abstract: "Snapshot a volume.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Option(help: ArgumentHelp("The snapshot's name (snapshot_name).", valueName: "name"))
    var snapshot: String

    @Option(help: "The snapshot's mode, in octal.")
    var mode: OctalMode = .default

    func request() -> CreateSnapshotVolumeRequest {
        CreateSnapshotVolumeRequest(volume: volume.path, snapshotName: SnapshotName(unchecked: snapshot), mode: mode.value)
    }
}

struct DestroySnapshotVolume: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "destroy-snapshot-volume", abstract: "Remove a snapshot of a volume.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var volume: VolumeOptions

    @Option(help: ArgumentHelp("The snapshot's name (snapshot_name).", valueName: "name"))
    var snapshot: String

    func request() -> DestroySnapshotVolumeRequest {
        DestroySnapshotVolumeRequest(volume: volume.path, snapshotName: SnapshotName(unchecked: snapshot))
    }
}

struct CreateSnapshotGroup: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "create-snapshot-group", abstract: "Snapshot a volume group.")
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The group's name (group_id).", valueName: "group-id"))
    var group: String

    @Option(help: ArgumentHelp("The snapshot's name (snapshot_name).", valueName: "name"))
    var snapshot: String

    @Option(help: "The snapshot's mode, in octal.")
    var mode: OctalMode = .default

    func request() -> CreateSnapshotGroupRequest {
        CreateSnapshotGroupRequest(groupID: GroupID(unchecked: group), snapshotName: SnapshotName(unchecked: snapshot), mode: mode.value)
    }
}

struct DestroySnapshotGroup: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "destroy-snapshot-group", abstract: "Remove a snapshot of a volume group.")
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The group's name (group_id).", valueName: "group-id"))
    var group: String

    @Option(help: ArgumentHelp("The snapshot's name (snapshot_name).", valueName: "name"))
    var snapshot: String

    func request() -> DestroySnapshotGroupRequest {
        DestroySnapshotGroupRequest(groupID: GroupID(unchecked: group), snapshotName: SnapshotName(unchecked: snapshot))
    }
}

struct CloneVolumeToExisting: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "clone-volume-to-existing", abstract: "Copy a snapshot of one volume into another, existing volume.")
    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The destination's group; omit for no group.", valueName: "group-id"))
    var destGroup: String?

    @Option(help: ArgumentHelp("The destination volume (dest_volume_path.volume_id).", valueName: "volume-id"))
    var destVolume: String

    @Option(help: ArgumentHelp("The source's group; omit for no group.", valueName: "group-id"))
    var srcGroup: String?

    @Option(help: ArgumentHelp("The source volume (src_volume_path.volume_id).", valueName: "volume-id"))
    var srcVolume: String

    @Option(help: ArgumentHelp("The source's snapshot (src_snapshot_name).", valueName: "name"))
    var snapshot: String

    func request() -> CloneVolumeToExistingRequest {
        CloneVolumeToExistingRequest(
            destination: VolumeRef(unchecked: destGroup, volumeID: destVolume),
            source: VolumeRef(unchecked: srcGroup, volumeID: srcVolume), snapshotName: SnapshotName(unchecked: snapshot))
    }
}

// MARK: RADOS objects

struct PutObject: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "put-object", abstract: "Write a whole RADOS object.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var object: ObjectOptions
    @OptionGroup var data: DataOptions

    func request() throws -> PutObjectRequest { PutObjectRequest(pool: object.pool, object: object.object, data: try data.bytes()) }
}

struct PutObjectVersioned: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "put-object-versioned", abstract: "Write a whole RADOS object if its version is still the one given.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var object: ObjectOptions
    @OptionGroup var data: DataOptions

    @Option(help: ArgumentHelp("The object's expected current version; omit to write unconditionally.", valueName: "version"))
    var version: UInt64?

    func request() throws -> PutObjectVersionedRequest {
        PutObjectVersionedRequest(pool: object.pool, object: object.object, data: try data.bytes(), version: version)
    }
}

struct GetObject: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "get-object",
        abstract: "Read a whole RADOS object: raw bytes to standard output (or --output); base64 JSON with --json.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var object: ObjectOptions

    @Option(help: ArgumentHelp("Write the data to this file instead of standard output.", valueName: "path"))
    var output: String?

    func request() -> GetObjectRequest { GetObjectRequest(pool: object.pool, object: object.object) }

    func printHuman(_ data: [UInt8]) throws {
        try writeOutput(data, to: output)
    }
}

struct GetObjectAndVersion: RPCSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "get-object-and-version",
        abstract: "Read a whole RADOS object and its version.",
        discussion: "Prints 'version: N'; the data goes to --output, or is printed base64 as 'data: ...' without it.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var object: ObjectOptions

    @Option(help: ArgumentHelp("Write the data to this file.", valueName: "path"))
    var output: String?

    func request() -> GetObjectAndVersionRequest { GetObjectAndVersionRequest(pool: object.pool, object: object.object) }

    func printHuman(_ result: ObjectAndVersion) throws {
        let (data, version) = (result.data, result.version)
        print("version: \(version)")
        if let output {
            try writeOutput(data, to: output)
        } else {
            print("data: \(Base64.encode(data))")
        }
    }
}

struct DeleteObject: RPCSubcommand {
    static let configuration = CommandConfiguration(commandName: "delete-object", abstract: "Remove a RADOS object.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var object: ObjectOptions

    func request() -> DeleteObjectRequest { DeleteObjectRequest(pool: object.pool, object: object.object) }
}
