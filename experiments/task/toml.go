package task

import (
	"bytes"
	"fmt"

	"github.com/BurntSushi/toml"
)

// TOML is a Decoder over a config's TOML text. Each Decode is a full
// strict decode of the text into the given options; the keys any Decode
// has decoded are known (Undecoded lists the others).
type TOML struct {
	text    []byte
	md      toml.MetaData
	decoded map[string]bool
	opts    []any
}

// NewTOML parses config text.
func NewTOML(text []byte) (*TOML, error) {
	var raw map[string]any
	md, err := toml.NewDecoder(bytes.NewReader(text)).Decode(&raw)
	if err != nil {
		return nil, err
	}
	return &TOML{text: text, md: md, decoded: map[string]bool{}}, nil
}

// Decode fills v from the text, leaving keys the text does not set at
// v's current values.
func (d *TOML) Decode(v any) error {
	md, err := toml.NewDecoder(bytes.NewReader(d.text)).Decode(v)
	if err != nil {
		return fmt.Errorf("task options: %w", err)
	}
	for _, k := range md.Keys() {
		if md.IsDefined(k...) && !contains(md.Undecoded(), k) {
			d.decoded[k.String()] = true
		}
	}
	d.opts = append(d.opts, v)
	return nil
}

func contains(keys []toml.Key, k toml.Key) bool {
	for _, u := range keys {
		if u.String() == k.String() {
			return true
		}
	}
	return false
}

// Defined reports whether the text sets a key path.
func (d *TOML) Defined(key ...string) bool { return d.md.IsDefined(key...) }

// Known reports whether a Decode has decoded key (dotted).
func (d *TOML) Known(key string) bool { return d.decoded[key] }

// Options returns the values Decode filled, in order (the task's options,
// for records).
func (d *TOML) Options() []any { return d.opts }
