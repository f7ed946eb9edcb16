import ArgumentParser
import Foundation
import SutureCore
import SutureELF
import SuturePatching

/// `suture patch check ID…`: integrity, compatibility and conflict checks; silent on success (SysCare).
struct PatchCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check patches: checksums, target compatibility (build-id, kernel), conflicts with live patches.",
        discussion: "Prints nothing and exits 0 when every check passes (as SysCare); otherwise one line per problem, exit 1.")

    @OptionGroup var common: PatchVerbOptions
    @Argument(help: "Patch identifiers.")
    var identifiers: [String]

    func run() throws {
        let context = try Context.forPatchVerbs(root: common.root)
        var problems: [String] = []
        let live = try context.statusReport()
        let installed = context.store.list()
        let (found, failed) = context.resolveEach(identifiers)
        for (_, bundle) in found {
            let m = bundle.metadata
            // Integrity: every checksum and the digest, re-read from disk.
            do {
                let fresh = try BundleReader.read(directory: URL(fileURLWithPath: bundle.path))
                if fresh.digest != bundle.digest {
                    problems.append("\(m.qualifiedName): bundle digest changed (\(bundle.digest.prefix(12))… → \(fresh.digest.prefix(12))…)")
                }
            } catch {
                problems.append("\(m.qualifiedName): \(error)")
            }
            // Compatibility.
            for e in m.entities {
                switch m.kind {
                case .user:
                    let path = context.paths.path(e.targetPath)
                    do {
                        let id = try ELFFile(path: path).buildID() ?? ""
                        if !e.targetBuildID.isEmpty && id != e.targetBuildID {
                            problems.append("\(m.qualifiedName): \(e.targetPath) has build-id \(id.isEmpty ? "(none)" : id), "
                                            + "the patch targets \(e.targetBuildID)")
                        }
                    } catch {
                        problems.append("\(m.qualifiedName): target \(e.targetPath): \(error)")
                    }
                case .kernel:
                    do { _ = try (context.host.kernelDriver as? SysfsKernelPatchDriver)?.check(bundle: bundle, entity: e) } catch {
                        problems.append("\(m.qualifiedName): \(error)")
                    }
                }
            }
            // Conflicts: another live patch replacing the same function of the same target.
            let mine = Set(m.entities.flatMap { e in (e.functions ?? []).map { "\(e.targetPath)\t\($0.symbol)" } })
            for other in installed where other.uuid != m.uuid {
                let status = live.patches.first { $0.uuid == other.uuid }
                guard let status, status.status == .activated || status.status == .accepted else { continue }
                let theirs = Set(other.bundle.metadata.entities.flatMap { e in (e.functions ?? []).map { "\(e.targetPath)\t\($0.symbol)" } })
                let both = mine.intersection(theirs).sorted()
                if !both.isEmpty {
                    problems.append("\(m.qualifiedName): conflicts with live patch \(other.bundle.metadata.qualifiedName) "
                                    + "(\(other.uuid)) on " + both.map { $0.replacingOccurrences(of: "\t", with: ":") }.joined(separator: ", "))
                }
            }
        }
        if !problems.isEmpty || failed > 0 {
            for p in problems { FileHandle.standardError.write(Data("error: \(p)\n".utf8)) }
            throw ExitCode(1)
        }
    }
}
