package ebpf

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"slices"
)

// DefaultMaglevSize is the Maglev table size per service port with
// external frontends. Maglev spreads a table's entries over n backends
// within one entry of M/n whatever M is; M sets how few flows move when
// the set changes (the disruption beyond the leaving backend's own share
// shrinks as M/n grows) and what a table costs: 1021 entries of 8 bytes
// are 8 KiB per port (one lb4_maglev value), so 10,000 NodePort ports
// cost 80 MiB of kernel memory, while a few dozen backends per port
// still get M/n ≥ 20. Raise it (4093, 16381) for services with hundreds
// of backends.
const DefaultMaglevSize = 1021

// maglevTable returns the Maglev lookup table (Eisenbud et al., NSDI
// 2016) of size m over backends: entry i is an index into backends. It
// depends only on the backends' addresses and ports, not on their order,
// so every node computes the same table from the same set. m must be a
// prime larger than len(backends); an empty set gives a nil table.
func maglevTable(backends []backend, m int) []int {
	n := len(backends)
	if n == 0 {
		return nil
	}
	// Each backend walks its own permutation of the table, starting at
	// offset with stride skip (coprime with the prime m).
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	for i, b := range backends {
		name := b.String()
		offset[i] = hash64("offset:"+name) % uint64(m)
		skip[i] = hash64("skip:"+name)%uint64(m-1) + 1
	}
	// Take the backends in a fixed order, so the table does not depend
	// on the order they were given in.
	order := sortedOrder(backends)
	table := make([]int, m)
	for i := range table {
		table[i] = -1
	}
	next := make([]uint64, n)
	filled := 0
	for {
		for _, i := range order {
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for table[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			table[c] = i
			next[i]++
			filled++
			if filled == m {
				return table
			}
		}
	}
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func sortedOrder(backends []backend) []int {
	order := make([]int, len(backends))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return backends[a].compare(backends[b]) })
	return order
}

// maxMaglevSize bounds the table size: a table is one hash map value, one
// kernel allocation of 8 bytes per slot (the kernel refuses values near
// 4 MiB, and a large contiguous allocation per update may fail on a
// fragmented node), so 1 MiB at most. 131071 is a prime.
const maxMaglevSize = 1<<17 - 1

// checkMaglevSize validates a configured table size.
func checkMaglevSize(m int) error {
	if m < 7 || m > maxMaglevSize || !big.NewInt(int64(m)).ProbablyPrime(20) {
		return fmt.Errorf("datapath/ebpf: maglev size %d: want a prime in 7..%d", m, maxMaglevSize)
	}
	return nil
}
