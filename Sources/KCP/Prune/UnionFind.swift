/// Disjoint sets over `0..<count` with path halving and union by size.
struct UnionFind {
    private var parent: [Int]
    private var size: [Int]

    init(count: Int) {
        parent = Array(0..<count)
        size = [Int](repeating: 1, count: count)
    }

    mutating func find(_ x: Int) -> Int {
        var x = x
        while parent[x] != x {
            parent[x] = parent[parent[x]]
            x = parent[x]
        }
        return x
    }

    mutating func union(_ a: Int, _ b: Int) {
        var (a, b) = (find(a), find(b))
        if a == b { return }
        if size[a] < size[b] { swap(&a, &b) }
        parent[b] = a
        size[a] += size[b]
    }

    /// Dense labels `0..<k` of the sets, numbered in order of first appearance.
    mutating func labels() -> [Int] {
        var dense = [Int: Int]()
        return (0..<parent.count).map { i in
            let root = find(i)
            if let label = dense[root] { return label }
            dense[root] = dense.count
            return dense.count - 1
        }
    }
}
