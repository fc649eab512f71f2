package archive

// Progress receives the progress of an upload, download or check. Calls
// come from several goroutines; implementations must be safe for that.
type Progress interface {
	// Start announces the work: files and bytes to process.
	Start(op string, files, bytes int64)
	// Add reports finished work.
	Add(files, bytes int64)
	// Done ends the report.
	Done()
}

// NoProgress discards progress.
type NoProgress struct{}

func (NoProgress) Start(string, int64, int64) {}
func (NoProgress) Add(int64, int64)           {}
func (NoProgress) Done()                      {}
