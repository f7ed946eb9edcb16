import ArgumentParser
import Foundation
import SutureCore
import SuturePatching

/// `suture snapshot`: writes this host's live state as one versioned JSON document
/// (`schema/live-state.schema.json`) for `suture plan --live FILE` in code review.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Write this host's live state as a JSON snapshot for `suture plan --live`.",
        discussion: """
        The snapshot holds what the planner needs: hostname, labels, boot id, kernel release, kernel \
        livepatch state, the patch store (bundle ids and digests), every process that maps an executable \
        ELF object (pid, comm, start time, objects with build-ids, Suture patch markers) and the installed \
        package versions. It holds no environment, no command lines (only comm) and no file contents. \
        Run it as root (e.g. from the reconcile timer) and publish the file where the manifests repository \
        keeps host snapshots (see docs/gitops.md). Output is deterministic for a given host state.
        """
    )

    @OptionGroup var rootOptions: RootOptions

    @Option(name: [.short, .long], help: ArgumentHelp("Write the snapshot here (atomically) instead of standard output.", valueName: "FILE"))
    var output: String?

    @Flag(name: .long, help: "Record only the targets of this host's manifests and store, not every executable object.")
    var targetsOnly = false

    func run() throws {
        let context: Context
        var desired = DesiredState(patches: [])
        do {
            context = try Context.load(rootOptions)
            Terminal.printDiagnostics(context.configWarnings)
            // The host's own manifests, when it has any, add their targets and packages.
            let paths = context.manifestPaths([]).filter { FileManager.default.fileExists(atPath: $0) }
            if !paths.isEmpty {
                let (loaded, warnings) = try context.loadDesired(paths: paths)
                desired = loaded
                Terminal.printDiagnostics(warnings)
            }
        } catch {
            Terminal.printDiagnostics(error.diagnostics)
            throw ExitCode(1)
        }
        let bundles = context.store.list()
        var interest = LiveInterest(desired: desired, store: bundles)
        if !targetsOnly {
            let extra = SnapshotInterest.executableObjects(root: context.root).map { TargetFile(path: $0) }
            interest = LiveInterest(targets: interest.targets + extra, packages: interest.packages)
        }
        var live: LiveState
        do {
            live = try context.host.liveReader.read(interest: interest, store: bundles)
        } catch {
            Terminal.printError("error: \(error.description)")
            throw ExitCode(1)
        }
        // Every installed package, so plans for packages no manifest names yet are right.
        if let all = try? PackageDatabase(root: context.root).dpkgPackages() {
            var packages: [String: [String]] = [:]
            for package in all { packages[package.name, default: []].append(package.version) }
            for (name, versions) in packages {
                live.packages[name] = Array(Set(versions + (live.packages[name] ?? []))).sorted()
            }
        }
        Terminal.printUnreadable(live.unreadable)
        let document = LiveSnapshot.make(live: live, at: Date(), sutureVersion: Suture.configuration.version)
        let data = try document.encoded()
        if let output {
            do {
                try Terminal.writeAtomically(String(decoding: data, as: UTF8.self), to: output)
            } catch {
                Terminal.printDiagnostics(error.diagnostics)
                throw ExitCode(1)
            }
        } else {
            FileHandle.standardOutput.write(data)
        }
    }
}
