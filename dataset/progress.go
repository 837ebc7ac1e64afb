package dataset

// Phase names the stage of work that progress is reported for.
type Phase int

const (
	PhaseHash     Phase = iota // reading and hashing source files
	PhaseUpload                // sending objects to a remote
	PhaseDownload              // fetching objects from a remote into a cache
	PhaseCheckout              // writing files into a folder
)

func (p Phase) String() string {
	switch p {
	case PhaseHash:
		return "hash"
	case PhaseUpload:
		return "upload"
	case PhaseDownload:
		return "download"
	case PhaseCheckout:
		return "checkout"
	}
	return "unknown"
}

// Progress receives progress reports, for a command line to draw bars.
// Begin announces the totals of a phase, Advance reports work done (files
// completed and bytes processed since the last call; bytes arrive in
// chunks while a large file is read), End closes the phase. Advance is
// called from several goroutines at once; implementations must be safe for
// concurrent use and quick. The library itself prints nothing.
type Progress interface {
	Begin(p Phase, files int, bytes int64)
	Advance(p Phase, files int, bytes int64)
	End(p Phase)
}

type noProgress struct{}

func (noProgress) Begin(Phase, int, int64)   {}
func (noProgress) Advance(Phase, int, int64) {}
func (noProgress) End(Phase)                 {}

func progressOrNop(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}
