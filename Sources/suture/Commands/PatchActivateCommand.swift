import ArgumentParser
import Foundation
import SutureCore
import SuturePatching

/// Options shared by `patch activate` and `patch deactivate`.
struct UserPatchTargetOptions: ParsableArguments {
    @Option(name: .customLong("pid"), parsing: .upToNextOption,
            help: "Only these processes (default: every process that maps the target, or carries the patch).")
    var pids: [Int32] = []

    @Option(help: ArgumentHelp("Use this bundle directory instead of the patch store.", valueName: "PATH"),
            completion: .directory)
    var bundle: String?

    @Option(help: ArgumentHelp("Root of the patch store (default /).", valueName: "DIR"))
    var root: String = "/"

    @Option(help: "Seconds to keep retrying while a process is BUSY.")
    var busyDeadline: Double = 2

    @Option(help: "Seconds to wait for every thread to stop.")
    var stopDeadline: Double = 5

    @Option(name: .customLong("lock-timeout"), help: "Seconds to wait for the run lock held by another suture.")
    var lockTimeout: Double = 30

    var engineOptions: UserPatchOptions { UserPatchOptions(busyDeadline: busyDeadline, stopDeadline: stopDeadline) }

    /// Takes the run lock (`/run/suture/lock` under `--root`) that `apply`, `reconcile` and the other verbs
    /// take, so a hand-run activation never interleaves with a reconcile acting on the same processes.
    func lock() throws -> RunLock {
        do { return try RunLock.acquire(paths: StatePaths(root: root), timeout: .seconds(lockTimeout)) } catch {
            throw PatchCommandFailure("\(error)")
        }
    }

    /// `--bundle`: installs the bundle into the store (verified, atomic; a no-op when the same digest is
    /// there) and returns the store's copy, so `status`, `list` and `deactivate ID` know the patch (SysCare
    /// activates installed patches only). Without `--bundle` the bundle already comes from the store.
    func installIfAdHoc(_ bundle: ResolvedBundle) throws -> ResolvedBundle {
        guard self.bundle != nil else { return bundle }
        do {
            let result = try PatchStore(root: URL(fileURLWithPath: root)).install(bundle)
            if result.outcome == .installed {
                print("installed \(bundle.metadata.qualifiedName) (\(bundle.metadata.uuid)) into the store")
            }
            return result.bundle
        } catch {
            throw PatchCommandFailure("cannot install \(bundle.path) into the store: \(error)")
        }
    }

    /// The bundle named by `id` (uuid or SysCare identifier in the store) or `--bundle`.
    func resolveBundle(_ id: String) throws -> ResolvedBundle {
        if let bundle {
            let b: ResolvedBundle
            do { b = try BundleReader.read(directory: URL(fileURLWithPath: bundle)) } catch {
                throw failWithDiagnostics(error)
            }
            if !id.isEmpty, id != b.metadata.uuid, id != b.metadata.name, id != b.metadata.qualifiedName {
                throw PatchCommandFailure("bundle \(bundle) is \(b.metadata.qualifiedName) (\(b.metadata.uuid)), not '\(id)'")
            }
            return b
        }
        let installed = PatchStore(root: URL(fileURLWithPath: root)).list()
        let bundles = installed.filter { $0.problems.isEmpty }.map(\.bundle)
        do {
            return try PatchIdentifier.resolve(id, among: bundles)
        } catch {
            if let broken = installed.first(where: { !$0.problems.isEmpty && ($0.uuid == id || $0.bundle.metadata.name == id) }) {
                throw PatchCommandFailure("patch \(id) in the store does not verify: \(broken.problems.joined(separator: "; "))")
            }
            throw PatchCommandFailure(error.description)
        }
    }
}

/// A usage or lookup failure of a `patch` verb (printed, exit 1).
struct PatchCommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// One line of per-process output.
struct ProcessOutcomeLine {
    var pid: Int32
    var comm: String
    var text: String
    var ok: Bool

    var rendered: String { "pid \(pid)\(comm.isEmpty ? "" : " (\(comm))"): \(text)" }
}

/// `suture patch activate ID [--pid PID…] [--bundle PATH]` (alias `active`).
struct PatchActivateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate",
        abstract: "Make a user patch live in running processes (ptrace engine).",
        discussion: """
        Without --pid, every process that maps the patch's target ELF (matched by device:inode or path, and \
        build-id) is patched. One line per process: activated, already active, or the error code with the \
        reason and a hint. Exit status: 0 when every process ended active, 1 otherwise.
        """,
        aliases: ["active"]
    )

    @Argument(help: "Patch uuid, TARGET/NAME, NAME-VERSION-RELEASE or unique NAME (or any with --bundle).")
    var id: String

    @OptionGroup var target: UserPatchTargetOptions

    func run() throws {
        var bundle: ResolvedBundle
        let lock: RunLock
        do {
            bundle = try target.resolveBundle(id)
            guard bundle.metadata.kind == .user else {
                throw PatchCommandFailure("\(bundle.metadata.qualifiedName) is a \(bundle.metadata.kind.rawValue) patch; this command activates user patches")
            }
            lock = try target.lock()
            bundle = try target.installIfAdHoc(bundle)
        } catch let e as PatchCommandFailure {
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            throw ExitCode(1)
        }
        defer { lock.release() }
        let driver = PtraceUserPatchDriver()
        var lines: [ProcessOutcomeLine] = []
        for entity in bundle.metadata.entities {
            let scanner = ProcessScanner()
            let file = TargetFile(path: entity.targetPath, buildID: entity.targetBuildID)
            let scan = scanner.scan(targets: [file], pids: target.pids.isEmpty ? nil : target.pids)
            var candidates = scan.processes.filter { !$0.objects.isEmpty }.map { ($0.pid, $0.startTime as UInt64?) }
            if !target.pids.isEmpty {
                // Explicit pids are attempted even when the scan did not match: the engine reports why.
                let matched = Set(candidates.map(\.0))
                candidates += target.pids.filter { !matched.contains($0) }.map { ($0, nil) }
            }
            if candidates.isEmpty {
                print("no running process maps \(entity.targetPath) (build-id \(entity.targetBuildID))")
                continue
            }
            for (pid, start) in candidates.sorted(by: { $0.0 < $1.0 }) {
                do {
                    let outcome = try driver.activate(bundle: bundle, entity: entity, pid: pid, startTime: start,
                                                      options: target.engineOptions)
                    lines.append(ProcessOutcomeLine(pid: pid, comm: Self.comm(pid), text: outcome == .alreadyActive ? "already active" : "activated", ok: true))
                } catch {
                    lines.append(ProcessOutcomeLine(pid: pid, comm: error.comm, text: Self.render(error), ok: false))
                }
            }
        }
        for l in lines { print(l.rendered) }
        if lines.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }

    static func comm(_ pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func render(_ e: UserPatchError) -> String {
        "\(e.code.rawValue): \(e.message)\(e.hint.isEmpty ? "" : " (hint: \(e.hint))")"
    }
}

/// `suture patch deactivate ID [--pid PID…] [--bundle PATH]` (alias `deactive`).
struct PatchDeactivateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deactivate",
        abstract: "Revert a user patch in running processes, restoring the original code from the patch region.",
        discussion: """
        Without --pid, every process whose /proc/PID/maps shows the patch's marker (/memfd:suture:<uuid>) is \
        reverted. ID may also be a bare uuid of a patch that is no longer in the store: reverting needs \
        nothing but the process. Exit status: 0 when the patch is gone from every process, 1 otherwise.
        """,
        aliases: ["deactive"]
    )

    @Argument(help: "Patch uuid, TARGET/NAME, NAME-VERSION-RELEASE or unique NAME.")
    var id: String

    @OptionGroup var target: UserPatchTargetOptions

    func run() throws {
        let uuid: String
        do {
            uuid = try target.resolveBundle(id).metadata.uuid
        } catch let e as PatchCommandFailure {
            if target.bundle == nil, PatchRegionMarker.isValidID(id), id.count == 36 {
                uuid = id.lowercased()
            } else {
                FileHandle.standardError.write(Data("error: \(e)\n".utf8))
                throw ExitCode(1)
            }
        }
        let lock: RunLock
        do { lock = try target.lock() } catch let e as PatchCommandFailure {
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            throw ExitCode(1)
        }
        defer { lock.release() }
        let scan = ProcessScanner().scan(targets: [], pids: target.pids.isEmpty ? nil : target.pids)
        var candidates = scan.processes.filter { $0.patches.contains { $0.uuid == uuid } }.map { ($0.pid, $0.startTime as UInt64?) }
        if !target.pids.isEmpty {
            let matched = Set(candidates.map(\.0))
            candidates += target.pids.filter { !matched.contains($0) }.map { ($0, nil) }
        }
        if candidates.isEmpty {
            print("no running process carries patch \(uuid)")
            return
        }
        let driver = PtraceUserPatchDriver()
        var failed = false
        for (pid, start) in candidates.sorted(by: { $0.0 < $1.0 }) {
            let comm = PatchActivateCommand.comm(pid)
            do {
                let outcome = try driver.deactivate(uuid: uuid, pid: pid, startTime: start, options: target.engineOptions)
                print(ProcessOutcomeLine(pid: pid, comm: comm, text: outcome == .notPresent ? "not present" : "deactivated", ok: true).rendered)
            } catch {
                failed = true
                print(ProcessOutcomeLine(pid: pid, comm: error.comm.isEmpty ? comm : error.comm,
                                         text: PatchActivateCommand.render(error), ok: false).rendered)
            }
        }
        if failed { throw ExitCode(1) }
        // An accepted patch taken out by hand is declined too (SysCare: DECLINE + DEACTIVE), so the boot and
        // timer reconciles do not bring it back.
        if target.pids.isEmpty, var local = try? LocalManifest.load(paths: StatePaths()), local.remove(uuid: uuid) {
            try? local.save()
            print("declined: \(uuid) removed from \(local.path)")
        }
    }
}
