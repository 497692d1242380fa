package configs

import "testing"

func TestBuiltinsAreListedAndReadable(t *testing.T) {
	names := Names()
	if len(names) < 2 || names[0] != "gmm1" || names[1] != "gmm2" {
		t.Fatalf("Names() = %v, want gmm1 and gmm2 first", names)
	}
	for _, n := range names {
		if b, err := Get(n); err != nil || len(b) == 0 {
			t.Fatalf("Get(%q): %v", n, err)
		}
	}
	if _, err := Get("gmm3"); err == nil {
		t.Fatal("Get of an unknown name: want an error")
	}
}
