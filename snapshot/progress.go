package snapshot

// Progress receives the progress of long work (create's hashing,
// restore's re-hash): Start with the totals, Add as files are done, Done
// once. archive.Progress has the same methods, so the CLI's bar and JSON
// progress serve both; it must be safe for concurrent Add.
type Progress interface {
	Start(op string, files, bytes int64)
	Add(files, bytes int64)
	Done()
}

type noProgress struct{}

func (noProgress) Start(string, int64, int64) {}
func (noProgress) Add(int64, int64)           {}
func (noProgress) Done()                      {}

func progressOr(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}
