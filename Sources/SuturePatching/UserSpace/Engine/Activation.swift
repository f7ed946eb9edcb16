#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore
import SystemPackage

/// Activation: target match, detour planning from the live entry bytes, layout, then prepare and commit
/// with BUSY back-off (or reattach of a detached region).
extension EngineSession {
    // MARK: - Activate

    func activate(_ request: UserPatchRequest, startTime: UInt64?) throws(UserPatchError) -> UserPatchEngineResult {
        raiseScheduler()
        defer { restoreScheduler() }
        try preflight(startTime: startTime)
        guard let uuidBytes = PatchRegionHeader.uuidBytes(request.uuid), uuidBytes.count == 16,
              PatchRegionMarker.isValidID(request.uuid) else {
            throw error(.notApplicable, "patch uuid '\(request.uuid)' is not a uuid")
        }
        _ = uuidBytes
        let uuid = request.uuid.lowercased()
        guard let maps = ProcMapping.read(pid: pid) else { throw error(.targetExited, "the process exited") }
        if maps.isEmpty { throw error(.notApplicable, "kernel thread (no memory map)") }
        let entity = request.entity
        guard let target = TargetObject.find(pid: pid, targetPath: entity.targetPath, buildID: entity.targetBuildID, maps: maps) else {
            throw error(.notApplicable, "\(entity.targetPath) is not mapped in this process")
        }
        if target.buildID != entity.targetBuildID.lowercased() {
            throw error(.notApplicable,
                        "\(target.path) has build-id \(target.buildID.isEmpty ? "(none)" : target.buildID), the patch targets \(entity.targetBuildID)")
        }
        if entity.functions.isEmpty { throw error(.unpatchableFunction, "the patch replaces no function") }

        // An existing region of this patch?
        var orphan: UserPatchRegion?
        if let existing = UserPatchEngine.regions(in: tracee, maps: maps).first(where: { $0.uuid == uuid }), existing.header == nil {
            // All zeros: mapped by a prepare that died before the contents were written (engines that wrote
            // them after the mmaps). Nothing can reference such a region: an orphan, removed below.
            guard let head = tracee.readMemory(at: existing.address, count: PatchRegionHeader.fixedSize),
                  head.allSatisfy({ $0 == 0 }) else {
                throw error(.inconsistent, "a region named suture:\(uuid) exists but its header is unreadable",
                            hint: "restart the process")
            }
            orphan = existing
        } else if let existing = UserPatchEngine.regions(in: tracee, maps: maps).first(where: { $0.uuid == uuid }),
                  let header = existing.header {
            switch header.state {
            case .active:
                switch ActiveRegionEntries.classify(header, in: tracee) {
                case .intact:
                    return UserPatchEngineResult(outcome: .alreadyActive, pauseNanoseconds: nil, threads: 0,
                                                 busyRetries: 0, regionAddress: existing.address)
                case let .foreign(f):
                    throw error(.foreignModification,
                                "patch is marked ACTIVE but \(f?.symbol ?? "an entry") at 0x\(hex(f?.site ?? 0)) holds neither its detour nor the original bytes",
                                hint: "another tool rewrote the entry; restart the process")
                case .restored:
                    break
                }
                // Every entry holds its original bytes again (a debugger or another tool restored them): the
                // region is intact but unreached. Threads may still be inside it, so it is not replaced: the
                // detours are committed again, pointing at it (whole process stopped, as for a new patch).
                return try reattach(existing: existing, header: header)
            case .inconsistent:
                throw error(.inconsistent, "the region of this patch is marked INCONSISTENT by an earlier failed rollback",
                            hint: "restart the process")
            case .prepared:
                orphan = existing
            }
        }

        // Plan each detour from the live entry bytes (nothing is touched yet).
        struct Planned { var fn: BundleEntityView.Function; var entry: UInt64; var site: UInt64; var original: [UInt8] }
        var planned: [Planned] = []
        for f in entity.functions {
            let entry = target.loadBias &+ target.linkBase &+ f.offset
            guard let cur = tracee.readMemory(at: entry, count: 16) else {
                throw error(.unpatchableFunction, "\(f.symbol) at 0x\(hex(entry)) is not readable (offset 0x\(hex(f.offset)) outside the object?)")
            }
            if !f.expectedBytes.isEmpty, !cur.starts(with: f.expectedBytes.prefix(16)) {
                throw error(.foreignModification,
                            "\(f.symbol) at 0x\(hex(entry)) holds \(PatchRegionHeader.hexString(cur)), expected \(PatchRegionHeader.hexString(f.expectedBytes))",
                            hint: X86Detour.looksDetoured(entryBytes: cur)
                                ? "another live patch or a debugger breakpoint is on this function" : "the bundle was made for other bytes")
            }
            let skip = X86Detour.siteOffset(entryBytes: cur)
            let needed = X86Detour.minimumFunctionSize(entryBytes: cur)
            if f.size < needed {
                throw error(.unpatchableFunction, "\(f.symbol) is \(f.size) bytes, shorter than the \(needed)-byte detour",
                            hint: "patch its caller instead")
            }
            planned.append(Planned(fn: f, entry: entry, site: entry + skip,
                                   original: Array(cur[Int(skip)..<Int(needed)])))
        }

        // Layout.
        let page = 4096
        let headerSize = PatchRegionHeader.size(functionCount: planned.count, pageSize: page)
        let specs = request.image.segments
        var segmentOffsets: [Int] = []
        var total = headerSize
        for s in specs {
            segmentOffsets.append(total)
            total += (max(s.size, 1) + page - 1) / page * page
        }

        var resolveImport: ((String) -> UInt64?)?
        var attemptMaps = maps
        var excluded: [(UInt64, UInt64)] = []
        for _ in 0..<8 {
            guard let base = chooseRegionAddress(maps: attemptMaps, target: target, size: UInt64(total),
                                                 excluded: excluded) else {
                throw error(.noNearSpace,
                            "no free \(total)-byte range within ±2 GiB of \(target.path) [0x\(hex(target.low)), 0x\(hex(target.high)))",
                            hint: "the address space around the target is full")
            }
            let firstSegment = base + UInt64(headerSize)
            let pid = self.pid
            if resolveImport == nil {
                resolveImport = request.makeImportResolver?(pid) ?? { _ in nil }
            }
            let resolver = resolveImport!
            let linked: UserPatchLinkedImage
            do {
                linked = try request.image.linkImage(base: firstSegment, targetBase: target.loadBias &+ target.linkBase,
                                                resolveImport: resolver)
            } catch let e {
                let text = "\(e)"
                if text.lowercased().contains("overflow") {
                    throw error(.noNearSpace, "linking the patch at 0x\(hex(firstSegment)) failed: \(text)")
                }
                throw error(.unpatchableFunction, "linking the patch failed: \(text)")
            }
            guard linked.segments.count == specs.count else {
                throw error(.unpatchableFunction, "the linked image has \(linked.segments.count) segments, its layout \(specs.count)")
            }
            var functions: [PatchRegionHeader.Function] = []
            for p in planned {
                guard let repl = linked.replacements[p.fn.replacement] else {
                    throw error(.unpatchableFunction, "replacement symbol \(p.fn.replacement) for \(p.fn.symbol) is not in the payload")
                }
                guard let detour = X86Detour.jump(at: p.site, to: repl) else {
                    throw error(.noNearSpace, "\(p.fn.symbol): replacement at 0x\(hex(repl)) is out of rel32 reach of 0x\(hex(p.site))")
                }
                functions.append(PatchRegionHeader.Function(entry: p.entry, site: p.site, size: p.fn.size,
                                                            replacement: repl, original: p.original, detour: detour,
                                                            symbol: p.fn.symbol))
            }
            var header = PatchRegionHeader(state: .prepared, uuid: uuid, loadBias: target.loadBias,
                                           regionSize: UInt64(total), headerSize: UInt32(headerSize),
                                           buildID: target.buildID, functions: functions)
            var image = [(offset: Int, bytes: [UInt8], size: Int, prot: RegionProtection)]()
            image.append((0, header.encode(), headerSize, .read))
            for (i, s) in specs.enumerated() {
                image.append((segmentOffsets[i], linked.segments[i], (max(s.size, 1) + page - 1) / page * page, s.protection))
            }

            // Prepare: one thread stopped.
            let prepared: PreparedRegion
            do throws(PrepareFailure) {
                prepared = try prepare(uuid: uuid, base: base, total: total, image: image, orphan: orphan)
            } catch {
                switch error {
                case .addressTaken:
                    excluded.append((base, base + UInt64(total)))
                    guard let fresh = ProcMapping.read(pid: pid) else { throw self.error(.targetExited, "the process exited") }
                    attemptMaps = fresh
                    continue
                case let .engine(e):
                    throw e
                }
            }
            orphan = nil
            hooks.afterPrepare?(pid)

            // Commit with BUSY back-off; the prepared region is unmapped again when the commit gives up
            // (nothing references it), except when the process is gone or the region is INCONSISTENT.
            let ((pause, count), retries) = try retryingBusy({ () throws(CommitFailure) in
                try commitDetours(region: prepared, header: &header)
            }, onGiveUp: { _ in
                cleanupPreparedRegion(prepared)
            }, onFatal: { e in
                if e.code != .targetExited && e.code != .execRace && e.code != .inconsistent { cleanupPreparedRegion(prepared) }
            })
            return UserPatchEngineResult(outcome: .activated, pauseNanoseconds: pause, threads: count,
                                         busyRetries: retries, regionAddress: base,
                                         steppedInstructions: stepOutInstructions)
        }
        throw error(.noNearSpace, "every free range near \(target.path) was taken concurrently (8 attempts)")
    }

    /// Re-commits the detours of an ACTIVE region whose entries were restored to their original bytes by
    /// someone else ("detached"), with the same BUSY back-off as an activation. The region is left as it is
    /// when this fails.
    func reattach(existing: UserPatchRegion, header: PatchRegionHeader) throws(UserPatchError) -> UserPatchEngineResult {
        let mapName = "/proc/\(pid)/map_files/\(hex(existing.address))-\(hex(existing.address + UInt64(header.headerSize)))"
        let file = open(mapName, O_RDWR | O_CLOEXEC)
        if file < 0 {
            throw error(.permission, "cannot open the region header \(mapName): \(Errno.last.description)")
        }
        defer { close(file) }
        let region = PreparedRegion(base: existing.address, size: Int(existing.end - existing.address), file: file)
        var h = header
        let ((pause, count), retries) = try retryingBusy { () throws(CommitFailure) in
            try commitDetours(region: region, header: &h)
        }
        return UserPatchEngineResult(outcome: .activated, pauseNanoseconds: pause, threads: count, busyRetries: retries,
                                     regionAddress: existing.address, steppedInstructions: stepOutInstructions)
    }
}
