// Command gendata writes the benchmark data sets:
//
//	go run ./scripts/gendata -dir D -total 2GiB [-seed 1]   # mixed: half random, half text-like, files of 4 KiB to 256 MiB
//	go run ./scripts/gendata -dir D -total 2GiB -text       # the same sizes, all text: words of a 5,000-word vocabulary
//	go run ./scripts/gendata -dir D -files 1000000 -dirs 1000 -filesize 1KiB   # many small random files
//	go run ./scripts/gendata -dir D -change 1               # rewrite 1 % of the files (new file + rename)
//
// The mixed set's text is words from a small vocabulary (about 3x
// compressible, like logs); the -text set's vocabulary is 5,000 random
// words, as prose or varied logs are.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var words = strings.Fields(`alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho
sigma tau upsilon phi chi psi omega request response user session id time status error warning info debug ok
GET POST PUT DELETE /api/v1/items /api/v1/users 200 201 404 500 latency_ms bytes host region us-east eu-west`)

func main() {
	dir := flag.String("dir", "", "output directory")
	total := flag.String("total", "2GiB", "total size (KiB, MiB, GiB suffixes)")
	seed := flag.Uint64("seed", 1, "random seed")
	change := flag.Float64("change", 0, "instead of generating: rewrite this percentage of the files in dir")
	text := flag.Bool("text", false, "every file text-like, from a 5,000-word vocabulary")
	files := flag.Int("files", 0, "instead of the mixed set: this many files of -filesize random bytes")
	dirs := flag.Int("dirs", 1000, "with -files: spread over this many dirs")
	fileSize := flag.String("filesize", "1KiB", "with -files: each file's size")
	byDir := flag.Bool("bydir", false, "with -files: make each dir's files one after the other (by default they are made round-robin over the dirs, so a dir's neighbours are -dirs files apart on the disk)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "gendata: -dir is required")
		os.Exit(2)
	}
	r := rand.New(rand.NewPCG(*seed, 42))
	if *change > 0 {
		if *text {
			words = vocabulary(rand.New(rand.NewPCG(*seed, 43)), 5000)
		}
		changeFiles(*dir, *change, r, *text)
		return
	}
	if *files > 0 {
		manyFiles(*dir, *files, *dirs, parseSize(*fileSize), *byDir, r)
		return
	}
	if *text {
		words = vocabulary(r, 5000)
	}
	n := parseSize(*total)
	// Sizes from 4 KiB to 256 MiB, a quarter of the bytes in each band.
	var sizes []int64
	bands := []struct{ min, max int64 }{{4 << 10, 256 << 10}, {256 << 10, 8 << 20}, {8 << 20, 64 << 20}, {64 << 20, 256 << 20}}
	for _, b := range bands {
		var sum int64
		for sum < n/4 {
			s := b.min + r.Int64N(b.max-b.min)
			if sum+s > n/4 {
				s = max(n/4-sum, 4<<10)
			}
			sizes = append(sizes, s)
			sum += s
		}
	}
	for i, s := range sizes {
		sub := filepath.Join(*dir, fmt.Sprintf("d%02d", i%16))
		os.MkdirAll(sub, 0o755)
		name := filepath.Join(sub, fmt.Sprintf("f%05d", i))
		if err := os.WriteFile(name, content(r, s, i%2 == 0 && !*text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gendata:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("gendata: %d files, %d bytes in %s\n", len(sizes), n, *dir)
}

func content(r *rand.Rand, n int64, random bool) []byte {
	b := make([]byte, 0, n)
	if random {
		b = b[:n]
		for i := 0; i+8 <= len(b); i += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
		return b
	}
	for int64(len(b)) < n {
		b = append(b, words[r.IntN(len(words))]...)
		if r.IntN(12) == 0 {
			b = append(b, '\n')
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

func changeFiles(dir string, pct float64, r *rand.Rand, text bool) {
	var files []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && (fi.Name() == ".hotsnap" || fi.Name() == "backups") {
			return filepath.SkipDir
		}
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	k := int(float64(len(files))*pct/100 + 0.5)
	var bytes int64
	for _, i := range r.Perm(len(files))[:k] {
		fi, _ := os.Stat(files[i])
		data := content(r, fi.Size(), i%2 == 0 && !text)
		os.WriteFile(files[i]+".new", data, 0o644)
		os.Rename(files[i]+".new", files[i])
		bytes += fi.Size()
	}
	fmt.Printf("gendata: rewrote %d of %d files (%d bytes)\n", k, len(files), bytes)
}

func parseSize(s string) int64 {
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendata: bad size", s)
		os.Exit(2)
	}
	return int64(v * float64(mult))
}

// vocabulary makes n random lower-case words of 3 to 10 letters.
func vocabulary(r *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 3+r.IntN(8))
		for j := range b {
			b[j] = byte('a' + r.IntN(26))
		}
		out[i] = string(b)
	}
	return out
}

// manyFiles writes n files of size random bytes, file i as d(i % dirs)/f(i):
// the names do not depend on byDir, only the order in which the files are
// made.
func manyFiles(dir string, n, dirs int, size int64, byDir bool, r *rand.Rand) {
	buf := make([]byte, size)
	for d := 0; d < dirs; d++ {
		os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%04d", d)), 0o755)
	}
	per := (n + dirs - 1) / dirs // files in a dir, at most
	steps := n
	if byDir {
		steps = per * dirs
	}
	for k := 0; k < steps; k++ {
		i := k
		if byDir { // dir 0's files first, then dir 1's, ...
			i = (k%per)*dirs + k/per
			if i >= n {
				continue
			}
		}
		for x := range buf {
			buf[x] = byte(r.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("d%04d", i%dirs), fmt.Sprintf("f%07d", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gendata:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("gendata: %d files of %d bytes in %d dirs in %s\n", n, size, dirs, dir)
}
