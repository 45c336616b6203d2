import ArgumentParser
import Foundation
import JSONValue
import VolumeClient
import VolumeProtocol

@main
struct RPCCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc-cli",
        abstract: "Call cephfs-volumed over its Unix socket.",
        discussion: """
            Every subcommand takes the global options --socket PATH (default: \(VolumeClient.defaultSocketPath)), \
            --timeout SECONDS (default: 120) and --json (print the raw JSON result compactly instead of \
            human-readable output), before or after the subcommand's name. Volumes are named with --volume ID and, when in a group, --group ID. \
            Sizes accept units: 4096, 10G, 10GiB, 512MiB, 1.5TiB (binary multiples).

            Example: rpc-cli create-volume --group g --volume v --size 10GiB
                     rpc-cli --socket /run/volumed.sock --json server-info
            """,
        subcommands: [
            Ping.self, Call.self, ServerInfoCommand.self, GetMonAddrs.self, Recover.self,
            CreateGroup.self, DestroyGroup.self,
            CreateVolume.self, DeleteVolume.self, PurgeVolume.self, GetUsedBytes.self, SetMaxBytes.self,
            Authorize.self, Deauthorize.self, GetAuthorizedIDs.self, Evict.self,
            CreateSnapshotVolume.self, DestroySnapshotVolume.self, CreateSnapshotGroup.self, DestroySnapshotGroup.self,
            CloneVolumeToExisting.self,
            PutObject.self, GetObject.self, DeleteObject.self, PutObjectVersioned.self, GetObjectAndVersion.self,
        ]
    )
}

extension RPCCLI {
    static func main() async {
        let arguments: [String]
        do {
            arguments = try GlobalOptions.movingLeadingOptions(Array(CommandLine.arguments.dropFirst()))
        } catch {
            exit(withError: error)
        }
        await main(arguments)
    }
}

struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Path of the daemon's socket.", valueName: "path"))
    var socket: String = VolumeClient.defaultSocketPath

    @Option(help: ArgumentHelp("Seconds to wait for the reply.", valueName: "seconds"))
    var timeout: Double = 120

    @Flag(help: "Print the raw JSON result compactly instead of human-readable output.")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func client() -> VolumeClient {
        VolumeClient(socketPath: socket, callTimeout: timeout, connectTimeout: min(timeout, 10))
    }

    static let valued = ["--socket", "--timeout"]
    static let flags = ["--json"]

    /// Users of `ceph`, `git` and `kubectl` put global options before the
    /// subcommand, but ArgumentParser takes a subcommand's options only after
    /// its name: the leading global options are moved to just after it.
    static func movingLeadingOptions(_ arguments: [String]) throws -> [String] {
        var leading: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if flags.contains(a) || valued.contains(where: { a.hasPrefix($0 + "=") }) {
                leading.append(a)
                i += 1
            } else if valued.contains(a) {
                guard i + 1 < arguments.count else { throw ValidationError("Missing value for '\(a)'") }
                leading += [a, arguments[i + 1]]
                i += 2
            } else {
                break
            }
        }
        if leading.isEmpty { return arguments }
        guard i < arguments.count else {
            throw ValidationError("Missing subcommand after '\(leading.joined(separator: " "))'")
        }
        var rest = Array(arguments[i...])
        if rest[0].hasPrefix("-") { return rest + leading }  // --help, or an unknown option to report
        // Help ignores them; with an unknown subcommand, the error is about that.
        guard rest[0] != "help", RPCCLI.configuration.subcommands.contains(where: { $0._commandName == rest[0] }) else {
            return rest
        }
        rest.insert(contentsOf: leading, at: 1)
        return rest
    }
}

/// Prints a failure as `Type: message` on stderr and exits non-zero.
func fail(_ error: any Error) -> ExitCode {
    let line: String =
        switch error {
        case let e as RPCError: "\(e.engineType?.rawValue ?? "RPCError \(e.code.rawValue)"): \(e.message)"
        default: "error: \(error)"
        }
    FileHandle.standardError.write(Data((line + "\n").utf8))
    return ExitCode.failure
}

/// A subcommand that sends one call of a method type and prints its result:
/// the raw JSON with `--json`, else a form for people.
protocol RPCSubcommand: AsyncParsableCommand {
    associatedtype Request: RPCMethod
    var global: GlobalOptions { get }
    /// The call to send.
    func request() throws -> Request
    /// Prints the result for people; the default prints nothing.
    func printHuman(_ result: Request.Result) throws
}

extension RPCSubcommand {
    func printHuman(_ result: Request.Result) throws {}

    func run() async throws {
        let call = RPCCall(try request())
        let client = global.client()
        do {
            let result = try await client.perform(call)
            if global.json {
                print(result)
            } else {
                try printHuman(try Request.reply(result))
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }
}

// MARK: Argument types

/// A permission mode in octal: `0755`, `755` or `0o755`.
struct OctalMode: ExpressibleByArgument, CustomStringConvertible {
    var value: UInt32

    init(_ value: UInt32) { self.value = value }

    init?(argument: String) {
        var digits = Substring(argument)
        if digits.hasPrefix("0o") || digits.hasPrefix("0O") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 6, let v = UInt32(digits, radix: 8), v <= 0o7777 else { return nil }
        value = v
    }

    var description: String { "0" + String(value, radix: 8) }
    var defaultValueDescription: String { description }
    static let `default` = OctalMode(VolumeClient.defaultMode)
}

/// A size with units, for `--size`.
func parseSize(_ text: String) throws -> Int64 {
    do {
        return try ByteSize.parse(text)
    } catch {
        throw ValidationError(error.description)
    }
}

/// `--max-bytes`: a size, or `none` for no quota.
enum Quota {
    case none
    case bytes(Int64)

    static func parse(_ text: String) throws -> Quota {
        if text.lowercased() == "none" { return .none }
        return .bytes(try parseSize(text))
    }

    var maxBytes: Int64? {
        if case .bytes(let n) = self { return n }
        return nil
    }
}

/// `--group` and `--volume`: a volume path.
struct VolumeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The volume's group (group_id); omit for no group.", valueName: "group-id"))
    var group: String?

    @Option(help: ArgumentHelp("The volume's ID (volume_id).", valueName: "volume-id"))
    var volume: String

    var path: VolumeRef { VolumeRef(unchecked: group, volumeID: volume) }
}

/// `--pool` and `--object`: a RADOS object.
struct ObjectOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The RADOS pool (pool_name).", valueName: "pool"))
    var pool: String

    @Option(help: ArgumentHelp("The object's name (object_name).", valueName: "name"))
    var object: String
}

/// `--data` or `--data-file`: the bytes to write.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The data to write, as a (UTF-8) string.", valueName: "text"))
    var data: String?

    @Option(help: ArgumentHelp("A file holding the data to write (binary is fine); - reads standard input.", valueName: "path"))
    var dataFile: String?

    func validate() throws {
        switch (data, dataFile) {
        case (nil, nil): throw ValidationError("give the data with --data or --data-file")
        case (.some, .some): throw ValidationError("give either --data or --data-file, not both")
        default: break
        }
    }

    func bytes() throws -> [UInt8] {
        if let data { return Array(data.utf8) }
        let path = dataFile!
        if path == "-" { return [UInt8](FileHandle.standardInput.readDataToEndOfFile()) }
        do {
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ValidationError("cannot read --data-file \(path): \(error.localizedDescription)")
        }
    }
}

/// Writes raw bytes to standard output, or to a file.
func writeOutput(_ bytes: [UInt8], to path: String?) throws {
    if let path, path != "-" {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            FileHandle.standardError.write(Data("error: cannot write \(path): \(error.localizedDescription)\n".utf8))
            throw ExitCode.failure
        }
    } else {
        fflush(nil)  // what print() buffered goes first
        FileHandle.standardOutput.write(Data(bytes))
    }
}
