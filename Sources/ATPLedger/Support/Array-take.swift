extension Array {
    /// Moves the array out, leaving an empty one: the taken array is then uniquely referenced, so
    /// appending to it and putting it back reuses its storage without a copy.
    @inline(__always) mutating func take() -> [Element] {
        let taken = self
        self = []
        return taken
    }
}
