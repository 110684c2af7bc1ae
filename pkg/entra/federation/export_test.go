package federation

// CachedAssertions is how many verified assertions v remembers.
func CachedAssertions(v *Verifier) int {
	v.cache.mu.Lock()
	defer v.cache.mu.Unlock()
	return len(v.cache.entries)
}
