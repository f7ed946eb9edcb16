import ArgumentParser
import Foundation
import SutureBuild
import SutureCore

/// `suture bundle create-kernel MODULE.ko --out DIR …`: a `kind: kernel` bundle from a livepatch module.
struct BundleCreateKernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-kernel",
        abstract: "Create a kernel patch bundle from a livepatch module (.ko).",
        discussion: """
            Reads the module's .modinfo (name=, vermagic=, livepatch=Y), copies it into a new bundle \
            directory as <module name>.ko with the given source patches, writes patch.yaml and prints the \
            bundle digest. Exit status: 0 created, 1 error (nothing is written).
            """
    )

    @Argument(help: "The livepatch module (.ko).", completion: .file(extensions: ["ko"]))
    var module: String

    @Option(name: .shortAndLong, help: "The bundle directory to create (must not exist).")
    var out: String

    @Option(help: "Patch name (default: the module name).")
    var name: String?

    @Option(help: "Patch version.")
    var version = "1"

    @Option(help: "Patch release.")
    var release = "1"

    @Option(help: "Bundle uuid, lower-case RFC 4122 (default: random).")
    var uuid: String?

    @Option(help: "Description.")
    var description = ""

    @Option(help: "Patched object: vmlinux or a module name (default: inferred from .klp.rela sections, else vmlinux).")
    var target: String?

    @Option(help: "Target kernel release (default: from vermagic).")
    var kernelRelease: String?

    @Option(help: "GNU build-id of the target object, lower-case hex.")
    var targetBuildID = ""

    @Flag(help: "The module is an atomic-replace (cumulative) livepatch (klp_patch.replace = true).")
    var replace = false

    @Option(name: .customLong("patch"), help: "A source .patch file to ship (repeatable).", completion: .file())
    var patches: [String] = []

    func run() throws {
        let options = KernelBundleBuilder.Options(
            module: URL(fileURLWithPath: module), name: name, version: version, release: release, uuid: uuid,
            description: description, targetObject: target, replace: replace, kernelRelease: kernelRelease,
            targetBuildID: targetBuildID, patches: patches.map { URL(fileURLWithPath: $0) })
        do {
            let bundle = try KernelBundleBuilder.build(options, to: URL(fileURLWithPath: out))
            print("created \(bundle.metadata.qualifiedName) (\(bundle.metadata.uuid)) in \(bundle.path)")
            print("digest: \(bundle.digest)")
        } catch {
            throw failWithDiagnostics(error)
        }
    }
}
