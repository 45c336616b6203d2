import JSONValue
import Testing

// MARK: - Seeded randomness

/// SplitMix64: tiny, fast, and reproducible from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random JSON values, including awkward strings and number literals.
enum RandomJSON {
    static func int(_ range: ClosedRange<Int>, _ rng: inout SplitMix64) -> Int {
        Int.random(in: range, using: &rng)
    }

    static func digits(_ count: Int, _ rng: inout SplitMix64) -> String {
        String((0..<count).map { _ in Character(String(int(0...9, &rng))) })
    }

    /// A random literal following the RFC 8259 number grammar.
    static func numberLiteral(_ rng: inout SplitMix64) -> String {
        var s = ""
        if rng.next() % 3 == 0 { s += "-" }
        if rng.next() % 4 == 0 {
            s += "0"
        } else {
            s += String(int(1...9, &rng)) + digits(int(0...25, &rng), &rng)
        }
        if rng.next() % 3 == 0 { s += "." + digits(int(1...8, &rng), &rng) }
        if rng.next() % 4 == 0 {
            s += ["e", "E"][int(0...1, &rng)] + ["", "+", "-"][int(0...2, &rng)] + digits(int(1...3, &rng), &rng)
        }
        return s
    }

    static let interestingScalars: [Unicode.Scalar] = [
        "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{8}", "\u{C}", "\u{1F}", "\u{7F}", "\u{80}",
        "é", "\u{301}", "€", "\u{2028}", "\u{2029}", "\u{FEFF}", "\u{FFFD}", "\u{FFFF}", "😀", "𝄞", "\u{10FFFF}",
        " ", "a", "Z", "0", "{", "}", "[", "]", ",", ":",
    ]

    static func scalar(_ rng: inout SplitMix64) -> Unicode.Scalar {
        switch rng.next() % 4 {
        case 0: return interestingScalars[int(0...(interestingScalars.count - 1), &rng)]
        case 1: return Unicode.Scalar(UInt8(int(0...127, &rng)))
        default:
            while true {
                // Any scalar value; surrogates are not scalars and are skipped.
                let v = UInt32(int(0...0x10FFFF, &rng))
                if let s = Unicode.Scalar(v) { return s }
            }
        }
    }

    static func string(_ rng: inout SplitMix64) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<int(0...12, &rng) { s.append(scalar(&rng)) }
        return String(s)
    }

    static func value(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
        let kinds = depth >= 5 ? 4 : 6
        switch rng.next() % UInt64(kinds) {
        case 0: return .null
        case 1: return .bool(rng.next() % 2 == 0)
        case 2:
            switch rng.next() % 3 {
            case 0: return .int(Int64(bitPattern: rng.next()))
            case 1: return .number(JSONNumber(Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF)))
            default: return try! JSONValue.parse(numberLiteral(&rng))
            }
        case 3: return .string(string(&rng))
        case 4: return .array((0..<int(0...5, &rng)).map { _ in value(&rng, depth: depth + 1) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<int(0...5, &rng) { members[string(&rng)] = value(&rng, depth: depth + 1) }
            return .object(members)
        }
    }
}

// MARK: - Helpers

func text(_ value: JSONValue) -> String { String(decoding: value.serialized(), as: UTF8.self) }

// MARK: - Serializer

@Suite("JSON serializer")
struct JSONSerializerTests {
    @Test func compactExactOutput() {
        #expect(text(nil) == "null")
        #expect(text(true) == "true")
        #expect(text(false) == "false")
        #expect(text(0) == "0")
        #expect(text(-17) == "-17")
        #expect(text("") == #""""#)
        #expect(text([]) == "[]")
        #expect(text([:]) == "{}")
        #expect(text(["b": 1, "a": [true, nil, "x", [:], []]]) == #"{"a":[true,null,"x",{},[]],"b":1}"#)
    }

    @Test func keysAreSortedAtEveryLevel() {
        let v: JSONValue = [
            "zeta": 1, "alpha": 2, "Beta": 3, "beta": 4, "_": 5, "10": 6, "9": 7, "é": 8, "a": 9,
            "nested": ["y": 1, "x": ["d": 1, "c": 2]],
        ]
        #expect(
            text(v)
                == #"{"10":6,"9":7,"Beta":3,"_":5,"a":9,"alpha":2,"beta":4,"nested":{"x":{"c":2,"d":1},"y":1},"zeta":1,"é":8}"#
        )
    }

    @Test func outputIsDeterministicWhateverTheInsertionOrder() {
        var rng = SplitMix64(seed: 42)
        let keys = (0..<64).map { "k\($0)" }
        let expected = "{" + keys.sorted().map { #""\#($0)":"\#($0)""# }.joined(separator: ",") + "}"
        for _ in 0..<20 {
            var members: [String: JSONValue] = [:]
            for k in keys.shuffled(using: &rng) { members[k] = .string(k) }
            #expect(text(.object(members)) == expected)
        }
    }

    @Test(arguments: [
        "1.50", "-0", "0.0", "1E+2", "1e-7", "-1.0e-0", "12345678901234567890", "1e999",
        "3.14159265358979323846264338327950288419716939937510",
    ])
    func numberLiteralTextIsPreserved(_ literal: String) throws {
        #expect(text(try JSONValue.parse(literal)) == literal)
        #expect(text(try JSONValue.parse(" [ \(literal) ] ")) == "[\(literal)]")
        #expect(text(try JSONValue.parse(#"{ "n" : \#(literal) }"#)) == #"{"n":\#(literal)}"#)
    }

    @Test func integerAndDoubleNumbers() throws {
        #expect(JSONNumber(Int64.min).text == "-9223372036854775808")
        #expect(JSONNumber(UInt64.max).text == "18446744073709551615")
        #expect(JSONNumber(UInt8(7)).text == "7")
        #expect(JSONNumber(1.0).text == "1")
        #expect(JSONNumber(-3.0).text == "-3")
        #expect(JSONNumber(-0.0).text == "0")
        #expect(JSONNumber(0.5).text == "0.5")
        #expect(JSONNumber(123456789012345.0).text == "123456789012345")
        // Whatever text a Double gets, it is valid JSON and keeps the value.
        for d in [
            1e15, 1e20, -1e20, 1e-7, Double.leastNonzeroMagnitude, -Double.leastNormalMagnitude, Double.greatestFiniteMagnitude, 0.1,
            1.0 / 3.0, -2.5e-10,
        ] {
            let n = JSONNumber(d)
            let parsed = try JSONValue.parse(n.text)
            #expect(numberText(parsed) == n.text, "\(d)")
            #expect(n.doubleValue == d, "\(d) as \(n.text)")
        }
    }

    @Test func randomDoublesGiveValidJSONNumbers() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let d = Double(bitPattern: rng.next())
            guard d.isFinite else { continue }
            let n = JSONNumber(d)
            #expect((try? JSONValue.parse(n.text)).flatMap(numberText) == n.text, "\(d) as \(n.text)")
            #expect(n.doubleValue == d, "\(d) as \(n.text)")
        }
    }

    @Test func simpleEscapes() {
        #expect(text("a\"b") == #""a\"b""#)
        #expect(text("a\\b") == #""a\\b""#)
        #expect(text("a\nb") == #""a\nb""#)
        #expect(text("a\rb") == #""a\rb""#)
        #expect(text("a\tb") == #""a\tb""#)
        #expect(text("\r\n") == #""\r\n""#)
        // Solidus and non-ASCII need no escaping.
        #expect(text("a/b") == #""a/b""#)
        #expect(JSONValue.string("é€😀").serialized() == [0x22, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0x22])
    }

    @Test func otherControlCharactersAreUnicodeEscaped() throws {
        let named: [UInt8: String] = [0x0A: #"\n"#, 0x0D: #"\r"#, 0x09: #"\t"#]
        for b in UInt8(0)..<0x20 {
            let s = String(decoding: [b], as: UTF8.self)
            let expected = named[b] ?? String(format4: b)
            #expect(text(.string(s)) == "\"\(expected)\"", "byte 0x\(String(b, radix: 16))")
            #expect(try JSONValue.parse(JSONValue.string(s).serialized()) == .string(s))
        }
        #expect(text("\u{1F}") == #""\u001f""#)
        #expect(text("\u{0}") == #""\u0000""#)
        #expect(text("\u{8}\u{C}") == #""\u0008\u000c""#)
        #expect(text("\u{7F}") == "\"\u{7F}\"")
    }

    @Test func neverARawNewlineOrControlByte() {
        let awkward: [JSONValue] = [
            "line1\nline2", "\r\n", "\n\n\n", "\u{0}\u{1}\u{1F}", "\u{2028}\u{2029}", "tab\there",
            ["a\nb": "c\nd", "e": ["\n", ["\r": "\n"]]],
            .string(String(decoding: Array(0..<0x20), as: UTF8.self)),
        ]
        for v in awkward {
            let bytes = v.serialized()
            #expect(!bytes.contains(0x0A), "\(bytes)")
            #expect(!bytes.contains(where: { $0 < 0x20 }), "\(bytes)")
            #expect((try? JSONValue.parse(bytes)) == v)
        }
    }

    @Test func descriptionIsTheSerializedText() {
        let v: JSONValue = ["b": [1, "two"], "a": nil]
        #expect(v.description == #"{"a":null,"b":[1,"two"]}"#)
        #expect("\(v)" == v.description)
        #expect(JSONNumber(5).description == "5")
    }

    @Test func writeIntoAppends() {
        var out = Array("prefix:".utf8)
        JSONValue.array([1, "x"]).write(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"prefix:[1,"x"]"#)
    }

    @Test func roundTripOfChosenValues() throws {
        let values: [JSONValue] = [
            nil, true, false, 0, -1, .int(Int64.max), .int(Int64.min), "", "plain", "😀 \u{0} \" \\ / \n",
            [], [:], [[], [[]], [:]], ["": ""], [" ": nil, "\n": [1, 2, 3]],
            try JSONValue.parse("1.50"), try JSONValue.parse("-0"), try JSONValue.parse("12345678901234567890"),
            try JSONValue.parse("1E-3"), .number(JSONNumber(0.1)),
            ["jsonrpc": "2.0", "id": try JSONValue.parse("1.50"), "method": "ping", "params": ["x": [true, nil]]],
        ]
        for v in values {
            let bytes = v.serialized()
            let back = try JSONValue.parse(bytes)
            #expect(back == v)
            #expect(back.serialized() == bytes)
        }
    }

    @Test func roundTripOfRandomValues() throws {
        var rng = SplitMix64(seed: 0x5EED_1234)
        var kinds: Set<String> = []
        for i in 0..<500 {
            let v = RandomJSON.value(&rng, depth: 0)
            kinds.insert(v.typeName)
            let bytes = v.serialized()
            #expect(!bytes.contains(0x0A), "iteration \(i)")
            let back = try JSONValue.parse(bytes)
            #expect(back == v, "iteration \(i): \(String(decoding: bytes, as: UTF8.self))")
            // Byte-exact: equality of strings is canonical equivalence, bytes are not.
            #expect(back.serialized() == bytes, "iteration \(i)")
            if back != v { break }
        }
        // The generator really exercises every kind.
        #expect(kinds == ["null", "boolean", "number", "string", "array", "object"])
    }
}

// MARK: - Accessors and literals

@Suite("JSONValue accessors and literals")
struct JSONValueAccessorTests {
    @Test func int64Value() throws {
        #expect(JSONValue.int(42).int64Value == 42)
        #expect(JSONValue.int(-7).int64Value == -7)
        #expect(try JSONValue.parse("-0").int64Value == 0)
        #expect(try JSONValue.parse("1.0").int64Value == nil)
        #expect(try JSONValue.parse("1e2").int64Value == nil)
        #expect(try JSONValue.parse("18446744073709551615").int64Value == nil)
        #expect(JSONValue.string("1").int64Value == nil)
        #expect(JSONValue.bool(true).int64Value == nil)
        #expect(JSONValue.null.int64Value == nil)
        #expect(try JSONValue.parse("2.5").arrayValue == nil)
        if case .number(let n) = try JSONValue.parse("2.5") {
            #expect(n.doubleValue == 2.5)
            #expect(n.int64Value == nil)
        } else {
            Issue.record("2.5 is not a number")
        }
    }

    @Test func otherAccessors() {
        let v: JSONValue = ["s": "str", "b": false, "n": nil, "a": [1, 2], "o": ["k": "v"]]
        #expect(v["s"]?.stringValue == "str")
        #expect(v["b"]?.boolValue == false)
        #expect(v["s"]?.boolValue == nil)
        #expect(v["n"]?.isNull == true)
        #expect(v["s"]?.isNull == false)
        #expect(v["a"]?.arrayValue == [1, 2])
        #expect(v["o"]?.objectValue == ["k": "v"])
        #expect(v["o"]?["k"] == "v")
        #expect(v.objectValue?.count == 5)
        #expect(v.stringValue == nil)
        #expect(v.arrayValue == nil)
        #expect(JSONValue.int(1).stringValue == nil)
        #expect(JSONValue.string("x").objectValue == nil)
    }

    @Test func subscriptDistinguishesMissingFromNull() {
        let v: JSONValue = ["present": nil]
        #expect(v["present"] == .some(.null))
        #expect(v["absent"] == nil)
        // Subscripting anything but an object gives nil.
        #expect(JSONValue.array(["present"])["present"] == nil)
        #expect(JSONValue.string("present")["present"] == nil)
        #expect(JSONValue.null["x"] == nil)
    }

    @Test func typeNames() throws {
        #expect(JSONValue.null.typeName == "null")
        #expect(JSONValue.bool(true).typeName == "boolean")
        #expect(try JSONValue.parse("1.5").typeName == "number")
        #expect(JSONValue.string("").typeName == "string")
        #expect(JSONValue.array([]).typeName == "array")
        #expect(JSONValue.object([:]).typeName == "object")
    }

    @Test func literalConformances() throws {
        let s: JSONValue = "hi"
        let i: JSONValue = 42
        let neg: JSONValue = -42
        let b: JSONValue = true
        let n: JSONValue = nil
        let a: JSONValue = [1, "x", false, nil]
        let o: JSONValue = ["k": [1], "m": ["n": nil]]
        #expect(s == .string("hi"))
        #expect(numberText(i) == "42")
        #expect(numberText(neg) == "-42")
        #expect(i == .int(42))
        #expect(b == .bool(true))
        #expect(n == .null)
        #expect(a == .array([.int(1), .string("x"), .bool(false), .null]))
        #expect(o == .object(["k": .array([.int(1)]), "m": .object(["n": .null])]))
        // Literals equal what the parser builds.
        #expect(try JSONValue.parse(#"{"k":[1],"m":{"n":null}}"#) == o)
        #expect(try JSONValue.parse(#"[1,"x",false,null]"#) == a)
    }

    @Test func hashableConsistentWithEquality() throws {
        let set: Set<JSONValue> = [1, "1", true, nil, [1], ["1": 1], try JSONValue.parse("1.0"), try JSONValue.parse("1")]
        // 1 and parse("1") are the same; 1.0 is a different literal.
        #expect(set.count == 7)
        #expect(set.contains(try JSONValue.parse(" 1 ")))
        #expect(set.contains(try JSONValue.parse(#"{"1":1}"#)))
        #expect(!set.contains(try JSONValue.parse("1e0")))
    }
}

extension String {
    /// `\u00XX` with lowercase hex, as the serializer writes control characters.
    init(format4 b: UInt8) {
        let h = String(b, radix: 16)
        self = "\\u00" + (h.count == 1 ? "0" + h : h)
    }
}
