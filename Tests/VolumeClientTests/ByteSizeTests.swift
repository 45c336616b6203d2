import JSONValue
import Testing
import VolumeClient

@Suite("ByteSize")
struct ByteSizeTests {
    @Test(
        arguments: [
            ("0", 0),
            ("4096", 4096),
            ("  4096 ", 4096),
            ("512B", 512),
            ("512b", 512),
            ("1K", 1024),
            ("1k", 1024),
            ("1KB", 1024),
            ("1Ki", 1024),
            ("1KiB", 1024),
            ("1kib", 1024),
            ("512MiB", 512 * 1_048_576),
            ("512M", 512 * 1_048_576),
            ("10G", 10_737_418_240),
            ("10GiB", 10_737_418_240),
            ("10GB", 10_737_418_240),
            ("10 GiB", 10_737_418_240),
            ("1.5TiB", 1_649_267_441_664),
            ("1.5K", 1536),
            ("0.5M", 524_288),
            (".5K", 512),
            ("1.0009765625K", 1025),
            ("0.3K", 307),  // 307.2, rounded down
            ("2P", 2 * 1_125_899_906_842_624),
            ("007K", 7168),
            ("9223372036854775807", Int64.max),
            ("8191.999999999999999P", 9_223_372_036_854_775_806),  // the fraction is rounded down
            ("8191.9999999999999999999P", Int64.max),  // fraction digits past the 19th are ignored
        ] as [(String, Int64)])
    func parsesValidSizes(_ text: String, _ bytes: Int64) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test(arguments: [
        "", "   ", "abc", "G", "-1", "-1G", "+5", "1.5", "1.", "1.G", "1.2.3K", "10X", "10GG", "10GiBs", "10iB", "10 G B",
        "1e3", "0x10", "１０", "10 gibibytes", "KiB", "1,5G", "NaN", "inf", "10İ", "10ẞ", "5\u{0301}K",
    ])
    func refusesInvalidSizes(_ text: String) {
        #expect(throws: ByteSize.ParseError.self) { try ByteSize.parse(text) }
        do {
            _ = try ByteSize.parse(text)
        } catch {
            if case .overflow = error { Issue.record("'\(text)' should be invalid, not an overflow") }
        }
    }

    @Test func emptyIsItsOwnError() {
        #expect(throws: ByteSize.ParseError.empty) { try ByteSize.parse("") }
        #expect(throws: ByteSize.ParseError.empty) { try ByteSize.parse(" ") }
    }

    @Test(arguments: [
        "9223372036854775808", "18446744073709551616", "99999999999999999999999", "8192P", "8192.5P",
        "9007199254740992G", "8388608T", "8796093022208 MiB",
    ])
    func refusesOverflow(_ text: String) {
        #expect(throws: ByteSize.ParseError.overflow(text)) { try ByteSize.parse(text) }
    }

    @Test func errorMessagesNameTheInput() {
        #expect(ByteSize.ParseError.invalid("10X").description.contains("'10X'"))
        #expect(ByteSize.ParseError.overflow("9E").description.contains("too large"))
    }

    @Test(
        arguments: [
            (0, "0 B"),
            (1, "1 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (10_485_760, "10 MiB"),
            (10_737_418_240, "10 GiB"),
            (1_649_267_441_664, "1.5 TiB"),
            (1_048_575, "1 MiB"),  // 1023.999 KiB rounds up into the next unit
            (1_258_291, "1.2 MiB"),
            (1_034_000, "1009.77 KiB"),
            (Int64.max, "8 EiB"),
        ] as [(Int64, String)])
    func formatsForPeople(_ bytes: Int64, _ text: String) {
        #expect(ByteSize.format(bytes) == text)
    }

    @Test func formattedSizesParseBack() throws {
        for n: Int64 in [1024, 1536, 10_485_760, 10_737_418_240, 1_649_267_441_664] {
            let text = ByteSize.format(n).replacingOccurrences(of: " ", with: "")
            #expect(try ByteSize.parse(text) == n, "\(text)")
        }
    }
}

@Suite("VolumePath")
struct VolumePathTests {
    @Test func encodesBothMembers() {
        let v = VolumePath(groupID: "g1", volumeID: "vol1")
        #expect(v.json == ["group_id": "g1", "volume_id": "vol1"])
        #expect(v.json.description == #"{"group_id":"g1","volume_id":"vol1"}"#)
    }

    @Test func aMissingGroupIsAnExplicitNull() {
        let v = VolumePath("vol1")
        #expect(v.groupID == nil)
        #expect(v.json == ["group_id": .null, "volume_id": "vol1"])
        #expect(v.json.objectValue?.keys.sorted() == ["group_id", "volume_id"])
    }

    @Test func decodesTheWireForm() {
        #expect(VolumePath(json: ["group_id": "g", "volume_id": "v"]) == VolumePath(groupID: "g", volumeID: "v"))
        #expect(VolumePath(json: ["group_id": .null, "volume_id": "v"]) == VolumePath("v"))
        #expect(VolumePath(json: ["volume_id": "v"]) == VolumePath("v"))
        #expect(VolumePath(json: ["group_id": 1, "volume_id": "v"]) == nil)
        #expect(VolumePath(json: ["group_id": "g"]) == nil)
        #expect(VolumePath(json: "v") == nil)
        for v in [VolumePath("a"), VolumePath("b", group: "g")] {
            #expect(VolumePath(json: v.json) == v)
        }
    }

    @Test func describesItselfAsGroupSlashVolume() {
        #expect(VolumePath(groupID: "g", volumeID: "v").description == "g/v")
        #expect(VolumePath("v").description == "v")
    }
}
