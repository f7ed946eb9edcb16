// The payload linker as the engine's image source (`UserPatchImageSource`).

extension PatchImageLinker: UserPatchImageSource {
    /// The non-empty segments in region order: text `r-x`, rodata `r--`, data `rw-` (page-rounded sizes),
    /// matching `PatchImage.segments` of `link(base:targetBase:resolveImport:)`.
    public var segments: [UserPatchSegmentSpec] {
        var specs: [UserPatchSegmentSpec] = []
        if layout.textSize > 0 { specs.append(UserPatchSegmentSpec(size: Int(layout.textSize), protection: .readExecute)) }
        if layout.rodataSize > 0 { specs.append(UserPatchSegmentSpec(size: Int(layout.rodataSize), protection: .read)) }
        if layout.dataSize > 0 { specs.append(UserPatchSegmentSpec(size: Int(layout.dataSize), protection: .readWrite)) }
        return specs
    }

    /// Links at `base` for a target whose link base (lowest `PT_LOAD` vaddr, page-aligned) is mapped at
    /// `targetBase` (= load bias + link base, computed by the engine from the process).
    /// - Throws: `PatchLinkError` (`RELOCATION_OVERFLOW: …` when `base` is out of reach).
    public func linkImage(base: UInt64, targetBase: UInt64, resolveImport: (String) -> UInt64?) throws -> UserPatchLinkedImage {
        let image: PatchImage = try link(base: base, targetBase: targetBase, resolveImport: resolveImport)
        return UserPatchLinkedImage(segments: image.segments.map(\.bytes), replacements: image.functions)
    }
}
