package ebpf

// CheckMaglevSize reports whether m can size a Maglev table (a prime in
// range), so that a command line can refuse a bad value before it joins
// a cluster rather than at Open.
func CheckMaglevSize(m int) error { return checkMaglevSize(m) }
