// Package configs holds the built-in experiment configurations (the TOML
// files in this directory), embedded in the binary so that `ddsmc train
// gmm1` works on a fresh machine without a checkout.
package configs

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.toml
var files embed.FS

// Names lists the built-in configurations, without the .toml suffix.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".toml"))
	}
	sort.Strings(names)
	return names
}

// Get returns the TOML text of a built-in configuration.
func Get(name string) ([]byte, error) {
	b, err := files.ReadFile(strings.TrimSuffix(name, ".toml") + ".toml")
	if err != nil {
		return nil, fmt.Errorf("configs: no built-in config %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}
