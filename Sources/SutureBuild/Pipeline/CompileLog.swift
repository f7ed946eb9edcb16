import Foundation

/// The compiles of one build, as `CompiledUnit`s, read from the wrapper's records and written as JSON lines
/// (`compiles.jsonl` in the work directory: one object per line with `source`, `object`, `arguments`,
/// `directory`).
public enum CompileLog {
    /// Turns wrapper records into units: one per source of each compile to an object, with the object's
    /// absolute path and the source relative to `root` (absolute when outside it). Records whose object no
    /// longer exists (configure checks, temporaries) are dropped; when several compiles wrote the same
    /// object, the last one wins.
    public static func units(from records: [CompilerWrapper.Record], root: String) -> [CompiledUnit] {
        let rootPath = URL(fileURLWithPath: root).standardizedFileURL.path
        var byObject: [String: Int] = [:]
        var units: [CompiledUnit] = []
        for record in records {
            let invocation = CompilerInvocation(arguments: Array(record.arguments.dropFirst()))
            for output in invocation.outputs {
                let object = absolute(output.object, in: record.directory)
                guard FileManager.default.fileExists(atPath: object) else { continue }
                let source = relative(absolute(output.source, in: record.directory), to: rootPath)
                let unit = CompiledUnit(source: source, object: object, arguments: record.arguments,
                                        directory: record.directory)
                if let i = byObject[object] {
                    units[i] = unit
                } else {
                    byObject[object] = units.count
                    units.append(unit)
                }
            }
        }
        return units
    }

    /// Writes `units` as JSON lines to `file`.
    /// - Throws: `BuildError` when the file cannot be written.
    public static func write(_ units: [CompiledUnit], to file: URL) throws(BuildError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = Data()
        do {
            for unit in units {
                text.append(try encoder.encode(unit))
                text.append(0x0a)
            }
            try text.write(to: file, options: .atomic)
        } catch {
            throw BuildError("cannot write \(file.path): \(error.localizedDescription)")
        }
    }

    /// Reads a JSON lines file written by `write`.
    /// - Throws: `BuildError` when it cannot be read or parsed.
    public static func read(_ file: URL) throws(BuildError) -> [CompiledUnit] {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw BuildError("cannot read \(file.path)")
        }
        var units: [CompiledUnit] = []
        for line in data.split(separator: 0x0a) where !line.isEmpty {
            do { units.append(try JSONDecoder().decode(CompiledUnit.self, from: Data(line))) } catch {
                throw BuildError("\(file.path): a line is not a compile record: \(error)")
            }
        }
        return units
    }

    /// `path` made absolute against `directory` and normalized (`.`/`..` removed, symlinks kept).
    static func absolute(_ path: String, in directory: String) -> String {
        let full = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
        return URL(fileURLWithPath: full).standardizedFileURL.path
    }

    /// `path` relative to `root` when inside it, else unchanged.
    static func relative(_ path: String, to root: String) -> String {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    /// Rewrites a path under `from` to the same place under `to` (e.g. an object of the build tree to its
    /// copy in the cache's pristine tree).
    static func rebase(_ path: String, from: String, to: String) -> String {
        let prefix = from.hasSuffix("/") ? from : from + "/"
        return path.hasPrefix(prefix) ? (to as NSString).appendingPathComponent(String(path.dropFirst(prefix.count))) : path
    }
}
