import ArgumentParser
import Foundation
import SutureCore

/// `suture patch list`: every known patch, columns as SysCare's (Uuid, Name, Status).
struct PatchListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List patches (store, manifests, live) with their status, as SysCare.")

    @OptionGroup var common: PatchVerbOptions

    func run() throws {
        let context = try PatchVerbContext(root: common.root)
        let report = try context.statusReport()
        let names = Dictionary(context.known.map { ($0.metadata.uuid, $0.metadata.qualifiedName) },
                               uniquingKeysWith: { a, _ in a })
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print(pad("Uuid", 40) + " " + pad("Name", 60) + " " + "Status")
        for entry in report.patches {
            let uuid = entry.uuid ?? "-"
            print(pad(uuid, 40) + " " + pad(entry.uuid.flatMap { names[$0] } ?? entry.name, 60) + " " + entry.statusText)
        }
    }
}
