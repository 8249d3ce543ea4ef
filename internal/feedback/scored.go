package feedback

// Scored is an item and its score.
type Scored struct {
	Item  int32
	Score float32
}

// Contribution is one liked item's share of a recommendation's score.
type Contribution struct {
	Item  int32
	Score float32
}
