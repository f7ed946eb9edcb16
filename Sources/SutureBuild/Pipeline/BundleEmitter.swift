import Foundation
import SutureCore
import SutureELF
import SuturePatching

/// One bundle entity whose functions and target symbols are already resolved (by the object differ):
/// what `suture build` hands to `UserBundleBuilder.makeEntity`.
public struct ResolvedUserEntity: Sendable, Hashable {
    /// One replaced function.
    public struct Function: Sendable, Hashable {
        /// Name in the target.
        public var symbol: String
        /// Entry address minus the target's link base.
        public var offset: UInt64
        /// `st_size` in the target.
        public var size: UInt64
        /// The payload's replacement symbol.
        public var replacement: String

        /// Memberwise initializer.
        public init(symbol: String, offset: UInt64, size: UInt64, replacement: String) {
            self.symbol = symbol
            self.offset = offset
            self.size = size
            self.replacement = replacement
        }
    }

    /// The target ELF as it runs (absolute path recorded in the bundle).
    public var target: String
    /// The ELF whose `.symtab` names the target's symbols (the target itself when unstripped); used to
    /// find the `.cold` parts of replaced functions for the branch scan.
    public var symbols: String
    /// The payload object (`ET_REL`).
    public var payload: String
    /// The functions the payload replaces.
    public var functions: [Function]
    /// Payload undefined symbols bound to target offsets.
    public var targetSymbols: [TargetSymbol]

    /// Memberwise initializer.
    public init(target: String, symbols: String, payload: String, functions: [Function], targetSymbols: [TargetSymbol]) {
        self.target = target
        self.symbols = symbols
        self.payload = payload
        self.functions = functions
        self.targetSymbols = targetSymbols
    }
}

extension UserBundleBuilder {
    /// Makes the bundle entity for pre-resolved functions: reads each function's expected bytes from the
    /// target, refuses functions the detour cannot be written into (too short, a branch into the detour
    /// bytes from the function or its `.cold` parts), validates the payload with `PatchImageLinker` (its
    /// imports are the undefined symbols that are not target symbols), and checks that the payload links at
    /// an address next to the target (every relocation applied and range-checked).
    /// - Parameter payloadName: the payload's file name inside the bundle.
    /// - Throws: `UserBundleError` naming the target and the problem.
    public static func makeEntity(_ resolved: ResolvedUserEntity, payloadName: String) throws(UserBundleError) -> BundleEntity {
        let target: ELFObjectFile
        let buildID: String
        let linkBase: UInt64
        var coldSymbols: [ELFSymbol] = []
        var symbolLinkBase: UInt64 = 0
        do {
            target = try ELFObjectFile(path: resolved.target)
            guard target.machine == ELFObjectFile.machineX86_64,
                  target.fileType == ELFObjectFile.typeExecutable || target.fileType == ELFObjectFile.typeShared else {
                throw UserBundleError("target \(resolved.target) is not an x86-64 executable or shared object")
            }
            guard let id = try target.buildID() else {
                throw UserBundleError("target \(resolved.target) has no GNU build-id")
            }
            buildID = id
            linkBase = try target.linkBase()
            let symbolFile = resolved.symbols == resolved.target ? target : try ELFObjectFile(path: resolved.symbols)
            symbolLinkBase = try symbolFile.linkBase()
            coldSymbols = try symbolFile.symbols(.symtab).filter { $0.type == ELFSymbol.typeFunction && $0.name.contains(".cold") }
        } catch let e as UserBundleError { throw e } catch let e as ELFObjectError {
            throw UserBundleError("target \(resolved.target): \(e.message)")
        } catch {
            throw UserBundleError("target \(resolved.target): \(error)")
        }
        guard !resolved.functions.isEmpty else { throw UserBundleError("no function to replace in \(resolved.target)") }
        var functions: [FunctionPatch] = []
        var seen: Set<UInt64> = []
        for f in resolved.functions.sorted(by: { $0.offset < $1.offset }) {
            guard seen.insert(f.offset).inserted else {
                throw UserBundleError("\(resolved.target): the function at offset 0x\(String(f.offset, radix: 16)) (\(f.symbol)) is replaced twice")
            }
            let cold = coldSymbols.filter { $0.name == f.symbol + ".cold" || $0.name.hasPrefix(f.symbol + ".cold.") }
                .map { (name: $0.name, offset: $0.value - symbolLinkBase, size: $0.size) }
            functions.append(try functionPatch(target: target, linkBase: linkBase, symbol: f.symbol, offset: f.offset,
                                               size: f.size, coldParts: cold, replacement: f.replacement))
        }
        let payloadBytes: [UInt8]
        do { payloadBytes = Array(try Data(contentsOf: URL(fileURLWithPath: resolved.payload))) } catch {
            throw UserBundleError("payload \(resolved.payload): \(error.localizedDescription)")
        }
        var targetOffsets: [String: UInt64] = [:]
        for s in resolved.targetSymbols { targetOffsets[s.symbol] = s.offset }
        let linker: PatchImageLinker
        do {
            linker = try PatchImageLinker(object: payloadBytes, targetSymbols: targetOffsets,
                                          requiredFunctions: functions.map(\.replacement))
        } catch {
            throw UserBundleError("payload for \(resolved.target): \(error)")
        }
        let entity = BundleEntity(targetPath: absolute(resolved.target), targetBuildID: buildID, payload: payloadName,
                                  payloadSHA256: "", functions: functions, imports: linker.imports,
                                  targetSymbols: resolved.targetSymbols.sorted { $0.symbol < $1.symbol },
                                  targetLinkBase: linkBase)
        try trialLink(linker, entity: entity, target: target)
        return entity
    }

    /// Links the payload as the engine would, at the first page after the target's highest `PT_LOAD`
    /// segment of a target loaded at its link base (imports at a libc-like address): every relocation must
    /// apply and fit. The engine places the region within ±2 GiB of the target, so this is the placement
    /// that matters for target references.
    /// - Throws: `UserBundleError` with the linker's message (`RELOCATION_OVERFLOW` names the relocation).
    static func trialLink(_ linker: PatchImageLinker, entity: BundleEntity, target: ELFObjectFile) throws(UserBundleError) {
        let page = PatchImageLayout.pageSize
        let loadBias: UInt64 = 0x5555_5555_4000
        var end: UInt64 = 0
        do {
            for ph in try target.programHeaders() where ph.type == 1 { end = max(end, ph.virtualAddress + ph.memorySize) }
        } catch {
            throw UserBundleError("target \(entity.targetPath): \(error.message)")
        }
        let base = (loadBias + end + 2 * page - 1) / page * page
        do {
            _ = try linker.link(base: base, targetBase: loadBias + (entity.targetLinkBase ?? 0),
                                resolveImport: { _ in 0x7f12_3456_0000 })
        } catch {
            throw UserBundleError("payload for \(entity.targetPath) does not link next to the target: \(error)")
        }
    }

    /// Writes a bundle of several entities (one per target) with `BundleWriter`.
    /// - Parameters:
    ///   - entities: the entities (payload checksums left empty) with the payload file for each.
    ///   - package: target package and version (default: dpkg's owner of the first target, else its path and
    ///     `build-<build-id prefix>`).
    /// - Returns: the written bundle (path, digest).
    /// - Throws: `UserBundleError` when the bundle cannot be written (the destination exists, …).
    public static func write(entities: [(entity: BundleEntity, payload: String)], name: String, version: String,
                             release: String, description: String, package: String?, packageVersion: String?,
                             patches: [String], output: URL) throws(UserBundleError) -> ResolvedBundle {
        guard let first = entities.first else { throw UserBundleError("no entity to write") }
        let identityRequest = UserBundleRequest(target: first.entity.targetPath, object: first.payload, replacements: [],
                                                name: name, version: version, package: package, packageVersion: packageVersion)
        let (pkg, pkgVersion) = packageIdentity(identityRequest, buildID: first.entity.targetBuildID)
        var payloads: [String: URL] = [:]
        var used: Set<String> = []
        var written: [BundleEntity] = []
        for (entity, payload) in entities {
            var e = entity
            var file = e.payload
            while !used.insert(file).inserted { file = "_" + file }
            e.payload = file
            payloads[file] = URL(fileURLWithPath: payload)
            written.append(e)
        }
        var sourcePatches: [BundleSourcePatch] = []
        var patchFiles: [String: URL] = [:]
        for p in patches {
            var file = (p as NSString).lastPathComponent
            while !used.insert(file).inserted { file = "_" + file }
            sourcePatches.append(BundleSourcePatch(file: file, sha256: ""))
            patchFiles[file] = URL(fileURLWithPath: p)
        }
        let metadata = BundleMetadata(name: name, version: version, release: release, uuid: UUID().uuidString.lowercased(),
                                      kind: .user, description: description,
                                      target: BundleTarget(package: pkg, version: pkgVersion, arch: "x86_64"),
                                      entities: written, patches: sourcePatches)
        do {
            return try BundleWriter.write(metadata, payloads: payloads, patches: patchFiles, to: output)
        } catch {
            throw UserBundleError("cannot write the bundle: \(error)")
        }
    }
}
