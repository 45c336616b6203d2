import Foundation
import JSONValue
import Testing
import VolumeProtocol

/// The method types are the contract in code; protocol/openrpc.json is its
/// description. They must say the same, method by method.
@Suite("Method registry")
struct RegistryTests {
    static let document: JSONValue = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("protocol/openrpc.json")
        return try! JSONValue.parse([UInt8](Data(contentsOf: url)))
    }()

    static var documented: [String: JSONValue] {
        Dictionary(uniqueKeysWithValues: (document["methods"]?.arrayValue ?? []).map { ($0["name"]?.stringValue ?? "", $0) })
    }

    /// A schema without its prose (and, for a param, without its default).
    static func bare(_ v: JSONValue, dropping: Set<String> = ["description"]) -> JSONValue {
        switch v {
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, x) in o where !dropping.contains(k) { out[k] = bare(x) }
            return .object(out)
        case .array(let a): return .array(a.map { bare($0) })
        default: return v
        }
    }

    @Test func registryListsExactlyTheDocumentedMethods() {
        let names = MethodRegistry.all.map { $0.name }
        #expect(Set(names).count == names.count, "a method is registered twice")
        #expect(names == (Self.document["methods"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
    }

    @Test(arguments: MethodRegistry.all.map { $0.name })
    func methodMatchesTheDocument(_ name: String) throws {
        let m = try #require(MethodRegistry.all.first { $0.name == name })
        let doc = try #require(Self.documented[name], "\(name) is not in openrpc.json")

        let params = try #require(doc["params"]?.arrayValue)
        #expect(m.params.map(\.name) == params.compactMap { $0["name"]?.stringValue }, "\(name): param names")
        for (spec, p) in zip(m.params, params) {
            let schema = try #require(p["schema"])
            #expect(spec.required == (p["required"]?.boolValue ?? false), "\(name).\(spec.name): required")
            #expect(spec.type.schema == Self.bare(schema, dropping: ["description", "default"]), "\(name).\(spec.name): type")
            #expect(spec.defaultValue == schema["default"], "\(name).\(spec.name): default")
        }

        #expect(m.resultSchema == Self.bare(try #require(doc["result"]?["schema"])), "\(name): result schema")
        #expect(m.mutating == doc["x-mutating"]?.boolValue, "\(name): x-mutating")
        let keys = (doc["x-keys"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(m.keySpecs.map(\.template) == keys, "\(name): x-keys")
    }

    /// A valid value for each param, distinct per param.
    static func sample(_ spec: ParamSpec) -> JSONValue {
        func of(_ t: ParamType) -> JSONValue {
            switch t {
            case .identifier, .groupID: .string("id-\(spec.name)")
            case .volumePath: ["group_id": .string("g-\(spec.name)"), "volume_id": .string("v-\(spec.name)")]
            case .base64: "aGk="
            case .nonEmptyString: .string("s-\(spec.name)")
            case .boolean: true
            case .integer(_, let hi): .int(min(hi, 7))
            case .number(_, let hi): .int(min(hi, 5))
            case .nullable(let t): of(t)
            }
        }
        return of(spec.type)
    }

    /// Decoding a call, encoding it again and decoding that gives the same
    /// params; the keys it holds are its templates filled in.
    @Test(arguments: MethodRegistry.all.map { $0.name })
    func decodedCallRoundTripsAndHoldsItsKeys(_ name: String) throws {
        let m = try #require(MethodRegistry.all.first { $0.name == name })
        try Self.check(m)
    }

    static func check<M: RPCMethod>(_: M.Type) throws {
        let sent = Dictionary(uniqueKeysWithValues: M.params.map { ($0.name, sample($0)) })
        let call = try M(params: Params(M.params.isEmpty ? nil : .object(sent)))
        let again = try M(params: Params(call.wireParams))
        #expect(again.encodedParams == call.encodedParams)
        for spec in M.params { #expect(call.encodedParams[spec.name] != nil, "\(M.name): \(spec.name) is not sent") }

        var expected = M.keySpecs.map(\.template)
        for spec in M.params {
            let v = sent[spec.name]!
            for (placeholder, value) in [
                ("{\(spec.name)}", v.stringValue),
                ("{\(spec.name).group_id}", v["group_id"]?.stringValue),
                ("{\(spec.name).volume_id}", v["volume_id"]?.stringValue),
            ]
                + (spec.name == "volume_path"
                    ? [("{group_id}", v["group_id"]?.stringValue), ("{volume_id}", v["volume_id"]?.stringValue)] : [])
            {
                guard let value else { continue }
                expected = expected.map { $0.replacingOccurrences(of: placeholder, with: value) }
            }
        }
        #expect(call.keys.map(\.description) == expected, "\(M.name): keys")
    }

    @Test func paramsAreRefusedAsBefore() throws {
        func message(_ m: any RPCMethod.Type, _ params: JSONValue) -> String? {
            do {
                _ = try m.init(params: try Params(params))
                return nil
            } catch let e as RPCError {
                #expect(e.code == .invalidParams)
                return e.message
            } catch {
                return "\(error)"
            }
        }
        #expect(
            message(CreateGroupRequest.self, ["group_id": "None"]) == "invalid group_id: 'None' is reserved for volumes without a group")
        #expect(message(CreateGroupRequest.self, ["group_id": "g", "bogus": 1]) == "unknown parameter 'bogus'")
        #expect(message(DestroyGroupRequest.self, [:]) == "missing parameter 'group_id'")
        #expect(message(SetMaxBytesRequest.self, ["volume_path": ["group_id": nil, "volume_id": "v"]]) == "missing parameter 'max_bytes'")
        #expect(
            message(AuthorizeRequest.self, ["volume_path": ["group_id": "_g", "volume_id": "v"], "auth_id": "a"])
                == "invalid volume_path.group_id: must not start with '_', '$' or '.'")
        #expect(
            message(AuthorizeRequest.self, ["volume_path": ["group_id": nil, "volume_id": "v"], "auth_id": "a", "tenant_id": ".t"])
                == "invalid tenant_id: must not start with '_', '$' or '.'")
        #expect(
            message(
                CloneVolumeToExistingRequest.self,
                [
                    "dest_volume_path": ["group_id": nil, "volume_id": "d"], "src_volume_path": ["group_id": nil, "volume_id": "s"],
                    "src_snapshot_name": "a/b",
                ]) == "invalid src_snapshot_name: may contain only letters, digits, '.', '_' and '-'")
        #expect(
            message(PutObjectRequest.self, ["pool_name": "", "object_name": 3, "data": ""])
                == "parameter 'object_name' must be a string, not number")
        #expect(message(GetObjectRequest.self, ["pool_name": "p", "object_name": ""]) == "parameter 'object_name' must not be empty")
        #expect(
            message(EvictRequest.self, ["auth_id": "a", "timeout": 86_401])
                == "parameter 'timeout' must be a number of seconds between 0 and 86400")
        #expect(
            message(CreateVolumeRequest.self, ["volume_path": ["group_id": nil, "volume_id": "v"], "mode": 4096])
                == "parameter 'mode' must be in 0...4095")
    }

    /// Each param's wire name is written once under Sources/, in the method
    /// types; the few other files that hold the same word mean something else.
    @Test func eachParamNameIsWrittenInOneSourceFile() throws {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources")
        let otherMeanings: Set<String> = [
            "data VolumeProtocol/RPCError.swift",  // the JSON-RPC error's data member
            "tenant_id VolumeEngine/Metadata.swift", "version VolumeEngine/Metadata.swift",  // on-disk metadata
            "pool_name VolumeEngine/Pools.swift",  // `ceph osd dump` output
            "size rpc-cli/Commands.swift", "version rpc-cli/Commands.swift",  // help texts' value names
            "size volumed-bench/BenchRun.swift", "size volumed-bench/PythonLibrary.swift",  // the bench's own JSON
        ]
        var files: [(String, String)] = []
        let walker = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        for case let url as URL in walker where url.pathExtension == "swift" {
            let relative = String(url.path.dropFirst(sources.path.count + 1))
            files.append((relative, try String(contentsOf: url, encoding: .utf8)))
        }
        var names = Set(MethodRegistry.all.flatMap { $0.params.map(\.name) })
        names.formUnion(["group_id", "volume_id"])  // VolumePath's members
        for name in names.sorted() {
            let holders = files.filter { $0.1.contains("\"\(name)\"") }.map(\.0)
                .filter { !otherMeanings.contains("\(name) \($0)") }
            #expect(holders == ["VolumeProtocol/Methods.swift"], "\(name)")
        }
    }
}
