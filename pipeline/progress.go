package pipeline

// Progress receives reports from long-running work. Library code never
// prints; the command line implements Progress with progress bars.
// Calls come from one goroutine at a time.
type Progress interface {
	// Start begins a task named what with total units of work
	// (total < 0 when unknown).
	Start(what string, total int)
	// Add reports n more units done.
	Add(n int)
	// Done ends the current task.
	Done()
}

// NoProgress discards every report.
type NoProgress struct{}

func (NoProgress) Start(string, int) {}
func (NoProgress) Add(int)           {}
func (NoProgress) Done()             {}
