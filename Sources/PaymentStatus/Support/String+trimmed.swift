extension StringProtocol {
    /// Without leading and trailing whitespace; configuration values and
    /// header fields are read through it.
    var trimmed: String {
        String(self.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
