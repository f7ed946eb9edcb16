import ArgumentParser
import Foundation
import SutureCore

/// `suture patch list`: every known patch, columns as SysCare's (Uuid, Name, Status).
struct PatchListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List patches (store, manifests, live) with their status, as SysCare.")

    @OptionGroup var common: PatchVerbOptions

    @Flag(help: "Print the list as JSON (format_version 1) instead of SysCare's table.")
    var json = false

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        let report = try context.statusReport()
        let names = Dictionary(context.known.map { ($0.metadata.uuid, $0.metadata.qualifiedName) },
                               uniquingKeysWith: { a, _ in a })
        if json {
            let list = PatchListReport(formatVersion: 1, patches: report.patches.map { entry in
                PatchListReport.Entry(uuid: entry.uuid, name: entry.uuid.flatMap { names[$0] } ?? entry.name,
                                      status: entry.status.rawValue, conditions: entry.conditions.map(\.rawValue))
            })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            FileHandle.standardOutput.write(try encoder.encode(list) + Data("\n".utf8))
            return
        }
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print(pad("Uuid", 40) + " " + pad("Name", 60) + " " + "Status")
        for entry in report.patches {
            let uuid = entry.uuid ?? "-"
            print(pad(uuid, 40) + " " + pad(entry.uuid.flatMap { names[$0] } ?? entry.name, 60) + " " + entry.statusText)
        }
    }
}

/// The `--json` output of `suture patch list` (`format_version` 1; keys in snake_case): one entry per
/// row of the table, in the same order.
struct PatchListReport: Encodable {
    /// One patch.
    struct Entry: Encodable {
        /// Bundle uuid; null for a live patch Suture has no bundle for.
        var uuid: String?
        /// `TARGET/NAME` as in the table (SysCare's name), or the bare name when no bundle is known.
        var name: String
        /// `NOT-APPLIED`, `DEACTIVATED`, `ACTIVATED` or `ACCEPTED` (docs/apply.md).
        var status: String
        /// Qualifying conditions (`Partial`, `Drifted`, …), sorted; the table shows them in parentheses.
        var conditions: [String]
    }

    var formatVersion: Int
    var patches: [Entry]
}
