package als

import "context"

// TopNAll returns the top n items for every user (row i of userFactors,
// row-major users×s.Factors), excluding row i of exclude for user i (nil
// excludes nothing). Scores are computed in blocks of users × items so each
// item block is reused from cache across many users.
func TopNAll(ctx context.Context, userFactors []float32, s *ItemSide, n int, exclude *CSR, threads int) ([][]Scored, error) {
	return nil, errTODO
}
