package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/hostile manifests")

const h1 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"

func validManifest() *Manifest {
	m := &Manifest{
		Format: Format, ID: "2026-01-02T03.04.05Z_test", Label: "test",
		CreatedAt:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		AppVersion: "3.5.1", Node: Node{ID: "local"}, Topology: Topology{Nodes: []string{"local"}},
		Entries: []Entry{
			{Path: "a", Type: TypeDir, Mode: 0o755},
			{Path: "a/f", Type: TypeFile, Mode: 0o644, Size: 5, Capture: CaptureLink, BLAKE3: h1, Inode: Inode{1, 10}, LinkGroup: 1},
			{Path: "a/g", Type: TypeFile, Mode: 0o644, Size: 5, Capture: CaptureLink, BLAKE3: h1, Inode: Inode{1, 10}, LinkGroup: 1},
			{Path: "a/link", Type: TypeSymlink, Mode: 0o777, Size: 1, Target: "f"},
			{Path: "b", Type: TypeFile, Mode: 0o600, Size: 0, Capture: CaptureCopy, BLAKE3: h1, Inode: Inode{1, 11}},
		},
	}
	m.Totals = m.ComputeTotals()
	return m
}

// insert adds e at its sorted place.
func insert(m *Manifest, e Entry) {
	i := sort.Search(len(m.Entries), func(i int) bool { return m.Entries[i].Path >= e.Path })
	m.Entries = append(m.Entries[:i], append([]Entry{e}, m.Entries[i:]...)...)
}

// encode seals m without checking it (hostile content on purpose) and
// writes it compact, on one line: the reader must take any layout.
func encode(t *testing.T, m *Manifest) []byte {
	t.Helper()
	if err := m.Seal(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManifest_RoundTrip(t *testing.T) {
	m := validManifest()
	m.Entries = append(m.Entries, Entry{Path: "c\xff\xfe", Type: TypeSymlink, Mode: 0o777, Size: 2, Target: "\xffx"})
	m.Totals = m.ComputeTotals()
	m.Topology.Plan = json.RawMessage(`{"shards": [1, 2],  "x": "y"}`)
	got, err := Decode(encode(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != m.Digest || got.Entries[5].Path != "c\xff\xfe" || got.Entries[5].Target != "\xffx" {
		t.Fatalf("round trip changed the manifest: %+v", got.Entries[5])
	}
	if got.Totals.Bytes != 5 || got.Totals.Files != 3 {
		t.Fatalf("link group must count once: %+v", got.Totals)
	}
}

func TestManifest_NonUTF8NameEncodedAsBase64(t *testing.T) {
	b, err := json.Marshal(Name("\xff"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"base64":"/w=="}` {
		t.Fatalf("got %s", b)
	}
}

// TestCheck_Rejects mutates a valid manifest, re-seals it (so the content
// checks, not the seal, must catch it) and expects a refusal naming the cause.
func TestCheck_Rejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *Manifest)
		want   string
	}{
		{"DotDot", func(m *Manifest) { m.Entries[4].Path = "../b" }, "climbs out"},
		{"DotDotInside", func(m *Manifest) { m.Entries[4].Path = "a/../../b" }, "climbs out"},
		{"Absolute", func(m *Manifest) { m.Entries[4].Path = "/etc/passwd" }, "absolute path"},
		{"Empty", func(m *Manifest) { m.Entries[0].Path = "" }, "empty path"},
		{"Unclean", func(m *Manifest) { m.Entries[4].Path = "a//b" }, "not clean"},
		{"Duplicate", func(m *Manifest) { m.Entries[2].Path = "a/f" }, "duplicate path"},
		{"Unsorted", func(m *Manifest) { m.Entries[0], m.Entries[4] = m.Entries[4], m.Entries[0] }, "not sorted"},
		{"UnderSymlink", func(m *Manifest) {
			insert(m, Entry{Path: "a/link/x", Type: TypeFile, Size: 0, Capture: CaptureLink, BLAKE3: h1})
		}, "is a symlink, not a dir"},
		{"MissingParent", func(m *Manifest) {
			insert(m, Entry{Path: "z/x", Type: TypeFile, Capture: CaptureLink, BLAKE3: h1})
		}, "not in the manifest"},
		{"NegativeSize", func(m *Manifest) { m.Entries[4].Size = -1 }, "negative size"},
		{"BadHash", func(m *Manifest) { m.Entries[4].BLAKE3 = "zz" }, "not 64 hex"},
		{"BadType", func(m *Manifest) { m.Entries[4].Type = "socket" }, "unknown type"},
		{"BadCapture", func(m *Manifest) { m.Entries[4].Capture = "teleport" }, "unknown capture"},
		{"ModeBits", func(m *Manifest) { m.Entries[4].Mode = 0o170000 }, "beyond permissions"},
		{"LinkGroupLies", func(m *Manifest) { m.Entries[2].Size = 6 }, "linkGroup 1 disagrees"},
		{"SymlinkNoTarget", func(m *Manifest) { m.Entries[3].Target = "" }, "without a target"},
		{"TotalsLie", func(m *Manifest) { m.Totals.Bytes = 1 << 40 }, "totals"},
		{"BadID", func(m *Manifest) { m.ID = "../../etc" }, "id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := validManifest()
			tc.mutate(m)
			if tc.name != "TotalsLie" {
				m.Totals = m.ComputeTotals()
			}
			_, err := Decode(encode(t, m))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("want ErrCorrupt, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestDecode_BrokenSeal(t *testing.T) {
	b := encode(t, validManifest())
	s := strings.Replace(string(b), `"appVersion":"3.5.1"`, `"appVersion":"3.9.1"`, 1)
	_, err := Decode([]byte(s))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "broken seal") {
		t.Fatalf("want broken seal, got %v", err)
	}
}

func TestDecode_UnknownFormat(t *testing.T) {
	m := validManifest()
	m.Format = 2
	_, err := Decode(encode(t, m))
	if !errors.Is(err, ErrUnsupportedFormat) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want unsupported format, got %v", err)
	}
	_, err = Decode([]byte(`{"format": 7, "whatever": {"new": "fields"}}`))
	if !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("want unsupported format for a future layout, got %v", err)
	}
}

func TestDecode_InvalidUTF8(t *testing.T) {
	b := encode(t, validManifest())
	s := strings.Replace(string(b), `"path":"b"`, "\"path\":\"b\xff\"", 1)
	if _, err := Decode([]byte(s)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("want UTF-8 refusal, got %v", err)
	}
}

func TestDecode_UnknownFieldAndTrailingData(t *testing.T) {
	b := encode(t, validManifest())
	if _, err := Decode(append(b, []byte(`{}`)...)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing data: got %v", err)
	}
	s := strings.Replace(string(b), `"label":`, `"evil":1,"label":`, 1)
	if _, err := Decode([]byte(s)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown field: got %v", err)
	}
}

func TestRead_TooLarge(t *testing.T) {
	old := MaxSize
	MaxSize = 1024
	defer func() { MaxSize = old }()
	p := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(p, []byte(strings.Repeat(" ", 2048)), 0o644)
	if _, err := Read(p); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("want size refusal, got %v", err)
	}
}

// hostile lists the manifests kept under testdata/hostile, each refused.
var hostile = map[string]func(m *Manifest){
	"traversal.json": func(m *Manifest) { m.Entries[4].Path = "../../etc/cron.d/x" },
	"absolute.json":  func(m *Manifest) { m.Entries[4].Path = "/etc/passwd" },
	"duplicate.json": func(m *Manifest) { m.Entries[2].Path = "a/f" },
	"under-symlink.json": func(m *Manifest) {
		m.Entries = append(m.Entries, Entry{Path: "a/link/x", Type: TypeFile, Capture: CaptureLink, BLAKE3: h1})
	},
	"size-lie.json":       func(m *Manifest) { m.Totals.Bytes = 999 },
	"negative-size.json":  func(m *Manifest) { m.Entries[4].Size = -5 },
	"unknown-format.json": func(m *Manifest) { m.Format = 99 },
	"link-group-lie.json": func(m *Manifest) { m.Entries[2].BLAKE3 = strings.Repeat("0", 64) },
}

func TestHostileManifests(t *testing.T) {
	dir := filepath.Join("..", "testdata", "hostile")
	if *update {
		os.MkdirAll(dir, 0o755)
		for name, mutate := range hostile {
			m := validManifest()
			mutate(m)
			if name != "size-lie.json" {
				m.Totals = m.ComputeTotals()
			}
			os.WriteFile(filepath.Join(dir, name), encode(t, m), 0o644)
		}
		b := encode(t, validManifest())
		os.WriteFile(filepath.Join(dir, "broken-seal.json"), []byte(strings.Replace(string(b), `"size":5`, `"size":6`, 1)), 0o644)
		os.WriteFile(filepath.Join(dir, "invalid-utf8.json"), []byte(strings.Replace(string(b), `"path":"b"`, "\"path\":\"\xc3\x28\"", 1)), 0o644)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) < len(hostile)+2 {
		t.Fatalf("found %d hostile manifests in %s, want %d (run with -update)", len(files), dir, len(hostile)+2)
	}
	for _, f := range files {
		if _, err := Read(f); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: want ErrCorrupt, got %v", f, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the manifest reader: it must never
// panic, and whatever it accepts must re-encode to a manifest it accepts again.
func FuzzDecode(f *testing.F) {
	f.Add(encode(&testing.T{}, validManifest()))
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "hostile", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		// What the hand-written scanner accepts is JSON, and reads as
		// encoding/json reads it.
		var ref Manifest
		if err := json.Unmarshal(data, &ref); err != nil {
			t.Fatalf("accepted a manifest encoding/json refuses: %v", err)
		}
		if len(ref.Entries) != len(m.Entries) || (len(m.Entries) > 0 && !reflect.DeepEqual(ref.Entries, m.Entries)) {
			t.Fatalf("entries differ from encoding/json's:\n%+v\n%+v", m.Entries, ref.Entries)
		}
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		if _, err := Decode(b); err != nil {
			t.Fatalf("accepted manifest re-encodes to a refused one: %v", err)
		}
	})
}

func TestEncode_OneEntryPerLine(t *testing.T) {
	b, err := validManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(validManifest().Entries)+3 {
		t.Fatalf("want header, %d entry lines, closing and digest lines, got %d lines:\n%s", len(validManifest().Entries), len(lines), b)
	}
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
}

func TestManifest_EmptyRoundTrip(t *testing.T) {
	m := validManifest()
	m.Entries = nil
	m.Topology.Nodes = nil
	m.Totals = m.ComputeTotals()
	if _, err := Decode(encode(t, m)); err != nil {
		t.Fatalf("an empty manifest must read back: %v", err)
	}
}

// TestRead_TwoGigabyteLine refuses a real 2 GB single-line file (sparse, so
// the test writes nothing) and a value longer than MaxLine, each after
// reading at most MaxLine of it.
func TestRead_TwoGigabyteLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "manifest.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"format":1,"id":"`)
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err = Read(p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want a refusal, got %v", err)
	}
	old := MaxLine
	MaxLine = 1 << 20
	defer func() { MaxLine = old }()
	long := `{"format":1,"id":"` + strings.Repeat("a", 4<<20) + `"}`
	os.WriteFile(p, []byte(long), 0o644)
	if _, err = Read(p); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("want a length refusal, got %v", err)
	}
}

// TestReader_Streams reads a manifest entry by entry and requires the seal
// to be proven only at the end: a broken seal shows as the last error.
func TestReader_Streams(t *testing.T) {
	b, err := validManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n := countEntries(t, r)
	if n != 5 || r.Header().Digest == "" {
		t.Fatalf("%d entries, digest %q", n, r.Header().Digest)
	}
	bad := bytes.Replace(b, []byte(`"appVersion":"3.5.1"`), []byte(`"appVersion":"3.9.1"`), 1)
	r, err = NewReader(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = r.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "broken seal") {
		t.Fatalf("want the seal refused at the end, got %v", err)
	}
	// Truncated anywhere: refused, never accepted.
	for cut := 1; cut < len(b); cut += 7 {
		if _, err := Decode(b[:cut]); err == nil {
			t.Fatalf("a manifest cut at %d was accepted", cut)
		}
	}
}
