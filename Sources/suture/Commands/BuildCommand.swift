import ArgumentParser
import Foundation
import SutureBuild

/// `suture build`: a user patch bundle from a source tree and fix patches (docs/build.md).
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a user patch bundle from a source tree and fix patches.",
        discussion: """
            Builds --source twice under a compiler wrapper (original, then with the --patch files applied in \
            order, incrementally), diffs the changed objects function by function, checks the original objects \
            against each --target's bytes, and writes a bundle with one entity per target (bound to the \
            target's build-id), checked by the payload linker and the branch scan, with the patches recorded. \
            Prints the bundle digest to pin in a manifest's sha256. The original build is cached by a digest \
            of the tree, the build command and the compilers (--cache-dir). Progress lines go to stderr; \
            --json prints a report on stdout. Exit status: 0 written, 1 refused or failed (the reason on \
            stderr, nothing written). See docs/build.md.
            """
    )

    @Option(help: "The source tree (copied; never modified).", completion: .directory)
    var source: String

    @Option(name: .customLong("patch"), help: ArgumentHelp("A fix patch (patch -p1), applied in order. Repeatable.", valueName: "FIX.patch"),
            completion: .file(extensions: ["patch", "diff"]))
    var patches: [String] = []

    @Option(name: .customLong("build-command"),
            help: ArgumentHelp("Shell command that builds the tree from its root; it runs twice in the same tree, so it must be incremental (e.g. '[ -f build/Makefile ] || cmake -S . -B build; make -C build').", valueName: "CMD"))
    var buildCommand: String

    @Option(help: ArgumentHelp("An ELF file to patch as it runs (executable or shared library). Repeatable. Default: every ELF of the original build linked from a changed unit.", valueName: "ELF"),
            completion: .file())
    var target: [String] = []

    @Option(help: "Patch name.")
    var name: String

    @Option(help: "Patch version.")
    var version: String

    @Option(help: "Patch release.")
    var release: String = "1"

    @Option(help: ArgumentHelp("auto (the target's .symtab, /usr/lib/debug/.build-id, a plain rebuild of the tree) or an ELF with the target's build-id and a .symtab. Repeatable (one FILE per stripped target).", valueName: "auto|FILE"),
            completion: .file())
    var symbols: [String] = []

    @Option(help: "Parallel build jobs (MAKEFLAGS=-jN, CMAKE_BUILD_PARALLEL_LEVEL). Default: the number of CPUs.")
    var jobs: Int?

    @Option(help: "Bundle directory (default: ./NAME-VERSION; must not exist).", completion: .directory)
    var output: String?

    @Option(name: .customLong("work-dir"), help: "Work directory: logs, compile records, objects, payloads (default: a temporary directory, removed after success).",
            completion: .directory)
    var workDir: String?

    @Flag(name: .customLong("keep-work"), help: "Keep the temporary work directory after success.")
    var keepWork = false

    @Option(name: .customLong("cache-dir"), help: "Build cache root (default: $SUTURE_BUILD_CACHE, /var/cache/suture/build for root, else ~/.cache/suture/build).",
            completion: .directory)
    var cacheDir: String?

    @Option(help: "Target package name recorded in the bundle (default: dpkg's owner of the first target, else its path).")
    var package: String?

    @Option(name: .customLong("package-version"), help: "Target package version (default: from dpkg, else build-<build-id prefix>).")
    var packageVersion: String?

    @Option(help: "Free-text description.")
    var description: String = ""

    @Flag(help: "Print a JSON report (phases and times, changed units, replaced/new/line-only functions, refusals, bundle path and sha256) on stdout.")
    var json = false

    func validate() throws {
        guard !patches.isEmpty else { throw ValidationError("give at least one --patch FIX.patch") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if symbols.contains("auto") && symbols.count > 1 {
            throw ValidationError("--symbols auto cannot be combined with --symbols FILE (targets without a FILE use auto)")
        }
    }

    func run() throws {
        let options = BuildOptions(
            source: source, patches: patches, buildCommand: buildCommand, targets: target, name: name, version: version,
            release: release, symbols: symbols.filter { $0 != "auto" },
            jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount, output: output, workDirectory: workDir,
            keepWork: keepWork, cacheDirectory: cacheDir, package: package, packageVersion: packageVersion,
            description: description)
        let stderr = FileHandle.standardError
        let pipeline = BuildPipeline(options: options) { line in
            stderr.write(Data("suture build: \(line)\n".utf8))
        }
        let report = pipeline.run()
        if json { print(report.json()) }
        if let error = report.error {
            var message = "error: \(error)\n"
            if report.workKept { message += "work directory kept: \(report.workDirectory)\n" }
            stderr.write(Data(message.utf8))
            throw ExitCode(1)
        }
        guard let bundle = report.bundle else { throw ExitCode(1) }
        if !json {
            print("created \(bundle.name) (\(bundle.uuid)) in \(bundle.path)")
            for t in report.targets {
                print("  \(t.path) build-id \(t.buildID) (symbols: \(t.symbols.source.rawValue)\(t.symbols.source == .target ? "" : " \(t.symbols.path)"))")
                for f in t.replaced {
                    print("    \(f.symbol) @ 0x\(String(f.offset, radix: 16)) (\(f.size) bytes, \(f.unit)) -> \(f.replacement)")
                }
                if !t.newFunctions.isEmpty { print("    new functions: \(t.newFunctions.joined(separator: ", "))") }
                if !t.lineNumberOnly.isEmpty { print("    changed by line numbers only (not replaced): \(t.lineNumberOnly.joined(separator: ", "))") }
                for (f, causes) in t.inlinedCauses.sorted(by: { $0.key < $1.key }) {
                    print("    \(f) replaced because \(causes.joined(separator: ", ")) is inlined into it")
                }
                if !t.newData.isEmpty { print("    new data: \(t.newData.joined(separator: ", "))") }
                if !t.targetSymbols.isEmpty { print("    target symbols: \(t.targetSymbols.map(\.targetSymbol).joined(separator: ", "))") }
                if !t.imports.isEmpty { print("    imports: \(t.imports.joined(separator: ", "))") }
            }
            if report.workKept { print("work directory: \(report.workDirectory)") }
            print("digest: \(bundle.sha256)")
        }
    }
}
