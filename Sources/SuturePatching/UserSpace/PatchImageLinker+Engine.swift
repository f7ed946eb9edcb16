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

    /// Links at `base` for a target whose load bias (mapped address − link-time address) is `loadBias`:
    /// the target's link base is at `loadBias + targetLinkBase` (from the bundle entity).
    /// - Throws: `PatchLinkError` (`RELOCATION_OVERFLOW: …` when `base` is out of reach).
    public func link(base: UInt64, loadBias: UInt64, resolveImport: (String) -> UInt64?) throws -> UserPatchLinkedImage {
        let image = try link(base: base, targetBase: loadBias &+ targetLinkBase, resolveImport: resolveImport)
        return UserPatchLinkedImage(segments: image.segments.map(\.bytes), replacements: image.functions)
    }
}
