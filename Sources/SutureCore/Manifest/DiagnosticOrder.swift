extension Diagnostic {
    /// Source order for printing a run's diagnostics: diagnostics without a location first (by message),
    /// then by file, line and column; at one position errors come before warnings.
    public static func sourceOrder(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        switch (a.location, b.location) {
        case (nil, nil): return a.message < b.message
        case (nil, _): return true
        case (_, nil): return false
        case let (x?, y?):
            if x != y { return x < y }
            return (a.severity == .error ? 0 : 1, a.message) < (b.severity == .error ? 0 : 1, b.message)
        }
    }
}
