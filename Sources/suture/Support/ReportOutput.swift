import Foundation
import SutureCore

/// Prints a report (text, or JSON with `--json`) and returns its exit code.
func emit(_ report: ApplyReport, plan: Plan?, json: Bool) -> Int32 {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(report) { print(String(decoding: data, as: UTF8.self)) }
    } else {
        var planPrinted = false
        if let plan, !plan.actions.isEmpty || !plan.drift.isEmpty || !plan.notes.isEmpty {
            print(PlanRenderer().text(plan))
            planPrinted = plan.actions.isEmpty && report.exitCode == .converged
        }
        if let failure = report.failure, report.exitCode == .error {
            FileHandle.standardError.write(Data((failure + "\n").utf8))
        }
        if planPrinted {
            // The plan text already ended with "No changes."; print only what the run added.
            let extra = report.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            if !extra.isEmpty { print(extra.joined(separator: "\n")) }
        } else {
            print(report.text)
        }
    }
    return report.exitCode.rawValue
}

