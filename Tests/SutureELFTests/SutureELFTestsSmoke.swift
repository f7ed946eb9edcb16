import Testing

@Test func SutureELFTestsPackageRootFound() {
    #expect(true == true)
}
