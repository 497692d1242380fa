package graph

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sampleCheckpoint has a matrix, a vector and a scalar, with values spanning
// many magnitudes, signed zero, subnormals and the extremes of float64.
func sampleCheckpoint(dtype string) *Checkpoint {
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float64, 3*4)
	for i := range w {
		w[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10))
	}
	b := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-310, -math.MaxFloat64, math.SmallestNonzeroFloat64}
	if dtype == "float32" {
		b = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-40, -math.MaxFloat32, math.SmallestNonzeroFloat32}
		for _, v := range [][]float64{w, b} { // make every value float32-representable
			for i := range v {
				v[i] = float64(float32(v[i]))
			}
		}
	}
	return &Checkpoint{
		Meta:  map[string]string{"config": `{"hidden":64}`, "step": "1200"},
		DType: dtype,
		Tensors: []Tensor{
			{Name: "mlp.0.W", Shape: []int{3, 4}, Data: w},
			{Name: "mlp.0.b", Shape: []int{8}, Data: b},
			{Name: "scale", Shape: []int{}, Data: []float64{2.5}},
		},
	}
}

// sameCheckpoint reports whether a and b are equal, comparing values bit for
// bit (so −0 ≠ +0).
func sameCheckpoint(t *testing.T, got, want *Checkpoint) {
	t.Helper()
	if got.DType != want.DType || len(got.Meta) != len(want.Meta) || len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("got dtype %q meta %v, %d tensors; want %q %v, %d", got.DType, got.Meta, len(got.Tensors), want.DType, want.Meta, len(want.Tensors))
	}
	for k, v := range want.Meta {
		if got.Meta[k] != v {
			t.Errorf("meta[%q] = %q, want %q", k, got.Meta[k], v)
		}
	}
	for i, w := range want.Tensors {
		g := got.Tensors[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || len(g.Data) != len(w.Data) {
			t.Fatalf("tensor %d = %q %v (%d values), want %q %v (%d)", i, g.Name, g.Shape, len(g.Data), w.Name, w.Shape, len(w.Data))
		}
		for k := range w.Data {
			if math.Float64bits(g.Data[k]) != math.Float64bits(w.Data[k]) {
				t.Errorf("%s[%d] = %v, want %v exactly", w.Name, k, g.Data[k], w.Data[k])
			}
		}
	}
}

func TestCheckpointRoundTripIsExact(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		path := filepath.Join(t.TempDir(), "a", "b", "model.ckpt") // parents created
		want := sampleCheckpoint(dtype)
		if err := WriteCheckpoint(path, want); err != nil {
			t.Fatal(err)
		}
		got, err := ReadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		sameCheckpoint(t, got, want)
		if err := got.Expect(want.Tensors); err != nil {
			t.Errorf("Expect on the round-tripped checkpoint: %v", err)
		}
	}
}

func TestCheckpointFloat32RoundsToNearestFloat32(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.ckpt")
	in := []float64{0.1, 1.0 / 3, math.Pi, 1e30}
	if err := WriteCheckpoint(path, &Checkpoint{DType: "float32", Tensors: []Tensor{{Name: "x", Shape: []int{4}, Data: in}}}); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range in {
		if got := c.Tensors[0].Data[i]; got != float64(float32(v)) {
			t.Errorf("x[%d] = %v, want float32-rounded %v", i, got, float64(float32(v)))
		}
	}
}

// TestCheckpointLayoutMatchesDocumentedFormat parses a written file by hand,
// following the byte-by-byte description at the top of checkpoint.go.
func TestCheckpointLayoutMatchesDocumentedFormat(t *testing.T) {
	c := sampleCheckpoint("float64")
	path := filepath.Join(t.TempDir(), "m.ckpt")
	if err := WriteCheckpoint(path, c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:8]) != "DDSMCCKP" || binary.LittleEndian.Uint32(b[8:12]) != 1 {
		t.Fatalf("prefix %q, version %d", b[:8], binary.LittleEndian.Uint32(b[8:12]))
	}
	h := int(binary.LittleEndian.Uint32(b[12:16]))
	var hdr struct {
		DType   string            `json:"dtype"`
		Meta    map[string]string `json:"meta"`
		Tensors []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(b[16:16+h], &hdr); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}
	if hdr.DType != "float64" || hdr.Meta["step"] != "1200" || len(hdr.Tensors) != 3 || hdr.Tensors[2].Name != "scale" || len(hdr.Tensors[2].Shape) != 0 {
		t.Errorf("header = %+v", hdr)
	}
	off := 16 + h
	for _, tn := range c.Tensors {
		for _, v := range tn.Data {
			if got := math.Float64frombits(binary.LittleEndian.Uint64(b[off:])); math.Float64bits(got) != math.Float64bits(v) {
				t.Fatalf("%s: value at offset %d is %v, want %v", tn.Name, off, got, v)
			}
			off += 8
		}
	}
	if len(b) != off+32 {
		t.Fatalf("file is %d bytes, want 16+H+D+32 = %d", len(b), off+32)
	}
	if sum := sha256.Sum256(b[:off]); !bytes.Equal(sum[:], b[off:]) {
		t.Error("trailing 32 bytes are not the SHA-256 of the rest")
	}
	// The same checkpoint always gives the same bytes (sorted meta keys).
	path2 := filepath.Join(t.TempDir(), "m2.ckpt")
	if err := WriteCheckpoint(path2, sampleCheckpoint("float64")); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path2); !bytes.Equal(b, b2) {
		t.Error("writing the same checkpoint twice gave different bytes")
	}
}

// writeRaw assembles a file from a prefix version, a header and data, with
// a valid checksum, so that readers see only the defect under test.
func writeRaw(t *testing.T, version uint32, header string, data []byte) string {
	t.Helper()
	var b []byte
	b = append(b, "DDSMCCKP"...)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	b = append(b, data...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	path := filepath.Join(t.TempDir(), "raw.ckpt")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func f64s(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if !strings.HasPrefix(err.Error(), "graph: ") {
		t.Errorf("error %q lacks the \"graph: \" prefix", err)
	}
}

func TestWriteRawHelperProducesReadableFile(t *testing.T) {
	// Guards the helper used by the defect tests below: well-formed input reads back.
	path := writeRaw(t, 1, `{"dtype":"float64","meta":{},"tensors":[{"name":"w","shape":[2]}]}`, f64s(1, 2))
	c, err := ReadCheckpoint(path)
	if err != nil || len(c.Tensors) != 1 || c.Tensors[0].Data[1] != 2 {
		t.Fatalf("ReadCheckpoint = %+v, %v", c, err)
	}
}

func TestReadCheckpointMissingFileNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.ckpt")
	_, err := ReadCheckpoint(path)
	wantErr(t, err, path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestReadCheckpointRejectsBadMagic(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"long": "PK\x03\x04 this is a zip file, honest", "short": "hi"} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o644)
		_, err := ReadCheckpoint(path)
		wantErr(t, err, "not a ddsmc checkpoint", path)
	}
}

func TestReadCheckpointRejectsUnsupportedVersion(t *testing.T) {
	path := writeRaw(t, 2, `{"dtype":"float64","meta":{},"tensors":[]}`, nil)
	_, err := ReadCheckpoint(path)
	wantErr(t, err, "version 2", "supports version 1")
}

func TestReadCheckpointDetectsTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.ckpt")
	if err := WriteCheckpoint(path, sampleCheckpoint("float64")); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	h := int(binary.LittleEndian.Uint32(full[12:16]))
	// Cuts inside the magic, the prefix, the header, the data and the checksum.
	for _, n := range []int{0, 5, 12, 16 + h/2, 16 + h + 40, len(full) - 33, len(full) - 1} {
		os.WriteFile(path, full[:n], 0o644)
		_, err := ReadCheckpoint(path)
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut to %d of %d bytes: error %v, want \"truncated\"", n, len(full), err)
		}
	}
}

func TestReadCheckpointDetectsCorruption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.ckpt")
	if err := WriteCheckpoint(path, sampleCheckpoint("float64")); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	h := int(binary.LittleEndian.Uint32(full[12:16]))
	// One flipped bit in the header, in the data, in the checksum; one
	// appended byte.
	for _, at := range []int{20, 16 + h + 3, len(full) - 5, -1} {
		b := slices.Clone(full)
		if at < 0 {
			b = append(b, 0)
		} else {
			b[at] ^= 0x10
		}
		os.WriteFile(path, b, 0o644)
		_, err := ReadCheckpoint(path)
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("damage at byte %d: error %v, want \"corrupt\"", at, err)
		}
	}
}

func TestReadCheckpointRejectsHeaderDataSizeMismatch(t *testing.T) {
	hdr := `{"dtype":"float64","meta":{},"tensors":[{"name":"w","shape":[3]}]}`
	for _, n := range []int{2, 4} {
		path := writeRaw(t, 1, hdr, f64s(make([]float64, n)...))
		_, err := ReadCheckpoint(path)
		wantErr(t, err, "size mismatch", "need 24 data bytes")
	}
	// Malformed headers that the checksum cannot catch, because the writer
	// produced them.
	for hdr, want := range map[string]string{
		`{"dtype":"float16","meta":{},"tensors":[]}`:                                        `dtype "float16"`,
		`{"dtype":"float64","meta":{},"tensors":[],"extra":1}`:                              "unknown field",
		`{"dtype":"float64","meta":{},"tensors":[{"name":"w","shape":[0]}]}`:                "≥ 1",
		`{"dtype":"float64","tensors":[{"name":"w","shape":[1]},{"name":"w","shape":[1]}]}`: "twice",
		`{"dtype":"float64"`: "malformed",
	} {
		_, err := ReadCheckpoint(writeRaw(t, 1, hdr, f64s(0, 0)))
		wantErr(t, err, want)
	}
}

func TestReadCheckpointRejectsNonFiniteValuesNamingTensor(t *testing.T) {
	hdr := `{"dtype":"float64","meta":{},"tensors":[{"name":"ok","shape":[1]},{"name":"bad.W","shape":[2]}]}`
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		_, err := ReadCheckpoint(writeRaw(t, 1, hdr, f64s(1, 2, v)))
		wantErr(t, err, `"bad.W"`, "index 1")
	}
	// float32 NaN as well.
	hdr32 := `{"dtype":"float32","meta":{},"tensors":[{"name":"h","shape":[1]}]}`
	_, err := ReadCheckpoint(writeRaw(t, 1, hdr32, binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.NaN())))))
	wantErr(t, err, `"h"`, "NaN")
}

func TestWriteCheckpointRejectsInvalidInput(t *testing.T) {
	ok := func() *Checkpoint { return sampleCheckpoint("float64") }
	cases := map[string]struct {
		c    *Checkpoint
		want string
	}{
		"nil":          {nil, "nil checkpoint"},
		"dtype":        {func() *Checkpoint { c := ok(); c.DType = "int8"; return c }(), `dtype "int8"`},
		"data length":  {func() *Checkpoint { c := ok(); c.Tensors[0].Data = c.Tensors[0].Data[1:]; return c }(), `"mlp.0.W" has 11 values, its shape [3 4] needs 12`},
		"duplicate":    {func() *Checkpoint { c := ok(); c.Tensors[1].Name = "mlp.0.W"; return c }(), "twice"},
		"empty name":   {func() *Checkpoint { c := ok(); c.Tensors[2].Name = ""; return c }(), "empty name"},
		"zero dim":     {func() *Checkpoint { c := ok(); c.Tensors[0].Shape = []int{0, 4}; return c }(), "≥ 1"},
		"nan":          {func() *Checkpoint { c := ok(); c.Tensors[1].Data[3] = math.NaN(); return c }(), `"mlp.0.b" holds NaN at index 3`},
		"f32 overflow": {func() *Checkpoint { c := ok(); c.DType = "float32"; return c }(), "overflows float32"},
	}
	for name, tc := range cases {
		dir := t.TempDir()
		err := WriteCheckpoint(filepath.Join(dir, "m.ckpt"), tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: failed write left %d files behind", name, len(entries))
		}
	}
}

func TestFailedWriteLeavesExistingFileUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.ckpt")
	if err := WriteCheckpoint(path, sampleCheckpoint("float64")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	bad := sampleCheckpoint("float32")
	bad.Tensors[1].Data = append(bad.Tensors[1].Data, 7) // 9 values for shape [8]
	if err := WriteCheckpoint(path, bad); err == nil {
		t.Fatal("WriteCheckpoint accepted a tensor whose data does not match its shape")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed write changed the existing file")
	}
	// A failure at the final rename (path is a non-empty directory) must
	// not leave the temporary file behind either.
	blocked := filepath.Join(dir, "blocked")
	os.MkdirAll(filepath.Join(blocked, "x"), 0o755)
	if err := WriteCheckpoint(blocked, sampleCheckpoint("float64")); err == nil {
		t.Fatal("WriteCheckpoint over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "m.ckpt" && e.Name() != "blocked" {
			t.Errorf("stray file %q left in the directory", e.Name())
		}
	}
	// A successful overwrite replaces the content completely.
	if err := WriteCheckpoint(path, sampleCheckpoint("float32")); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCheckpoint(path)
	if err != nil || c.DType != "float32" {
		t.Fatalf("after overwrite: %+v, %v", c, err)
	}
}

func TestExpectNamesMismatchedMissingAndExtraTensors(t *testing.T) {
	c := &Checkpoint{DType: "float64", Tensors: []Tensor{
		{Name: "mlp.0.W", Shape: []int{64, 128}},
		{Name: "mlp.0.b", Shape: []int{128}},
		{Name: "old.bias", Shape: []int{3}},
	}}
	if err := c.Expect([]Tensor{{Name: "mlp.0.b", Shape: []int{128}}, {Name: "old.bias", Shape: []int{3}}, {Name: "mlp.0.W", Shape: []int{64, 128}}}); err != nil {
		t.Errorf("Expect with the same names and shapes in another order: %v", err)
	}
	err := c.Expect([]Tensor{{Name: "mlp.0.W", Shape: []int{64, 256}}, {Name: "mlp.0.b", Shape: []int{128}}, {Name: "old.bias", Shape: []int{3}}})
	if err == nil || err.Error() != `graph: checkpoint tensor "mlp.0.W" has shape [64 128], model expects [64 256]` {
		t.Errorf("single mismatch: %v", err)
	}
	err = c.Expect([]Tensor{{Name: "mlp.0.W", Shape: []int{64, 128}}, {Name: "mlp.0.b", Shape: []int{1, 128}}, {Name: "mlp.1.W", Shape: []int{128, 64}}})
	wantErr(t, err, `"mlp.0.b" has shape [128], model expects [1 128]`, `missing tensor "mlp.1.W"`, `unexpected tensor "old.bias"`)
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("want 3 problems reported, got %d: %v", n, err)
	}
	if _, ok := c.Lookup("mlp.0.b"); !ok {
		t.Error("Lookup missed an existing tensor")
	}
	if _, ok := c.Lookup("nope"); ok {
		t.Error("Lookup found a tensor that does not exist")
	}
}
