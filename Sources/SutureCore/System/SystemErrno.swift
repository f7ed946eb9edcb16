import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The one system-error type: swift-system's `Errno`, with the two spellings Suture prints. Every
/// `errno` Suture reports goes through it (the symbolic name in driver errors, the `strerror(3)` text in
/// sentences), instead of calling `strerror` at each site.
extension Errno {
    /// The calling thread's `errno` right now (read it immediately after the failed call).
    public static var last: Errno { Errno(rawValue: Glibc.errno) }

    /// The symbolic name (`EBUSY`) where known, else `errno N`.
    public var name: String { Errno.names[rawValue] ?? "errno \(rawValue)" }

    /// The `strerror(3)` text with a lower-case first letter, for use inside a sentence
    /// (`permission denied`).
    public var sentence: String {
        let text = description
        guard let first = text.first else { return text }
        return first.lowercased() + text.dropFirst()
    }

    private static let names: [Int32: String] = [
        Glibc.EPERM: "EPERM", Glibc.ENOENT: "ENOENT", Glibc.ESRCH: "ESRCH", Glibc.EINTR: "EINTR", Glibc.EIO: "EIO",
        Glibc.ENOEXEC: "ENOEXEC",
        Glibc.EAGAIN: "EAGAIN", Glibc.ENOMEM: "ENOMEM", Glibc.EACCES: "EACCES", Glibc.EFAULT: "EFAULT",
        Glibc.EBUSY: "EBUSY",
        Glibc.EEXIST: "EEXIST", Glibc.EXDEV: "EXDEV", Glibc.ENODEV: "ENODEV", Glibc.ENOTDIR: "ENOTDIR",
        Glibc.EISDIR: "EISDIR",
        Glibc.EINVAL: "EINVAL", Glibc.EFBIG: "EFBIG", Glibc.ENOSPC: "ENOSPC", Glibc.EROFS: "EROFS",
        Glibc.ENOSYS: "ENOSYS",
        Glibc.ENOKEY: "ENOKEY", Glibc.EKEYREJECTED: "EKEYREJECTED",
    ]
}
