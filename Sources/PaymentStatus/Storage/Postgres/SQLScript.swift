/// Splits a migration file into its statements, for PostgreSQL's extended
/// protocol, which runs one statement at a time. Semicolons inside quotes,
/// quoted identifiers, dollar quotes (`$$ … $$`, `$tag$ … $tag$`) and
/// comments do not split.
enum SQLScript {
    static func statements(_ script: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var characters = Array(script)[...]

        func take(until terminator: String) {
            let end = Array(terminator)
            while !characters.isEmpty {
                if characters.starts(with: end) {
                    current += terminator
                    characters = characters.dropFirst(end.count)
                    return
                }
                current.append(characters.removeFirst())
            }
        }

        while let character = characters.first {
            if characters.starts(with: ["-", "-"]) {
                // A line comment is dropped, up to its line break.
                while let next = characters.first, next != "\n" { characters.removeFirst() }
            } else if characters.starts(with: ["/", "*"]) {
                characters = characters.dropFirst(2)
                while !characters.isEmpty, !characters.starts(with: ["*", "/"]) { characters.removeFirst() }
                characters = characters.dropFirst(2)
            } else if character == "'" || character == "\"" {
                current.append(characters.removeFirst())
                take(until: String(character))
            } else if character == "$", let tag = dollarTag(characters) {
                current += tag
                characters = characters.dropFirst(tag.count)
                take(until: tag)
            } else if character == ";" {
                characters.removeFirst()
                append(current, to: &statements)
                current = ""
            } else {
                current.append(characters.removeFirst())
            }
        }
        append(current, to: &statements)
        return statements
    }

    /// `$$` or `$name$` at the start of `characters`, if that is what is there.
    private static func dollarTag(_ characters: ArraySlice<Character>) -> String? {
        var tag = "$"
        for character in characters.dropFirst() {
            if character == "$" { return tag + "$" }
            guard character.isLetter || character.isNumber || character == "_" else { return nil }
            tag.append(character)
        }
        return nil
    }

    private static func append(_ statement: String, to statements: inout [String]) {
        let trimmed = statement.trimmed
        if !trimmed.isEmpty { statements.append(trimmed) }
    }
}
