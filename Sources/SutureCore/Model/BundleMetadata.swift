/// The metadata of a patch bundle: the model of `patch.yaml` (schema: `schema/bundle.schema.json`).
///
/// A bundle is a directory holding `patch.yaml`, one payload file per entity, and the source `.patch`
/// files. Its identity (`BundleDigest`) is the sha256 over its canonical contents; that is what a manifest
/// pins. Field names in YAML are the snake_case forms given in `CodingKeys`.
public struct BundleMetadata: Codable, Sendable, Hashable {
    /// Format version of `patch.yaml`; this code reads version 1.
    public var formatVersion: Int
    /// Patch name, e.g. `CVE-2024-0001` (SysCare: patch name).
    public var name: String
    /// Patch version, a string (`"1"`).
    public var version: String
    /// Patch release, a string (`"1"`).
    public var release: String
    /// RFC 4122 UUID, lower case; names the store directory and the user-space marker mapping.
    public var uuid: String
    /// `user` or `kernel`.
    public var kind: PatchKind
    /// Free text.
    public var description: String
    /// What the patch applies to.
    public var target: BundleTarget
    /// One per patched ELF file (user) or per livepatch module (kernel).
    public var entities: [BundleEntity]
    /// The source `.patch` files the payloads were built from.
    public var patches: [BundleSourcePatch]

    /// Memberwise initializer.
    public init(formatVersion: Int = 1, name: String, version: String, release: String, uuid: String,
                kind: PatchKind, description: String, target: BundleTarget, entities: [BundleEntity],
                patches: [BundleSourcePatch]) {
        self.formatVersion = formatVersion
        self.name = name
        self.version = version
        self.release = release
        self.uuid = uuid
        self.kind = kind
        self.description = description
        self.target = target
        self.entities = entities
        self.patches = patches
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, version, release, uuid, kind, description, target,
             entities, patches
    }

    /// SysCare-style full name: `TARGET/NAME` where TARGET is `package-version` (or the kernel release).
    public var qualifiedName: String { "\(target.displayName)/\(name)" }
}

/// The package (or kernel) a bundle targets.
public struct BundleTarget: Codable, Sendable, Hashable {
    /// Package name (`libssl3`, `kernel`, or a free name for unpackaged software).
    public var package: String
    /// Package version string exactly as the package manager prints it (`3.0.15-1~deb12u1`);
    /// for kernel patches the kernel release (`6.1.0-57-amd64`).
    public var version: String
    /// Architecture (`x86_64`).
    public var arch: String

    /// Memberwise initializer.
    public init(package: String, version: String, arch: String) {
        self.package = package
        self.version = version
        self.arch = arch
    }

    /// `package-version`.
    public var displayName: String { "\(package)-\(version)" }
}

/// One patched object inside a bundle.
public struct BundleEntity: Codable, Sendable, Hashable {
    /// User: absolute path of the target ELF file (`/usr/sbin/demo`). Kernel: `vmlinux` or the target
    /// module name.
    public var targetPath: String
    /// GNU build-id of the target (lower-case hex, `NT_GNU_BUILD_ID`), or empty when unknown (kernel
    /// module targets patched when loaded).
    public var targetBuildID: String
    /// Payload file name, relative to the bundle directory. User: a relocatable x86-64 ELF object
    /// (`ET_REL`). Kernel: the livepatch `.ko`.
    public var payload: String
    /// sha256 of the payload file, lower-case hex.
    public var payloadSHA256: String
    /// Kernel only: the livepatch module name (the `/sys/kernel/livepatch/<name>` directory).
    public var moduleName: String?
    /// Kernel only: whether the module sets `.replace = true` (atomic replace / cumulative).
    public var replace: Bool?
    /// User only: the replaced functions (filled by `suture bundle create`; see the ptrace-engine issue).
    public var functions: [FunctionPatch]?
    /// User only: symbols the payload imports from other shared objects, resolved at run time.
    public var imports: [String]?
    /// User only: symbols of the target itself (static functions, globals) that the payload references,
    /// pre-resolved by `suture bundle create` to offsets from the target's link base.
    public var targetSymbols: [TargetSymbol]?
    /// User only: the target's link base (lowest `PT_LOAD` `p_vaddr`, page-aligned: 0 for PIE and shared
    /// objects, 0x400000 for a typical `-no-pie` executable), recorded so that run-time address =
    /// load bias + link base + offset can be computed from a load bias alone.
    public var targetLinkBase: UInt64?

    /// Memberwise initializer.
    public init(targetPath: String, targetBuildID: String, payload: String, payloadSHA256: String,
                moduleName: String? = nil, replace: Bool? = nil, functions: [FunctionPatch]? = nil,
                imports: [String]? = nil, targetSymbols: [TargetSymbol]? = nil, targetLinkBase: UInt64? = nil) {
        self.targetPath = targetPath
        self.targetBuildID = targetBuildID
        self.payload = payload
        self.payloadSHA256 = payloadSHA256
        self.moduleName = moduleName
        self.replace = replace
        self.functions = functions
        self.imports = imports
        self.targetSymbols = targetSymbols
        self.targetLinkBase = targetLinkBase
    }

    enum CodingKeys: String, CodingKey {
        case targetPath = "target_path", targetBuildID = "target_build_id", payload,
             payloadSHA256 = "payload_sha256", moduleName = "module_name", replace, functions, imports,
             targetSymbols = "target_symbols", targetLinkBase = "target_link_base"
    }
}

/// One replaced function of a user patch.
public struct FunctionPatch: Codable, Sendable, Hashable {
    /// The target's symbol (`parse_request`).
    public var symbol: String
    /// Offset of the function's entry from the target's link base (the lowest `PT_LOAD` `p_vaddr`).
    public var offset: UInt64
    /// Size of the target function in bytes (`st_size`).
    public var size: UInt64
    /// The first bytes (up to 16) expected at the entry, lower-case hex.
    public var expectedBytes: String
    /// The symbol in the payload object that replaces it.
    public var replacement: String

    /// Memberwise initializer.
    public init(symbol: String, offset: UInt64, size: UInt64, expectedBytes: String, replacement: String) {
        self.symbol = symbol
        self.offset = offset
        self.size = size
        self.expectedBytes = expectedBytes
        self.replacement = replacement
    }

    enum CodingKeys: String, CodingKey {
        case symbol, offset, size, expectedBytes = "expected_bytes", replacement
    }
}

/// A symbol of the target ELF referenced by a user payload, resolved when the bundle was made.
public struct TargetSymbol: Codable, Sendable, Hashable {
    /// The symbol name as the payload references it (`request_count`).
    public var symbol: String
    /// Offset of the symbol from the target's link base (the lowest `PT_LOAD` `p_vaddr`); its run-time
    /// address is the run-time link base plus this offset.
    public var offset: UInt64

    /// Memberwise initializer.
    public init(symbol: String, offset: UInt64) {
        self.symbol = symbol
        self.offset = offset
    }
}

/// A source `.patch` file shipped in the bundle.
public struct BundleSourcePatch: Codable, Sendable, Hashable {
    /// File name relative to the bundle directory.
    public var file: String
    /// sha256 of the file, lower-case hex.
    public var sha256: String

    /// Memberwise initializer.
    public init(file: String, sha256: String) {
        self.file = file
        self.sha256 = sha256
    }
}

/// A bundle read from disk and verified: its metadata, its directory, and its digest.
public struct ResolvedBundle: Codable, Sendable, Hashable {
    /// The metadata (`patch.yaml`).
    public var metadata: BundleMetadata
    /// Absolute path of the bundle directory.
    public var path: String
    /// The bundle's identity: sha256 over its canonical contents, lower-case hex
    /// (see `BundleDigest` for the exact definition).
    public var digest: String

    /// Memberwise initializer.
    public init(metadata: BundleMetadata, path: String, digest: String) {
        self.metadata = metadata
        self.path = path
        self.digest = digest
    }
}
