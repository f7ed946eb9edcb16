import Foundation

/// Applies the fix patches to a tree, in order, with `patch -p1 --batch --forward --fuzz=0`: a reversed or
/// already applied patch is refused, never silently reverted; every context line must match (as
/// `dpkg-source` requires), so a hunk is never placed where its context only roughly fits; no backup or
/// reject files are left.
public enum PatchApplier {
    /// Applies `patches` to `tree`. Each patch is first tried with `--dry-run`, so a patch that does not
    /// apply leaves the tree as the previous patches left it.
    /// - Returns: the files each patch touched, relative to `tree` (from patch's own output).
    /// - Throws: `BuildError` naming the patch, the file and the hunk that failed (from patch's output).
    @discardableResult
    public static func apply(_ patches: [URL], to tree: URL) throws(BuildError) -> [[String]] {
        var touched: [[String]] = []
        for patch in patches {
            guard FileManager.default.isReadableFile(atPath: patch.path) else {
                throw BuildError("--patch \(patch.path): no such readable file")
            }
            let base = ["-p1", "--batch", "--forward", "--fuzz=0", "--no-backup-if-mismatch", "--reject-file=-",
                        "-d", tree.path, "-i", patch.path]
            let dry = try ToolRunner.run("/usr/bin/patch", ["--dry-run"] + base)
            guard dry.status == 0 else { throw failure(patch, dry.output) }
            let real = try ToolRunner.run("/usr/bin/patch", base)
            guard real.status == 0 else { throw failure(patch, real.output) }
            touched.append(real.output.split(separator: "\n").compactMap { line in
                guard line.hasPrefix("patching file ") else { return nil }
                var name = String(line.dropFirst("patching file ".count))
                if name.hasPrefix("'"), name.hasSuffix("'"), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
                return name
            })
        }
        return touched
    }

    /// One error for a patch that does not apply: the failed hunks and what patch said about them.
    static func failure(_ patch: URL, _ output: String) -> BuildError {
        var file = ""
        var problems: [String] = []
        for raw in output.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("patching file ") || line.hasPrefix("checking file ") {
                file = line.components(separatedBy: " file ").last ?? ""
                if file.hasPrefix("'"), file.hasSuffix("'"), file.count >= 2 { file = String(file.dropFirst().dropLast()) }
            } else if line.hasPrefix("Hunk #"), line.contains("FAILED") {
                problems.append("\(file): \(line)")
            } else if line.contains("Reversed (or previously applied) patch detected") {
                problems.append("\(file): already applied (or reversed)")
            } else if line.hasPrefix("can't find file to patch") || line.hasPrefix("No file to patch") {
                problems.append("a file it patches does not exist in the tree (\(line))")
            } else if line.contains("Only garbage was found") || line.contains("malformed patch") {
                problems.append(line)
            }
        }
        if problems.isEmpty {
            problems = [output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").suffix(5).joined(separator: "; ")]
        }
        return BuildError("patch \(patch.path) does not apply: " + problems.joined(separator: "; "))
    }
}
