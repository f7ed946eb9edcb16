import ArgumentParser
import Foundation
import SutureCore

/// `suture validate PATHS… [--root DIR] [--json]`: lints manifests (for CI in a GitOps repository).
///
/// Reads the host config under `--root` (for `requirePins` and the defaults), loads every manifest, and
/// prints all diagnostics, sorted by location, as `file:line:column: severity: message` with the source
/// line and a caret. Exit status: 0 when there are no errors (warnings are printed), 1 on any error.
/// Nothing is written anywhere.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check manifests for errors without touching the system (lint for CI).",
        discussion: """
        Without --hostname or --label, every PatchSet is checked as if it selected the host (lint mode): \
        bundles and pins of all PatchSets are verified, and two PatchSets conflict only when their host \
        selectors may overlap. With --hostname or --label, the manifests are validated as that host would \
        load them. Exit status: 0 valid (warnings allowed), 1 errors.
        """)

    @Argument(help: "Manifest files or directories (default: the config's manifests under --root).")
    var paths: [String] = []

    @Option(help: "Filesystem root for /etc/suture (config and labels).")
    var root: String = "/"

    @Flag(help: "Print a JSON report on stdout instead of text.")
    var json = false

    @Option(help: "Validate as the host with this hostname (default: lint mode, every PatchSet).")
    var hostname: String?

    @Option(name: .customLong("label"), help: "A host label KEY=VALUE for host mode (repeatable).")
    var labels: [String] = []

    func run() throws {
        var config: SutureConfig
        var diagnostics: [Diagnostic] = []
        do {
            let loaded = try SutureConfig.load(root: root)
            config = loaded.config
            diagnostics += loaded.warnings
        } catch {
            try finish(diagnostics: error.diagnostics, files: [], patchSets: [], patches: 0, repeats: 0)
            return
        }
        var hostMode = hostname != nil
        for label in labels {
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, Labels.isValidKey(String(parts[0])) else {
                throw ValidationError("--label expects KEY=VALUE, got '\(label)'")
            }
            config.labels[String(parts[0])] = String(parts[1])
            hostMode = true
        }
        let loader = ManifestLoader(config: config, hostname: hostname, allHosts: !hostMode,
                                    readBundle: { url throws(DiagnosticError) in
                                        try BundleReader.read(directory: url)
                                    })
        let targets = paths.isEmpty ? config.manifestPaths(root: root) : paths
        let result = loader.load(paths: targets)
        diagnostics += result.diagnostics
        diagnostics.sort(by: Diagnostic.sourceOrder)
        try finish(diagnostics: diagnostics, files: result.files, patchSets: result.patchSets.map(\.name),
               patches: result.patchCount, repeats: result.identicalRepeats)
    }

    /// Prints the report; throws `ExitCode.failure` (exit 1) when there are errors.
    ///
    /// `patches` counts a declaration repeated identically once; `repeats` is how many such repeats were
    /// merged (each has a warning saying where both declarations are).
    private func finish(diagnostics: [Diagnostic], files: [String], patchSets: [String], patches: Int,
                        repeats: Int) throws {
        let errors = diagnostics.filter { $0.severity == .error }.count
        let warnings = diagnostics.filter { $0.severity == .warning }.count
        if json {
            let report = ValidateReport(formatVersion: 1, valid: errors == 0, files: files, patchSets: patchSets,
                                        patches: patches, identicalRepeats: repeats, errors: errors, warnings: warnings,
                                        diagnostics: diagnostics.map(ValidateReport.Entry.init))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            if let data = try? encoder.encode(report) {
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
        } else {
            var text = diagnostics.map { $0.description + "\n" }.joined()
            let summary = "\(files.count) file\(files.count == 1 ? "" : "s"), \(patchSets.count) PatchSet"
                + "\(patchSets.count == 1 ? "" : "s"), \(patches) patch\(patches == 1 ? "" : "es")"
                + (repeats == 0 ? "" : " (\(repeats) identical repeat\(repeats == 1 ? "" : "s") merged, see the warning)")
                + ": "
                + "\(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")\n"
            if errors > 0 {
                text += summary
                FileHandle.standardError.write(Data(text.utf8))
            } else {
                if !text.isEmpty { FileHandle.standardError.write(Data(text.utf8)) }
                FileHandle.standardOutput.write(Data(("valid: " + summary).utf8))
            }
        }
        if errors > 0 { throw ExitCode.failure }
    }
}

/// The `--json` output of `suture validate` (`format_version` 1; keys in snake_case).
struct ValidateReport: Encodable {
    struct Entry: Encodable {
        var severity: String
        var file: String?
        var line: Int?
        var column: Int?
        var message: String
        var notes: [Entry]

        init(_ diagnostic: Diagnostic) {
            severity = diagnostic.severity.rawValue
            file = diagnostic.location?.file
            line = diagnostic.location?.line
            column = diagnostic.location?.column
            message = diagnostic.message
            notes = diagnostic.notes.map(Entry.init)
        }
    }

    var formatVersion: Int
    var valid: Bool
    var files: [String]
    var patchSets: [String]
    /// Distinct patch declarations (an identical repeat counted once).
    var patches: Int
    /// Declarations that repeated an earlier one identically and were merged into it.
    var identicalRepeats: Int
    var errors: Int
    var warnings: Int
    var diagnostics: [Entry]
}
