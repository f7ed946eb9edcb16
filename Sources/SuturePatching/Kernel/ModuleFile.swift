#if canImport(Glibc)
import Glibc
#endif
import CLibDW
import SystemPackage

/// What the driver needs to know about a kernel module file (`.ko`) before loading it: its `.modinfo`
/// strings and whether a signature is appended.
///
/// Formats: `.modinfo` is a section of NUL-terminated `key=value` strings (`include/linux/moduleparam.h`
/// `__MODULE_INFO`, read by `kernel/module/main.c` `get_modinfo`); a signed module ends with the magic
/// `~Module signature appended~\n` (`include/linux/module_signature.h` `MODULE_SIG_STRING`).
/// Read with libelf (via `CLibDW`, whose header includes `gelf.h`).
public struct ModuleFile: Sendable, Hashable {
    /// Every `.modinfo` entry in file order (a key may repeat, e.g. `depends`, `alias`).
    public var entries: [ModinfoEntry]
    /// A signature is appended to the file.
    public var signed: Bool

    /// Memberwise initializer.
    public init(entries: [ModinfoEntry], signed: Bool) {
        self.entries = entries
        self.signed = signed
    }

    /// The first value for `key`, if any.
    public func value(_ key: String) -> String? { entries.first { $0.key == key }?.value }

    /// `vermagic` (`6.1.0-57-amd64 SMP preempt mod_unload modversions `), trailing space kept as written.
    public var vermagic: String? { value("vermagic") }
    /// `name`: the module name the kernel will use (`/sys/module/<name>`).
    public var name: String? { value("name") }
    /// `livepatch=Y`: the module declares itself a livepatch (`MODULE_INFO(livepatch, "Y")`).
    public var isLivepatch: Bool { value("livepatch") == "Y" }
    /// The kernel release the module was built for: the first word of `vermagic`.
    public var kernelRelease: String? {
        vermagic.flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).first.map(String.init) }
    }

    /// The magic trailer of a signed module.
    public static let signatureMagic = "~Module signature appended~\n"

    /// Parses the bytes of a `.modinfo` section: NUL-separated `key=value` strings; empty strings
    /// (alignment padding) are skipped, strings without `=` are ignored.
    public static func parseModinfo(_ bytes: [UInt8]) -> [ModinfoEntry] {
        var out: [ModinfoEntry] = []
        for chunk in bytes.split(separator: 0, omittingEmptySubsequences: true) {
            let s = String(decoding: chunk, as: UTF8.self)
            guard let eq = s.firstIndex(of: "=") else { continue }
            out.append(ModinfoEntry(key: String(s[..<eq]), value: String(s[s.index(after: eq)...])))
        }
        return out
    }

    /// Reads the `.modinfo` section and the signature trailer of the ELF file at `path`.
    /// - Throws: `ModuleFileError` when the file cannot be opened, is not ELF, or has no `.modinfo`.
    public static func read(path: String) throws(ModuleFileError) -> ModuleFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ModuleFileError(path: path, message: Errno(rawValue: errno).description) }
        defer { close(fd) }
        _ = elf_version(UInt32(EV_CURRENT))
        guard let elf = elf_begin(fd, ELF_C_READ, nil) else {
            throw ModuleFileError(path: path, message: "not an ELF file (\(String(cString: elf_errmsg(-1))))")
        }
        defer { elf_end(elf) }
        guard elf_kind(elf) == ELF_K_ELF else { throw ModuleFileError(path: path, message: "not an ELF file") }
        var shstrndx = 0
        guard elf_getshdrstrndx(elf, &shstrndx) == 0 else {
            throw ModuleFileError(path: path, message: "no section name table")
        }
        var modinfo: [UInt8]?
        var scn = elf_nextscn(elf, nil)
        while let section = scn {
            var shdr = GElf_Shdr()
            if gelf_getshdr(section, &shdr) != nil, let cname = elf_strptr(elf, shstrndx, Int(shdr.sh_name)),
               String(cString: cname) == ".modinfo" {
                var bytes: [UInt8] = []
                var data = elf_getdata(section, nil)
                while let d = data {
                    if let buf = d.pointee.d_buf, d.pointee.d_size > 0 {
                        bytes.append(contentsOf: UnsafeRawBufferPointer(start: buf, count: Int(d.pointee.d_size)))
                    }
                    data = elf_getdata(section, d)
                }
                modinfo = bytes
                break
            }
            scn = elf_nextscn(elf, section)
        }
        guard let modinfo else { throw ModuleFileError(path: path, message: "no .modinfo section: not a kernel module") }
        return ModuleFile(entries: parseModinfo(modinfo), signed: hasSignatureTrailer(fd: fd))
    }

    private static func hasSignatureTrailer(fd: Int32) -> Bool {
        let magic = Array(signatureMagic.utf8)
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= magic.count else { return false }
        var tail = [UInt8](repeating: 0, count: magic.count)
        let n = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, magic.count, st.st_size - off_t(magic.count)) }
        return n == magic.count && tail == magic
    }
}

/// One `key=value` string of `.modinfo`.
public struct ModinfoEntry: Sendable, Hashable {
    /// The key (`vermagic`, `name`, `livepatch`, `depends`, …).
    public var key: String
    /// The value after the first `=`.
    public var value: String

    /// Memberwise initializer.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// A module file could not be read.
public struct ModuleFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// Why.
    public var message: String
    /// `path: message`.
    public var description: String { "\(path): \(message)" }
}

/// Compares a module's `vermagic` with the running kernel.
///
/// Decision (documented in docs and README "Kernel tier"): the first word of `vermagic` must equal
/// `/proc/sys/kernel/osrelease` exactly — stricter than the kernel, which with `CONFIG_MODVERSIONS`
/// ignores the release and checks symbol CRCs (`kernel/module/version.c` `same_magic`), because a
/// livepatch is only valid for the exact build it was made from (kpatch `install` checks the same).
/// The rest of `vermagic` (`SMP preempt mod_unload modversions`) cannot be read for the running kernel
/// from /proc or /sys (no loaded module exposes its vermagic), so only the `SMP` flag is checked against
/// `/proc/version` (`#1 SMP PREEMPT_DYNAMIC …`); the kernel checks the rest at `finit_module` and refuses a
/// mismatch with ENOEXEC ("Invalid module format"), which the driver reports as a vermagic mismatch.
public enum VermagicCheck {
    /// `nil` when compatible, else the reason.
    /// - Parameters:
    ///   - vermagic: the module's `vermagic` modinfo value.
    ///   - osrelease: `/proc/sys/kernel/osrelease`, trimmed.
    ///   - procVersion: `/proc/version`, or `nil` when unreadable (then the SMP flag is not compared).
    public static func problem(vermagic: String, osrelease: String, procVersion: String?) -> String? {
        let words = vermagic.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let release = words.first else { return "module has an empty vermagic" }
        if release != osrelease {
            return "module built for kernel \(release), running kernel is \(osrelease) (vermagic \"\(vermagic.trimmingWhitespace())\")"
        }
        // Only a genuine banner counts (a livepatch of version_proc_show could change /proc/version).
        if let procVersion, procVersion.hasPrefix("Linux version ") {
            let hostSMP = procVersion.split(separator: " ").contains("SMP")
            let moduleSMP = words.dropFirst().contains("SMP")
            if hostSMP != moduleSMP {
                return "module vermagic \"\(vermagic.trimmingWhitespace())\" \(moduleSMP ? "has" : "lacks") SMP, running kernel \(hostSMP ? "is" : "is not") SMP"
            }
        }
        return nil
    }
}
