package freezer

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileID is a file by device and inode.
type FileID struct{ Dev, Ino uint64 }

// Pids lists the processes of the cgroup and of its descendant cgroups
// (a frozen cgroup freezes its whole subtree).
func (c Cgroup) Pids() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(c.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // a child cgroup removed meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// WritableFiles returns the regular files that the processes (stopped)
// can write to now: those they hold open for writing, and those they
// have mapped shared and writable. A snapshot must copy these rather than
// hard-link them: the processes will go on writing to them in place.
// Processes that exit meanwhile are skipped.
func WritableFiles(pids []int) (map[FileID]bool, error) {
	files := make(map[FileID]bool)
	for _, pid := range pids {
		base := "/proc/" + strconv.Itoa(pid)
		ents, err := os.ReadDir(base + "/fd")
		if err != nil {
			continue // gone, or a kernel thread
		}
		for _, e := range ents {
			flags, ok := fdFlags(base + "/fdinfo/" + e.Name())
			if !ok || flags&unix.O_ACCMODE == unix.O_RDONLY {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(base+"/fd/"+e.Name(), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			files[FileID{uint64(st.Dev), st.Ino}] = true
		}
		sharedWritableMaps(base+"/maps", files)
	}
	return files, nil
}

// fdFlags reads the flags line of /proc/PID/fdinfo/FD (octal).
func fdFlags(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			f, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			return int(f), err == nil
		}
	}
	return 0, false
}

// sharedWritableMaps adds the files of a process's shared writable
// mappings ("rw-s" in /proc/PID/maps: SQLite's -shm, LMDB's data file).
func sharedWritableMaps(path string, files map[FileID]bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// addr perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || len(fs[1]) < 4 || fs[1][1] != 'w' || fs[1][3] != 's' {
			continue
		}
		maj, min, ok := strings.Cut(fs[3], ":")
		ino, err := strconv.ParseUint(fs[4], 10, 64)
		if !ok || err != nil || ino == 0 {
			continue
		}
		ma, err1 := strconv.ParseUint(maj, 16, 32)
		mi, err2 := strconv.ParseUint(min, 16, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		files[FileID{unix.Mkdev(uint32(ma), uint32(mi)), ino}] = true
	}
}
