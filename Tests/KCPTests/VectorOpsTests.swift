import Testing
@testable import KCP

// The strided convs' window fill: a padded row split into its even and
// odd columns, against the definition, for rows shorter than one load,
// cropped (negative padding), and of every length around the loads' ends;
// the float after the row is NaN, so a read past it shows in the result.

@Suite("Vector ops")
struct VectorOpsTests {
    @Test("a padded row split into even and odd columns, reading nothing past the row")
    func splitColumns() {
        for width in 1...41 {
            for left in -3...7 {
                for count in 1...26 {
                    let row = (0..<width).map { Float($0 + 1) } + [Float.nan]
                    var (even, odd) = ([Float](repeating: -1, count: count), [Float](repeating: -1, count: count))
                    row.withUnsafeBufferPointer { row in
                        splitPaddedColumns(row.baseAddress!, width: width, left: left, even: &even, odd: &odd, count: count)
                    }
                    let padded = { (j: Int) -> Float in (0..<width).contains(j - left) ? row[j - left] : 0 }
                    #expect(even == (0..<count).map { padded(2 * $0) }, "width \(width), left \(left), count \(count)")
                    #expect(odd == (0..<count).map { padded(2 * $0 + 1) }, "width \(width), left \(left), count \(count)")
                }
            }
        }
    }
}
