package graph

// Checkpoint file format, version 1.
//
// A checkpoint is one file holding named parameter tensors as plain slices,
// independent of Gorgonia. All integers are unsigned little-endian. Byte by
// byte:
//
//	offset      size  content
//	0           8     magic, the ASCII bytes "DDSMCCKP"
//	8           4     format version, uint32 = 1
//	12          4     header length H in bytes, uint32
//	16          H     header: UTF-8 JSON object
//	                    {"dtype": "float32"|"float64",
//	                     "meta": {string: string, ...},
//	                     "tensors": [{"name": string, "shape": [int, ...]}, ...]}
//	16+H        D     tensor data: for each tensor, in header order, its
//	                  prod(shape) elements row-major as IEEE-754 little-endian
//	                  float32 (4 bytes each) or float64 (8 bytes each) per
//	                  dtype; no padding, so D = 4 or 8 × Σ prod(shape)
//	16+H+D      32    SHA-256 of bytes [0, 16+H+D)
//
// The file is exactly 16 + H + D + 32 bytes. A shape of [] is a scalar (one
// element); every dimension is ≥ 1; names are non-empty and unique. The
// header has no other fields, and a reader rejects unknown ones. No tensor
// may hold NaN or ±Inf. encoding/json writes map keys sorted, so the same
// checkpoint always produces the same bytes.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"slices"
)

// CheckpointMagic is the 8-byte signature that starts every checkpoint file.
const CheckpointMagic = "DDSMCCKP"

// CheckpointVersion is the checkpoint format version this package writes and
// the only one it reads.
const CheckpointVersion = 1

const (
	ckpPrefixLen = 8 + 4 + 4     // magic, version, header length
	ckpSumLen    = sha256.Size   // trailing checksum
	maxElements  = math.MaxInt32 // per tensor; keeps size arithmetic far from overflow
	maxDataBytes = 1 << 48       // whole file; ditto
)

// Tensor is one named parameter tensor, row-major. Data holds prod(Shape)
// values (one for the scalar shape []); on disk they are stored as float32 or
// float64 according to the checkpoint's DType.
type Tensor struct {
	// Name identifies the tensor, e.g. "mlp.0.W"; unique within a file.
	Name string
	// Shape lists the dimensions, each ≥ 1; [] is a scalar.
	Shape []int
	// Data holds the prod(Shape) values, row-major.
	Data []float64
}

// Checkpoint is the content of a parameter file: free-form metadata (for
// example the model config as JSON, or the training step), the on-disk
// element type, and the tensors in file order.
type Checkpoint struct {
	// Meta holds free-form string metadata; ReadCheckpoint always returns a
	// non-nil map.
	Meta map[string]string
	// DType is the on-disk element type, "float32" or "float64". With
	// float32, values are rounded to the nearest float32 when written.
	DType string
	// Tensors are the parameters, in file order.
	Tensors []Tensor
}

// ckpHeader is the JSON header of the file format.
type ckpHeader struct {
	DType   string            `json:"dtype"`
	Meta    map[string]string `json:"meta"`
	Tensors []ckpTensorHeader `json:"tensors"`
}

type ckpTensorHeader struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// dtypeSize returns the bytes per element of a dtype, or an error naming it.
func dtypeSize(dtype string) (int, error) {
	switch dtype {
	case "float32":
		return 4, nil
	case "float64":
		return 8, nil
	}
	return 0, fmt.Errorf("graph: unsupported checkpoint dtype %q, want \"float32\" or \"float64\"", dtype)
}

// numElements returns prod(shape), or an error naming the tensor if a
// dimension is < 1 or the tensor is implausibly large.
func numElements(name string, shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 1 {
			return 0, fmt.Errorf("graph: checkpoint tensor %q has shape %v, every dimension must be ≥ 1", name, shape)
		}
		if n > maxElements/d {
			return 0, fmt.Errorf("graph: checkpoint tensor %q has shape %v, more than %d elements", name, shape, maxElements)
		}
		n *= d
	}
	return n, nil
}

// validateHeader checks dtype, names and shapes, and returns the total number
// of data bytes the header describes.
func validateHeader(h *ckpHeader) (int, error) {
	size, err := dtypeSize(h.DType)
	if err != nil {
		return 0, err
	}
	seen := make(map[string]bool, len(h.Tensors))
	total := 0
	for _, t := range h.Tensors {
		if t.Name == "" {
			return 0, errors.New("graph: checkpoint tensor with an empty name")
		}
		if seen[t.Name] {
			return 0, fmt.Errorf("graph: checkpoint tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
		n, err := numElements(t.Name, t.Shape)
		if err != nil {
			return 0, err
		}
		total += n * size
		if total > maxDataBytes {
			return 0, fmt.Errorf("graph: checkpoint tensors need more than %d bytes", maxDataBytes)
		}
	}
	return total, nil
}

// checkFinite returns an error naming the tensor if it holds NaN or ±Inf.
func checkFinite(name string, data []float64) error {
	for i, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("graph: checkpoint tensor %q holds %v at index %d", name, v, i)
		}
	}
	return nil
}

// WriteCheckpoint writes c to path in the format described at the top of
// this file. Everything is validated first (dtype, unique non-empty names,
// positive dimensions, len(Data) = prod(Shape), finite values that also fit
// in float32 when DType is "float32"), so invalid input fails before any
// file is touched. The write is atomic: the bytes go to a temporary file in
// the same directory, which is fsynced and then renamed over path, so path
// holds either its old content or the complete new file, never a partial
// one. Missing parent directories are created.
func WriteCheckpoint(path string, c *Checkpoint) (err error) {
	if c == nil {
		return errors.New("graph: WriteCheckpoint given a nil checkpoint")
	}
	h := ckpHeader{DType: c.DType, Meta: c.Meta, Tensors: make([]ckpTensorHeader, len(c.Tensors))}
	if h.Meta == nil {
		h.Meta = map[string]string{}
	}
	for i, t := range c.Tensors {
		h.Tensors[i] = ckpTensorHeader{Name: t.Name, Shape: t.Shape}
		if h.Tensors[i].Shape == nil {
			h.Tensors[i].Shape = []int{}
		}
	}
	if _, err := validateHeader(&h); err != nil {
		return err
	}
	for _, t := range c.Tensors {
		n, _ := numElements(t.Name, t.Shape)
		if len(t.Data) != n {
			return fmt.Errorf("graph: checkpoint tensor %q has %d values, its shape %v needs %d", t.Name, len(t.Data), t.Shape, n)
		}
		if err := checkFinite(t.Name, t.Data); err != nil {
			return err
		}
		if c.DType == "float32" {
			for i, v := range t.Data {
				if math.Abs(v) > math.MaxFloat32 {
					return fmt.Errorf("graph: checkpoint tensor %q value %v at index %d overflows float32", t.Name, v, i)
				}
			}
		}
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("graph: encoding checkpoint header: %w", err)
	}
	if uint64(len(hdr)) > math.MaxUint32 {
		return fmt.Errorf("graph: checkpoint header is %d bytes, more than the format's 4 GiB limit", len(hdr))
	}

	err = atomicfile.Write(path, func(w *bufio.Writer) error { return encodeCheckpoint(w, hdr, c) })
	if err != nil {
		return fmt.Errorf("graph: writing checkpoint %s: %w", path, err)
	}
	return nil
}

// encodeCheckpoint streams prefix, header, data and checksum to w.
func encodeCheckpoint(w io.Writer, hdr []byte, c *Checkpoint) error {
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 1<<16)
	var prefix [ckpPrefixLen]byte
	copy(prefix[:8], CheckpointMagic)
	binary.LittleEndian.PutUint32(prefix[8:], CheckpointVersion)
	binary.LittleEndian.PutUint32(prefix[12:], uint32(len(hdr)))
	bw.Write(prefix[:])
	bw.Write(hdr)
	var buf [8]byte
	for _, t := range c.Tensors {
		for _, v := range t.Data {
			if c.DType == "float32" {
				binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(float32(v)))
				bw.Write(buf[:4])
			} else {
				binary.LittleEndian.PutUint64(buf[:], math.Float64bits(v))
				bw.Write(buf[:])
			}
		}
	}
	if err := bw.Flush(); err != nil { // bufio keeps the first write error
		return err
	}
	_, err := w.Write(sum.Sum(nil))
	return err
}

// ReadCheckpoint reads and fully verifies a checkpoint file. It returns a
// clear error, naming the path, for a missing file, a file that is not a
// ddsmc checkpoint (bad magic), an unsupported format version, a truncated
// file, a checksum mismatch (corruption), a malformed header, a header whose
// tensors do not account for exactly the data bytes present, and NaN or ±Inf
// values (naming the tensor).
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("graph: reading checkpoint: %w", err)
	}
	if len(b) < len(CheckpointMagic) {
		if bytes.HasPrefix([]byte(CheckpointMagic), b) {
			return nil, fmt.Errorf("graph: checkpoint %s is truncated: %d bytes, not even the magic", path, len(b))
		}
		return nil, fmt.Errorf("graph: %s is not a ddsmc checkpoint (bad magic)", path)
	}
	if string(b[:8]) != CheckpointMagic {
		return nil, fmt.Errorf("graph: %s is not a ddsmc checkpoint (bad magic %q, want %q)", path, b[:8], CheckpointMagic)
	}
	if len(b) < ckpPrefixLen {
		return nil, fmt.Errorf("graph: checkpoint %s is truncated: %d bytes, the fixed prefix alone needs %d", path, len(b), ckpPrefixLen)
	}
	if v := binary.LittleEndian.Uint32(b[8:12]); v != CheckpointVersion {
		return nil, fmt.Errorf("graph: checkpoint %s has format version %d, this build supports version %d", path, v, CheckpointVersion)
	}
	hlen := int64(binary.LittleEndian.Uint32(b[12:16]))
	if need := ckpPrefixLen + hlen + ckpSumLen; int64(len(b)) < need {
		return nil, fmt.Errorf("graph: checkpoint %s is truncated: %d bytes, its %d-byte header and checksum alone need %d", path, len(b), hlen, need)
	}
	hdrBytes := b[ckpPrefixLen : ckpPrefixLen+hlen]
	h, herr := decodeHeader(hdrBytes)
	dataLen := 0
	if herr == nil {
		dataLen, herr = validateHeader(h)
	}

	body, stored := b[:len(b)-ckpSumLen], b[len(b)-ckpSumLen:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], stored) {
		// Tell a cut-off file apart from one damaged in place.
		if want := ckpPrefixLen + int(hlen) + dataLen + ckpSumLen; herr == nil && len(b) < want {
			return nil, fmt.Errorf("graph: checkpoint %s is truncated: %d bytes, its header describes a %d-byte file", path, len(b), want)
		}
		return nil, fmt.Errorf("graph: checkpoint %s is corrupt: SHA-256 checksum mismatch", path)
	}
	// The bytes are exactly as written; any remaining problem was written.
	if herr != nil {
		return nil, fmt.Errorf("graph: checkpoint %s: %w", path, herr)
	}
	data := body[ckpPrefixLen+hlen:]
	if len(data) != dataLen {
		return nil, fmt.Errorf("graph: checkpoint %s: header/data size mismatch: the header's tensors need %d data bytes, the file holds %d", path, dataLen, len(data))
	}

	c := &Checkpoint{Meta: h.Meta, DType: h.DType, Tensors: make([]Tensor, len(h.Tensors))}
	if c.Meta == nil {
		c.Meta = map[string]string{}
	}
	for i, th := range h.Tensors {
		n, _ := numElements(th.Name, th.Shape)
		t := Tensor{Name: th.Name, Shape: slices.Clone(th.Shape), Data: make([]float64, n)}
		for k := range t.Data {
			if h.DType == "float32" {
				t.Data[k] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*k:])))
			} else {
				t.Data[k] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*k:]))
			}
		}
		if h.DType == "float32" {
			data = data[4*n:]
		} else {
			data = data[8*n:]
		}
		if err := checkFinite(t.Name, t.Data); err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, path)
		}
		c.Tensors[i] = t
	}
	return c, nil
}

// decodeHeader parses the JSON header strictly: unknown fields, trailing
// data and a missing dtype are errors.
func decodeHeader(b []byte) (*ckpHeader, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h ckpHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("graph: malformed checkpoint header: %w", err)
	}
	if dec.More() {
		return nil, errors.New("graph: malformed checkpoint header: trailing data after the JSON object")
	}
	return &h, nil
}

// Lookup returns the tensor with the given name and whether it exists.
func (c *Checkpoint) Lookup(name string) (Tensor, bool) {
	for _, t := range c.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Expect checks that c holds exactly the tensors named in want, with the
// same shapes (want's Data is ignored). Every problem is reported, one per
// line: a shape mismatch as `graph: checkpoint tensor "mlp.0.W" has shape
// [64 128], model expects [64 256]`, and tensors the model expects but the
// checkpoint lacks, or the checkpoint holds but the model does not expect,
// by name.
func (c *Checkpoint) Expect(want []Tensor) error {
	have := make(map[string][]int, len(c.Tensors))
	for _, t := range c.Tensors {
		have[t.Name] = t.Shape
	}
	wanted := make(map[string]bool, len(want))
	var errs []error
	for _, w := range want {
		if wanted[w.Name] {
			errs = append(errs, fmt.Errorf("graph: model expects tensor %q twice", w.Name))
			continue
		}
		wanted[w.Name] = true
		shape, ok := have[w.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("graph: checkpoint is missing tensor %q (model expects shape %v)", w.Name, w.Shape))
		case !slices.Equal(shape, w.Shape):
			errs = append(errs, fmt.Errorf("graph: checkpoint tensor %q has shape %v, model expects %v", w.Name, shape, w.Shape))
		}
	}
	for _, t := range c.Tensors {
		if !wanted[t.Name] {
			errs = append(errs, fmt.Errorf("graph: checkpoint has unexpected tensor %q with shape %v", t.Name, t.Shape))
		}
	}
	return errors.Join(errs...)
}
