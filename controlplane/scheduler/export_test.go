package scheduler

// SetBinders changes how many bindings may be in flight at once, for
// the benchmark's comparisons.
func SetBinders(s *Scheduler, n int) { s.binders = n }
