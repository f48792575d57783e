package proxy

// MaxSuccessors is the successor cache's bound, for tests that fill it.
const MaxSuccessors = maxSuccessors
