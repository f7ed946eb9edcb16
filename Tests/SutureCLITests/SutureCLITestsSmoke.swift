import Testing

@Test func SutureCLITestsPackageRootFound() {
    #expect(true == true)
}
