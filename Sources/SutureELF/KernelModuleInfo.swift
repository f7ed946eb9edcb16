
/// The `.modinfo` section of a Linux kernel module (`.ko`), read with libelf (through `ELFObjectFile`).
///
/// Format: `.modinfo` is a sequence of NUL-terminated `key=value` strings emitted by `MODULE_INFO()`
/// (include/linux/moduleparam.h, `__MODULE_INFO`) and by modpost (`vermagic=`, `name=`, `depends=`,
/// `retpoline=`, `intree=`, `srcversion=`; scripts/mod/modpost.c). Keys may repeat (`alias=`, `parm=`).
/// A livepatch module carries `livepatch=Y` (`MODULE_INFO(livepatch, "Y")`, required by
/// kernel/module/main.c `check_modinfo_livepatch`). SysCare reads `name=` the same way to find the
/// `/sys/kernel/livepatch/<name>` directory.
public struct KernelModuleModinfo: Sendable, Hashable {
    /// Every `key=value` entry in section order (duplicates kept). Strings without `=` are kept with an
    /// empty value.
    public var entries: [Entry]
    /// The module name: `name=` when present (modpost adds it since Linux 5.x), otherwise the file name
    /// without `.ko` with `-` replaced by `_` (what kbuild's `KBUILD_MODNAME` would be).
    public var name: String
    /// Whether `name` came from `.modinfo` (`true`) or from the file name (`false`).
    public var nameFromModinfo: Bool
    /// `vermagic=` (`6.1.0-57-amd64 SMP preempt mod_unload modversions `), or `nil`.
    public var vermagic: String?
    /// `license=`, or `nil`.
    public var license: String?
    /// `depends=`, split on commas; empty when absent or empty.
    public var depends: [String]
    /// `livepatch=Y`.
    public var isLivepatch: Bool
    /// Objects named by `.klp.rela.<object>.<section>` sections (klp-convert / kpatch-build output):
    /// `vmlinux` or module names whose non-exported symbols the patch resolves. Sorted, unique.
    public var klpRelocationObjects: [String]
    /// ELF `e_machine` (`EM_X86_64` = 62).
    public var machine: UInt16

    /// One `.modinfo` string.
    public struct Entry: Sendable, Hashable {
        /// The text before the first `=`.
        public var key: String
        /// The text after the first `=`.
        public var value: String

        /// Memberwise initializer.
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The kernel release part of `vermagic` (its first word, e.g. `6.1.0-57-amd64`), or `nil`.
    public var kernelRelease: String? {
        vermagic?.split(separator: " ").first.map(String.init)
    }

    /// The first value of `key`, or `nil`.
    public func value(_ key: String) -> String? {
        entries.first { $0.key == key }?.value
    }

    /// A failure to read a module.
    public struct ReadError: Error, Sendable, CustomStringConvertible {
        /// The module path.
        public var path: String
        /// What went wrong.
        public var reason: String
        /// `path: reason`.
        public var description: String { "\(path): \(reason)" }
    }

    /// Reads the `.modinfo` of the kernel module at `path`.
    ///
    /// - Throws: `ReadError` when the file cannot be opened, is not an ELF relocatable object (`ET_REL`,
    ///   which every `.ko` is), or has no `.modinfo` section.
    public static func read(path: String) throws(ReadError) -> KernelModuleModinfo {
        func fail(_ reason: String) -> ReadError { ReadError(path: path, reason: reason) }
        func fail(_ error: ELFObjectError) -> ReadError {
            let prefix = path + ": "
            return fail(error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message)
        }
        let file: ELFObjectFile
        do {
            file = try ELFObjectFile(path: path)
        } catch {
            throw fail(error)
        }
        guard file.fileType == ELFObjectFile.typeRelocatable else {
            throw fail("not a kernel module: ELF type \(file.fileType), expected ET_REL (1)")
        }
        var modinfo: [UInt8]?
        var klpObjects = Set<String>()
        for section in file.sections {
            if section.name == ".modinfo" {
                guard !section.isNoBits else { throw fail(".modinfo has no contents (SHT_NOBITS)") }
                do {
                    modinfo = try file.sectionData(section.index)
                } catch {
                    throw fail(error)
                }
            } else if section.name.hasPrefix(".klp.rela.") {
                // .klp.rela.<object>.<section name, which itself starts with '.'>
                let rest = section.name.dropFirst(".klp.rela.".count)
                if let dot = rest.firstIndex(of: "."), dot > rest.startIndex {
                    klpObjects.insert(String(rest[..<dot]))
                }
            }
        }
        guard let bytes = modinfo else { throw fail("no .modinfo section (not a kernel module)") }
        let entries = parseEntries(bytes)
        var info = KernelModuleModinfo(entries: entries, name: "", nameFromModinfo: false, vermagic: nil,
                                       license: nil, depends: [], isLivepatch: false,
                                       klpRelocationObjects: klpObjects.sorted(), machine: file.machine)
        info.vermagic = info.value("vermagic")
        info.license = info.value("license")
        info.depends = (info.value("depends") ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
        info.isLivepatch = info.value("livepatch") == "Y"
        if let name = info.value("name"), !name.isEmpty {
            info.name = name
            info.nameFromModinfo = true
        } else {
            var base = path.split(separator: "/").last.map(String.init) ?? path
            if base.hasSuffix(".ko") { base.removeLast(3) }
            info.name = String(base.map { $0 == "-" ? "_" : $0 })
        }
        return info
    }

    /// Splits the raw section into `key=value` entries (NUL-separated; empty strings and alignment padding
    /// skipped).
    public static func parseEntries(_ bytes: [UInt8]) -> [Entry] {
        bytes.split(separator: 0, omittingEmptySubsequences: true).map { raw in
            let text = String(decoding: raw, as: UTF8.self)
            if let eq = text.firstIndex(of: "=") {
                return Entry(key: String(text[..<eq]), value: String(text[text.index(after: eq)...]))
            }
            return Entry(key: text, value: "")
        }
    }
}
