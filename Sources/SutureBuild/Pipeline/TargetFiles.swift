import Foundation
import SutureELF

/// Finding and checking the ELF files a build patches.
public enum TargetFiles {
    /// A target ELF as checked: an x86-64 executable or shared object with a GNU build-id.
    public struct Target: Sendable, Hashable, Codable {
        /// Absolute path.
        public var path: String
        /// `NT_GNU_BUILD_ID`, lower-case hex.
        public var buildID: String
        /// True when it has a non-empty `.symtab`.
        public var hasSymtab: Bool
    }

    /// Checks that `path` is a patchable target.
    /// - Throws: `BuildError` naming the file and the problem.
    public static func check(_ path: String) throws(BuildError) -> Target {
        let absolute = CompileLog.absolute(path, in: FileManager.default.currentDirectoryPath)
        let elf: ELFObjectFile
        do { elf = try ELFObjectFile(path: absolute) } catch {
            throw BuildError("--target \(path): \(error.message)")
        }
        guard elf.machine == ELFObjectFile.machineX86_64,
              elf.fileType == ELFObjectFile.typeExecutable || elf.fileType == ELFObjectFile.typeShared else {
            throw BuildError("--target \(path) is not an x86-64 executable or shared object")
        }
        let id: String?
        do { id = try elf.buildID() } catch { throw BuildError("--target \(path): \(error.message)") }
        guard let id else {
            throw BuildError("--target \(path) has no GNU build-id (link with -Wl,--build-id): it could not be identified in processes")
        }
        let symtab = ((try? elf.symbols(.symtab)) ?? []).count > 1
        return Target(path: absolute, buildID: id, hasSymtab: symtab)
    }

    /// Regular files under `root` that are ELF executables or shared objects (by their header; symlinks
    /// and relocatable objects skipped), sorted by path.
    public static func elfFiles(under root: URL) -> [String] {
        var found: [String] = []
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey]) else { return [] }
        for case let url as URL in walker {
            guard let values = try? url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey]),
                  values.isRegularFile == true, values.isSymbolicLink != true else { continue }
            if isLinkedELF(url.path) { found.append(url.path) }
        }
        return found.sorted()
    }

    /// True for a file starting with the ELF magic whose `e_type` is `ET_EXEC` or `ET_DYN`.
    static func isLinkedELF(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 18), header.count == 18 else { return false }
        let bytes = [UInt8](header)
        guard bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else { return false }
        let type = UInt16(bytes[16]) | UInt16(bytes[17]) << 8
        return type == ELFObjectFile.typeExecutable || type == ELFObjectFile.typeShared
    }

    /// The `STT_FILE` names of an ELF's `.symtab` (the source files it was linked from, as the compiler
    /// named them), empty when stripped.
    public static func sourceFileSymbols(_ path: String) -> Set<String> {
        guard let elf = try? ELFObjectFile(path: path), let symbols = try? elf.symbols(.symtab) else { return [] }
        return Set(symbols.filter { $0.type == ELFSymbol.typeFile && !$0.name.isEmpty }.map(\.name))
    }

    /// The ELF files under `root` linked from at least one of `sources` (matched on the `STT_FILE`
    /// symbol's base name): the default targets.
    public static func containing(sources: [String], under root: URL) -> [String] {
        let wanted = Set(sources.map { ($0 as NSString).lastPathComponent })
        return elfFiles(under: root).filter { file in
            sourceFileSymbols(file).contains { wanted.contains(($0 as NSString).lastPathComponent) }
        }
    }
}
