import Foundation
import SutureELF

/// Where the symbols of a target come from (`--symbols auto|FILE`).
public struct SymbolChoice: Sendable, Hashable, Codable {
    /// The kinds of source, in the order `auto` tries them.
    public enum Source: String, Sendable, Hashable, Codable {
        /// The target's own `.symtab`.
        case target
        /// A file given with `--symbols`.
        case file
        /// `/usr/lib/debug/.build-id/xx/rest.debug`.
        case debugFile = "debug-file"
        /// An ELF of the plain rebuild with the target's build-id.
        case plainRebuild = "plain-rebuild"
    }

    /// Which source.
    public var source: Source
    /// The ELF with the `.symtab` (equal to the target's path for `.target`).
    public var path: String
}

/// Chooses the symbol file of a target.
///
/// `auto` takes, in this order: the target's `.symtab`; the installed detached debug file
/// `<debugRoot>/.build-id/xx/rest.debug` when it has the target's build-id and a `.symtab`; an ELF of a
/// plain rebuild of the original tree (no wrapper flags, the build directory mapped to `.` with
/// `-ffile-prefix-map`) with the target's build-id. The debug file is tried before the rebuild because it
/// costs nothing and is as exact (same build-id); the rebuild is a full build. When none fits, the error
/// says what each one gave.
public enum SymbolLocator {
    /// Matches explicit `--symbols FILE`s to targets by build-id.
    /// - Returns: target path → file.
    /// - Throws: `BuildError` when a file is not an ELF with a `.symtab`, or matches no target.
    public static func explicit(_ files: [String], targets: [TargetFiles.Target]) throws(BuildError) -> [String: String] {
        var chosen: [String: String] = [:]
        for file in files {
            let absolute = CompileLog.absolute(file, in: FileManager.default.currentDirectoryPath)
            let elf: ELFObjectFile
            let id: String?
            do {
                elf = try ELFObjectFile(path: absolute)
                id = try elf.buildID()
            } catch {
                throw BuildError("--symbols \(file): \(error.message)")
            }
            guard ((try? elf.symbols(.symtab)) ?? []).count > 1 else {
                throw BuildError("--symbols \(file) has no .symtab (it is stripped too)")
            }
            let matching = targets.filter { $0.buildID == id }
            guard !matching.isEmpty else {
                throw BuildError("--symbols \(file) has build-id \(id ?? "none"), which no target has (" +
                                 targets.map { "\($0.path): \($0.buildID)" }.joined(separator: ", ") + "): not the same build")
            }
            for t in matching { chosen[t.path] = absolute }
        }
        return chosen
    }

    /// The detached debug file path for a build-id: `<debugRoot>/.build-id/xx/rest.debug`.
    public static func debugFilePath(buildID: String, debugRoot: String = "/usr/lib/debug") -> String {
        let id = buildID.lowercased()
        guard id.count > 2 else { return "\(debugRoot)/.build-id/\(id).debug" }
        return "\(debugRoot)/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug"
    }

    /// The `auto` choice for `target`.
    /// - Parameters:
    ///   - plainRebuild: runs (once, lazily) the plain rebuild and returns its ELF files.
    /// - Throws: `BuildError` listing what was tried when nothing has the target's build-id and symbols,
    ///   or the plain rebuild's own failure.
    public static func locate(_ target: TargetFiles.Target, debugRoot: String = "/usr/lib/debug",
                              plainRebuild: () throws(BuildError) -> [String]) throws(BuildError) -> SymbolChoice {
        if target.hasSymtab { return SymbolChoice(source: .target, path: target.path) }
        var tried = ["\(target.path) has no .symtab"]
        let debug = debugFilePath(buildID: target.buildID, debugRoot: debugRoot)
        if FileManager.default.fileExists(atPath: debug) {
            if let elf = try? ELFObjectFile(path: debug), (try? elf.buildID()) == target.buildID,
               ((try? elf.symbols(.symtab)) ?? []).count > 1 {
                return SymbolChoice(source: .debugFile, path: debug)
            }
            tried.append("\(debug) exists but has another build-id or no .symtab")
        } else {
            tried.append("\(debug) does not exist")
        }
        let rebuilt = try plainRebuild()
        var ids: [String] = []
        for file in rebuilt {
            guard let elf = try? ELFObjectFile(path: file), let id = try? elf.buildID() else { continue }
            if id == target.buildID, ((try? elf.symbols(.symtab)) ?? []).count > 1 {
                return SymbolChoice(source: .plainRebuild, path: file)
            }
            ids.append("\((file as NSString).lastPathComponent) \(id)")
        }
        tried.append(rebuilt.isEmpty ? "the plain rebuild produced no ELF file"
                     : "no ELF of the plain rebuild has build-id \(target.buildID) (it built \(ids.joined(separator: ", ")); the target was built from another tree, with other flags or at a path the prefix map does not hide)")
        throw BuildError("no symbols for \(target.path) (build-id \(target.buildID)): " + tried.joined(separator: "; ") +
                         ". Pass --symbols FILE (an unstripped build or debug file with that build-id).")
    }
}
