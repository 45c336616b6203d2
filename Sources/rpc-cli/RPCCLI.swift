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
        subcommands: [Ping.self, Call.self]
    )
}

struct GlobalOptions: ParsableArguments {
    @Option(help: "Path of the daemon's socket.")
    var socket: String = VolumeClient.defaultSocketPath

    @Option(help: "Seconds to wait for the reply.")
    var timeout: Double = 120
}

/// Prints a failure as `Type: message` on stderr and exits non-zero.
func fail(_ error: any Error) -> ExitCode {
    let line: String = switch error {
    case let e as RPCError: "\(e.engineType?.rawValue ?? "RPCError \(e.code.rawValue)"): \(e.message)"
    default: "error: \(error)"
    }
    FileHandle.standardError.write(Data((line + "\n").utf8))
    return ExitCode.failure
}

struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the daemon answers.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let client = VolumeClient(socketPath: global.socket, callTimeout: global.timeout)
        do {
            print(try await client.ping())
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
        let client = VolumeClient(socketPath: global.socket, callTimeout: global.timeout)
        do {
            print(try await client.call(method, params: parsed))
        } catch {
            throw fail(error)
        }
    }
}
