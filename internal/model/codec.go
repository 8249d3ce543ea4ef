package model

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
)

// Record formats stored in Redis. They are binary because a million users'
// lists are written on every publish: 12 bytes a song instead of ~40 in JSON.
// The first byte is a format version so a reader can refuse what it does not
// understand instead of misreading it.
const (
	recsFormat  = 1
	itemsFormat = 1
)

// EncodeRecs packs recs as [format][count uvarint]{song int64 LE, score float32 LE}*.
func EncodeRecs(recs []Rec) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen32+12*len(recs))
	return AppendRecs(b, recs)
}

// AppendRecs is EncodeRecs appending to b, for callers reusing buffers.
func AppendRecs(b []byte, recs []Rec) []byte {
	b = append(b, recsFormat)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Song))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(r.Score))
	}
	return b
}

// DecodeRecs reverses EncodeRecs, rejecting truncated or foreign data.
func DecodeRecs(b []byte) ([]Rec, error) {
	if len(b) == 0 || b[0] != recsFormat {
		return nil, fmt.Errorf("decode recs: unknown format")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b))/12 || uint64(len(b)-1-k) != n*12 { // n bounded first: n*12 must not overflow
		return nil, fmt.Errorf("decode recs: length does not match count %d", n)
	}
	b = b[1+k:]
	out := make([]Rec, n)
	for i := range out {
		out[i].Song = setlist.SongID(binary.LittleEndian.Uint64(b))
		out[i].Score = math.Float32frombits(binary.LittleEndian.Uint32(b[8:]))
		b = b[12:]
	}
	return out, nil
}

// EncodeItems packs the catalog and an ALS item side (EncodeItemModel).
func EncodeItems(c *Catalog, side *als.ItemSide) ([]byte, error) {
	return EncodeItemModel(c, ALSItems(side))
}

// DecodeItems reverses EncodeItems; a version of another family is refused
// (DecodeItemModel reads either).
func DecodeItems(b []byte) (*Catalog, *als.ItemSide, error) {
	c, im, err := DecodeItemModel(b)
	if err != nil {
		return nil, nil, err
	}
	side := ALSSide(im)
	if side == nil {
		return nil, nil, fmt.Errorf("decode items: a %s model has no ALS item side", im.Family())
	}
	return c, side, nil
}
