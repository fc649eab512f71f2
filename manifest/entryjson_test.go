package manifest

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomEntry draws entries across what the encoder distinguishes: plain
// and escaped names, non-UTF-8 names, HTML characters, zero and extreme
// numbers, omitted and present optional fields.
func randomEntry(r *rand.Rand) Entry {
	names := []string{"a", "db/000001.sst", "with space ü.txt", "quote\"back\\slash", "tab\tnew\nline",
		"<html>&amp;", "\x00nul", "\xff\xfe not utf-8", "line\u2028sep", "€uro", "emoji 😀", ""}
	pick := func() string { return names[r.IntN(len(names))] }
	nums := []uint64{0, 1, 9, 10, 255, 1<<32 - 1, 1<<63 - 1, 1<<64 - 1}
	num := func() uint64 { return nums[r.IntN(len(nums))] }
	e := Entry{Path: Name(pick()), Type: []string{TypeFile, TypeDir, TypeSymlink, "x<y"}[r.IntN(4)],
		Mode: uint32(num()), UID: uint32(num()), GID: uint32(num()),
		MtimeNs: int64(num()) * []int64{1, -1}[r.IntN(2)], Size: int64(num() >> 1),
		Inode: Inode{num(), num()}}
	if r.IntN(2) == 0 {
		e.LinkGroup = int(num()>>1) * []int{1, -1}[r.IntN(2)]
	}
	if r.IntN(2) == 0 {
		e.Capture = []string{CaptureLink, CaptureCopy, CaptureReflink}[r.IntN(3)]
	}
	if r.IntN(2) == 0 {
		e.BLAKE3 = h1
	}
	if r.IntN(2) == 0 {
		e.Target = Name(pick())
	}
	return e
}

// TestEntryJSON_MatchesEncodingJSON: the hand-written encoder writes what
// json.Marshal writes (the seal depends on it), and the decoder reads back
// what json.Unmarshal reads, from the canonical form and from others.
func TestEntryJSON_MatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		e := randomEntry(r)
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEntry(nil, &e)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("entry %d: appendEntry\n got  %s (%v)\n want %s", i, got, err, want)
		}
		var back, ref Entry
		if err := decodeEntry(got, &back); err != nil {
			t.Fatalf("decode %s: %v", got, err)
		}
		json.Unmarshal(want, &ref)
		if !reflect.DeepEqual(back, ref) {
			t.Fatalf("decode %s:\n got  %+v\n want %+v", got, back, ref)
		}
		// Indented, the same entry reads the same through the slow path.
		var ind bytes.Buffer
		json.Indent(&ind, want, "", "  ")
		var back2 Entry
		if err := decodeEntry(ind.Bytes(), &back2); err != nil || !reflect.DeepEqual(back2, ref) {
			t.Fatalf("decode indented %s: %+v %v", ind.Bytes(), back2, err)
		}
	}
}

// TestEntryJSON_Refuses: what encoding/json refuses (unknown fields, a
// wrong type, an overflow) is refused by decodeEntry too; the canonical
// parser never accepts it on its own.
func TestEntryJSON_Refuses(t *testing.T) {
	for _, b := range []string{
		`{"path":"a","type":"file","mode":420,"uid":0,"gid":0,"mtimeNs":1,"size":1,"inode":{"dev":1,"ino":2},"extra":1}`,
		`{"path":"a","type":"file","mode":4294967296,"uid":0,"gid":0,"mtimeNs":1,"size":1,"inode":{"dev":1,"ino":2}}`,
		`{"path":"a","type":"file","mode":-1,"uid":0,"gid":0,"mtimeNs":1,"size":1,"inode":{"dev":1,"ino":2}}`,
		`{"path":"a","type":"file","mode":1.5,"uid":0,"gid":0,"mtimeNs":1,"size":1,"inode":{"dev":1,"ino":2}}`,
		`{"path":"a","type":"file","mode":0,"uid":0,"gid":0,"mtimeNs":1,"size":9223372036854775808,"inode":{"dev":1,"ino":2}}`,
		`{"path":5,"type":"file","mode":0,"uid":0,"gid":0,"mtimeNs":1,"size":1,"inode":{"dev":1,"ino":2}}`,
		`{"path":"a","type":"file","mode":0,"uid":0,"gid":0,"mtimeNs":1,"size":1,"inode":{"dev":1,"ino":2,"x":3}}`,
	} {
		var e Entry
		if err := decodeEntry([]byte(b), &e); err == nil {
			t.Errorf("accepted %s", b)
		}
		if (&entryParser{b: []byte(b)}).entry(&e) {
			t.Errorf("the canonical parser accepted %s", b)
		}
	}
}
