package artifact

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/memlimit"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/npz"
	"github.com/setlist/setlist/internal/store"
)

// implicit's format: Model.save writes the factors and every constructor
// parameter as 0-d arrays; AlternatingLeastSquares.load sets each array
// back as an attribute, so extra arrays are harmless there. setlist adds
// what implicit has no name for under a "setlist_" prefix, so an export
// imported again gives back the same item side (weighting, bm25 idf).
const extraPrefix = "setlist_"

// ExportNPZ writes a in implicit's save format: user_factors and
// item_factors (float32, row i of each is row i of users.csv / items.csv)
// and the parameters as 0-d arrays. Only the ALS family has this format.
func (a *Artifact) ExportNPZ(w io.Writer) error {
	if a.Family == FamilyEASE {
		return a.exportEASE(w)
	}
	if a.Family != FamilyALS {
		return fmt.Errorf("export: implicit's format holds ALS models only, version %d is %s", a.Meta.Version, a.Family)
	}
	p, k := a.Side.Params, a.Side.Factors
	// The item side's parameters are the last fit's: a trained version's
	// is the warm start on all data (3 iterations). The file records the
	// training parameters, as the registry does, so an import of it (and
	// the runs that start from the import) train as the version was
	// trained (issue 26 item 7).
	if m := a.Meta.Params; m.Factors == k && m.Iterations > 0 {
		p.Iterations, p.Seed, p.CGSteps = m.Iterations, m.Seed, m.CGSteps
	}
	entries := []npz.Entry{
		{Name: "user_factors", Array: npz.Float32s(a.UserFactors, len(a.Users), k)},
		{Name: "item_factors", Array: npz.Float32s(a.Side.ItemFactors, a.Side.Items, k)},
		{Name: "factors", Array: npz.Int64(int64(k))},
		{Name: "regularization", Array: npz.Float64(p.Regularization)},
		{Name: "alpha", Array: npz.Float64(p.Alpha)},
		{Name: "dtype", Array: npz.String("float32")},
		{Name: "iterations", Array: npz.Int64(int64(p.Iterations))},
		{Name: "use_native", Array: npz.Bool(true)},
		{Name: "use_cg", Array: npz.Bool(true)},
		{Name: "cg_steps", Array: npz.Int64(int64(max(p.CGSteps, 3)))},
		{Name: "calculate_training_loss", Array: npz.Bool(false)},
		{Name: "num_threads", Array: npz.Int64(0)},
		{Name: "random_state", Array: npz.Int64(p.Seed)},
		{Name: extraPrefix + "weighting", Array: npz.String(string(p.Weighting))},
		{Name: extraPrefix + "bm25_k1", Array: npz.Float64(p.BM25K1)},
		{Name: extraPrefix + "bm25_b", Array: npz.Float64(p.BM25B)},
		{Name: extraPrefix + "log_epsilon", Array: npz.Float64(p.LogEpsilon)},
		{Name: extraPrefix + "like_weight", Array: npz.Float64(float64(a.Meta.Scheme.LikeWeight))},
		{Name: extraPrefix + "dislike_weight", Array: npz.Float64(float64(a.Meta.Scheme.DislikeWeight))},
		{Name: extraPrefix + "k", Array: npz.Int64(int64(a.Meta.K))},
	}
	if len(a.Side.ItemWeights) > 0 {
		entries = append(entries, npz.Entry{Name: extraPrefix + "item_weights", Array: npz.Float32s(a.Side.ItemWeights, len(a.Side.ItemWeights))})
	}
	if err := npz.Write(w, entries); err != nil {
		return fmt.Errorf("export version %d: %w", a.Meta.Version, err)
	}
	return nil
}

// WriteUsersCSV writes the user id map: row,user_id.
func (a *Artifact) WriteUsersCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"row", "user_id"})
	for i, u := range a.Users {
		_ = cw.Write([]string{strconv.Itoa(i), string(u)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteItemsCSV writes the song id map: row,artist,track (songs names the
// catalog's songs; a song missing from it is an error).
func (a *Artifact) WriteItemsCSV(w io.Writer, songs map[setlist.SongID]setlist.Song) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"row", "artist", "track"})
	for i, id := range a.Catalog.Songs() {
		s, ok := songs[id]
		if !ok {
			return fmt.Errorf("song %d of the model is not in the database", id)
		}
		_ = cw.Write([]string{strconv.Itoa(i), s.Artist, s.Track})
	}
	cw.Flush()
	return cw.Error()
}

// Foreign is a model trained elsewhere, read from implicit's format: the
// factors, the parameters found in the file and the id maps.
type Foreign struct {
	Users       []setlist.UserID
	Items       []store.SongKey
	UserFactors []float32 // len(Users) × Params.Factors
	ItemFactors []float32 // len(Items) × Params.Factors
	ItemWeights []float32 // bm25 idf + mean row length, when the file has them
	Params      als.Params
	Scheme      model.Scheme // the file's, or model.DefaultScheme
	K           int          // the file's list length, 0 when it has none
}

// ReadImplicit reads implicit's .npz with its users.csv (row,user_id) and
// items.csv (row,artist,track). Errors name the file and the row or array.
//
// The id maps are read first: the factor matrices must have exactly their
// rows (and at most MaxFactors columns), checked against each array's
// declared shape before it is inflated, and the archive may hold no more
// than those matrices need (within memlimit.Process()/2 when a limit is
// set), so a compressed bomb is refused after its headers.
func ReadImplicit(npzData []byte, users, items io.Reader) (*Foreign, error) {
	ub, err := io.ReadAll(users)
	if err != nil {
		return nil, fmt.Errorf("users.csv: %w", err)
	}
	ib, err := io.ReadAll(items)
	if err != nil {
		return nil, fmt.Errorf("items.csv: %w", err)
	}
	nu, err := countRecords(ub, "users.csv")
	if err != nil {
		return nil, err
	}
	ni, err := countRecords(ib, "items.csv")
	if err != nil {
		return nil, err
	}
	users, items = bytes.NewReader(ub), bytes.NewReader(ib)
	limit := int64(npz.MaxBytes)
	if m := memlimit.Process(); m > 0 {
		limit = min(limit, m/2)
	}
	// float64 factors are the largest a file may hold: two matrices at
	// 8 bytes, the bm25 weights, and 1 MiB for the scalar parameters.
	limit = min(limit, 8*MaxFactors*int64(nu+ni)+8*int64(ni+1)+1<<20)
	f, err := npz.ReadChecked(bytes.NewReader(npzData), int64(len(npzData)), limit, func(name string, a *npz.Array) error {
		return checkShape(name, a, nu, ni)
	})
	if err != nil {
		return nil, err
	}
	fm := &Foreign{Scheme: model.DefaultScheme()}
	uf, err := matrix(f, "user_factors")
	if err != nil {
		return nil, err
	}
	itf, err := matrix(f, "item_factors")
	if err != nil {
		return nil, err
	}
	if uf.Shape[1] != itf.Shape[1] {
		return nil, fmt.Errorf("npz: user_factors have %d columns, item_factors %d", uf.Shape[1], itf.Shape[1])
	}
	k := uf.Shape[1]
	fm.UserFactors, _ = uf.Float32s()
	fm.ItemFactors, _ = itf.Float32s()
	// A float64 1e300 becomes +Inf in float32: checked after the conversion.
	if err := feedback.CheckRows("npz: user_factors", fm.UserFactors, uf.Shape[0], k); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFinite, err)
	}
	if err := feedback.CheckRows("npz: item_factors", fm.ItemFactors, itf.Shape[0], k); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFinite, err)
	}
	p := als.Params{Factors: k, Weighting: feedback.WeightRaw, Iterations: 15, Alpha: 1, Regularization: 0.01}
	num := func(name string, dst *float64) error {
		if !f.Has(name) {
			return nil
		}
		a, _ := f.Array(name)
		v, err := a.Float()
		if err != nil {
			return fmt.Errorf("npz: %s: %w", name, err)
		}
		*dst = v
		return nil
	}
	var factors, iterations, cgSteps, seed, like, dislike, listK float64
	like, dislike = float64(fm.Scheme.LikeWeight), float64(fm.Scheme.DislikeWeight)
	iterations, factors = float64(p.Iterations), float64(k)
	for name, dst := range map[string]*float64{
		"factors": &factors, "regularization": &p.Regularization, "alpha": &p.Alpha, "iterations": &iterations,
		"cg_steps": &cgSteps, "random_state": &seed,
		extraPrefix + "bm25_k1": &p.BM25K1, extraPrefix + "bm25_b": &p.BM25B, extraPrefix + "log_epsilon": &p.LogEpsilon,
		extraPrefix + "like_weight": &like, extraPrefix + "dislike_weight": &dislike, extraPrefix + "k": &listK,
	} {
		if err := num(name, dst); err != nil {
			return nil, err
		}
	}
	// implicit's GPU models pad factors; the CPU ones (the format read
	// here) store exactly "factors" columns.
	if int(factors) != k {
		return nil, fmt.Errorf("npz: factors = %v but the factor matrices have %d columns", factors, k)
	}
	p.Iterations, p.CGSteps, p.Seed = int(iterations), int(cgSteps), int64(seed)
	fm.Scheme = model.Scheme{LikeWeight: float32(like), DislikeWeight: float32(dislike)}
	fm.K = int(listK)
	if f.Has(extraPrefix + "weighting") {
		a, _ := f.Array(extraPrefix + "weighting")
		s, err := a.Str()
		if err != nil {
			return nil, fmt.Errorf("npz: %sweighting: %w", extraPrefix, err)
		}
		p.Weighting = feedback.Weighting(s)
	}
	if f.Has(extraPrefix + "item_weights") {
		a, _ := f.Array(extraPrefix + "item_weights")
		if fm.ItemWeights, err = a.Float32s(); err != nil {
			return nil, fmt.Errorf("npz: %sitem_weights: %w", extraPrefix, err)
		}
		if err := feedback.CheckFinite("npz: "+extraPrefix+"item_weights", fm.ItemWeights); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotFinite, err)
		}
	}
	if p.Weighting == feedback.WeightBM25 && len(fm.ItemWeights) != itf.Shape[0]+1 {
		return nil, fmt.Errorf("npz: bm25 weighting needs %d item weights, the file has %d", itf.Shape[0]+1, len(fm.ItemWeights))
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("npz: parameters: %w: %w", setlist.ErrInvalid, err)
	}
	if err := fm.Scheme.Validate(); err != nil {
		return nil, fmt.Errorf("npz: %w", err)
	}
	fm.Params = p
	if fm.Users, err = readUsers(users, uf.Shape[0]); err != nil {
		return nil, err
	}
	if fm.Items, err = readItems(items, itf.Shape[0]); err != nil {
		return nil, err
	}
	return fm, nil
}

// MaxFactors bounds the columns of an imported factor matrix (als.Params'
// limit).
const MaxFactors = 1024

// checkShape judges a member's declared shape before it is inflated: the
// factor matrices must have the id maps' rows, the item weights at most
// items+1 values, anything else (the parameters) a handful of values.
func checkShape(name string, a *npz.Array, users, items int) error {
	rows, idMap := -1, ""
	switch name {
	case "user_factors":
		rows, idMap = users, "users.csv"
	case "item_factors":
		rows, idMap = items, "items.csv"
	}
	if rows >= 0 {
		if len(a.Shape) != 2 || a.Shape[0] != rows || a.Shape[1] < 1 || a.Shape[1] > MaxFactors {
			return fmt.Errorf("npz: %s declares shape %v, but %s names %d rows (and factors are 1 to %d): %w",
				name, a.Shape, idMap, rows, MaxFactors, setlist.ErrInvalid)
		}
		return nil
	}
	limit := 1 << 10
	if name == extraPrefix+"item_weights" {
		limit = items + 1
	}
	if a.Len() > limit {
		return fmt.Errorf("npz: %s declares shape %v, more than the %d values it may hold: %w", name, a.Shape, limit, setlist.ErrInvalid)
	}
	return nil
}

// countRecords counts the data records (after the header) of a CSV id map.
func countRecords(b []byte, name string) (int, error) {
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	n := -1
	for {
		_, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w: %w", name, setlist.ErrInvalid, err)
		}
		n++
	}
	return max(n, 0), nil
}

func matrix(f *npz.File, name string) (*npz.Array, error) {
	a, err := f.Array(name)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 2 || a.Shape[1] < 1 {
		return nil, fmt.Errorf("npz: %s has shape %v, want (rows, factors)", name, a.Shape)
	}
	if a.Descr != "<f4" && a.Descr != "<f8" {
		return nil, fmt.Errorf("npz: %s has dtype %s, want float32 (or float64)", name, a.Descr)
	}
	return a, nil
}

// readIDMap reads a CSV whose first column is the factor row (each of
// 0..rows-1 exactly once) and calls set(row, other fields).
func readIDMap(r io.Reader, name string, header []string, rows int, set func(row int, line int, fields []string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	h, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: header: %w", name, err)
	}
	for i := range h {
		h[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h[i], "\ufeff")))
	}
	if strings.Join(h, ",") != strings.Join(header, ",") {
		return fmt.Errorf("%s:1: header is %q, want %s: %w", name, strings.Join(h, ","), strings.Join(header, ","), setlist.ErrInvalid)
	}
	seen := make([]bool, rows)
	n := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %w", name, setlist.ErrInvalid, err)
		}
		line, _ := cr.FieldPos(0)
		row, err := strconv.Atoi(strings.TrimSpace(rec[0]))
		if err != nil || row < 0 || row >= rows {
			return fmt.Errorf("%s:%d: row %q is not a factor row in [0, %d) (field row): %w", name, line, rec[0], rows, setlist.ErrInvalid)
		}
		if seen[row] {
			return fmt.Errorf("%s:%d: row %d appears twice (field row): %w", name, line, row, setlist.ErrInvalid)
		}
		seen[row] = true
		n++
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if err := set(row, line, rec[1:]); err != nil {
			return err
		}
	}
	if n != rows {
		return fmt.Errorf("%s names %d rows, the factors have %d: %w", name, n, rows, setlist.ErrInvalid)
	}
	return nil
}

func readUsers(r io.Reader, rows int) ([]setlist.UserID, error) {
	out := make([]setlist.UserID, rows)
	seen := map[setlist.UserID]int{}
	err := readIDMap(r, "users.csv", []string{"row", "user_id"}, rows, func(row, line int, f []string) error {
		id := setlist.UserID(f[0])
		if err := id.Validate(); err != nil {
			return fmt.Errorf("users.csv:%d: %w (field user_id)", line, err)
		}
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("users.csv:%d: user %q is also row %d (field user_id): %w", line, id, prev, setlist.ErrInvalid)
		}
		seen[id] = row
		out[row] = id
		return nil
	})
	return out, err
}

func readItems(r io.Reader, rows int) ([]store.SongKey, error) {
	out := make([]store.SongKey, rows)
	seen := map[store.SongKey]int{}
	err := readIDMap(r, "items.csv", []string{"row", "artist", "track"}, rows, func(row, line int, f []string) error {
		k := store.SongKey{Artist: f[0], Track: f[1]}
		ref := setlist.SongRef{Artist: k.Artist, Track: k.Track}
		if err := ref.Validate(); err != nil {
			return fmt.Errorf("items.csv:%d: %w (fields artist, track)", line, err)
		}
		if prev, dup := seen[k]; dup {
			return fmt.Errorf("items.csv:%d: song %s is also row %d: %w", line, k, prev, setlist.ErrInvalid)
		}
		seen[k] = row
		out[row] = k
		return nil
	})
	return out, err
}

// exportEASE writes an EASE version as an .npz that is not implicit's
// (implicit has no EASE model): b_indices (int32) and b_values (float32),
// items × m, row j holding the songs and weights B_j,i kept in Redis
// (scipy: csr_matrix((b_values.ravel(), b_indices.ravel(),
// arange(0, items*m+1, m)))), a user's scores being Σ_j x_j·B[j,:] with
// x_j the weighted reaction; the parameters as 0-d arrays. Rows of
// items.csv are B's rows and columns; users.csv lists the users whose
// lists the version holds.
func (a *Artifact) exportEASE(w io.Writer) error {
	p, ok := a.Model.(interface{ Pruned() *ease.Pruned })
	if !ok {
		return fmt.Errorf("export version %d: not an EASE model", a.Meta.Version)
	}
	m := p.Pruned()
	idx := make([]byte, 4*len(m.Idx))
	for i, v := range m.Idx {
		binary.LittleEndian.PutUint32(idx[4*i:], uint32(v))
	}
	entries := []npz.Entry{
		{Name: "b_indices", Array: &npz.Array{Descr: "<i4", Shape: []int{m.Items, m.M}, Data: idx}},
		{Name: "b_values", Array: npz.Float32s(m.Val, m.Items, m.M)},
		{Name: "family", Array: npz.String(FamilyEASE)},
		{Name: "lambda", Array: npz.Float64(m.Params.Lambda)},
		{Name: "weighting", Array: npz.String(string(m.Params.Weighting))},
		{Name: "log_epsilon", Array: npz.Float64(m.Params.LogEpsilon)},
		{Name: "bm25_k1", Array: npz.Float64(m.Params.BM25K1)},
		{Name: "bm25_b", Array: npz.Float64(m.Params.BM25B)},
		{Name: "like_weight", Array: npz.Float64(float64(a.Meta.Scheme.LikeWeight))},
		{Name: "dislike_weight", Array: npz.Float64(float64(a.Meta.Scheme.DislikeWeight))},
		{Name: "k", Array: npz.Int64(int64(a.Meta.K))},
	}
	if len(m.ItemWeights) > 0 {
		entries = append(entries, npz.Entry{Name: "item_weights", Array: npz.Float32s(m.ItemWeights, len(m.ItemWeights))})
	}
	if err := npz.Write(w, entries); err != nil {
		return fmt.Errorf("export version %d: %w", a.Meta.Version, err)
	}
	return nil
}
