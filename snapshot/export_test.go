package snapshot

import (
	"os"

	"github.com/hotsnap/hotsnap/fsutil"
)

func fsutilSameFS(a, b string) error { return fsutil.SameFilesystem(a, b) }

func readDirNames(d string) ([]string, error) {
	f, err := os.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
