import ArgumentParser
import Foundation
import SutureBuild
import SutureCore

/// `suture bundle create --kind user|kernel …`: make a patch bundle.
struct BundleCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a patch bundle (user: from a target ELF and a payload object; kernel: from a livepatch module).",
        discussion: """
            --kind user --target ELF --object fix.o --replace OLD[=NEW]... --name N --version V: the payload \
            is a relocatable x86-64 object with the replacement functions (gcc -c -fPIC -ffunction-sections \
            -fdata-sections fix.c). The bundle records the target's real path (symbolic links resolved), or \
            --install-path when --target is a copy of the binary the hosts run. Records, per --replace, the target function's offset from the link base, \
            size and first bytes, and refuses functions too short for the 5-byte detour or with a branch \
            into it. Payload references to the target's own symbols (static functions, globals) are resolved \
            now (--symbols when the target is stripped); other undefined symbols are imported from the \
            process's libraries at activation (docs/user-payloads.md).
            --kind kernel --module LIVEPATCH.ko: as `suture bundle create-kernel` (.modinfo checked).
            Writes ./NAME-VERSION/ unless --output. Exit status: 0 written, 1 refused (reason on stderr, \
            nothing written).
            """
    )

    /// Bundle kinds.
    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case user, kernel
    }

    @Option(help: "Bundle kind: user (functions of a running process) or kernel (a livepatch module).")
    var kind: Kind

    @Option(help: "user: the target ELF executable or shared object as installed. kernel: the patched object (vmlinux or a module name; default inferred).",
            completion: .file())
    var target: String?

    @Option(name: .customLong("install-path"),
            help: "user: the target's path on the hosts, when --target is a copy elsewhere (default: --target with symbolic links resolved).")
    var installPath: String?

    @Option(help: "user: the payload, a relocatable x86-64 object with the replacement functions.", completion: .file())
    var object: String?

    @Option(help: ArgumentHelp("user: a function to replace, OLD (same name in the object) or OLD=NEW. Repeatable.",
                               valueName: "OLD[=NEW]"))
    var replace: [String] = []

    @Option(help: "kernel: the livepatch module (.ko).", completion: .file(extensions: ["ko"]))
    var module: String?

    @Flag(name: .customLong("atomic-replace"), help: "kernel: the module is cumulative (klp_patch.replace = true).")
    var atomicReplace = false

    @Option(name: .customLong("kernel-release"), help: "kernel: target kernel release (default: from vermagic).")
    var kernelRelease: String?

    @Option(name: .customLong("target-build-id"), help: "kernel: GNU build-id of the patched object, lower-case hex.")
    var targetBuildID = ""

    @Option(help: "Patch name (e.g. CVE-2024-0001; kernel default: the module name).")
    var name: String?

    @Option(help: "Patch version.")
    var version: String = "1"

    @Option(help: "Patch release.")
    var release: String = "1"

    @Option(help: "user: an unstripped build of the target with the same build-id (when the target is stripped).",
            completion: .file())
    var symbols: String?

    @Option(help: "user: target package name (default: dpkg's owner of --target).")
    var package: String?

    @Option(name: .customLong("package-version"), help: "user: target package version (default: from dpkg).")
    var packageVersion: String?

    @Option(name: .customLong("patch"), help: "A source .patch file to ship in the bundle. Repeatable.",
            completion: .file())
    var patches: [String] = []

    @Option(help: "Free-text description.")
    var description: String = ""

    @Option(help: "Output directory (default: ./NAME-VERSION).", completion: .directory)
    var output: String?

    func validate() throws {
        switch kind {
        case .user:
            guard target != nil, object != nil, name != nil else {
                throw ValidationError("--kind user needs --target ELF, --object FILE.o and --name NAME")
            }
            guard !replace.isEmpty else { throw ValidationError("--kind user needs at least one --replace OLD[=NEW]") }
            guard module == nil, !atomicReplace, kernelRelease == nil, targetBuildID.isEmpty else {
                throw ValidationError("--module, --atomic-replace, --kernel-release and --target-build-id are for --kind kernel")
            }
        case .kernel:
            guard module != nil else { throw ValidationError("--kind kernel needs --module LIVEPATCH.ko") }
            guard object == nil, replace.isEmpty, symbols == nil, package == nil, packageVersion == nil,
                  installPath == nil else {
                throw ValidationError("--object, --replace, --symbols, --package, --package-version and --install-path "
                                      + "are for --kind user")
            }
        }
    }

    func run() throws {
        switch kind {
        case .user:
            var request = UserBundleRequest(target: target!, object: object!,
                                            replacements: replace.map(UserBundleRequest.Replacement.init),
                                            name: name!, version: version, release: release, symbols: symbols,
                                            package: package, packageVersion: packageVersion, patches: patches,
                                            output: output, description: description)
            request.installPath = installPath
            do {
                let out = try UserBundleBuilder.build(request)
                let m = out.metadata
                print("created \(m.qualifiedName) (\(m.uuid)) in \(out.directory.path)")
                for e in m.entities {
                    print("  \(e.targetPath) build-id \(e.targetBuildID)")
                    for f in e.functions ?? [] {
                        print("    \(f.symbol) @ 0x\(String(f.offset, radix: 16)) (\(f.size) bytes) -> \(f.replacement)")
                    }
                    if let t = e.targetSymbols, !t.isEmpty { print("    target symbols: \(t.map(\.symbol).joined(separator: ", "))") }
                    if let i = e.imports, !i.isEmpty { print("    imports: \(i.joined(separator: ", "))") }
                }
            } catch {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        case .kernel:
            let options = KernelBundleBuilder.Options(
                module: URL(fileURLWithPath: module!), name: name, version: version, release: release, uuid: nil,
                description: description, targetObject: target, replace: atomicReplace, kernelRelease: kernelRelease,
                targetBuildID: targetBuildID, patches: patches.map { URL(fileURLWithPath: $0) })
            do {
                let (metadata, _) = try KernelBundleBuilder.metadata(for: options)
                let directory = URL(fileURLWithPath: output ?? "\(metadata.name)-\(metadata.version)")
                let bundle = try KernelBundleBuilder.build(options, to: directory)
                print("created \(bundle.metadata.qualifiedName) (\(bundle.metadata.uuid)) in \(bundle.path)")
                print("digest: \(bundle.digest)")
            } catch {
                throw failWithDiagnostics(error)
            }
        }
    }
}
