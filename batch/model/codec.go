package model

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/als"
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

// EncodeItems packs the catalog and the item side as
// [format][count uvarint]{song int64 LE}*[item side].
func EncodeItems(c *Catalog, side *als.ItemSide) ([]byte, error) {
	sideBytes, err := side.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode items: %w", err)
	}
	if side.NumItems() != c.Len() {
		return nil, fmt.Errorf("encode items: catalog has %d songs, item side %d", c.Len(), side.NumItems())
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+8*c.Len()+len(sideBytes))
	b = append(b, itemsFormat)
	b = binary.AppendUvarint(b, uint64(c.Len()))
	for _, s := range c.songs {
		b = binary.LittleEndian.AppendUint64(b, uint64(s))
	}
	return append(b, sideBytes...), nil
}

// DecodeItems reverses EncodeItems.
func DecodeItems(b []byte) (*Catalog, *als.ItemSide, error) {
	if len(b) == 0 || b[0] != itemsFormat {
		return nil, nil, fmt.Errorf("decode items: unknown format")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b))/8 || uint64(len(b)-1-k) < n*8 { // n bounded first: n*8 must not overflow
		return nil, nil, fmt.Errorf("decode items: truncated song list")
	}
	b = b[1+k:]
	songs := make([]setlist.SongID, n)
	for i := range songs {
		songs[i] = setlist.SongID(binary.LittleEndian.Uint64(b[8*i:]))
	}
	side := new(als.ItemSide)
	if err := side.UnmarshalBinary(b[8*n:]); err != nil {
		return nil, nil, fmt.Errorf("decode items: %w", err)
	}
	if side.NumItems() != len(songs) {
		return nil, nil, fmt.Errorf("decode items: %d songs but %d item factors", len(songs), side.NumItems())
	}
	return NewCatalog(songs), side, nil
}
