import ArgumentParser
import Foundation
import SutureCore
import SuturePatching

/// `suture kernel-driver`: hidden, low-level access to the kernel livepatch driver for the kernel VM tier
/// and for debugging (`check`, `activate`, `deactivate` one module file, bypassing manifests, the store and
/// the executor). Not a user interface: use `suture apply` / `suture patch`.
struct KernelDriverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-driver",
        abstract: "Low-level kernel livepatch driver operations (testing and debugging).",
        shouldDisplay: false,
        subcommands: [Check.self, Activate.self, Deactivate.self]
    )

    struct DriverOptions: ParsableArguments {
        @Option(help: "What to do when the transition does not finish by the hard deadline: revert, wait or fail.")
        var onStall: String = "revert"
        @Option(help: "Seconds until the blocking tasks are reported.")
        var softDeadline: Double?
        @Option(help: "Seconds until the stall policy applies.")
        var hardDeadline: Double?
        @Option(help: "onStall wait: seconds before giving up.")
        var waitLimit: Double?
        @Flag(help: "Write `force` at the hard deadline (the module can then never be removed; reboot required).")
        var forceTransition = false
        @Option(help: "Root of the sysfs/proc tree (default /).")
        var root: String = "/"

        func policy() throws -> StallPolicy {
            guard let p = StallPolicy(rawValue: onStall) else {
                throw ValidationError("--on-stall must be one of revert, wait, fail (got '\(onStall)')")
            }
            return p
        }

        func driver() -> SysfsKernelPatchDriver {
            var o = KernelDriverOptions().overridden(by: ProcessInfo.processInfo.environment)
            if let softDeadline { o.softDeadline = softDeadline }
            if let hardDeadline { o.hardDeadline = hardDeadline }
            if let waitLimit { o.waitLimit = waitLimit }
            o.forceTransition = forceTransition
            if root != "/" { o.stateDirectory = root + o.stateDirectory }
            return SysfsKernelPatchDriver(kernel: LinuxKernelInterface(root: root), options: o) { event in
                var line = "kernel-driver: \(event.kind.rawValue) \(event.patch): \(event.message)\n"
                for b in event.blockers {
                    line += "kernel-driver:   blocker pid \(b.pid) tid \(b.tid) comm \(b.comm) patch_state \(b.patchState)\n"
                    for frame in b.stack { line += "kernel-driver:     \(frame)\n" }
                }
                FileHandle.standardError.write(Data(line.utf8))
            }
        }
    }

    /// Builds a one-entity kernel bundle around a module file.
    static func bundle(module: String, target: String, replace: Bool) throws -> (ResolvedBundle, BundleEntity) {
        let url = URL(fileURLWithPath: module).standardizedFileURL
        let file: ModuleFile
        do { file = try ModuleFile.read(path: url.path) } catch { throw ValidationError(error.description) }
        let name = SysfsKernelPatchDriver.normalizedModuleName(file.name ?? url.deletingPathExtension().lastPathComponent)
        let entity = BundleEntity(targetPath: target, targetBuildID: "", payload: url.lastPathComponent,
                                  payloadSHA256: "", moduleName: name, replace: replace)
        let meta = BundleMetadata(name: name, version: "1", release: "1", uuid: "00000000-0000-4000-8000-000000000000",
                                  kind: .kernel, description: "", target: BundleTarget(
                                      package: "kernel", version: file.kernelRelease ?? "", arch: "x86_64"),
                                  entities: [entity], patches: [])
        return (ResolvedBundle(metadata: meta, path: url.deletingLastPathComponent().path, digest: ""), entity)
    }

    /// Exit codes: 0 done, 1 refused before any change, 4 stalled and reverted, 6 stalled and left running,
    /// 3 other failure.
    static func exit(for error: KernelPatchError) -> ExitCode {
        FileHandle.standardError.write(Data("kernel-driver: error: \(error.description)\n".utf8))
        switch error.kind {
        case .vermagicMismatch, .unsupported, .lockdown: return ExitCode(1)
        case .stalled: return ExitCode(error.transitionLeftRunning ? 6 : 4)
        default: return ExitCode(3)
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that a livepatch module can be loaded here.")
        @Argument(help: "The .ko file.") var module: String
        @Option(help: "vmlinux or the target module name.") var target: String = "vmlinux"
        @Option(help: "Root of the sysfs/proc tree (default /).") var root: String = "/"

        func run() throws {
            let (b, e) = try KernelDriverCommand.bundle(module: module, target: target, replace: false)
            do {
                let c = try SysfsKernelPatchDriver(kernel: LinuxKernelInterface(root: root)).check(bundle: b, entity: e)
                print("ok \(c.moduleName) vermagic \(c.module.vermagic ?? "")\(c.notes.map { "; " + $0 }.joined())")
            } catch {
                throw KernelDriverCommand.exit(for: error)
            }
        }
    }

    struct Activate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load a livepatch module and wait for its transition.")
        @Argument(help: "The .ko file.") var module: String
        @Option(help: "vmlinux or the target module name.") var target: String = "vmlinux"
        @Flag(help: "The module is an atomic-replace patch.") var replace = false
        @OptionGroup var options: DriverOptions

        func run() throws {
            let (b, e) = try KernelDriverCommand.bundle(module: module, target: target, replace: replace)
            do {
                try options.driver().activate(bundle: b, entity: e, onStall: try options.policy())
                print("activated \(e.moduleName ?? "")")
            } catch let error as KernelPatchError {
                throw KernelDriverCommand.exit(for: error)
            }
        }
    }

    struct Deactivate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a livepatch and unload its module.")
        @Argument(help: "The livepatch module name.") var name: String
        @OptionGroup var options: DriverOptions

        func run() throws {
            do {
                try options.driver().deactivate(moduleName: name, onStall: try options.policy())
                print("deactivated \(name)")
            } catch let error as KernelPatchError {
                throw KernelDriverCommand.exit(for: error)
            }
        }
    }
}
