import JSONValue
import Testing

// MARK: - Helpers

func parse(_ text: String, maxDepth: Int = JSONValue.defaultMaxDepth) throws(JSONParseError) -> JSONValue {
    try JSONValue.parse(text, maxDepth: maxDepth)
}

func parse(bytes: [UInt8], maxDepth: Int = JSONValue.defaultMaxDepth) throws(JSONParseError) -> JSONValue {
    try JSONValue.parse(bytes, maxDepth: maxDepth)
}

/// The literal text of a number value, nil for any other kind.
func numberText(_ value: JSONValue) -> String? {
    if case .number(let n) = value { return n.text }
    return nil
}

func nestedArrays(_ depth: Int) -> String {
    String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
}

func nestedObjects(_ depth: Int) -> String {
    String(repeating: #"{"k":"#, count: depth) + "0" + String(repeating: "}", count: depth)
}

/// Bytes of a JSON string literal whose content is `content`, given raw.
func quoted(_ content: [UInt8]) -> [UInt8] { [0x22] + content + [0x22] }

// MARK: - Acceptance

@Suite("JSON parser: RFC 8259 acceptance")
struct JSONParserAcceptanceTests {
    @Test func everyLiteralKind() throws {
        #expect(try parse("null") == .null)
        #expect(try parse("true") == .bool(true))
        #expect(try parse("false") == .bool(false))
        #expect(try parse(#""""#) == .string(""))
        #expect(try parse(#""abc""#) == .string("abc"))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object([:]))
        #expect(numberText(try parse("0")) == "0")
        #expect(numberText(try parse("42")) == "42")
    }

    @Test func nestedStructures() throws {
        let text = #"{"a":[1,{"b":[true,false,null,"x"]},[]],"c":{"d":{"e":{}}},"f":[[[["deep"]]]]}"#
        let expected: JSONValue = [
            "a": [1, ["b": [true, false, nil, "x"]], []],
            "c": ["d": ["e": [:]]],
            "f": [[[["deep"]]]],
        ]
        #expect(try parse(text) == expected)
    }

    @Test func whitespaceAroundAndBetweenTokens() throws {
        let text = " \t\r\n{ \"a\" :\t[ 1 ,\n2 ,\r\n\"x\" ] ,\"b\"\n:\rnull } \n\t\r "
        #expect(try parse(text) == ["a": [1, 2, "x"], "b": nil])
        #expect(try parse("\n\n  true  \n") == .bool(true))
        #expect(try parse("  [ ]  ") == .array([]))
        #expect(try parse("\t{\t}\t") == .object([:]))
    }

    @Test(arguments: [
        "0", "-0", "1", "-1", "10", "1e10", "1E10", "1e+10", "1e-10", "1.5E-3", "-0.0", "0.5", "1.50",
        "1E+2", "-1.0e-0", "1e00", "12345678901234567890", "-12345678901234567890123456789",
        "3.14159265358979323846264338327950288419716939937510", "9223372036854775808",
        "1e999", "-1e-999",
    ])
    func numbersKeepTheirLiteralText(_ literal: String) throws {
        #expect(numberText(try parse(literal)) == literal)
        let inArray = try parse("[\(literal), \(literal)]")
        #expect(inArray.arrayValue?.map(numberText) == [literal, literal])
        let inObject = try parse(#"{"n":\#(literal)}"#)
        #expect(inObject["n"].flatMap(numberText) == literal)
    }

    @Test func bigIntegersAreExactButNotInt64() throws {
        let big = try parse("12345678901234567890")
        #expect(numberText(big) == "12345678901234567890")
        #expect(big.int64Value == nil)
        #expect(try parse("9223372036854775807").int64Value == Int64.max)
        #expect(try parse("-9223372036854775808").int64Value == Int64.min)
        #expect(try parse("9223372036854775808").int64Value == nil)
    }

    @Test func numbersWithSameValueButDifferentTextAreDistinct() throws {
        // Literal text is the identity: an id of 1.50 must be echoed as 1.50.
        #expect(try parse("1") != parse("1.0"))
        #expect(try parse("1.5") != parse("1.50"))
        #expect(try parse("0") != parse("-0"))
        #expect(try parse("1e2") != parse("1E2"))
    }

    @Test func everySimpleEscape() throws {
        let text = #""\"\\\/\b\f\n\r\t""#
        #expect(try parse(text) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""a\nb\tc""#) == .string("a\nb\tc"))
        #expect(try parse(#""\\n""#) == .string("\\n"))
    }

    @Test func unicodeEscapes() throws {
        #expect(try parse(#""\u0041""#) == .string("A"))
        #expect(try parse(#""\u00e9""#) == .string("\u{E9}"))
        #expect(try parse(#""\u00E9""#) == .string("\u{E9}"))
        #expect(try parse(#""\u20AC\u20ac""#) == .string("€€"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parse(#""\u001f""#) == .string("\u{1F}"))
        #expect(try parse(#""\uFFFF""#) == .string("\u{FFFF}"))
        #expect(try parse(#""x\u0022y""#) == .string("x\"y"))
        #expect(try parse(#""\u005C""#) == .string("\\"))
    }

    @Test func surrogatePairs() throws {
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try parse(#""\ud800\udc00""#) == .string("\u{10000}"))
        #expect(try parse(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
        #expect(try parse(#""a\ud834\udd1eb""#) == .string("a𝄞b"))
        // The decoded scalar is exactly one, not two replacement characters.
        let s = try #require(try parse(#""\ud83d\ude00""#).stringValue)
        #expect(Array(s.unicodeScalars) == ["\u{1F600}"])
        #expect(Array(s.utf8) == [0xF0, 0x9F, 0x98, 0x80])
    }

    @Test func rawUTF8() throws {
        let content = "héllo €uro 𝄞 😀 日本語 \u{7F}"
        #expect(try parse("\"\(content)\"") == .string(content))
        #expect(try parse(bytes: quoted(Array(content.utf8))) == .string(content))
        // Raw UTF-8 mixed with escapes (the parser's slower path).
        #expect(try parse("\"é\\n€\\u00e9😀\\t\"") == .string("é\n€é😀\t"))
        // Non-ASCII object keys.
        #expect(try parse(#"{"ключ":"значение"}"#) == ["ключ": "значение"])
    }

    @Test func keysAreDecodedWithEscapes() throws {
        let v = try parse(#"{"a\nb":1,"\u00e9":2,"\ud83d\ude00":3}"#)
        #expect(v["a\nb"] == .int(1))
        #expect(v["é"] == .int(2))
        #expect(v["😀"] == .int(3))
    }

    @Test func duplicateKeysKeepTheLastMember() throws {
        #expect(try parse(#"{"a":1,"a":2}"#) == ["a": 2])
    }

    @Test func byteCollectionsOtherThanArrays() throws {
        let bytes = Array(#"xx[1,"a",{"b":null}]yy"#.utf8)
        let expected: JSONValue = [1, "a", ["b": nil]]
        // A contiguous slice.
        #expect(try JSONValue.parse(bytes[2..<(bytes.count - 2)]) == expected)
        // A collection without contiguous storage takes the copying path.
        let lazy = bytes[2..<(bytes.count - 2)].lazy.map { $0 }
        #expect(try JSONValue.parse(lazy) == expected)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(bytes.lazy.map { $0 }) }
        // String.UTF8View.
        #expect(try JSONValue.parse(#"{"k":[true]}"#.utf8) == ["k": [true]])
    }

    @Test func depthExactlyAtTheLimitIsAccepted() throws {
        let arrays = try parse(nestedArrays(JSONValue.defaultMaxDepth))
        var depth = 0
        var cursor = arrays
        while case .array(let elements) = cursor {
            depth += 1
            guard let first = elements.first else { break }
            cursor = first
        }
        #expect(depth == 128)
        _ = try parse(nestedObjects(128))
        _ = try parse(nestedArrays(3), maxDepth: 3)
        _ = try parse(#"{"a":[{}]}"#, maxDepth: 3)
    }

    @Test func depthIsCountedPerPathNotPerContainer() throws {
        // Many siblings at depth 2 must not add up.
        let siblings = "[" + Array(repeating: "[]", count: 500).joined(separator: ",") + "]"
        #expect(try parse(siblings, maxDepth: 2).arrayValue?.count == 500)
        let objects = "[" + Array(repeating: #"{"a":{}}"#, count: 300).joined(separator: ",") + "]"
        #expect(try parse(objects, maxDepth: 3).arrayValue?.count == 300)
    }

    @Test func scalarsNeedNoDepth() throws {
        #expect(try parse("1", maxDepth: 0) == .int(1))
        #expect(try parse(#""s""#, maxDepth: 0) == .string("s"))
        #expect(throws: JSONParseError.self) { try parse("[]", maxDepth: 0) }
        #expect(throws: JSONParseError.self) { try parse("{}", maxDepth: 0) }
    }
}

// MARK: - Rejection

@Suite("JSON parser: rejection")
struct JSONParserRejectionTests {
    @Test(arguments: [
        // empty / whitespace only
        "", " ", "\n\t ",
        // trailing and misplaced commas
        "[1,]", #"{"a":1,}"#, "[,1]", "{,}", ",", "[1,,2]", #"{"a":1,,"b":2}"#,
        // missing separators / structure
        "[1 2]", #"{"a" 1}"#, #"{"a":1 "b":2}"#, "{a:1}", #"{"a"}"#, #"{"a":}"#, "[", "]", "{", "}",
        "[1", #"{"a":1"#, #"{"a""#, "[}", "{]", #"{1:2}"#, #"{null:1}"#,
        // numbers
        "01", "-01", "00", "001", "1.", "-1.", ".5", "-.5", "+1", "-", "--1", "1e", "1e+", "1E-", "1.e5", "1.5e",
        "0x10", "1_000", "1,5", "- 1", "1 .5", "Infinity", "-Infinity", "NaN", "inf", "1e5.5",
        // literals
        "tru", "True", "TRUE", "nul", "nulll", "truex", "fals", "undefined",
        // quoting
        "'a'", "['a']", #"{'a':1}"#, #""abc"#, #"""#, #""\"#,
        // bad escapes
        #""\x41""#, #""\a""#, #""\U0041""#, #""\u12""#, #""\u12G4""#, #""\u""#, #""\u004""#, #""\'""#, #""\0""#,
        // lone / broken surrogates
        #""\ud800""#, #""\udc00""#, #""\udfff""#, #""\ud800x""#, #""\ud800\u0041""#, #""\ud800\ud800""#,
        #""\ud83d\n""#, #""\udc00\ud800""#, #""\ud83d\\ude00""#, #""\ud83d""#,
        // trailing garbage
        "{} x", "[] []", "1 2", #""a" "b""#, "null null", "{}}", "[]]", "1x", "true,",
        // comments are not JSON
        "/* c */ 1", "1 // c", "# c\n1",
    ])
    func rejected(_ text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func unescapedControlCharactersInStrings() {
        for b in UInt8(0)..<0x20 {
            // Fast path (no escape before it) ...
            #expect(throws: JSONParseError.self, "raw 0x\(String(b, radix: 16)) in string") {
                try parse(bytes: quoted([0x61, b, 0x62]))
            }
            // ... and slow path (after an escape).
            #expect(throws: JSONParseError.self, "raw 0x\(String(b, radix: 16)) after escape") {
                try parse(bytes: quoted([0x5C, 0x6E, b]))
            }
            // In a key too.
            #expect(throws: JSONParseError.self) {
                try parse(bytes: [0x7B] + quoted([b]) + Array(":1}".utf8))
            }
        }
        // DEL (0x7F) is not a control character for JSON.
        #expect((try? parse(bytes: quoted([0x7F]))) == .string("\u{7F}"))
    }

    static let invalidUTF8: [[UInt8]] = [
        [0xFF],  // never valid
        [0xFE],
        [0x80],  // lone continuation byte
        [0xBF, 0x61],
        [0xC3],  // truncated 2-byte sequence
        [0x61, 0xC3],
        [0xE2, 0x82],  // truncated 3-byte sequence (€ is E2 82 AC)
        [0xF0, 0x9F, 0x98],  // truncated 4-byte sequence
        [0xC3, 0x61],  // lead byte followed by ASCII
        [0xC0, 0x80],  // overlong NUL
        [0xC1, 0xBF],  // overlong
        [0xE0, 0x80, 0xAF],  // overlong 3-byte
        [0xF0, 0x80, 0x80, 0xAF],  // overlong 4-byte
        [0xED, 0xA0, 0x80],  // UTF-8 encoded surrogate U+D800
        [0xED, 0xBF, 0xBF],  // UTF-8 encoded surrogate U+DFFF
        [0xF4, 0x90, 0x80, 0x80],  // beyond U+10FFFF
        [0xF5, 0x80, 0x80, 0x80],
    ]

    @Test(arguments: invalidUTF8)
    func invalidUTF8InStrings(_ bad: [UInt8]) {
        // Fast path.
        #expect(throws: JSONParseError.self) { try parse(bytes: quoted(bad)) }
        #expect(throws: JSONParseError.self) { try parse(bytes: quoted(Array("ok ".utf8) + bad + Array(" ok".utf8))) }
        // Slow path: an escape before, and one after.
        #expect(throws: JSONParseError.self) { try parse(bytes: quoted(Array(#"\n"#.utf8) + bad)) }
        #expect(throws: JSONParseError.self) { try parse(bytes: quoted(bad + Array(#"\u00e9"#.utf8))) }
        // As an object key.
        #expect(throws: JSONParseError.self) { try parse(bytes: [0x7B] + quoted(bad) + Array(":1}".utf8)) }
        // Inside a nested structure.
        #expect(throws: JSONParseError.self) {
            try parse(bytes: Array(#"{"a":["#.utf8) + quoted(bad) + Array("]}".utf8))
        }
    }

    @Test func invalidBytesOutsideStrings() {
        #expect(throws: JSONParseError.self) { try parse(bytes: [0xFF]) }
        #expect(throws: JSONParseError.self) { try parse(bytes: [0xEF, 0xBB, 0xBF, 0x31] + [0xFF]) }
        #expect(throws: JSONParseError.self) { try parse(bytes: Array("[1]".utf8) + [0x00]) }
        #expect(throws: JSONParseError.self) { try parse(bytes: [0x00]) }
        // Only space, tab, LF and CR are whitespace.
        #expect(throws: JSONParseError.self) { try parse(bytes: [0x0B, 0x31]) }
        #expect(throws: JSONParseError.self) { try parse(bytes: [0x0C, 0x31]) }
        #expect(throws: JSONParseError.self) { try parse("\u{A0}1") }
    }

    @Test func depthBeyondTheLimit() {
        #expect(throws: JSONParseError.self) { try parse(nestedArrays(129)) }
        #expect(throws: JSONParseError.self) { try parse(nestedArrays(200)) }
        #expect(throws: JSONParseError.self) { try parse(nestedObjects(129)) }
        #expect(throws: JSONParseError.self) { try parse(nestedArrays(4), maxDepth: 3) }
        #expect(throws: JSONParseError.self) { try parse(#"{"a":[{"b":[]}]}"#, maxDepth: 3) }
        // Deep enough to overflow the stack of a parser without a bound.
        #expect(throws: JSONParseError.self) { try parse(String(repeating: "[", count: 1_000_000)) }
        #expect(throws: JSONParseError.self) { try parse(String(repeating: #"{"a":"#, count: 200_000)) }
    }

    @Test func errorsCarryTheOffset() throws {
        func offset(_ text: String) -> Int? {
            do {
                _ = try parse(text)
                return nil
            } catch {
                return error.offset
            }
        }
        #expect(offset("{} x") == 3)
        #expect(offset("[1,]") == 3)
        #expect(offset("   ") == 3)
        #expect(offset("[1 2]") == 3)
        #expect(offset(#"{"a":tru}"#) == 5)
        #expect(offset(nestedArrays(129)) == 128)
        let error = try #require(throws: JSONParseError.self) { try parse("{} x") }
        #expect(error.description.hasSuffix("at byte 3"))
    }
}

// MARK: - Property: an independent, randomly formatted writer

@Suite("JSON parser: random formatting")
struct JSONParserRandomFormattingTests {
    /// Writes `value` as JSON differently from the library's serializer:
    /// random whitespace, keys in random order, and characters randomly
    /// written as `\u` escapes (surrogate pairs for astral scalars).
    static func write(_ value: JSONValue, _ rng: inout SplitMix64, into out: inout String) {
        func ws() {
            let choices = ["", "", "", " ", "\n", "\t", "\r\n", "  "]
            out += choices[Int(rng.next() % UInt64(choices.count))]
        }
        func string(_ s: String) {
            out += "\""
            for scalar in s.unicodeScalars {
                let v = scalar.value
                let forceEscape = rng.next() % 4 == 0
                if v == 0x22 {
                    out += forceEscape ? "\\u0022" : "\\\""
                } else if v == 0x5C {
                    out += forceEscape ? "\\u005C" : "\\\\"
                } else if v < 0x20 || forceEscape {
                    if v >= 0x10000 {
                        let u = v - 0x10000
                        out += "\\u" + hex4(0xD800 + (u >> 10)) + "\\u" + hex4(0xDC00 + (u & 0x3FF))
                    } else {
                        out += "\\u" + hex4(v)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            out += "\""
        }
        func hex4(_ v: UInt32) -> String {
            let h = String(v, radix: 16, uppercase: rng.next() % 2 == 0)
            return String(repeating: "0", count: 4 - h.count) + h
        }
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.text
        case .string(let s): string(s)
        case .array(let elements):
            out += "["
            ws()
            for (i, e) in elements.enumerated() {
                if i > 0 {
                    ws()
                    out += ","
                    ws()
                }
                write(e, &rng, into: &out)
            }
            ws()
            out += "]"
        case .object(let members):
            out += "{"
            ws()
            var keys = Array(members.keys)
            keys.shuffle(using: &rng)
            for (i, k) in keys.enumerated() {
                if i > 0 {
                    ws()
                    out += ","
                    ws()
                }
                string(k)
                ws()
                out += ":"
                ws()
                write(members[k]!, &rng, into: &out)
            }
            ws()
            out += "}"
        }
    }

    @Test func parsesRandomlyFormattedValues() throws {
        var rng = SplitMix64(seed: 0xC0FFEE)
        for i in 0..<500 {
            let value = RandomJSON.value(&rng, depth: 0)
            var text = ""
            Self.write(value, &rng, into: &text)
            let padded = " \n" + text + "\t\r\n"
            let parsed = try parse(padded)
            #expect(parsed == value, "iteration \(i): \(text)")
            if parsed != value { break }
        }
    }
}

// MARK: - Known limitation

@Suite("JSON parser: Unicode normalization")
struct JSONUnicodeNormalizationTests {
    @Test func canonicallyEquivalentKeysAreDistinctMembers() throws {
        // "\u00e9" (é precomposed) and "e\u0301" (e + combining acute) are
        // different JSON member names, but Swift's String equality is
        // canonical equivalence, so [String: JSONValue] merges them.
        let v = try parse(#"{"\u00e9":1,"e\u0301":2}"#)
        withKnownIssue("Swift String == is canonical equivalence; such members collapse into one") {
            #expect(v.objectValue?.count == 2)
        }
        // The string values themselves keep their exact scalars.
        let a = try #require(try parse(#""\u00e9""#).stringValue)
        let b = try #require(try parse(#""e\u0301""#).stringValue)
        #expect(Array(a.utf8) == [0xC3, 0xA9])
        #expect(Array(b.utf8) == [0x65, 0xCC, 0x81])
    }
}
