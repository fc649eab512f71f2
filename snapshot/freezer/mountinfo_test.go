package freezer

import "testing"

func TestParseMountInfo(t *testing.T) {
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:9 - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	if m := parseMountInfo([]byte(hybrid)); m.v2 != "/sys/fs/cgroup/unified" || m.v1 != "/sys/fs/cgroup/freezer" {
		t.Fatalf("hybrid: %+v", m)
	}
	unified := `25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
`
	if m := parseMountInfo([]byte(unified)); m.v2 != "/sys/fs/cgroup" || m.v1 != "" {
		t.Fatalf("unified: %+v", m)
	}
	// v1 only, the freezer co-mounted, a mount point with a space.
	legacy := `37 31 0:34 / /cg/free\040zer rw - cgroup cgroup rw,cpu,freezer
38 31 0:35 / /cg/x rw - cgroup cgroup rw,freezerx
`
	if m := parseMountInfo([]byte(legacy)); m.v2 != "" || m.v1 != "/cg/free zer" {
		t.Fatalf("legacy: %+v", m)
	}
	if m := parseMountInfo([]byte("garbage\n\n1 2 3\n")); m.v2 != "" || m.v1 != "" {
		t.Fatalf("garbage: %+v", m)
	}
}
