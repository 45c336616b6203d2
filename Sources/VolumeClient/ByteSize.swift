/// Byte counts as people write them: `4096`, `10G`, `10GiB`, `512MiB`, `1.5TiB`.
///
/// Units are binary multiples (K = 1024, M = 1024², ... P = 1024⁵) whichever
/// spelling is used: `K`, `KB`, `Ki` and `KiB` (any letter case) all mean
/// 1024. A plain number, or one ending in `B`, is bytes. A fraction is allowed
/// with a unit, and the result is rounded down to a whole byte; a fraction of a
/// plain byte count is refused. Spaces between the number and the unit are
/// allowed.
///
/// ```swift
/// try ByteSize.parse("10GiB")      // 10_737_418_240
/// try ByteSize.parse("1.5K")       // 1536
/// ByteSize.format(10_485_760)      // "10 MiB"
/// ```
public enum ByteSize {
    /// Why a size could not be read.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case invalid(String)
        case overflow(String)

        public var description: String {
            switch self {
            case .empty: "empty size"
            case .invalid(let s):
                "invalid size '\(s)': expected bytes, or a number with a unit K, M, G, T or P (such as 10GiB, 512M, 1.5TiB)"
            case .overflow(let s): "size '\(s)' is too large (the maximum is \(Int64.max) bytes)"
            }
        }
    }

    private static let units: [Character: Int] = ["k": 1, "m": 2, "g": 3, "t": 4, "p": 5]
    private static let unitNames = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]

    /// Parses a size into bytes.
    ///
    /// - Throws: ``ParseError`` when the text is not a size, or when the size
    ///   does not fit in an `Int64`.
    public static func parse(_ text: String) throws(ParseError) -> Int64 {
        let s = text.trimmingSpaces()
        if s.isEmpty { throw .empty }
        let chars = Array(s)
        var i = 0
        var whole: [Character] = []
        while i < chars.count, chars[i].isASCII, chars[i].isNumber {
            whole.append(chars[i])
            i += 1
        }
        var fraction: [Character] = []
        var hasPoint = false
        if i < chars.count, chars[i] == "." {
            hasPoint = true
            i += 1
            while i < chars.count, chars[i].isASCII, chars[i].isNumber {
                fraction.append(chars[i])
                i += 1
            }
        }
        if whole.isEmpty && fraction.isEmpty { throw .invalid(text) }
        if hasPoint && fraction.isEmpty { throw .invalid(text) }
        while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 }

        // The unit: [KMGTP] [i] [B], or B alone, or nothing.
        var exponent = 0
        let suffix = Array(String(chars[i...]).lowercased())
        switch suffix.count {
        case 0:
            break
        case 1 where suffix[0] == "b":
            break
        default:
            guard let e = units[suffix[0]] else { throw .invalid(text) }
            exponent = e
            let rest = String(suffix.dropFirst())
            guard ["", "i", "b", "ib"].contains(rest) else { throw .invalid(text) }
        }
        if exponent == 0 && !fraction.isEmpty { throw .invalid(text) }

        let multiplier = UInt64(1) << (10 * exponent)
        // Leading zeros do not change the value, and keep long inputs cheap.
        let wholeDigits = whole.drop { $0 == "0" }
        guard wholeDigits.count <= 19, let w = UInt64(wholeDigits.isEmpty ? "0" : String(wholeDigits)) else {
            throw .overflow(text)
        }
        let (product, over) = w.multipliedReportingOverflow(by: multiplier)
        if over { throw .overflow(text) }
        var total = product
        if !fraction.isEmpty {
            // floor(0.fraction × multiplier), exactly: fraction × multiplier / 10^k.
            let digits = Array(fraction.prefix(19))
            let numerator = UInt64(String(digits))!
            var denominator: UInt64 = 1
            for _ in digits { denominator *= 10 }
            let wide = multiplier.multipliedFullWidth(by: numerator)
            let (q, _) = denominator.dividingFullWidth(wide)
            let (sum, o) = total.addingReportingOverflow(q)
            if o { throw .overflow(text) }
            total = sum
        }
        guard total <= UInt64(Int64.max) else { throw .overflow(text) }
        return Int64(total)
    }

    /// A size for people: `512 B`, `10 MiB`, `1.5 GiB` (two decimals at
    /// most, trailing zeros dropped; binary units).
    public static func format(_ bytes: Int64) -> String {
        if bytes < 0 { return "-" + format(bytes == .min ? .max : -bytes) }
        var unit = 0
        while unit + 1 < unitNames.count, bytes >= Int64(1) << (10 * (unit + 1)) { unit += 1 }
        if unit == 0 { return "\(bytes) B" }
        let divisor = UInt64(1) << (10 * unit)
        let b = UInt64(bytes)
        var whole = b / divisor
        // Hundredths, rounded half up.
        var hundredths = UInt64((Double(b % divisor) / Double(divisor) * 100).rounded())
        if hundredths >= 100 {
            whole += 1
            hundredths -= 100
        }
        if whole == 1024, unit + 1 < unitNames.count {
            whole = 1
            unit += 1
        }
        var text = String(whole)
        if hundredths > 0 {
            text += hundredths % 10 == 0 ? ".\(hundredths / 10)" : (hundredths < 10 ? ".0\(hundredths)" : ".\(hundredths)")
        }
        return "\(text) \(unitNames[unit])"
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}
