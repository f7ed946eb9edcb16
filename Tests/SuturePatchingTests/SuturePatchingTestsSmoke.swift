import Testing

@Test func SuturePatchingTestsPackageRootFound() {
    #expect(true == true)
}
