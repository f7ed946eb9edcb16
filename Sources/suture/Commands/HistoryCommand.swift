import ArgumentParser
import Foundation
import SutureCore

/// `suture history`: the generations recorded by successful applies.
struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List the generations recorded by successful applies (for `suture rollback N`).")

    @Option(help: "Filesystem root.")
    var root: String = "/"

    @Flag(help: "Print JSON (an array of generations, format_version 1 each).")
    var json = false

    func run() throws {
        let store = GenerationStore(paths: StatePaths(root: root))
        let generations = store.all()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(generations), as: UTF8.self))
            return
        }
        if generations.isEmpty {
            print("No generations yet (a successful `suture apply` records one).")
            return
        }
        for g in generations {
            var line = "\(g.number)  \(g.time)  \(g.changes) change(s)  manifests \(g.manifestDigest.prefix(12))"
            if let git = g.git { line += "  git \(git.commit.prefix(12))\(git.dirty ? "+dirty" : "")" }
            print(line)
            print("   \(g.command)")
            for p in g.livePatchSummary { print("   - \(p)") }
            if !g.partial.isEmpty { print("   Partial: \(g.partial.joined(separator: ", "))") }
        }
    }
}
