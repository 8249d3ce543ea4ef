package store

// LoadProgress (an alias, so interfaces elsewhere can name the plain func
// type) is told how many reaction rows were read so far and roughly
// how many there are (the backend's estimate, 0 when unknown).
type LoadProgress = func(read, estimate int64)
