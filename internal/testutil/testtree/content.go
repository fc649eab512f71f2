package testtree

import (
	"bytes"
	"math/rand/v2"
)

// ProseText is n bytes of text as prose or varied logs are: random words
// from a vocabulary of 5,000, space- and newline-separated; the same for
// the same seed.
func ProseText(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := make([][]byte, 5000)
	for i := range words {
		w := make([]byte, 3+r.IntN(8))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		words[i] = w
	}
	var b bytes.Buffer
	for b.Len() < n {
		b.Write(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// RandomFill fills b with pseudo-random bytes, the same for the same seed.
func RandomFill(b []byte, seed uint64) {
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
}
