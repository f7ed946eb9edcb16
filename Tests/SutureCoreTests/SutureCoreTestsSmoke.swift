import Testing

@Test func SutureCoreTestsPackageRootFound() {
    #expect(true == true)
}
