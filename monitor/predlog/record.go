package predlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/kiln-ml/kiln/tensor"
)

// A segment file is a header followed by framed records:
//
//	header:  "KPLS" version(1) uvarint(len) endpoint
//	frame:   uint32le(len(payload)) uint32le(crc32c(payload)) payload
//	payload: version(1) varint(unix nanos) uvarint(latency nanos) uvarint(status)
//	         str(id) str(route) str(model) str(model version) str(protocol)
//	         str(error) str(subject) tensors(inputs) tensors(outputs)
//	tensors: uvarint(n) then per tensor: str(name) dtype(1) uvarint(ndim)
//	         uvarint(dim)… uvarint(ncols) str(column)… data
//	data:    fixed-size types little-endian; BOOL one byte each; BYTES
//	         str(element) each
//	str:     uvarint(len) bytes
//
// A record is acknowledged once its frame is written; readers stop at the
// first frame that is short or fails its checksum (a torn tail).
const (
	segmentMagic   = "KPLS"
	segmentVersion = 1
	recordVersion  = 1
	frameHeader    = 8
	// maxRecordBytes bounds one record (and what a decoder allocates).
	maxRecordBytes = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt reports a segment record that cannot be decoded.
var ErrCorrupt = errors.New("corrupt prediction-log record")

// record is one logged request.
type record struct {
	Time         time.Time
	Latency      time.Duration
	Status       int
	ID           string
	Route        string
	Model        string
	ModelVersion string
	Protocol     string
	Error        string
	Subject      string
	Inputs       []*tensor.Tensor
	// InputCols names the feature columns of each input (nil: derived
	// from the tensor's name, see featureNames).
	InputCols [][]string
	Outputs   []*tensor.Tensor
}

func appendSegmentHeader(dst []byte, endpoint string) []byte {
	dst = append(dst, segmentMagic...)
	dst = append(dst, segmentVersion)
	return appendStr(dst, endpoint)
}

// parseSegmentHeader returns the endpoint of a segment and the header's
// length.
func parseSegmentHeader(b []byte) (string, int, error) {
	if len(b) < len(segmentMagic)+2 || string(b[:4]) != segmentMagic {
		return "", 0, fmt.Errorf("%w: not a prediction-log segment", ErrCorrupt)
	}
	if b[4] != segmentVersion {
		return "", 0, fmt.Errorf("%w: segment version %d", ErrCorrupt, b[4])
	}
	d := decoder{b: b, off: 5}
	ep := d.str()
	if d.err != nil {
		return "", 0, d.err
	}
	// A header is written one way only: a padded length (a varint with
	// redundant continuation bytes) or an empty endpoint is not one.
	if ep == "" || d.off != len(segmentMagic)+1+uvarintLen(uint64(len(ep)))+len(ep) {
		return "", 0, fmt.Errorf("%w: malformed segment header", ErrCorrupt)
	}
	return ep, d.off, nil
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendFrame appends r framed: header, payload, checksum.
func appendFrame(dst []byte, r *record) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = appendPayload(dst, r)
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

func appendPayload(dst []byte, r *record) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendVarint(dst, r.Time.UnixNano())
	dst = binary.AppendUvarint(dst, uint64(max(r.Latency, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(r.Status, 0)))
	for _, s := range [...]string{r.ID, r.Route, r.Model, r.ModelVersion, r.Protocol, r.Error, r.Subject} {
		dst = appendStr(dst, s)
	}
	dst = appendTensors(dst, r.Inputs, r.InputCols)
	return appendTensors(dst, r.Outputs, nil)
}

func appendTensors(dst []byte, ts []*tensor.Tensor, cols [][]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	for i, t := range ts {
		dst = appendStr(dst, t.Name)
		dst = append(dst, byte(t.DType))
		dst = binary.AppendUvarint(dst, uint64(len(t.Shape)))
		for _, d := range t.Shape {
			dst = binary.AppendUvarint(dst, uint64(max(d, 0)))
		}
		var names []string
		if i < len(cols) {
			names = cols[i]
		}
		dst = binary.AppendUvarint(dst, uint64(len(names)))
		for _, n := range names {
			dst = appendStr(dst, n)
		}
		dst = appendData(dst, t)
	}
	return dst
}

func appendData(dst []byte, t *tensor.Tensor) []byte {
	switch d := t.Data.(type) {
	case []bool:
		for _, v := range d {
			if v {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
		return dst
	case []string:
		for _, v := range d {
			dst = appendStr(dst, v)
		}
		return dst
	case nil:
		return dst
	}
	out, err := binary.Append(dst, binary.LittleEndian, t.Data)
	if err != nil {
		// Not a tensor element slice: record no data (decoders see a
		// short tensor and reject the record; this cannot happen for
		// a valid tensor).
		return dst
	}
	return out
}

// decodeFrame reads one frame from b: the record, the bytes it took, or
// io-style errors: errShort when b ends inside the frame, ErrCorrupt when
// its checksum or content is wrong.
func decodeFrame(b []byte, r *record) (int, error) { return decodeFrameLike(b, r, nil, nil) }

// decodeFrameLike is decodeFrame sharing strings with prev (may be nil)
// and taking its tensors from sl (may be nil).
func decodeFrameLike(b []byte, r *record, prev *record, sl *slab) (int, error) {
	if len(b) < frameHeader {
		return 0, errShort
	}
	n := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if n > maxRecordBytes {
		return 0, fmt.Errorf("%w: record of %d bytes", ErrCorrupt, n)
	}
	if len(b)-frameHeader < int(n) {
		return 0, errShort
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, castagnoli) != sum {
		return 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if err := decodePayloadLike(payload, r, prev, sl); err != nil {
		return 0, err
	}
	return frameHeader + int(n), nil
}

var errShort = fmt.Errorf("%w: truncated record", ErrCorrupt)

type decoder struct {
	b    []byte
	off  int
	err  error
	prev *record
	slab *slab // nil: allocate each value
}

// slab hands out the tensors, shapes and numeric data of a segment's
// records from shared chunks: decoding a segment of small requests
// allocates a few large blocks instead of several objects per record.
type slab struct {
	tensors []tensor.Tensor
	ptrs    []*tensor.Tensor
	cols    [][]string
	shapes  []int64
	f32     []float32
	f64     []float64
	i64     []int64
}

const slabChunk = 4096

func take[T any](pool *[]T, n int) []T {
	if n > slabChunk/4 {
		return make([]T, n)
	}
	if cap(*pool)-len(*pool) < n {
		*pool = make([]T, 0, slabChunk)
	}
	p := *pool
	out := p[len(p) : len(p)+n : len(p)+n]
	*pool = p[:len(p)+n]
	return out
}

func (d *decoder) newTensor() *tensor.Tensor {
	if d.slab == nil {
		return &tensor.Tensor{}
	}
	return &take(&d.slab.tensors, 1)[0]
}

// makeData returns a zeroed slice of n elements of dt.
func (d *decoder) makeData(dt tensor.DType, n int) (any, error) {
	if d.slab != nil {
		switch dt {
		case tensor.Float32:
			return take(&d.slab.f32, n), nil
		case tensor.Float64:
			return take(&d.slab.f64, n), nil
		case tensor.Int64:
			return take(&d.slab.i64, n), nil
		}
	}
	return tensor.MakeSlice(dt, n)
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s at byte %d", ErrCorrupt, what, d.off)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) byte1(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(what)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) bytes(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(what)
		return nil
	}
	v := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return v
}

func (d *decoder) str() string {
	n := d.uvarint("string length")
	return string(d.bytes(n, "string"))
}

// strLike is str, returning like itself when the bytes equal it (no
// allocation for the values most records of a segment share).
func (d *decoder) strLike(like string) string {
	n := d.uvarint("string length")
	b := d.bytes(n, "string")
	if string(b) == like {
		return like
	}
	return string(b)
}

func decodePayload(b []byte, r *record) error { return decodePayloadLike(b, r, nil, nil) }

// decodePayloadLike decodes a payload, sharing the strings equal to
// prev's (the previous record of the segment; may be nil).
func decodePayloadLike(b []byte, r *record, prev *record, sl *slab) error {
	d := decoder{b: b, prev: prev, slab: sl}
	if v := d.byte1("version"); d.err == nil && v != recordVersion {
		return fmt.Errorf("%w: record version %d", ErrCorrupt, v)
	}
	*r = record{}
	r.Time = time.Unix(0, d.varint("time")).UTC()
	lat := d.uvarint("latency")
	if lat > math.MaxInt64 {
		d.fail("latency")
	}
	r.Latency = time.Duration(lat)
	st := d.uvarint("status")
	if st > 999 {
		d.fail("status")
	}
	r.Status = int(st)
	var like record
	if prev != nil {
		like = *prev
	}
	for i, p := range [...]*string{&r.ID, &r.Route, &r.Model, &r.ModelVersion, &r.Protocol, &r.Error, &r.Subject} {
		*p = d.strLike([...]string{like.ID, like.Route, like.Model, like.ModelVersion, like.Protocol, like.Error, like.Subject}[i])
	}
	r.Inputs, r.InputCols = d.tensors(like.Inputs, like.InputCols)
	r.Outputs, _ = d.tensors(like.Outputs, nil)
	if d.err == nil && d.off != len(b) {
		d.fail("record end")
	}
	return d.err
}

func (d *decoder) tensors(like []*tensor.Tensor, likeCols [][]string) ([]*tensor.Tensor, [][]string) {
	n := d.uvarint("tensor count")
	if n > uint64(len(d.b)-d.off) { // every tensor takes bytes
		d.fail("tensor count")
		return nil, nil
	}
	var ts []*tensor.Tensor
	var cols [][]string
	if d.slab != nil && n > 0 {
		ts, cols = take(&d.slab.ptrs, int(n))[:0], take(&d.slab.cols, int(n))[:0]
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var lt *tensor.Tensor
		var lc []string
		if i < uint64(len(like)) {
			lt = like[i]
		}
		if i < uint64(len(likeCols)) {
			lc = likeCols[i]
		}
		t := d.newTensor()
		if lt != nil {
			t.Name = d.strLike(lt.Name)
		} else {
			t.Name = d.str()
		}
		t.DType = tensor.DType(d.byte1("datatype"))
		if d.err == nil && (t.DType == tensor.Invalid || t.DType > tensor.String) {
			d.fail("datatype")
		}
		nd := d.uvarint("rank")
		if nd > 32 {
			d.fail("rank")
		}
		elems := uint64(1)
		if d.slab != nil && nd > 0 && nd <= 32 {
			t.Shape = take(&d.slab.shapes, int(nd))[:0]
		}
		for j := uint64(0); j < nd && d.err == nil; j++ {
			dim := d.uvarint("dimension")
			if dim > maxRecordBytes {
				d.fail("dimension")
			}
			elems *= dim
			if elems > maxRecordBytes {
				d.fail("shape")
			}
			t.Shape = append(t.Shape, int64(dim))
		}
		nc := d.uvarint("column count")
		if nc > uint64(len(d.b)-d.off) {
			d.fail("column count")
		}
		var names []string
		if nc > 0 && uint64(len(lc)) == nc {
			// The previous record's column list, when every name matches.
			same := true
			for j := uint64(0); j < nc && d.err == nil; j++ {
				if got := d.strLike(lc[j]); got != lc[j] {
					same = false
					names = append(append(names, lc[:j]...), got)
					for j++; j < nc && d.err == nil; j++ {
						names = append(names, d.str())
					}
					break
				}
			}
			if same {
				names = lc
			}
		} else {
			for j := uint64(0); j < nc && d.err == nil; j++ {
				names = append(names, d.str())
			}
		}
		if d.err != nil {
			break
		}
		d.data(t, int(elems))
		ts = append(ts, t)
		cols = append(cols, names)
	}
	if d.err != nil {
		return nil, nil
	}
	return ts, cols
}

func (d *decoder) data(t *tensor.Tensor, n int) {
	switch t.DType {
	case tensor.String:
		if uint64(n) > uint64(len(d.b)-d.off) { // each element takes a byte at least
			d.fail("tensor data")
			return
		}
		s := make([]string, n)
		for i := range s {
			s[i] = d.str()
		}
		t.Data = s
		return
	case tensor.Bool:
		raw := d.bytes(uint64(n), "tensor data")
		if d.err != nil {
			return
		}
		v := make([]bool, n)
		for i, c := range raw {
			v[i] = c != 0
		}
		t.Data = v
		return
	}
	size := t.DType.Size()
	raw := d.bytes(uint64(n)*uint64(size), "tensor data")
	if d.err != nil {
		return
	}
	data, err := d.makeData(t.DType, n)
	if err != nil {
		d.fail("datatype")
		return
	}
	if _, err := binary.Decode(raw, binary.LittleEndian, data); err != nil {
		d.fail("tensor data")
		return
	}
	t.Data = data
}

// uvarintLen is the length of x's shortest uvarint encoding.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
