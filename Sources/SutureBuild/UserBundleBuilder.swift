import Foundation
import SutureCore
import SutureELF
import SuturePatching

/// Why a user bundle cannot be made. The message names the file, function or symbol; nothing is written.
public struct UserBundleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message, as printed by the CLI.
    public var description: String { message }
}

/// The inputs of `suture bundle create --kind user`.
public struct UserBundleRequest: Sendable, Hashable {
    /// One replaced function: the target's symbol and the payload's replacement (same name by default).
    public struct Replacement: Sendable, Hashable {
        /// Target function (`parse_request`).
        public var old: String
        /// Payload function (`parse_request_fixed`).
        public var new: String

        /// Parses `OLD` or `OLD=NEW`.
        public init(_ spec: String) {
            if let eq = spec.firstIndex(of: "=") {
                old = String(spec[..<eq])
                new = String(spec[spec.index(after: eq)...])
            } else {
                old = spec
                new = spec
            }
        }

        /// Memberwise initializer.
        public init(old: String, new: String) {
            self.old = old
            self.new = new
        }
    }

    /// The target ELF as installed (may be stripped). The bundle records its absolute path with
    /// symbolic links resolved (the path the kernel shows in `/proc/PID/maps`), unless `installPath`.
    public var target: String
    /// Where the target is installed on the hosts when `target` is a copy elsewhere (a build tree):
    /// recorded as the bundle's target path instead of `target`. Absolute; taken as written.
    public var installPath: String?
    /// The payload: a relocatable x86-64 object (`gcc -c -fPIC -ffunction-sections -fdata-sections fix.c`).
    public var object: String
    /// The functions to replace.
    public var replacements: [Replacement]
    /// Patch name.
    public var name: String
    /// Patch version.
    public var version: String
    /// Patch release (default `"1"`).
    public var release: String
    /// An unstripped copy of the target with the same build-id, for symbols when the target is stripped.
    public var symbols: String?
    /// Target package name; looked up with dpkg when nil.
    public var package: String?
    /// Target package version; looked up with dpkg when nil.
    public var packageVersion: String?
    /// Source `.patch` files to ship in the bundle.
    public var patches: [String]
    /// Output directory (default `./NAME-VERSION`).
    public var output: String?
    /// Free-text description.
    public var description: String

    /// Memberwise initializer.
    public init(target: String, object: String, replacements: [Replacement], name: String, version: String,
                release: String = "1", symbols: String? = nil, package: String? = nil, packageVersion: String? = nil,
                patches: [String] = [], output: String? = nil, description: String = "") {
        self.target = target
        self.object = object
        self.replacements = replacements
        self.name = name
        self.version = version
        self.release = release
        self.symbols = symbols
        self.package = package
        self.packageVersion = packageVersion
        self.patches = patches
        self.output = output
        self.description = description
    }
}

/// Makes a `kind: user` patch bundle from a target ELF and a hand-compiled payload object.
///
/// For each `--replace OLD[=NEW]` it records the target function's offset from the link base (lowest
/// `PT_LOAD` `p_vaddr`), its size, its first bytes (up to 16, read from the target file) and the
/// replacement symbol; it refuses functions the detour cannot be written into safely:
/// - shorter than the 5-byte `jmp rel32` (9 bytes when the entry is `endbr64`, which is kept; ``X86Detour``);
/// - with a direct branch (in the function itself or its `OLD.cold` part) landing inside the detour bytes
///   (`X86BranchScanner`).
/// The payload's undefined symbols that the target defines (static functions, globals, copy-relocated
/// data) are resolved to target offsets now (`target_symbols`); every other undefined symbol becomes an
/// import resolved at run time. The payload is validated with `PatchImageLinker` (TLS, exception tables,
/// unsupported relocations are refused here, not at activation). Target symbols come from the target's
/// `.symtab` and `.dynsym`, or from `symbols` (whose build-id must equal the target's) when stripped.
public enum UserBundleBuilder {
    /// The result of `build`.
    public struct Output: Sendable {
        /// The written metadata.
        public var metadata: BundleMetadata
        /// The bundle directory.
        public var directory: URL
    }

    /// Builds the bundle and writes it with `BundleWriter` into `request.output` (default `./NAME-VERSION`).
    /// - Throws: `UserBundleError` naming the problem; nothing is written on error.
    public static func build(_ request: UserBundleRequest) throws(UserBundleError) -> Output {
        let (metadata, payloadName) = try makeMetadata(request)
        let out = URL(fileURLWithPath: request.output ?? "\(request.name)-\(request.version)")
        var patches: [String: URL] = [:]
        for (i, p) in request.patches.enumerated() {
            patches[metadata.patches[i].file] = URL(fileURLWithPath: p)
        }
        do {
            let resolved = try BundleWriter.write(metadata, payloads: [payloadName: URL(fileURLWithPath: request.object)],
                                                  patches: patches, to: out)
            return Output(metadata: resolved.metadata, directory: URL(fileURLWithPath: resolved.path))
        } catch {
            throw UserBundleError("cannot write the bundle: \(error)")
        }
    }

    /// Computes the metadata (payload checksum left empty for the writer to fill) without writing.
    /// - Returns: the metadata and the payload's file name inside the bundle.
    /// - Throws: `UserBundleError`.
    public static func makeMetadata(_ request: UserBundleRequest) throws(UserBundleError) -> (BundleMetadata, String) {
        guard !request.replacements.isEmpty else { throw UserBundleError("no --replace given: name at least one function to replace") }
        if let installPath = request.installPath, !installPath.hasPrefix("/") {
            throw UserBundleError("--install-path \(installPath) is not absolute: give the path the target has on the hosts")
        }
        let target: ELFObjectFile
        do { target = try ELFObjectFile(path: request.target) } catch { throw UserBundleError("target: \(error.message)") }
        guard target.machine == ELFObjectFile.machineX86_64,
              target.fileType == ELFObjectFile.typeExecutable || target.fileType == ELFObjectFile.typeShared else {
            throw UserBundleError("target \(request.target) is not an x86-64 executable or shared object")
        }
        let buildID: String
        let linkBase: UInt64
        do {
            guard let id = try target.buildID() else {
                throw UserBundleError("target \(request.target) has no GNU build-id (link with -Wl,--build-id); it could not be identified in processes")
            }
            buildID = id
            linkBase = try target.linkBase()
        } catch let e as UserBundleError { throw e } catch {
            throw UserBundleError("target: \(error)")
        }

        // The symbol source: the target itself, or an unstripped copy with the same build-id.
        var symbolFile = target
        var symbolLinkBase = linkBase
        if let symbolsPath = request.symbols {
            do {
                let s = try ELFObjectFile(path: symbolsPath)
                let id = try s.buildID()
                guard id == buildID else {
                    throw UserBundleError("--symbols \(symbolsPath) has build-id \(id ?? "none"), the target has \(buildID): not the same build")
                }
                symbolFile = s
                symbolLinkBase = try s.linkBase()
            } catch let e as UserBundleError { throw e } catch {
                throw UserBundleError("--symbols: \(error)")
            }
        }
        var symbols: [ELFSymbol]
        do { symbols = try symbolFile.symbols(.symtab) + symbolFile.symbols(.dynsym) } catch {
            throw UserBundleError("reading symbols: \(error.message)")
        }
        let stripped = (try? symbolFile.symbols(.symtab).isEmpty) ?? true
        symbols = symbols.filter { $0.isDefined && !$0.name.isEmpty && $0.type != ELFSymbol.typeSection && $0.type != ELFSymbol.typeFile }

        /// Defined symbols named `name` (or `name@VER` / `name@@VER`), one per distinct address.
        func lookup(_ name: String, functionsOnly: Bool) -> [ELFSymbol] {
            var byValue: [UInt64: ELFSymbol] = [:]
            for s in symbols where s.name == name || s.name.hasPrefix(name + "@") {
                if functionsOnly && s.type != ELFSymbol.typeFunction { continue }
                if byValue[s.value] == nil || s.size > byValue[s.value]!.size { byValue[s.value] = s }
            }
            return byValue.values.sorted { $0.value < $1.value }
        }

        // Replaced functions.
        var functions: [FunctionPatch] = []
        var seenOld: Set<String> = []
        for r in request.replacements {
            guard seenOld.insert(r.old).inserted else { throw UserBundleError("function \(r.old) is replaced twice") }
            let found = lookup(r.old, functionsOnly: true)
            guard !found.isEmpty else {
                throw UserBundleError(stripped && request.symbols == nil
                    ? "function \(r.old) not found: \(request.target) is stripped; pass --symbols with an unstripped build of the same build-id"
                    : "function \(r.old) not found in the target's symbol table")
            }
            guard found.count == 1, let sym = found.first else {
                throw UserBundleError("function \(r.old) is ambiguous: \(found.count) definitions at " +
                    found.map { "0x" + String($0.value, radix: 16) }.joined(separator: ", ") + " (static functions in several files)")
            }
            let coldParts = symbols.filter { $0.type == ELFSymbol.typeFunction && ($0.name == r.old + ".cold" || $0.name.hasPrefix(r.old + ".cold.")) }
                .map { (name: $0.name, offset: $0.value - symbolLinkBase, size: $0.size) }
            functions.append(try functionPatch(target: target, linkBase: linkBase, symbol: r.old, offset: sym.value - symbolLinkBase,
                                               size: sym.size, coldParts: coldParts, replacement: r.new))
        }

        // The payload: undefined symbols → target symbols or imports; validate with the linker.
        let objectBytes: [UInt8]
        let objectSymbols: [ELFSymbol]
        var referenced: Set<Int> = []
        do {
            objectBytes = Array(try Data(contentsOf: URL(fileURLWithPath: request.object)))
            let object = try ELFObjectFile(bytes: objectBytes, origin: request.object)
            guard object.fileType == ELFObjectFile.typeRelocatable, object.machine == ELFObjectFile.machineX86_64 else {
                throw UserBundleError("--object \(request.object) is not a relocatable x86-64 object (build it with gcc -c)")
            }
            objectSymbols = try object.symbols(.symtab)
            // Only symbols that loaded code or data refers to (gas also lists an unreferenced
            // _GLOBAL_OFFSET_TABLE_ whenever GOT-relative relocations are used).
            for rs in try object.relocationSections() where object.sections[rs.targetSectionIndex].isAllocated {
                for r in rs.relocations { referenced.insert(r.symbolIndex) }
            }
        } catch let e as UserBundleError { throw e } catch let e as ELFObjectError {
            throw UserBundleError("--object: \(e.message)")
        } catch {
            throw UserBundleError("--object \(request.object): \(error.localizedDescription)")
        }
        var targetSymbols: [TargetSymbol] = []
        var targetOffsets: [String: UInt64] = [:]
        for s in objectSymbols where !s.isDefined && !s.name.isEmpty && referenced.contains(s.index) && targetOffsets[s.name] == nil {
            let found = lookup(s.name, functionsOnly: false)
            if found.count > 1 {
                throw UserBundleError("symbol \(s.name) referenced by the payload is ambiguous in the target: \(found.count) definitions at " +
                    found.map { "0x" + String($0.value, radix: 16) }.joined(separator: ", "))
            }
            if let t = found.first, t.type != ELFSymbol.typeTLS, t.type != ELFSymbol.typeIFunc {
                targetOffsets[s.name] = t.value - symbolLinkBase
                targetSymbols.append(TargetSymbol(symbol: s.name, offset: t.value - symbolLinkBase))
            }
        }
        let linker: PatchImageLinker
        do {
            linker = try PatchImageLinker(object: objectBytes, targetSymbols: targetOffsets,
                                          requiredFunctions: request.replacements.map(\.new))
        } catch {
            throw UserBundleError("payload \(request.object): \(error)")
        }

        // Package identity.
        let (package, packageVersion) = packageIdentity(request, buildID: buildID)
        var payloadName = (request.target as NSString).lastPathComponent + ".o"
        if payloadName == "patch.yaml.o" { payloadName = "payload.o" }
        let entity = BundleEntity(targetPath: recordedPath(request), targetBuildID: buildID, payload: payloadName,
                                  payloadSHA256: "", functions: functions, imports: linker.imports,
                                  targetSymbols: targetSymbols.sorted { $0.symbol < $1.symbol }, targetLinkBase: linkBase)
        var sourcePatches: [BundleSourcePatch] = []
        var used: Set<String> = [payloadName]
        for p in request.patches {
            var file = (p as NSString).lastPathComponent
            while !used.insert(file).inserted { file = "_" + file }
            sourcePatches.append(BundleSourcePatch(file: file, sha256: ""))
        }
        let metadata = BundleMetadata(name: request.name, version: request.version, release: request.release,
                                      uuid: UUID().uuidString.lowercased(), kind: .user, description: request.description,
                                      target: BundleTarget(package: package, version: packageVersion, arch: "x86_64"),
                                      entities: [entity], patches: sourcePatches)
        return (metadata, payloadName)
    }

    /// Reads a target function's code at `offset` (from the link base), refuses it when the detour cannot be
    /// written safely (shorter than the detour, or a direct branch in it or its `.cold` parts lands inside
    /// the detour bytes; ``X86Detour``), and returns its bundle record with the first ≤ 16 bytes as
    /// `expected_bytes`. Shared by `bundle create` (functions looked up by name) and `suture build`
    /// (functions resolved by the object differ).
    /// - Throws: `UserBundleError` naming the function.
    static func functionPatch(target: ELFObjectFile, linkBase: UInt64, symbol: String, offset: UInt64, size: UInt64,
                              coldParts: [(name: String, offset: UInt64, size: UInt64)],
                              replacement: String) throws(UserBundleError) -> FunctionPatch {
        let code: [UInt8]
        do { code = try target.bytes(atVirtualAddress: linkBase + offset, count: Int(size)) } catch {
            throw UserBundleError("function \(symbol): cannot read its code: \(error.message)")
        }
        let start = X86Detour.siteOffset(entryBytes: code)
        guard size >= X86Detour.minimumFunctionSize(entryBytes: code) else {
            throw UserBundleError("function \(symbol) is \(size) bytes, shorter than the \(X86Detour.minimumFunctionSize(entryBytes: code))-byte detour\(start > 0 ? " (after endbr64)" : ""): writing it would overwrite the next function")
        }
        // Branches into the detour bytes from the function and its .cold parts.
        var regions: [(name: String, offset: UInt64, code: [UInt8])] = [(symbol, offset, code)]
        for cold in coldParts {
            if let bytes = try? target.bytes(atVirtualAddress: linkBase + cold.offset, count: Int(cold.size)) {
                regions.append((cold.name, cold.offset, bytes))
            }
        }
        let site = offset + start
        for region in regions {
            let scan = X86BranchScanner.branchTargets(in: region.code)
            for t in scan.targets {
                let landing = UInt64(bitPattern: Int64(bitPattern: region.offset) &+ t)
                if X86Detour.landsInside(landing, site: site) {
                    throw UserBundleError("function \(symbol): a branch in \(region.name) lands at entry+\(landing - offset), inside the \(X86Detour.jumpSize)-byte detour at entry+\(start); it cannot be patched safely\(scan.decoded ? "" : " (conservative scan: the decoder did not understand all of \(region.name))")")
                }
            }
        }
        return FunctionPatch(symbol: symbol, offset: offset, size: size,
                             expectedBytes: code.prefix(16).map { String(format: "%02x", $0) }.joined(),
                             replacement: replacement)
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The target path the bundle records: `installPath`, else `target` made absolute with every
    /// symbolic link resolved (`realpath(3)`), so that a manifest naming the real file matches and so
    /// does `/proc/PID/maps`, which shows resolved paths.
    static func recordedPath(_ request: UserBundleRequest) -> String {
        if let installPath = request.installPath { return installPath }
        guard let resolved = realpath(request.target, nil) else { return absolute(request.target) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `--package`/`--package-version`, else dpkg's owner of the target, else the target path and the
    /// build-id's first 12 hex digits.
    static func packageIdentity(_ request: UserBundleRequest, buildID: String) -> (String, String) {
        if let p = request.package, let v = request.packageVersion { return (p, v) }
        var package = request.package
        var version = request.packageVersion
        // dpkg knows a file by the path its package ships (`/bin/x` on a merged-/usr system), which may
        // be a link to the recorded one: ask for the path as given first.
        let asGiven = request.installPath ?? absolute(request.target)
        let recorded = recordedPath(request)
        func dpkgOwner() -> String? {
            run("/usr/bin/dpkg", ["-S", asGiven]) ?? (recorded == asGiven ? nil : run("/usr/bin/dpkg", ["-S", recorded]))
        }
        if package == nil, let out = dpkgOwner(),
           let first = out.split(separator: "\n").first, let colon = first.firstIndex(of: ":") {
            package = String(first[..<colon]).split(separator: ",").first.map { String($0).trimmingCharacters(in: .whitespaces) }
        }
        if let p = package, version == nil, let out = run("/usr/bin/dpkg-query", ["-W", "-f=${Version}", p]) {
            let v = out.trimmingCharacters(in: .whitespacesAndNewlines)
            if !v.isEmpty { version = v }
        }
        return (package ?? recorded, version ?? "build-\(buildID.prefix(12))")
    }

    private static func run(_ tool: String, _ args: [String]) -> String? {
        guard FileManager.default.isExecutableFile(atPath: tool),
              let run = try? ChildProcess.run(tool, args, timeout: .seconds(30)), run.succeeded else { return nil }
        return run.outputText
    }
}

