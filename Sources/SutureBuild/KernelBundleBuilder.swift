import Foundation
import SutureCore
import SutureELF

/// Creates `kind: kernel` patch bundles from a livepatch module (`.ko`).
///
/// The module's `.modinfo` supplies the module name (`name=`), the kernel release (`vermagic=`) and the
/// proof that it is a livepatch module (`livepatch=Y`); the architecture comes from the ELF header. The
/// bundle holds `<module name>.ko` plus the source `.patch` files. SysCare's equivalent is the kernel
/// entity of `patch_info` (`patch_target` = `vmlinux` or `<module>.ko`, checksum = sha256 of the `.ko`).
public enum KernelBundleBuilder {
    /// What to build.
    public struct Options: Sendable {
        /// The livepatch module.
        public var module: URL
        /// Patch name (`KLP-CVE-2024-1234`); default: the module name.
        public var name: String?
        /// Patch version, default `"1"`.
        public var version: String
        /// Patch release, default `"1"`.
        public var release: String
        /// Bundle uuid (lower-case RFC 4122); default: a new random uuid.
        public var uuid: String?
        /// Free text.
        public var description: String
        /// The patched object: `vmlinux` or a module name. Default: the single module named by the `.ko`'s
        /// `.klp.rela.<object>.*` sections if there is exactly one besides `vmlinux`, else `vmlinux`.
        public var targetObject: String?
        /// Whether the module sets `klp_patch.replace` (atomic replace). It cannot be read reliably from the
        /// object file (it is a field of a relocated struct), so the caller states it.
        public var replace: Bool
        /// Target kernel release; default: the first word of `vermagic`.
        public var kernelRelease: String?
        /// Build-id of the target object (`vmlinux`'s `NT_GNU_BUILD_ID`), when known; default empty.
        public var targetBuildID: String
        /// Source `.patch` files to ship; stored under their file names.
        public var patches: [URL]

        /// Creates options with defaults for everything but the module.
        public init(module: URL, name: String? = nil, version: String = "1", release: String = "1",
                    uuid: String? = nil, description: String = "", targetObject: String? = nil,
                    replace: Bool = false, kernelRelease: String? = nil, targetBuildID: String = "",
                    patches: [URL] = []) {
            self.module = module
            self.name = name
            self.version = version
            self.release = release
            self.uuid = uuid
            self.description = description
            self.targetObject = targetObject
            self.replace = replace
            self.kernelRelease = kernelRelease
            self.targetBuildID = targetBuildID
            self.patches = patches
        }
    }

    /// The architecture name for an ELF `e_machine` (`x86_64`, `aarch64`, `riscv64`, …).
    public static func architecture(machine: UInt16) -> String {
        switch machine {
        case 62: return "x86_64"
        case 183: return "aarch64"
        case 243: return "riscv64"
        case 3: return "i386"
        case 40: return "arm"
        case 21: return "ppc64"
        case 22: return "s390x"
        case 258: return "loongarch64"
        default: return "em\(machine)"
        }
    }

    /// The metadata the bundle will have (payload checksum left empty; `BundleWriter` fills it), and the
    /// module's `.modinfo`.
    ///
    /// - Throws: `DiagnosticError` when the module cannot be read, is not a livepatch module, lacks
    ///   `vermagic`, or an option is malformed.
    public static func metadata(for options: Options) throws(DiagnosticError) -> (BundleMetadata, KernelModuleModinfo) {
        let info: KernelModuleModinfo
        do {
            info = try KernelModuleModinfo.read(path: options.module.path)
        } catch {
            throw DiagnosticError(Diagnostic(.error, error.description))
        }
        guard info.isLivepatch else {
            throw DiagnosticError(Diagnostic(.error, "\(options.module.path): not a livepatch module (no livepatch=Y in .modinfo; build it with MODULE_INFO(livepatch, \"Y\"))"))
        }
        guard let release = options.kernelRelease ?? info.kernelRelease else {
            throw DiagnosticError(Diagnostic(.error, "\(options.module.path): no vermagic in .modinfo; pass the kernel release explicitly"))
        }
        let candidates = info.klpRelocationObjects.filter { $0 != "vmlinux" }
        let target = options.targetObject ?? (candidates.count == 1 ? candidates[0] : "vmlinux")
        if let given = options.targetObject, !info.klpRelocationObjects.isEmpty,
           !info.klpRelocationObjects.contains(given) {
            throw DiagnosticError(Diagnostic(.error, "\(options.module.path): target object '\(given)' is not among the objects the module relocates against (\(info.klpRelocationObjects.joined(separator: ", ")))"))
        }
        let uuid = options.uuid ?? UUID().uuidString.lowercased()
        var patches: [BundleSourcePatch] = []
        for url in options.patches {
            patches.append(BundleSourcePatch(file: url.lastPathComponent, sha256: ""))
        }
        let metadata = BundleMetadata(
            name: options.name ?? info.name, version: options.version, release: options.release, uuid: uuid,
            kind: .kernel, description: options.description,
            target: BundleTarget(package: "kernel", version: release, arch: architecture(machine: info.machine)),
            entities: [BundleEntity(targetPath: target, targetBuildID: options.targetBuildID,
                                    payload: "\(info.name).ko", payloadSHA256: "", moduleName: info.name,
                                    replace: options.replace)],
            patches: patches)
        return (metadata, info)
    }

    /// Builds the bundle into `directory` (which must not exist) with `BundleWriter`.
    ///
    /// - Returns: the written bundle, verified and with its digest.
    /// - Throws: `DiagnosticError` as `metadata(for:)` and `BundleWriter.write` do.
    @discardableResult
    public static func build(_ options: Options, to directory: URL) throws(DiagnosticError) -> ResolvedBundle {
        let (metadata, info) = try metadata(for: options)
        var patchSources: [String: URL] = [:]
        for url in options.patches { patchSources[url.lastPathComponent] = url }
        return try BundleWriter.write(metadata, payloads: ["\(info.name).ko": options.module], patches: patchSources,
                                      to: directory)
    }
}
