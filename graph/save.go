package graph

import (
	"encoding/json"
	"fmt"

	"github.com/ddsmc/ddsmc/layers"
)

// metaConfig is the checkpoint metadata key holding the model Config as JSON.
const metaConfig = "model.config"

// Save writes the model's configuration and parameters to path as a
// checkpoint (see WriteCheckpoint for the format; the write is atomic).
// meta adds free-form metadata such as the training step.
func (m *Model) Save(path string, meta map[string]string) error {
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return fmt.Errorf("graph: encoding model config: %w", err)
	}
	c := &Checkpoint{Meta: map[string]string{metaConfig: string(cfg)}, DType: m.Cfg.DType}
	for k, v := range meta {
		c.Meta[k] = v
	}
	for _, n := range m.Store.Names() {
		t := m.Store.Get(n)
		c.Tensors = append(c.Tensors, Tensor{Name: n, Shape: append([]int(nil), t.Shape()...), Data: layers.Float64s(t, nil)})
	}
	return WriteCheckpoint(path, c)
}

// Load reads a checkpoint written by Save and rebuilds its model.
func Load(path string) (*Model, map[string]string, error) {
	c, err := ReadCheckpoint(path)
	if err != nil {
		return nil, nil, err
	}
	js, ok := c.Meta[metaConfig]
	if !ok {
		return nil, nil, fmt.Errorf("graph: checkpoint %s has no model configuration (%q)", path, metaConfig)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return nil, nil, fmt.Errorf("graph: checkpoint %s: model configuration: %w", path, err)
	}
	m, err := New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("graph: checkpoint %s: %w", path, err)
	}
	if err := m.setParams(c); err != nil {
		return nil, nil, fmt.Errorf("graph: checkpoint %s: %w", path, err)
	}
	return m, c.Meta, nil
}

// LoadParams reads the parameters of a checkpoint into m, which must have
// exactly the checkpoint's tensor names and shapes; a mismatch is an error
// naming the tensor and both shapes.
func (m *Model) LoadParams(path string) (map[string]string, error) {
	c, err := ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	if err := m.setParams(c); err != nil {
		return nil, fmt.Errorf("graph: checkpoint %s: %w", path, err)
	}
	return c.Meta, nil
}

func (m *Model) setParams(c *Checkpoint) error {
	var want []Tensor
	for _, n := range m.Store.Names() {
		want = append(want, Tensor{Name: n, Shape: m.Store.Get(n).Shape()})
	}
	if err := c.Expect(want); err != nil {
		return err
	}
	for _, t := range c.Tensors {
		if err := layers.SetFloat64s(m.Store.Get(t.Name), t.Data); err != nil {
			m.Store.Touch() // some were written
			return err
		}
	}
	m.Store.Touch()
	return nil
}
