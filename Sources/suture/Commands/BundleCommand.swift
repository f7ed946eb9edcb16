import ArgumentParser
import Foundation
import SutureCore

/// `suture bundle …`: work with patch bundles (format: docs/bundle.md).
///
/// Subcommands live in their own files; add new ones to `subcommandList`.
struct BundleCommand: ParsableCommand {
    /// The `bundle` subcommands (`create` is added by `BundleCreateCommand.swift`).
    static let subcommandList: [any ParsableCommand.Type] = [
        BundleInspectCommand.self,
        BundleVerifyCommand.self,
        BundleCreateCommand.self,
        BundleCreateKernelCommand.self,
    ]

    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Create, inspect and verify patch bundles.",
        subcommands: subcommandList
    )
}

/// Prints diagnostics to stderr and exits 1.
func failWithDiagnostics(_ error: DiagnosticError) -> ExitCode {
    FileHandle.standardError.write(Data((error.description + "\n").utf8))
    return ExitCode(1)
}

/// `suture bundle inspect PATH [--json]`.
struct BundleInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a bundle's metadata (after verifying every checksum).",
        discussion: "Exit status: 0 when the bundle verifies, 1 otherwise (the problem is printed to stderr)."
    )

    @Argument(help: "The bundle directory.", completion: .directory)
    var path: String

    @Flag(help: "Print JSON (format_version 1): the metadata, the absolute path and the digest.")
    var json = false

    func run() throws {
        let bundle: ResolvedBundle
        do {
            bundle = try BundleReader.read(directory: URL(fileURLWithPath: path))
        } catch {
            throw failWithDiagnostics(error)
        }
        if json {
            print(try BundleRendering.json(bundle))
        } else {
            print(BundleRendering.text(bundle), terminator: "")
        }
    }
}

/// `suture bundle verify PATH`.
struct BundleVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify every checksum of a bundle and print its digest.",
        discussion: """
            Checks patch.yaml, every payload_sha256 and every source patch sha256, and that the bundle holds \
            only regular files and directories. Prints the digest (what a manifest's sha256 pins). \
            Exit status: 0 verified, 1 a problem (the tampered file is named on stderr).
            """
    )

    @Argument(help: "The bundle directory.", completion: .directory)
    var path: String

    func run() throws {
        let bundle: ResolvedBundle
        do {
            bundle = try BundleReader.read(directory: URL(fileURLWithPath: path))
        } catch {
            throw failWithDiagnostics(error)
        }
        let m = bundle.metadata
        func count(_ n: Int, _ noun: String) -> String {
            n == 1 ? "1 \(noun)" : "\(n) \(noun)\(noun.hasSuffix("h") ? "es" : "s")"
        }
        print("verified \(m.qualifiedName) (\(m.uuid)): \(count(m.entities.count, "payload")), \(count(m.patches.count, "source patch"))")
        print("digest: \(bundle.digest)")
    }
}

/// Human and JSON renderings of a bundle, shared by `inspect` and other commands.
enum BundleRendering {
    /// JSON with `format_version`, `path`, `digest` and `metadata` (the patch.yaml model, snake_case keys).
    static func json(_ bundle: ResolvedBundle) throws -> String {
        struct Output: Encodable {
            let formatVersion = 1
            let path: String
            let digest: String
            let metadata: BundleMetadata
            enum CodingKeys: String, CodingKey { case formatVersion = "format_version", path, digest, metadata }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(Output(path: bundle.path, digest: bundle.digest, metadata: bundle.metadata))
        return String(decoding: data, as: UTF8.self)
    }

    /// Readable multi-line text, ending with a newline.
    static func text(_ bundle: ResolvedBundle) -> String {
        let m = bundle.metadata
        var lines: [String] = []
        func row(_ key: String, _ value: String, indent: Int = 0) {
            let pad = String(repeating: " ", count: indent)
            lines.append(pad + (key + ":").padding(toLength: 18 - indent, withPad: " ", startingAt: 0) + value)
        }
        lines.append("Bundle \(m.qualifiedName)")
        row("path", bundle.path)
        row("digest", bundle.digest)
        row("uuid", m.uuid)
        row("kind", m.kind.rawValue)
        row("name", m.name)
        row("version", "\(m.version)-\(m.release)")
        row("target", "\(m.target.package) \(m.target.version) (\(m.target.arch))")
        row("description", m.description.isEmpty ? "(none)" : m.description.replacingOccurrences(of: "\n", with: "\n" + String(repeating: " ", count: 18)))
        lines.append("entities (\(m.entities.count)):")
        for e in m.entities {
            lines.append("  - \(e.targetPath)")
            if !e.targetBuildID.isEmpty { row("build-id", e.targetBuildID, indent: 4) }
            row("payload", "\(e.payload)  sha256 \(e.payloadSHA256)", indent: 4)
            if let module = e.moduleName { row("module", module, indent: 4) }
            if let replace = e.replace { row("replace", replace ? "yes (atomic replace)" : "no", indent: 4) }
            if let functions = e.functions {
                lines.append("    functions (\(functions.count)):")
                for f in functions {
                    lines.append("      \(f.symbol) @ 0x\(String(f.offset, radix: 16)) (\(f.size) bytes) -> \(f.replacement)")
                }
            }
            if let imports = e.imports, !imports.isEmpty { row("imports", imports.joined(separator: ", "), indent: 4) }
        }
        lines.append("patches (\(m.patches.count)):")
        for p in m.patches { lines.append("  - \(p.file)  sha256 \(p.sha256)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
