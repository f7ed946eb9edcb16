import Foundation
import SutureCore
import SutureELF
#if canImport(Glibc)
import Glibc
#endif

/// The inputs of `suture build`.
public struct BuildOptions: Sendable {
    /// The source tree (not modified: it is copied).
    public var source: String
    /// Fix patches, applied in order with `patch -p1`.
    public var patches: [String]
    /// The build command (`/bin/sh -c`), run in the tree root; runs twice in the same tree, so it must be
    /// incremental (e.g. `[ -f build/Makefile ] || cmake -S . -B build; make -C build`).
    public var buildCommand: String
    /// The ELF files to patch as they run; empty: every ELF of the original build linked from a changed unit.
    public var targets: [String]
    /// Patch name.
    public var name: String
    /// Patch version.
    public var version: String
    /// Patch release.
    public var release: String
    /// `--symbols FILE`s (matched to targets by build-id); targets without one use `auto`.
    public var symbols: [String]
    /// Parallel build jobs.
    public var jobs: Int
    /// Bundle directory (default `./NAME-VERSION`).
    public var output: String?
    /// Work directory (default: a new temporary directory, removed after a successful run unless `keepWork`).
    public var workDirectory: String?
    /// Keep the temporary work directory.
    public var keepWork: Bool
    /// Build cache root (default `BuildCache.defaultRoot()`).
    public var cacheDirectory: String?
    /// Target package name for the bundle (default: dpkg's owner of the first target, else its path).
    public var package: String?
    /// Target package version (default: from dpkg, else `build-<build-id prefix>`).
    public var packageVersion: String?
    /// Bundle description.
    public var description: String
    /// Root of detached debug files (`/usr/lib/debug`).
    public var debugRoot: String

    /// Memberwise initializer.
    public init(source: String, patches: [String], buildCommand: String, targets: [String] = [], name: String,
                version: String, release: String = "1", symbols: [String] = [], jobs: Int = ProcessInfo.processInfo.activeProcessorCount,
                output: String? = nil, workDirectory: String? = nil, keepWork: Bool = false, cacheDirectory: String? = nil,
                package: String? = nil, packageVersion: String? = nil, description: String = "",
                debugRoot: String = "/usr/lib/debug") {
        self.source = source
        self.patches = patches
        self.buildCommand = buildCommand
        self.targets = targets
        self.name = name
        self.version = version
        self.release = release
        self.symbols = symbols
        self.jobs = jobs
        self.output = output
        self.workDirectory = workDirectory
        self.keepWork = keepWork
        self.cacheDirectory = cacheDirectory
        self.package = package
        self.packageVersion = packageVersion
        self.description = description
        self.debugRoot = debugRoot
    }
}

/// `suture build`: from a source tree and fix patches to a verified user bundle.
///
/// Phases (each reported through `progress` with its wall-clock time): `prepare` (check the inputs, apply
/// the patches to a scratch copy so a patch that does not apply fails before any build, digest the tree,
/// lock the cache entry); `original build` (the tree under the compiler wrapper, or the cached one);
/// `patched build` (a copy of the original build with the patches applied, built again: only the units
/// the patches touch recompile; changed units = recompiled units whose object differs); `symbols` (only
/// when a target is stripped and needs the plain rebuild); `diff` (`PatchSynthesizer` per target: the
/// changed functions, the check of the original objects against the target's bytes, the payload);
/// `link` (bundle entities: expected bytes, branch scan, payload linker validation and a trial link);
/// `verify` (the bundle written with `BundleWriter`, read back and its checksums verified).
public final class BuildPipeline {
    let options: BuildOptions
    let progress: (String) -> Void
    var report = BuildReport()
    var phaseStart = ContinuousClock.now

    /// - Parameter progress: receives one line per finished phase (the CLI prints them on stderr).
    public init(options: BuildOptions, progress: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.progress = progress
    }

    /// Runs every phase. Never throws: a failure is `report.error` (and `report.refusals` when the differ
    /// refused), nothing is written to the output directory, and the work directory is kept.
    public func run() -> BuildReport {
        report = BuildReport()
        var createdWork: URL?
        var diffing = false
        do {
            try execute(createdWork: &createdWork, diffing: &diffing)
        } catch {
            report.error = error.message
            if diffing { report.refusals = [error.message] }
        }
        if let created = createdWork, !options.keepWork, report.error == nil {
            try? FileManager.default.removeItem(at: created)
            report.workKept = false
        } else {
            report.workKept = !report.workDirectory.isEmpty
        }
        return report
    }

    // MARK: - Phases

    func begin() { phaseStart = ContinuousClock.now }

    func end(_ name: String, _ detail: String) {
        let d = ContinuousClock.now - phaseStart
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        report.phases.append(BuildReport.Phase(name: name, seconds: (seconds * 1000).rounded() / 1000, detail: detail))
        progress(String(format: "%@: %.1f s%@", name, seconds, detail.isEmpty ? "" : " (\(detail))"))
    }

    private func execute(createdWork: inout URL?, diffing: inout Bool) throws(BuildError) {
        let fm = FileManager.default
        let cwd = fm.currentDirectoryPath
        begin()

        // prepare: inputs.
        let source = URL(fileURLWithPath: CompileLog.absolute(options.source, in: cwd))
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: source.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BuildError("--source \(options.source) is not a directory")
        }
        guard !options.patches.isEmpty else { throw BuildError("no --patch given: name at least one fix patch") }
        let patches = options.patches.map { URL(fileURLWithPath: CompileLog.absolute($0, in: cwd)) }
        for p in patches where !fm.isReadableFile(atPath: p.path) {
            throw BuildError("--patch \(p.path): no such readable file")
        }
        guard options.jobs >= 1 else { throw BuildError("--jobs must be at least 1") }
        var explicitTargets: [TargetFiles.Target] = []
        for t in options.targets { explicitTargets.append(try TargetFiles.check(t)) }
        let explicitSymbols = try SymbolLocator.explicit(options.symbols, targets: explicitTargets)
        if !options.symbols.isEmpty && options.targets.isEmpty {
            throw BuildError("--symbols FILE needs --target: it names the symbols of a target ELF")
        }
        let output = URL(fileURLWithPath: CompileLog.absolute(options.output ?? "\(options.name)-\(options.version)", in: cwd))
        guard !fm.fileExists(atPath: output.path) else {
            throw BuildError("\(output.path) already exists; refusing to overwrite a bundle (use --output)")
        }

        // The work directory.
        let work: URL
        if let dir = options.workDirectory {
            work = URL(fileURLWithPath: CompileLog.absolute(dir, in: cwd))
            do { try fm.createDirectory(at: work, withIntermediateDirectories: true) } catch {
                throw BuildError("cannot create the work directory \(work.path): \(error.localizedDescription)")
            }
        } else {
            var template = Array((fm.temporaryDirectory.appendingPathComponent("suture-build-XXXXXX").path).utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw BuildError("cannot create a temporary work directory: \(String(cString: strerror(errno)))")
            }
            work = URL(fileURLWithPath: String(cString: made))
            createdWork = work
        }
        report.workDirectory = work.path
        let logs = work.appendingPathComponent("logs")
        do { try fm.createDirectory(at: logs, withIntermediateDirectories: true) } catch {
            throw BuildError("cannot create \(logs.path): \(error.localizedDescription)")
        }

        // The patches must apply before anything is built.
        let scratch = work.appendingPathComponent("patched-source")
        try ToolRunner.remove(scratch)
        try ToolRunner.copyTree(source, to: scratch)
        try PatchApplier.apply(patches, to: scratch)
        try ToolRunner.remove(scratch)

        // The cache entry.
        let treeDigest = try BuildCache.treeDigest(source)
        let environment = ProcessInfo.processInfo.environment
        var searchPath = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        searchPath.removeAll { fm.fileExists(atPath: ($0 as NSString).appendingPathComponent(CompilerWrapper.marker)) }
        var compilers: [String: String] = [:]
        for name in CompilerWrapper.names {
            if let real = CompilerWrapper.realCompiler(name, path: searchPath.joined(separator: ":"), excluding: "/nonexistent") {
                compilers[name] = real
            }
        }
        let key = BuildCache.key(treeDigest: treeDigest, buildCommand: options.buildCommand, wrappers: compilers,
                                 environment: environment)
        let cacheRoot = options.cacheDirectory.map { URL(fileURLWithPath: CompileLog.absolute($0, in: cwd)) } ?? BuildCache.defaultRoot()
        let (entry, lock) = try BuildCache.open(root: cacheRoot, key: key) {
            self.progress("waiting for another suture build using \(cacheRoot.appendingPathComponent(key).path)")
        }
        defer { lock.release() }
        report.cacheEntry = entry.directory.path
        var buildEnvironment = environment
        buildEnvironment["PATH"] = searchPath.joined(separator: ":")
        let installed = try CompilerWrapper.install(in: entry.bin, path: buildEnvironment["PATH"]!)
        let builder = TreeBuild(command: options.buildCommand, jobs: options.jobs, wrapperDirectory: entry.bin,
                                compilers: installed, baseEnvironment: buildEnvironment)
        end("prepare", "\(patches.count) patch\(patches.count == 1 ? "" : "es") apply; cache \(key.prefix(12))")

        // original build.
        begin()
        let originalUnits: [CompiledUnit]
        var treeIsPristine = false
        if let cached = entry.originalBuild() {
            originalUnits = cached.units
            end("original build", "cached, \(plural(cached.units.count, "compile")), built \(cached.finished) in \(String(format: "%.1f", cached.seconds)) s")
        } else {
            try ToolRunner.remove(entry.tree)
            try ToolRunner.remove(entry.original)
            try ToolRunner.copyTree(source, to: entry.tree)
            let log = logs.appendingPathComponent("original-build.log")
            let units = try builder.run(in: entry.tree, records: work.appendingPathComponent("records/original"),
                                        log: log, what: "the original build")
            guard !units.isEmpty else {
                throw BuildError("the original build compiled nothing under the wrapper (log: \(log.path)): the build command does not use $CC/cc/gcc from PATH, or --source already holds build outputs (give a clean tree)")
            }
            try ToolRunner.copyTree(entry.tree, to: entry.original)
            let d = ContinuousClock.now - phaseStart
            try entry.recordOriginal(BuildCacheEntry.OriginalBuild(units: units, seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18,
                                                                   finished: isoTimestamp(Date())))
            originalUnits = units
            treeIsPristine = true
            end("original build", "\(plural(units.count, "compile")), log \(log.path)")
        }
        try CompileLog.write(originalUnits, to: work.appendingPathComponent("original-compiles.jsonl"))

        // patched build.
        begin()
        if !treeIsPristine {
            try ToolRunner.remove(entry.tree)
            try ToolRunner.copyTree(entry.original, to: entry.tree)
        }
        try PatchApplier.apply(patches, to: entry.tree)
        let patchedLog = logs.appendingPathComponent("patched-build.log")
        let patchedUnits = try builder.run(in: entry.tree, records: work.appendingPathComponent("records/patched"),
                                           log: patchedLog, what: "the patched build")
        try CompileLog.write(patchedUnits, to: work.appendingPathComponent("patched-compiles.jsonl"))
        let originalByObject = Dictionary(originalUnits.map { ($0.object, $0) }, uniquingKeysWith: { _, last in last })
        var changedOriginal: [CompiledUnit] = []
        var changedPatched: [CompiledUnit] = []
        for unit in patchedUnits {
            let relative = CompileLog.relative(unit.object, to: entry.tree.path)
            let pristine = entry.original.appendingPathComponent(relative).path
            let isNew = originalByObject[unit.object] == nil || !fm.fileExists(atPath: pristine)
            if !isNew, fm.contentsEqual(atPath: pristine, andPath: unit.object) { continue }
            let patchedCopy = work.appendingPathComponent("objects/patched").appendingPathComponent(relative)
            try copyFile(unit.object, to: patchedCopy)
            var p = unit
            p.object = patchedCopy.path
            changedPatched.append(p)
            if !isNew, var o = originalByObject[unit.object] {
                let originalCopy = work.appendingPathComponent("objects/original").appendingPathComponent(relative)
                try copyFile(pristine, to: originalCopy)
                o.verificationObject = try VerificationCompile.compile(
                    o, treeObject: unit.object, tree: entry.tree, pristine: entry.original,
                    into: work.appendingPathComponent("objects/verification").appendingPathComponent(relative),
                    log: logs.appendingPathComponent("verification.log"))
                o.object = originalCopy.path
                changedOriginal.append(o)
            }
            report.changedUnits.append(BuildReport.ChangedUnit(source: unit.source, object: patchedCopy.path, new: isNew))
        }
        end("patched build", "\(patchedUnits.count) recompiled, changed: " +
            (report.changedUnits.isEmpty ? "none" : report.changedUnits.map { $0.source + ($0.new ? " (new)" : "") }.joined(separator: ", ")))
        guard !changedPatched.isEmpty else {
            throw BuildError("the patches change no compiled code: the patched build recompiled \(patchedUnits.count) unit\(patchedUnits.count == 1 ? "" : "s") and every object is identical to the original (log: \(patchedLog.path))")
        }

        // Targets and their symbols.
        var targets = explicitTargets
        let defaultTargets = options.targets.isEmpty
        if defaultTargets {
            let files = TargetFiles.containing(sources: changedOriginal.map(\.source), under: entry.original)
            guard !files.isEmpty else {
                throw BuildError("no ELF file of the original build is linked from a changed unit (" +
                                 changedOriginal.map(\.source).joined(separator: ", ") + "): name the file to patch with --target")
            }
            for f in files { targets.append(try TargetFiles.check(f)) }
        }
        var plainELFs: [String]?
        var symbolTime: Duration = .zero
        var choices: [String: SymbolChoice] = [:]
        for t in targets {
            if let file = explicitSymbols[t.path] {
                choices[t.path] = SymbolChoice(source: .file, path: file)
                continue
            }
            choices[t.path] = try SymbolLocator.locate(t, debugRoot: options.debugRoot) { () throws(BuildError) -> [String] in
                if let done = plainELFs { return done }
                let start = ContinuousClock.now
                let files = try plainRebuild(entry: entry, source: source, builder: builder, work: work)
                symbolTime += ContinuousClock.now - start
                plainELFs = files
                return files
            }
        }
        if plainELFs != nil {
            let seconds = Double(symbolTime.components.seconds) + Double(symbolTime.components.attoseconds) / 1e18
            report.phases.append(BuildReport.Phase(name: "symbols", seconds: (seconds * 1000).rounded() / 1000,
                                                   detail: "plain rebuild, log \(logs.appendingPathComponent("plain-build.log").path)"))
            progress(String(format: "symbols: %.1f s (plain rebuild, log %@)", seconds, logs.appendingPathComponent("plain-build.log").path))
        }

        // diff.
        begin()
        diffing = true
        var results: [(TargetFiles.Target, SynthesisResult)] = []
        for (i, t) in targets.enumerated() {
            let dir = work.appendingPathComponent("targets/\(i + 1)-\((t.path as NSString).lastPathComponent)")
            let request = SynthesisRequest(original: changedOriginal, patched: changedPatched, target: t.path,
                                           symbols: choices[t.path]!.path, workDirectory: dir.path)
            guard let result = try PatchSynthesizer.synthesize(request) else {
                if defaultTargets {
                    report.skippedTargets.append(t.path)
                    continue
                }
                throw BuildError("none of the changed functions is in --target \(t.path) (changed units: " +
                                 report.changedUnits.map(\.source).joined(separator: ", ") + ")")
            }
            results.append((t, result))
        }
        diffing = false
        guard !results.isEmpty else {
            throw BuildError("none of the changed functions is in any ELF of the build (" + report.skippedTargets.joined(separator: ", ") + ")")
        }
        for (t, r) in results {
            report.targets.append(BuildReport.TargetReport(
                path: t.path, buildID: t.buildID, symbols: choices[t.path]!, replaced: r.functions,
                newFunctions: r.newFunctions, lineNumberOnly: r.lineNumberOnly, inlinedCauses: r.inlinedCauses,
                newData: r.newData,
                targetSymbols: r.targetSymbols.map { BuildReport.TargetSymbolRow(payloadSymbol: $0.payloadSymbol, targetSymbol: $0.targetSymbol, offset: $0.offset) },
                imports: r.imports, payload: r.payload))
        }
        end("diff", results.map { "\(($0.0.path as NSString).lastPathComponent): \($0.1.functions.map(\.symbol).joined(separator: ", "))" }.joined(separator: "; "))

        // link.
        begin()
        var entities: [(entity: BundleEntity, payload: String)] = []
        for (t, r) in results {
            let resolved = ResolvedUserEntity(
                target: t.path, symbols: choices[t.path]!.path, payload: r.payload,
                functions: r.functions.map { ResolvedUserEntity.Function(symbol: $0.symbol, offset: $0.offset, size: $0.size, replacement: $0.replacement) },
                targetSymbols: r.targetSymbols.map { TargetSymbol(symbol: $0.payloadSymbol, offset: $0.offset) })
            do {
                let entity = try UserBundleBuilder.makeEntity(resolved, payloadName: (t.path as NSString).lastPathComponent + ".o")
                entities.append((entity, r.payload))
            } catch {
                throw BuildError(error.message)
            }
        }
        end("link", entities.map { "\(($0.entity.targetPath as NSString).lastPathComponent): \($0.entity.imports?.count ?? 0) imports, \($0.entity.targetSymbols?.count ?? 0) target symbols" }.joined(separator: "; "))

        // verify: write, read back, checksums.
        begin()
        let bundle: ResolvedBundle
        do {
            bundle = try UserBundleBuilder.write(entities: entities, name: options.name, version: options.version,
                                                 release: options.release, description: options.description,
                                                 package: options.package, packageVersion: options.packageVersion,
                                                 patches: patches.map(\.path), output: output)
        } catch {
            throw BuildError(error.message)
        }
        do { _ = try BundleReader.read(directory: URL(fileURLWithPath: bundle.path)) } catch {
            throw BuildError("the written bundle does not verify: \(error)")
        }
        report.bundle = BuildReport.Bundle(path: bundle.path, sha256: bundle.digest, name: bundle.metadata.name, uuid: bundle.metadata.uuid)
        end("verify", "bundle \(bundle.path)")
    }

    /// The plain rebuild (cached in the entry): the source tree built without the wrapper's flags, its
    /// directory mapped to `.`. Returns its ELF files.
    private func plainRebuild(entry: BuildCacheEntry, source: URL, builder: TreeBuild, work: URL) throws(BuildError) -> [String] {
        if FileManager.default.fileExists(atPath: entry.plainRecord.path) {
            return TargetFiles.elfFiles(under: entry.plainTree)
        }
        try ToolRunner.remove(entry.plainTree)
        try ToolRunner.copyTree(source, to: entry.plainTree)
        _ = try builder.run(in: entry.plainTree, mode: "plain", records: work.appendingPathComponent("records/plain"),
                            log: work.appendingPathComponent("logs/plain-build.log"), what: "the plain rebuild (for symbols)")
        _ = FileManager.default.createFile(atPath: entry.plainRecord.path, contents: Data("{\"finished\": \"\(isoTimestamp(Date()))\"}\n".utf8))
        return TargetFiles.elfFiles(under: entry.plainTree)
    }

    private func plural(_ n: Int, _ noun: String) -> String { n == 1 ? "1 \(noun)" : "\(n) \(noun)s" }

    private func copyFile(_ from: String, to: URL) throws(BuildError) {
        do {
            try FileManager.default.createDirectory(at: to.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? FileManager.default.removeItem(at: to)
            try FileManager.default.copyItem(atPath: from, toPath: to.path)
        } catch {
            throw BuildError("cannot copy \(from) to \(to.path): \(error.localizedDescription)")
        }
    }
}
