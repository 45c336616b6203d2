import Foundation

/// Binary data travels as standard base64 strings (RFC 4648, with padding).
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// nil when `text` is not valid base64.
    public static func decode(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { [UInt8]($0) } }
}
